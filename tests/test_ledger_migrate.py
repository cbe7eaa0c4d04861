"""`ledger.migrate`: v1 -> v2 in place, same records and cells, the original kept, under the lock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler import ledger as L
from reconciler.errors import LedgerError, LockError

KEY = {"manifest": "m", "orgId": "o", "pipelineId": "p", "stageInstanceName": "s"}
A = [f"asset-{i:03d}" for i in range(40)]
P = ["INV.GenActivePW", "INV.Temp"]
ACTOR = {"user": "ci", "gitCommit": "a" * 40}


def write_v1(path: Path, records: list[dict[str, Any]]) -> None:
    prev, out = L.GENESIS, []
    for seq, rec in enumerate(records, start=1):
        full = {
            "v": 1,
            "seq": seq,
            "at": f"2026-11-27T10:00:{seq:02d}.000Z",
            **rec,
            "actor": ACTOR,
            "prev": prev,
        }
        full["hash"] = prev = L.record_hash(full)
        out.append(L.canonical(full) + b"\n")
    path.write_bytes(b"".join(out))


def v1_history() -> list[dict[str, Any]]:
    first, second = {**KEY, "assetIds": A[:20], "pointIds": P}, {**KEY, "assetIds": A[20:], "pointIds": P}
    return [
        {"kind": "pause", "orgId": "o", "pipelineId": "p", "executionMode": 1, "kafkaRate": 5},
        {"kind": "intent", **first},
        {"kind": "intent", **second},  # concurrency 2: both in flight
        {"kind": "delete", **second},
        {"kind": "delete", **first},
        {"kind": "intent", **KEY, "assetIds": A, "pointIds": P},  # split on 61105 ...
        {"kind": "delete", **KEY, "assetIds": A, "pointIds": P[:1]},  # ... its halves keep their lists
        {"kind": "delete", **KEY, "assetIds": A, "pointIds": P[1:]},
        {"kind": "intent", **first, "manifest": "n"},
        {"kind": "delete", **first, "manifest": "n", "resolved": True},  # ledger resolve
        {"kind": "resume", "orgId": "o", "pipelineId": "p"},
    ]


def test_migrate_keeps_every_record_and_cell_and_refers_deletes_to_their_intents(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_v1(path, v1_history())
    original, before = path.read_bytes(), L.read(path)
    result = L.migrate(path)
    assert result.backup == tmp_path / "l.jsonl.v1.bak" and result.backup.read_bytes() == original
    assert result.records == 11 and result.referenced == 3 and result.bytes_after < result.bytes_before
    assert result.cells == {"intent": 200, "delete": 200}
    after = L.read(path)
    assert [r.data["v"] for r in after.records] == [3] * 11
    assert [r.intent_seq for r in after.records] == [None, None, None, 3, 2, None, None, None, None, 9, None]
    for old, new in zip(before.records, after.records, strict=True):
        assert (old.seq, old.kind, old.at, old.asset_ids, old.point_ids) == (
            new.seq,
            new.kind,
            new.at,
            new.asset_ids,
            new.point_ids,
        )
        assert new.actor == ACTOR and new.resolved == old.resolved
    again = L.migrate(path)
    assert again.backup is None and path.read_bytes() == after.path.read_bytes()


def test_migrate_through_a_symlink_replaces_the_real_file(tmp_path: Path) -> None:
    real = tmp_path / "audit" / "l.jsonl"
    real.parent.mkdir()
    write_v1(real, v1_history())
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    L.migrate(link)
    assert link.is_symlink() and (tmp_path / "audit" / "l.jsonl.v1.bak").exists()
    assert L.read(link).records[3].intent_seq == 3


def test_migrate_refuses_an_earlier_backup_in_the_way(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_v1(path, v1_history())
    original = path.read_bytes()
    (tmp_path / "l.jsonl.v1.bak").write_text("an older backup")
    with pytest.raises(
        LedgerError, match=r"l\.jsonl\.v1\.bak: a backup of an earlier migration is in the way"
    ):
        L.migrate(path)
    assert path.read_bytes() == original and not (tmp_path / "l.jsonl.v2.tmp").exists()


def test_migrate_refuses_a_missing_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger to migrate"):
        L.migrate(tmp_path / "typo.jsonl")


def test_migrate_waits_for_no_one_holding_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_v1(path, v1_history())
    original = path.read_bytes()
    caught: list[BaseException] = []
    with L.LedgerLock(path, command="reconcile apply"):
        t = threading.Thread(target=lambda: _catch(caught, path))
        t.start()
        t.join()
    assert isinstance(caught[0], LockError) and "reconcile apply" in str(caught[0])
    assert path.read_bytes() == original


def _catch(caught: list[BaseException], path: Path) -> None:
    try:
        L.migrate(path)
    except LockError as exc:
        caught.append(exc)


def test_a_torn_tail_is_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_v1(path, v1_history())
    path.write_bytes(path.read_bytes() + b'{"v":1,"seq":12')
    result = L.migrate(path)
    assert len(result.warnings) == 1 and "incomplete" in result.warnings[0]
    assert L.read(path).warnings == [] and L.read(path).head_seq == 11
