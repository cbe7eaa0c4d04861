"""The stoppable pool: requests `--concurrency` at a time, stopped cleanly (DESIGN step 5).

On Ctrl-C, SIGTERM, a lost lease or a ledger append that failed, nothing more is sent:
what is queued is cancelled (each cancellation says what that request comes to), and
what is in flight is waited for, through further Ctrl-Cs, so that it is journalled and
no pipeline is started while a request to it is in flight. Workers return what their
request came to; the pool hands those outcomes to `collect` in the calling thread, once
each, so the run's result is only ever touched by one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

from reconciler.apply.values import Reporter
from reconciler.plan import Action
from reconciler.words import plural

T = TypeVar("T")


class _NotStarted(Exception):
    """A request whose worker began after the run was stopped: it sent nothing."""


def _unstarted(f: Future[Any]) -> bool:
    return f.cancelled() or (f.done() and isinstance(f.exception(), _NotStarted))


class StoppablePool(Generic[T]):
    """Every request submitted in a run, across the pools of its phases (send, re-send, verify)."""

    def __init__(self, concurrency: int, reporter: Reporter, halt: threading.Event) -> None:
        self.concurrency = max(1, concurrency)
        self.reporter = reporter
        self.halt = halt
        # Each future, with its request, what a cancellation means, and where its outcome goes.
        self._futures: dict[Future[T], tuple[Action, Callable[[Action], None], Callable[[T], None]]] = {}
        self._settled: set[Future[T]] = set()  # cancelled and accounted for, or outcome collected
        self._cancelled = 0
        self._stop_noted = False

    @property
    def submitted(self) -> set[Action]:
        return {a for a, _, _ in self._futures.values()}

    def run(
        self,
        actions: Sequence[Action],
        work: Callable[[Action], T],
        cancelled: Callable[[Action], None],
        collect: Callable[[T], None],
        *,
        failed: Callable[[T], BaseException | None] = lambda _: None,
    ) -> None:
        """Run `work` over `actions`; on a stop, send nothing more and wait for what is in
        flight. `failed` picks an error out of an outcome (a ledger append that failed):
        it stops the run, and is raised once the pool has stopped."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apply")
        # No request leaves before every one is registered: a Ctrl-C that comes meanwhile
        # must find each of them, to cancel it or wait for it.
        registered = threading.Event()

        def guarded(a: Action) -> T:
            registered.wait()
            if self.halt.is_set():
                raise _NotStarted  # stopped before it began: accounted for as cancelled
            try:
                done = work(a)
            except BaseException:
                self.halt.set()  # a bug stops the run: send nothing more
                raise
            if failed(done) is not None:
                self.halt.set()
            return done

        futures: list[Future[T]] = []
        error: BaseException | None = None
        try:
            for a in actions:
                f = pool.submit(guarded, a)
                self._futures[f] = (a, cancelled, collect)
                futures.append(f)
            registered.set()
            pending = set(futures)
            # A timed wait, so Ctrl-C and a stopped run are heard within 0.2 s; not one per
            # finished request, which would re-register on every pending future each time.
            while pending and not self.halt.is_set():
                _done, pending = wait(pending, timeout=0.2)
                self._collect()
        except KeyboardInterrupt as exc:
            error = exc
            self.halt.set()  # before the gate opens: what has not begun sends nothing
        finally:
            registered.set()  # after a stop, each request not yet begun raises _NotStarted
        stopping = self.halt.is_set() or error is not None
        if stopping and self.shielded(self.stop_and_wait, self.in_flight_note):
            error = error or KeyboardInterrupt()
        pool.shutdown(wait=False)
        self._collect()
        error = error or self._first_error(futures, failed)
        if error is not None:
            raise error

    def _first_error(
        self, futures: list[Future[T]], failed: Callable[[T], BaseException | None]
    ) -> BaseException | None:
        for f in futures:
            if _unstarted(f):
                continue
            raised = f.exception()
            if raised is not None:
                return raised
            found = failed(f.result())
            if found is not None:
                return found
        return None

    def _collect(self) -> None:
        """Hand every finished request's outcome to its phase, once, in this thread."""
        for f, (_, _, collect) in list(self._futures.items()):
            if f.done() and not _unstarted(f) and f not in self._settled and f.exception() is None:
                self._settled.add(f)
                collect(f.result())

    def stop_and_wait(self) -> None:
        """Send nothing more: cancel what is queued, wait for what is in flight (DESIGN step 5:
        a pipeline is never started while requests to it are in flight)."""
        self.halt.set()
        for f in self._futures:
            f.cancel()
        self._account_unstarted()
        running = self._running()
        if running and not self._stop_noted:
            self._stop_noted = True
            self.reporter.note(
                f"stopping: {plural(self._cancelled, 'queued request')} not sent; waiting for {running} "
                "in flight to finish and be recorded"
            )
        while self._running():
            wait(list(self._futures), timeout=0.2)  # a timed wait, so Ctrl-C is heard at once
            self._collect()
        self._collect()
        self._account_unstarted()

    def _account_unstarted(self) -> None:
        """Each request cancelled, or stopped before it began, says once what it comes to."""
        for f, (a, cancelled, _) in self._futures.items():
            if _unstarted(f) and f not in self._settled:
                self._settled.add(f)
                self._cancelled += 1
                cancelled(a)

    def _running(self) -> int:
        return sum(1 for f in self._futures if not f.done())

    def in_flight_note(self) -> str:
        return (
            f"waiting for {plural(self._running(), 'request')} in flight to finish and be recorded; "
            "paused pipelines are started again after"
        )

    def shielded(self, step: Callable[[], None], why: Callable[[], str]) -> bool:
        """Run `step` to its end through further Ctrl-Cs and SIGTERMs; whether one came.

        What runs here (waiting for requests in flight, starting pipelines again) must not
        be cut short: stopping halfway is what leaves a pipeline paused or started early.
        """
        interrupted = False
        while True:
            try:
                step()
                return interrupted
            except KeyboardInterrupt:
                interrupted = True
                self.reporter.note(why())
