"""Sharing equal IDs across lists (big ledgers only) changes memory, never what is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import ledger as L
from reconciler.ledger import _format


def write(path: Path) -> None:
    prev = L.GENESIS
    lists = [["a1", "a2", "a3"], ["a2", "a4"], ["a1", "a2", "a3"]]
    with path.open("wb") as fh:
        for seq, assets in enumerate([lists[0], lists[0], lists[1], lists[2], lists[1]], start=1):
            kind = "intent" if seq % 2 else "delete"
            rec = {"v": 1, "seq": seq, "kind": kind, "at": "2026-11-27T10:00:00.000Z", "manifest": "m"}
            rec.update(orgId="o", pipelineId="p", stageInstanceName="s", assetIds=assets, pointIds=["p1"])
            rec["prev"] = prev
            rec["hash"] = prev = L.record_hash(rec)
            fh.write(L.canonical(rec) + b"\n")


@pytest.mark.parametrize("after", [0, 4])
def test_sharing_ids_reads_the_same_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    path = tmp_path / "ledger.jsonl"
    write(path)
    plain = L.read(path)
    monkeypatch.setattr(_format, "SHARE_IDS_AFTER", after)
    shared = L.read(path)
    assert shared.records == plain.records
    assert shared.closed_intents == plain.closed_intents
    # once sharing started, equal IDs in different lists are one string
    a2 = {id(a) for r in shared.records for a in r.asset_ids if a == "a2"}
    assert len(a2) == (1 if after == 0 else 2)
