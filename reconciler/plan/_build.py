"""The plan: a frozen value built from a `Diff` and `Options`, pure.

`build_plan(diff, options)` turns the diff into requests that cover exactly the
pending cells, split to the size limits (DESIGN invariant 1 and "Plan"). No
network, clock, files or randomness here. The plan's JSON document (printed and
saved) lives in `plan/file.py`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from itertools import chain
from typing import Any

from reconciler.ledger import canonical
from reconciler.plan.values import (
    Action,
    Diff,
    KeyDiff,
    LedgerHead,
    Marks,
    Options,
    PendingGroup,
    PendingResume,
    PipelineRef,
    Points,
    Policy,
    RenameHint,
    StageKey,
    Summary,
    pending_by_manifest,
)

_HASH_LINES_IDS = 5_000_000  # beyond this many IDs in its requests, a plan's hash is streamed


@dataclass(frozen=True)
class Plan:
    """What apply would do: requests and per-key summaries, over the diff they came from."""

    diff: Diff
    options: Options
    keys: tuple[KeyDiff, ...]
    actions: tuple[Action, ...]
    summary: Summary
    manifest_paths: tuple[str, ...] = ()

    @property
    def ledger(self) -> LedgerHead:
        return self.diff.ledger

    @property
    def undeclared(self) -> tuple[tuple[StageKey, int], ...]:
        return self.diff.undeclared

    @property
    def pending_resumes(self) -> tuple[PendingResume, ...]:
        """Pipelines an interrupted run left paused, to start again once their deletes are
        done: not while a manifest that `--target` leaves out still has work on them."""
        targeted = {k.key for k in self.keys}
        busy = {k.key.pipeline for k in self.diff.keys if k.pending_cells and k.key not in targeted}
        return tuple(r for r in self.diff.pending_resumes if r.pipeline not in busy)

    @property
    def renames(self) -> tuple[RenameHint, ...]:
        """Rename hints for the manifests this plan covers (`--target` narrows them)."""
        names = {k.key.manifest for k in self.keys}
        return tuple(r for r in self.diff.renames if r.manifest in names)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions or self.pending_resumes)

    @property
    def pipelines(self) -> tuple[PipelineRef, ...]:
        """Every pipeline the plan touches: its requests, its keys and left-over pauses."""
        found = {a.pipeline for a in self.actions} | {k.key.pipeline for k in self.keys}
        found |= {r.pipeline for r in self.pending_resumes}
        return tuple(sorted(found))

    @cached_property
    def action_parts(self) -> tuple[tuple[bytes, ...], ...]:
        """Each action's JSON in canonical form, UTF-8, in parts (`encode_action_parts`):
        what the plan hash covers, and the lines a plan file lists its actions on (encoded
        once for both). An ID list that requests share is one part, never copied into each
        line: a fleet plan's 60 MB of lines are held in some 2 MB."""
        return tuple(encode_action_parts(self.actions))

    @cached_property
    def plan_hash(self) -> str:
        """`plan_hash(self.hashed_fields())`, from the action lines already encoded, or
        (`streams`) a line at a time, keeping none."""
        fields = self.hashed_fields(actions=False)
        rest = canonical(fields)  # b'{"ledger":...}': "actions" sorts first, before it
        digest = hashlib.sha256(b'{"actions":[')
        kept = "action_parts" in self.__dict__ or not self.streams
        lines = self.action_parts if kept else encode_action_parts(self.actions)
        for i, parts in enumerate(lines):  # part by part: no line joined
            if i:
                digest.update(b",")
            for part in parts:
                digest.update(part)
        digest.update(b"]," + rest[1:])
        return digest.hexdigest()

    @cached_property
    def streams(self) -> bool:
        """Its requests list more than `_HASH_LINES_IDS` IDs: its hash and JSON are made an
        action at a time, keeping no line (a text plan of 10^11 cells prints its hash, and
        its JSON is written as it is encoded, never held)."""
        return sum(len(a.asset_ids) + len(a.point_ids) for a in self.actions) > _HASH_LINES_IDS

    def policy(
        self, max_cells: int | None, pause_pipelines: bool, max_cells_from: str = "apply.maxCells"
    ) -> Policy:
        """What apply, configured so, will do with this plan: refuse it, pause pipelines."""
        per = pending_by_manifest(self.keys)
        largest = tuple(sorted(per.items(), key=lambda item: (-item[1], item[0])))
        return Policy(max_cells, pause_pipelines, self.summary.pending_cells, largest, max_cells_from)

    def hashed_fields(self, *, actions: bool = True) -> dict[str, Any]:
        """What the plan hash covers: every field a saved plan is re-derived from."""
        fields = {"actions": [a.to_json() for a in self.actions]} if actions else {}
        return {
            **fields,
            "ledger": {"path": self.ledger.path, "seq": self.ledger.seq, "hash": self.ledger.hash},
            "manifests": list(self.manifest_paths),
            "options": self.options.to_json(),
        }


