"""`reconcile validate` and `reconcile plan`, the whole run: what the reviewer sees,
in text, JSON or a pull request's markdown comment, and the exit code."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.args import PlanFormat
from reconciler.commands import DONE, EXIT_CHANGES, CommandOutcome
from reconciler.errors import ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.apply.live import LiveState
    from reconciler.args import PlanArgs
    from reconciler.config import RepoConfig
    from reconciler.operations import Planned
    from reconciler.plan import Plan
    from reconciler.render.console import Consoles
    from reconciler.render.review import Review


def validate(paths: list[str] | None, c: Consoles) -> CommandOutcome:
    """Load and check manifests; every problem as `file:line:col: message`."""
    from reconciler import manifests
    from reconciler.settings import paths_or_default

    result = manifests.load_or_raise(paths_or_default(paths))
    for d in result.warnings:
        c.err.print(str(d), markup=False, style="yellow")
    cells = sum(m.cells for m in result.manifests)
    c.out.print(
        f"{plural(len(result.manifests), 'manifest')} in {plural(len(result.files), 'file')} valid: "
        f"{cells:,} cells declared.",
        markup=False,
    )
    return DONE


def plan(args: PlanArgs, c: Consoles) -> CommandOutcome:
    """Show what `apply` would clear, and apply's verdict on it; 2 with
    `--detailed-exitcode` when there is something to apply."""
    from reconciler import operations
    from reconciler.commands.root import from_repository_root
    from reconciler.settings import config, paths_or_default, plan_options
    from reconciler.store import base_from_env, open_store

    with _comment_on_refusal(c, args.fmt) as seen:
        pr_base = seen.base = args.base or base_from_env()
        args = from_repository_root(c, args)
        options = plan_options(args.max_points, args.max_assets, args.target)
        given = paths_or_default(args.paths)
        cfg, changes = _pull_request_config(c, config(args.config_file), pr_base)
        planned = operations.plan(given, open_store(cfg, args.ledger), options, pr_base=pr_base)
        for w in planned.warnings:
            c.warn(w)
        p = planned.plan
        partial = args.paths is not None and operations.only_files(args.paths)
        if partial:  # history of manifests outside the given files is not news
            p = _without_history(p)
        review = _review(cfg, planned, p, args, partial=partial)
        review = dataclasses.replace(review, config_changes=tuple(changes))
        live = None
        if args.refresh:  # the pipelines now, and what the cells hold (issue 20): one gateway session
            from reconciler.commands.refresh import refresh as read_refresh

            review, live = read_refresh(c, review, p, args.gateway, cfg)
        _output(c, args.fmt, p, planned, review, live, paths=given, out_file=args.out_file, pr_base=pr_base)
    return CommandOutcome(EXIT_CHANGES) if args.detailed_exitcode and p.has_changes else DONE


class _Seen:
    base: str | None = None


@contextmanager
def _comment_on_refusal(c: Consoles, fmt: PlanFormat) -> Iterator[_Seen]:
    """With `--format markdown`, a refusal still prints a comment body (saying plan refused,
    why and what to do) before the error reaches stderr and exit 1: CI posts it over the
    comment that described an earlier version of the pull request (issue 27 item 3)."""
    seen = _Seen()
    try:
        yield seen
    except (ReconcilerError, OSError) as exc:
        if fmt is PlanFormat.MARKDOWN:
            from reconciler.render.refusal import refusal_markdown

            c.write(refusal_markdown(exc, seen.base))
        raise


def _pull_request_config(
    c: Consoles, cfg: RepoConfig | None, pr_base: str | None
) -> tuple[RepoConfig | None, list[str]]:
    """In a pull request, every setting that reaches outside the repository (gateways and
    credential names, the ledger's git remote, notification targets) comes from the base,
    never the pull request (`pull_request_config`); and what the pull request changes in
    reconcile.yaml that changes what the merge does is said first."""
    if pr_base is None:
        return cfg, []
    from reconciler.config import review_changes
    from reconciler.settings import pull_request_config
    from reconciler.store import base_config

    base_cfg = base_config(cfg, pr_base)
    changes = review_changes(base_cfg, cfg)
    for line in changes:
        c.warn(f"this pull request changes {line}")
    return pull_request_config(cfg, base_cfg), changes


def _output(
    c: Consoles,
    fmt: PlanFormat,
    p: Plan,
    planned: Planned,
    review: Review,
    live: LiveState | None,
    *,
    paths: list[str],
    out_file: Path | None,
    pr_base: str | None = None,
) -> None:
    from reconciler.plan import file as planfile
    from reconciler.render.review import review_json  # not render.plan: rich is not for json

    extra = review_json(p, review)
    if out_file is not None:
        planfile.write(p, out_file, extra)
        c.err.print(f"Saved plan to {out_file} (plan hash {p.plan_hash})", markup=False)
    if fmt is PlanFormat.JSON:
        live_part = None
        if live is not None:
            from reconciler.render.live import live_json

            live_part = live_json(p, live)
        # written as encoded: a huge plan is never held whole
        for parts in planfile.encoded_parts(p, extra, live=live_part):
            c.write_parts(parts)
    elif fmt is PlanFormat.MARKDOWN:
        import os

        from reconciler.actor import current_actor
        from reconciler.render import markdown
        from reconciler.render.live import live_markdown
        from reconciler.render.plan import GITHUB_COMMENT_LIMIT

        live_md = live_markdown(p, live) if live else ""  # the comment limit holds for both together
        c.write(
            markdown.plan_markdown(
                p,
                manifests=planned.loaded,
                base_commit=f"{pr_base} (the pull request's base)"
                if pr_base
                else _base_commit(current_actor(paths)),
                link_base=markdown.link_base_from_env(os.environ),
                # a start in doubt heads the comment too (git-loop, issue 29 item 4)
                review=dataclasses.replace(review, warnings=(*review.warnings, *planned.start_warnings)),
                limit=GITHUB_COMMENT_LIMIT - len(live_md),
            )
            + live_md
        )
    else:
        from reconciler.render import plan as render  # rich: not for json

        c.out.print(render.plan_text(p, planned.manifest_files, review), end="")
        if review.statuses is not None:
            c.out.print(render.status_text(review.statuses, p, review), end="")
        if live is not None:
            from reconciler.render.live import live_text

            c.out.print(live_text(p, live), end="", markup=False)


def _review(
    cfg: RepoConfig | None,
    planned: Planned,
    p: Plan,
    args: PlanArgs,
    *,
    partial: bool,
    warnings: Sequence[str] = (),
) -> Review:
    """What the reviewer sees besides the plan, from the same settings apply reads.

    `warnings` head every format (text, the comment's "Check before approving", JSON
    `warnings`): the place for plan-level news such as a pull request that changes where
    credentials are sent."""
    from reconciler.config import check_bound, pick
    from reconciler.plan import recleared
    from reconciler.plan.rollout import DEFAULT_MAX_PAUSE, DEFAULT_MAX_PAUSED
    from reconciler.render.review import Review
    from reconciler.settings import max_pause_seconds

    max_cells, pause = args.max_cells, args.pause_pipelines
    check_bound("--max-paused", args.max_paused, 1, 64)
    limit = max_cells if max_cells is not None else (cfg.max_cells if cfg else None)
    where = "--max-cells" if max_cells is not None else "apply.maxCells"
    policy = p.policy(limit, pick(pause, cfg.pause_pipelines if cfg else None, False), where)
    if cfg is not None and cfg.windows is not None:  # apply.windows: when the merge is applied
        import time

        from reconciler import windows

        window = windows.state(cfg.windows, windows.from_epoch(time.time()))
        policy = dataclasses.replace(policy, window=window)
    note = None
    if partial:
        note = (
            "not shown: only the given files were read, so a manifest in another file may still "
            "declare what the ledger holds (run `reconcile plan` on the whole directory to see "
            "history and rename hints)"
        )
    return Review(
        policy=policy,
        concurrency=pick(None, cfg.concurrency if cfg else None, 4),
        max_paused=pick(args.max_paused, cfg.max_paused if cfg else None, DEFAULT_MAX_PAUSED),
        max_pause=pick(max_pause_seconds(args.max_pause), cfg.max_pause if cfg else None, DEFAULT_MAX_PAUSE),
        canary=pick(False if args.no_canary else None, cfg.canary if cfg else None, True),
        snapshot=cfg is not None and cfg.snapshot is not None,
        sources={m.name: m.id_sources for m in planned.loaded.manifests if m.id_sources},
        recleared=recleared(p, planned.ledger, planned.loaded.manifests),
        history_note=note,
        warnings=tuple(warnings),
    )


def _without_history(p: Plan) -> Plan:
    """The plan without history or rename hints: with only some files read, "no manifest
    declares it now" cannot be told. Neither is hashed: requests stay as they are."""
    from dataclasses import replace

    diff = replace(p.diff, undeclared=(), renames=())
    return replace(p, diff=diff, summary=replace(p.summary, undeclared_cells=0))


def _base_commit(actor: dict[str, object]) -> str | None:
    """The commit the manifests were read from, saying so when they differ from it."""
    commit = actor.get("gitCommit")
    if not isinstance(commit, str):
        return None
    return commit + (" with uncommitted changes" if actor.get("gitDirty") else "")
