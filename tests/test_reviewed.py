"""Reviewed is what gets applied (DESIGN, invariants 12 and 13): real git, bare remotes.

Every way around the pull request a new platform team found: a ledger cut, emptied or
forged on main, a force-pushed or deleted branch, a reconcile.yaml that moves the ledger
or turns git off, a planted lease, a workstation applying what nobody reviewed, and a
pull request that edits the ledger. Each is refused before any call, and says how to
put things right.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    gateway_env,
    git,
    manifest_yaml,
    person,
    pipeline,
    remote_bytes,
    remote_records,
    run_cli,
    world_for,
    write,
)

from reconciler import manifests

ANCHOR = "refs/reconcile/anchor"


def make_origin(tmp_path: Path, branch: str = "main", *, forward_only: bool = True) -> Path:
    files = {
        "reconcile.yaml": LEDGER_IN_GIT.format(branch=branch),
        "manifests/a.yaml": manifest_yaml("a", assets=["a1", "a2", "a3"], points=["x", "y"]),
        LEDGER: "",
    }
    config = {"receive.denyNonFastForwards": "true"} if forward_only else {}
    return bare_origin(tmp_path, files, config=config)


def applied_once(origin: Path, tmp_path: Path, em: Any, name: str = "runner1") -> Path:
    runner = clone(origin, tmp_path / name)
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 0, res.all
    return runner


def as_a_person(origin: Path, tmp_path: Path, name: str, change: Any, branch: str = "main") -> str:
    """A person's commit on `branch` (a merged pull request); its sha."""
    work = clone(origin, tmp_path / name)
    if branch != "main":
        git(work, "checkout", "-q", branch)
    change(work)
    git(work, "add", "-A", env=person())
    git(work, "commit", "-qm", f"{name}", env=person())
    git(work, "push", "-q", "origin", f"HEAD:{branch}", env=person())
    return git(work, "rev-parse", "HEAD")


def no_calls(em: Any, deletes_before: int) -> None:
    assert len(em.world.delete_log) == deletes_before
    assert not [e for e in em.world.log if e["route"] == "operate"]


@pytest.fixture
def em(make_emulator: Any) -> Any:
    return make_emulator(world_for([pipeline()]))


