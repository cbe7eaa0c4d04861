"""The command line as a user meets it: help, version, exit codes, streams, Ctrl-C, demo."""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    HANG,
    cell_fields,
    cli_env,
    commit_all,
    gateway_env,
    manifest_yaml,
    pipeline,
    run_cli,
    run_cli_process,
    signal_until_heard,
    spawn_cli,
    world_for,
    write,
)

from reconciler import __version__
from reconciler import ledger as L

COMMANDS = [
    ["validate"],
    ["plan"],
    ["apply"],
    ["ledger", "show"],
    ["ledger", "verify"],
    ["ledger", "resolve"],
    ["schema"],
    ["init"],
    ["emulator"],
    ["demo"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(cmd: list[str], tmp_path: Path) -> None:
    res = run_cli([*cmd, "--help"], tmp_path)
    assert res.code == 0 and "Example:" in res.out and "reconcile " in res.out


def test_the_help_lists_the_commands_in_the_order_a_newcomer_uses_them(tmp_path: Path) -> None:
    res = run_cli(["--help"], tmp_path)
    listed = [line.split()[0] for line in res.out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == ["init", "validate", "plan", "apply", "ledger", "demo", "emulator", "schema"], res.out
    assert {c[0] for c in COMMANDS} == set(listed)  # every command is listed


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_a_command_line_builds_its_command_alone_and_it_says_the_same(cmd: list[str]) -> None:
    """`reconcile plan ...` builds the root and plan only (cli._app.command): plan's help,
    and its answer to a flag it lacks or a value it refuses, are the whole app's plan's."""
    import typer.main

    from reconciler.cli._app import app, command

    whole = typer.main.get_command(app)
    for args in ([*cmd, "--help"], [*cmd, "--no-such-flag"], [*cmd, "--max-points", "x"]):
        alone = command(args)
        assert list(alone.commands) == [cmd[0]]  # type: ignore[attr-defined]
        assert _said(alone, args) == _said(whole, args)


def _said(cli: Any, args: list[str]) -> tuple[object, str, str]:
    """What a built command does with `args`: its result or error, and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = cli(args, prog_name="reconcile", standalone_mode=False)
        except Exception as exc:  # a usage error: shown as the CLI shows it
            exc.show()  # type: ignore[attr-defined]
            result = type(exc).__name__
    return result, out.getvalue(), err.getvalue()


def test_version_and_root_help(tmp_path: Path) -> None:
    assert run_cli(["--version"], tmp_path).out.strip() == f"reconcile {__version__}"
    res = run_cli([], tmp_path)
    assert "plan" in res.all and "apply" in res.all


def test_plan_exit_codes_and_streams(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    plain = run_cli(["plan"], repo)
    assert plain.code == 0 and "Plan: 2 cells to clear in 1 request" in plain.out and plain.err == ""
    assert "\x1b[" not in plain.out  # NO_COLOR and no terminal: no escape codes
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 2
    bad = run_cli(["plan", "--format", "yaml"], repo)
    assert bad.code == 1 and bad.out == "" and "--format must be text, json or markdown" in bad.err
    assert (
        run_cli(["plan", "--target", "nope"], repo)
        .err.strip()
        .endswith("--target: no manifest is named nope")
    )


# Prints, as the process ends, every module it imported.
_IMPORTS_PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print(*sorted(sys.modules), file=sys.stderr))\n"
    "from reconciler.cli import main\n"
    "main(sys.argv[1:])\n"
)


def test_a_json_plan_imports_nothing_it_does_not_use(repo: Path) -> None:
    """`plan --format json` where there is no reconcile.yaml: no terminal rendering (rich),
    no HTTP, nothing of apply or of the ledger in git, none of the config file's models, and
    no other command's arguments."""
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, "plan", "--format", "json"],
        cwd=repo,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["summary"]["pendingCells"] == 2
    imported = set(proc.stderr.split())
    assert {"reconciler.plan", "reconciler.manifests", "pydantic"} <= imported  # the probe sees them
    unused = {"rich", "httpx", "reconciler.apply", "reconciler.gitsync", "reconciler.enos"}
    unused |= {"reconciler.config.schema", "reconciler.config.load", "reconciler.windows"}
    unused |= {"reconciler.args.apply", "reconciler.args.ledger", "reconciler.args.tools"}
    assert unused & imported == set()


def test_corrupt_or_unreadable_ledger_is_a_clear_error(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    (repo / "applied-ledger.jsonl").write_text('{"v":1,"seq":1}\n{"v":1,"seq":2}\n')
    res = run_cli(["plan"], repo)
    assert res.code == 1 and "applied-ledger.jsonl:1:" in res.err and "Traceback" not in res.all
    (repo / "dir.jsonl").mkdir()
    res = run_cli(["plan", "--ledger", "dir.jsonl"], repo)
    assert res.code == 1 and "cannot read ledger" in res.err and "Traceback" not in res.all
    res = run_cli(["--debug", "plan", "--ledger", "dir.jsonl"], repo)
    assert "Traceback" in res.err  # --debug shows one


def test_unwritable_output_is_a_clear_error(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["plan", "--out", "no/such/dir/plan.json"], repo)
    assert (
        res.code == 1 and "no/such/dir/plan.json: cannot write the plan: No such file or directory" in res.err
    )
    assert "Traceback" not in res.all


def test_records_carry_the_ci_commit_and_run_url(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    ci = {
        "GITHUB_SHA": "0123456789abcdef",
        "GITHUB_RUN_ID": "42",
        "GITHUB_REPOSITORY": "wind/deletions",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_ACTOR": "octo",
    }
    assert run_cli(["apply", "--auto-approve"], repo, {**gateway_env(em), **ci}).code == 0
    actor = L.read(repo / "applied-ledger.jsonl").records[-1].data["actor"]
    assert actor["gitCommit"] == "0123456789abcdef" and actor["user"] == "octo"
    assert actor["runUrl"] == "https://github.example/wind/deletions/actions/runs/42"
    shown = run_cli(["ledger", "show"], repo).out
    assert "by octo @01234567 https://github.example/wind/deletions/actions/runs/42" in shown


@pytest.mark.slow(4)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_unreachable_gateway_fails_before_writing_anything(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    env = {"ENOS_API_GATEWAY": "http://127.0.0.1:9", "ENOS_APP_KEY": "k", "ENOS_APP_SECRET": "s"}
    res = run_cli(["apply", "--auto-approve"], repo, env)
    assert (
        res.code == 1
        and "cannot connect to 127.0.0.1:9 (connection refused)" in res.err
        and "Traceback" not in res.all
    )
    assert (repo / "applied-ledger.jsonl").read_bytes() == b""


def test_no_manifests_is_a_warning(repo: Path) -> None:
    res = run_cli(["validate"], repo)
    assert res.code == 0 and "no manifests (*.yaml, *.yml) found here" in res.err


def test_bad_manifest_sends_nothing_and_writes_no_ledger(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["bad id"]))
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 1 and "manifests/a.yaml:9:" in res.err
    assert em.world.log == [] and (repo / "applied-ledger.jsonl").read_bytes() == b""


def test_ctrl_c_during_apply_starts_paused_pipelines_again(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    held = em.world.on_request("delete", times=None, hold=True)  # no delete is answered yet
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=[f"a{i}" for i in range(40)]))
    args = ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1", "--concurrency", "2"]
    proc = spawn_cli(args, repo, gateway_env(em), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    em.world.wait_for(lambda e: e["route"] == "delete", timeout=HANG)
    out = signal_until_heard(proc, signal.SIGINT, held)
    assert proc.returncode == 130, out
    assert em.world.status("p1") == "RUNNING"
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records if r.kind in ("pause", "resume")] == ["pause", "resume"]
    assert 0 < len(em.world.delete_log) <= 2, out  # the two in flight when Ctrl-C came, no more


def test_demo_runs_offline_and_leaves_the_cwd_alone(tmp_path: Path) -> None:
    res = run_cli(["demo"], tmp_path)
    assert res.code == 0, res.all
    assert "received 16 delete requests on the first apply and 0 on the second" in res.out
    # each RUNNING pipeline paused for its own requests only, fewest first, two at most at once
    assert re.search(
        r"paused, in the order the gateway saw: wind-alarm-capture [\d.]+s for 1 request, "
        r"solar-inverter-counters [\d.]+s for 4 requests, solar-inverter-last [\d.]+s for 9 requests; "
        r"at most 2 at once",
        " ".join(res.out.split()),
    ), res.out
    flat = " ".join(res.out.split())
    assert "paused by this run │ │ │ 3 pipelines" in flat
    assert flat.count("), paused ") == 3  # the summary says how long each one was paused
    assert "Apply complete." in res.out and "Nothing to apply." in res.out
    assert list(tmp_path.iterdir()) == []
    removed = re.search(r"Removed (\S+) \(`reconcile demo --keep` leaves it", flat)  # said, and so
    assert removed is not None and not Path(removed.group(1)).exists(), res.out


def test_usage_errors_exit_1_never_2(repo: Path) -> None:
    res = run_cli(["plan", "--detailed-exitcode", "--fromat", "json"], repo)
    assert res.code == 1 and "No such option" in res.all
    assert run_cli(["apply", "--concurrency", "0"], repo).code == 1


def test_debug_is_accepted_after_the_command_too(repo: Path) -> None:
    (repo / "dir.jsonl").mkdir()
    for args in (["--debug", "plan", "--ledger", "dir.jsonl"], ["plan", "--ledger", "dir.jsonl", "--debug"]):
        res = run_cli(args, repo)
        assert res.code == 1 and "Traceback" in res.err, args
    assert "Traceback" not in run_cli(["plan", "--ledger", "dir.jsonl"], repo).err


def test_switches_show_no_value_placeholder_in_help(tmp_path: Path) -> None:
    text = run_cli(["plan", "--help"], tmp_path).out
    assert "--detailed-exitcode" in text and "<bool>" not in text


def test_a_bug_is_exit_3_with_a_request_to_report(repo: Path, monkeypatch: Any) -> None:
    from reconciler import operations

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(operations, "plan", broken)
    res = run_cli(["plan"], repo)
    assert res.code == 3 and "unexpected error (ZeroDivisionError: boom); please report" in res.err
    assert "Traceback" not in res.err
    assert "Traceback" in run_cli(["plan", "--debug"], repo).err


def test_apply_refuses_a_missing_ledger_and_plan_warns(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["apply", "--auto-approve", "--ledger", "applied_ledger.jsonl"], repo, gateway_env(em))
    assert res.code == 1 and "applied_ledger.jsonl does not exist: nothing was sent" in res.err
    assert "Check --ledger, RECONCILE_LEDGER or ledger.path in reconcile.yaml" in res.err
    assert em.world.log == [] and not (repo / "applied_ledger.jsonl").exists()
    assert not (repo / "applied_ledger.jsonl.lock").exists()  # refused before its lock: nothing made
    typo = run_cli(["apply", "--auto-approve", "--ledger", "ledgr/applied.jsonl"], repo, gateway_env(em))
    assert typo.code == 1 and "ledgr/applied.jsonl does not exist: nothing was sent" in typo.err
    assert not (repo / "ledgr").exists() and em.world.log == []  # no folder made for the typo
    planned = run_cli(["plan", "--ledger", "applied_ledger.jsonl"], repo)
    assert planned.code == 0 and "warning: applied_ledger.jsonl does not exist" in planned.err


def test_every_command_that_reads_a_missing_ledger_says_so_the_same_way(repo: Path) -> None:
    """One wording, with what was not done and where the path came from; exit 1, never "0
    records" or "nothing in doubt", which would read as settled."""
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    for command, what in (
        (["ledger", "show"], "nothing to show"),
        (["ledger", "verify"], "nothing to verify"),
        (["ledger", "resolve", "--auto-approve"], "nothing to resolve"),
        (["apply", "--auto-approve"], "nothing was sent"),
    ):
        res = run_cli([*command, "--ledger", "nope.jsonl"], repo)
        assert res.code == 1, res.all
        assert f"error: nope.jsonl does not exist: {what}" in res.err, res.all
        assert "Check --ledger, RECONCILE_LEDGER or ledger.path in reconcile.yaml" in res.err, res.all
    assert not (repo / "nope.jsonl").exists() and not (repo / "nope.jsonl.lock").exists()


def test_resolve_on_a_missing_ledger_says_so_and_makes_nothing(repo: Path) -> None:
    """Never "No in-doubt requests" for a ledger that is not there (a typo would read as settled)."""
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    for extra in ([], ["--start", "o1/p1"]):
        res = run_cli(["ledger", "resolve", "--auto-approve", "--ledger", "ledgr/x.jsonl", *extra], repo)
        assert res.code == 1, res.all
        assert "ledgr/x.jsonl does not exist: nothing to resolve\nCheck --ledger," in res.err, res.all
        assert not (repo / "ledgr").exists()


def test_no_gateway_is_reported_before_anything_is_asked_and_a_no_op_needs_none(
    repo: Path, make_emulator: Any
) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["apply"], repo)  # not even asked to approve: the missing gateway comes first
    assert res.code == 1 and "no gateway" in res.err and "no terminal to ask" not in res.err
    em = make_emulator(world_for([pipeline()]))
    assert run_cli(["apply", "--auto-approve"], repo, gateway_env(em)).code == 0
    res = run_cli(["apply", "--auto-approve"], repo)  # nothing left to apply: no credentials needed
    assert res.code == 0 and "Nothing to apply." in res.out, res.all


def test_uncommitted_manifests_are_recorded_and_refused_in_ci(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    commit_all(repo)
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"]))
    env = {**gateway_env(em), "HOME": str(repo)}
    res = run_cli(["apply", "--auto-approve"], repo, env)
    assert res.code == 1 and "uncommitted changes" in res.err and em.world.log == []
    assert run_cli(["apply", "--auto-approve", "--allow-dirty"], repo, env).code == 0
    records = L.read(repo / "applied-ledger.jsonl").records
    assert records and all(r.data["actor"]["gitDirty"] is True for r in records)


def test_an_untracked_saved_plan_is_not_a_dirty_manifest(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    commit_all(repo)
    env = {**gateway_env(em), "HOME": str(repo)}
    assert run_cli(["plan", "--out", "plan.json"], repo, env).code == 0  # untracked, in CI
    res = run_cli(["apply", "plan.json", "--auto-approve"], repo, env)
    assert res.code == 0, res.all
    assert all("gitDirty" not in r.data["actor"] for r in L.read(repo / "applied-ledger.jsonl").records)


def test_ledger_migrate_keeps_the_cells_and_the_plan(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"]))
    path = repo / "applied-ledger.jsonl"
    with L.LedgerWriter(L.read(path)) as w:  # a v1 ledger as older versions wrote it
        w.append("intent", cell_fields(point="pt1"))
    v1 = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in v1:
        rec["v"] = 1
        rec["assetIds"], rec["pointIds"] = rec["assetIds"].split(","), rec["pointIds"].split(",")
    prev = L.GENESIS
    lines = []
    for rec in v1:
        rec["prev"] = prev
        rec["hash"] = prev = L.record_hash(rec)
        lines.append(L.canonical(rec).decode())
    path.write_text("\n".join(lines) + "\n")
    before = run_cli(["plan", "--format", "json"], repo)
    res = run_cli(["ledger", "migrate"], repo)
    assert res.code == 0 and "format v3" in res.out and (repo / "applied-ledger.jsonl.v1.bak").exists()
    after = run_cli(["plan", "--format", "json"], repo)
    assert json.loads(after.out)["actions"] == json.loads(before.out)["actions"]
    assert "already in format v3" in run_cli(["ledger", "migrate"], repo).out


def test_emulator_on_a_taken_port_says_so_and_prints_no_banner(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run_cli(["emulator", "--port", str(port)], tmp_path)
    assert res.code == 1 and f"port {port} on 127.0.0.1 is in use; pass --port" in res.err
    assert "export" not in res.err and "Traceback" not in res.err


def test_ctrl_c_at_the_approval_prompt_exits_130_with_nothing_sent(
    repo: Path, make_emulator: Any, monkeypatch: Any
) -> None:
    import typer

    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))

    def ctrl_c(*_args: object, **_kwargs: object) -> str:
        raise typer.Abort()  # what click raises when Ctrl-C hits its prompt

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(typer, "prompt", ctrl_c)
    res = run_cli(["apply"], repo, gateway_env(em))
    assert res.code == 130 and "interrupted" in res.err
    assert [e for e in em.world.log if e["route"] == "delete"] == []


def test_every_command_that_asks_takes_auto_approve(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["ledger", "resolve"], repo)  # nothing in doubt: it does not ask
    assert res.code == 0 and "No in-doubt requests" in res.out
    for cmd in (["apply"], ["ledger", "resolve"]):
        assert "--auto-approve" in run_cli([*cmd, "--help"], repo).out, cmd


def test_ledger_show_refuses_filters_it_cannot_read(repo: Path) -> None:
    for args, why in (
        (["--since", "yesterday"], "yesterday"),
        (["--since", "2026-13-45"], "2026-13-45"),
        (["--kind", "deleted"], "did you mean 'delete'"),
    ):
        res = run_cli(["ledger", "show", *args], repo)
        assert res.code == 1 and why in res.err and "0 records" not in res.out, args
    assert run_cli(["ledger", "show", "--since", "7d"], repo).code == 0


def test_core_errors_get_this_commands_flag_and_no_other(repo: Path) -> None:
    from reconciler import ledger as L

    res = run_cli(["ledger", "show", "--since", "yesterday"], repo)
    assert res.code == 1 and "--since 'yesterday' is not a time" in res.err
    with L.LedgerLock(repo / "applied-ledger.jsonl", command="reconcile apply (the other one)"):
        migrate = run_cli(["ledger", "migrate"], repo)
        resolve = run_cli(["ledger", "resolve", "--yes"], repo)
    assert migrate.code == 1 and "Or pass --lock-timeout SECONDS" in migrate.err
    assert resolve.code == 1 and "locked" in resolve.err and "--lock-timeout" not in resolve.err


def test_ledger_show_of_a_mistyped_ledger_is_an_error_not_zero_records(repo: Path) -> None:
    res = run_cli(["ledger", "show", "--ledger", "applied-ledgr.jsonl"], repo)
    assert res.code == 1 and "applied-ledgr.jsonl does not exist" in res.err and "0 records" not in res.out


def test_apply_speaks_http_without_httpx_s_command_line_client(repo: Path, make_emulator: Any) -> None:
    """httpx's `httpx` command (click, pygments) is left out of reconcile's process, as
    httpx does when its cli extra is missing; httpx itself works as ever."""
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, "apply", "--auto-approve"],
        cwd=repo,
        env=cli_env(gateway_env(em)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "Apply complete" in proc.stdout, proc.stderr
    imported = set(proc.stderr.split()[-2000:])
    assert "httpx" in imported and len(em.world.delete_log) == 1
    assert {"click", "pygments", "rich.syntax"} & imported == set()


@pytest.mark.parametrize(("given", "seen"), [(None, "__all__"), ("", ""), ("logfire", "logfire")])
def test_pydantic_plugins_are_off_unless_the_variable_is_given(
    tmp_path: Path, given: str | None, seen: str
) -> None:
    """reconcile runs no pydantic plugin installed beside it (looking for one costs every
    run); PYDANTIC_DISABLE_PLUGINS, set to anything, is left as given."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    code = (
        "import atexit, os\n"
        "atexit.register(lambda: print(repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))))\n"
        "from reconciler.cli import main\n"
        "main(['validate'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == repr(seen), done.stderr


def _fleet_repo(repo: Path) -> Path:
    """A manifest of 30,000 assets: a JSON plan of 0.4 MB, more than a pipe holds (64 KiB)."""
    write(repo / "manifests/ids/fleet.txt", "".join(f"FLEET{i:06d}\n" for i in range(30_000)))
    write(
        repo / "manifests/fleet.yaml",
        manifest_yaml("fleet", points=["pt1", "pt2"]).replace(
            "assetIds: [a1, a2]", "assetIdsFile: ids/fleet.txt"
        ),
    )
    return repo


def test_a_plan_process_ends_with_its_output_and_file_whole_and_its_exit_code(repo: Path) -> None:
    """`python -m reconciler plan` ends without tearing the interpreter down (cli._app._end_now):
    stdout, the `--out` file and the exit code are what the same plan gives in this process,
    whole; a plan that fails says why and exits 1."""
    _fleet_repo(repo)
    args = ["plan", "--format", "json", "--detailed-exitcode"]
    res = run_cli_process([*args, "--out", "saved.json"], repo)
    assert res.code == 2, res.err
    same = run_cli(args, repo)
    assert same.code == 2 and len(res.out) > 400_000 and json.loads(res.out) == json.loads(same.out)
    saved = json.loads((repo / "saved.json").read_text())
    assert saved["planHash"] == json.loads(res.out)["planHash"] and len(saved["actions"]) == 30
    assert res.err == "Saved plan to saved.json (plan hash " + saved["planHash"] + ")\n"
    text = run_cli_process(["plan"], repo)
    assert text.code == 0 and text.out == run_cli(["plan"], repo).out and "60,000 cells" in text.out
    failed = run_cli_process([*args, "--target", "nope"], repo)
    assert (failed.code, failed.out) == (1, "")
    assert failed.err.strip().endswith("--target: no manifest is named nope")


# Runs the CLI from its entry point as `python -m reconciler` does (no argv given), in a
# process that registers an atexit function and holds, as a module, an object whose __del__
# tells that the interpreter was torn down; with "thread", a thread that is still running as it
# ends (it waits for the main thread, which an ordinary exit lets go of before it joins the
# others: a sleep would end first when the plan is slow, on a loaded machine).
_END_PROBE = (
    "import atexit, os, sys, threading\n"
    "class Probe:\n"
    "    def __del__(self, write=os.write):  # os is gone by then\n"
    "        write(2, b'torn down\\n')\n"
    "sys.modules['_end_probe'] = Probe()  # freed when the modules are\n"
    "atexit.register(lambda: print('atexit ran', end=''))  # left in stdout's buffer\n"
    "if sys.argv[1] == 'thread':\n"
    "    del sys.argv[1]\n"
    "    end = lambda m=threading.main_thread(): (m.join(), os.write(2, b'thread done\\n'))\n"
    "    threading.Thread(target=end).start()\n"
    "sys.argv[0] = 'reconcile'\n"
    "from reconciler.cli import main\n"
    "main()\n"
)


@pytest.mark.parametrize(
    ("args", "code", "torn_down"),
    [
        (["plan", "--format", "json"], 0, False),
        (["plan", "--detailed-exitcode"], 2, False),
        (["plan", "--target", "nope"], 1, True),  # an error takes the ordinary exit
        (["thread", "plan", "--format", "json"], 0, True),  # as does a thread still running
        (["validate"], 0, True),  # as does any other command
    ],
    ids=["json", "detailed", "error", "thread", "validate"],
)
def test_a_plan_process_skips_only_the_teardown(
    repo: Path, args: list[str], code: int, torn_down: bool
) -> None:
    """A plan that succeeds ends its process without tearing the interpreter down, after
    its atexit functions; an error, a running thread or another command ends as usual."""
    _fleet_repo(repo)
    proc = subprocess.run(
        [sys.executable, "-c", _END_PROBE, *args],
        cwd=repo,
        env={k: v for k, v in cli_env().items() if k != "PYTHONUNBUFFERED"},  # stdout buffered
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.endswith("atexit ran") and ("torn down\n" in proc.stderr) is torn_down
    assert ("thread done\n" in proc.stderr) is (args[0] == "thread")
    if args[-1] == "json":
        assert json.loads(proc.stdout.removesuffix("atexit ran"))["summary"]["pendingCells"] == 60_000
