"""The ledger's history rules, written once: pure functions over verified records.

DESIGN "Applied ledger" says what a history means; this module is that meaning, and
every view of it calls it: `ledger show`, the HTML report (`render.audit`), `ledger
resolve` and the evidence check. `plan._diff` keeps fast per-key variants of the same
rules for planning at scale, held equal to these by tests/test_history.py.

    open_intents(records, aliases=) -> [(intent, cells)]   what is in doubt, by cells
    carriers(aliases) -> {old name: new name}              metadata.renamedFrom, merged
    recorded_aliases(records) -> {name: old names}         renames the records declare
    distinct_cells(deletes) -> int                         counts are of distinct cells
    last_pipeline_records(records) -> {pipeline: record}   where this tool left each one
    last_run(records) -> {pipeline: seq}                   after which it may have run
    left_paused(records) -> [pause record]                 an interrupted run paused them
    starts_in_doubt(records) -> [(pipeline, at)]           a start with no outcome
    runs(records) -> [Run]                                 the applies that wrote them

No files, network or clock here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.ledger._format import canonical_text
from reconciler.ledger._record import CELL_KINDS, PIPELINE_KINDS, RUN_KINDS, Record

Cell = tuple[str, str]  # (assetId, pointId) inside one key
Key = tuple[str, str, str, str]  # (manifest, org, pipeline, stage)
Pipeline = tuple[str, str]  # (org, pipeline)

# Fields of a manifest that its `intent`/`delete` records carry besides the cells:
# `reclear` (the reason a manifest clears again what another name cleared) and
# `renamedFrom` (the old names whose history it carries on), so the ledger alone says
# which names are one history.
MARK_FIELDS = ("reclear", "renamedFrom")


def carriers(aliases: Mapping[str, Iterable[str]] | None) -> dict[str, str]:
    """Each old name and the name that carries its history on (`metadata.renamedFrom`),
    one step only, as plan merges them: a name's own records stay its own."""
    out: dict[str, str] = {}
    for name, olds in (aliases or {}).items():
        for old in olds:
            if old != name:
                out.setdefault(old, name)
    return out


def recorded_aliases(records: Iterable[Record]) -> dict[str, tuple[str, ...]]:
    """The renames the ledger's records declare: a manifest's `renamedFrom`, as its
    records carry it (every name it ever listed)."""
    found: dict[str, dict[str, None]] = {}
    for r in records:
        olds = r.data.get("renamedFrom") if r.kind in CELL_KINDS else None
        if isinstance(olds, list) and r.manifest is not None:
            found.setdefault(r.manifest, {}).update(dict.fromkeys(o for o in olds if isinstance(o, str)))
    return {name: tuple(olds) for name, olds in found.items()}


def merged_key(r: Record, carried: Mapping[str, str]) -> Key:
    """The key whose history `r` is part of: an old name's records are its carrier's."""
    manifest, org, pipeline, stage = r.key
    return (carried.get(manifest, manifest), org, pipeline, stage)


def open_intents(
    records: Iterable[Record], *, aliases: Mapping[str, Iterable[str]] | None = None
) -> list[tuple[Record, frozenset[Cell]]]:
    """Each intent with its cells in doubt, in ledger order (DESIGN: matching is by cells).

    A cell of an intent is in doubt when no later `delete` or `failed` of its key covers
    it (`aliases`, `{name: old names}`: an old name's records are the new name's key, as
    plan merges them), and no `delete` of that key covers it at all (a cell the history
    records as cleared is not pending, so nothing would send it again). A cell that
    several open intents name is counted once, under the earliest (in doubt since then).
    """
    carried = carriers(aliases)
    by_key: dict[Key, list[Record]] = defaultdict(list)
    for r in records:
        if r.kind in CELL_KINDS:
            by_key[merged_key(r, carried)].append(r)
    found: list[tuple[Record, frozenset[Cell]]] = []
    for rs in by_key.values():
        found.extend(_open_in_key(rs))
    found.sort(key=lambda e: e[0].seq)
    claimed: dict[Key, set[Cell]] = defaultdict(set)
    out = []
    for r, cells in found:
        mine = claimed[merged_key(r, carried)]
        cells = cells - mine if mine else cells
        if cells:
            mine.update(cells)
            out.append((r, cells))
    return out


