"""Plan output as people and machines read it: golden text, markdown and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import manifest_yaml, run_cli, write

from reconciler.diff import diff
from reconciler.ledger import GENESIS, canonical, record_hash
from reconciler.plan import Options, build_plan
from reconciler.render.plan import GITHUB_COMMENT_LIMIT, plan_markdown

GOLDEN = Path(__file__).parent / "golden"


def fixed_ledger(path: Path, records: list[dict[str, Any]]) -> None:
    """A ledger with fixed timestamps, so its head hash (and the golden files) never change."""
    prev, lines = GENESIS, []
    for seq, fields in enumerate(records, start=1):
        rec = {"v": 1, "seq": seq, "at": "2026-11-27T10:00:00.000Z", **fields, "prev": prev}
        rec["hash"] = prev = record_hash(rec)
        lines.append(canonical(rec))
    path.write_bytes(b"\n".join(lines) + b"\n")


def cells(
    manifest: str, stage: str, assets: list[str], points: list[str], pipeline: str = "p1"
) -> dict[str, Any]:
    return {
        "manifest": manifest,
        "orgId": "o1",
        "pipelineId": pipeline,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
        "actor": {"user": "ci"},
    }


@pytest.fixture
def scenario(repo: Path) -> Path:
    write(
        repo / "manifests/turbines.yaml",
        manifest_yaml(
            "turbine-fix",
            stages=["window_avg_1", "last_value_2"],
            assets=["WT01", "WT02", "WT03", "WT04", "WT05"],
            points=["GenActivePW", "WindSpeed"],
        ),
    )
    write(
        repo / "manifests/inverters.yaml",
        manifest_yaml("inverter-reset", pipeline="p2", assets=["INV1", "INV2"], points=["DayEnergy"]),
    )
    fixed_ledger(
        repo / "applied-ledger.jsonl",
        [
            {
                "kind": "delete",
                **cells("turbine-fix", "window_avg_1", ["WT01", "WT02"], ["GenActivePW", "WindSpeed"]),
            },
            {"kind": "delete", **cells("turbine-fix", "last_value_2", ["WT01"], ["GenActivePW"])},
            {"kind": "delete", **cells("old-manifest", "counter", ["X1", "X2"], ["P"], pipeline="p9")},
            {"kind": "intent", **cells("inverter-reset", "s1", ["INV2"], ["DayEnergy"], pipeline="p2")},
            {"kind": "pause", "orgId": "o1", "pipelineId": "p2", "executionMode": 1, "kafkaRate": 1000},
        ],
    )
    return repo


@pytest.mark.parametrize(
    ("fmt", "golden"), [("text", "plan.txt"), ("markdown", "plan.md"), ("json", "plan.json")]
)
def test_plan_output_matches_golden(scenario: Path, fmt: str, golden: str) -> None:
    res = run_cli(["plan", "--format", fmt, "--detailed-exitcode"], scenario)
    assert res.code == 2, res.all
    target = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN"):
        target.write_text(res.out)
    assert res.out == target.read_text()


def test_json_plan_has_the_documented_fields(scenario: Path) -> None:
    data = json.loads(run_cli(["plan", "--format", "json"], scenario).out)
    assert data["formatVersion"] == 1
    assert set(data["ledger"]) == {"path", "seq", "hash"} and data["ledger"]["seq"] == 5
    assert data["summary"] == {
        "pendingCells": 17,
        "requests": 5,
        "appliedCells": 5,
        "undeclaredCells": 2,
        "inDoubtCells": 1,
    }
    assert {"manifest", "orgId", "pipelineId", "stageInstanceName", "assetIds", "pointIds", "cells"} <= set(
        data["actions"][0]
    )
    assert next(a for a in data["actions"] if a.get("inDoubt"))["assetIds"] == ["INV2"]


def test_markdown_fits_a_github_comment() -> None:
    from reconciler.ledger import Ledger
    from reconciler.manifests import Manifest

    ms = [
        Manifest(
            f"m{i:04d}",
            "o",
            "p",
            tuple(f"stage_{j}" for j in range(10)),
            tuple(f"asset-{k}" for k in range(50)),
            ("x",),
            "f.yaml",
            1,
        )
        for i in range(300)
    ]
    plan = build_plan(diff(ms, Ledger(Path("l.jsonl"))), Options())
    text = plan_markdown(plan)
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / "plan-truncated.md").write_text(text)
    assert text == (GOLDEN / "plan-truncated.md").read_text()
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "more rows not shown (comment size limit)" in text
    assert plan.plan_hash in text
    small = plan_markdown(build_plan(diff(ms[:2], Ledger(Path("l.jsonl"))), Options()))
    assert "not shown" not in small and small.count("| `m000") == 20


def test_refresh_shows_live_statuses(scenario: Path, make_emulator: Any) -> None:
    from conftest import gateway_env, pipeline, world_for

    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    res = run_cli(["plan", "--refresh", "--format", "markdown"], scenario, gateway_env(em))
    assert res.code == 0, res.all
    assert "**RUNNING** (blocks apply)" in res.out and "**MISSING** (blocks apply)" in res.out
    assert "Would block apply" in res.out
    text = run_cli(["plan", "--refresh"], scenario, gateway_env(em)).out
    assert "o1 / p1: RUNNING (blocks apply)" in text and "o1 / p2: MISSING (blocks apply)" in text
    assert all(e["route"] == "list" for e in em.world.log)  # read-only calls
