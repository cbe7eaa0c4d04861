"""A plan for people: text (Terraform-like) and markdown (a pull-request comment).

Pure functions from values to strings. Text uses rich markup, which the CLI's
console turns into colour on a terminal and strips elsewhere; every ID is escaped
so that user data is never read as markup. The markdown is what a reviewer
approves an irreversible operation from: every ID in it is shown exactly as it
will be sent, inside code spans or code blocks, never as markdown or HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from rich.markup import escape

from reconciler.apply import MISSING, writable
from reconciler.manifests import IdSource
from reconciler.plan import Action, Plan
from reconciler.plan.values import KeyDiff, PendingGroup, PipelineRef, Policy, Recleared, RenameHint, StageKey
from reconciler.words import plural

SAMPLE = 3
GITHUB_COMMENT_LIMIT = 65_536


@dataclass(frozen=True)
class LiveStatus:
    """A pipeline as `plan --refresh` saw it: its status (MISSING if not listed) and name."""

    status: str
    name: str = ""


@dataclass(frozen=True)
class Review:
    """What a reviewer needs besides the plan, from outside it: the policy apply will
    enforce, live statuses (or why they are missing), where IDs came from, what other
    manifests cleared before, and plan-level warnings (e.g. a change to where credentials
    are sent). Every renderer shows all of it, so no format knows less than another."""

    policy: Policy | None = None
    statuses: Mapping[PipelineRef, LiveStatus] | None = None
    refresh_error: str | None = None  # --refresh was asked for and failed: why
    latency: float | None = None  # seconds one read-only call took while refreshing
    concurrency: int = 4
    sources: Mapping[str, tuple[IdSource, ...]] = field(default_factory=dict)
    recleared: tuple[Recleared, ...] = ()
    warnings: tuple[str, ...] = ()
    history_note: str | None = None  # why history is not shown (only some paths were read)


@dataclass(frozen=True)
class PipelineView:
    """A pipeline with pending work as `--refresh` saw it: what apply will do to it."""

    ref: PipelineRef
    name: str
    status: str
    will_pause: bool
    blocks: bool
    requests: int
    seconds: float | None  # a rough time it stays paused: its requests at the latency seen
    pending: bool = True  # it has requests to send or a left-over pause (else: up to date)

    def to_json(self) -> dict[str, object]:
        return {
            "orgId": self.ref.org_id,
            "pipelineId": self.ref.pipeline_id,
            "name": self.name,
            "status": self.status,
            "willPause": self.will_pause,
            "blocks": self.blocks,
            "requests": self.requests,
        }


def pipeline_views(plan: Plan, review: Review) -> list[PipelineView]:
    """Every pipeline of the plan, as apply will treat it: written to when PAUSED, paused
    for the run when RUNNING and the policy says so, else blocking; `pending` marks those
    with work (requests or a left-over pause). In-doubt requests never cause a pause
    (DESIGN "Apply" 4)."""
    statuses = review.statuses or {}
    sends: dict[PipelineRef, int] = {}
    for a in plan.actions:
        if not a.in_doubt:
            sends[a.pipeline] = sends.get(a.pipeline, 0) + 1
    pending = {a.pipeline for a in plan.actions} | {r.pipeline for r in plan.pending_resumes}
    refs = plan.pipelines
    pause = review.policy.pause_pipelines if review.policy else False
    views = []
    for ref in refs:
        live = _status(statuses, ref)
        busy = ref in sends and not writable(live.status)
        will_pause = busy and pause and live.status == "RUNNING"
        n = sends.get(ref, 0)
        seconds = math.ceil(n / review.concurrency) * review.latency if review.latency is not None else None
        views.append(
            PipelineView(
                ref, live.name, live.status, will_pause, busy and not will_pause, n, seconds, ref in pending
            )
        )
    return views


def review_json(plan: Plan, review: Review) -> dict[str, object]:
    """The plan JSON's fields from outside the plan (DESIGN "Plan": `policy`, `pipelines`)."""
    out: dict[str, object] = {}
    if review.policy is not None:
        out["policy"] = review.policy.to_json()
    if review.statuses is not None:
        out["pipelines"] = [v.to_json() for v in pipeline_views(plan, review) if v.pending]
    names = {k.key.manifest for k in plan.keys}
    sources = {n: [s.to_json() for s in srcs] for n, srcs in review.sources.items() if n in names and srcs}
    if sources:
        out["idSources"] = sources
    if review.recleared:
        out["recleared"] = [r.to_json() for r in review.recleared]
    if review.history_note is not None:
        out["historyNote"] = review.history_note
    warnings = list(review.warnings)
    if review.refresh_error is not None:
        warnings.append(refresh_warning(review.refresh_error))
    if warnings:
        out["warnings"] = warnings
    return out


def pause_words(v: PipelineView) -> str:
    """How long a pipeline the merge pauses stays paused, as roughly as we can know."""
    rough = ""
    if v.seconds is not None:
        rough = f", about {_rough(v.seconds)} at the latency seen now"
    return f"paused for its {plural(v.requests, 'request')}{rough}, then started again"