# The fields `Action.to_json` reads when it has no shares or marks and is not in doubt, and what it
# makes of them, in canonical (sorted) key order: `encode_actions` writes that line itself.
_PLAIN_FIELDS = (
    "manifest",
    "org_id",
    "pipeline_id",
    "stage",
    "asset_ids",
    "point_ids",
    "in_doubt",
    "resumed_since",
    "shares",
    "marks",
)


def encode_actions(actions: Iterable[Action]) -> Iterator[bytes]:
    """`canonical(a.to_json())` for each action: its parts (`encode_action_parts`) joined."""
    for parts in encode_action_parts(actions):
        yield b"".join(parts)


def encode_action_parts(actions: Iterable[Action]) -> Iterator[tuple[bytes, ...]]:
    """`canonical(a.to_json())` for each action, in parts whose join is that line, without
    copying its ID lists into a dict, and each distinct ID tuple encoded once and kept as a
    part of its own (requests of a manifest share their points: most of a fleet plan's
    bytes). Byte for byte the same (tests/test_canonical.py holds them equal over hostile
    actions); an action with shares or marks or in doubt takes `to_json`, in one part."""
    encoded: dict[int, bytes] = {}  # id of an ID tuple -> its JSON (the actions hold them)
    texts: dict[str, bytes] = {}  # names and IDs of pipelines and stages repeat in every line

    def ids(t: tuple[str, ...]) -> bytes:
        got = encoded.get(id(t))
        if got is None:
            got = encoded[id(t)] = _exact(canonical(t))
        return got

    def text(s: str) -> bytes:
        got = texts.get(s)
        if got is None:
            got = texts[s] = _exact(canonical(s))
        return got

    for a in actions:
        if a.shares or a.in_doubt or a.marks or not _PLAIN:
            yield (_exact(canonical(a.to_json())),)
            continue
        yield (
            b'{"assetIds":',
            ids(a.asset_ids),
            b"".join(
                (
                    b',"cells":',
                    canonical(a.cells),
                    b',"manifest":',
                    text(a.manifest),
                    b',"orgId":',
                    text(a.org_id),
                    b',"pipelineId":',
                    text(a.pipeline_id),
                    b',"pointIds":',
                )
            ),
            ids(a.point_ids),
            b',"stageInstanceName":' + text(a.stage) + b"}",
        )


_PLAIN = tuple(f.name for f in fields(Action)) == _PLAIN_FIELDS  # else every action takes `to_json`


def _exact(data: bytes) -> bytes:
    """`data` in a buffer of its own size. orjson's bytes keep the buffer it reserved (8 KB
    for 600 bytes of JSON, 260 KB for 12 KB), and a plan keeps its action lines' parts for
    its hash and then its JSON: 2,000 requests of 50 assets held 16 MB for 1 MB of lists."""
    return memoryview(data).tobytes()


def plan_hash(fields: dict[str, Any]) -> str:
    """sha256 over the canonical actions, ledger head, manifest paths and options."""
    return hashlib.sha256(canonical(fields)).hexdigest()


