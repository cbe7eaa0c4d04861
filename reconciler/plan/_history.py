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
from reconciler.plan.values import Recleared, StageKey


def recleared(plan: Plan, ledger: Ledger, manifests: Sequence[Manifest]) -> tuple[Recleared, ...]:
    """Per (manifest, other manifest): how many of its pending cells the other cleared, when."""
    pending = [kd for kd in plan.keys if kd.pending_cells]
    if not pending:
        return ()
    declared = {m.name for m in manifests}
    own = {m.name: {m.name, *m.renamed_from} for m in manifests}
    by_stage: dict[tuple[str, str, str], list[tuple[StageKey, list[Record]]]] = defaultdict(list)
    for key, records in _records_by_key(ledger.records).items():
        deletes = [r for r in records if r.kind == "delete"]
        if deletes and key.manifest in declared:
            by_stage[key[1:]].append((key, deletes))
    if not by_stage:
        return ()
    sets = _Sets(ledger.closed_intents)
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for kd in pending:
        for other, deletes in by_stage.get(kd.key[1:], ()):
            if other.manifest in own.get(kd.key.manifest, {kd.key.manifest}):
                continue
            cells = sum(
                _diff_key(kd.key, g.points, g.assets, deletes, {}, sets)[0].applied_cells
                for g in (*kd.pending, *kd.in_doubt)
            )
            if cells:
                n, first, last = found.get((kd.key.manifest, other.manifest), (0, "9999", ""))
                dates = [r.at[:10] for r in deletes]
                found[kd.key.manifest, other.manifest] = (n + cells, min(first, *dates), max(last, *dates))
    return tuple(Recleared(m, other, *entry) for (m, other), entry in sorted(found.items()))
