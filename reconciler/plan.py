"""The diff and the plan: pure functions of (manifests, ledger, options).

`diff(manifests, ledger)` finds, per (manifest, org, pipeline, stage), which
declared cells the ledger has not recorded as deleted, without materialising
cells: assets are grouped by the set of ledger records that touch them, and each
group's pending points are computed once. `build_plan(diff, options)` turns that
into requests that cover exactly the pending cells (DESIGN invariant 1 and
"Plan"). No network, clock, files or randomness here.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.ledger import Ledger, Record, canonical
from reconciler.manifests import Manifest

Key = tuple[str, str, str, str]  # manifest, orgId, pipelineId, stageInstanceName
Points = tuple[str, ...]

DEFAULT_MAX_POINTS = 100_000
DEFAULT_MAX_ASSETS = 1_000
PLAN_FORMAT = 1


@dataclass(frozen=True)
class Options:
    max_points: int = DEFAULT_MAX_POINTS
    max_assets: int = DEFAULT_MAX_ASSETS
    targets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"maxPoints": self.max_points, "maxAssets": self.max_assets, "targets": list(self.targets)}


@dataclass(frozen=True)
class Action:
    """One Delete Stage State request: every listed asset x every listed point."""

    manifest: str
    org_id: str
    pipeline_id: str
    stage: str
    asset_ids: tuple[str, ...]
    point_ids: tuple[str, ...]
    in_doubt: bool = False
    resumed_since: bool = False

    @property
    def cells(self) -> int:
        return len(self.asset_ids) * len(self.point_ids)

    @property
    def key(self) -> Key:
        return (self.manifest, self.org_id, self.pipeline_id, self.stage)

    @property
    def pipeline(self) -> tuple[str, str]:
        return (self.org_id, self.pipeline_id)

    def halves(self) -> tuple[Action, Action]:
        """Split in two for a gateway that takes fewer points (61105), or fewer assets."""
        if len(self.point_ids) > 1:
            mid = len(self.point_ids) // 2
            return (
                _replace(self, point_ids=self.point_ids[:mid]),
                _replace(self, point_ids=self.point_ids[mid:]),
            )
        mid = len(self.asset_ids) // 2
        return (
            _replace(self, asset_ids=self.asset_ids[:mid]),
            _replace(self, asset_ids=self.asset_ids[mid:]),
        )

    def cell_fields(self) -> dict[str, Any]:
        """The fields of a ledger `intent`/`delete` record for this request."""
        return {
            "manifest": self.manifest,
            "orgId": self.org_id,
            "pipelineId": self.pipeline_id,
            "stageInstanceName": self.stage,
            "assetIds": list(self.asset_ids),
            "pointIds": list(self.point_ids),
        }

    def to_json(self) -> dict[str, Any]:
        out = {**self.cell_fields(), "cells": self.cells}
        if self.in_doubt:
            out["inDoubt"] = True
            out["resumedSince"] = self.resumed_since
        return out


def _replace(action: Action, **changes: Any) -> Action:
    fields = {**action.__dict__, **changes}
    return Action(**fields)


@dataclass(frozen=True)
class PendingGroup:
    """Assets of one key that share the same pending point set."""

    points: Points
    assets: tuple[str, ...]


@dataclass(frozen=True)
class KeyDiff:
    """What the ledger says about one declared (manifest, org, pipeline, stage)."""

    key: Key
    applied_cells: int
    pending: tuple[PendingGroup, ...]
    in_doubt: tuple[PendingGroup, ...]
    resumed_since_intent: bool

    @property
    def pending_cells(self) -> int:
        return sum(len(g.points) * len(g.assets) for g in (*self.pending, *self.in_doubt))

    @property
    def in_doubt_cells(self) -> int:
        return sum(len(g.points) * len(g.assets) for g in self.in_doubt)


@dataclass(frozen=True)
class Diff:
    keys: tuple[KeyDiff, ...]
    undeclared: tuple[tuple[Key, int], ...]
    paused_by_us: tuple[Record, ...]
    ledger_seq: int
    ledger_hash: str
    ledger_path: str


def diff(manifests: Sequence[Manifest], ledger: Ledger) -> Diff:
    """Declared cells minus ledger cells, per key, plus history and left-over pauses."""
    deletes: dict[Key, list[Record]] = defaultdict(list)
    intents: dict[Key, list[Record]] = defaultdict(list)
    for r in ledger.records:
        if r.kind == "delete":
            deletes[r.key].append(r)
        elif r.kind == "intent":
            intents[r.key].append(r)
    resumes = _last_resume(ledger.records)
    declared_keys: set[Key] = set()
    keys: list[KeyDiff] = []
    undeclared: dict[Key, int] = {}
    for m in manifests:
        for stage in m.stages:
            key = (m.name, m.org_id, m.pipeline_id, stage)
            declared_keys.add(key)
            kd, outside = _diff_key(key, m, deletes.get(key, []), intents.get(key, []), resumes)
            keys.append(kd)
            if outside:
                undeclared[key] = outside
    for key, records in deletes.items():
        if key not in declared_keys:
            undeclared[key] = _distinct_cells(records)
    return Diff(
        keys=tuple(keys),
        undeclared=tuple(sorted(undeclared.items())),
        paused_by_us=tuple(_left_paused(ledger.records)),
        ledger_seq=ledger.head_seq,
        ledger_hash=ledger.head_hash,
        ledger_path=str(ledger.path),
    )


Sig = tuple[int, ...]  # the indexes of the ledger records that touch an asset


def _asset_index(records: Sequence[Record]) -> tuple[dict[str, Sig], set[str]]:
    """Asset -> records touching it, and the assets in more than one record.

    Built a record at a time with set operations, since a ledger of batches rarely
    repeats an asset across records (STYLE: never scan every record per asset).
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
) -> Iterator[tuple[Sig, list[str]]]:
    """Every asset of the ledger, grouped by the records that touch it."""
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