def _open_in_key(records: Sequence[Record]) -> list[tuple[Record, frozenset[Cell]]]:
    """`open_intents` inside one key (records in ledger order). An intent a later record
    with the same lists closes (the usual run, a v2 `delete` naming its intent) is closed
    whole; only the rest are compared a cell at a time, and only on their own assets."""
    last_closer: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    for r in records:
        if r.kind != "intent":
            last_closer[r.ids] = r.seq
    candidates = [r for r in records if r.kind == "intent" and last_closer.get(r.ids, 0) < r.seq]
    if not candidates:
        return []
    assets = {a for r in candidates for a in r.asset_ids}
    first = candidates[0].seq
    deleted = {
        (a, p) for r in records if r.kind == "delete" for a in r.asset_ids if a in assets for p in r.point_ids
    }
    later: set[Cell] = set()  # covered by a delete or failed after the record at hand
    wanted = {r.seq for r in candidates}
    out = []
    for r in reversed(records):
        if r.seq < first:
            break
        if r.kind != "intent":
            later.update((a, p) for a in r.asset_ids if a in assets for p in r.point_ids)
        elif r.seq in wanted:
            cells = {(a, p) for a in r.asset_ids for p in r.point_ids}
            cells -= later
            cells -= deleted
            if cells:
                out.append((r, frozenset(cells)))
    out.reverse()
    return out


def distinct_cells(deletes: Sequence[Record]) -> int:
    """How many distinct (asset, point) cells `deletes` name (DESIGN: counts are of distinct cells)."""
    assets = [a for r in deletes for a in r.asset_ids]
    if len(set(assets)) == len(assets):  # the usual history: batches that share no asset
        return sum(len(r.asset_ids) * len(set(r.point_ids)) for r in deletes)
    points: dict[str, set[str]] = defaultdict(set)
    for r in deletes:
        for a in r.asset_ids:
            points[a].update(r.point_ids)
    return sum(map(len, points.values()))


def last_pipeline_records(records: Iterable[Record]) -> dict[Pipeline, Record]:
    """Each pipeline's last `pause`, `start` or `resume` record: where this tool left it."""
    last: dict[Pipeline, Record] = {}
    for r in records:
        if r.kind in PIPELINE_KINDS:
            last[r.pipeline] = r
    return last


def last_run(records: Iterable[Record]) -> dict[Pipeline, int]:
    """Each pipeline's last record after which it may have run: a `resume`, or a `start`
    announced before the call (whatever came of it)."""
    last: dict[Pipeline, int] = {}
    for r in records:
        if r.kind in RUN_KINDS:
            last[r.pipeline] = r.seq
    return last


def left_paused(records: Iterable[Record]) -> list[Record]:
    """The `pause` records with no `resume` after them, by pipeline: pipelines an
    interrupted run left paused. A `start` with no outcome after it closes the pause too:
    the start may have landed and a person may have paused the pipeline since, so it is
    not ours to start (`starts_in_doubt`)."""
    last = last_pipeline_records(records)
    return [last[p] for p in sorted(last) if last[p].kind == "pause"]


def starts_in_doubt(records: Iterable[Record]) -> list[tuple[Pipeline, str]]:
    """Pipelines whose last record is a `start` with no outcome (a runner died during the
    call), with its time: whether the pipeline runs, or a person paused it since, only a
    person can tell, so reconcile never starts it on its own."""
    last = last_pipeline_records(records)
    return sorted((p, r.at) for p, r in last.items() if r.kind == "start")


@dataclass(frozen=True)
class Run:
    """The records one apply (or one `ledger resolve`) wrote: consecutive records with one
    actor. Who ran it, and the seqs and times it spans."""

    actor: Mapping[str, Any]
    first: int
    last: int
    first_at: str
    last_at: str

    @property
    def name(self) -> str:
        """The run as a person finds it: its CI run, else who ran it from which commit."""
        a = self.actor
        url = a.get("runUrl")
        if isinstance(url, str) and url:
            return url
        who = f"{a.get('user', '?')}@{a.get('host', '?')}"
        commit = a.get("gitCommit")
        return who + (f" at commit {str(commit)[:12]}" if commit else "")


def runs(records: Iterable[Record]) -> list[Run]:
    """The runs that wrote `records` (those with an actor), in ledger order: a new run
    begins where the actor changes (CI gives each run its own URL)."""
    out: list[Run] = []
    current: str | None = None
    for r in records:
        actor = r.data.get("actor")
        if not isinstance(actor, dict):
            continue
        ident = canonical_text(actor)
        if ident != current or not out:
            out.append(Run(actor, r.seq, r.seq, r.at, r.at))
            current = ident
        else:
            prev = out[-1]
            out[-1] = Run(prev.actor, prev.first, r.seq, prev.first_at, r.at)
    return out


def run_of(found: Sequence[Run], seq: int) -> Run | None:
    """The run among `found` (from `runs`) that wrote record `seq`."""
    import bisect

    i = bisect.bisect_right([r.first for r in found], seq) - 1
    return found[i] if i >= 0 and found[i].first <= seq <= found[i].last else None
