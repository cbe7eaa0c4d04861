"""The emulator, the demo and the repository scaffold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler.cli._app import app, consoles, flag
from reconciler.errors import ReconcilerError

# --- emulator and demo -------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 8910,
    state: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE", help="Seed the world from this YAML/JSON file (format: README).", exists=True
        ),
    ] = None,
    fault_rate: Annotated[
        float, typer.Option(metavar="SHARE", min=0, max=1, help="Share of business requests that fail.")
    ] = 0.0,
    fault_kind: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--fault-kind",
            metavar="KIND",
            help="Limit faults to these kinds (listed above); repeatable. Default: every kind of a "
            "flaky gateway; a lying one (kept, cleared_others) only when named.",
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(metavar="MS", min=0, help="Latency added to every business request.")
    ] = 0,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the fault generator, so runs repeat.")] = 0,
    journal: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE", help="Append every delete, refused delete, pause and start here (JSON Lines)."
        ),
    ] = None,
) -> None:
    """Run the local EnOS gateway emulator (for tests, demos and your own CI).

    \b
    Fault kinds (--fault-kind), each drawn for a --fault-rate share of requests:
      latency         the answer comes 200 ms late
      http500         HTTP 500
      http503         HTTP 503
      http429         HTTP 429 with Retry-After
      drop            the connection drops before any effect
      61199           code 61199 (internal error)
      data_false      a delete answers data: false
      lost_answer     a delete takes effect, then the connection drops unanswered
      token_expiry    the token expires after it has served
    A lying gateway, only when named (apply's canary stops the run on it):
      kept            a delete answers true and keeps the state
      cleared_others  a delete answers true and also clears the stage's other cells

    \b
    Example:  reconcile emulator --port 8910 --fault-rate 0.1 --seed 7
              reconcile emulator --fault-rate 1 --fault-kind kept
    """
    from reconciler.emulator import (
        DEFAULT_APP_KEY,
        DEFAULT_APP_SECRET,
        FAULT_KINDS,
        EmulatorError,
        Faults,
        World,
        serve_forever,
    )

    c = consoles()
    err = c.err
    try:
        faults = Faults(
            rate=fault_rate, kinds=tuple(fault_kind or FAULT_KINDS), latency_ms=latency_ms, seed=seed
        )
        world = World.from_file(state, faults) if state else World(faults=faults)
    except (ValueError, KeyError, OSError) as exc:
        raise ReconcilerError(f"cannot start the emulator: {exc}") from exc
    world.journal = journal

    def banner() -> None:
        err.print(f"EnOS emulator on http://{host}:{port}", markup=False)
        err.print(f"  export ENOS_API_GATEWAY=http://{host}:{port}", markup=False)
        if world.apps.get(DEFAULT_APP_KEY) == DEFAULT_APP_SECRET:
            err.print(
                f"  export ENOS_APP_KEY={DEFAULT_APP_KEY} ENOS_APP_SECRET={DEFAULT_APP_SECRET}", markup=False
            )
        else:
            err.print(f"  app keys accepted: {', '.join(world.apps)} (secrets as in {state})", markup=False)
        for p in world.pipelines.values():  # what a manifest may name
            stages = ", ".join(sorted(p.stages))
            err.print(
                f"  pipeline {p.org_id}/{p.pipeline_id} ({p.name}, {p.status}): stages {stages}", markup=False
            )

    try:
        serve_forever(world, host, port, on_bound=banner)
    except EmulatorError as exc:  # the port is taken, an unknown host: before serving anything
        raise ReconcilerError(str(exc)) from exc


@app.command()
def demo(
    keep: Annotated[bool, flag("--keep", help="Keep the temp dir and print its path.")] = False,
) -> None:
    """Plan, apply, plan again, apply again: against an in-process emulator, in a temp dir.

    Offline and harmless: the repository is left untouched.

    \b
    Example:  reconcile demo
    """
    from reconciler.cli.demo import run_demo

    run_demo(consoles(), keep=keep)


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to scaffold (default: here).")
    ] = Path("."),
    force: Annotated[
        bool,
        flag("--force", help="Overwrite existing files; never the ledger or an existing reconcile.yaml."),
    ] = False,
    workflows_only: Annotated[
        bool,
        flag("--workflows-only", help="Rewrite only the CI files (GitHub workflows, .gitlab-ci.yml)."),
    ] = False,
    max_cells: Annotated[
        int, typer.Option(metavar="N", min=1, help="apply.maxCells written into reconcile.yaml.")
    ] = 1_000_000,
    branch: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="NAME",
            help="The default branch CI applies from (default: origin's HEAD, else the branch "
            "checked out, else init.defaultBranch, else main).",
            show_default=False,
        ),
    ] = None,
    install_source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="REQUIREMENT",
            help="What both CI jobs pip-install, pinned: your fork at a commit ('enos-reconciler @ "
            "git+https://host/org/reconciler@<sha>'), a wheel URL with #sha256=, or "
            "'enos-reconciler==<version>' on your index. Default: this reconcile's own source "
            "when its installation says (PEP 610); otherwise init asks for it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Scaffold a manifests repository: example manifest, schema, ledger, CI workflows.

    Writes manifests/, schemas/, applied-ledger.jsonl (an existing one is kept), GitHub
    Actions (plan comment on pull requests, apply on merge, its result posted back to
    the merged pull request), GitLab CI, a pre-commit config, and reconcile.yaml (an
    existing one is kept: it is reviewed), which keeps the ledger in git: apply then
    fetches and pushes it, so run apply in a clone with the remote (CI does), or set
    ledger.git.enabled: false to keep the ledger in the directory only.
    `--workflows-only` takes a newer version's CI files and touches nothing else.

    \b
    Example:  reconcile init my-deletions && cd my-deletions && reconcile plan
    """
    from reconciler import __version__
    from reconciler.install_source import InstallSource, check, running
    from reconciler.scaffold import init as scaffold

    out = consoles().out
    source = (
        InstallSource(check(install_source), "as given with --install-source")
        if install_source is not None
        else running(__version__)
    )
    result = scaffold(
        directory,
        force=force,
        max_cells=max_cells,
        branch=branch,
        workflows_only=workflows_only,
        install=source.requirement,
        install_how=source.how,
    )
    for rel in result.written:
        out.print(f"  wrote {directory / rel}", markup=False)
    for rel in result.kept:
        what = "ledger" if rel.endswith(".jsonl") else "reconcile.yaml (reviewed settings)"
        out.print(f"  kept  {directory / rel} (an existing {what} is never overwritten)", markup=False)
    out.print(
        f"\nDefault branch: {result.branch} (CI applies merges to it; --branch to change)", markup=False
    )
    if not result.next_steps:
        return
    out.print("\nBefore the first pull request, set up:", markup=False)
    for step in result.next_steps:
        out.print(f"  - {step}", markup=False)
