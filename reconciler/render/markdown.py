"""The plan as a pull-request comment: what a reviewer approves an irreversible operation from.

Pure: the CLI passes in what comes from outside (live statuses, the base commit, the
base URL of file links). Every ID is shown exactly as it will be sent, in code spans
or code blocks, so no manifest can inject markdown or HTML. The comment fits
GitHub's 65,536 characters: the summary, warnings and per-manifest tables first,
then the full IDs as far as the budget allows, then counts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

from reconciler.manifests import IdSource, LoadResult, Manifest
from reconciler.plan import Plan
from reconciler.plan.values import MISSING, PipelineRef
from reconciler.render.markdown_ids import code, shared_details, text
from reconciler.render.plan import (
    GITHUB_COMMENT_LIMIT,
    KeyView,
    _views,
    distinct_ids,
    rename_warning,
    rename_warnings,
    sample,
    summary_line,
)
from reconciler.render.review import (
    LiveStatus,
    PipelineView,
    Review,
    pause_words,
    pipeline_views,
    policy_lines,
    policy_verdict,
    recleared_lines,
    refresh_warning,
    rollout_lines,
    rollout_view,
)
from reconciler.render.text import clip
from reconciler.words import plural

__all__ = ["code", "link_base_from_env", "plan_markdown", "text"]

NOTICE = (
    "> **Irreversible.** Once this is merged, CI deletes the stage state below on EnOS; "
    "deleted state cannot be restored."
)
MAX_NAMES = 100  # up-to-date manifests named in full; the rest are counted
MAX_RENAMES = 20  # rename warnings in full; the rest are counted, so the tables keep their room
# Free text has a bounded share of the comment: one long description or label must not
# push the other manifests' tables out of the size limit (issue 27 item 7).
DESCRIPTION_MAX = 500
LABEL_MAX = 200
MAX_LABELS = 20


def link_base_from_env(env: Mapping[str, str]) -> str | None:
    """The absolute URL manifest paths are appended to for links: a blob URL of the commit
    under review in CI (a relative link in a comment resolves under /pull/N/, nowhere).

    GitHub: the pull request's head commit when the workflow passes it
    (RECONCILE_HEAD_SHA), else its branch, else GITHUB_SHA; GitLab: the commit.
    """
    if env.get("GITHUB_REPOSITORY"):
        ref = env.get("RECONCILE_HEAD_SHA") or env.get("GITHUB_HEAD_REF") or env.get("GITHUB_SHA")
        if ref:
            server = env.get("GITHUB_SERVER_URL") or "https://github.com"
            return f"{server}/{env['GITHUB_REPOSITORY']}/blob/{quote(ref)}"
    if env.get("CI_PROJECT_URL") and env.get("CI_COMMIT_SHA"):
        return f"{env['CI_PROJECT_URL']}/-/blob/{env['CI_COMMIT_SHA']}"
    return None


@dataclass(frozen=True)
class _Context:
    plan: Plan
    review: Review
    manifests: Mapping[str, Manifest]
    link_base: str | None

    @property
    def statuses(self) -> Mapping[PipelineRef, LiveStatus] | None:
        return self.review.statuses

    def sources(self, name: str) -> tuple[IdSource, ...]:
        if name in self.review.sources:
            return self.review.sources[name]
        m = self.manifests.get(name)
        return m.id_sources if m is not None else ()


def plan_markdown(
    plan: Plan,
    statuses: Mapping[PipelineRef, LiveStatus] | None = None,
    *,
    manifests: LoadResult | None = None,
    max_cells: int | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
    base_commit: str | None = None,
    link_base: str | None = None,
    review: Review | None = None,
) -> str:
    """A pull-request comment of at most `limit` characters.

    The summary, warnings and every manifest's table come first; then each manifest's IDs,
    sharing what room is left so that every manifest shows its IDs before any shows more.
    """
    review = review or Review()
    if statuses is not None and review.statuses is None:
        review = replace(review, statuses=statuses)
    if max_cells is not None and review.policy is None:
        review = replace(review, policy=plan.policy(max_cells, False, "--max-cells"))
    ctx = _Context(plan, review, {m.name: m for m in manifests.manifests} if manifests else {}, link_base)
    by_manifest: dict[str, list[KeyView]] = {}
    for v in _views(plan):
        by_manifest.setdefault(v.kd.key.manifest, []).append(v)
    pending = {m: vs for m, vs in by_manifest.items() if any(v.kd.pending_cells for v in vs)}
    top = [*_config_changes(review), *_head(ctx, base_commit), *_warnings(ctx)]
    tail = [*_up_to_date([m for m in by_manifest if m not in pending]), *_history(plan, review)]
    sections = [(name, "\n".join(_section(ctx, name, vs))) for name, vs in pending.items()]
    budget = limit - len("\n".join([*top, *tail])) - 2 - 400  # room for the note on what was not shown
    shown: list[tuple[str, str]] = []
    for name, section in sections:
        if len(section) + 1 > budget:
            break
        shown.append((name, section))
        budget -= len(section) + 1
    details = shared_details([by_manifest[name] for name, _ in shown], budget)
    body = list(top)
    for (_, section), listing in zip(shown, details, strict=True):
        body.append(section)
        body += [listing] if listing else []
    if len(shown) < len(sections):
        rest = [name for name, _ in sections[len(shown) :]]
        cells = sum(v.kd.pending_cells for name in rest for v in pending[name])
        body += [
            "",
            f"**{plural(len(rest), 'more manifest')} with {plural(cells, 'cell')} to clear not shown** "
            "(comment size limit); run `reconcile plan` to see every one.",
        ]
    body += tail
    return "\n".join(body) + "\n"


# --- the parts -----------------------------------------------------------------------


def _config_changes(review: Review) -> list[str]:
    """The very top of the comment: what the pull request changes in reconcile.yaml that
    decides where credentials go, where the ledger lives, or what apply may do."""
    if not review.config_changes:
        return []
    return [
        "> [!CAUTION]",
        "> **This pull request changes where credentials are sent, or how apply behaves** "
        "(reconcile.yaml). Review these lines first:",
        *(f"> - {_as_written(line)}" for line in review.config_changes),
        "",
    ]


def _as_written(line: str) -> str:
    """URLs and $VARIABLE names as written: every punctuation character escaped, so an
    underscore inside a word is no emphasis and nothing opens markup or HTML."""
    return text(line)


def _head(ctx: _Context, base_commit: str | None) -> list[str]:
    plan = ctx.plan
    out = ["## reconcile plan", "", NOTICE, ""]
    if plan.has_changes:
        out.append(f"**{summary_line(plan)}**")
    else:
        out.append(
            "**No changes.** Every declared cell is already in the ledger "
            f"({plural(plan.summary.applied_cells, 'cell')} applied)."
        )
    out.append("")
    if plan.has_changes:
        out.append(f"- Plan hash: `{plan.plan_hash}`")
    if base_commit:
        out.append(f"- Base commit: {_commit(base_commit)}")
    head = plan.ledger
    out.append(f"- Ledger: {code(head.path)} at seq {head.seq:,} (head `{head.hash[:12]}`)")
    if ctx.review.policy is not None:
        out.append(f"- Apply policy: {text(policy_verdict(ctx.review.policy))}")
    if ctx.link_base is None:
        out.append("- File paths are relative to the repository root (no CI server known, so not linked).")
    out.append(
        "- _A base commit or ledger head older than the branch you merge onto means this comment is stale._"
    )
    return out


def _commit(base_commit: str) -> str:
    """The commit in a code span, and what is said about it outside the span."""
    sha, _, rest = base_commit.partition(" ")
    return code(sha) + (f" {text(rest)}" if rest else "")


def _warnings(ctx: _Context) -> list[str]:
    from reconciler.settings import advice  # a warning with a hint, in the CLI's words

    plan, review, out = ctx.plan, ctx.review, []
    out += [f"- **Warning:** {text(advice(w))}" for w in review.warnings]
    if review.refresh_error is not None:
        out.append(f"- **Live status missing:** {text(refresh_warning(review.refresh_error))}")
    refused = policy_lines(review.policy, "`") if review.policy else []
    if refused:
        out.append(f"- **Apply will refuse this whole plan:** {' '.join(refused)}")
    acknowledged = [h for h in plan.renames if h.reclear is not None]
    out += [f"- **Cleared again on purpose:** {line}." for line in rename_warnings(acknowledged, "`")]
    unsaid = [h for h in plan.renames if h.reclear is None]
    out += [f"- **Rename?** {rename_warning(h, '`')}." for h in unsaid[:MAX_RENAMES]]
    if len(unsaid) > MAX_RENAMES:
        more = unsaid[MAX_RENAMES:]
        out.append(
            f"- **{plural(len(more), 'more rename warning')}** ({plural(sum(h.cells for h in more), 'cell')}): see `reconcile plan`."
        )
    again = recleared_lines(review.recleared, "`")
    out += [f"- **Cleared before:** {line}." for line in again[:MAX_RENAMES]]
    if len(again) > MAX_RENAMES:
        out.append(
            f"- **{plural(len(again) - MAX_RENAMES, 'more manifest')}** clear cells cleared before: see `reconcile plan`."
        )
    doubt = [a for a in plan.actions if a.in_doubt]
    if doubt:
        out.append(
            f"- **In doubt:** {plural(sum(a.cells for a in doubt), 'cell')} in {plural(len(doubt), 'request')} "
            "sent with no answer recorded. Apply re-sends them only while the pipeline has stayed "
            "paused; otherwise a person decides (`--resend-in-doubt` or `reconcile ledger resolve`)."
        )
    view = rollout_view(plan, review)  # once, for every line below
    if ctx.statuses is not None:
        views = pipeline_views(plan, review)
        rolls = {r.ref: r for r in view}
        for v in (v for v in views if v.will_pause):
            out.append(
                f"- **The merge pauses production:** {_pipeline(ctx, v.ref)} is RUNNING; apply pauses it "
                f"{pause_words(v, rolls.get(v.ref))}."
            )
        if sum(v.will_pause for v in views) > 1:
            order = [r for r in view if r.pauses]
            out.append(
                "- **In this order**, each paused just before its own first request and started again "
                "as soon as its own requests are answered: "
                + ", then ".join(_pipeline(ctx, r.ref) for r in order)
                + " (fewer requests first)."
            )
        blocked = [v for v in views if v.blocks]
        if blocked:
            names = ", ".join(
                f"{_pipeline(ctx, v.ref)} **{text(clip(v.status, LABEL_MAX))}**" for v in blocked
            )
            out.append(f"- **Would block apply** (requests to send, not PAUSED): {names}")
    said = rollout_lines(view, review)
    if said:  # the settings in force, and offline the order with a pause count each
        head, *rows = said
        out.append(f"- **Rollout:** {text(head.removeprefix('Rollout: '))}")
        if ctx.statuses is None or any(r.pauses > 1 for r in view):
            out += [f"  - {text(row)}" for row in rows]
    if plan.pending_resumes:
        left = ", ".join(
            f"{_pipeline(ctx, r.pipeline)} since {text(r.paused_at)}" for r in plan.pending_resumes
        )
        them = "it" if len(plan.pending_resumes) == 1 else "them"
        out.append(f"- **Left paused** by an interrupted apply (apply starts {them} again): {left}")
    return ["", "**Check before approving:**", "", *out] if out else []


def _section(ctx: _Context, name: str, views: Sequence[KeyView]) -> list[str]:
    m = ctx.manifests.get(name)
    title = f"### {code(name)}"
    if m is not None:
        title += f" · {_file_link(m.path, ctx.link_base)}"
    out = ["", title]
    if m is not None and m.description:
        out += ["", f"> {text(clip(m.description, DESCRIPTION_MAX))}"]
    if m is not None and m.labels:
        labels = [code(clip(f"{k}: {v}", LABEL_MAX)) for k, v in m.labels[:MAX_LABELS]]
        more = len(m.labels) - MAX_LABELS
        out += ["", "Labels: " + ", ".join(labels) + (f", … +{more:,} more" if more > 0 else "")]
    sources = ctx.sources(name)
    if sources:
        out += [""] + [
            f"- {plural(src.ids, src.noun + ' ID')} from {_file_link(src.path, ctx.link_base)} "
            f"(sha256 `{src.sha256}`)"
            for src in sources
        ]
    live = ctx.statuses is not None
    out += [
        "",
        "| orgId | pipeline | stage | to clear | requests | assets | points | applied | in doubt |"
        + (" status |" if live else ""),
        "|---|---|---|--:|---|---|---|--:|--:|" + ("---|" if live else ""),
    ]
    pipes = {v.ref: v for v in pipeline_views(ctx.plan, ctx.review)} if live else {}
    out += [_row(ctx, v, pipes) for v in views if v.kd.pending_cells]
    done = [v for v in views if not v.kd.pending_cells]
    if done:
        stages = ", ".join(code(v.kd.key.stage) for v in done)
        applied = sum(v.kd.applied_cells for v in done)
        out += [
            "",
            f"Up to date: {plural(len(done), 'stage')} ({stages}), {plural(applied, 'cell')} applied.",
        ]
    return out


def _row(ctx: _Context, v: KeyView, pipes: Mapping[PipelineRef, PipelineView]) -> str:
    kd = v.kd
    assets, points = distinct_ids([*kd.pending, *kd.in_doubt])
    requests = v.shapes
    if v.doubt_requests:
        requests += ("; " if requests else "") + f"in doubt: {v.doubt_shapes}"
    cells = [
        code(kd.key.org_id, table=True),
        _pipeline(ctx, kd.key.pipeline, table=True),
        code(kd.key.stage, table=True),
        f"{kd.pending_cells:,}",
        f"{plural(v.requests + v.doubt_requests, 'request')}: {requests}",
        _sample(assets),
        _sample(points),
        f"{kd.applied_cells:,}",
        f"{kd.in_doubt_cells:,}",
    ]
    if ctx.statuses is not None:
        p = pipes.get(kd.key.pipeline)
        status = text(clip(p.status, LABEL_MAX)) if p is not None else MISSING
        if p is not None and p.will_pause:
            cells.append(f"**{status}** (the merge pauses it)")
        else:
            cells.append(f"**{status}** (blocks apply)" if p is not None and p.blocks else status)
    return "| " + " | ".join(cells) + " |"


def _sample(ids: Sequence[str]) -> str:
    if not ids:
        return "0"
    return f"{len(ids):,} ({sample(ids, show=lambda i: code(i, table=True))})"


def _up_to_date(names: Sequence[str]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(code(n) for n in names[:MAX_NAMES])
    more = f", … +{len(names) - MAX_NAMES:,} more" if len(names) > MAX_NAMES else ""
    return ["", f"{plural(len(names), 'manifest')} up to date: {shown}{more}"]


def _history(plan: Plan, review: Review) -> list[str]:
    if review.history_note is not None:
        return ["", f"History: {text(review.history_note)}"]
    if not plan.undeclared:
        return []
    total = sum(n for _, n in plan.undeclared)
    return [
        "",
        f"History: {plural(total, 'ledger cell')} in {plural(len(plan.undeclared), 'stage')} no manifest "
        "declares now (not acted on).",
    ]


def _live(ctx: _Context, ref: PipelineRef) -> LiveStatus:
    return (ctx.statuses or {}).get(ref, LiveStatus(MISSING))


def _pipeline(ctx: _Context, ref: PipelineRef, *, table: bool = False) -> str:
    name = _live(ctx, ref).name
    shown = name and name != ref.pipeline_id
    return code(ref.pipeline_id, table=table) + (f" ({text(clip(name, LABEL_MAX))})" if shown else "")


def _file_link(path: str, link_base: str | None) -> str:
    """A link to the file at the commit under review; without a known server, the path
    alone (the head says so): a relative link in a comment resolves under /pull/N/."""
    shown = path.replace("\\", "/").removeprefix("./")
    if shown.startswith("/") or not link_base:  # outside the repository, or nowhere to link
        return code(shown)
    return f"[{code(shown)}]({link_base.rstrip('/')}/{quote(shown)})"
