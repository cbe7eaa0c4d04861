"""Apply's reporters: a rich progress bar on a terminal, plain lines in CI; the summary.

Both reporters show the same figures: requests answered, cells cleared, failures,
requests in doubt and an estimate of the time left. `finish()` may come twice (after
the sends, then again on Ctrl-C or SIGTERM during what follows): it ends the line
once, and says how many requests were never answered when the run was stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler import durations
from reconciler.apply import ApplyResult, Outcome
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef
from reconciler.render.console import Consoles
from reconciler.words import plural


@dataclass
class Tally:
    """What the sends came to so far; cells settled (cleared or not) drive the estimate."""

    requests: int = 0
    cells: int = 0
    answered: int = 0
    cleared: int = 0
    failed: int = 0
    in_doubt: int = 0
    settled_cells: int = 0
    done: str = "cleared"  # what an answered request did: cleared, or verified

    def eta(self, elapsed: float) -> float | None:
        if not self.settled_cells or self.settled_cells >= self.cells:
            return None
        return elapsed * (self.cells - self.settled_cells) / self.settled_cells

    def figures(self, elapsed: float, *, stopped: bool = False) -> str:
        """The figures so far; a stopped run has no time left to estimate."""
        out = f"{plural(self.cleared, 'cell')} {self.done}, {self.failed:,} failed"
        if self.in_doubt:
            out += f", {self.in_doubt:,} in doubt"
        eta = None if stopped else self.eta(elapsed)
        return out + (f", ETA {durations.compact(round(eta))}" if eta is not None else "")


class LineReporter:
    """One line per event: readable in CI logs, no control characters."""

    def __init__(
        self, console: Console, every: int = 50, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console = console
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self.tally = Tally()
        self._start = clock()
        self._running = False

    def note(self, message: str) -> None:
        from reconciler.settings import advice  # a core note with a hint, in the CLI's words

        self.console.print(advice(message), markup=False)

    def start(self, requests: int, cells: int, verb: str = "clear") -> None:
        done = "verified" if verb == "verify" else "cleared"
        with self._lock:
            self.tally, self._start, self._running = Tally(requests, cells, done=done), self.clock(), True
        self.console.print(
            f"sending {plural(requests, 'request')} to {verb} {plural(cells, 'cell')}", markup=False
        )

    def _count(self, action: Action, outcome: Outcome) -> Tally:
        with self._lock:
            t = self.tally
            t.answered += 1
            t.settled_cells += action.cells
            if outcome is Outcome.DONE:
                t.cleared += action.cells
            elif outcome is Outcome.IN_DOUBT:
                t.in_doubt += 1
            else:
                t.failed += 1
            return Tally(**vars(t))

    def _failure(self, action: Action, outcome: Outcome, message: str) -> str:
        what = outcome.value.upper()
        return f"{what} {action.manifest} {action.pipeline_id}/{action.stage} ({plural(action.cells, 'cell')}): {message}"

    def advance(self, action: Action, outcome: Outcome, message: str = "") -> None:
        t = self._count(action, outcome)
        if outcome not in (Outcome.DONE, Outcome.HELD):  # HELD: its key's refusal was told once
            self.console.print(self._failure(action, outcome, message), markup=False)
        if t.answered == t.requests:
            with self._lock:
                running, self._running = self._running, False  # the last line: finish() adds none
            if running:
                self.console.print(f"  {self._progress_line(t)}", markup=False)
        elif t.answered % self.every == 0:
            self.console.print(f"  {self._progress_line(t)}", markup=False)

    def _progress_line(self, t: Tally, *, stopped: bool = False) -> str:
        elapsed = self.clock() - self._start
        figures = t.figures(elapsed, stopped=stopped)
        return f"{t.answered:,}/{t.requests:,} requests done ({elapsed:.2f}s): {figures}"

    def finish(self) -> None:
        """End the progress: once, with what was never answered if the run was stopped."""
        with self._lock:
            running, self._running = self._running, False
            t = Tally(**vars(self.tally))
        if running:
            self._end()
            self.console.print(self._final_line(t), markup=False)

    def _end(self) -> None:
        pass

    def _final_line(self, t: Tally) -> str:
        unanswered = t.requests - t.answered
        line = self._progress_line(t, stopped=unanswered > 0)
        if unanswered > 0:
            line = f"stopped: {line}; {plural(unanswered, 'request')} not sent (still pending)"
        return line


class BarReporter(LineReporter):
    """A progress bar for people at a terminal; notes and failures print above it."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(console, clock=clock)
        from rich.progress import (  # a terminal's alone: CI's plain lines need none of it
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.fields[verb]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("requests, {task.fields[figures]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("clear", total=0, figures="", verb="clearing")

    def start(self, requests: int, cells: int, verb: str = "clear") -> None:
        super().start(requests, cells, verb)
        self._progress.reset(
            self._task,
            total=requests,
            figures=self.tally.figures(0),
            verb="verifying" if verb == "verify" else "clearing",
        )
        self._progress.start()

    def advance(self, action: Action, outcome: Outcome, message: str = "") -> None:
        t = self._count(action, outcome)
        if outcome not in (Outcome.DONE, Outcome.HELD):
            self._progress.console.print(self._failure(action, outcome, message), markup=False, style="red")
        figures = f"{plural(t.cleared, 'cell')} {t.done}, {t.failed:,} failed" + (
            f", {t.in_doubt:,} in doubt" if t.in_doubt else ""
        )
        self._progress.update(self._task, advance=1, figures=figures)

    def _end(self) -> None:
        self._progress.stop()


def reporter_for(consoles: Consoles) -> LineReporter:
    """A progress bar for a person at a terminal, plain lines in CI logs."""
    return LineReporter(consoles.err) if consoles.in_ci else BarReporter(consoles.err)


# --- the summary --------------------------------------------------------------------


def _cells(actions: Sequence[Action]) -> int:
    return sum(a.cells for a in actions)


def _pipes(refs: Sequence[PipelineRef], result: ApplyResult, *, held: bool = False) -> str:
    """Pipelines by ID and name; with `held`, how long each stayed paused."""

    def one(r: PipelineRef) -> str:
        words = result.pause_words(r) if held else None
        return f"{r.org_id}/{result.label(r)}" + (f", {words}" if words is not None else "")

    return escape(", ".join(map(one, refs)))


def _why(items: Sequence[tuple[PipelineRef, str]], result: ApplyResult) -> str:
    from reconciler.settings import advice  # a reason with a hint, in the CLI's words

    return escape("; ".join(f"{r.org_id}/{result.label(r)}: {advice(why)}" for r, why in items))


# The summary is printed at most this wide, in a CI log too: long notes wrap inside their
# cell, never cut (issue 25).
SUMMARY_WIDTH = 120


def summary_table(result: ApplyResult) -> Table:
    """Every outcome that happened: done, failed, in doubt, not sent, pipelines, the ledger."""
    title = "apply summary" + (" (interrupted)" if result.interrupted else "")
    table = Table(title=title, show_header=True)
    table.add_column("outcome")
    table.add_column("requests", justify="right")
    table.add_column("cells", justify="right")
    table.add_column("notes")
    table.add_row("[green]done[/green]", f"{len(result.deleted):,}", f"{result.cells_deleted:,}", "")
    for label, actions, note in _request_rows(result):
        if actions:
            table.add_row(label, f"{len(actions):,}", f"{_cells(actions):,}", note)
    if result.verify_failed:
        left = sum(n for _, n in result.verify_failed)
        table.add_row(
            "[red]verify: state remains[/red]",
            f"{len(result.verify_failed):,}",
            f"{left:,}",
            "Get Stage State still returns items for these cells",
        )
    for label, note in _pipeline_rows(result):
        table.add_row(label, "", "", note)
    if result.ledger_error is not None:
        table.add_row("[red]ledger write failed[/red]", "", "", escape(str(result.ledger_error)))
    return table


def _request_rows(result: ApplyResult) -> list[tuple[str, list[Action], str]]:
    first_failure = escape(result.failed[0][1]) if result.failed else ""
    more = f" (+{plural(len(result.failed) - 1, 'other')})" if len(result.failed) > 1 else ""
    stopped = "run interrupted" if result.interrupted else "run stopped"
    return [
        ("[red]failed (still pending)[/red]", [a for a, _ in result.failed], first_failure + more),
        (
            "[magenta]in doubt[/magenta]",
            [a for a, _ in result.in_doubt],
            "sent, no answer recorded; `reconcile plan` shows them",
        ),
        (
            "[magenta]in doubt, left to a person[/magenta]",
            result.skipped_in_doubt,
            "--resend-in-doubt or `reconcile ledger resolve`",
        ),
        ("[yellow]not sent (still pending)[/yellow]", result.not_sent, stopped if result.not_sent else ""),
    ]


def _pipeline_rows(result: ApplyResult) -> list[tuple[str, str]]:
    rows = []
    if result.paused:
        rows.append(
            (
                "paused by this run",
                f"{plural(len(result.paused), 'pipeline')}: {_pipes(result.paused, result)}",
            )
        )
    if result.resumed:
        rows.append(
            (
                "started again",
                f"{plural(len(result.resumed), 'pipeline')}: {_pipes(result.resumed, result, held=True)}, "
                "reporting RUNNING" + _lags(result),
            )
        )
    for r in result.refusals:
        rows.append(
            (
                f"[red]refused for the whole {r.scope}[/red]",
                escape(f"{r.where}: {r.message} ({plural(r.requests, 'request')} failed or not sent)"),
            )
        )
    if result.stopped_pipelines:
        n = plural(len(result.stopped_pipelines), "pipeline")
        rows.append(
            (
                "[red]no longer PAUSED mid-run[/red]",
                f"{n}, sent nothing more: {_why(result.stopped_pipelines, result)}",
            )
        )
    if result.resume_failed:
        n = plural(len(result.resume_failed), "pipeline")
        rows.append(
            ("[red]NOT started again[/red]", f"{n}, start by hand: {_why(result.resume_failed, result)}")
        )
    return rows


def _lags(result: ApplyResult) -> str:
    """The lag each started pipeline reported (Get Pipeline Offset and Lag), where it did."""
    if not result.lags:
        return ""
    return escape("; lag " + ", ".join(f"{ref.pipeline_id} {lag.lag:,} records" for ref, lag in result.lags))


def done_line(result: ApplyResult) -> str:
    return (
        f"[green]Apply complete.[/green] {plural(result.cells_deleted, 'cell')} cleared in "
        f"{plural(len(result.deleted), 'request')}."
    )


def failure(result: ApplyResult) -> str | None:
    """Why an apply did not finish, in words; None when it finished, or was interrupted with
    its ledger whole (the exit code says that: `commands.apply.outcome_of`)."""
    if result.ledger_error is not None:
        unsent = len(result.not_sent)
        return (
            f"{result.ledger_error}; the run stopped: {plural(unsent, 'request')} not sent. The ledger "
            "ends at its last whole record; fix the cause, then apply again"
        )
    if result.interrupted:
        return None
    paused = ", ".join(f"{r.org_id}/{r.pipeline_id}" for r, _ in result.resume_failed)
    again = f". NOT started again: {paused}" if paused else ""
    if result.canary is not None:
        return (
            f"the canary stopped the run: {result.canary}. Nothing more was sent, to any stage; "
            "the requests not sent stay pending. Check the gateway before applying again" + again
        )
    if result.not_paused:
        names = "; ".join(
            f"could not pause {r.org_id}/{r.pipeline_id}: {why}" for r, why in result.not_paused
        )
        return f"{names}. Its requests stay pending; apply again once it can be paused{again}"
    if not result.ok:
        return (
            "apply did not finish: what failed stays pending; run `reconcile plan` to see it, "
            "then apply again" + again
        )
    return None