def _rough(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))}s"
    return f"{round(seconds / 60)} min"


def policy_lines(policy: Policy, q: str = "") -> list[str]:
    """Why apply will refuse the whole plan, which manifests make it large, what to change:
    empty when it will not. The first line completes "apply will refuse this whole plan: "."""
    if policy.max_cells is None or not policy.exceeds_max_cells:
        return []
    pending, limit = policy.pending_cells, policy.max_cells
    large = ", ".join(f"{q}{n}{q} ({plural(c, 'cell')})" for n, c in policy.large)
    lines = [
        f"{plural(pending, 'cell')} to clear, more than {limit_words(policy, q)}; nothing in it would be cleared.",
        f"What makes it large: {large}.",
    ]
    if policy.held_back:
        held = ", ".join(f"{q}{n}{q} ({plural(c, 'cell')})" for n, c in policy.held_back)
        lines.append(f"Refused with it, though small: {held}.")
    them = "it" if len(policy.large) == 1 else "them"
    split = (
        f"merge {them} on {'its' if them == 'it' else 'their'} own"
        if sum(c for _, c in policy.large) <= limit
        else f"split {them} into manifests of at most {limit:,} cells, merged one at a time"
    )
    lines.append(
        f"To change: take {them} out of this change and {split}, or raise {q}apply.maxCells{q} "
        f"in {q}reconcile.yaml{q} to at least {pending:,} in a reviewed change."
    )
    return lines


def limit_words(policy: Policy, q: str = "") -> str:
    """Where the limit comes from: a flag, or reconcile.yaml (which apply in CI reads)."""
    if policy.max_cells_from.startswith("--"):
        return f"{q}{policy.max_cells_from} {policy.max_cells or 0:,}{q}"
    return f"{q}apply.maxCells{q} ({policy.max_cells or 0:,}, in {q}reconcile.yaml{q})"


def policy_verdict(policy: Policy) -> str:
    """One line on what the configured apply does with the plan, refused or not."""
    pause = (
        "RUNNING pipelines are paused for their deletes and started again"
        if policy.pause_pipelines
        else "a pipeline that is not PAUSED stops apply (pausePipelines is off)"
    )
    if policy.max_cells is None:
        limit = "no maxCells limit"
    elif policy.exceeds_max_cells:
        limit = f"REFUSED: over maxCells {policy.max_cells:,}"
    else:
        limit = f"within maxCells {policy.max_cells:,} ({plural(policy.pending_cells, 'cell')} to clear)"
    return f"{limit}; {pause}"


def source_line(src: IdSource) -> str:
    """ "50,000 asset IDs from manifests/ids/fleet.txt (sha256 1a2b…)" """
    return f"{plural(src.ids, src.noun + ' ID')} from {src.path} (sha256 {src.sha256})"


def recleared_line(r: Recleared, q: str = "") -> str:
    these = "this cell was" if r.cells == 1 else f"these {r.cells:,} cells were"
    return (
        f"{q}{r.manifest}{q}: {these} cleared by {q}{r.cleared_by}{q} {r.when}; a new name clears "
        "them again, with the state rebuilt since"
    )


@dataclass(frozen=True)
class KeyView:
    """What one (manifest, stage) will do, summarised for people."""

    kd: KeyDiff
    requests: int
    assets: tuple[str, ...]
    points: tuple[str, ...]
    doubt_requests: int
    doubt_assets: tuple[str, ...]
    shapes: str = ""  # the real request shapes: "4 assets x 2 points, 1 asset x 1 point"
    doubt_shapes: str = ""


def _views(plan: Plan) -> list[KeyView]:
    requests: dict[StageKey, tuple[list[Action], list[Action]]] = {}
    for a in plan.actions:  # a request shared by several manifests counts for each
        for manifest in [m for m, _ in a.shares] or [a.manifest]:
            lists = requests.setdefault(a.key._replace(manifest=manifest), ([], []))
            lists[1 if a.in_doubt else 0].append(a)
    views = []
    for kd in plan.keys:
        sent, doubt = requests.get(kd.key, ([], []))
        views.append(
            KeyView(
                kd,
                len(sent),
                *_ids(kd.pending),
                len(doubt),
                _ids(kd.in_doubt)[0],
                shapes(sent),
                shapes(doubt),
            )
        )
    return views


MAX_SHAPES = 4


def shapes(actions: Iterable[Action]) -> str:
    """The requests as they will be sent, by shape: "4 assets x 2 points, 1 asset x 1 point",
    or "50 of 1,000 assets x 20 points" for repeats; never one union product."""
    counts: dict[tuple[int, int], int] = {}
    for a in actions:
        shape = (len(a.asset_ids), len(a.point_ids))
        counts[shape] = counts.get(shape, 0) + 1
    parts = [
        (f"{n:,} of " if n > 1 else "") + f"{plural(assets, 'asset')} x {plural(points, 'point')}"
        for (assets, points), n in list(counts.items())[:MAX_SHAPES]
    ]
    if len(counts) > MAX_SHAPES:
        parts.append(f"+{plural(len(counts) - MAX_SHAPES, 'more shape')}")
    return ", ".join(parts)


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


