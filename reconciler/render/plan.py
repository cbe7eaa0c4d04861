"""A plan for people: text (Terraform-like) and markdown (a pull-request comment).

Pure functions from values to strings. Text uses rich markup, which the CLI's
console turns into colour on a terminal and strips elsewhere; every ID is escaped
so that user data is never read as markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.markup import escape

from reconciler.diff import KeyDiff, PendingGroup, PipelineRef, StageKey
from reconciler.manifests import LoadResult
from reconciler.plan import Plan

SAMPLE = 3
GITHUB_COMMENT_LIMIT = 65_536


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
    for a in plan.actions:
        counts = requests.setdefault(a.key, [0, 0])
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


def sample(ids: Sequence[str], n: int = SAMPLE) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", … +{len(ids) - n:,} more" if len(ids) > n else "")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary_line(plan: Plan) -> str:
    s = plan.summary
    return (
        f"Plan: {_n(s.pending_cells, 'cell')} to clear in {_n(s.requests, 'request')}; "
        f"{s.applied_cells:,} already applied, {s.in_doubt_cells:,} in doubt, "
        f"{s.undeclared_cells:,} in history only."
    )


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
        return [f"    [dim]= {name}: up to date ({_n(kd.applied_cells, 'cell')} applied)[/dim]"]
    lines = [f"    [yellow]~[/yellow] {name}"]
    if normal:
        lines.append(
            f"        [red]-[/red] clear {_n(normal, 'cell')} in {_n(v.requests, 'request')}: "
            f"{_n(len(v.assets), 'asset')} ({escape(sample(v.assets))}) x "
            f"{_n(len(v.points), 'point')} ({escape(sample(v.points))})"
        )
    if kd.in_doubt_cells:
        rule = (
            "a resume followed it: left to a person (--resend-in-doubt or ledger resolve)"
            if kd.resumed_since_intent
            else "re-sent only if the pipeline is still PAUSED"
        )
        lines.append(
            f"        [magenta]?[/magenta] in doubt: {_n(kd.in_doubt_cells, 'cell')} in "
            f"{_n(v.doubt_requests, 'request')} ({escape(sample(v.doubt_assets))}): sent, no answer "
            f"recorded; {rule}"
        )
    if kd.applied_cells:
        lines.append(f"        [dim]= already applied: {_n(kd.applied_cells, 'cell')}[/dim]")
    return lines


def _text_history(plan: Plan) -> list[str]:
    if not plan.undeclared:
        return []
    lines = ["", "History: cells the ledger records that no manifest declares now (not acted on):"]
    for (manifest, org, pipeline, stage), cells in plan.undeclared:
        lines.append(
            f"    [dim]{escape(f'{manifest}: {org} / {pipeline} / {stage}')}: {_n(cells, 'cell')}[/dim]"
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


# --- markdown -----------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def plan_markdown(
    plan: Plan,
    statuses: Mapping[PipelineRef, str] | None = None,
    *,
    manifests: LoadResult | None = None,
    max_cells: int | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """A pull-request comment: fits `limit` characters, truncating rows with a note."""
    head = ["## reconcile plan", ""]
    if not plan.has_changes:
        head.append(
            f"**No changes.** Every declared cell is already in the ledger ({plan.summary.applied_cells:,} applied)."
        )
    else:
        head.append(f"**{summary_line(plan)}**")
        head += ["", f"Plan hash: `{plan.plan_hash}`"]
    head += ["", f"Ledger: `{_md(plan.ledger.path)}` at seq {plan.ledger.seq} (`{plan.ledger.hash[:12]}`)"]
    rows = [_md_row(v, statuses) for v in _views(plan)]
    table_head = [
        "",
        "| manifest | pipeline | stage | to clear | requests | assets | points | applied | in doubt |"
        + (" status |" if statuses is not None else ""),
        "|---|---|---|--:|--:|---|---|--:|--:|" + ("---|" if statuses is not None else ""),
    ]
    tail = _md_tail(plan, statuses)
    body = "\n".join(head + table_head)
    budget = limit - len(body) - len("\n".join(tail)) - 200
    kept: list[str] = []
    for row in rows:
        if budget - len(row) - 1 < 0:
            break
        kept.append(row)
        budget -= len(row) + 1
    note = []
    if len(kept) < len(rows):
        note = [
            "",
            f"_{len(rows) - len(kept):,} more rows not shown (comment size limit); run `reconcile plan` for all._",
        ]
    return "\n".join([body, *kept, *note, *tail]) + "\n"


def _md_row(v: KeyView, statuses: Mapping[PipelineRef, str] | None) -> str:
    m, org, pipeline, stage = v.kd.key
    kd = v.kd
    cells = [
        f"`{_md(m)}`",
        f"`{_md(pipeline)}`",
        f"`{_md(stage)}`",
        f"{kd.pending_cells:,}",
        f"{v.requests + v.doubt_requests:,}",
        f"{len(v.assets):,} ({_md(sample(v.assets))})" if v.assets else "0",
        f"{len(v.points):,} ({_md(sample(v.points))})" if v.points else "0",
        f"{kd.applied_cells:,}",
        f"{kd.in_doubt_cells:,}",
    ]
    if statuses is not None:
        status = statuses.get(PipelineRef(org, pipeline), "MISSING")
        blocks = kd.pending_cells and status != "PAUSED"
        cells.append(f"**{status}** (blocks apply)" if blocks else status)
    return "| " + " | ".join(cells) + " |"


def _md_tail(plan: Plan, statuses: Mapping[PipelineRef, str] | None) -> list[str]:
    out: list[str] = []
    doubt = [a for a in plan.actions if a.in_doubt]
    if doubt:
        out += [
            "",
            f"**In doubt:** {_n(sum(a.cells for a in doubt), 'cell')} in {_n(len(doubt), 'request')}: "
            "sent, but no answer was recorded. Apply re-sends them only while the pipeline has stayed paused.",
        ]
    if plan.undeclared:
        total = sum(n for _, n in plan.undeclared)
        out += [
            "",
            f"History: {total:,} ledger cells in {len(plan.undeclared)} stage(s) are no longer declared (not acted on).",
        ]
    if plan.pending_resumes:
        names = ", ".join(f"`{_md(r.pipeline.pipeline_id)}`" for r in plan.pending_resumes)
        out += ["", f"Left paused by an interrupted apply (will be started again): {names}"]
    if statuses is not None:
        blocked = sorted({f"`{_md(p)}` ({s})" for (o, p), s in statuses.items() if s != "PAUSED"})
        if blocked:
            out += ["", f"**Would block apply** (not PAUSED): {', '.join(blocked)}"]
    return out


def status_text(statuses: Mapping[PipelineRef, str], plan: Plan) -> str:
    """Live statuses; only a pipeline with pending work and not PAUSED blocks apply."""
    busy = {a.pipeline for a in plan.actions}
    lines = ["", "Live pipeline status (read-only):"]
    for (org, pipeline), status in sorted(statuses.items()):
        if status == "PAUSED":
            mark = "[green]ok[/green]"
        elif PipelineRef(org, pipeline) in busy:
            mark = "[red]blocks apply[/red]"
        else:
            mark = "nothing pending"
        lines.append(f"    {escape(org)} / {escape(pipeline)}: {escape(status)} ({mark})")
    return "\n".join(lines) + "\n"
