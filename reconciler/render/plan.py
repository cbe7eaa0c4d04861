"""A plan for people: text (Terraform-like) and markdown (a pull-request comment).

Pure functions from values to strings. Text uses rich markup, which the CLI's
console turns into colour on a terminal and strips elsewhere; every ID is escaped
so that user data is never read as markup. The markdown is what a reviewer
approves an irreversible operation from: every ID in it is shown exactly as it
will be sent, inside code spans or code blocks, never as markdown or HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.markup import escape

from reconciler.apply import MISSING, writable
from reconciler.plan import Plan
from reconciler.plan.values import KeyDiff, PendingGroup, PipelineRef, RenameHint, StageKey
from reconciler.words import plural

SAMPLE = 3
GITHUB_COMMENT_LIMIT = 65_536


@dataclass(frozen=True)
class LiveStatus:
    """A pipeline as `plan --refresh` saw it: its status (MISSING if not listed) and name."""

    status: str
    name: str = ""


@dataclass(frozen=True)
class KeyView:
    """What one (manifest, stage) will do, summarised for people."""

    kd: KeyDiff
    requests: int
    assets: tuple[str, ...]
    points: tuple[str, ...]
    doubt_requests: int
    doubt_assets: tuple[str, ...]


def _views(plan: Plan) -> list[KeyView]:
    requests: dict[StageKey, list[int]] = {}
    for a in plan.actions:  # a request shared by several manifests counts for each
        for manifest in [m for m, _ in a.shares] or [a.manifest]:
            counts = requests.setdefault(a.key._replace(manifest=manifest), [0, 0])
            counts[1 if a.in_doubt else 0] += 1
    views = []
    for kd in plan.keys:
        n, d = requests.get(kd.key, [0, 0])
        views.append(KeyView(kd, n, *_ids(kd.pending), d, _ids(kd.in_doubt)[0]))
    return views


def _ids(groups: Sequence[PendingGroup]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct assets and points of some pending groups, in plan order."""
    assets: dict[str, None] = {}
    points: dict[str, None] = {}
    for g in groups:
        assets.update(dict.fromkeys(g.assets))
        points.update(dict.fromkeys(g.points))
    return tuple(assets), tuple(points)


def sample(ids: Sequence[str], n: int = SAMPLE, show: Callable[[str], str] = str) -> str:
    """A few IDs and how many more; never "+1 more", which hides an ID in as much room."""
    if len(ids) <= n + 1:
        n = len(ids)
    shown = ", ".join(map(show, ids[:n]))
    return shown + (f", … +{len(ids) - n:,} more" if len(ids) > n else "")


def doubt_rule(resumed: bool) -> str:
    """What apply does with an in-doubt request (DESIGN "Applied ledger"), in every format."""
    if resumed:
        return "a resume followed it: left to a person (--resend-in-doubt or ledger resolve)"
    return "re-sent only if the pipeline is still PAUSED"


def summary_line(plan: Plan) -> str:
    s = plan.summary
    return (
        f"Plan: {plural(s.pending_cells, 'cell')} to clear in {plural(s.requests, 'request')}; "
        f"{s.applied_cells:,} already applied, {s.in_doubt_cells:,} in doubt, "
        f"{s.undeclared_cells:,} in history only."
    )


def rename_warning(hint: RenameHint, quote: str = "") -> str:
    """The warning for pending cells already cleared under a name no manifest declares now."""
    q = quote
    were = "was" if hint.cells == 1 else "were"
    return (
        f"{plural(hint.cells, 'pending cell')} of {q}{hint.manifest}{q} {were} already cleared under "
        f"{q}{hint.old_name}{q}, which no manifest declares now; if this is a rename, add "
        f"{q}metadata.renamedFrom: [{hint.old_name}]{q}"
    )


def blocking(plan: Plan, statuses: Mapping[PipelineRef, LiveStatus]) -> set[PipelineRef]:
    """Pipelines that would stop apply: not PAUSED, with requests apply would send.

    In-doubt requests never cause a pause: apply re-sends them only to a PAUSED pipeline
    and otherwise leaves them to a person (DESIGN "Apply", step 4).
    """
    busy = {a.pipeline for a in plan.actions if not a.in_doubt}
    return {ref for ref in busy if not writable(_status(statuses, ref).status)}


def _status(statuses: Mapping[PipelineRef, LiveStatus], ref: PipelineRef) -> LiveStatus:
    return statuses.get(ref, LiveStatus(MISSING))


# --- text ---------------------------------------------------------------------------