def blocking(plan: Plan, statuses: Mapping[PipelineRef, LiveStatus], pause: bool = False) -> set[PipelineRef]:
    """Pipelines that would stop apply: not PAUSED, with requests apply would send, and
    not RUNNING ones that apply pauses itself (`pause`, apply.pausePipelines)."""
    review = Review(policy=Policy(None, pause, 0), statuses=statuses)
    return {v.ref for v in pipeline_views(plan, review) if v.blocks}


def _status(statuses: Mapping[PipelineRef, LiveStatus], ref: PipelineRef) -> LiveStatus:
    return statuses.get(ref, LiveStatus(MISSING))


# --- text ---------------------------------------------------------------------------


def plan_text(
    plan: Plan, manifest_files: Mapping[str, str] | None = None, review: Review | None = None
) -> str:
    review = review or Review()
    out: list[str] = [
        f"Ledger: {escape(plan.ledger.path)} (seq {plan.ledger.seq}, head {plan.ledger.hash[:12]})",
    ]
    if review.policy is not None:
        out.append(f"Policy: {escape(policy_verdict(review.policy))}")
    out.append("")
    out.extend(_text_warnings(review))
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
    busy = {v.kd.key.manifest for v in views if v.kd.pending_cells}
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
            if manifest in busy:
                out += [f"    {escape(source_line(src))}" for src in review.sources.get(manifest, ())]
        out.extend(_text_key(v, org, pipeline, stage))
    out.extend(_text_renames(plan))
    out.extend(_text_recleared(review))
    out.extend(_text_history(plan, review))
    out.extend(_text_resumes(plan))
    out.extend(_text_policy(review))
    out += ["", f"[bold]{summary_line(plan)}[/bold]"]
    if plan.has_changes:
        out.append(f"Plan hash: {plan.plan_hash}")
    return "\n".join(out) + "\n"


def _text_warnings(review: Review) -> list[str]:
    """Plan-level warnings, and why the live part is missing, before anything else."""
    lines = [f"[yellow]Warning:[/yellow] {escape(w)}" for w in review.warnings]
    if review.refresh_error is not None:
        lines.append(f"[yellow]Warning:[/yellow] {escape(refresh_warning(review.refresh_error))}")
    return [*lines, ""] if lines else []


def refresh_warning(error: str) -> str:
    return (
        f"live pipeline status is missing: --refresh failed ({error}). This is the offline "
        "plan: it does not say which pipelines apply would pause or be stopped by."
    )


def _text_policy(review: Review) -> list[str]:
    lines = policy_lines(review.policy) if review.policy else []
    if not lines:
        return []
    first = f"[red]Apply will refuse this whole plan:[/red] {escape(lines[0])}"
    return ["", first, *(f"    {escape(line)}" for line in lines[1:])]


def _text_recleared(review: Review) -> list[str]:
    if not review.recleared:
        return []
    return [""] + [f"[yellow]Cleared before:[/yellow] {escape(recleared_line(r))}" for r in review.recleared]


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
            f"{v.shapes}; assets {escape(sample(v.assets))}; points {escape(sample(v.points))}"
        )
    if kd.in_doubt_cells:
        rule = doubt_rule(kd.resumed_since_intent)
        lines.append(
            f"        [magenta]?[/magenta] in doubt: {plural(kd.in_doubt_cells, 'cell')} in "
            f"{plural(v.doubt_requests, 'request')} ({v.doubt_shapes}; assets {escape(sample(v.doubt_assets))}): "
            f"sent, no answer recorded; {rule}"
        )
    if kd.applied_cells:
        lines.append(f"        [dim]= already applied: {plural(kd.applied_cells, 'cell')}[/dim]")
    return lines


def _text_renames(plan: Plan) -> list[str]:
    if not plan.renames:
        return []
    return [""] + [f"[yellow]Warning:[/yellow] {escape(rename_warning(h))}" for h in plan.renames]


def _text_history(plan: Plan, review: Review) -> list[str]:
    if review.history_note is not None:
        return ["", f"History: {escape(review.history_note)}"]
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


def status_text(statuses: Mapping[PipelineRef, LiveStatus], plan: Plan, review: Review | None = None) -> str:
    """Live statuses: what apply will do to each pipeline with pending work."""
    review = review or Review(statuses=statuses)
    if review.statuses is None:
        review = replace(review, statuses=statuses)
    lines = ["", "Live pipeline status (read-only):"]
    for v in pipeline_views(plan, review):
        if writable(v.status):
            mark = "[green]ok[/green]"
        elif v.will_pause:
            mark = f"[yellow]apply pauses it[/yellow]: {pause_words(v)}"
        elif v.blocks:
            mark = "[red]blocks apply[/red]"
        else:
            mark = "nothing to send"
        name = f" ({escape(v.name)})" if v.name and v.name != v.ref.pipeline_id else ""
        lines.append(
            f"    {escape(v.ref.org_id)} / {escape(v.ref.pipeline_id)}{name}: {escape(v.status)} ({mark})"
        )
    return "\n".join(lines) + "\n"