def _diff_key(
    key: Key,
    m: Manifest,
    deletes: Sequence[Record],
    intents: Sequence[Record],
    resumes: dict[tuple[str, str], int],
) -> tuple[KeyDiff, int]:
    points = m.point_ids
    point_set = frozenset(points)
    asset_set = frozenset(m.asset_ids)
    index, multi = _asset_index(deletes)
    doubt_points = _intent_points(intents, asset_set)
    groups: dict[Points, list[str]] = {}
    doubt_groups: dict[Points, list[str]] = {}

    def add(todo: Points, assets: list[str]) -> None:
        if not todo or not assets:
            return
        plain = [a for a in assets if a not in doubt_points] if doubt_points else assets
        if plain:
            groups.setdefault(todo, []).extend(plain)
        if len(plain) != len(assets):
            for a in assets:
                if a in doubt_points:
                    _split_doubt(a, todo, doubt_points[a], groups, doubt_groups)

    add(points, [a for a in m.asset_ids if a not in index] if index else list(m.asset_ids))
    applied = outside = 0
    for sig, assets in _sig_groups(deletes, index, multi):
        done = frozenset().union(*(deletes[i].point_ids for i in sig))
        inside = len(done & point_set)
        declared = [a for a in assets if a in asset_set]
        applied += inside * len(declared)
        outside += (len(done) - inside) * len(declared) + len(done) * (len(assets) - len(declared))
        if inside < len(points) and declared:
            add(tuple(p for p in points if p not in done), declared)
    first_intent = _first_doubtful_intent(intents, doubt_groups)
    resumed = first_intent is not None and resumes.get((key[1], key[2]), 0) > first_intent
    return (
        KeyDiff(
            key=key,
            applied_cells=applied,
            pending=tuple(PendingGroup(p, tuple(a)) for p, a in groups.items()),
            in_doubt=tuple(PendingGroup(p, tuple(a)) for p, a in doubt_groups.items()),
            resumed_since_intent=bool(doubt_groups) and resumed,
        ),
        outside,
    )


def _first_doubtful_intent(intents: Sequence[Record], doubt_groups: dict[Points, list[str]]) -> int | None:
    """The earliest intent that still has cells in doubt (its resume rule is the strictest)."""
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


def _intent_points(intents: Sequence[Record], assets: frozenset[str]) -> dict[str, set[str]]:
    """Per declared asset, the points some intent sent for it (in doubt unless deleted)."""
    out: dict[str, set[str]] = {}
    for r in intents:
        for a in r.asset_ids:
            if a in assets:
                out.setdefault(a, set()).update(r.point_ids)
    return out


