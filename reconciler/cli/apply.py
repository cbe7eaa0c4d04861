"""The command that changes the world: apply's flags (the run is `commands.apply`; ledger
resolve, the other, is in `cli/ledger.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler import args as arguments
from reconciler.cli._app import (
    ConfigOpt,
    LedgerOpt,
    LockTimeout,
    MaxAssets,
    MaxPause,
    MaxPaused,
    MaxPoints,
    NoCanary,
    Targets,
    Yes,
    app,
    ask,
    consoles,
    flag,
)
from reconciler.commands import CommandOutcome
from reconciler.commands import apply as commands


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
        typer.Option(metavar="N", help="Requests in flight at once (default: reconcile.yaml's, else 4)."),
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
            metavar="N", help="kafkaRate to start paused pipelines with, when List Pipelines has none."
        ),
    ] = None,
    skip_pause_check: Annotated[
        bool, flag("--skip-pause-check", help="Do not check pipelines are PAUSED (you checked).")
    ] = False,
    resend_in_doubt: Annotated[
        bool, flag("--resend-in-doubt", help="Re-send in-doubt requests even if the pipeline ran since.")
    ] = False,
    verify: Annotated[bool, flag("--verify", help="Read deleted cells back with Get Stage State.")] = False,
    snapshot: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Evidence: read each request's cells just before its delete and append the items to FILE "
            "(JSON Lines, gzip for .gz); each delete record carries their digest. Costs one extra read "
            "per request; a read that fails sends no delete (default: reconcile.yaml's apply.snapshot).",
        ),
    ] = None,
    max_cells: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            metavar="N",
            help="Refuse, whole, a plan that clears more than N cells (default: reconcile.yaml's "
            "apply.maxCells): nothing in it is cleared, small manifests merged with it included. "
            "`reconcile plan` says so on the pull request.",
            show_default=False,
        ),
    ] = None,
    summary: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option(
            "--summary",
            metavar="FILE",
            help="Write what the run did (cells cleared, in doubt, failed; pipelines paused and "
            "for how long; ledger seqs; run link), whatever the outcome: markdown for FILE.md, "
            "else JSON. Repeatable. The CI templates post it to the merged pull request.",
        ),
    ] = None,
    lock_timeout: LockTimeout = None,
    start_timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            metavar="SECONDS",
            help="How long to keep trying to start a paused pipeline again while EnOS refuses "
            "because another job of the org is starting (61121) (default: reconcile.yaml's, else 600).",
            show_default=False,
        ),
    ] = None,
    max_paused: MaxPaused = None,
    max_pause: MaxPause = None,
    no_canary: NoCanary = False,
    allow_dirty: Annotated[
        bool, flag("--allow-dirty", help="In CI, apply even if manifests have uncommitted changes.")
    ] = False,
    allow_unreviewed: Annotated[
        bool,
        flag(
            "--allow-unreviewed",
            help="Break glass: with the ledger in git, apply manifests that are not on the remote's "
            "branch (uncommitted, unpushed, another branch). Every record of the run says so.",
        ),
    ] = False,
    ignore_window: Annotated[
        bool,
        flag(
            "--ignore-window",
            help="Break glass: apply outside reconcile.yaml's apply.windows (a freeze included). "
            "Needs --reason; every record of the run carries it as windowOverride.",
        ),
    ] = False,
    reason: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="TEXT", help="Why --ignore-window: kept in every record of the run."),
    ] = None,
    target: Targets = None,
    max_points: MaxPoints = None,
    max_assets: MaxAssets = None,
    config_file: ConfigOpt = None,
) -> CommandOutcome:
    """Clear the pending stage state, once, recording each deletion in the ledger.

    Takes the ledger lock, verifies the ledger, plans (or checks a saved plan is still
    exact), asks, checks every pipeline is PAUSED, then sends the requests.

    \b
    Example:  reconcile apply plan.json --auto-approve --concurrency 8
    """
    return commands.apply(arguments.ApplyArgs(**locals()), consoles(), ask)
