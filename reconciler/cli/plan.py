"""Offline commands: validate, plan, schema, ledger verify and show."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from reconciler.cli._app import (
    ConfigOpt,
    LedgerOpt,
    MaxAssets,
    MaxPoints,
    Paths,
    Targets,
    app,
    consoles,
    flag,
    paths_or_default,
)
from reconciler.cli._live import read_live
from reconciler.errors import ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.config import RepoConfig
    from reconciler.plan import Plan
    from reconciler.plan.values import PipelineRef
    from reconciler.render.plan import LiveStatus

# --- validate --------------------------------------------------------------------


@app.command()
def validate(paths: Paths = None) -> None:
    """Load and check manifests; every problem as `file:line:col: message`.

    \b
    Example:  reconcile validate manifests/
    """
    from reconciler import manifests

    c = consoles()
    result = manifests.load_or_raise(paths_or_default(paths))
    for d in result.warnings:
        c.err.print(str(d), markup=False, style="yellow")
    cells = sum(m.cells for m in result.manifests)
    c.out.print(
        f"{plural(len(result.manifests), 'manifest')} in {plural(len(result.files), 'file')} valid: "
        f"{cells:,} cells declared.",
        markup=False,
    )


# --- plan ------------------------------------------------------------------------


@app.command()
def plan(
    paths: Paths = None,
    ledger: LedgerOpt = None,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", metavar="FILE", help="Save the plan (JSON) for `reconcile apply PLAN`."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="text|json|markdown", help="text, json or markdown.")
    ] = "text",
    detailed_exitcode: Annotated[
        bool, flag("--detailed-exitcode", help="Exit 2 when there are changes to apply.")
    ] = False,
    target: Targets = None,
    max_points: MaxPoints = None,
    max_assets: MaxAssets = None,
    max_cells: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(metavar="N", min=0, help="Show whether apply's --max-cells would refuse this plan."),
    ] = None,
    refresh: Annotated[
        bool,
        flag(
            "--refresh",
            help="Add live pipeline statuses and how many pending cells hold state now, with samples "
            "(read-only gateway calls: one Get Stage State per request).",
        ),
    ] = False,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="URL", envvar="ENOS_API_GATEWAY", help="Gateway URL, for --refresh."),
    ] = None,
    config_file: ConfigOpt = None,
    base: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="COMMIT",
            help="The pull request's base commit: fail if the pull request changes the ledger or its "
            "lease, and take gateways and credential names from the base's reconcile.yaml (default: "
            "GitHub's or GitLab's own variables in a pull/merge request pipeline).",
        ),
    ] = None,
) -> None:
    """Show what `apply` would clear: pending cells, requests, history.

    Planning reads manifests and the ledger; with the ledger in git (reconcile.yaml), the
    ledger as its branch holds it, checked against reconcile's anchor. No EnOS call unless
    --refresh.

    \b
    Example:  reconcile plan --format markdown > plan.md
    """
    from reconciler import operations
    from reconciler.cli.settings import config, plan_options, resolve_ledger
    from reconciler.plan import file as planfile

    if fmt not in ("text", "json", "markdown"):
        raise ReconcilerError(f"--format must be text, json or markdown, not {fmt!r}")
    c = consoles()
    cfg = config(config_file)
    options = plan_options(max_points, max_assets, target)
    from reconciler.gitsync.review import base_from_env

    pr_base = base or base_from_env()
    ledger_file = resolve_ledger(ledger, cfg)
    with _ledger_to_plan_from(cfg, ledger_file, pr_base, c.warn) as ledger_path:
        shown = ledger_file if ledger_path != ledger_file else None
        planned = operations.plan(paths_or_default(paths), ledger_path, options, shown_as=shown)
    for w in planned.warnings:
        c.warn(w)
    p = planned.plan
    changes: list[str] = []
    gateways_cfg = cfg
    if pr_base is not None:  # gateways and credential names come from the base, never the PR
        from reconciler.cli.settings import base_config
        from reconciler.config import review_changes

        gateways_cfg = base_config(cfg, pr_base)
        changes = review_changes(gateways_cfg, cfg)
        for line in changes:
            c.warn(f"this pull request changes {line}")
    statuses = _live_statuses(p, gateway, gateways_cfg) if refresh else None
    live = read_live(c, p, gateway, gateways_cfg) if refresh else None  # issue 20: what the cells hold now
    if out_file is not None:
        planfile.write(p, out_file)
        c.err.print(f"Saved plan to {out_file} (plan hash {p.plan_hash})", markup=False)
    if fmt == "json":
        from reconciler.render.live import live_json

        # written as encoded: a huge plan is never held whole
        for piece in planfile.pieces(p, live=live_json(p, live) if live else None):
            c.write(piece)
    elif fmt == "markdown":
        import os

        from reconciler.actor import current_actor
        from reconciler.render import markdown
        from reconciler.render.live import live_markdown
        from reconciler.render.plan import GITHUB_COMMENT_LIMIT

        live_md = live_markdown(p, live) if live else ""  # the comment limit holds for both together
        if changes:
            c.write(_changes_markdown(changes))
        c.write(
            markdown.plan_markdown(
                p,
                statuses,
                manifests=planned.loaded,
                max_cells=max_cells,
                base_commit=_base_commit(current_actor(paths_or_default(paths))),
                link_base=markdown.link_base_from_env(os.environ),
                limit=GITHUB_COMMENT_LIMIT - len(live_md),
            )
            + live_md
        )
    else:
        from reconciler.render import plan as render  # rich: not for json

        c.out.print(render.plan_text(p, planned.manifest_files), end="")
        if statuses is not None:
            c.out.print(render.status_text(statuses, p), end="")
        if live is not None:
            from reconciler.render.live import live_text

            c.out.print(live_text(p, live), end="", markup=False)
    if detailed_exitcode and p.has_changes:
        raise typer.Exit(2)


def _base_commit(actor: dict[str, object]) -> str | None:
    """The commit the manifests were read from, saying so when they differ from it."""
    commit = actor.get("gitCommit")
    if not isinstance(commit, str):
        return None
    return commit + (" with uncommitted changes" if actor.get("gitDirty") else "")


@contextmanager
def _ledger_to_plan_from(
    cfg: RepoConfig | None, ledger: str, base: str | None, warn: Callable[[str], None]
) -> Iterator[str]:
    """The ledger file; with the ledger in git, the anchored ledger as its branch holds it
    (a checkout may be behind, and a cut or forged one is refused: invariant 13). In a pull
    request (`--base`, or CI's own variables), a change to the ledger or its lease fails."""
    from reconciler.cli.settings import ledger_repo
    from reconciler.errors import GitSyncError, LedgerNotAnchored
    from reconciler.gitsync import review

    repo = ledger_repo(cfg, ledger)
    if repo is None:
        yield ledger
        return
    try:
        data: dict[str, bytes] | None = repo.read_ledger_files()
    except LedgerNotAnchored:
        raise
    except GitSyncError as exc:
        if base is not None:
            raise
        warn(f"cannot read the ledger from {repo.where} ({exc}); planning from {ledger}, which may be behind")
        data = None
    if base is not None:
        review.check_pull_request(repo.git, repo.remote_target, base, repo.rel_path, data)
    if data is None:
        yield ledger
        return
    from reconciler import ledger as ledger_mod

    with tempfile.TemporaryDirectory(prefix="reconcile-ledger-") as tmp:
        path = Path(tmp) / Path(ledger).name
        if data:
            ledger_mod.write_files(path, data)
        yield str(path)


def _changes_markdown(changes: list[str]) -> str:
    """The top of the comment: what the pull request changes in reconcile.yaml that decides
    where credentials go, where the ledger lives, or what apply may do."""
    lines = "\n".join(f"> - {line}" for line in changes)
    return (
        "> [!CAUTION]\n> **This pull request changes where credentials are sent, or how apply "
        "behaves** (reconcile.yaml). Review these lines first:\n"
        f"{lines}\n\n"
    )


def _live_statuses(p: Plan, gateway: str | None, cfg: RepoConfig | None) -> dict[PipelineRef, LiveStatus]:
    """Status and name of every pipeline in the plan; one List Pipelines omits is MISSING."""
    from reconciler.apply import status_of
    from reconciler.cli.settings import gateways_for
    from reconciler.render.plan import LiveStatus

    gw = gateways_for(gateway, cfg, read_only=True)()
    found = gw.statuses(p.pipelines)
    from reconciler.apply import stage_warnings

    for w in stage_warnings(gw, p.actions):
        consoles().warn(w)
    return {
        ref: LiveStatus(status_of(found, ref), found[ref].name if ref in found else "") for ref in p.pipelines
    }


# --- schema ----------------------------------------------------------------------


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out-dir", metavar="DIR", help="Where to write.")] = Path(
        "schemas"
    ),
    check: Annotated[bool, flag("--check", help="Exit 1 if the committed schema is out of date.")] = False,
) -> None:
    """Regenerate the JSON Schemas in schemas/ from the models.

    \b
    Example:  reconcile schema --check
    """
    from reconciler.cli.settings import schemas

    c = consoles()
    stale = []
    for name, text in schemas().items():
        target = out_dir / name
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(str(target))
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        c.out.print(f"wrote {target}", markup=False)
    if stale:
        raise ReconcilerError(f"{', '.join(stale)} out of date; run `reconcile schema`")
    if check:
        c.out.print(f"{out_dir}: up to date with the models", markup=False)
