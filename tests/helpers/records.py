"""Ledger records for tests: `Record` values for the planner, and the cell fields that
`LedgerWriter.append` takes for an `intent` or `delete`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.world import ORG
from reconciler.ledger import Ledger, Record

# The cell fields of a small two-asset record (test_ledger, test_ledger_write).
LEDGER_CELLS = {
    "manifest": "m",
    "orgId": "o",
    "pipelineId": "p",
    "stageInstanceName": "s",
    "assetIds": ["a1", "a2"],
    "pointIds": ["pt"],
}


def cell_fields(
    asset: str = "a1", point: str = "x", manifest: str = "a", *, pipeline: str = "p1", stage: str = "s1"
) -> dict[str, Any]:
    """The cell fields of a one-cell `intent`/`delete` record, on o1/p1/s1 unless told."""
    return {
        "manifest": manifest,
        "orgId": ORG,
        "pipelineId": pipeline,
        "stageInstanceName": stage,
        "assetIds": [asset],
        "pointIds": [point],
    }


def record(
    seq: int, kind: str, name: str, pipeline: str, stage: str, assets: list[str], points: list[str]
) -> Record:
    data = {
        "v": 1,
        "seq": seq,
        "kind": kind,
        "manifest": name,
        "orgId": "o",
        "pipelineId": pipeline,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
    }
    return Record(seq, kind, "t", f"h{seq}", data, tuple(assets), tuple(points))


def ledger_of(records: list[Record]) -> Ledger:
    return Ledger(Path("l.jsonl"), records)
