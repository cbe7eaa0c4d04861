"""validate, plan (`--refresh` its one online part) and schema: their flags (the runs are
`commands.plan`); the ledger's commands are in `cli/ledger.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler import args as arguments
from reconciler.args import PlanFormat
from reconciler.cli._app import (
    ConfigOpt,
    LedgerOpt,
    MaxAssets,
    MaxPause,
    MaxPaused,
    MaxPoints,
    NoCanary,
    Paths,
    Targets,
    app,
    consoles,
    flag,
    one_of,
)
from reconciler.commands import CommandOutcome, tools
from reconciler.commands import plan as commands

# --- validate --------------------------------------------------------------------


@app.command()
def validate(paths: Paths = None) -> CommandOutcome:
    """Load and check manifests; every problem as `file:line:col: message`.

    \b
    Example:  reconcile validate manifests/
    """
    return commands.validate(paths, consoles())


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
        PlanFormat,
        typer.Option(
            "--format",
            metavar="text|json|markdown",
            help="text, json or markdown.",
            parser=one_of(PlanFormat),
        ),
    ] = PlanFormat.TEXT,
    detailed_exitcode: Annotated[
        bool, flag("--detailed-exitcode", help="Exit 2 when there are changes to apply.")
    ] = False,
    target: Targets = None,
    max_points: MaxPoints = None,
    max_assets: MaxAssets = None,
    max_cells: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            metavar="N",
            min=0,
            help="Judge the plan against this limit instead of reconcile.yaml's apply.maxCells.",
            show_default=False,
        ),
    ] = None,
    pause_pipelines: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--pause-pipelines/--no-pause-pipelines",
            help="Show RUNNING pipelines as ones apply pauses (default: reconcile.yaml's apply.pausePipelines).",
            show_default=False,
        ),
    ] = None,
    max_paused: MaxPaused = None,
    max_pause: MaxPause = None,
    no_canary: NoCanary = False,
    refresh: Annotated[
        bool,
        flag(
            "--refresh",
            help="Add live pipeline statuses and how many pending cells hold state now, with samples "
            "(read-only gateway calls: one Get Stage State per request). If the gateway fails, the "
            "offline plan is still shown, with a warning saying why.",
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
) -> CommandOutcome:
    """Show what `apply` would clear: pending cells, requests, history, and apply's verdict.

    Planning reads manifests and the ledger; with the ledger in git (reconcile.yaml), the
    ledger as its branch holds it, checked against reconcile's anchor. No EnOS call unless
    --refresh.

    The plan says, in every format, what the apply configured by the same reconcile.yaml
    will do with it: refuse it whole when it clears more than apply.maxCells (nothing in it
    is cleared, small manifests merged with it included), or pause RUNNING pipelines
    (apply.pausePipelines). Run from a subdirectory, it finds reconcile.yaml above it, up
    to the repository root, and plans from there.

    \b
    Example:  reconcile plan --format markdown > plan.md
    """
    return commands.plan(arguments.PlanArgs(**locals()), consoles())


# --- schema ----------------------------------------------------------------------


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out-dir", metavar="DIR", help="Where to write.")] = Path(
        "schemas"
    ),
    check: Annotated[bool, flag("--check", help="Exit 1 if the committed schema is out of date.")] = False,
) -> CommandOutcome:
    """Regenerate the JSON Schemas in schemas/ from the models.

    \b
    Example:  reconcile schema --check
    """
    return tools.schema(arguments.SchemaArgs(**locals()), consoles())
