"""The `reconcile` command line: thin commands over the core functions.

Each command parses, builds its collaborators, calls one core function and maps
the result to an exit code: 0 done or nothing to do, 1 error, 2 changes pending
(`plan --detailed-exitcode`). Errors reach people once, as a short message on
stderr; `--debug` shows the traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler import __version__
from reconciler.console import err, out
from reconciler.errors import InputError, ReconcilerError

DEFAULT_LEDGER = "applied-ledger.jsonl"
DEFAULT_PATHS = ["manifests"]

app = typer.Typer(
    name="reconcile",
    help=(
        "GitOps for EnOS stream-processing stage state.\n\n"
        "Manifests declare which stage state to clear; `plan` shows exactly what is still "
        "to do against the applied ledger; `apply` does it, once, and records it.\n\n"
        "Example:  reconcile validate && reconcile plan && reconcile apply --auto-approve"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
ledger_app = typer.Typer(
    help="Inspect and settle the applied ledger.\n\nExample:  reconcile ledger verify",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")

_state = {"debug": False}

Paths = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Argument(help="Manifest files or directories (default: manifests/).", show_default=False),
]
LedgerOpt = Annotated[
    str, typer.Option("--ledger", help="The applied ledger (JSON Lines).", envvar="RECONCILE_LEDGER")
]
MaxPoints = Annotated[int, typer.Option(min=1, help="Most point IDs in one request.")]
MaxAssets = Annotated[int, typer.Option(min=1, help="Most asset IDs in one request.")]
Targets = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--target", help="Only this manifest (by metadata.name); repeatable."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def main() -> None:
    """Console-script entry point: run the app, mapping errors to messages and exit codes."""
    try:
        app(standalone_mode=False)
    except InputError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False, style="yellow" if d.severity == "warning" else "red")
        err.print(f"error: {exc}", markup=False)
        _exit(exc, 1)
    except ReconcilerError as exc:
        err.print(f"error: {exc}", markup=False, style="red")
        _exit(exc, exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted", style="red")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", style="red")
        sys.exit(1)
    except __import__("click").exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(0)


def _exit(exc: BaseException, code: int) -> None:
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    sys.exit(code)


def _write(data: str) -> None:
    """Machine-readable data goes to stdout as is, not through rich."""
    sys.stdout.write(data)
    sys.stdout.flush()


def _paths(paths: list[str] | None) -> list[str]:
    return list(paths) if paths else list(DEFAULT_PATHS)


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
    from reconciler.engine import make_plan, save_plan

    if fmt not in ("text", "json", "markdown"):
        raise ReconcilerError(f"--format must be text, json or markdown, not {fmt!r}")
    p, result = make_plan(_paths(paths), ledger, max_points, max_assets, target or [])
    for d in result.warnings:
        err.print(str(d), markup=False, style="yellow")
    statuses = _refresh(p, gateway) if refresh else None
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


def _refresh(p: object, gateway: str | None) -> dict[tuple[str, str], str]:
    from reconciler.engine import live_statuses

    return live_statuses(p, gateway)  # type: ignore[arg-type]


# --- ledger ----------------------------------------------------------------------


@ledger_app.command("verify")
def ledger_verify(ledger: LedgerOpt = DEFAULT_LEDGER) -> None:
    """Check the hash chain of every record; name the first bad line.

    Example:  reconcile ledger verify --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod

    led = ledger_mod.read(ledger)
    for w in led.warnings:
        err.print(f"warning: {w}", markup=False, style="yellow")
    out.print(
        f"{ledger}: {len(led.records)} record(s), chain intact; head seq {led.head_seq} "
        f"hash {led.head_hash}",
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
        r for r in led.records
        if (manifest is None or r.data.get("manifest") == manifest)
        and (pipeline is None or r.data.get("pipelineId") == pipeline)
        and (since is None or r.at >= since)
        and (not kind or r.kind in kind)
    ]
    if fmt == "json":
        _write(render.records_json(r.data for r in records))
    elif fmt == "text":
        out.print(render.ledger_table(records))
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
