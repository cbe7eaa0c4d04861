"""The emulator, the demo and the repository scaffold: their flags (the runs are
`commands.tools`, the demo's `cli.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler import args as arguments
from reconciler.cli._app import app, consoles, flag
from reconciler.commands import CommandOutcome
from reconciler.commands import tools as commands

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
) -> CommandOutcome:
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
    return commands.emulator(arguments.EmulatorArgs(**locals()), consoles())


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
) -> CommandOutcome:
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
    return commands.init(arguments.InitArgs(**locals()), consoles())
