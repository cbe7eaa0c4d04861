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


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors: typer either vendors click (TyperException) or uses it."""
    found: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, Exception):
        found.append(vendored)
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def main() -> None:
    """Console-script entry point: run the app, mapping errors to messages and exit codes."""
    try:
        code = app(standalone_mode=False)
    except InputError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False, style="yellow" if d.severity == "warning" else "red")
        err.print(f"error: {exc}", markup=False)
        _exit(exc, 1)
    except ReconcilerError as exc:
        err.print(f"error: {exc}", markup=False, style="red")
        _exit(exc, exc.exit_code)
    except OSError as exc:  # a file we were asked to write or read: say which, no traceback
        err.print(f"error: {exc.strerror or exc}: {exc.filename or ''}", markup=False, style="red")
        _exit(exc, 1)
    except KeyboardInterrupt:
        err.print("interrupted", style="red")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", style="red")
        sys.exit(1)
    except _USAGE_ERRORS as exc:  # bad flags or arguments: click's own message, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


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
    from reconciler.client import EnosClient
    from reconciler.console import in_ci
    from reconciler.engine import make_plan, read_saved_plan, replan_saved
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
            EnosClient.from_env(gateway, on_retry=reporter.note) as client,
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


# --- emulator and demo -------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8910,
    state: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Seed the world from this YAML/JSON file (format: README).", exists=True),
    ] = None,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of business requests that fail.")
    ] = 0.0,
    fault_kind: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--fault-kind", help="Limit faults to these kinds; repeatable."),
    ] = None,
    latency_ms: Annotated[float, typer.Option(min=0, help="Latency added to every business request.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the fault generator, so runs repeat.")] = 0,
) -> None:
    """Run the local EnOS gateway emulator (for tests, demos and your own CI).

    Example:  reconcile emulator --port 8910 --fault-rate 0.1 --seed 7
    """
    from reconciler.emulator import (
        DEFAULT_APP_KEY,
        DEFAULT_APP_SECRET,
        FAULT_KINDS,
        Faults,
        World,
        serve_forever,
    )

    try:
        faults = Faults(
            rate=fault_rate, kinds=tuple(fault_kind or FAULT_KINDS), latency_ms=latency_ms, seed=seed
        )
        world = World.from_file(state, faults) if state else World(faults=faults)
    except (ValueError, KeyError, OSError) as exc:
        raise ReconcilerError(f"cannot start the emulator: {exc}") from None
    err.print(f"EnOS emulator on http://{host}:{port}", markup=False)
    err.print(f"  export ENOS_API_GATEWAY=http://{host}:{port}", markup=False)
    if world.apps.get(DEFAULT_APP_KEY) == DEFAULT_APP_SECRET:
        err.print(
            f"  export ENOS_APP_KEY={DEFAULT_APP_KEY} ENOS_APP_SECRET={DEFAULT_APP_SECRET}", markup=False
        )
    else:
        err.print(f"  app keys accepted: {', '.join(world.apps)} (secrets as in {state})", markup=False)
    serve_forever(world, host, port)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temp dir and print its path.")] = False,
) -> None:
    """Plan, apply, plan again, apply again: against an in-process emulator, in a temp dir.

    Offline and harmless: the repository is left untouched.

    Example:  reconcile demo
    """
    from reconciler.demo import run_demo

    run_demo(keep=keep)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to scaffold (default: here).")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing files (never the ledger).")
    ] = False,
    max_cells: Annotated[
        int, typer.Option(min=1, help="The --max-cells guardrail written into the CI templates.")
    ] = 1_000_000,
) -> None:
    """Scaffold a manifests repository: example manifest, schema, ledger, CI workflows.

    Writes manifests/, schemas/, applied-ledger.jsonl, GitHub Actions (plan comment on
    pull requests, apply on merge), GitLab CI and a pre-commit config.

    Example:  reconcile init my-deletions && cd my-deletions && reconcile plan
    """
    from reconciler.scaffold import init as scaffold

    written = scaffold(directory, force=force, max_cells=max_cells)
    for rel in written:
        out.print(f"  wrote {directory / rel}", markup=False)
    out.print(
        "Next: set the ENOS_API_GATEWAY, ENOS_APP_KEY and ENOS_APP_SECRET secrets "
        "in your CI, edit manifests/example.yaml, open a pull request.",
        markup=False,
    )
