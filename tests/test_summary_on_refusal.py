"""`apply --summary FILE` writes its file for every refusal, those raised before any call
included (review 2026-12-07 §2.9): the CI templates post the summary on the merged pull
request only if the file exists, and these are the refusals a reviewer most needs to see.
The real CLI, real git."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    committed_repo,
    gateway_env,
    manifest_yaml,
    pipeline,
    run_cli,
    world_for,
    write,
)

SUMMARIES = ["--summary", "s.md", "--summary", "s.json"]


def _summaries(repo: Path) -> tuple[str, dict[str, Any]]:
    assert (repo / "s.md").is_file() and (repo / "s.json").is_file()
    return (repo / "s.md").read_text(), json.loads((repo / "s.json").read_text())


def test_uncommitted_manifests_in_ci(tmp_path: Path, home: Path, make_emulator: Any) -> None:
    """The review's reproduction: rc=1 and no summary file."""
    repo = committed_repo(tmp_path)
    with (repo / "manifests/a.yaml").open("a") as fh:
        fh.write("# edit\n")
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve", *SUMMARIES], repo, {**gateway_env(em), "CI": "true"})
    assert res.code == 1 and "uncommitted changes" in res.err, res.all
    md, doc = _summaries(repo)
    assert doc["outcome"] == "refused" and "uncommitted changes" in doc["error"]
    assert "Apply refused; nothing was sent." in md and "uncommitted changes" in md
    assert doc["ledger"]["path"] == LEDGER and em.world.log == []


@pytest.mark.parametrize("damage", ["truncated", "not a plan"])
def test_a_broken_saved_plan(tmp_path: Path, home: Path, damage: str) -> None:
    repo = committed_repo(tmp_path)
    res = run_cli(["plan", "--out", "plan.json"], repo)
    assert res.code == 0, res.all
    text = (repo / "plan.json").read_text()
    (repo / "plan.json").write_text(
        text[: len(text) // 2] if damage == "truncated" else '{"formatVersion": 1}'
    )
    res = run_cli(["apply", "plan.json", "--auto-approve", *SUMMARIES], repo)
    assert res.code == 1, res.all
    md, doc = _summaries(repo)
    assert doc["outcome"] == "refused" and "plan.json" in doc["error"]
    assert "plan.json" in md


def test_an_invalid_reconcile_yaml(tmp_path: Path, home: Path) -> None:
    repo = committed_repo(tmp_path)
    write(repo / "reconcile.yaml", "apiVersion: reconciler/v1\nkind: ReconcileConfig\napply: {maxCels: 3}\n")
    res = run_cli(["apply", "--auto-approve", *SUMMARIES], repo)
    assert res.code == 1, res.all
    md, doc = _summaries(repo)
    assert "reconcile.yaml:3:9: apply.maxCels: unknown field" in doc["error"]
    assert "maxCels" in md


def test_git_turned_off_in_a_repository_whose_ledger_is_in_git(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline()]))
    origin = bare_origin(
        tmp_path,
        {
            "reconcile.yaml": LEDGER_IN_GIT.format(branch="main"),
            "manifests/a.yaml": manifest_yaml("a"),
            LEDGER: "",
        },
    )
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "first"), gateway_env(em))
    assert res.code == 0, res.all  # the anchor is on origin now
    runner = clone(origin, tmp_path / "runner")
    write(
        runner / "reconcile.yaml",
        LEDGER_IN_GIT.format(branch="main").replace("enabled: true", "enabled: false"),
    )
    res = run_cli(["apply", "--auto-approve", *SUMMARIES], runner, gateway_env(em))
    assert res.code == 1 and "turns ledger.git off" in res.err, res.all
    md, doc = _summaries(runner)
    assert doc["outcome"] == "refused" and "turns ledger.git off" in doc["error"]
    assert "turns ledger.git off" in md and len(em.world.delete_log) == 1


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--max-paused", "0"], "--max-paused: 0 is out of range (1 to 64)"),
        (["--concurrency", "65"], "--concurrency: 65 is out of range (1 to 64)"),
        (["--max-points", "0"], "--max-points: 0 is out of range (1 to 2,147,483,647)"),
        (["--start-timeout", "-1"], "--start-timeout: -1.0 is out of range (0 to 86,400)"),
    ],
)
def test_a_flag_out_of_range_is_refused_with_a_summary(
    tmp_path: Path, home: Path, make_emulator: Any, flags: list[str], said: str
) -> None:
    """The trial: `--max-paused 0` was refused by the flag parser, before the summary was
    set up, with no file for the pull request. The bounds are ours, checked inside it."""
    repo = committed_repo(tmp_path)
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve", *flags, *SUMMARIES], repo, gateway_env(em))
    assert res.code == 1 and said in res.err, res.all
    md, doc = _summaries(repo)
    assert doc["outcome"] == "refused" and said in doc["error"]
    assert said in md and em.world.log == []