def plan_text(plan: Plan, manifest_files: Mapping[str, str] | None = None) -> str:
    out: list[str] = [
        f"Ledger: {escape(plan.ledger.path)} (seq {plan.ledger.seq}, head {plan.ledger.hash[:12]})",
        "",
    ]
    views = _views(plan)
    if not plan.has_changes:
        out.append(
            "[green]No changes.[/green] Every declared cell is already in the ledger "
            f"({plan.summary.applied_cells:,} applied)."
        )
    elif plan.actions:
        out.append("reconcile apply will clear this stage state (irreversible):")
    else:
        out.append("No state to clear; apply will only start again what an interrupted run left paused.")
    current = None
    for v in views:
        manifest, org, pipeline, stage = v.kd.key
        if manifest != current:
            current = manifest
            where = (
                f"  ({escape(manifest_files[manifest])})"
                if manifest_files and manifest in manifest_files
                else ""
            )
            out += ["", f"  [bold]# {escape(manifest)}[/bold]{where}"]
        out.extend(_text_key(v, org, pipeline, stage))
    out.extend(_text_renames(plan))
    out.extend(_text_history(plan))
    out.extend(_text_resumes(plan))
    out += ["", f"[bold]{summary_line(plan)}[/bold]"]
    if plan.has_changes:
        out.append(f"Plan hash: {plan.plan_hash}")
    return "\n".join(out) + "\n"


def _text_key(v: KeyView, org: str, pipeline: str, stage: str) -> list[str]:
    kd = v.kd
    name = escape(f"{org} / {pipeline} / {stage}")
    normal = kd.pending_cells - kd.in_doubt_cells
    if not kd.pending_cells:
        return [f"    [dim]= {name}: up to date ({plural(kd.applied_cells, 'cell')} applied)[/dim]"]
    lines = [f"    [yellow]~[/yellow] {name}"]
    if normal:
        lines.append(
            f"        [red]-[/red] clear {plural(normal, 'cell')} in {plural(v.requests, 'request')}: "
            f"{plural(len(v.assets), 'asset')} ({escape(sample(v.assets))}) x "
            f"{plural(len(v.points), 'point')} ({escape(sample(v.points))})"
        )
    if kd.in_doubt_cells:
        rule = doubt_rule(kd.resumed_since_intent)
        lines.append(
            f"        [magenta]?[/magenta] in doubt: {plural(kd.in_doubt_cells, 'cell')} in "
            f"{plural(v.doubt_requests, 'request')} ({escape(sample(v.doubt_assets))}): sent, no answer "
            f"recorded; {rule}"
        )
    if kd.applied_cells:
        lines.append(f"        [dim]= already applied: {plural(kd.applied_cells, 'cell')}[/dim]")
    return lines


def _text_renames(plan: Plan) -> list[str]:
    if not plan.renames:
        return []
    return [""] + [f"[yellow]Warning:[/yellow] {escape(rename_warning(h))}" for h in plan.renames]


def _text_history(plan: Plan) -> list[str]:
    if not plan.undeclared:
        return []
    lines = ["", "History: cells the ledger records that no manifest declares now (not acted on):"]
    for (manifest, org, pipeline, stage), cells in plan.undeclared:
        lines.append(
            f"    [dim]{escape(f'{manifest}: {org} / {pipeline} / {stage}')}: {plural(cells, 'cell')}[/dim]"
        )
    return lines


def _text_resumes(plan: Plan) -> list[str]:
    if not plan.pending_resumes:
        return []
    lines = ["", "Pipelines an interrupted apply left paused (apply starts them again):"]
    for r in plan.pending_resumes:
        org, pipeline = r.pipeline
        lines.append(f"    [yellow]>[/yellow] {escape(org)} / {escape(pipeline)} (paused {r.paused_at})")
    return lines


def status_text(statuses: Mapping[PipelineRef, LiveStatus], plan: Plan) -> str:
    """Live statuses; only a pipeline with pending work and not PAUSED blocks apply."""
    blocked = blocking(plan, statuses)
    lines = ["", "Live pipeline status (read-only):"]
    for ref in plan.pipelines:
        live = _status(statuses, ref)
        if writable(live.status):
            mark = "[green]ok[/green]"
        elif ref in blocked:
            mark = "[red]blocks apply[/red]"
        else:
            mark = "nothing to send"
        name = f" ({escape(live.name)})" if live.name and live.name != ref.pipeline_id else ""
        lines.append(
            f"    {escape(ref.org_id)} / {escape(ref.pipeline_id)}{name}: {escape(live.status)} ({mark})"
        )
    return "\n".join(lines) + "\n"
