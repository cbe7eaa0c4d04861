"""The diff: declared cells minus ledger cells, a pure function of (manifests, ledger).

`diff(manifests, ledger)` finds, per (manifest, org, pipeline, stage), which declared
cells the ledger has not recorded as deleted, without materialising cells: assets are
grouped by the set of ledger records that touch them, and each group's pending points
are computed once. It also finds what is in doubt (an `intent` that no later `delete`
or `failed` closes), history no manifest declares any more, pipelines an interrupted
run left paused, and pending cells already cleared under a name that no longer
exists (a rename). No network, clock, files or randomness here (DESIGN "Plan").

The rules are `ledger.history`'s (what is in doubt, distinct cells, left paused, starts
in doubt); this module keeps fast per-key versions of the first two for planning at
scale, which tests/test_history.py holds equal to them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Literal

from reconciler.ledger import Ledger, Record, SegmentSummary, history, no_gc
from reconciler.manifests import Manifest
from reconciler.plan.values import (
    Diff,
    KeyDiff,
    LedgerHead,
    Marks,
    PendingGroup,
    PendingResume,
    PipelineRef,
    RenameHint,
    StageKey,
)

Points = tuple[str, ...]
Ids = tuple[str, ...]
Sig = tuple[int, ...]  # the indexes of the ledger records that touch an asset


Strategy = Literal["fast", "general"]


def diff(
    manifests: Sequence[Manifest],
    ledger: Ledger,
    *,
    strategy: Strategy = "fast",
    paths: Counter[str] | None = None,
) -> Diff:
    """Declared cells minus ledger cells, per key, plus history, doubt and left-over pauses.

    `strategy="general"` turns every shortcut off (runs compared as tuples, disjoint
    deletes without an index, intents the reader saw closed, reused set differences and
    intersections): the same result, slower; tests/test_diff_fast.py compares the two.
    `paths`, if given, counts the keys each way took ("runs" or "sets", "disjoint" or
    "indexed", and "closed" intents skipped), so that comparison can tell it tried the
    shortcuts.
    """
    with no_gc():
        return _diff(manifests, ledger, general=strategy == "general", paths=paths)


def _diff(
    manifests: Sequence[Manifest], ledger: Ledger, *, general: bool, paths: Counter[str] | None
) -> Diff:
    by_key = _records_by_key(ledger.records)
    pipeline_records = ledger.pipeline_records()
    resumes = {PipelineRef(*p): seq for p, seq in history.last_run(pipeline_records).items()}
    aliases = _aliases(manifests)
    sets = _Sets((), general=True) if general else _Sets(ledger.closed_intents)
    sets.paths = Counter() if paths is None else paths
    sets.counting = paths is not None
    declared_keys: set[StageKey] = set()
    keys: list[KeyDiff] = []
    undeclared: dict[StageKey, int] = {}
    for m in manifests:
        for stage in m.stages:
            key = StageKey(m.name, m.org_id, m.pipeline_id, stage)
            own = [StageKey(name, *key[1:]) for name in (m.name, *aliases.get(m.name, ()))]
            declared_keys.update(own)
            records = _merged(by_key, own)
            kd, outside = _diff_key(key, m.point_ids, m.asset_ids, records, resumes, sets)
            keys.append(kd)
            if outside:
                undeclared[key] = outside
    for key, records in by_key.items():
        if key in declared_keys:
            continue
        deletes = [r for r in records if r.kind == "delete"]
        if deletes:
            undeclared[key] = sets.distinct_cells(deletes)
    undeclared.update(_summed_up(ledger, manifests))
    return Diff(
        keys=tuple(keys),
        undeclared=tuple(sorted(undeclared.items())),
        pending_resumes=tuple(_left_paused(pipeline_records)),
        renames=tuple(_renames(keys, by_key, declared_keys, sets, {m.name: m.reclear for m in manifests})),
        ledger=LedgerHead(str(ledger.path), ledger.head_seq, ledger.head_hash),
        marks=tuple(
            (m.name, Marks(m.reclear, m.renamed_from))
            for m in manifests
            if m.reclear is not None or m.renamed_from
        ),
    )


def skim(manifests: Sequence[Manifest]) -> Callable[[SegmentSummary], bool]:
    """What `ledger.read(skim=)` may take from a sealed segment's summary when planning
    `manifests`: a segment none of whose cell records names one of their manifests (or a
    name they were renamed from) or one of their stages. Its keys are then only history
    no manifest declares, counted; recleared cells and renames are on declared stages."""
    names = {m.name for m in manifests} | {old for m in manifests for old in m.renamed_from}
    stages = {(m.org_id, m.pipeline_id, stage) for m in manifests for stage in m.stages}
    return lambda s: s.manifests().isdisjoint(names) and s.stages().isdisjoint(stages)


def _summed_up(ledger: Ledger, manifests: Sequence[Manifest]) -> Iterator[tuple[StageKey, int]]:
    """The undeclared history of the segments the reader skimmed, from their summaries."""
    if not ledger.skimmed:
        return
    allowed = skim(manifests)
    for summary in ledger.skimmed:
        if not allowed(summary):  # read for other manifests: the counts would be wrong
            raise ValueError(f"internal: {summary.where} was skimmed, but these manifests need its records")
        for key, cells in summary.deleted.items():
            if cells:
                yield StageKey(*key), cells


def _records_by_key(records: Iterable[Record]) -> dict[StageKey, list[Record]]:
    """The cell records (intent, delete, failed) of each key, in ledger order."""
    out: dict[tuple[str, str, str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.kind in ("intent", "delete", "failed"):
            out[r.key].append(r)
    return {StageKey(*key): rs for key, rs in out.items()}  # a key once, not once a record


def _aliases(manifests: Sequence[Manifest]) -> dict[str, tuple[str, ...]]:
    """`metadata.renamedFrom`: the old names whose history a manifest carries on."""
    return {m.name: m.renamed_from for m in manifests}


def _merged(by_key: dict[StageKey, list[Record]], keys: Sequence[StageKey]) -> list[Record]:
    if len(keys) == 1:
        return by_key.get(keys[0], [])
    return sorted((r for k in keys for r in by_key.get(k, ())), key=lambda r: r.seq)


class _Sets:
    """Set views of the shared ID tuples, each built once per diff, keyed by identity.

    The ledger reader shares one tuple per distinct ID list (the batches of weekly fleet
    resets repeat the same lists) and the loader one per ID file, so what one key
    computes from them is reused by every other key naming the same tuples. Each entry
    keeps the tuples it was built from alive, so an `id` is never reused meanwhile.
    """

    def __init__(self, closed_intents: Iterable[int] = (), *, general: bool = False) -> None:
        self.closed_intents = frozenset(closed_intents)
        self.general = general  # no shortcut: every key through sets and the per-asset index
        self.paths: Counter[str] = Counter()
        self.counting = False  # `paths` asked for: count what only a test looks at, too
        self._sets: dict[int, tuple[Ids, frozenset[str]]] = {}
        self._unions: dict[tuple[int, ...], tuple[list[Ids], frozenset[str], bool]] = {}
        self._minus: dict[tuple[int, int], tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}
        self._common: dict[tuple[int, int], tuple[frozenset[str], frozenset[str], int]] = {}
        self._runs: dict[tuple[int, ...], tuple[Ids, list[Ids], Ids | None]] = {}

    def of(self, ids: Ids) -> frozenset[str]:
        hit = self._sets.get(id(ids))
        if hit is None or hit[0] is not ids:
            hit = self._sets[id(ids)] = (ids, frozenset(ids))
        return hit[1]

    def union(self, lists: list[Ids]) -> tuple[frozenset[str], bool]:
        """The union of the lists, and whether no asset is in two of them (nor twice in one)."""
        if self.general:
            return frozenset(chain.from_iterable(lists)), False
        key = tuple(map(id, lists))
        hit = self._unions.get(key)
        if hit is None or any(a is not b for a, b in zip(hit[0], lists, strict=True)):
            union = frozenset(chain.from_iterable(lists))
            hit = self._unions[key] = (lists, union, len(union) == sum(map(len, lists)))
        return hit[1], hit[2]

    def untouched_runs(self, asset_ids: Ids, deletes: Sequence[Record]) -> Sequence[str] | None:
        """`_untouched_runs`, once per (declared list, deletes' lists): weekly resets of one
        fleet name the same ID file and, in a v3 ledger, the same stored lists every week."""
        lists = [r.asset_ids for r in deletes]
        key = (id(asset_ids), *map(id, lists))
        hit = self._runs.get(key)
        if (
            hit is None
            or hit[0] is not asset_ids
            or any(a is not b for a, b in zip(hit[1], lists, strict=True))
        ):
            found = _untouched_runs(asset_ids, deletes)
            hit = self._runs[key] = (asset_ids, lists, None if found is None else tuple(found))
        return hit[2]

    def distinct_cells(self, records: Sequence[Record]) -> int:
        """`history.distinct_cells`; records that share no asset (batches of one run, the usual
        history) count without a per-asset index, from set views built once per list."""
        _, disjoint = self.union([r.asset_ids for r in records])
        if not disjoint:
            return history.distinct_cells(records)
        return sum(len(r.asset_ids) * len(self.of(r.point_ids)) for r in records)

    def minus(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        if self.general:
            return a - b
        hit = self._minus.get((id(a), id(b)))
        if hit is None or hit[0] is not a or hit[1] is not b:
            hit = self._minus[id(a), id(b)] = (a, b, a - b)
        return hit[2]

    def common(self, a: frozenset[str], b: frozenset[str]) -> int:
        """`len(a & b)`, once per pair: every delete of a manifest's runs names the same
        point list, whose set meets the declared points' set in each of them alike."""
        if self.general:
            return len(a & b)
        hit = self._common.get((id(a), id(b)))
        if hit is None or hit[0] is not a or hit[1] is not b:
            hit = self._common[id(a), id(b)] = (a, b, len(a & b))
        return hit[2]


def _diff_key(
    key: StageKey,
    points: Points,
    asset_ids: Ids,
    records: Sequence[Record],
    resumes: dict[PipelineRef, int],
    sets: _Sets,
) -> tuple[KeyDiff, int]:
    """One key's pending, in-doubt and applied cells; and its history outside the manifest."""
    deletes = [r for r in records if r.kind == "delete"]
    point_set = sets.of(points)
    open_points, open_intents = _open_intents(records, lambda: sets.of(asset_ids), sets.closed_intents)
    groups: dict[Points, list[str]] = {}
    doubt_groups: dict[Points, list[str]] = {}

    def add(todo: Points, assets: Sequence[str]) -> None:
        if not todo or not assets:
            return
        plain = [a for a in assets if a not in open_points] if open_points else assets
        if plain:
            groups.setdefault(todo, []).extend(plain)
        if len(plain) != len(assets):
            for a in assets:
                if a in open_points:
                    _split_doubt(a, todo, open_points[a], groups, doubt_groups)

    # Most keys are untouched, or cleared in batches that are runs of the declared list
    # (compared as tuples, no set built); the rest take set operations.
    untouched = None if sets.general else sets.untouched_runs(asset_ids, deletes)
    sets.paths["sets" if untouched is None else "runs"] += 1
    if sets.closed_intents and sets.counting:
        sets.paths["closed"] += sum(1 for r in records if r.seq in sets.closed_intents)
    if untouched is not None:
        asset_set: frozenset[str] = frozenset()  # not needed: every delete's assets are declared
        disjoint = all_declared = True
        add(points, untouched)
    else:
        asset_set = sets.of(asset_ids)
        touched, disjoint = sets.union([r.asset_ids for r in deletes])
        unset = sets.minus(asset_set, touched)
        if unset:
            add(points, [a for a in asset_ids if a in unset])
        all_declared = len(asset_set) - len(unset) == len(touched)  # touched <= asset_set
    applied = outside = 0
    # Deletes that share no asset (batches of one run: the usual ledger) are each their
    # own group; only then is the per-asset index needed.
    sets.paths["disjoint" if disjoint else "indexed"] += 1
    groups_of = _disjoint_groups(deletes) if disjoint else _sig_groups(deletes, *_asset_index(deletes))
    for sig, assets in groups_of:
        done = _done_points(deletes, sig, sets)
        inside = sets.common(done, point_set)
        if all_declared or asset_set.issuperset(assets):
            declared: Sequence[str] = assets
        else:
            declared = [a for a in assets if a in asset_set]
        applied += inside * len(declared)
        outside += (len(done) - inside) * len(declared) + len(done) * (len(assets) - len(declared))
        if inside < len(points) and declared:
            add(tuple(p for p in points if p not in done), declared)
    first = _first_doubtful_intent(open_intents, doubt_groups)
    resumed = first is not None and resumes.get(key.pipeline, 0) > first
    kd = KeyDiff(
        key=key,
        applied_cells=applied,
        pending=tuple(PendingGroup(p, tuple(a)) for p, a in groups.items()),
        in_doubt=tuple(PendingGroup(p, tuple(a)) for p, a in doubt_groups.items()),
        resumed_since_intent=bool(doubt_groups) and resumed,
    )
    return kd, outside


def _untouched_runs(asset_ids: Ids, deletes: Sequence[Record]) -> list[str] | None:
    """The declared assets no delete names, in declared order, when every delete's assets
    are a run of the declared list and no two runs overlap; else None (use sets).

    That is the usual ledger: a plan keeps the declared order and cuts it into requests,
    whatever order they complete in. Runs are compared as tuples (C speed, no ID hashed),
    so a fleet of 200,000 assets applied in 200 batches costs 200 comparisons, not sets
    of 200,000 IDs. The declared list has no duplicates (the loader drops them).
    """
    if not deletes:
        return list(asset_ids)
    starts: dict[str, Ids] = {}
    for r in deletes:
        ids = r.asset_ids
        if not ids or ids[0] in starts:  # two deletes from one asset: not disjoint runs
            return None
        starts[ids[0]] = ids
    untouched: list[str] = []
    found = pos = 0
    end = len(asset_ids)
    while pos < end:
        run = starts.get(asset_ids[pos])
        if run is not None and asset_ids[pos : pos + len(run)] == run:
            pos += len(run)
            found += 1
        else:
            untouched.append(asset_ids[pos])
            pos += 1
    return untouched if found == len(starts) else None


def _done_points(records: Sequence[Record], sig: Sig, sets: _Sets) -> frozenset[str]:
    if len(sig) == 1:
        return sets.of(records[sig[0]].point_ids)
    return frozenset().union(*(records[i].point_ids for i in sig))


def _disjoint_groups(records: Sequence[Record]) -> Iterator[tuple[Sig, Sequence[str]]]:
    """`_sig_groups` when no asset is in two records, nor twice in one: each record's assets."""
    for i, r in enumerate(records):
        if r.asset_ids:
            yield (i,), r.asset_ids


def _asset_index(records: Sequence[Record]) -> tuple[dict[str, Sig], set[str]]:
    """Asset -> records touching it, and the assets in more than one record.

    Built a record at a time with set operations: a ledger of batches rarely repeats
    an asset across records, so scanning every record per asset would be wasted work.
    """
    index: dict[str, Sig] = {}
    multi: set[str] = set()
    for i, r in enumerate(records):
        fresh = dict.fromkeys(r.asset_ids, (i,))
        clash = {a: index[a] for a in index.keys() & fresh.keys()}
        index.update(fresh)
        for a, old in clash.items():
            index[a] = (*old, i)
        multi.update(clash)
    return index, multi


def _sig_groups(
    records: Sequence[Record], index: dict[str, Sig], multi: set[str]
) -> Iterator[tuple[Sig, Sequence[str]]]:
    """Every asset of the records, grouped by the records that touch it."""
    for i, r in enumerate(records):
        own = (
            [a for a in dict.fromkeys(r.asset_ids) if a not in multi]
            if multi
            else list(dict.fromkeys(r.asset_ids))
        )
        if own:
            yield (i,), own
    by_sig: dict[Sig, list[str]] = {}
    for a in multi:
        by_sig.setdefault(index[a], []).append(a)
    yield from sorted(by_sig.items())


def _open_intents(
    records: Sequence[Record],
    declared: Callable[[], frozenset[str]],
    closed: frozenset[int] = frozenset(),
) -> tuple[dict[str, set[str]], list[Record]]:
    """Per declared asset, the points some intent sent that no later delete or failed closed
    (`history.open_intents`, one key at a time, narrowed to the declared assets).

    An intent closed exactly (a later record of the same key with the same lists, the
    common case) is dropped first; the rest are replayed in ledger order a cell at a time.
    `closed` (`Ledger.closed_intents`, what the reader saw closed exactly) only spares
    comparing the lists: each of them is also closed by that rule.
    """
    candidates = [r for r in records if r.kind == "intent" and r.seq not in closed]
    if not candidates:
        return {}, []
    closers = {(r.asset_ids, r.point_ids): r.seq for r in records if r.kind != "intent"}
    open_intents = [r for r in candidates if closers.get((r.asset_ids, r.point_ids), 0) < r.seq]
    if not open_intents:
        return {}, []
    first = open_intents[0].seq
    assets = declared()
    open_seqs = {r.seq for r in open_intents}
    out: dict[str, set[str]] = {}
    for r in records:
        if r.seq < first:
            continue
        for a in r.asset_ids:
            if a not in assets:
                continue
            if r.kind == "intent":
                if r.seq in open_seqs:
                    out.setdefault(a, set()).update(r.point_ids)
            elif a in out:
                out[a].difference_update(r.point_ids)
    return {a: p for a, p in out.items() if p}, open_intents


def _first_doubtful_intent(intents: Sequence[Record], doubt_groups: dict[Points, list[str]]) -> int | None:
    """The earliest open intent that still has cells in doubt (its resume rule is the strictest)."""
    doubtful: dict[str, frozenset[str]] = {}
    for points, assets in doubt_groups.items():
        for a in assets:
            doubtful[a] = frozenset(points)
    for r in intents:  # in ledger order, so the first match is the earliest
        if any(a in doubtful and not doubtful[a].isdisjoint(r.point_ids) for a in r.asset_ids):
            return r.seq
    return None


def _split_doubt(
    asset: str,
    todo: Points,
    sent: set[str],
    groups: dict[Points, list[str]],
    doubt_groups: dict[Points, list[str]],
) -> None:
    doubtful = tuple(p for p in todo if p in sent)
    rest = tuple(p for p in todo if p not in sent)
    if doubtful:
        doubt_groups.setdefault(doubtful, []).append(asset)
    if rest:
        groups.setdefault(rest, []).append(asset)


def _renames(
    keys: Sequence[KeyDiff],
    by_key: dict[StageKey, list[Record]],
    declared: set[StageKey],
    sets: _Sets,
    reclear: dict[str, str | None],
) -> Iterator[RenameHint]:
    """Pending cells that were cleared under a manifest name no manifest declares any more.

    A renamed manifest clears everything again unless `metadata.renamedFrom` carries its
    history over: plan and apply refuse it unless `metadata.reclear` says it is on purpose
    (`reclear`: each manifest's reason), before anything is sent.
    """
    gone: dict[tuple[str, str, str], list[StageKey]] = defaultdict(list)
    for k, records in by_key.items():
        if k not in declared and any(r.kind == "delete" for r in records):
            gone[(k.org_id, k.pipeline_id, k.stage)].append(k)
    if not gone:
        return
    found: dict[tuple[str, str], int] = defaultdict(int)
    for kd in keys:
        for old in gone.get((kd.key.org_id, kd.key.pipeline_id, kd.key.stage), ()):
            deletes = [r for r in by_key[old] if r.kind == "delete"]
            for g in (*kd.pending, *kd.in_doubt):
                overlap, _ = _diff_key(kd.key, g.points, g.assets, deletes, {}, sets)
                found[(kd.key.manifest, old.manifest)] += overlap.applied_cells
    for (manifest, old_name), cells in sorted(found.items()):
        if cells:
            yield RenameHint(manifest, old_name, cells, reclear.get(manifest))


def _left_paused(records: Iterable[Record]) -> Iterator[PendingResume]:
    """`history.left_paused`, as the plan's values (by pipeline: the same whichever
    records were read in full)."""
    for r in history.left_paused(records):
        yield PendingResume(
            pipeline=PipelineRef(*r.pipeline),
            paused_at=r.at,
            seq=r.seq,
            execution_mode=_int(r.data.get("executionMode")),
            kafka_rate=_int(r.data.get("kafkaRate")),
        )


def starts_in_doubt(records: Iterable[Record]) -> list[tuple[PipelineRef, str]]:
    """`history.starts_in_doubt` with `PipelineRef`s: pipelines whose last record is a
    `start` with no outcome; only a person can tell whether it runs now."""
    return [(PipelineRef(*p), at) for p, at in history.starts_in_doubt(records)]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
