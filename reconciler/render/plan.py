"""A plan for people: text (Terraform-like) and markdown (a pull-request comment).

Pure functions from values to strings. Text uses rich markup, which the CLI's
console turns into colour on a terminal and strips elsewhere; every ID is escaped
so that user data is never read as markup. The markdown is what a reviewer
approves an irreversible operation from: every ID in it is shown exactly as it
will be sent, inside code spans or code blocks, never as markdown or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from rich.markup import escape

from reconciler.plan import Action, Plan
from reconciler.plan.values import KeyDiff, PendingGroup, PipelineRef, RenameHint, StageKey, writable
from reconciler.render.review import (
    LiveStatus,
    Review,
    blocking,
    pause_words,
    pipeline_views,
    policy_lines,
    policy_verdict,
    recleared_lines,
    refresh_warning,
    review_json,
    rollout_lines,
    rollout_view,
    source_line,
)
from reconciler.render.text import fit, md_code, term
from reconciler.words import plural

__all__ = [  # the review's words are re-exported: callers render plans from here
    "GITHUB_COMMENT_LIMIT",
    "LiveStatus",
    "Review",
    "blocking",
    "plan_text",
    "review_json",
    "status_text",
]

SAMPLE = 3
GITHUB_COMMENT_LIMIT = 65_536
HISTORY_LINES = 20  # stages of history a text plan lists one by one


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
                *distinct_ids(kd.pending),
                len(doubt),
                distinct_ids(kd.in_doubt)[0],
                shapes(sent),
                shapes(doubt),
            )
        )
    return views


MAX_SHAPES = 4


def shapes(actions: Iterable[Action]) -> str:
    """The requests as they will be sent, by shape: "4 assets x 2 points, 1 asset x 1 point",
    or "50 requests of 1,000 assets x 20 points" for repeats (each exactly that shape); never one union product."""
    counts: dict[tuple[int, int], int] = {}
    for a in actions:
        shape = (len(a.asset_ids), len(a.point_ids))
        counts[shape] = counts.get(shape, 0) + 1
    parts = [
        (f"{n:,} requests of " if n > 1 else "") + f"{plural(assets, 'asset')} x {plural(points, 'point')}"
        for (assets, points), n in list(counts.items())[:MAX_SHAPES]
    ]
    if len(counts) > MAX_SHAPES:
        parts.append(f"+{plural(len(counts) - MAX_SHAPES, 'more shape')}")
    return ", ".join(parts)


def distinct_ids(groups: Sequence[PendingGroup]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct assets and points of some pending groups, in plan order."""
    if len(groups) == 1:  # a group's IDs are distinct (`PendingGroup`): nothing to drop
        return groups[0].assets, groups[0].points
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


def rename_warnings(hints: Sequence[RenameHint], quote: str = "") -> list[str]:
    """One warning per hint nobody acknowledged (each needs its own `renamedFrom`), then
    one per manifest for the old names a re-clear acknowledges (the trial: three rounds of
    `metadata.reclear` gave a line per old name, 15 for 5)."""
    olds: dict[tuple[str, int, str], list[str]] = {}
    for h in hints:
        if h.reclear is not None:
            olds.setdefault((h.manifest, h.cells, h.reclear), []).append(h.old_name)
    q = quote
    return [rename_warning(h, quote) for h in hints if h.reclear is None] + [
        rename_warning(RenameHint(manifest, f"{q}, {q}".join(names), cells, why), quote)
        for (manifest, cells, why), names in olds.items()
    ]


def rename_warning(hint: RenameHint, quote: str = "") -> str:
    """The warning for pending cells already cleared under a name no manifest declares now
    (`old_name`: names, joined, when several acknowledged ones say the same)."""
    q = quote
    were = "was" if hint.cells == 1 else "were"
    head = (
        f"{plural(hint.cells, 'pending cell')} of {q}{hint.manifest}{q} {were} already cleared under "
        f"{q}{hint.old_name}{q}, which no manifest declares now; "
    )
    if hint.reclear is not None:  # acknowledged: plan and apply go ahead, and say why
        reason = md_code(hint.reclear) if q == "`" else term(hint.reclear)
        return head + f"it clears {'it' if hint.cells == 1 else 'them'} again on purpose: {reason}"
    return head + f"if this is a rename, add {q}metadata.renamedFrom: [{hint.old_name}]{q}"


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
    out.extend(_text_rollout(plan, review))
    out.extend(_text_policy(review))
    out += ["", f"[bold]{summary_line(plan)}[/bold]"]
    if plan.has_changes:
        out.append(f"Plan hash: {plan.plan_hash}")
    return "\n".join(map(term, out)) + "\n"  # a file name or a label cannot redraw the terminal


def _text_warnings(review: Review) -> list[str]:
    """Plan-level warnings, and why the live part is missing, before anything else."""
    from reconciler.settings import advice  # a warning with a hint, in the CLI's words

    lines = [
        f"[red]Warning:[/red] this pull request changes {escape(line)}" for line in review.config_changes
    ]
    lines += [f"[yellow]Warning:[/yellow] {escape(advice(w))}" for w in review.warnings]
    if review.refresh_error is not None:
        lines.append(f"[yellow]Warning:[/yellow] {escape(refresh_warning(review.refresh_error))}")
    return [*lines, ""] if lines else []


def _text_policy(review: Review) -> list[str]:
    lines = policy_lines(review.policy) if review.policy else []
    if not lines:
        return []
    first = f"[red]Apply will refuse this whole plan:[/red] {escape(lines[0])}"
    return ["", first, *(f"    {escape(line)}" for line in lines[1:])]


