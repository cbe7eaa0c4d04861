"""The ledger: canonical hash chain, tamper detection, torn lines, lock, group commit."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from helpers import LEDGER_CELLS as CELLS
from helpers import run_cli

from reconciler import ledger as L
from reconciler.errors import LedgerError, LockError


def make(path: Path, n: int = 3) -> L.Ledger:
    led = L.read(path)
    with L.LedgerWriter(led) as w:
        for i in range(n):
            w.append("delete" if i % 2 else "intent", {**CELLS, "actor": {"user": "t"}})
    return L.read(path)


def test_format_is_exactly_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    make(path, 2)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    first, second = (json.loads(x) for x in lines[:2])
    assert first["seq"] == 1 and first["prev"] == "0" * 64 and first["v"] == 3
    assert first["assetIds"] == "a1,a2" and first["pointIds"] == "pt"  # v2: joined as the API takes them
    body = {k: v for k, v in first.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert first["hash"] == hashlib.sha256(canonical).hexdigest()
    assert second["prev"] == first["hash"] and second["seq"] == 2
    assert first["at"].endswith("Z") and len(first["at"]) == len("2026-11-27T10:00:00.123Z")


def test_non_ascii_is_hashed_as_itself(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("delete", {**CELLS, "manifest": "m", "actor": {"user": "Jürgen"}})
    assert "Jürgen".encode() in path.read_bytes()
    assert L.read(path).records[0].data["actor"]["user"] == "Jürgen"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda ls: ls.__setitem__(1, ls[1].replace(b'"a1,', b'"a9,')), ":2: hash does not match the record"),
        (lambda ls: ls.pop(1), ":2: seq is 3, expected 2"),
        (lambda ls: ls.insert(0, ls.pop(1)), ":1: seq is 2, expected 1"),
        (lambda ls: ls.__setitem__(1, b"{not json"), ":2: not valid JSON"),
        (lambda ls: ls.append(b"garbage"), ":4: not valid JSON"),
        (lambda ls: ls.append(b'{"v":1}'), ":4: seq is None, expected 4"),
        (lambda ls: ls.__setitem__(0, ls[0].replace(b'"v":3', b'"v":4')), ":1: unsupported record version 4"),
    ],
    ids=["edited", "removed", "reordered", "bad-json-mid-file", "bad-json-last", "invalid-last", "version"],
)
def test_any_change_is_detected_naming_the_line(tmp_path: Path, tamper: object, message: str) -> None:
    path = tmp_path / "l.jsonl"
    make(path, 3)
    lines = path.read_bytes().split(b"\n")[:-1]
    tamper(lines)  # type: ignore[operator]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(LedgerError, match=message):
        L.read(path)
    res = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert res.code == 1 and message in res.err and "Traceback" not in res.all


def test_edit_with_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    make(path, 3)
    lines = path.read_bytes().split(b"\n")[:-1]
    rec = json.loads(lines[0])
    rec["assetIds"] = "other"
    rec["hash"] = L.record_hash(rec)
    lines[0] = L.canonical(rec)
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(LedgerError, match=r":2: prev does not match the hash of line 1"):
        L.read(path)


@pytest.mark.parametrize(
    "tail", [b'{"v":1,"seq":4,"kind"', b"garbage", b'{"v":1}'], ids=["cut", "bad-json", "no-verify"]
)
def test_torn_last_line_is_a_warning_and_cut_by_the_next_append(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "l.jsonl"
    make(path, 3)
    path.write_bytes(path.read_bytes() + tail)
    led = L.read(path)
    assert len(led.records) == 3 and len(led.warnings) == 1
    res = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert res.code == 0 and "warning" in res.err and "3 records, chain intact" in res.out
    with L.LedgerWriter(led) as w:
        w.append("delete", CELLS)
    again = L.read(path)
    assert again.warnings == [] and [r.seq for r in again.records] == [1, 2, 3, 4]


def test_unknown_kinds_are_kept_in_the_chain_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("note", {"text": "hello"})
        w.append("delete", CELLS)
    led = L.read(path)
    assert [r.kind for r in led.records] == ["note", "delete"]


def test_lock_refusal_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerLock(path, command="reconcile apply --auto-approve"):
        holder = json.loads((tmp_path / "l.jsonl.lock").read_text())
        assert holder["command"] == "reconcile apply --auto-approve" and holder["pid"] > 0
        msg = str(_second_lock(path))
        assert f"pid {holder['pid']}" in msg and "reconcile apply --auto-approve" in msg
        assert "--lock-timeout" in msg


def test_group_commit_keeps_the_chain_under_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        threads = [
            threading.Thread(target=lambda: [w.append("delete", CELLS) for _ in range(50)]) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    led = L.read(path)
    assert [r.seq for r in led.records] == list(range(1, 401))


def test_show_filters_and_json(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append(
            "delete", {**CELLS, "manifest": "keep", "actor": {"user": "ci", "gitCommit": "abcdef123456"}}
        )
        w.append("delete", {**CELLS, "manifest": "other", "pipelineId": "p2"})
        w.append("pause", {"orgId": "o", "pipelineId": "p", "executionMode": 1, "kafkaRate": 5})
    res = run_cli(["ledger", "show", "--ledger", str(path), "--manifest", "keep"], tmp_path)
    assert res.code == 0 and "keep" in res.out and "other" not in res.out and "@abcdef12" in res.out
    res = run_cli(["ledger", "show", "--ledger", str(path), "--pipeline", "p2", "--format", "json"], tmp_path)
    data = json.loads(res.out)
    assert [d["manifest"] for d in data] == ["other"]
    res = run_cli(
        ["ledger", "show", "--ledger", str(path), "--since", "2999-01-01", "--format", "json"], tmp_path
    )
    assert json.loads(res.out) == []


def test_a_whole_last_record_without_newline_is_kept_and_ended_by_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    make(path, 3)
    path.write_bytes(path.read_bytes()[:-1])  # a crash between the record and its newline
    led = L.read(path)
    assert led.warnings == [] and [r.seq for r in led.records] == [1, 2, 3] and led.unterminated
    assert led.records[-1].asset_ids == ("a1", "a2")  # its cells count as applied: never cleared again
    res = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert res.code == 0 and "warning" not in res.err and "3 records, chain intact" in res.out
    with L.LedgerWriter(led) as w:
        w.append("delete", CELLS)
    again = L.read(path)
    assert again.warnings == [] and [r.seq for r in again.records] == [1, 2, 3, 4]
    assert path.read_bytes().count(b"\n") == 4


def test_a_missing_ledger_is_told_apart_from_an_empty_one(tmp_path: Path) -> None:
    missing = L.read(tmp_path / "typo.jsonl")
    assert not missing.exists and missing.records == []
    (tmp_path / "empty.jsonl").write_bytes(b"")
    empty = L.read(tmp_path / "empty.jsonl")
    assert empty.exists and empty.records == [] and empty.head_seq == 0


def test_read_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(LedgerError, match=rf"^{tmp_path}/dir.jsonl: cannot read ledger: Is a directory"):
        L.read(tmp_path / "dir.jsonl")


def test_lock_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LedgerError, match=rf"^{tmp_path}/file: cannot create the ledger's directory"):
        L.LedgerLock(tmp_path / "file" / "l.jsonl").__enter__()


def _second_lock(path: Path) -> LockError:
    caught: list[LockError] = []

    def other() -> None:
        try:
            with L.LedgerLock(path, timeout=0):
                pass
        except LockError as e:
            caught.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert caught, f"a second lock on {path} was granted"
    return caught[0]


def test_every_spelling_and_symlink_of_a_ledger_shares_one_lock(tmp_path: Path) -> None:
    real = tmp_path / "audit" / "l.jsonl"
    real.parent.mkdir()
    real.write_bytes(b"")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    (tmp_path / "dirlink").symlink_to(real.parent)
    with L.LedgerLock(real, command="reconcile apply (first)"):
        for spelling in (
            link,
            tmp_path / "dirlink" / "l.jsonl",
            tmp_path / "audit" / ".." / "audit" / "l.jsonl",
        ):
            msg = str(_second_lock(spelling))
            assert "reconcile apply (first)" in msg and f"{real}.lock" in msg
    assert not (tmp_path / "link.jsonl.lock").exists()


def test_failed_records_are_a_validated_cell_kind(tmp_path: Path) -> None:
    assert "failed" in L.CELL_KINDS and "failed" in L.KNOWN_KINDS
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", CELLS)
        w.append("failed", {**CELLS, "code": 61102, "message": "stage not found"})
        w.append("failed", {**CELLS, "code": None, "message": "HTTP 403"})
    rec = L.read(path).records[1]
    assert (rec.kind, rec.code, rec.message, rec.asset_ids) == (
        "failed",
        61102,
        "stage not found",
        ("a1", "a2"),
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"code": 1, "message": "x", "assetIds": []}, "missing or malformed assetIds"),
        ({"message": "x"}, "missing or malformed code"),
        ({"code": "61102", "message": "x"}, "missing or malformed code"),
        ({"code": True, "message": "x"}, "missing or malformed code"),
        ({"code": 61102}, "missing or malformed message"),
    ],
)
def test_malformed_failed_records_are_errors(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    path = tmp_path / "l.jsonl"
    rec = {"v": 1, "seq": 1, "kind": "failed", "at": "2026-11-27T10:00:00.000Z", **CELLS, **fields}
    rec["prev"] = L.GENESIS
    rec["hash"] = L.record_hash(rec)
    path.write_bytes(L.canonical(rec) + b"\n")
    with pytest.raises(LedgerError, match=f":1: failed record has a {message}"):
        L.read(path)
    with L.LedgerWriter(L.read(tmp_path / "new.jsonl")) as w, pytest.raises(LedgerError):
        w.append("failed", {**CELLS, **fields})  # the writer never writes what the reader refuses
    assert not (tmp_path / "new.jsonl").exists()
