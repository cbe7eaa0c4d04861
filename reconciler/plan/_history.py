"""What the ledger says about a plan's pending cells beyond "not yet cleared by this name".

`recleared(plan, ledger, manifests)`: pending cells that another manifest, still declared,
already cleared. DESIGN "Cells" allows it on purpose (a new name is a new intent), but a
copy-paste duplicate of a fleet reset clears a million cells again, so every format says
so. Names no manifest declares now are the rename warning's (`plan._diff`), not this.
Pure, like the rest of `plan`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from reconciler.ledger import Ledger, Record
from reconciler.manifests import Manifest
from reconciler.plan._build import Plan
from reconciler.plan._diff import _diff_key, _records_by_key, _Sets
from reconciler.plan.values import Recleared


def recleared(plan: Plan, ledger: Ledger, manifests: Sequence[Manifest]) -> tuple[Recleared, ...]:
    """Per (manifest, other manifest): how many of its pending cells the other cleared, when."""
    pending = [kd for kd in plan.keys if kd.pending_cells]
    if not pending:
        return ()
    # Who carries each name's history now: itself, or the manifest that lists it in
    # `metadata.renamedFrom` (names nobody carries are the rename warning's).
    owner = {m.name: m.name for m in manifests}
    owner.update({old: m.name for m in manifests for old in m.renamed_from})
    by_stage: dict[tuple[str, str, str], list[tuple[str, list[Record]]]] = defaultdict(list)
    for key, records in _records_by_key(ledger.records).items():
        deletes = [r for r in records if r.kind == "delete"]
        if deletes and key.manifest in owner:
            by_stage[key[1:]].append((owner[key.manifest], deletes))
    if not by_stage:
        return ()
    sets = _Sets(ledger.closed_intents)
    met = _Met()
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for kd in pending:
        others = [(o, deletes) for o, deletes in by_stage.get(kd.key[1:], ()) if o != kd.key.manifest]
        # Only groups with an asset another manifest's deletes on the stage name can hold
        # cells it cleared: manifests that share a stage but not a farm (weekly fixes of one
        # pipeline) are told apart by one probe per pending asset against all the others'
        # deletes together, not one per other manifest, and a stage's twin (the same lists
        # on stage_a and stage_b) reuses the answer.
        everyone, _ = sets.union([r.asset_ids for _, deletes in others for r in deletes])
        groups = [g for g in (*kd.pending, *kd.in_doubt) if met(everyone, g.assets)]
        per_other: dict[str, tuple[int, list[str]]] = {}
        for other, deletes in others if groups else ():
            touched, _ = sets.union([r.asset_ids for r in deletes])
            cells = sum(
                _diff_key(kd.key, g.points, g.assets, deletes, {}, sets)[0].applied_cells
                for g in groups
                if met(touched, g.assets)
            )
            if cells:
                n, dates = per_other.get(other, (0, []))
                per_other[other] = (n + cells, dates + [r.at[:10] for r in deletes])
        for other, (cells, dates) in per_other.items():
            # an owner's old and new names may both have cleared a cell: never more than pending
            n, first, last = found.get((kd.key.manifest, other), (0, "9999", ""))
            found[kd.key.manifest, other] = (
                n + min(cells, kd.pending_cells),
                min(first, *dates),
                max(last, *dates),
            )
    return tuple(Recleared(m, other, *entry) for (m, other), entry in sorted(found.items()))


class _Met:
    """Whether a set of deleted assets meets a pending list, once per (set, list content).

    The same pending assets come back on each stage a manifest names, as equal tuples
    built apart: they are told equal by the tuple's hash and compare (the strings' hashes
    are cached, and equal tuples of one manifest hold the same strings), not probed again.
    """

    def __init__(self) -> None:
        self._lists: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._met: dict[tuple[int, int], tuple[frozenset[str], bool]] = {}

    def __call__(self, deleted: frozenset[str], assets: tuple[str, ...]) -> bool:
        assets = self._lists.setdefault(assets, assets)
        hit = self._met.get((id(deleted), id(assets)))
        if hit is None or hit[0] is not deleted:
            hit = self._met[id(deleted), id(assets)] = (deleted, not deleted.isdisjoint(assets))
        return hit[1]