def _text_recleared(review: Review) -> list[str]:
    if not review.recleared:
        return []
    return [""] + [
        f"[yellow]Cleared before:[/yellow] {escape(line)}" for line in recleared_lines(review.recleared)
    ]


def _text_key(v: KeyView, org: str, pipeline: str, stage: str) -> list[str]:
    kd = v.kd
    name = escape(f"{org} / {pipeline} / {stage}")
    normal = kd.pending_cells - kd.in_doubt_cells
    if not kd.pending_cells:
        return [f"    [dim]= {name}: up to date ({plural(kd.applied_cells, 'cell')} applied)[/dim]"]
    lines = [f"    [yellow]~[/yellow] {name}"]
    if normal:
        lines += _fitted(
            "        [red]-[/red] ",
            [
                ("", f"clear {plural(normal, 'cell')} in {plural(v.requests, 'request')}:"),
                (" ", f"{v.shapes};"),
                (" ", f"assets {sample(v.assets)};"),
                (" ", f"points {sample(v.points)}"),
            ],
        )
    if kd.in_doubt_cells:
        rule = doubt_rule(kd.resumed_since_intent)
        lines += _fitted(
            "        [magenta]?[/magenta] ",
            [
                (
                    "",
                    f"in doubt: {plural(kd.in_doubt_cells, 'cell')} in {plural(v.doubt_requests, 'request')}",
                ),
                (" ", f"({v.doubt_shapes};"),
                (" ", f"assets {sample(v.doubt_assets)}):"),
                (" ", "sent, no answer recorded;"),
                (" ", rule),
            ],
        )
    if kd.applied_cells:
        lines.append(f"        [dim]= already applied: {plural(kd.applied_cells, 'cell')}[/dim]")
    return lines


def _fitted(head: str, parts: list[tuple[str, str]]) -> list[str]:
    """A request line within WIDTH columns in a CI log (which has no width): `head` (an
    indent and a coloured mark) then `parts`, wrapped under the first part."""
    start = len(head) - _markup_len(head)
    first, *rest = fit(parts, start=start, indent=start)
    return [head + escape(first), *(" " * start + escape(line) for line in rest)]


def _markup_len(head: str) -> int:
    """How many characters of `head` are markup tags (`[red]`, `[/red]`), not shown."""
    return sum(len(tag) for tag in re.findall(r"\[/?[a-z ]+\]", head))


def _text_renames(plan: Plan) -> list[str]:
    if not plan.renames:
        return []
    return [""] + [f"[yellow]Warning:[/yellow] {escape(line)}" for line in rename_warnings(plan.renames)]


def _text_history(plan: Plan, review: Review) -> list[str]:
    if review.history_note is not None:
        return ["", f"History: {escape(review.history_note)}"]
    if not plan.undeclared:
        return []
    lines = ["", "History: cells the ledger records that no manifest declares now (not acted on):"]
    # by name, the first few: years of retired manifests would otherwise fill the plan
    shown, hidden = plan.undeclared[:HISTORY_LINES], plan.undeclared[HISTORY_LINES:]
    for (manifest, org, pipeline, stage), cells in shown:
        lines.append(
            f"    [dim]{escape(f'{manifest}: {org} / {pipeline} / {stage}')}: {plural(cells, 'cell')}[/dim]"
        )
    if hidden:
        total = sum(n for _, n in hidden)
        lines.append(
            f"    [dim]and {plural(len(hidden), 'more stage')} ({plural(total, 'cell')}); "
            "`reconcile plan --format json` lists every one[/dim]"
        )
    return lines


def _text_rollout(plan: Plan, review: Review) -> list[str]:
    """The order apply takes the pipelines it pauses, within 120 columns."""
    said = rollout_lines(rollout_view(plan, review), review)
    if not said:
        return []
    head, *rows = said
    lines = ["", *(escape(line) for line in fit([("", head)], start=0, indent=0))]
    for row in rows:
        first, *more = fit([("", row)], start=4, indent=8)
        lines += [f"    {escape(first)}", *(f"        {escape(line)}" for line in more)]
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
    rolls = {r.ref: r for r in rollout_view(plan, review)}
    for v in pipeline_views(plan, review):
        if writable(v.status):
            style, label, rest = "green", "ok", ""
        elif v.will_pause:
            style, label, rest = "yellow", "apply pauses it", f" {pause_words(v, rolls.get(v.ref))}"
        elif v.blocks:
            style, label, rest = "red", "blocks apply", ""
        else:
            style, label, rest = "", "nothing to send", ""
        name = f" ({v.name})" if v.name and v.name != v.ref.pipeline_id else ""
        # word by word after the verdict, which stays whole so that it can be coloured
        words = f"({label}{rest})".removeprefix(f"({label}").split(" ")
        parts = [("", f"{v.ref.org_id} / {v.ref.pipeline_id}{name}: {v.status}"), (" ", f"({label}")]
        parts += [("", words[0]), *((" ", w) for w in words[1:])]
        first, *more = fit(parts, start=4, indent=8)
        shown = [f"    {escape(first)}", *(f"        {escape(line)}" for line in more)]
        at = next((i for i, line in enumerate(shown) if f"({label}" in line), None)
        if style and at is not None:
            shown[at] = shown[at].replace(f"({label}", f"([{style}]{label}[/{style}]", 1)
        lines += shown
    return "\n".join(map(term, lines)) + "\n"  # names and statuses from the gateway: shown, not obeyed
