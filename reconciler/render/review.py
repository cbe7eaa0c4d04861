"""What a reviewer needs besides the plan, in words every format shares.

The policy apply will enforce (maxCells, pausePipelines, from the same reconcile.yaml
apply reads), live pipelines as apply will treat them (written to, paused for the run,
or blocking), where IDs came from, cells other manifests cleared before, and plan-level
warnings. `review_json` gives the plan JSON's fields for them (DESIGN "Plan": `policy`,
`pipelines`). Pure functions from values to strings and dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler import durations
from reconciler.manifests import IdSource
from reconciler.plan import Plan
from reconciler.plan.rollout import (
    DEFAULT_MAX_PAUSE,
    DEFAULT_MAX_PAUSED,
    Costs,
    PipelineRollout,
    rollout,
    stages,
)
from reconciler.plan.values import MISSING, PipelineRef, Policy, Recleared, writable
from reconciler.words import plural


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
    max_paused: int = DEFAULT_MAX_PAUSED  # apply.rollout.maxPaused: pipelines paused at once
    max_pause: float = DEFAULT_MAX_PAUSE  # apply.rollout.maxPause, in seconds
    canary: bool = True  # apply.rollout.canary: its reads are in each pause's estimate
    snapshot: bool = False  # apply.snapshot: one read before each delete, in the estimate too
    sources: Mapping[str, tuple[IdSource, ...]] = field(default_factory=dict)
    recleared: tuple[Recleared, ...] = ()
    warnings: tuple[str, ...] = ()
    # What a pull request changes in reconcile.yaml that decides where credentials go,
    # where the ledger lives or what apply may do ("the gateway of org o1: a -> b").
    config_changes: tuple[str, ...] = ()
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
        seconds = _costs(review).seconds(n, stages(a for a in plan.actions if a.pipeline == ref))
        views.append(
            PipelineView(
                ref, live.name, live.status, will_pause, busy and not will_pause, n, seconds, ref in pending
            )
        )
    return views


def _costs(review: Review) -> Costs:
    """What one pause costs at the latency `--refresh` measured (None offline): its requests
    `concurrency` at a time, the pause and the start and their status reads, and the reads
    the canary and the snapshot add, as reconcile.yaml sets them (apply assumes the same)."""
    return Costs(review.latency, review.concurrency, canary=review.canary, snapshot=review.snapshot)


def rollout_view(plan: Plan, review: Review) -> list[PipelineRollout]:
    """DESIGN "Gentle on production": every pipeline with requests in the order apply takes
    it (fewer requests first), how many pauses and the estimate of its longest pause. The
    pipelines apply pauses are the RUNNING ones `--refresh` saw; offline, every pipeline
    with requests when the policy pauses pipelines (estimates null)."""
    sending = [a for a in plan.actions if not a.in_doubt]
    if review.statuses is not None:
        pausing = [v.ref for v in pipeline_views(plan, review) if v.will_pause]
    elif review.policy is not None and review.policy.pause_pipelines:
        pausing = [a.pipeline for a in sending]
    else:
        pausing = []
    return rollout(sending, pausing, _costs(review), review.max_pause)


def review_json(plan: Plan, review: Review) -> dict[str, object]:
    """The plan JSON's fields from outside the plan (DESIGN "Plan": `policy`, `pipelines`)."""
    from reconciler.settings import advice  # a warning with a hint, in the CLI's words

    out: dict[str, object] = {}
    if review.policy is not None:
        out["policy"] = review.policy.to_json()
    if review.statuses is not None:
        out["pipelines"] = [v.to_json() for v in pipeline_views(plan, review) if v.pending]
    if plan.actions:
        out["rollout"] = [r.to_json() for r in rollout_view(plan, review)]
    names = {k.key.manifest for k in plan.keys}
    sources = {n: [s.to_json() for s in srcs] for n, srcs in review.sources.items() if n in names and srcs}
    if sources:
        out["idSources"] = sources
    if review.recleared:
        out["recleared"] = [r.to_json() for r in review.recleared]
    if review.history_note is not None:
        out["historyNote"] = review.history_note
    if review.config_changes:
        out["configChanges"] = list(review.config_changes)
    warnings = [f"this pull request changes {line}" for line in review.config_changes]
    warnings += [advice(w) for w in review.warnings]
    if review.refresh_error is not None:
        warnings.append(refresh_warning(review.refresh_error))
    if warnings:
        out["warnings"] = warnings
    return out


