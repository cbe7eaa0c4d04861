"""Apply's reporters: a rich progress bar on a terminal, plain lines in CI; the summary."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reconciler.apply import ApplyResult
from reconciler.errors import ReconcilerError
from reconciler.plan import Action
from reconciler.render.console import Consoles


class LineReporter:
    """One line per event: readable in CI logs, no control characters."""

    def __init__(self, console: Console, every: int = 50) -> None:
        self.console = console
        self.every = every
        self._lock = threading.Lock()
        self._done = self._total = 0
        self._start = time.monotonic()

    def note(self, message: str) -> None:
        self.console.print(message, markup=False)

    def start(self, requests: int, cells: int) -> None:
        self._total, self._start = requests, time.monotonic()
        self.console.print(f"sending {requests:,} request(s) clearing {cells:,} cell(s)", markup=False)

    def advance(self, action: Action, ok: bool, message: str = "") -> None:
        with self._lock:
            self._done += ok
            done = self._done
        if not ok:
            self.console.print(
                f"FAILED {action.manifest} {action.stage} ({action.cells:,} cells): {message}", markup=False
            )
        elif done % self.every == 0 or done == self._total:
            self.console.print(
                f"  {done:,}/{self._total:,} requests done ({time.monotonic() - self._start:.2f}s)",
                markup=False,
            )

    def finish(self) -> None:
        pass


class BarReporter(LineReporter):
    """A progress bar for people at a terminal; notes and failures print above it."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._progress = Progress(
            TextColumn("clearing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("requests"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("clear", total=0)

    def start(self, requests: int, cells: int) -> None:
        self._total, self._start = requests, time.monotonic()
        self.console.print(f"sending {requests:,} request(s) clearing {cells:,} cell(s)", markup=False)
        self._progress.update(self._task, total=requests)
        self._progress.start()

    def advance(self, action: Action, ok: bool, message: str = "") -> None:
        if ok:
            with self._lock:
                self._done += 1
            self._progress.advance(self._task)
        else:
            self._progress.console.print(
                f"[red]FAILED[/red] {escape(action.manifest)} {escape(action.stage)}: {escape(message)}"
            )

    def finish(self) -> None:
        self._progress.stop()
        elapsed = time.monotonic() - self._start
        self.console.print(f"{self._done:,}/{self._total:,} requests done ({elapsed:.2f}s)", markup=False)


def summary_table(result: ApplyResult) -> Table:
    table = Table(title="apply summary", show_header=True)
    table.add_column("outcome")
    table.add_column("requests", justify="right")
    table.add_column("cells", justify="right")
    rows = [
        ("[green]deleted[/green]", len(result.deleted), result.cells_deleted),
        ("[red]failed (still pending)[/red]", len(result.failed), sum(a.cells for a, _ in result.failed)),
        (
            "[magenta]in doubt, left to a person[/magenta]",
            len(result.skipped_in_doubt),
            sum(a.cells for a in result.skipped_in_doubt),
        ),
        (
            "[yellow]not sent (interrupted)[/yellow]",
            len(result.not_sent),
            sum(a.cells for a in result.not_sent),
        ),
    ]
    for label, n, cells in rows:
        if n or label.startswith("[green]"):
            table.add_row(label, f"{n:,}", f"{cells:,}")
    if result.paused or result.resumed:
        table.add_row("pipelines paused / started again", f"{len(result.paused)} / {len(result.resumed)}", "")
    if result.verify_failed:
        table.add_row("[red]verify: state remains[/red]", f"{len(result.verify_failed)}", "")
    return table


def reporter_for(consoles: Consoles) -> LineReporter:
    """A progress bar for a person at a terminal, plain lines in CI logs."""
    return LineReporter(consoles.err) if consoles.in_ci else BarReporter(consoles.err)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def done_line(result: ApplyResult) -> str:
    return (
        f"[green]Apply complete.[/green] {_plural(result.cells_deleted, 'cell')} cleared in "
        f"{_plural(len(result.deleted), 'request')}."
    )


def raise_for(result: ApplyResult) -> None:
    """The exit of an apply that did not finish: 130 if interrupted, else an error naming why."""
    import typer

    if result.ledger_error is not None:
        unsent = len(result.not_sent)
        raise ReconcilerError(
            f"{result.ledger_error}; the run stopped: {_plural(unsent, 'request')} not sent. The ledger "
            "ends at its last whole record; fix the cause, then apply again"
        )
    if result.interrupted:
        raise typer.Exit(130)
    if not result.ok:
        raise ReconcilerError(
            "apply did not finish: what failed stays pending; run `reconcile plan` to see it, "
            "then apply again"
        )
