"""Commands that change the world: apply, and ledger resolve."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler.cli._app import (
    DEFAULT_LEDGER,
    LedgerOpt,
    MaxAssets,
    MaxPoints,
    Paths,
    Targets,
    _paths,
    app,
    ledger_app,
)
from reconciler.console import err, out
from reconciler.errors import ReconcilerError

# --- apply -----------------------------------------------------------------------


@app.command()
def apply(
    paths: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            help="A saved plan (from `plan --out`), or manifest paths (default: manifests/).",
            show_default=False,
        ),
    ] = None,
    ledger: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--ledger",
            envvar="RECONCILE_LEDGER",
            help="The applied ledger (default: a saved plan's own, else applied-ledger.jsonl).",
        ),
    ] = None,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(envvar="ENOS_API_GATEWAY", help="EnOS API gateway URL (https; http only to loopback)."),
    ] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask; for CI.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")] = 4,
    pause_pipelines: Annotated[
        bool,
        typer.Option(
            "--pause-pipelines", help="Pause RUNNING pipelines for the run, start them again after."
        ),
    ] = False,
    kafka_rate: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="kafkaRate to start paused pipelines with, when List Pipelines has none."),
    ] = None,
    skip_pause_check: Annotated[
        bool, typer.Option("--skip-pause-check", help="Do not check pipelines are PAUSED (you checked).")
    ] = False,
    resend_in_doubt: Annotated[
        bool,
        typer.Option("--resend-in-doubt", help="Re-send in-doubt requests even if the pipeline ran since."),
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Read deleted cells back with Get Stage State.")
    ] = False,
    max_cells: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=0, help="Refuse a plan that clears more than this many cells."),
    ] = None,
    lock_timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for the ledger lock.")] = 0,
    target: Targets = None,
    max_points: MaxPoints = 100_000,
    max_assets: MaxAssets = 1_000,
) -> None:
    """Clear the pending stage state, once, recording each deletion in the ledger.

    Takes the ledger lock, verifies the ledger, plans (or checks a saved plan is still
    exact), asks, checks every pipeline is PAUSED, then sends the requests.

    Example:  reconcile apply plan.json --auto-approve --concurrency 8
    """
    from reconciler import ledger as ledger_mod
    from reconciler import render
    from reconciler.actor import current_actor
    from reconciler.apply import ApplyOptions
    from reconciler.apply import apply as run_apply
    from reconciler.console import in_ci
    from reconciler.engine import make_plan, read_saved_plan, replan_saved
    from reconciler.enos import EnosClient, credentials_from_env
    from reconciler.progress import BarReporter, LineReporter, summary_table

    args = _paths(paths)
    saved = len(args) == 1 and args[0].endswith(".json") and Path(args[0]).is_file()
    if ledger is None:  # DESIGN: --ledger when given, else the saved plan's ledger
        ledger = read_saved_plan(Path(args[0]))["ledger"]["path"] if saved else DEFAULT_LEDGER
    with ledger_mod.LedgerLock(ledger, timeout=lock_timeout):
        led = ledger_mod.read(ledger)
        for w in led.warnings:
            err.print(f"warning: {w}", markup=False, style="yellow")
        if saved:
            p = replan_saved(Path(args[0]), led)
            err.print(f"Saved plan {args[0]} matches the manifests and the ledger.", markup=False)
            files = None
        else:
            p, loaded = make_plan(args, ledger, max_points, max_assets, target or [], ledger=led)
            files = {m.name: m.path for m in loaded.manifests}
        out.print(render.plan_text(p, files), end="")
        if not p.has_changes:
            out.print("Nothing to apply.")
            return
        _check_max_cells(p, max_cells)
        _approve(auto_approve)
        reporter = LineReporter(err) if in_ci() else BarReporter(err)
        options = ApplyOptions(
            concurrency=concurrency,
            pause_pipelines=pause_pipelines,
            skip_pause_check=skip_pause_check,
            resend_in_doubt=resend_in_doubt,
            verify=verify,
            kafka_rate=kafka_rate,
            actor=current_actor(),
        )
        with (
            EnosClient(_gateway(gateway), credentials_from_env(), on_retry=reporter.note) as client,
            ledger_mod.LedgerWriter(led) as writer,
        ):
            result = run_apply(p, client, writer, reporter, options)
    out.print(summary_table(result))
    if not result.ok:
        raise ReconcilerError(
            "apply did not finish: what failed stays pending; run `reconcile plan` to see it, "
            "then apply again"
        )
    out.print(
        f"[green]Apply complete.[/green] {result.cells_deleted:,} cells cleared in "
        f"{len(result.deleted):,} request(s)."
    )


def _check_max_cells(p: object, max_cells: int | None) -> None:
    from reconciler.plan import Plan

    assert isinstance(p, Plan)
    total = p.summary["pendingCells"]
    if max_cells is None or total <= max_cells:
        return
    per: dict[str, int] = {}
    for kd in p.keys:
        if kd.pending_cells:
            per[kd.key[0]] = per.get(kd.key[0], 0) + kd.pending_cells
    where = "\n".join(f"  {name}: {n:,} cells" for name, n in sorted(per.items(), key=lambda x: -x[1]))
    raise ReconcilerError(
        f"the plan clears {total:,} cells, more than --max-cells {max_cells:,}; nothing was sent.\n"
        f"{where}\nSplit the change, or raise --max-cells after review."
    )


def _approve(auto_approve: bool) -> None:
    from reconciler.errors import ApplyRefused

    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ApplyRefused("no terminal to ask for approval; pass --auto-approve to apply non-interactively")
    answer = typer.prompt("Clear this state? It cannot be undone. Only 'yes' will be accepted")
    if answer.strip() != "yes":
        raise ApplyRefused("apply cancelled; nothing was sent")


# --- ledger resolve ----------------------------------------------------------------


@ledger_app.command("resolve")
def ledger_resolve(
    paths: Paths = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
    manifest: Annotated[
        Optional[str], typer.Option(help="Only in-doubt cells of this manifest.")  # noqa: UP045
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Record in-doubt requests as done, after a person checked the state is cleared.

    Example:  reconcile ledger resolve --manifest wind-avg-power-fix-2026-11 --yes
    """
    from reconciler import ledger as ledger_mod
    from reconciler.actor import current_actor
    from reconciler.engine import make_plan

    with ledger_mod.LedgerLock(ledger):
        led = ledger_mod.read(ledger)
        p, _ = make_plan(_paths(paths), ledger, ledger=led)
        doubt = [a for a in p.actions if a.in_doubt and (manifest is None or a.manifest == manifest)]
        if not doubt:
            out.print("No in-doubt requests to resolve.")
            return
        for a in doubt:
            out.print(
                f"  {a.manifest} / {a.pipeline_id} / {a.stage}: {a.cells:,} cells "
                f"({len(a.asset_ids)} assets x {len(a.point_ids)} points)",
                markup=False,
            )
        if not yes:
            _approve(False)
        actor = current_actor()
        with ledger_mod.LedgerWriter(led) as writer:
            for a in doubt:
                writer.append("delete", {**a.cell_fields(), "resolved": True, "actor": actor})
    out.print(f"Recorded {len(doubt)} in-doubt request(s) as done.")


def _gateway(gateway: str | None) -> str:
    url = gateway or os.environ.get("ENOS_API_GATEWAY")
    if not url:
        raise ReconcilerError("no gateway: pass --gateway URL or set ENOS_API_GATEWAY")
    return url
