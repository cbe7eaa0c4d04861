"""What apply refuses of a plan before anything is sent, and what `plan` says of it:

- `check_max_cells` / `refuse_over`: more pending cells than `maxCells` (the guardrail for
  irreversible work; apply refuses from the counts alone, before a request is built, and
  `plan` shows that verdict through `Plan.policy` rather than refusing);
- `refuse_unacknowledged_reclears`: cells cleared again under a new name, unless the
  manifest says why (`metadata.reclear`) or carries the old name on (DESIGN "Manifest
  format"); `plan` refuses it too when it reads the whole manifests folder;
- `start_in_doubt`: what a person reads about a `start` record with no outcome.
"""

from __future__ import annotations

from reconciler.errors import Hint, Hinted, PlanError
from reconciler.plan._build import Plan
from reconciler.plan.values import PipelineRef, pending_by_manifest
from reconciler.words import plural


def check_max_cells(p: Plan, max_cells: int | None, source: str = "the maxCells limit") -> None:
    """The guardrail for irreversible work: refuse a plan larger than `max_cells`; `source`
    names where the limit was set, in the words of whoever set it."""
    if max_cells is None or p.summary.pending_cells <= max_cells:
        return
    refuse_over(pending_by_manifest(p.keys), max_cells, source)


def refuse_over(per: dict[str, int], max_cells: int | None, source: str) -> None:
    """Refuse pending cells (by manifest) over `max_cells`, naming the largest first."""
    total = sum(per.values())
    if max_cells is None or total <= max_cells:
        return
    where = "\n".join(f"  {name}: {n:,} cells" for name, n in sorted(per.items(), key=lambda x: -x[1]))
    raise PlanError(
        f"the plan clears {total:,} cells, more than {source} ({max_cells:,}); nothing was sent.\n"
        f"{where}\nSplit the change into pull requests under the limit, or raise {source} after review."
    )


def refuse_unacknowledged_reclears(p: Plan, *, partial: bool = False) -> None:
    """A plan that would clear again, under a new name, cells cleared under a name no
    manifest declares any more is refused, unless that manifest says why (`metadata.reclear`)
    or carries the old name on (`metadata.renamedFrom`): a rename must never re-clear
    production with a green check (DESIGN "Manifest format"). `partial`: only some files
    were read (apply refuses anyway, on the safe side, and says so)."""
    hints = [h for h in p.renames if h.reclear is None]
    if not hints:
        return
    lines = "\n".join(
        f"  {h.manifest}: {plural(h.cells, 'pending cell')} {'was' if h.cells == 1 else 'were'} "
        f"cleared as {h.old_name}"
        for h in hints
    )
    h = hints[0]
    raise PlanError(
        f"refused: {plural(len(hints), 'manifest')} would clear again cells that were cleared under a name "
        f"no manifest declares any more; nothing was sent.\n{lines}\n"
        f"If it is a rename, add `metadata.renamedFrom: [{h.old_name}]` to {h.manifest} (its history "
        "carries on: nothing is cleared again). If it clears them again on purpose, add "
        f'`metadata.reclear: "<why>"` to {h.manifest} (the reason goes into its ledger records).'
        + (
            f" Only the given files were read: if {h.old_name} is still declared in another file, "
            "apply the whole manifests folder."
            if partial
            else ""
        )
    )


def start_in_doubt(ref: PipelineRef, at: str, status: str | None = None) -> Hinted:
    """What a person reads about a start in doubt; its hint is the one step that settles it."""
    now = f" and reports {status} now" if status else ""
    name = f"{ref.org_id}/{ref.pipeline_id}"
    return Hinted(
        f"{name}: an apply announced its start at {at} and stopped before it could confirm it{now}. "
        "reconcile will not start it: the start may have landed and a person paused it since, and the "
        "ledger cannot tell. While it is PAUSED every apply fails naming it. Unless it was paused on "
        "purpose, start it in the EnOS console; then settle it",
        Hint.SETTLE_START,
        name,
    )
