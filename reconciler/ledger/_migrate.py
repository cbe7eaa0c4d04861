"""`ledger migrate`: rewrite a ledger's records as format v2, proven to hold the same cells.

The one place a ledger is rewritten rather than appended. Under the lock, the v2 file is
written beside the ledger, read back and verified, compared record by record with the
original (same seq, kind, time, fields and cells), and only then swapped in atomically;
the original stays as `<name>.v1.bak`. The chain is re-hashed, so the head hash changes:
saved plans made before are stale, as they should be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import LedgerError
from reconciler.ledger._format import (
    CELL_KINDS,
    CLOSING_KINDS,
    GENESIS,
    LIST_FIELDS,
    Ids,
    Record,
    canonical,
    join_ids,
    record_hash,
)
from reconciler.ledger._lock import LedgerLock
from reconciler.ledger._read import read
from reconciler.ledger._write import CHAIN_FIELDS as _CHAIN_FIELDS


@dataclass(frozen=True)
class MigrateResult:
    path: Path
    backup: Path | None  # None: nothing to do, the file was left alone
    records: int
    referenced: int  # delete/failed records that now refer to their intent
    bytes_before: int
    bytes_after: int
    cells: dict[str, int] = field(default_factory=dict)  # per kind, the same before and after
    warnings: list[str] = field(default_factory=list)


def migrate(path: str | os.PathLike[str], *, lock_timeout: float = 0) -> MigrateResult:
    """Rewrite the ledger at `path` as v2 in place, keeping the original as `<name>.v1.bak`."""
    real = Path(os.path.realpath(path))
    backup = real.with_name(real.name + ".v1.bak")
    tmp = real.with_name(real.name + ".v2.tmp")
    with LedgerLock(real, timeout=lock_timeout, command=f"reconcile ledger migrate {path}"):
        old = read(real)
        if not old.exists:
            raise LedgerError(f"{path}: no ledger to migrate (the file does not exist)")
        cells = _cells_per_kind(old.records)
        if all(r.data.get("v") == 2 for r in old.records) and not old.warnings and not old.unterminated:
            return MigrateResult(real, None, len(old.records), 0, old.size, old.size, cells)
        if backup.exists():
            raise LedgerError(f"{backup}: a backup of an earlier migration is in the way; move it first")
        try:
            referenced = _write(tmp, _v2_lines(old.records))
            new = read(tmp)
            _check_same(real, old.records, new.records)
            _swap(real, old.size, tmp, backup)
        finally:
            tmp.unlink(missing_ok=True)
    return MigrateResult(
        real, backup, len(old.records), referenced, old.size, new.size, cells, list(old.warnings)
    )


def _v2_lines(records: Sequence[Record]) -> Iterator[tuple[bytes, bool]]:
    """Each record as a v2 line, same seq and time; yields (line, refers to its intent)."""
    prev = GENESIS
    unclosed: dict[tuple[tuple[str, ...], Ids, Ids], list[int]] = {}
    for r in records:
        fields = {k: v for k, v in r.data.items() if k not in _CHAIN_FIELDS}
        refers = False
        if r.kind in CELL_KINDS and r.intent_seq is None:
            same = (r.key, r.asset_ids, r.point_ids)
            if r.kind in CLOSING_KINDS and unclosed.get(same):
                for name in LIST_FIELDS:
                    del fields[name]
                fields["intent"], refers = unclosed[same].pop(), True
            else:
                for name in LIST_FIELDS:
                    fields[name] = join_ids(f"record seq {r.seq}", name, fields[name])
            if r.kind == "intent":
                unclosed.setdefault(same, []).append(r.seq)
        data: dict[str, Any] = {"v": 2, "seq": r.seq, "kind": r.kind, "at": r.at, **fields, "prev": prev}
        data["hash"] = prev = record_hash(data)
        yield canonical(data) + b"\n", refers


def _write(tmp: Path, lines: Iterator[tuple[bytes, bool]]) -> int:
    referenced = 0
    try:
        with open(tmp, "wb") as fh:
            for line, refers in lines:
                fh.write(line)
                referenced += refers
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise LedgerError(f"{tmp}: cannot write the migrated ledger: {exc.strerror or exc}") from exc
    return referenced


def _check_same(path: Path, old: Sequence[Record], new: Sequence[Record]) -> None:
    if len(old) != len(new):
        raise LedgerError(f"{path}: migration gave {len(new)} records, not {len(old)}; nothing changed")
    for a, b in zip(old, new, strict=True):
        if _meaning(a) != _meaning(b):
            raise LedgerError(f"{path}: migration changed record seq {a.seq}; nothing changed")
    if _cells_per_kind(old) != _cells_per_kind(new):
        raise LedgerError(f"{path}: migration changed the cells; nothing changed")


def _meaning(r: Record) -> tuple[Any, ...]:
    rest = {k: v for k, v in r.data.items() if k not in (*_CHAIN_FIELDS, *LIST_FIELDS, "intent")}
    return (r.seq, r.kind, r.at, r.asset_ids, r.point_ids, sorted(rest.items()))


def _cells_per_kind(records: Sequence[Record]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if r.kind in CELL_KINDS:
            out[r.kind] = out.get(r.kind, 0) + len(r.asset_ids) * len(r.point_ids)
    return out


def _swap(real: Path, size: int, tmp: Path, backup: Path) -> None:
    try:
        if os.stat(real).st_size != size:
            raise LedgerError(f"{real}: the ledger changed while it was migrated; nothing changed")
        os.link(real, backup)  # the original stays, under its backup name, before anything moves
        os.replace(tmp, real)
        fd = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise LedgerError(
            f"{exc.filename or real}: cannot swap in the migrated ledger: {exc.strerror or exc}"
        ) from exc
