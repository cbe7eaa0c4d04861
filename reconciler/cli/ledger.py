"""The ledger commands' flags: verify and show (each can check a snapshot file), resolve,
report, migrate, restore (the runs are `commands.ledger`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from reconciler import args as arguments
from reconciler.args import ShowFormat
from reconciler.cli._app import LedgerOpt, LockTimeout, Paths, Yes, ask, consoles, ledger_app, one_of
from reconciler.commands import CommandOutcome
from reconciler.commands import ledger as commands


@ledger_app.command("verify")
def ledger_verify(
    ledger: LedgerOpt = None,
    snapshot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Also check this `apply --snapshot` file against the digests its delete records carry.",
        ),
    ] = None,
) -> CommandOutcome:
    """Check the hash chain of every record; name the first bad line.

    Every file of the ledger is read: the main file, each segment its seals name (and
    each seal's digest of its segment and summary, which plan and apply trust for the
    segments no manifest names), and each ID list file. Records cut from the end of the
    file are not detectable by the chain alone; with the ledger in git, apply checks that
    the new ledger extends the remote's.

    \b
    Example:  reconcile ledger verify --ledger applied-ledger.jsonl
    """
    return commands.verify(arguments.LedgerVerifyArgs(**locals()), consoles())


@ledger_app.command("show")
def ledger_show(
    ledger: LedgerOpt = None,
    fmt: Annotated[
        ShowFormat,
        typer.Option("--format", metavar="text|json", help="text or json.", parser=one_of(ShowFormat)),
    ] = ShowFormat.TEXT,
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only records of this manifest.")  # noqa: UP045
    ] = None,
    pipeline: Annotated[
        Optional[str], typer.Option(metavar="ID", help="Only records of this pipeline ID.")  # noqa: UP045
    ] = None,
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="WHEN",
            help="Only records at or after this time: 2026-11-01, 2026-11-01T08:00Z, or 7d/12h/30m.",
        ),
    ] = None,
    kind: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--kind", metavar="KIND", help="Only these kinds (intent, delete, failed, pause, start, resume)."
        ),
    ] = None,
    stage: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only records of this stage instance.")  # noqa: UP045
    ] = None,
    asset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="ID", help="Only records whose cells include this asset; says when it was last cleared."
        ),
    ] = None,
    point: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="ID", help="Only records whose cells include this point."),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option(metavar="N", help="Only the first N matching records.")  # noqa: UP045
    ] = None,
    tail: Annotated[
        Optional[int], typer.Option(metavar="N", help="Only the last N matching records.")  # noqa: UP045
    ] = None,
    snapshot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Check this `apply --snapshot` file against the digests its delete records carry.",
        ),
    ] = None,
) -> CommandOutcome:
    """The history: when, manifest, pipeline, stage, assets, points, actor.

    Every filter is checked against the ledger: a manifest, pipeline, stage, asset or
    point that no record names is an error with the closest names it does hold, never
    an empty answer that reads as "never cleared". With the ledger in git (reconcile.yaml),
    the ledger is read as its branch holds it, like `plan` reads it: a checkout may be
    behind.

    \b
    Example:
      reconcile ledger show --manifest wind-avg-power-fix-2026-11 --since 7d
      reconcile ledger show --asset 0033Tiui --kind delete --tail 1   # last cleared, and why
      reconcile ledger show --kind delete --snapshot evidence.jsonl.gz  # with the evidence checked
    """
    return commands.show(arguments.LedgerShowArgs(**locals()), consoles())


@ledger_app.command("resolve")
def ledger_resolve(
    paths: Paths = None,
    ledger: LedgerOpt = None,
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only in-doubt cells of this manifest.")  # noqa: UP045
    ] = None,
    auto_approve: Yes = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read the in-doubt cells back first (Get Stage State, read-only credentials); refuse "
            "to record a request whose cells still hold state.",
        ),
    ] = False,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="URL", envvar="ENOS_API_GATEWAY", help="Gateway URL, for --verify."),
    ] = None,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--start",
            metavar="ORG/PIPELINE",
            help="Settle a start in doubt instead: an apply announced this pipeline's start and "
            "stopped before confirming it. Run it once you started the pipeline in the EnOS console, "
            "or chose to keep it paused: applies then leave it to you.",
        ),
    ] = None,
) -> CommandOutcome:
    """Record in-doubt requests as done, after a person checked the state is cleared.

    With --verify the cells are read back first: a request whose cells hold no state is
    recorded as done; one whose cells still hold state is not (its delete did not take
    effect, or the pipeline rebuilt the state since): re-send it with
    `reconcile apply --resend-in-doubt` instead.

    \b
    Example:  reconcile ledger resolve --verify --manifest wind-avg-power-fix-2026-11 --auto-approve
    """
    return commands.resolve(arguments.LedgerResolveArgs(**locals()), consoles(), ask)


@ledger_app.command("report")
def ledger_report(
    ledger: LedgerOpt = None,
    out: Annotated[
        str,
        typer.Option("--out", metavar="FILE", help="Where to write the HTML file ('-' for standard output)."),
    ] = "ledger-report.html",
    title: Annotated[str, typer.Option(metavar="TEXT", help="The page's title.")] = "Stage state cleared",
) -> CommandOutcome:
    """An audit report: one self-contained HTML file (no network needed to open it).

    A chart of cells cleared per day per pipeline; per manifest when, by whom, from which
    commit and CI run, how many cells and how long each pipeline was paused; requests in
    doubt or failed; pipelines left paused. Filter by pipeline, manifest or asset in the
    page (the filter is kept in the URL, e.g. ledger-report.html#asset=0033Tiui). With the
    ledger in git, the ledger as its branch holds it.

    \b
    Example:  reconcile ledger report --out ledger-report.html
    """
    return commands.report(arguments.LedgerReportArgs(**locals()), consoles())


@ledger_app.command("migrate")
def ledger_migrate(ledger: LedgerOpt = None, lock_timeout: LockTimeout = None) -> CommandOutcome:
    """Rewrite a v1 or v2 ledger in format v3, keeping the original as `<name>.v<N>.bak`.

    Format v3 stores long ID lists once, by content, in `<name>.d/ids/`, and seals the
    file once it holds 1 MB, at the start of a run, going on in `<name>.d/segments/`: no
    file grows for years, and git keeps each list once. A run's records stay in one
    segment, so a small ledger may stay one file. Every record keeps its seq, kind, time, fields and cells
    (checked before the ledger is replaced); the head hash changes, so saved plans made
    before are stale. With the ledger in git (reconcile.yaml), the remote's ledger is
    migrated and published (the main file and `<name>.d/`), and reconcile's anchor moves
    with it, so the next apply accepts it.

    \b
    Example:  reconcile ledger migrate --ledger applied-ledger.jsonl
    """
    return commands.migrate(arguments.LedgerMigrateArgs(**locals()), consoles())


@ledger_app.command("restore")
def ledger_restore(ledger: LedgerOpt = None, auto_approve: Yes = False) -> CommandOutcome:
    """Put the ledger back as reconcile last published it, after it was cut, rewritten or
    forged on its branch, the branch was force-pushed or deleted, a lease was planted, or
    the anchor was moved.

    reconcile keeps its own anchor of every ledger it publishes (refs/reconcile/anchor on
    the remote), which merged pull requests cannot move. This commits that ledger and its
    lease on the ledger's branch (creating it if it is gone); nothing is sent to EnOS. It
    never cuts: when the anchor holds less than a ledger reconcile published on the branch
    (it was moved back, or to a forged commit), that version is restored and anchored again.

    \b
    Example:  reconcile ledger restore
    """
    return commands.restore(arguments.LedgerRestoreArgs(**locals()), consoles(), ask)