def build_plan(
    d: Diff,
    options: Options = Options(),
    manifest_paths: Sequence[str] = (),
    exclude: Collection[Action] = (),
) -> Plan:
    """Requests covering exactly the pending cells, split to the size limits.

    A physical cell (org, pipeline, stage, asset, point) that several manifests declare
    (a shared IDs file) is sent once per run, in a request that records it for each; so is
    one they all have in doubt (a run that died announced it under each of them).
    `exclude`: in-doubt requests another apply announced (apply after a lost compare-and-
    swap: they are its own), left out, their cells counted neither pending nor in doubt.
    """
    keys = tuple(k for k in d.keys if not options.targets or k.key.manifest in options.targets)
    shared = {doubt: _shared_stages(keys, doubt) for doubt in (False, True)}
    overlaps = _Overlaps()
    sent: set[tuple[Physical, bool]] = set()
    actions: list[Action] = []
    for kd in keys:
        stage = _physical(kd.key)
        for doubt in (False, True):
            if stage in shared[doubt]:
                if (stage, doubt) not in sent:  # once, where the stage's first manifest stands
                    sent.add((stage, doubt))
                    actions.extend(_shared_actions(stage, shared[doubt][stage], options, doubt, overlaps))
                continue
            for group in kd.in_doubt if doubt else kd.pending:
                resumed = doubt and kd.resumed_since_intent
                actions.extend(_split(kd.key, group, options, in_doubt=doubt, resumed=resumed))
    if d.marks:
        actions = _marked(actions, dict(d.marks))
    gone = 0
    if exclude:
        left_out = set(exclude)
        gone = sum(a.cells for a in actions if a in left_out)
        actions = [a for a in actions if a not in left_out]
    summary = Summary(
        pending_cells=sum(k.pending_cells for k in keys) - gone,
        requests=len(actions),
        applied_cells=sum(k.applied_cells for k in keys),
        undeclared_cells=sum(n for _, n in d.undeclared),
        in_doubt_cells=sum(k.in_doubt_cells for k in keys) - gone,
    )
    return Plan(d, options, keys, tuple(actions), summary, tuple(manifest_paths))


def _marked(actions: list[Action], marks: dict[str, Marks]) -> list[Action]:
    """Each request with the `Marks` of the manifests it serves, for their records."""
    out = []
    for a in actions:
        names = [a.manifest, *(m for m, _ in a.shares)] if a.shares else [a.manifest]
        own = tuple((m, marks[m]) for m in names if m in marks)
        out.append(replace(a, marks=own) if own else a)
    return out


Physical = tuple[str, str, str]  # orgId, pipelineId, stageInstanceName


def _physical(key: StageKey) -> Physical:
    return (key.org_id, key.pipeline_id, key.stage)


def _shared_stages(keys: Sequence[KeyDiff], doubt: bool) -> dict[Physical, list[KeyDiff]]:
    """Stages that more than one manifest has pending (or in-doubt) work for."""
    by_stage: dict[Physical, list[KeyDiff]] = {}
    for kd in keys:
        if kd.in_doubt if doubt else kd.pending:
            by_stage.setdefault(_physical(kd.key), []).append(kd)
    return {stage: kds for stage, kds in by_stage.items() if len(kds) > 1}


def _shared_actions(
    stage: Physical,
    kds: list[KeyDiff],
    options: Options,
    doubt: bool,
    overlaps: Callable[[list[tuple[str, PendingGroup]]], frozenset[str]] | None = None,
) -> Iterator[Action]:
    """One set of requests for every manifest's pending (or in-doubt) cells of one stage:
    assets with the same (manifest -> points) signature share requests carrying the union
    of the points. In doubt, the strictest rule of them holds: if a resume followed any of
    their intents, a person decides.

    Costs what the sharing needs: an asset that one manifest alone declares keeps its
    group (no per-asset work), and signatures are compared by the identity of each
    group's points (one tuple per distinct list), never by hashing every asset's points.
    """
    groups = [(kd.key.manifest, g) for kd in kds for g in (kd.in_doubt if doubt else kd.pending)]
    shared = (overlaps or _assets_in_several)(groups)
    canon: dict[Points, Points] = {}  # equal point lists as one tuple: signatures by identity
    resumed = doubt and any(kd.resumed_since_intent for kd in kds)
    if not shared:  # each group its own signature (a manifest's groups differ in points): as it is
        for manifest, g in groups:
            group = PendingGroup(canon.setdefault(g.points, g.points), g.assets)
            yield from _split(StageKey(manifest, *stage), group, options, in_doubt=doubt, resumed=resumed)
        return
    per_asset: dict[str, dict[str, Points]] = {}
    for manifest, g in groups:
        if not shared.isdisjoint(g.assets):
            points = canon.setdefault(g.points, g.points)
            for a in g.assets:
                if a in shared:
                    per_asset.setdefault(a, {})[manifest] = points
    by_sig: dict[tuple[tuple[str, int], ...], tuple[tuple[tuple[str, Points], ...], list[str]]] = {}
    for manifest, g in groups:
        points = canon.setdefault(g.points, g.points)
        own = ((manifest, id(points)),)
        if shared.isdisjoint(g.assets):
            by_sig.setdefault(own, (((manifest, points),), []))[1].extend(g.assets)
            continue
        for a in g.assets:  # first-seen order, as one pass over every asset would give
            per = per_asset.get(a)
            if per is None:
                by_sig.setdefault(own, (((manifest, points),), []))[1].append(a)
            elif next(iter(per)) == manifest and per[manifest] is points:
                ident = tuple((m, id(p)) for m, p in per.items())
                by_sig.setdefault(ident, (tuple(per.items()), []))[1].append(a)
    for sig, assets in by_sig.values():
        union = tuple(dict.fromkeys(p for _, points in sig for p in points)) if len(sig) > 1 else sig[0][1]
        first = StageKey(sig[0][0], *stage)
        group = PendingGroup(union, tuple(assets))
        for action in _split(first, group, options, in_doubt=doubt, resumed=resumed):
            yield replace(action, shares=sig) if len(sig) > 1 else action


