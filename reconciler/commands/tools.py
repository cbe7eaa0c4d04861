"""The tools' runs: the JSON Schemas, the repository scaffold (`init`) and the emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.commands import DONE, CommandOutcome
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.args import EmulatorArgs, InitArgs, SchemaArgs
    from reconciler.render.console import Consoles


def schema(args: SchemaArgs, c: Consoles) -> CommandOutcome:
    """Write the JSON Schemas the models generate into `out_dir`; with `check`, write
    nothing and refuse when a committed one is out of date."""
    from reconciler.settings import schemas

    stale = []
    for name, text in schemas().items():
        target = args.out_dir / name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(str(target))
            continue
        args.out_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        c.out.print(f"wrote {target}", markup=False)
    if stale:
        raise ReconcilerError(f"{', '.join(stale)} out of date; run `reconcile schema`")
    if args.check:
        c.out.print(f"{args.out_dir}: up to date with the models", markup=False)
    return DONE


def init(args: InitArgs, c: Consoles) -> CommandOutcome:
    """Scaffold a manifests repository; what was written and kept, and what to set up."""
    from reconciler import __version__
    from reconciler.install_source import InstallSource, check, running
    from reconciler.scaffold import init as scaffold

    out = c.out
    source = (
        InstallSource(check(args.install_source), "as given with --install-source")
        if args.install_source is not None
        else running(__version__)
    )
    result = scaffold(
        args.directory,
        force=args.force,
        max_cells=args.max_cells,
        branch=args.branch,
        workflows_only=args.workflows_only,
        install=source.requirement,
        install_how=source.how,
    )
    for rel in result.written:
        out.print(f"  wrote {args.directory / rel}", markup=False)
    for rel in result.kept:
        what = "ledger" if rel.endswith(".jsonl") else "reconcile.yaml (reviewed settings)"
        out.print(f"  kept  {args.directory / rel} (an existing {what} is never overwritten)", markup=False)
    out.print(
        f"\nDefault branch: {result.branch} (CI applies merges to it; --branch to change)", markup=False
    )
    if not result.next_steps:
        return DONE
    out.print("\nBefore the first pull request, set up:", markup=False)
    for step in result.next_steps:
        out.print(f"  - {step}", markup=False)
    return DONE


def emulator(args: EmulatorArgs, c: Consoles) -> CommandOutcome:
    """Serve the emulator until interrupted."""
    from reconciler.emulator import (
        DEFAULT_APP_KEY,
        DEFAULT_APP_SECRET,
        FAULT_KINDS,
        EmulatorError,
        Faults,
        World,
        serve_forever,
    )

    err = c.err
    try:
        faults = Faults(
            rate=args.fault_rate,
            kinds=tuple(args.fault_kind or FAULT_KINDS),
            latency_ms=args.latency_ms,
            seed=args.seed,
        )
        world = World.from_file(args.state, faults) if args.state else World(faults=faults)
    except (ValueError, KeyError, OSError) as exc:
        raise ReconcilerError(f"cannot start the emulator: {exc}") from exc
    world.journal = args.journal

    def banner() -> None:
        err.print(f"EnOS emulator on http://{args.host}:{args.port}", markup=False)
        err.print(f"  export ENOS_API_GATEWAY=http://{args.host}:{args.port}", markup=False)
        if world.apps.get(DEFAULT_APP_KEY) == DEFAULT_APP_SECRET:
            err.print(
                f"  export ENOS_APP_KEY={DEFAULT_APP_KEY} ENOS_APP_SECRET={DEFAULT_APP_SECRET}", markup=False
            )
        else:
            err.print(
                f"  app keys accepted: {', '.join(world.apps)} (secrets as in {args.state})", markup=False
            )
        for p in world.pipelines.values():  # what a manifest may name
            stages = ", ".join(sorted(p.stages))
            err.print(
                f"  pipeline {p.org_id}/{p.pipeline_id} ({p.name}, {p.status}): stages {stages}", markup=False
            )

    try:
        serve_forever(world, args.host, args.port, on_bound=banner)
    except EmulatorError as exc:  # the port is taken, an unknown host: before serving anything
        raise ReconcilerError(str(exc)) from exc
    return DONE
