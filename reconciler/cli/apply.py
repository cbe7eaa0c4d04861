"""The command that changes the world: apply (ledger resolve, the other, is in `cli/ledger.py`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from reconciler.cli._app import (
    ConfigOpt,
    LedgerOpt,
    LockTimeout,
    MaxAssets,
    MaxPoints,
    Targets,
    Yes,
    app,
    consoles,
    flag,
    paths_or_default,
)
from reconciler.errors import ApplyRefused, LedgerLocked, ReconcilerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reconciler.apply import ApplyResult
    from reconciler.config import NotifyTarget
    from reconciler.operations import ApplySettings, Planned
    from reconciler.render.console import Consoles


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
        typer.Option(
            metavar="N", min=1, max=64, help="Requests in flight at once (default: reconcile.yaml's, else 4)."
        ),
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
            metavar="N", min=1, help="kafkaRate to start paused pipelines with, when List Pipelines has none."
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
            min=0,
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
            min=0,
            help="How long to keep trying to start a paused pipeline again while EnOS refuses "
            "because another job of the org is starting (61121) (default: reconcile.yaml's, else 600).",
            show_default=False,
        ),
    ] = None,
    max_paused: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-paused",
            metavar="N",
            min=1,
            max=64,
            help="Pipelines this run keeps paused at the same time, over all orgs; a pipeline "
            "waiting for its start counts (default: reconcile.yaml's apply.rollout.maxPaused, else 2). "
            "Each pipeline is paused just before its own first request and started again as soon as "
            "its own requests are answered; pipelines with fewer requests go first.",
            show_default=False,
        ),
    ] = None,
    max_pause: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--max-pause",
            metavar="DURATION",
            help="The longest one pause, as 90s, 30m or 2h (at most 23h; default: "
            "apply.rollout.maxPause, else 1h). A pipeline whose pause reaches it gets nothing new, "
            "is started once its requests in flight are answered, and is paused again later for the rest.",
            show_default=False,
        ),
    ] = None,
    no_canary: Annotated[
        bool,
        flag(
            "--no-canary",
            help="Do not check each stage's first request before the rest (default: "
            "apply.rollout.canary, else on). The canary reads the request's cells and the next "
            "request's, sends it alone, and reads both again: a gateway that answered true and kept "
            "the state, or cleared cells it was not asked to, stops the whole run (exit 1, every "
            "paused pipeline started again, the rest pending). It costs up to four reads per stage.",
        ),
    ] = False,
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
) -> None:
    """Clear the pending stage state, once, recording each deletion in the ledger.

    Takes the ledger lock, verifies the ledger, plans (or checks a saved plan is still
    exact), asks, checks every pipeline is PAUSED, then sends the requests.

    \b
    Example:  reconcile apply plan.json --auto-approve --concurrency 8
    """
    import reconciler.cli.settings as s
    from reconciler import operations
    from reconciler.render import apply as render_apply
    from reconciler.store import check_git_not_turned_off, open_store

    c = consoles()
    run = _Run(ledger=ledger)
    with _summary_files(summary or [], run):  # first: every refusal is in the summary
        if ignore_window != (reason is not None) or (reason is not None and not reason.strip()):
            raise ReconcilerError(
                "--ignore-window needs --reason TEXT (kept in every record of the run), and --reason "
                "goes only with --ignore-window"
            )
        cfg = s.config(config_file)
        run.targets = cfg.notify if cfg is not None else ()
        check_git_not_turned_off(cfg, c.warn)  # first: off git, nothing else is checked
        run.ledger = s.resolve_ledger(ledger, cfg)
        settings = run.settings = s.apply_settings(
            cfg,
            paths=paths_or_default(paths),
            ledger=ledger,
            plan_options=s.plan_options(max_points, max_assets, target),
            concurrency=concurrency,
            pause_pipelines=pause_pipelines,
            skip_pause_check=skip_pause_check,
            resend_in_doubt=resend_in_doubt,
            verify=verify,
            kafka_rate=kafka_rate,
            max_cells=max_cells,
            lock_timeout=lock_timeout,
            allow_dirty=allow_dirty,
            allow_unreviewed=allow_unreviewed,
            start_timeout=start_timeout,
            snapshot=snapshot,
            max_paused=max_paused,
            max_pause=max_pause,
            window_override=reason.strip() if reason is not None else None,
            canary=False if no_canary else None,
        )
        reporter = render_apply.reporter_for(c)

        def show(planned: Planned) -> None:
            run.seen.append(planned)
            _show(c, planned)

        with s.flag_advice(LedgerLocked, after=" Or pass --lock-timeout SECONDS to wait for it."):
            _, result = operations.apply(
                settings,
                # checked only when there is something to apply: a no-op apply needs no credentials
                gateways=lambda: s.gateways_for(gateway, cfg, on_retry=reporter.note)(),
                reporter=reporter,
                show=show,
                confirm=lambda p: approve(c, auto_approve),
                store=open_store(cfg, operations.target_ledger(settings)[0]),
            )
            run.result = result
    if result is None:
        c.out.print("Nothing to apply.")
        return
    if result.outside_window is not None:
        if result.resumed or result.resume_failed:
            c.out.print(
                render_apply.summary_table(result), width=min(render_apply.SUMMARY_WIDTH, c.out.width)
            )
        render_apply.raise_for(result)  # a left-paused pipeline that would not start
        c.out.print(
            f"Deferred: {result.outside_window.reason}; {_until(result.outside_window.until)}.", markup=False
        )
        return
    c.out.print(render_apply.summary_table(result), width=min(render_apply.SUMMARY_WIDTH, c.out.width))
    evidence = settings.apply_options.snapshot
    if evidence is not None:  # said before any failure exit: the evidence matters most then
        c.out.print(
            f"Evidence of the state cleared: {evidence} (check it: reconcile ledger verify --snapshot {evidence})",
            markup=False,
        )
    render_apply.raise_for(result)
    c.out.print(render_apply.done_line(result))


@dataclass
class _Run:
    """What one apply got to, for its `--summary` files: as far as it got before it ended."""

    ledger: str | None  # --ledger, until the settings say which
    settings: ApplySettings | None = None
    seen: list[Planned] = field(default_factory=list)
    result: ApplyResult | None = None
    targets: Sequence[NotifyTarget] = ()  # reconcile.yaml `notify`, once it is read


def _until(until: str | None) -> str:
    if until is None:
        return "no window opens within a year: nothing pending is sent until reconcile.yaml changes"
    return f"nothing was paused or sent; the pending requests are applied when the window opens at {until}"


@contextmanager
def _summary_files(files: list[Path], run: _Run) -> Iterator[None]:
    """Write `--summary` files however apply ends: done, nothing to do, refused before any
    call (a bad reconcile.yaml, a broken saved plan, git turned off, uncommitted manifests:
    the error is the summary), or stopped part-way (Ctrl-C: what it did so far). The CI
    templates post the file to the merged pull request only if it exists. Then tell
    reconcile.yaml's `notify` targets (the run's records are on the remote by now)."""
    from reconciler import operations
    from reconciler.render.summary import ApplyReport, dumps, summary_markdown

    error: str | None = None
    try:
        yield
    except ReconcilerError as exc:
        error = str(exc)
        raise
    except KeyboardInterrupt:
        error = "interrupted before anything was sent"
        raise
    finally:
        if files:
            # the settings read (a saved plan's included) say which ledger; before them, the flag's
            ledger = (
                operations.target_ledger(run.settings)[0] if run.settings else run.ledger or _default_ledger()
            )
            report = ApplyReport(
                ledger=ledger,
                plan=run.seen[-1].plan if run.seen else None,
                result=run.result,
                error=error,
                actor=run.settings.apply_options.actor if run.settings is not None else _actor(),
            )
            for f in files:
                try:
                    f.write_text(summary_markdown(report) if f.suffix.lower() == ".md" else dumps(report))
                except OSError as exc:  # never in place of what apply itself raised
                    consoles().warn(f"{f}: could not write the summary: {exc.strerror or exc}")
        if run.targets:
            _notify(run, error)


def _notify(run: _Run, error: str | None) -> None:
    """One message per event to each target that wants it; a failed post is a warning."""
    import os

    from reconciler import notify

    planned = run.seen[-1] if run.seen else None
    actor = run.settings.apply_options.actor if run.settings is not None else {}
    told = notify.Run(
        plan=planned.plan if planned is not None else None,
        result=run.result,
        error=error,
        actor=actor,
        descriptions={m.name: m.description for m in planned.loaded.manifests if m.description}
        if planned is not None
        else {},
        commit_url=notify.commit_url(os.environ, actor.get("gitCommit")),
        repo=os.environ.get("GITHUB_REPOSITORY") or os.environ.get("CI_PROJECT_PATH"),
    )
    notify.send(run.targets, told, os.environ, consoles().warn, scheduled=notify.scheduled(os.environ))


def _default_ledger() -> str:
    from reconciler.store import DEFAULT_LEDGER

    return DEFAULT_LEDGER


def _actor() -> dict[str, Any]:
    """Who ran an apply refused before its settings were read (best effort: it is only
    said in the summary)."""
    from reconciler.actor import current_actor

    try:
        return current_actor()
    except (OSError, ReconcilerError):
        return {}


def _show(c: Consoles, planned: Planned) -> None:
    """The plan apply is about to carry out, with what is worth a warning."""
    from reconciler.render import plan as render_plan

    for w in planned.warnings:
        c.warn(w)
    if planned.saved is not None:
        c.err.print(f"Saved plan {planned.saved.path} matches the manifests and the ledger.", markup=False)
    sources = {m.name: m.id_sources for m in planned.loaded.manifests if m.id_sources}
    review = render_plan.Review(sources=sources)
    c.out.print(render_plan.plan_text(planned.plan, planned.manifest_files, review), end="")


def approve(
    c: Consoles, auto_approve: bool, question: str = "Clear this state? It cannot be undone."
) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ApplyRefused("no terminal to ask for approval; pass --auto-approve to go on non-interactively")
    try:
        answer = typer.prompt(f"{question} Only 'yes' will be accepted")
    except typer.Abort:
        raise KeyboardInterrupt from None
    if answer.strip() != "yes":
        raise ApplyRefused("cancelled; nothing was sent")