def pause_words(v: PipelineView, r: PipelineRollout | None = None) -> str:
    """How long a pipeline the merge pauses stays paused, as roughly as we can know: in
    one pause, or in `r.pauses` when maxPause splits it (the estimate is the longest)."""
    if r is not None and r.pauses > 1:
        rough = ""
        if r.estimated_pause_seconds is not None:
            rough = f", each about {durations.rough(r.estimated_pause_seconds)} at the latency seen now"
        return (
            f"for its {plural(v.requests, 'request')} in {r.pauses} pauses (maxPause){rough}, "
            "starting it again after each"
        )
    rough = ""
    if v.seconds is not None:
        rough = f", about {durations.rough(v.seconds)} at the latency seen now"
    return f"for its {plural(v.requests, 'request')}{rough}, then starts it again"


def rollout_lines(view: Sequence[PipelineRollout], review: Review) -> list[str]:
    """DESIGN "Gentle on production", in words: the settings in force, then each pipeline
    apply pauses in the order it takes them, its requests, pauses and the estimate of each
    (offline: what would give one). Empty when apply pauses nothing."""
    order = [r for r in view if r.pauses]  # `view`: rollout_view's, computed once by the caller
    if not order:
        return []
    canary = "on" if review.canary else "off"
    head = (
        f"Rollout: each pipeline paused just before its own first request and started again once "
        f"its own requests are answered, fewest first; at most {review.max_paused} paused at once, "
        f"no pause longer than {durations.spelled(review.max_pause)}; canary {canary}."
    )
    if review.statuses is None:
        head += " Offline, every pipeline with requests is listed; estimates need plan --refresh."
    lines = [head]
    for i, r in enumerate(order, 1):
        each = "" if r.pauses == 1 else " each"
        est = (
            f", about {durations.rough(r.estimated_pause_seconds)}{each}"
            if r.estimated_pause_seconds is not None
            else ""
        )
        lines.append(
            f"{i}. {r.ref.org_id} / {r.ref.pipeline_id}: {plural(r.requests, 'request')}, "
            f"{plural(r.pauses, 'pause')}{est}"
        )
    return lines


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
        lines.append(f"Also refused with {'it' if len(policy.large) == 1 else 'them'}: {held}.")
    them = "it" if len(policy.large) == 1 else "them"
    sizes = [c for _, c in policy.large]
    if sum(sizes) <= limit:
        split = f"merge {them} on {'its' if them == 'it' else 'their'} own"
    elif max(sizes) <= limit:
        split = "merge them one at a time"
    else:
        split = f"split {them} into manifests of at most {limit:,} cells, merged one at a time"
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
    window = f"; {policy.window.words()}" if policy.window is not None else ""  # apply.windows
    return f"{limit}; {pause}{window}"


def source_line(src: IdSource) -> str:
    """ "50,000 asset IDs from manifests/ids/fleet.txt (sha256 1a2b…)" """
    return f"{plural(src.ids, src.noun + ' ID')} from {src.path} (sha256 {src.sha256})"


def recleared_lines(found: tuple[Recleared, ...], q: str = "") -> list[str]:
    """One line per manifest that clears cells cleared before: the latest manifest that
    cleared them, and how many others did before it (52 weekly resets are one line)."""
    by_manifest: dict[str, list[Recleared]] = {}
    for r in found:
        by_manifest.setdefault(r.manifest, []).append(r)
    lines = []
    for manifest, rs in by_manifest.items():
        rs.sort(key=lambda r: (r.last_at, r.cleared_by))
        latest = rs[-1]
        these = "this cell was" if latest.cells == 1 else f"these {latest.cells:,} cells were"
        line = f"{q}{manifest}{q}: {these} cleared by {q}{latest.cleared_by}{q} {latest.when}"
        if len(rs) > 1:
            line += f" (and by {plural(len(rs) - 1, 'other manifest')} since {min(r.first_at for r in rs)})"
        lines.append(line + "; a new name clears them again, with the state rebuilt since")
    return lines


def blocking(plan: Plan, statuses: Mapping[PipelineRef, LiveStatus], pause: bool = False) -> set[PipelineRef]:
    """Pipelines that would stop apply: not PAUSED, with requests apply would send, and
    not RUNNING ones that apply pauses itself (`pause`, apply.pausePipelines)."""
    review = Review(policy=Policy(None, pause, 0), statuses=statuses)
    return {v.ref for v in pipeline_views(plan, review) if v.blocks}


def _status(statuses: Mapping[PipelineRef, LiveStatus], ref: PipelineRef) -> LiveStatus:
    return statuses.get(ref, LiveStatus(MISSING))


def refresh_warning(error: str) -> str:
    return (
        f"live pipeline status is missing: --refresh failed ({error}). This is the offline "
        "plan: it does not say which pipelines apply would pause or be stopped by."
    )