# --- the ledger only grows ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["emptied", "last record cut", "forged pause", "forged delete", "rewritten"])
def test_a_ledger_changed_by_a_merged_commit_is_refused_until_restored(
    how: str, tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    deletes = len(em.world.delete_log)

    def change(work: Path) -> None:
        led = work / LEDGER
        lines = led.read_bytes().splitlines(keepends=True)
        if how == "emptied":
            led.write_bytes(b"")
        elif how == "last record cut":
            led.write_bytes(b"".join(lines[:-1]))
        elif how == "rewritten":
            led.write_bytes(lines[0].replace(b'"a1', b'"zz') + b"".join(lines[1:]))
        else:  # a valid chain, appended by a person: `reconcile ledger` would accept it alone
            from reconciler import ledger as L

            kind = "pause" if how == "forged pause" else "delete"
            fields = (
                {"orgId": "o1", "pipelineId": "p9", "executionMode": 1, "kafkaRate": 999999}
                if kind == "pause"
                else {
                    "manifest": "a",
                    "orgId": "o1",
                    "pipelineId": "p1",
                    "stageInstanceName": "s1",
                    "assetIds": ["a1"],
                    "pointIds": ["x"],
                }
            )
            with L.LedgerWriter(L.read(led)) as writer:
                writer.append(kind, fields)

    culprit = as_a_person(origin, tmp_path, "pr", change)
    runner = clone(origin, tmp_path / "runner2")
    for args in (["apply", "--auto-approve"], ["plan"]):
        res = run_cli(args, runner, gateway_env(em))
        assert res.code == 1, res.all
        assert "is not the ledger reconcile last published" in res.err
        assert f"commit {culprit[:12]}" in res.err  # the commit that changed it
        assert "reconcile ledger restore" in res.err and "Nothing was planned or sent" in res.err
        expected = {
            "emptied": "records 1..2 were cut",
            "last record cut": "records 2..2 were cut",
            "forged pause": "records 3..3 were appended by someone other than reconcile",
            "forged delete": "records 3..3 were appended by someone other than reconcile",
            "rewritten": "rewritten (applied-ledger.jsonl:1: differs",
        }[how]
        assert expected in res.err
    no_calls(em, deletes)

    res = run_cli(["ledger", "restore", "--auto-approve"], runner)
    assert res.code == 0, res.all
    assert "restored" in res.out
    after = clone(origin, tmp_path / "runner3")
    res = run_cli(["apply", "--auto-approve"], after, gateway_env(em))
    assert res.code == 0, res.all
    assert "Nothing to apply." in res.out
    no_calls(em, deletes)
    assert [r["kind"] for r in remote_records(origin)] == ["intent", "delete"]


def test_a_force_pushed_main_is_refused_from_a_shallow_clone(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path, forward_only=False)
    seed = git(tmp_path, "--git-dir", str(origin), "rev-parse", "main")
    applied_once(origin, tmp_path, em)
    git(tmp_path, "--git-dir", str(origin), "update-ref", "refs/heads/main", seed)  # a force-push
    runner = clone(origin, tmp_path / "shallow", "--depth", "1")
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 1, res.all
    assert "records 1..2 were cut" in res.err and "force-pushed" in res.err
    assert len(em.world.delete_log) == 1


@pytest.mark.parametrize("how", ["deleted", "force-pushed"])
def test_the_dedicated_ledger_branch_deleted_or_force_pushed_is_refused(
    how: str, tmp_path: Path, home: Path, em: Any
) -> None:
    branch = "reconcile/ledger"
    origin = make_origin(tmp_path, branch, forward_only=False)
    applied_once(origin, tmp_path, em)
    bare = ["--git-dir", str(origin)]
    if how == "deleted":
        git(tmp_path, *bare, "update-ref", "-d", f"refs/heads/{branch}")
    else:
        first = git(tmp_path, *bare, "rev-list", "--max-parents=0", f"refs/heads/{branch}")
        git(tmp_path, *bare, "update-ref", f"refs/heads/{branch}", first)
    runner = clone(origin, tmp_path / "runner2")
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 1, res.all
    assert ("does not exist" if how == "deleted" else "were cut") in res.err
    assert len(em.world.delete_log) == 1
    assert run_cli(["ledger", "restore", "--auto-approve"], runner).code == 0
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all


def test_reconcile_yaml_cannot_start_the_ledger_over(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)

    def new_path(work: Path) -> None:
        write(
            work / "reconcile.yaml", LEDGER_IN_GIT.format(branch="main").replace("applied-ledger", "ledger2")
        )
        write(work / "ledger2.jsonl", "")

    as_a_person(origin, tmp_path, "move", new_path)
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert res.code == 1, res.all
    assert "moved the ledger" in res.err and "without its history" in res.err
    assert len(em.world.delete_log) == 1

    def carried(work: Path) -> None:  # the reviewed way: the file moves with its history
        git(work, "mv", "-f", LEDGER, "ledger2.jsonl")

    as_a_person(origin, tmp_path, "carry", carried)
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert "moved from main:applied-ledger.jsonl to main:ledger2.jsonl" in res.all


def test_a_branch_flipped_and_back_is_refused(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    flip = lambda branch: lambda w: write(w / "reconcile.yaml", LEDGER_IN_GIT.format(branch=branch))  # noqa: E731
    as_a_person(origin, tmp_path, "flip", flip("reconcile/ledger"))
    # The new branch starts from the ledger main holds, which is the anchored one: allowed.
    write_manifest = lambda w: write(w / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))  # noqa: E731
    as_a_person(origin, tmp_path, "b", write_manifest)
    applied_once(origin, tmp_path, em, "runner2")
    assert len(em.world.delete_log) == 2
    as_a_person(origin, tmp_path, "back", flip("main"))  # main's copy lacks b's records
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 1, res.all
    assert "moved the ledger" in res.err or "were cut" in res.err
    assert len(em.world.delete_log) == 2


def test_turning_git_off_is_flagged_in_the_pull_request_and_refused_after_merge(
    tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)

    def off(work: Path) -> None:
        write(
            work / "reconcile.yaml",
            LEDGER_IN_GIT.format(branch="main").replace("enabled: true", "enabled: false"),
        )

    work, base = pull_request(origin, tmp_path, off)
    res = run_cli(["plan", "--format", "markdown", "--base", base], work)
    assert "where the ledger is kept: applied-ledger.jsonl on origin/main (lease 120s) -> " in res.out
    assert "applied-ledger.jsonl, not in git (once merged, every apply is refused" in res.out
    as_a_person(origin, tmp_path, "off", off)
    for name, env in (("ci", {"CI": "true"}), ("workstation", {})):
        runner = clone(origin, tmp_path / name)
        write(runner / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))  # not even committed
        res = run_cli(["apply", "--auto-approve"], runner, {**gateway_env(em), **env})
        assert res.code == 1, res.all
        assert "turns ledger.git off" in res.err and ANCHOR in res.err
    assert len(em.world.delete_log) == 1


