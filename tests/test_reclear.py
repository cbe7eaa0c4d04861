"""A re-clear is deliberate (issue 27 item 5, DESIGN "Manifest format", `metadata.reclear`):
a manifest that would clear again, under a new name, cells cleared under a name no
manifest declares any more is refused by plan and by apply unless it says `renamedFrom`
or `reclear`; the reason goes into its records. The real CLI against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import ORG, gateway_env, pipeline, run_cli, world_for, write

from reconciler import ledger as L

APPLY = ["apply", "--auto-approve", "--pause-pipelines"]


def manifest(name: str, meta: str = "", assets: str = "[a1, a2, a3]") -> str:
    return (
        f"apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata:\n  name: {name}\n{meta}"
        f"spec:\n  orgId: {ORG}\n  pipelineId: p1\n  stageInstanceNames: [s1]\n"
        f"  assetIds: {assets}\n  pointIds: [x, y]\n"
    )


def deletes(em: Any) -> int:
    return sum(1 for e in em.world.log if e["route"] == "delete")


def applied_then_renamed(repo: Path, em: Any, meta: str = "") -> None:
    """`wind-fix` applied; then the file renames it to `wind-fix-v2`, with `meta`."""
    write(repo / "manifests/a.yaml", manifest("wind-fix"))
    assert run_cli(APPLY, repo, gateway_env(em)).code == 0
    write(repo / "manifests/a.yaml", manifest("wind-fix-v2", meta))


def test_a_rename_without_renamed_from_is_refused_by_plan_and_apply(repo: Path, make_emulator: Any) -> None:
    """The issue's reproduction: renamed without `renamedFrom`, the plan exited 0 with a
    hint and the merge cleared production again."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    applied_then_renamed(repo, em)
    sent = deletes(em)
    for args in (["plan"], ["plan", "--format", "json"], ["plan", "--detailed-exitcode"], APPLY):
        res = run_cli(args, repo, gateway_env(em))
        assert res.code == 1, (args, res.all)
        assert "6 pending cells were cleared as wind-fix" in res.err
        assert "metadata.renamedFrom: [wind-fix]" in res.err and 'metadata.reclear: "<why>"' in res.err
        assert "nothing was sent" in res.err and res.out == ""
    assert deletes(em) == sent  # apply sent nothing
    assert em.world.status("p1") == "RUNNING"  # and paused nothing
    # A saved plan from before cannot get around it either.
    write(repo / "manifests/a.yaml", manifest("wind-fix-v2", '  reclear: "first try"\n'))
    assert run_cli(["plan", "--out", "saved.json"], repo).code == 0
    write(repo / "manifests/a.yaml", manifest("wind-fix-v2"))
    res = run_cli([*APPLY, "saved.json"], repo, gateway_env(em))
    assert res.code == 1 and deletes(em) == sent


def test_renamed_from_carries_the_history_on(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    applied_then_renamed(repo, em, "  renamedFrom: [wind-fix]\n")
    plan = run_cli(["plan", "--format", "json", "--detailed-exitcode"], repo)
    assert plan.code == 0, plan.all
    assert json.loads(plan.out)["summary"]["appliedCells"] == 6


def test_reclear_clears_again_and_every_record_says_why(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    reason = "OPS-1299: the counters were rebuilt from bad data"
    applied_then_renamed(repo, em, f'  reclear: "{reason}"\n')
    plan = run_cli(["plan", "--format", "json", "--detailed-exitcode"], repo)
    assert plan.code == 2, plan.all
    doc = json.loads(plan.out)
    assert doc["summary"]["pendingCells"] == 6
    assert {a["reclear"] for a in doc["actions"]} == {reason}  # the plan hash covers the reason
    assert doc["renameWarnings"] == [
        {"manifest": "wind-fix-v2", "clearedAs": "wind-fix", "cells": 6, "reclear": reason}
    ]
    text = run_cli(["plan"], repo).out
    assert f"it clears them again on purpose: {reason}" in text
    sent = deletes(em)
    assert run_cli(APPLY, repo, gateway_env(em)).code == 0
    assert deletes(em) > sent
    mine = [r for r in L.read(repo / "applied-ledger.jsonl").records if r.manifest == "wind-fix-v2"]
    assert {r.kind for r in mine} == {"intent", "delete"}
    assert all(r.data["reclear"] == reason for r in mine)  # v2 deletes name their intent, and say why
    assert any(r.intent_seq is not None for r in mine if r.kind == "delete")
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0


def test_a_new_manifest_over_a_declared_ones_cells_needs_no_acknowledgement(
    repo: Path, make_emulator: Any
) -> None:
    """DESIGN "Cells": a new incident's manifest clears again on purpose by its new name
    while the old one is still declared; only a name no manifest declares asks why."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest("wind-fix"))
    assert run_cli(APPLY, repo, gateway_env(em)).code == 0
    write(repo / "manifests/b.yaml", manifest("wind-fix-again"))
    plan = run_cli(["plan", "--detailed-exitcode"], repo)
    assert plan.code == 2, plan.all
    assert "6 cells to clear" in plan.out
    assert run_cli(APPLY, repo, gateway_env(em)).code == 0
    # Applying only the new file, apply cannot tell wind-fix is still declared: it refuses,
    # on the safe side, and says how to go on.
    write(repo / "manifests/c.yaml", manifest("wind-fix-third"))
    res = run_cli([*APPLY, "manifests/c.yaml"], repo, gateway_env(em))
    assert res.code == 1 and "apply the whole manifests folder" in res.err
    assert (
        run_cli(["plan", "manifests/c.yaml"], repo).code == 0
    )  # plan of one file cannot tell either: no refusal


def test_a_reason_is_one_line_of_text(tmp_path: Path) -> None:
    for meta, want in (
        ('  reclear: "  "\n', "metadata.reclear: must say why"),
        ('  reclear: ""\n', "metadata.reclear: must say why"),
        ('  reclear: "two\\nlines"\n', "metadata.reclear:"),
        ("  reclear: 12\n", "metadata.reclear: expected a string"),
    ):
        write(tmp_path / "manifests/a.yaml", manifest("wind-fix", meta))
        res = run_cli(["validate"], tmp_path)
        assert res.code == 1, meta
        assert "manifests/a.yaml:5:" in res.all and want in res.all, res.all
