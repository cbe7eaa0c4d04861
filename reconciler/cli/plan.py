"""Offline commands: validate, plan, schema, ledger verify and show."""

from __future__ import annotations

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
    _write,
    app,
    ledger_app,
)
from reconciler.console import err, out
from reconciler.errors import ReconcilerError

# --- validate --------------------------------------------------------------------


@app.command()
def validate(paths: Paths = None) -> None:
    """Load and check manifests; every problem as `file:line:col: message`.

    Example:  reconcile validate manifests/
    """
    from reconciler import manifests

    result = manifests.load_or_raise(_paths(paths))
    for d in result.warnings:
        err.print(str(d), markup=False, style="yellow")
    cells = sum(m.cells for m in result.manifests)
    out.print(
        f"{len(result.manifests)} manifest(s) in {len(result.files)} file(s) valid: "
        f"{cells:,} cells declared.",
        markup=False,
    )


# --- plan ------------------------------------------------------------------------


@app.command()
def plan(
    paths: Paths = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Save the plan (JSON) for `reconcile apply PLAN`."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json or markdown.")] = "text",
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when there are changes to apply.")
    ] = False,
    target: Targets = None,
    max_points: MaxPoints = 100_000,
    max_assets: MaxAssets = 1_000,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Add live pipeline statuses (read-only gateway calls).")
    ] = False,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(envvar="ENOS_API_GATEWAY", help="Gateway URL, for --refresh."),
    ] = None,
) -> None:
    """Show what `apply` would clear: pending cells, requests, history.

    Planning reads only files: manifests and the ledger. No network unless --refresh.

    Example:  reconcile plan --format markdown > plan.md
    """
    from reconciler import render
    from reconciler.engine import live_statuses, make_plan, save_plan

    if fmt not in ("text", "json", "markdown"):
        raise ReconcilerError(f"--format must be text, json or markdown, not {fmt!r}")
    p, result = make_plan(_paths(paths), ledger, max_points, max_assets, target or [])
    for d in result.warnings:
        err.print(str(d), markup=False, style="yellow")
    statuses = live_statuses(p, gateway) if refresh else None
    if out_file is not None:
        save_plan(p, out_file)
        err.print(f"Saved plan to {out_file} (plan hash {p.plan_hash})", markup=False)
    if fmt == "json":
        _write(render.plan_json(p))
    elif fmt == "markdown":
        _write(render.plan_markdown(p, statuses))
    else:
        files = {m.name: m.path for m in result.manifests}
        out.print(render.plan_text(p, files), end="")
        if statuses is not None:
            out.print(render.status_text(statuses), end="")
    if detailed_exitcode and p.has_changes:
        raise typer.Exit(2)


# --- ledger ----------------------------------------------------------------------


@ledger_app.command("verify")
def ledger_verify(ledger: LedgerOpt = DEFAULT_LEDGER) -> None:
    """Check the hash chain of every record; name the first bad line.

    Example:  reconcile ledger verify --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod

    led = ledger_mod.read(ledger)
    if not Path(ledger).exists():
        err.print(
            f"warning: {ledger} does not exist (nothing applied yet, or a wrong --ledger)", markup=False
        )
    for w in led.warnings:
        err.print(f"warning: {w}", markup=False, style="yellow")
    out.print(
        f"{ledger}: {len(led.records)} record(s), chain intact; head seq {led.head_seq} hash {led.head_hash}",
        markup=False,
    )


@ledger_app.command("show")
def ledger_show(
    ledger: LedgerOpt = DEFAULT_LEDGER,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    manifest: Annotated[
        Optional[str], typer.Option(help="Only records of this manifest.")  # noqa: UP045
    ] = None,
    pipeline: Annotated[
        Optional[str], typer.Option(help="Only records of this pipeline ID.")  # noqa: UP045
    ] = None,
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Only records at or after this UTC time (e.g. 2026-11-01)."),
    ] = None,
    kind: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--kind", help="Only these kinds (delete, intent, pause, resume)."),
    ] = None,
) -> None:
    """The history: when, manifest, pipeline, stage, assets, points, actor.

    Example:  reconcile ledger show --manifest wind-avg-power-fix-2026-11 --since 2026-11-01
    """
    from reconciler import ledger as ledger_mod
    from reconciler import render

    led = ledger_mod.read(ledger)
    for w in led.warnings:
        err.print(f"warning: {w}", markup=False, style="yellow")
    records = [
        r
        for r in led.records
        if (manifest is None or r.data.get("manifest") == manifest)
        and (pipeline is None or r.data.get("pipelineId") == pipeline)
        and (since is None or r.at >= since)
        and (not kind or r.kind in kind)
    ]
    if fmt == "json":
        _write(render.records_json(r.data for r in records))
    elif fmt == "text":
        out.print(render.ledger_lines(records), end="", markup=False)
    else:
        raise ReconcilerError(f"--format must be text or json, not {fmt!r}")


# --- schema ----------------------------------------------------------------------


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write.")] = Path("schemas"),
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the committed schema is out of date.")
    ] = False,
) -> None:
    """Regenerate the manifest JSON Schema in schemas/ from the models.

    Example:  reconcile schema --check
    """
    from reconciler.schema import SCHEMA_FILE, render_schema

    target = out_dir / SCHEMA_FILE
    text = render_schema()
    if check:
        if not target.exists() or target.read_text() != text:
            raise ReconcilerError(f"{target} is out of date; run `reconcile schema`")
        out.print(f"{target} is up to date", markup=False)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    out.print(f"wrote {target}", markup=False)
