"""Commands that change the world: apply, and ledger resolve."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from reconciler.cli._app import (
    ConfigOpt,
    LedgerOpt,
    LockTimeout,
    MaxAssets,
    MaxPoints,
    Paths,
    Targets,
    Yes,
    app,
    consoles,
    flag,
    ledger_app,
    paths_or_default,
)
from reconciler.errors import ApplyRefused
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.operations import Planned
    from reconciler.plan import Action
    from reconciler.render.console import Consoles


@app.command()
def apply(
    paths: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            metavar="PLAN|PATH",
            help="A saved plan (from `plan --out`), or manifest paths (default: manifests/).",
            show_default=False,
        ),
    ] = None,
    ledger: LedgerOpt = None,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="URL",
            envvar="ENOS_API_GATEWAY",
            help="EnOS API gateway URL (https; http only to loopback).",
        ),
    ] = None,
    auto_approve: Yes = False,
    concurrency: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            metavar="N", min=1, max=64, help="Requests in flight at once (default: reconcile.yaml's, else 4)."
        ),
    ] = None,
    pause_pipelines: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--pause-pipelines/--no-pause-pipelines",
            help="Pause RUNNING pipelines for the run, start them again after (default: reconcile.yaml's).",
            show_default=False,
        ),
    ] = None,
    kafka_rate: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            metavar="N", min=1, help="kafkaRate to start paused pipelines with, when List Pipelines has none."
        ),
    ] = None,
    skip_pause_check: Annotated[
        bool, flag("--skip-pause-check", help="Do not check pipelines are PAUSED (you checked).")
    ] = False,
    resend_in_doubt: Annotated[
        bool, flag("--resend-in-doubt", help="Re-send in-doubt requests even if the pipeline ran since.")
    ] = False,
    verify: Annotated[bool, flag("--verify", help="Read deleted cells back with Get Stage State.")] = False,
    max_cells: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(metavar="N", min=0, help="Refuse a plan that clears more than this many cells."),
    ] = None,
    lock_timeout: LockTimeout = None,
    allow_dirty: Annotated[
        bool, flag("--allow-dirty", help="In CI, apply even if manifests have uncommitted changes.")
    ] = False,
    target: Targets = None,
    max_points: MaxPoints = None,
    max_assets: MaxAssets = None,
    config_file: ConfigOpt = None,
) -> None:
    """Clear the pending stage state, once, recording each deletion in the ledger.

    Takes the ledger lock, verifies the ledger, plans (or checks a saved plan is still
    exact), asks, checks every pipeline is PAUSED, then sends the requests.

    \b
    Example:  reconcile apply plan.json --auto-approve --concurrency 8
    """
    import reconciler.cli.settings as s
    from reconciler import operations
    from reconciler.render import apply as render_apply

    c = consoles()
    cfg = s.config(config_file)
    settings = s.apply_settings(
        cfg,
        paths=paths_or_default(paths),
        ledger=ledger,
        plan_options=s.plan_options(max_points, max_assets, target),
        concurrency=concurrency,
        pause_pipelines=pause_pipelines,
        skip_pause_check=skip_pause_check,
        resend_in_doubt=resend_in_doubt,
        verify=verify,
        kafka_rate=kafka_rate,
        max_cells=max_cells,
        lock_timeout=lock_timeout,
        allow_dirty=allow_dirty,
    )
    reporter = render_apply.reporter_for(c)
    _, result = operations.apply(
        settings,
        gateways=s.gateways_for(gateway, cfg, on_retry=reporter.note),  # checked before any plan
        reporter=reporter,
        show=lambda planned: _show(c, planned),
        confirm=lambda p: _approve(c, auto_approve),
        sync=s.ledger_repo(cfg, operations.target_ledger(settings)[0]),
    )
    if result is None:
        c.out.print("Nothing to apply.")
        return
    c.out.print(render_apply.summary_table(result))
    render_apply.raise_for(result)
    c.out.print(render_apply.done_line(result))


def _show(c: Consoles, planned: Planned) -> None:
    """The plan apply is about to carry out, with what is worth a warning."""
    from reconciler.render import plan as render_plan

    for w in planned.warnings:
        c.warn(w)
    if planned.saved is not None:
        c.err.print(f"Saved plan {planned.saved.path} matches the manifests and the ledger.", markup=False)
    c.out.print(render_plan.plan_text(planned.plan, planned.manifest_files), end="")


def _approve(
    c: Consoles, auto_approve: bool, question: str = "Clear this state? It cannot be undone."
) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ApplyRefused("no terminal to ask for approval; pass --auto-approve to go on non-interactively")
    try:
        answer = typer.prompt(f"{question} Only 'yes' will be accepted")
    except typer.Abort:
        raise KeyboardInterrupt from None
    if answer.strip() != "yes":
        raise ApplyRefused("cancelled; nothing was sent")


@ledger_app.command("resolve")
def ledger_resolve(
    paths: Paths = None,
    ledger: LedgerOpt = None,
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only in-doubt cells of this manifest.")  # noqa: UP045
    ] = None,
    auto_approve: Yes = False,
) -> None:
    """Record in-doubt requests as done, after a person checked the state is cleared.

    \b
    Example:  reconcile ledger resolve --manifest wind-avg-power-fix-2026-11 --auto-approve
    """
    from reconciler import operations
    from reconciler.actor import current_actor
    from reconciler.cli.settings import config, ledger_repo, resolve_ledger

    c = consoles()
    cfg = config()
    ledger_path = resolve_ledger(ledger, cfg)

    def confirm(doubt: list[Action]) -> None:
        for a in doubt:
            c.out.print(
                f"  {a.manifest} / {a.pipeline_id} / {a.stage}: {plural(a.cells, 'cell')} "
                f"({plural(len(a.asset_ids), 'asset')} x {plural(len(a.point_ids), 'point')})",
                markup=False,
            )
        _approve(c, auto_approve, "Record these requests as done?")

    done = operations.resolve(
        paths_or_default(paths),
        ledger_path,
        manifest=manifest,
        actor=current_actor(),
        confirm=confirm,
        sync=ledger_repo(cfg, ledger_path),
    )
    if not done:
        c.out.print("No in-doubt requests to resolve.")
        return
    c.out.print(f"Recorded {plural(len(done), 'in-doubt request')} as done.")


@ledger_app.command("migrate")
def ledger_migrate(ledger: LedgerOpt = None, lock_timeout: LockTimeout = None) -> None:
    """Rewrite a v1 ledger in format v2 (about half the size), keeping `<name>.v1.bak`.

    Every record keeps its seq, kind, time, fields and cells (checked before the file is
    replaced); the head hash changes, so saved plans made before are stale.

    \b
    Example:  reconcile ledger migrate --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod
    from reconciler.cli.settings import config, resolve_ledger

    c = consoles()
    result = ledger_mod.migrate(resolve_ledger(ledger, config()), lock_timeout=lock_timeout or 0)
    for w in result.warnings:
        c.warn(w)
    if result.backup is None:
        c.out.print(f"{result.path}: already in format v2; nothing to do", markup=False)
        return
    c.out.print(
        f"{result.path}: {result.records:,} records in format v2, {result.referenced:,} deletes now "
        f"refer to their intent; {result.bytes_before:,} -> {result.bytes_after:,} bytes. "
        f"The v1 file is kept as {result.backup}.",
        markup=False,
    )
