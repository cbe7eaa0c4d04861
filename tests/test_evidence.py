"""`ledger verify --snapshot FILE` checks a file against the digests that cover it and says
which runs it covers (issue 27: it failed on every CI artifact after the first apply,
because each run's file holds that run's items and the check wanted all of them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler import ledger as L
from reconciler.ledger.evidence import check

RUN = "https://github.com/acme/wind/actions/runs/"


def ci_apply(repo: Path, em: Any, run_id: str, snapshot: str) -> None:
    env = {**gateway_env(em), "GITHUB_RUN_ID": run_id, "GITHUB_REPOSITORY": "acme/wind"}
    res = run_cli(["apply", "--auto-approve", "--snapshot", snapshot], repo, env)
    assert res.code == 0, res.all


def two_runs(repo: Path, em: Any) -> None:
    """Two CI applies, each with its own artifact, as the scaffold's workflow keeps them."""
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=["x", "y"]))
    ci_apply(repo, em, "101", "run-101.jsonl")
    write(repo / "manifests/b.yaml", manifest_yaml("b", stages=["s2"], assets=["a1", "a3"], points=["x"]))
    ci_apply(repo, em, "102", "run-102.jsonl")


def test_each_runs_file_verifies_and_says_which_run_it_covers(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([{**pipeline(), "fillState": True}]))
    two_runs(repo, em)
    first = run_cli(["ledger", "verify", "--snapshot", "run-101.jsonl"], repo)
    assert first.code == 0, first.all
    assert "4 items match the digests of 1 delete record" in first.out
    assert f"covers 1 run:\n    {RUN}101: records #1 to #" in first.out
    assert "1 of 1 delete record with evidence" in first.out
    assert "1 delete record of other runs is not checked" in first.out
    # the core says each run's evidence is in its own file; the CLI names the flag that wrote it
    (other_runs,) = [line for line in first.out.splitlines() if "of other runs" in line]
    assert "--snapshot" in other_runs
    second = run_cli(["ledger", "verify", "--snapshot", "run-102.jsonl"], repo)
    assert second.code == 0, second.all  # failed before: run 101's digest is not in this file
    assert f"{RUN}102" in second.out and f"{RUN}101" not in second.out
    assert "2 items match the digests of 1 delete record" in second.out
    # Both artifacts together cover both runs.
    (repo / "both.jsonl").write_bytes(
        (repo / "run-101.jsonl").read_bytes() + (repo / "run-102.jsonl").read_bytes()
    )
    both = check(repo / "both.jsonl", L.read(repo / "applied-ledger.jsonl").records)
    assert (
        both.ok and [c.run.name for c in both.covered] == [f"{RUN}101", f"{RUN}102"] and both.elsewhere == 0
    )


def test_the_report_names_no_flag_but_hints_at_the_setting(repo: Path, make_emulator: Any) -> None:
    """A library caller gets the report's lines in the core's words; the line about the
    other runs' files carries a hint, which the CLI says as the flag (review L-1)."""
    from reconciler.errors import Hint, Hinted
    from reconciler.settings import advice

    em = make_emulator(world_for([{**pipeline(), "fillState": True}]))
    two_runs(repo, em)
    report = check(repo / "run-101.jsonl", L.read(repo / "applied-ledger.jsonl").records)
    hinted = [line for line in report.lines() if isinstance(line, Hinted)]
    assert [line.hint for line in hinted] == [Hint.SNAPSHOT_PER_RUN]
    assert "--" not in "".join(report.lines()) and "of other runs is not checked" in hinted[0]
    assert advice(hinted[0]).endswith("(`apply --snapshot FILE`)")


def test_a_covered_runs_missing_or_changed_evidence_is_named(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([{**pipeline(), "fillState": True}]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", stages=["s1", "s2"], assets=["a1"], points=["x"]))
    ci_apply(repo, em, "201", "ev.jsonl")
    lines = (repo / "ev.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    (repo / "cut.jsonl").write_bytes(lines[0])  # one request's evidence dropped from the run's file
    res = run_cli(["ledger", "verify", "--snapshot", "cut.jsonl"], repo)
    assert res.code == 1 and "does NOT match the ledger (1 problem)" in res.out
    assert "its snapshot (1 item) is not in the file, or differs" in res.out and f"{RUN}201" in res.out
    forged = re.sub(rb'"intent":\d+', b'"intent":99', lines[0])  # whichever request came first
    assert forged != lines[0]
    (repo / "forged.jsonl").write_bytes(forged + lines[1])
    res = run_cli(["ledger", "verify", "--snapshot", "forged.jsonl"], repo)
    assert res.code == 1 and "no record of this ledger announced" in res.out


def test_a_file_that_is_not_a_snapshot_is_a_clear_error(repo: Path) -> None:
    for name, want in (("/dev/zero", "is not a regular file"), ("missing.jsonl", "does not exist")):
        res = run_cli(["ledger", "verify", "--snapshot", name], repo)
        assert res.code == 1 and want in res.err and "Traceback" not in res.all, res.all
    (repo / "deep.jsonl").write_text("[" * 100_000 + "\n")
    res = run_cli(["ledger", "verify", "--snapshot", "deep.jsonl"], repo)
    assert res.code == 1 and "deep.jsonl:1: not" in res.err, res.all
