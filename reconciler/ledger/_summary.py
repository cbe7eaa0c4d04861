"""What a sealed segment holds, in brief: written into its `seal`, so that a plan need not
read the segment again (issue 18: a CI apply must not cost more with every year of history).

A segment never changes once sealed. When the writer seals one, the `seal` record carries

    "body":    {"bytes": n, "sha256": <hex>}   the segment's bytes before the seal line
    "summary": {"first": s,                       the seq of its first record
                "open": bool,                     an intent in it that no record in it closes
                "keys": [[manifest, org, pipeline, stage, deleted cells], ...],
                "pipelines": [<record>, ...]}     each pipeline's last pause/start/resume,
                                                  and its last resume/start, as written

and the chain covers them like any field. A reader that needs nothing of the segment's
cells (no manifest it plans names that manifest or that stage) checks the seal's hash, the
body's size and sha256 against the file, and the seal's place in the chain, and takes the
summary instead of the records: any change to the segment's bytes still fails the read,
as a full read would (DESIGN invariant 5). `ledger verify` reads everything and checks
that each summary is exactly what its segment's records give.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import LedgerError
from reconciler.ledger._record import CELL_KINDS, PIPELINE_KINDS, RUN_KINDS, Record
from reconciler.ledger.history import distinct_cells

StageKey = tuple[str, str, str, str]  # (manifest, org, pipeline, stage)


@dataclass(frozen=True)
class SegmentSummary:
    """A sealed segment as its seal describes it (see the module)."""

    where: str  # the segment's file, for messages
    first: int  # seq of its first record (after: its last)
    last: int
    open: bool
    deleted: Mapping[StageKey, int]  # every key with a cell record, and its distinct deleted cells
    pipelines: tuple[Record, ...]  # in seq order

    def stages(self) -> set[tuple[str, str, str]]:
        return {k[1:] for k in self.deleted}

    def manifests(self) -> set[str]:
        return {k[0] for k in self.deleted}


def summarize(records: Sequence[Record]) -> dict[str, Any]:
    """The `summary` of a segment holding `records` (a seal's own excepted)."""
    by_key: dict[StageKey, list[Record]] = defaultdict(list)
    last: dict[tuple[str, str], Record] = {}
    last_run: dict[tuple[str, str], Record] = {}
    for r in records:
        if r.kind in CELL_KINDS:
            by_key[r.key].append(r)
        elif r.kind in PIPELINE_KINDS:
            last[r.pipeline] = r
            if r.kind in RUN_KINDS:
                last_run[r.pipeline] = r
    keep = {r.seq: r for r in (*last.values(), *last_run.values())}
    return {
        "first": records[0].seq if records else 0,
        "open": _any_open(records),
        "keys": [
            [*key, distinct_cells([r for r in rs if r.kind == "delete"])]
            for key, rs in sorted(by_key.items())
        ],
        "pipelines": [dict(keep[s].data) for s in sorted(keep)],
    }


def _any_open(records: Sequence[Record]) -> bool:
    """Whether an intent of `records` is not closed by a later record among them: a
    `delete`/`failed` naming it, or one with its key and lists (the chain's rule, by value:
    the writer and a reader of the same records always agree). Part of the seal's format,
    so it stays this exact rule: it is never less open than `history.open_intents`
    (an intent closed exactly has every cell covered), so a segment it calls closed has
    nothing in doubt."""
    unclosed: dict[tuple[Any, ...], list[int]] = {}
    by_seq: dict[int, tuple[Any, ...]] = {}
    for r in records:
        if r.kind not in CELL_KINDS:
            continue
        same = (r.key, r.asset_ids, r.point_ids)
        if r.kind == "intent":
            unclosed.setdefault(same, []).append(r.seq)
            by_seq[r.seq] = same
        elif r.intent_seq is not None:
            waiting = unclosed.get(by_seq.get(r.intent_seq, ()), [])
            if r.intent_seq in waiting:
                waiting.remove(r.intent_seq)
        elif unclosed.get(same):
            unclosed[same].pop()
    return any(unclosed.values())


def body_digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def from_seal(where: str, seal: Mapping[str, Any]) -> SegmentSummary | None:
    """The summary a seal carries; None when it has none (sealed by an earlier version) or
    it is not one this reader understands: the segment is then read in full."""
    s, body = seal.get("summary"), seal.get("body")
    if not (isinstance(s, dict) and isinstance(body, dict)):
        return None
    first, after, keys, pipes, is_open = (
        s.get("first"),
        seal.get("after"),
        s.get("keys"),
        s.get("pipelines"),
        s.get("open"),
    )
    if not (
        isinstance(first, int)
        and _is_int(first)
        and isinstance(after, int)
        and _is_int(after)
        and isinstance(keys, list)
        and isinstance(pipes, list)
        and type(is_open) is bool
    ):
        return None
    deleted: dict[StageKey, int] = {}
    for entry in keys:
        if not (
            isinstance(entry, list)
            and len(entry) == 5
            and all(isinstance(x, str) for x in entry[:4])
            and _is_int(entry[4])
        ):
            return None
        deleted[(entry[0], entry[1], entry[2], entry[3])] = entry[4]
    pipelines = []
    for data in pipes:
        if not (
            isinstance(data, dict)
            and data.get("kind") in PIPELINE_KINDS
            and _is_int(data.get("seq"))
            and isinstance(data.get("at"), str)
            and isinstance(data.get("hash"), str)
            and isinstance(data.get("orgId"), str)
            and isinstance(data.get("pipelineId"), str)
        ):
            return None
        pipelines.append(Record(data["seq"], data["kind"], data["at"], data["hash"], data))
    return SegmentSummary(where, first, after, is_open, deleted, tuple(pipelines))


def check_summary(where: str, seal: Mapping[str, Any], records: Sequence[Record]) -> None:
    """`ledger verify`: a seal's summary must be exactly what its segment's records give."""
    if "summary" not in seal:
        return
    if seal["summary"] != summarize(records):
        raise LedgerError(
            f"{where}: the seal's summary does not match the records of its segment; "
            "the seal was edited (every record verifies, so the summary is what changed)"
        )


def _is_int(value: object) -> bool:
    return type(value) is int