def _distinct_cells(records: Sequence[Record]) -> int:
    index, multi = _asset_index(records)
    return sum(
        len(assets) * len(frozenset().union(*(records[i].point_ids for i in sig)))
        for sig, assets in _sig_groups(records, index, multi)
    )


def _last_resume(records: Iterable[Record]) -> dict[tuple[str, str], int]:
    last: dict[tuple[str, str], int] = {}
    for r in records:
        if r.kind == "resume":
            last[r.pipeline] = r.seq
    return last


def _left_paused(records: Iterable[Record]) -> Iterator[Record]:
    """`pause` records with no `resume` after them: pipelines an interrupted run left paused."""
    open_pauses: dict[tuple[str, str], Record] = {}
    for r in records:
        if r.kind == "pause":
            open_pauses[r.pipeline] = r
        elif r.kind == "resume":
            open_pauses.pop(r.pipeline, None)
    yield from open_pauses.values()


# --- the plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What apply would do: requests, per-key summaries, and the ledger head it is for."""

    actions: tuple[Action, ...]
    keys: tuple[KeyDiff, ...]
    undeclared: tuple[tuple[Key, int], ...]
    paused_by_us: tuple[Record, ...]
    options: Options
    ledger_seq: int
    ledger_hash: str
    ledger_path: str
    manifest_paths: tuple[str, ...] = ()
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions or self.paused_by_us)

    @property
    def plan_hash(self) -> str:
        return plan_hash([a.to_json() for a in self.actions], self.ledger_seq, self.ledger_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "formatVersion": PLAN_FORMAT,
            "ledger": {"path": self.ledger_path, "seq": self.ledger_seq, "hash": self.ledger_hash},
            "manifests": list(self.manifest_paths),
            "options": self.options.to_json(),
            "planHash": self.plan_hash,
            "actions": [a.to_json() for a in self.actions],
            "pendingResumes": [
                {"orgId": r.data["orgId"], "pipelineId": r.data["pipelineId"], "pausedAt": r.at}
                for r in self.paused_by_us
            ],
            "summary": self.summary,
        }


def plan_hash(actions: list[dict[str, Any]], seq: int, head: str) -> str:
    """sha256 over the canonical actions and the ledger head they were planned against."""
    body = {"actions": actions, "ledger": {"seq": seq, "hash": head}}
    return hashlib.sha256(canonical(body)).hexdigest()


def build_plan(d: Diff, options: Options, manifest_paths: Sequence[str] = ()) -> Plan:
    """Requests covering exactly the pending cells, split to the size limits."""
    keys = tuple(k for k in d.keys if not options.targets or k.key[0] in options.targets)
    actions: list[Action] = []
    for kd in keys:
        for group in kd.pending:
            actions.extend(_split(kd.key, group, options, in_doubt=False, resumed=False))
        for group in kd.in_doubt:
            actions.extend(_split(kd.key, group, options, in_doubt=True, resumed=kd.resumed_since_intent))
    summary = {
        "pendingCells": sum(k.pending_cells for k in keys),
        "requests": len(actions),
        "appliedCells": sum(k.applied_cells for k in keys),
        "undeclaredCells": sum(n for _, n in d.undeclared),
        "inDoubtCells": sum(k.in_doubt_cells for k in keys),
    }
    return Plan(
        actions=tuple(actions),
        keys=keys,
        undeclared=d.undeclared,
        paused_by_us=d.paused_by_us,
        options=options,
        ledger_seq=d.ledger_seq,
        ledger_hash=d.ledger_hash,
        ledger_path=d.ledger_path,
        manifest_paths=tuple(manifest_paths),
        summary=summary,
    )


def _chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _split(
    key: Key, group: PendingGroup, options: Options, *, in_doubt: bool, resumed: bool
) -> Iterator[Action]:
    for assets in _chunks(group.assets, options.max_assets):
        for points in _chunks(group.points, options.max_points):
            yield Action(*key, asset_ids=assets, point_ids=points, in_doubt=in_doubt, resumed_since=resumed)
