"""The facts of an audit report, from the ledger alone: a pure function, JSON out.

`report.py` turns them into one HTML file. Everything here is read from verified
records (DESIGN "Applied ledger"): what each `delete` cleared and who did it from
which commit and run; how long its pipeline was paused around it (our `pause` to
the `resume` after it); `failed` requests; and, by the rules `plan` follows too
(`ledger.history`), the cells in doubt and the pipelines left paused. No clock: the report says "as of" the ledger's
head, so the same ledger always gives the same report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.ledger import Ledger, Record, history, record_time

Cell = tuple[str, str]


@dataclass
class _Pause:
    org: str
    pipeline: str
    start: Record
    end: Record | None = None

    def to_json(self) -> dict[str, Any]:
        seconds = None
        if self.end is not None:
            seconds = round((record_time(self.end) - record_time(self.start)).total_seconds(), 3)
        return {
            "org": self.org,
            "pipeline": self.pipeline,
            "from": self.start.at,
            "to": self.end.at if self.end is not None else None,
            "seconds": seconds,
        }


@dataclass
class _Lists:
    """Asset lists stored once and referred to by index (v2 deletes share their intent's)."""

    index: dict[tuple[str, ...], int] = field(default_factory=dict)

    def ref(self, ids: Sequence[str]) -> int:
        key = tuple(ids)
        if key not in self.index:
            self.index[key] = len(self.index)
        return self.index[key]

    def to_json(self) -> list[str]:
        return [",".join(ids) for ids in self.index]


def audit_data(ledger: Ledger, aliases: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain JSON (see the module docstring). `aliases`:
    renames (`{name: old names}`) to merge besides those the records declare."""
    records = ledger.records
    lists = _Lists()
    pauses, pause_of = _pauses(records)
    renames = {**history.recorded_aliases(records), **(aliases or {})}
    left = {r.pipeline for r in history.left_paused(records)}
    return {
        "ledger": _head(ledger),
        "deletes": [_delete(r, lists, pause_of.get(r.seq)) for r in records if r.kind == "delete"],
        "failed": [_failed(r, lists) for r in records if r.kind == "failed"],
        "inDoubt": [_doubt(r, cells, lists) for r, cells in history.open_intents(records, aliases=renames)],
        "leftPaused": [p.to_json() for p in pauses if p.end is None and (p.org, p.pipeline) in left],
        "pauses": [p.to_json() for p in pauses],
        "assetLists": lists.to_json(),
    }


def cells_of(r: Record) -> int:
    return len(r.asset_ids) * len(r.point_ids)


def _head(ledger: Ledger) -> dict[str, Any]:
    records = ledger.records
    return {
        "path": str(ledger.path),
        "seq": ledger.head_seq,
        "hash": ledger.head_hash,
        "records": len(records),
        "firstAt": records[0].at if records else None,
        "lastAt": records[-1].at if records else None,
    }


def _pauses(records: Iterable[Record]) -> tuple[list[_Pause], dict[int, int]]:
    """Our pauses, each closed by the first `resume` of its pipeline after it; and for each
    `delete` seq, the index of the pause it happened in (none: someone else paused it)."""
    out: list[_Pause] = []
    open_by_pipe: dict[tuple[str, str], int] = {}
    within: dict[int, int] = {}
    for r in records:
        if r.kind == "delete" and r.pipeline in open_by_pipe:
            within[r.seq] = open_by_pipe[r.pipeline]
        if r.kind not in ("pause", "resume"):
            continue
        ref = r.pipeline
        if r.kind == "pause" and ref not in open_by_pipe:
            open_by_pipe[ref] = len(out)
            out.append(_Pause(ref[0], ref[1], r))
        elif r.kind == "resume" and ref in open_by_pipe:
            out[open_by_pipe.pop(ref)].end = r
    return out, within


def _who(r: Record) -> dict[str, Any]:
    actor = r.actor
    run = actor.get("runUrl")
    return {
        "user": str(actor.get("user") or ""),
        "commit": str(actor.get("gitCommit") or ""),
        "run": run if isinstance(run, str) and run.startswith(("https://", "http://")) else "",
    }


def _cell_fields(r: Record, lists: _Lists) -> dict[str, Any]:
    d = r.data
    return {
        "seq": r.seq,
        "at": r.at,
        "day": record_time(r).date().isoformat(),
        "manifest": str(d.get("manifest")),
        "org": str(d.get("orgId")),
        "pipeline": str(d.get("pipelineId")),
        "stage": str(d.get("stageInstanceName")),
        "cells": cells_of(r),
        "assets": lists.ref(r.asset_ids),
        **_who(r),
    }


def _delete(r: Record, lists: _Lists, pause: int | None) -> dict[str, Any]:
    out = _cell_fields(r, lists)
    out["pause"] = pause  # None: the pipeline was paused by someone else (or --skip-pause-check)
    out["resolved"] = r.resolved
    snap = r.data.get("snapshot")
    out["snapshotItems"] = snap.get("items") if isinstance(snap, dict) else None
    return out


def _failed(r: Record, lists: _Lists) -> dict[str, Any]:
    return {**_cell_fields(r, lists), "code": r.code, "message": r.message}


def _doubt(r: Record, cells: frozenset[Cell], lists: _Lists) -> dict[str, Any]:
    out = _cell_fields(r, lists)
    out["cells"] = len(cells)
    out["assets"] = lists.ref(sorted({a for a, _ in cells}))
    return out