@pytest.mark.parametrize("lease", ['{"until": "tomorrow"}', '{"run": "x", "until": NaN}', "garbage"])
def test_a_planted_lease_is_an_error_naming_the_file_and_commit(
    lease: str, tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    culprit = as_a_person(origin, tmp_path, "plant", lambda w: write(w / f"{LEDGER}.lease", lease + "\n"))
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert res.code == 1, res.all
    assert f"{LEDGER}.lease" in res.err and culprit[:12] in res.err
    assert "Traceback" not in res.all and len(em.world.delete_log) == 1


def test_apply_from_a_subdirectory_with_another_spelling_still_syncs(
    tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    runner = clone(origin, tmp_path / "runner1")
    args = ["apply", ".", "--ledger", f"../{LEDGER}", "--auto-approve"]
    res = run_cli(args, runner / "manifests", gateway_env(em))
    assert res.code == 0, res.all
    assert [r["kind"] for r in remote_records(origin)] == ["intent", "delete"]  # pushed, not skipped
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert len(em.world.delete_log) == 1


# --- only what was reviewed --------------------------------------------------------------


@pytest.mark.parametrize("how", ["uncommitted", "untracked", "unpushed commit", "another branch"])
def test_a_workstation_cannot_apply_what_nobody_reviewed(
    how: str, tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "laptop")
    b = manifest_yaml("b", assets=["b1"])
    if how == "uncommitted":
        write(
            work / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3", "a4"], points=["x", "y"])
        )
    elif how == "untracked":
        write(work / "manifests/b.yaml", b)
    else:
        if how == "another branch":
            git(work, "checkout", "-q", "-b", "feature")
        write(work / "manifests/b.yaml", b)
        git(work, "add", ".", env=person())
        git(work, "commit", "-qm", "b", env=person())
        if how == "another branch":
            git(work, "push", "-q", "origin", "feature", env=person())
    before = remote_bytes(origin)
    res = run_cli(["apply", "--auto-approve"], work, gateway_env(em))  # no CI=true: a workstation
    assert res.code == 1, res.all
    assert "Nothing was sent" in res.err or "nothing was sent" in res.err
    assert ("no commit holds" if how in ("uncommitted", "untracked") else "is not on origin/main") in res.err
    assert em.world.delete_log == [] and remote_bytes(origin) == before


def test_break_glass_is_recorded_in_every_record(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "laptop")
    write(work / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))
    res = run_cli(["apply", "--auto-approve", "--allow-unreviewed"], work, gateway_env(em))
    assert res.code == 0, res.all
    assert "may not be on the remote's branch, as allowed; every record" in res.all
    assert 'says "unreviewed": true (--allow-unreviewed)' in res.all  # the note's hint, in CLI words
    records = remote_records(origin)
    assert records and all(r["actor"].get("unreviewed") is True for r in records)
    shown = run_cli(["ledger", "show"], work)
    assert shown.code == 0 and shown.out.count("UNREVIEWED") == len(records)


# --- the pull request's plan job ---------------------------------------------------------


def pull_request(origin: Path, tmp_path: Path, change: Any) -> tuple[Path, str]:
    """A pull request's checkout: a branch off main with `change`; and its base."""
    work = clone(origin, tmp_path / "pr")
    base = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "pr")
    change(work)
    git(work, "add", "-A", env=person())
    git(work, "commit", "-qm", "pr", env=person())
    return work, base


