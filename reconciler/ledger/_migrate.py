"""`ledger migrate`: rewrite a ledger in format v3, proven to hold the same records and cells.

The one place a ledger is rewritten rather than appended. Under the lock, the v3 ledger
(main file, segments, ID lists by content) is written beside the old one by the writer
itself, read back and verified, compared record by record with the original (same seq,
kind, time, fields and cells), and only then moved in; the original stays as
`<name>.v<N>.bak` (N: its newest record version). The chain is re-hashed, so the head
hash changes: saved plans made before are stale, as they should be. Seals take no seq,
so every record keeps its number.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import LedgerError
from reconciler.ledger import _lists
from reconciler.ledger._lock import LedgerLock
from reconciler.ledger._read import Ledger, read
from reconciler.ledger._record import CELL_KINDS, CLOSING_KINDS, FORMAT_VERSION, LIST_FIELDS, Ids, Record
from reconciler.ledger._write import CHAIN_FIELDS as _CHAIN_FIELDS
from reconciler.ledger._write import SEGMENT_BYTES, LedgerWriter


@dataclass(frozen=True)
class MigrateResult:
    path: Path
    backup: Path | None  # None: nothing to do, the file was left alone
    records: int
    referenced: int  # delete/failed records that now refer to their intent
    bytes_before: int  # every file of the ledger
    bytes_after: int
    cells: dict[str, int] = field(default_factory=dict)  # per kind, the same before and after
    warnings: list[str] = field(default_factory=list)
    files_after: int = 1  # main file, segments and ID lists


def migrate(
    path: str | os.PathLike[str],
    *,
    lock_timeout: float = 0,
    segment_bytes: int = SEGMENT_BYTES,
    locked: bool = False,
) -> MigrateResult:
    """Rewrite the ledger at `path` as v3 in place, keeping the original as `<name>.v<N>.bak`.
    `locked`: the caller holds the `LedgerLock` (the ledger in git: sync, rewrite and
    publish under one lock)."""
    real = Path(os.path.realpath(path))
    lock = LedgerLock(real, timeout=lock_timeout, command=f"reconcile ledger migrate {path}")
    with contextlib.nullcontext() if locked else lock:
        old = read(real)
        if not old.exists:
            raise LedgerError(f"{path}: no ledger to migrate (the file does not exist)")
        cells = _cells_per_kind(old.records)
        size = _size(real)
        current = all(r.data.get("v") == FORMAT_VERSION for r in old.records)
        if current and not old.warnings and not old.unterminated:
            return MigrateResult(real, None, len(old.records), 0, size, size, cells)
        newest = max((r.data.get("v", 1) for r in old.records), default=1)
        backup = real.with_name(f"{real.name}.v{newest}.bak")
        if backup.exists() or _lists.sidecar_dir(backup).exists():
            raise LedgerError(f"{backup}: a backup of an earlier migration is in the way; move it first")
        tmp = real.with_name(real.name + ".migrating")
        _remove(tmp)
        try:
            referenced = _write(tmp, old.records, segment_bytes)
            new = read(tmp)
            _check_same(real, old.records, new.records)
            _swap(real, old, tmp, backup)
        finally:
            _remove(tmp)
    after = _files(real)
    return MigrateResult(
        real,
        backup,
        len(old.records),
        referenced,
        size,
        sum(p.stat().st_size for p in after),
        cells,
        list(old.warnings),
        len(after),
    )


def same_records(old: Sequence[Record], new: Sequence[Record]) -> bool:
    """`new` holds exactly `old`'s records, seq for seq: kind, time, fields and cells."""
    return len(old) == len(new) and all(_meaning(a) == _meaning(b) for a, b in zip(old, new, strict=True))


def _write(tmp: Path, records: Sequence[Record], segment_bytes: int) -> int:
    """Append every record to a new ledger at `tmp` with the writer (one fsync per segment);
    a v1 `delete`/`failed` repeating an open intent's lists now refers to it. Segments are
    sealed where a run begins (a `pause`, or another actor), as apply seals them."""
    referenced = 0
    unclosed: dict[tuple[tuple[str, ...], Ids, Ids], list[int]] = {}
    actor: object = None
    with LedgerWriter(read(tmp), segment_bytes=segment_bytes, sync_each=False) as writer:
        for r in records:
            if r.kind == "pause" or r.data.get("actor") != actor:
                writer.new_run()
                actor = r.data.get("actor")
            fields: dict[str, Any] = {k: v for k, v in r.data.items() if k not in _CHAIN_FIELDS}
            if r.kind in CELL_KINDS and r.intent_seq is None:
                same = (r.key, r.asset_ids, r.point_ids)
                if r.kind in CLOSING_KINDS and unclosed.get(same):
                    for name in LIST_FIELDS:
                        del fields[name]
                    fields["intent"] = unclosed[same].pop()
                    referenced += 1
                else:
                    fields["assetIds"], fields["pointIds"] = r.asset_ids, r.point_ids
                if r.kind == "intent":
                    unclosed.setdefault(same, []).append(r.seq)
            writer.append(r.kind, fields, at=r.at)
        writer.sync()
    return referenced


def _check_same(path: Path, old: Sequence[Record], new: Sequence[Record]) -> None:
    if len(old) != len(new):
        raise LedgerError(f"{path}: migration gave {len(new)} records, not {len(old)}; nothing changed")
    if not same_records(old, new):
        raise LedgerError(f"{path}: migration changed a record; nothing changed")
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


def _files(main: Path) -> list[Path]:
    side = _lists.sidecar_dir(main)
    return [main, *(p for p in side.rglob("*") if p.is_file())] if side.is_dir() else [main]


def _size(main: Path) -> int:
    return sum(p.stat().st_size for p in _files(main))


def _remove(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    shutil.rmtree(_lists.sidecar_dir(tmp), ignore_errors=True)


def _swap(real: Path, old: Ledger, tmp: Path, backup: Path) -> None:
    """The original kept under its backup name (main hard-linked, its sidecar moved), then
    the new sidecar and main file moved in, the main file last. A v1/v2 original has no
    sidecar, so until that last rename `real` is still the original ledger, whole."""
    side, new_side = _lists.sidecar_dir(real), _lists.sidecar_dir(tmp)
    try:
        if os.stat(real).st_size != old.size and old.tail == real:
            raise LedgerError(f"{real}: the ledger changed while it was migrated; nothing changed")
        os.link(real, backup)
        if side.exists():
            os.rename(side, _lists.sidecar_dir(backup))
        if new_side.exists():
            os.rename(new_side, side)
        os.replace(tmp, real)
        _lists.fsync_dir(real.parent)
    except OSError as exc:
        raise LedgerError(
            f"{exc.filename or real}: cannot swap in the migrated ledger: {exc.strerror or exc}"
        ) from exc
