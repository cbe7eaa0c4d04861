"""`reconcile apply`, the whole run: settings, the operation, what is said after, and its
`--summary` files and notifications around all of it (review 2026-12-07 §2.9, R2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.commands import DONE, EXIT_INTERRUPTED, Ask, CommandOutcome, approve, ask_stdin
from reconciler.errors import LedgerLocked, ReconcilerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reconciler.apply import ApplyResult
    from reconciler.args import ApplyArgs
    from reconciler.config import NotifyTarget
    from reconciler.operations import ApplySettings, Planned
    from reconciler.render.console import Consoles


def apply(args: ApplyArgs, c: Consoles, ask: Ask = ask_stdin) -> CommandOutcome:
    """Clear the pending stage state, once, recording each deletion in the ledger. The
    `--summary` files are written and reconcile.yaml's `notify` targets told however it
    ends: refused at any point (the error is the summary), done, or interrupted."""
    run = _Run(ledger=args.ledger)
    with _summary_files(c, args.summary or [], run):
        return _apply(args, c, ask, run)


def _apply(args: ApplyArgs, c: Consoles, ask: Ask, run: _Run) -> CommandOutcome:
    from reconciler import operations
    from reconciler import settings as s
    from reconciler.render import apply as render_apply
    from reconciler.store import check_git_not_turned_off, open_store

    s.check_window_override(args)
    cfg = s.config(args.config_file)
    run.targets = cfg.notify if cfg is not None else ()
    check_git_not_turned_off(cfg, c.warn)  # first: off git, nothing else is checked
    run.ledger = s.resolve_ledger(args.ledger, cfg)
    settings = run.settings = s.apply_settings(cfg, args)
    reporter = render_apply.reporter_for(c)

    def show(planned: Planned) -> None:
        run.seen.append(planned)
        _show(c, planned)

    with s.flag_advice(LedgerLocked, after=" Or pass --lock-timeout SECONDS to wait for it."):
        _, run.result = operations.apply(
            settings,
            # checked only when there is something to apply: a no-op apply needs no credentials
            gateways=lambda: s.gateways_for(args.gateway, cfg, on_retry=reporter.note)(),
            reporter=reporter,
            show=show,
            confirm=lambda p: approve(args.auto_approve, ask),
            store=open_store(cfg, operations.target_ledger(settings)[0]),
        )
    return _said(c, settings, run.result)


def outcome_of(result: ApplyResult) -> CommandOutcome:
    """The exit of a run that got to the gateway: 1 and why when it did not finish (a
    ledger that could not be written comes first: it stops a run however it ends), 130
    when interrupted, else 0."""
    from reconciler.render.apply import failure

    error = failure(result)
    if error is not None:
        return CommandOutcome(1, error)
    return CommandOutcome(EXIT_INTERRUPTED) if result.interrupted else DONE


def _said(c: Consoles, settings: ApplySettings, result: ApplyResult | None) -> CommandOutcome:
    """What the run did, on stdout, and its exit."""
    from reconciler.render import apply as render_apply

    if result is None:
        c.out.print("Nothing to apply.")
        return DONE
    width = min(render_apply.SUMMARY_WIDTH, c.out.width)
    outcome = outcome_of(result)
    if result.outside_window is not None:
        if result.resumed or result.resume_failed:
            c.out.print(render_apply.summary_table(result), width=width)
        if outcome.code:  # a left-paused pipeline that would not start
            return outcome
        c.out.print(
            f"Deferred: {result.outside_window.reason}; {_until(result.outside_window.until)}.", markup=False
        )
        return DONE
    c.out.print(render_apply.summary_table(result), width=width)
    evidence = settings.apply_options.snapshot
    if evidence is not None:  # said before any failure exit: the evidence matters most then
        what = (
            "Evidence of the state cleared"
            if result.deleted or result.in_doubt
            else "Nothing was cleared; the state read before each delete not done"
        )
        c.out.print(
            f"{what}: {evidence} (check it: reconcile ledger verify --snapshot {evidence})", markup=False
        )
    if outcome.code == 0:
        c.out.print(render_apply.done_line(result))
    return outcome


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
def _summary_files(c: Consoles, files: list[Path], run: _Run) -> Iterator[None]:
    """Write `--summary` files however apply ends: done, nothing to do, refused before any
    call (a bad reconcile.yaml, a broken saved plan, git turned off, uncommitted manifests:
    the error is the summary), or stopped part-way (Ctrl-C: what it did so far). The CI
    templates post the file to the merged pull request only if it exists. Then tell
    reconcile.yaml's `notify` targets (the run's records are on the remote by now)."""
    from reconciler import operations

    error: str | None = None
    try:
        yield
    except ReconcilerError as exc:
        from reconciler.settings import advice

        error = advice(exc)
        raise
    except KeyboardInterrupt:
        error = "interrupted before anything was sent"
        raise
    except BaseException as exc:  # a closed stdout, a bug: never a summary that says all went well
        error = _unexpected(exc)
        raise
    finally:
        if files:
            from reconciler.render.summary import ApplyReport, dumps, summary_markdown

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
                    c.warn(f"{f}: could not write the summary: {exc.strerror or exc}")
        if run.targets:
            _notify(c, run, error)


def _unexpected(exc: BaseException) -> str:
    """An end no refusal words, as the CLI says it (`cli._app.run`). rich exits 1 when
    stdout is a pipe closed early (`reconcile apply | head`)."""
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}"
    if isinstance(exc, SystemExit):
        return f"stopped (exit {exc.code}): its output was closed, or it was told to exit"
    return f"unexpected error ({type(exc).__name__}: {exc})"


def _notify(c: Consoles, run: _Run, error: str | None) -> None:
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
    notify.send(run.targets, told, os.environ, c.warn, scheduled=notify.scheduled(os.environ))


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