@pytest.mark.parametrize("what", [LEDGER, f"{LEDGER}.lease"])
def test_the_plan_job_fails_a_pull_request_that_touches_the_ledger(
    what: str, tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    work, base = pull_request(origin, tmp_path, lambda w: write(w / what, ""))
    res = run_cli(["plan", "--base", base], work)
    assert res.code == 1, res.all
    assert (
        f"this pull request changes {'its lease file' if what.endswith('lease') else 'the ledger'}" in res.err
    )
    # GitLab's own variable finds the base without the flag
    res = run_cli(["plan"], work, {"CI_MERGE_REQUEST_DIFF_BASE_SHA": base})
    assert res.code == 1 and "this pull request changes" in res.err, res.all


def test_a_pull_request_that_leaves_the_ledger_alone_plans(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    work, base = pull_request(origin, tmp_path, lambda w: write(w / "manifests/b.yaml", manifest_yaml("b")))
    github_event = tmp_path / "event.json"
    github_event.write_text(json.dumps({"pull_request": {"base": {"sha": base}}}))
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(github_event)}
    res = run_cli(["plan", "--detailed-exitcode"], work, env)
    assert res.code == 2, res.all  # b is pending; a is applied (the anchored ledger, not a stale copy)
    assert "# b" in res.out and "up to date (6 cells applied)" in res.out
    assert f"Ledger: {LEDGER}" in res.out  # the ledger's own name, not the copy read from git


def test_a_remote_url_with_a_token_is_never_printed(tmp_path: Path, home: Path, em: Any) -> None:
    origin = make_origin(tmp_path)
    runner = clone(origin, tmp_path / "runner")
    url = "https://ci-bot:s3cr3t-t0ken@127.0.0.1:9/team/manifests.git"  # nothing listens on port 9
    write(
        runner / "reconcile.yaml",
        LEDGER_IN_GIT.format(branch="main").replace("remote: origin", f"remote: '{url}'"),
    )
    git(runner, "commit", "-qam", "remote as a URL", env=person())
    for args in (["apply", "--auto-approve"], ["plan"], ["ledger", "restore", "--auto-approve"]):
        res = run_cli(args, runner, gateway_env(em))
        assert res.code == 1, res.all  # a token in the committed reconcile.yaml is refused outright
        assert "s3cr3t-t0ken" not in res.all
        assert "ledger.git.remote: must not carry a password or token" in res.all
    assert em.world.delete_log == []


GATEWAYS = """\
gateways:
  - {url: "GATEWAY", appKeyEnv: ENOS_APP_KEY, appSecretEnv: ENOS_APP_SECRET}
"""


def test_a_pull_request_cannot_choose_where_credentials_go(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    real = make_emulator(world_for([pipeline()]))
    rogue = make_emulator(world_for([pipeline()]))
    config = LEDGER_IN_GIT.format(branch="main") + GATEWAYS.replace("GATEWAY", real.url)
    origin = bare_origin(
        tmp_path,
        {"reconcile.yaml": config, "manifests/a.yaml": manifest_yaml("a", assets=["a1"]), LEDGER: ""},
    )
    moved = config.replace(real.url, rogue.url).replace("appKeyEnv: ENOS_APP_KEY", "appKeyEnv: OTHER_KEY")
    work, base = pull_request(origin, tmp_path, lambda w: write(w / "reconcile.yaml", moved))
    env = {**gateway_env(real), "OTHER_KEY": "k2"}
    env.pop("ENOS_API_GATEWAY", None)
    res = run_cli(["plan", "--refresh", "--format", "markdown", "--base", base], work, env)
    assert res.code == 0, res.all
    assert res.out.startswith("> [!CAUTION]") and "changes where credentials are sent" in res.out
    shown = f"{real.url} with $ENOS_APP_KEY/$ENOS_APP_SECRET -> {rogue.url} with $OTHER_KEY"
    assert shown.replace("$", "\\$") in res.out  # `$` escaped: GitHub reads `$...$` as math
    assert [e for e in rogue.world.log] == []  # the pull request's gateway got nothing
    assert real.world.log  # the base's gateway was asked


def test_an_app_key_variable_that_names_a_secret_is_a_config_error(tmp_path: Path) -> None:
    config = LEDGER_IN_GIT.format(branch="main") + GATEWAYS.replace("GATEWAY", "https://gw.example").replace(
        "appKeyEnv: ENOS_APP_KEY", "appKeyEnv: ENOS_APP_SECRET"
    )
    write(tmp_path / "reconcile.yaml", config)
    write(tmp_path / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["plan"], tmp_path)
    assert res.code == 1, res.all
    assert "reconcile.yaml:7:" in res.err and "appKeyEnv: ENOS_APP_SECRET names a secret" in res.err


def test_ledger_migrate_in_git_is_published_and_the_next_apply_accepts_it(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    from reconciler import ledger as L

    assets = [f"asset-{i:03d}" for i in range(4)]
    prev, lines = L.GENESIS, []
    key = {"manifest": "m", "orgId": "o1", "pipelineId": "p1", "stageInstanceName": "s1"}
    for seq, rec in enumerate(
        [
            {"kind": "intent", **key, "assetIds": assets, "pointIds": ["x"]},
            {"kind": "delete", **key, "assetIds": assets, "pointIds": ["x"]},
        ],
        start=1,
    ):
        full = {
            "v": 1,
            "seq": seq,
            "at": "2026-11-27T10:00:00.000Z",
            **rec,
            "actor": {"user": "ci"},
            "prev": prev,
        }
        full["hash"] = prev = L.record_hash(full)
        lines.append(L.canonical(full).decode() + "\n")
    origin = bare_origin(
        tmp_path,
        {
            "reconcile.yaml": LEDGER_IN_GIT.format(branch="main"),
            "manifests/m.yaml": manifest_yaml("m", assets=assets, points=["x"]),
            LEDGER: "".join(lines),
        },
    )
    res = run_cli(["ledger", "migrate"], clone(origin, tmp_path / "laptop"))
    assert res.code == 0, res.all
    assert "Published to origin/main" in res.out
    assert all(r["v"] >= 2 for r in remote_records(origin))
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert em.world.delete_log == []


def test_a_ledger_with_stored_id_lists_travels_whole_through_git(tmp_path: Path, home: Path, em: Any) -> None:
    """Format v3 keeps long ID lists in <ledger>.d/ids/: they are pushed, anchored, fetched
    by a fresh shallow clone, and guarded like the main file."""
    fleet = [f"asset-{i:03d}" for i in range(60)]  # a list too long to stay inline
    origin = bare_origin(
        tmp_path,
        {
            "reconcile.yaml": LEDGER_IN_GIT.format(branch="main"),
            "manifests/fleet.yaml": manifest_yaml("fleet", assets=fleet, points=["x"]),
            LEDGER: "",
        },
    )
    applied_once(origin, tmp_path, em)
    tree = git(tmp_path, "--git-dir", str(origin), "ls-tree", "-r", "--name-only", "main").split()
    lists = [p for p in tree if p.startswith(f"{LEDGER}.d/ids/")]
    assert lists, tree
    anchored = git(tmp_path, "--git-dir", str(origin), "ls-tree", "-r", "--name-only", ANCHOR).split()
    assert set(lists) <= set(anchored)
    shallow = clone(origin, tmp_path / "shallow", "--depth", "1")
    assert run_cli(["plan", "--detailed-exitcode"], shallow).code == 0
    res = run_cli(["apply", "--auto-approve"], shallow, gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all

    work, base = pull_request(origin, tmp_path, lambda w: (w / lists[0]).unlink())
    res = run_cli(["plan", "--base", base], work)
    assert res.code == 1 and "this pull request changes the ledger" in res.err, res.all
    shell(work, res.err.split("Drop the change: ", 1)[1].splitlines()[0])  # as the message says
    assert run_cli(["plan", "--base", base], work).code == 0

    culprit = as_a_person(origin, tmp_path, "drop-list", lambda w: (w / lists[0]).unlink())
    runner = clone(origin, tmp_path / "runner3")
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 1 and "is not the ledger reconcile last published" in res.err, res.all
    assert f"in commit {culprit[:12]}" in res.err  # a segment's or list's commit is named too
    assert len(em.world.delete_log) == 1
    shell(runner, res.err.split("or by hand: ", 1)[1].splitlines()[0])  # the fix the message gives
    git(runner, "commit", "-qam", "put the ledger back", env=person())
    git(runner, "push", "-q", "origin", "HEAD:main", env=person())
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner4"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert len(em.world.delete_log) == 1


def shell(cwd: Path, line: str) -> None:
    """Run a command line a message printed, as a person would paste it."""
    subprocess.run(["sh", "-c", line], cwd=cwd, env=person(), check=True, capture_output=True)


def test_a_deleted_anchor_does_not_let_a_cut_ledger_through(tmp_path: Path, home: Path, em: Any) -> None:
    """The anchor ref deleted (or not copied with the repository) and the ledger emptied: the
    branch's own history still shows the records, so nothing is cleared again."""
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    git(tmp_path, "--git-dir", str(origin), "update-ref", "-d", ANCHOR)
    culprit = as_a_person(origin, tmp_path, "empty", lambda w: (w / LEDGER).write_text(""))
    res = run_cli(
        ["apply", "--auto-approve"], clone(origin, tmp_path / "runner2", "--depth", "1"), gateway_env(em)
    )
    assert res.code == 1, res.all
    assert f"has no anchor ({ANCHOR} is missing" in res.err and "records were cut" in res.err
    assert culprit[:12] not in res.err  # it names the version to put back, the one before the cut
    assert len(em.world.delete_log) == 1
    runner = clone(origin, tmp_path / "runner3")
    shell(runner, res.err.split("(then commit and push): ", 1)[1].splitlines()[0])  # pasted as printed
    git(runner, "commit", "-qam", "put the ledger back", env=person())
    git(runner, "push", "-q", "origin", "HEAD:main", env=person())
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner4"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert len(em.world.delete_log) == 1


def test_a_ledger_in_segments_travels_and_is_anchored_file_by_file(
    tmp_path: Path, home: Path, em: Any
) -> None:
    """Sealed segments of older runs (another pipeline) in git: applies push only the segment
    appended to (the anchor is the last one's tree plus what changed), a fresh shallow clone
    accepts the result, and plans skim the old segments."""
    from reconciler import ledger as L
    from reconciler.plan import skim

    def seed(work: Path) -> None:
        write(work / "reconcile.yaml", LEDGER_IN_GIT.format(branch="main"))
        write(work / "manifests" / "a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=["x"]))
        old = {"orgId": "o1", "pipelineId": "p9", "stageInstanceName": "s9"}
        with L.LedgerWriter(L.read(work / LEDGER), segment_bytes=1_500) as w:
            for run in range(6):
                w.append("pause", {"orgId": "o1", "pipelineId": "p9", "executionMode": 1, "kafkaRate": 1})
                for n in range(3):
                    cells = {**old, "manifest": f"old-{run}", "assetIds": [f"a{n}"], "pointIds": ["x"]}
                    w.append_delete(w.append("intent", cells))
                w.append("resume", {"orgId": "o1", "pipelineId": "p9"})
                w.new_run()

    origin = bare_origin(tmp_path, seed)
    runner = applied_once(origin, tmp_path, em)
    segments = sorted((runner / f"{LEDGER}.d" / "segments").glob("*.jsonl"))
    assert len(segments) >= 3
    as_a_person(
        origin,
        tmp_path,
        "more",
        lambda w: write(w / "manifests" / "b.yaml", manifest_yaml("b", assets=["a3"], points=["x"])),
    )
    applied_once(origin, tmp_path, em, "runner2")

    def tree(ref: str) -> dict[str, str]:
        out = git(tmp_path, "--git-dir", str(origin), "ls-tree", "-r", ref).splitlines()
        return {
            line.split("\t")[1]: line.split()[2] for line in out if line.split("\t")[1].startswith(LEDGER)
        }

    branch, anchored = tree("main"), tree(ANCHOR)
    assert branch == anchored and len(branch) >= len(segments) + 1  # file for file, blob for blob
    changed = git(tmp_path, "--git-dir", str(origin), "diff-tree", "--name-only", "-r", f"{ANCHOR}^", ANCHOR)
    tail = f"{LEDGER}.d/segments/{segments[-1].name}"
    assert set(changed.split()) <= {tail, f"{LEDGER}.lease"}, changed  # sealed segments not written again
    shallow = clone(origin, tmp_path / "shallow", "--depth", "1")
    assert run_cli(["plan", "--detailed-exitcode"], shallow).code == 0
    res = run_cli(["ledger", "verify"], shallow)
    assert res.code == 0 and "seals and their summaries checked" in res.out, res.all
    declared = manifests.load_or_raise([str(shallow / "manifests")]).manifests
    assert L.read(shallow / LEDGER, skim=skim(declared)).skimmed  # the old runs are not parsed
    assert len(em.world.delete_log) == 2


def test_ledger_show_and_report_read_the_branch_not_a_checkout_behind(
    tmp_path: Path, home: Path, em: Any
) -> None:
    origin = make_origin(tmp_path)
    behind = clone(origin, tmp_path / "behind")  # cloned before anything was applied
    applied_once(origin, tmp_path, em)
    assert (behind / LEDGER).read_bytes() == b""
    res = run_cli(["ledger", "show", "--format", "json"], behind)
    assert res.code == 0, res.all
    shown = json.loads(res.out)
    records = shown["records"] if isinstance(shown, dict) else shown
    assert [r["kind"] for r in records] == ["intent", "delete"]
    report = run_cli(["ledger", "report", "--out", "-"], behind)
    assert report.code == 0 and '"records":2,' in report.out, report.err  # the branch's two records
    git(behind, "remote", "set-url", "origin", str(tmp_path / "gone.git"))  # unreachable: the local file
    res = run_cli(["ledger", "show", "--format", "json"], behind)
    assert "cannot read the ledger from" in res.err and res.code == 0, res.all


def test_uncommitted_reconcile_yaml_alone_is_named(tmp_path: Path, home: Path, em: Any) -> None:
    """The trial: a changed reconcile.yaml alone was reported as "the manifests have changes"."""
    work = clone(make_origin(tmp_path), tmp_path / "laptop")
    with (work / "reconcile.yaml").open("a") as f:
        f.write("# an edit\n")
    res = run_cli(["apply", "--auto-approve"], work, gateway_env(em))
    assert res.code == 1, res.all
    assert "error: reconcile.yaml has changes no commit holds" in res.err, res.err
    assert "manifests have" not in res.err
    no_calls(em, 0)
    write(work / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))
    res = run_cli(["apply", "--auto-approve"], work, gateway_env(em))
    assert res.code == 1 and "2 files have changes no commit holds" in res.err, res.all
    assert " M reconcile.yaml" in res.err and "?? manifests/b.yaml" in res.err


def test_a_target_outside_the_repository_is_named_not_left_to_git(
    tmp_path: Path, home: Path, em: Any
) -> None:
    """The trial: `apply ../x.json` gave git's "'../x.json' is outside repository"."""
    work = clone(make_origin(tmp_path), tmp_path / "laptop")
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere/b.yaml", manifest_yaml("b", assets=["b1"]))
    res = run_cli(["apply", "--auto-approve", "../x.json"], work, gateway_env(em))
    assert res.code == 1, res.all
    assert "error: ../x.json: no such file or directory; nothing was sent" in res.err, res.err
    res = run_cli(["apply", "--auto-approve", "../elsewhere"], work, gateway_env(em))
    assert res.code == 1, res.all
    assert f"../elsewhere is outside this repository ({work.resolve()})" in res.err, res.err
    assert "git status" not in res.all and "outside repository" not in res.all
    no_calls(em, 0)
    res = run_cli(["plan", "--out", "../x.json"], work)  # a saved plan may be kept anywhere
    assert res.code == 0, res.all
    res = run_cli(["apply", "--auto-approve", "../x.json"], work, gateway_env(em))
    assert res.code == 0, res.all