class _Overlaps:
    """`_assets_in_several`, once per list of asset lists: a manifest's pending assets come
    back on each stage of its pipeline it names as equal tuples built apart, told equal by
    the tuple's hash and compare (the strings' hashes are cached, and they are the same
    strings), not hashed into a set asset by asset again."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, ...], tuple[str, ...]] = {}  # kept: their ids stay theirs
        self._found: dict[tuple[int, ...], frozenset[str]] = {}

    def __call__(self, groups: list[tuple[str, PendingGroup]]) -> frozenset[str]:
        key = tuple(id(self._lists.setdefault(g.assets, g.assets)) for _, g in groups)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = _assets_in_several(groups)
        return found


def _assets_in_several(groups: list[tuple[str, PendingGroup]]) -> frozenset[str]:
    """The assets that more than one of the groups names (C-speed set work; usually none)."""
    seen: set[str] = set()
    total = 0
    for _, g in groups:
        seen.update(g.assets)
        total += len(g.assets)
    if len(seen) == total:
        return frozenset()
    counts = Counter(chain.from_iterable(g.assets for _, g in groups))
    return frozenset(a for a, n in counts.items() if n > 1)


# The Delete Stage State limit has two readings (REFERENCE section 8): the en page counts
# point IDs per request, the zh page assets x points. A request of at most this many cells
# satisfies both (DESIGN "EnOS contract decisions", Request size); 61105 still splits.
MAX_REQUEST_CELLS = 100_000


def _chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _ceil(n: int, d: int) -> int:
    return -(-n // d)


def _shape(assets: int, points: int, options: Options) -> tuple[int, int]:
    """(assets, points) per request: within --max-assets, --max-points and MAX_REQUEST_CELLS,
    in as few requests as such shapes allow, fewer point splits first.

    The shape the two flags give is kept when it is within the cell limit. Otherwise each
    way of cutting the points into k equal parts fixes how many assets fit beside them;
    k runs from the fewest parts --max-points allows until more cannot help.
    """
    max_points = max(1, min(options.max_points, MAX_REQUEST_CELLS))
    p = min(points, max_points)
    a = max(1, min(options.max_assets, assets))
    if a * p <= MAX_REQUEST_CELLS:
        return a, p
    best: tuple[int, int, int] | None = None  # (requests, per-request assets, points)
    k = _ceil(points, max_points)
    while True:
        p = _ceil(points, k)
        a = max(1, min(options.max_assets, assets, MAX_REQUEST_CELLS // p))
        requests = k * _ceil(assets, a)
        if best is None or requests < best[0]:
            best = (requests, a, p)
        if p == 1 or a >= min(options.max_assets, assets):
            return best[1], best[2]
        k = _ceil(points, p - 1)  # the next k that makes the parts smaller


def _split(
    key: StageKey, group: PendingGroup, options: Options, *, in_doubt: bool, resumed: bool
) -> Iterator[Action]:
    per_assets, per_points = _shape(len(group.assets), len(group.points), options)
    # One slice of the points per chunk, shared by every asset chunk: a plan of 10^11 cells
    # holds its IDs once, not once per request (issue 18: plan's memory bounded).
    point_chunks = tuple(_chunks(group.points, per_points))
    for assets in _chunks(group.assets, per_assets):
        for points in point_chunks:
            yield Action(*key, asset_ids=assets, point_ids=points, in_doubt=in_doubt, resumed_since=resumed)
