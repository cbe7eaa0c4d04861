"""Bad input gets a clear error (issue 27 item 7): exit 1 naming what is wrong, never exit 3
("a bug") or a hang, and memory bounded: each case of the issue's sweep that failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

NESTED = "[" * 100_000 + "]" * 100_000


def refused(res: Any, *words: str) -> None:
    assert res.code == 1, res.all
    assert "unexpected error" not in res.err and "Traceback" not in res.err, res.err
    for w in words:
        assert w in res.err, res.all


def test_a_5000_digit_number_in_a_manifest(repo: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m", org="9" * 5000))
    refused(run_cli(["validate"], repo), "manifests/m.yaml:6:10: a number of 5,000 characters is too long")
    write(repo / "reconcile.yaml", f"apply:\n  maxCells: {'9' * 5000}\n")
    refused(run_cli(["plan"], repo), "reconcile.yaml:2:13: a number of 5,000 characters is too long")


@pytest.mark.parametrize("since", ["9999999d", "9" * 5000 + "d"])
def test_since_before_the_year_1(repo: Path, since: str) -> None:
    refused(run_cli(["ledger", "show", "--since", since], repo), "reaches back before the year 1")


def test_deeply_nested_json_everywhere(repo: Path, tmp_path: Path) -> None:
    write(repo / "nested.json", NESTED)
    refused(
        run_cli(["apply", "nested.json"], repo),
        "nested.json: not a plan file (invalid JSON: nested too deeply)",
    )
    refused(
        run_cli(["ledger", "verify", "--snapshot", "nested.json"], repo), "nested.json:1: not a JSON line"
    )
    refused(run_cli(["emulator", "--state", "nested.json"], repo), "nested too deeply to be a world state")
    event = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(repo / "nested.json")}
    refused(run_cli(["plan"], repo, event), "GITHUB_EVENT_PATH", "not a JSON event (nested too deeply)")
    write(repo / "deep.json", '{"pull_request":' * 50_000 + "1" + "}" * 50_000)
    event["GITHUB_EVENT_PATH"] = str(repo / "deep.json")
    refused(run_cli(["plan", "--format", "markdown"], repo, event), "not a JSON event")


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (
            ["ledger", "show", "--ledger", "/dev/zero"],
            {},
            "/dev/zero: cannot read ledger: not a regular file",
        ),
        (["plan", "--ledger", "/dev/zero"], {}, "not a regular file (a character device)"),
        (["ledger", "verify", "--ledger", "/dev/zero"], {}, "not a regular file"),
        (["plan", "--config", "/dev/zero"], {}, "/dev/zero: cannot read the config file: not a regular file"),
        (
            ["ledger", "verify", "--snapshot", "/dev/zero"],
            {},
            "/dev/zero: cannot read the snapshot",
        ),
        (
            ["plan"],
            {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/dev/zero"},
            "GITHUB_EVENT_PATH /dev/zero: cannot read the event: not a regular file",
        ),
    ],
)
def test_dev_zero_is_refused_never_read(repo: Path, args: list[str], env: dict[str, str], words: str) -> None:
    refused(run_cli(args, repo, env), words)


def test_a_snapshot_to_dev_zero_is_refused_before_any_call(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="PAUSED")]))
    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    res = run_cli(["apply", "--auto-approve", "--snapshot", "/dev/zero"], repo, gateway_env(em))
    # refused by its name before its kind: apply appends JSON lines, so only a .jsonl file of its own
    refused(res, "--snapshot /dev/zero: it must name a JSON Lines file of its own (.jsonl or .jsonl.gz)")
    assert em.world.delete_log == []


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_emulator_port_out_of_range(repo: Path, port: str) -> None:
    res = run_cli(["emulator", "--port", port], repo)
    assert res.code == 1 and "--port" in res.all, res.all


def test_a_good_event_still_gives_the_base(repo: Path) -> None:
    from reconciler.store import base_from_env

    write(repo / "e.json", json.dumps({"pull_request": {"base": {"sha": "abc"}}}))
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(repo / "e.json")}
    assert base_from_env(env) == "abc"
    write(repo / "e.json", json.dumps({"pull_request": []}))
    assert base_from_env(env) is None


# --- look-alike IDs, and names that must be one line ---------------------------------


@pytest.mark.parametrize(
    ("bad", "col", "words"),
    [
        ("x\u0301x", 2, "U+0301 COMBINING ACUTE ACCENT (a combining mark"),
        ("x\u20dd", 2, "U+20DD COMBINING ENCLOSING CIRCLE (an enclosing mark"),
        ("a\u115fb", 2, "U+115F HANGUL CHOSEONG FILLER (shown as blank space)"),
        ("a\u1160b", 2, "U+1160 HANGUL JUNGSEONG FILLER"),
        ("\u3164a", 1, "U+3164 HANGUL FILLER"),
        ("a\uffa0", 2, "U+FFA0 HALFWIDTH HANGUL FILLER"),
        ("a\u2800", 2, "U+2800 BRAILLE PATTERN BLANK"),
        ("WT\uff10\uff11", 3, "looks like '0'; write it as 'WT01'"),
    ],
)
def test_look_alike_ids_are_refused(repo: Path, bad: str, col: int, words: str) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["a1", bad]))
    res = run_cli(["validate"], repo)
    refused(res, words)
    assert "manifests/m.yaml:9:" in res.err and "spec.assetIds[1]: " in res.err, res.err
    write(repo / "manifests/ids/a.txt", f"a1\n  {bad}\n")
    write(
        repo / "manifests/m.yaml", manifest_yaml("m").replace("assetIds: [a1, a2]", "assetIdsFile: ids/a.txt")
    )
    res = run_cli(["validate"], repo)
    refused(res, f"manifests/ids/a.txt:2:{2 + col}: assetId", words)


def test_an_nfc_letter_passes_and_a_decomposed_one_is_named(repo: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["caf\u00e9", "风电-01"]))
    assert run_cli(["validate"], repo).code == 0
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["cafe\u0301"]))
    refused(run_cli(["validate"], repo), "is not in Unicode NFC form")


def test_labels_with_line_breaks_or_controls_are_refused(repo: Path) -> None:
    extra = '  labels: {team: "wind\\n\\n| pTEST |", "k\\u001b[2J": ok}\n'
    text = manifest_yaml("m").replace("metadata:\n  name: m\n", "metadata:\n  name: m\n" + extra)
    write(repo / "manifests/m.yaml", text)
    res = run_cli(["validate"], repo)
    refused(
        res,
        "manifests/m.yaml:5:",
        "metadata.labels.'team': contains U+000A LINE FEED",
        "a label's key: contains U+001B ESCAPE",
    )


def test_file_names_with_line_breaks_are_refused(repo: Path) -> None:
    write(repo / "manifests/m\n\n<!--.yaml", manifest_yaml("m"))
    res = run_cli(["validate"], repo)
    refused(res, "manifests/m\\n\\n<!--.yaml:1:1: the file name", "contains U+000A LINE FEED")
    assert "\n\n<!--" not in res.err
    (repo / "manifests/m\n\n<!--.yaml").unlink()
    write(repo / "manifests/ids/a\nb.txt", "a1\n")
    write(
        repo / "manifests/m.yaml",
        manifest_yaml("m").replace("assetIds: [a1, a2]", 'assetIdsFile: "ids/a\\nb.txt"'),
    )
    refused(run_cli(["validate"], repo), "spec.assetIdsFile: the file name", "rename the file")


# --- the terminal ----------------------------------------------------------------------


def test_ledger_show_escapes_control_characters(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="PAUSED")]))
    desc = '  description: "fix\\e[2J\\e[31m\\nfake line\\rOK"\n'
    write(repo / "manifests/m.yaml", manifest_yaml("m").replace("  name: m\n", "  name: m\n" + desc))
    assert run_cli(["apply", "--auto-approve"], repo, gateway_env(em)).code == 0
    res = run_cli(["ledger", "show", "--asset", "a1"], repo)
    assert res.code == 0, res.all
    assert "  why: fix\\x1b[2J\\x1b[31m\\nfake line\\rOK\n" in res.out
    assert "\x1b" not in res.out and "\r" not in res.out
    shown = run_cli(["ledger", "show"], repo)
    assert shown.code == 0 and "\x1b" not in shown.out


def test_an_error_quoting_a_file_name_shows_its_controls(repo: Path) -> None:
    res = run_cli(["plan", "--config", "no\x1b[2Jsuch.yaml"], repo)
    assert res.code == 1 and "no\\x1b[2Jsuch.yaml" in res.err and "\x1b" not in res.err, res.all


def test_plan_text_escapes_control_characters() -> None:
    from reconciler.ledger import Ledger
    from reconciler.manifests import Manifest
    from reconciler.plan import Options, build_plan, diff
    from reconciler.plan.values import PipelineRef
    from reconciler.render.plan import plan_text, status_text
    from reconciler.render.review import LiveStatus

    m = Manifest("m", "o1", "p1", ("s1",), ("a1",), ("x",), "m.yaml", 1)
    plan = build_plan(diff([m], Ledger(Path("l.jsonl"))), Options())
    text = plan_text(plan, {"m": "manifests/m\x1b[2J.yaml"})
    assert "\x1b" not in text and "manifests/m\\x1b[2J.yaml" in text
    live = status_text({PipelineRef("o1", "p1"): LiveStatus("RUNNING\x1b[31m", "name\r\nfake")}, plan)
    assert "\x1b" not in live and "\r" not in live and "name\\r\\nfake" in live
