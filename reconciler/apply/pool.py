"""The stoppable pool: requests `--concurrency` at a time across every pause of a run,
stopped cleanly (DESIGN step 5 and "Gentle on production").

Requests are queued with a priority (the pause they belong to, in the rollout's order), so
the requests of the pipeline paused first go first and the workers left over take the
next pause's: no worker idles while a paused pipeline has work, and a pipeline a person
paused never delays one of ours. `hold()` lets the requests in flight finish and starts
no new one until `release()` (the canary reads a stage alone).

On Ctrl-C, SIGTERM, a lost lease or a ledger append that failed, nothing more is sent:
what is queued is cancelled (each cancellation says what that request comes to), and
what is in flight is waited for, through further Ctrl-Cs, so that it is journalled and
no pipeline is started while a request to it is in flight. During a run, Ctrl-C and
SIGTERM come as a flag (`interrupts`), which `wait_all` reads between its waits and raises
as KeyboardInterrupt there, never inside a lock or a future's condition. Workers return
what their request came to; `collect()` hands those outcomes over in the calling thread,
once each, so the run's result is only ever touched by one thread; `done` is called after
each request ends (answered, failed or not begun), so that thread waits for events, not a
tick.
The pool keeps the requests ended since the last `collect()` apart, in the order they
were submitted: each wake costs what ended, not a look at every request ever submitted.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reconciler.apply.interrupts import Interrupts
from reconciler.apply.values import Reporter
from reconciler.plan import Action
from reconciler.words import plural

T = TypeVar("T")

Priority = tuple[int, ...]


class _NotStarted(Exception):
    """A request whose worker began after the run was stopped: it sent nothing."""


def _unstarted(f: Future[Any]) -> bool:
    return f.cancelled() or (f.done() and isinstance(f.exception(), _NotStarted))


@dataclass(frozen=True)
class _Job(Generic[T]):
    action: Action
    work: Callable[[Action], T]
    cancelled: Callable[[Action], None]
    collect: Callable[[T], None]
    failed: Callable[[T], BaseException | None]


class StoppablePool(Generic[T]):
    """Every request submitted in a run; `stopped()` (the run's halt, or its lease lost)
    is asked by each worker before it sends anything."""

    def __init__(
        self,
        concurrency: int,
        reporter: Reporter,
        halt: threading.Event,
        stopped: Callable[[], bool] | None = None,
        done: Callable[[], None] = lambda: None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.interrupts = interrupts or Interrupts(reporter.note)
        self._done = done  # told after each request ends: the run wakes on it, not on a tick
        self.reporter = reporter
        self.halt = halt
        self._stopped = stopped or halt.is_set
        self._futures: dict[Future[T], _Job[T]] = {}
        self._seqs: dict[Future[T], int] = {}  # submission order: outcomes are handed over in it
        self._undone: set[Future[T]] = set()  # neither ended nor cancelled
        self._ended: list[Future[T]] = []  # ended or cancelled since the last hand-over
        self._settled: set[Future[T]] = set()  # cancelled and accounted for, or outcome collected
        self._cancelled = 0
        self._stop_noted = False
        self._queue: list[tuple[Priority, int, Future[T]]] = []
        self._seq = itertools.count()
        # Taken with `with self._mutex` (the C lock's own __enter__ and __exit__), never
        # `with self._lock`: Condition.__enter__ is Python, and a Ctrl-C raised in the run's
        # thread just after it acquired would leave the lock held, every worker blocked on it
        # at the end of its request and the run waiting for them for ever. Found by
        # test_apply_invariants (an interrupt drawn at that moment: a 300 s timeout). A run
        # now hears Ctrl-C as a flag (`interrupts`); this still holds where one is raised.
        self._mutex = threading.RLock()
        self._lock = threading.Condition(self._mutex)  # waited on, and notified, holding _mutex
        self._held = False
        self._running_jobs = 0
        self._closed = False
        self._workers: list[threading.Thread] = []
        self.error: BaseException | None = None  # the first failure a worker met
        # The first Ctrl-C or SIGTERM: no worker begins another request, and the run's
        # thread wakes if it waits here (from the watcher thread: both only notify).
        self.interrupts.on_stop(self.halt.set)
        self.interrupts.on_stop(self.wake)

    def stopped(self) -> bool:
        # `heard` too: where no wakeup fd can be set, no watcher sets `halt` at the signal
        return self.halt.is_set() or self.interrupts.heard or self._stopped()

    @property
    def submitted(self) -> set[Action]:
        return {j.action for j in self._futures.values()}

    # --- submitting and collecting, in the run's thread ---

    def submit(
        self,
        actions: Iterable[Action],
        work: Callable[[Action], T],
        cancelled: Callable[[Action], None],
        collect: Callable[[T], None],
        *,
        priority: Priority = (0,),
        failed: Callable[[T], BaseException | None] = lambda _: None,
    ) -> list[Future[T]]:
        """Queue `work` over `actions`; each is registered before any worker can see it,
        so that a stop finds each one to cancel or wait for."""
        out: list[Future[T]] = []
        with self._mutex:
            for a in actions:
                f: Future[T] = Future()
                seq = next(self._seq)
                self._futures[f] = _Job(a, work, cancelled, collect, failed)
                self._seqs[f] = seq
                self._undone.add(f)
                heapq.heappush(self._queue, (priority, seq, f))
                out.append(f)
            self._grow()
            self._lock.notify_all()
        return out

    def run(
        self,
        actions: Sequence[Action],
        work: Callable[[Action], T],
        cancelled: Callable[[Action], None],
        collect: Callable[[T], None],
        *,
        failed: Callable[[T], BaseException | None] = lambda _: None,
    ) -> None:
        """Submit and wait for all of them (or a stop); raise what stopped the run."""
        futures = self.submit(actions, work, cancelled, collect, failed=failed)
        self.wait_all(futures)

    def wait_all(self, futures: Sequence[Future[T]]) -> None:
        try:
            while not self.stopped():
                self.interrupts.check()  # a Ctrl-C or SIGTERM is raised here, between waits
                with self._mutex:  # ended once its worker let it go, so that `collect` finds it
                    if not self._undone.intersection(futures):
                        break
                    # woken as one ends, or by a Ctrl-C (`wake`); at worst heard within 0.2 s
                    self._lock.wait(0.2)
                self.collect()
            self.interrupts.check()
        except KeyboardInterrupt:
            self.halt.set()
            self.interrupts.shielded(self.stop_and_wait, self.in_flight_note)
            raise
        if self.stopped() and self.interrupts.shielded(self.stop_and_wait, self.in_flight_note):
            raise KeyboardInterrupt
        self.collect()
        if self.error is not None:
            raise self.error

    def wake(self) -> None:
        """Wake the run's thread if it waits on the pool (a Ctrl-C came): from any thread
        but the one waiting."""
        with self._mutex:
            self._lock.notify_all()

    def busy(self) -> bool:
        with self._mutex:
            return bool(self._undone)

    def collect(self) -> None:
        """Hand every finished request's outcome to its collector, once, in this thread."""
        for f in self._take_ended(started=True):
            if f not in self._settled and f.exception() is None:
                self._settled.add(f)
                self._futures[f].collect(f.result())
        self._account_unstarted()

    def _take_ended(self, *, started: bool) -> list[Future[T]]:
        """The requests ended (`started`) or not begun since they were last taken, in the
        order they were submitted; the others stay for the other kind's taker."""
        with self._mutex:
            ended = [f for f in self._ended if f.done()]
            if not ended:
                return []
            taken = [f for f in ended if _unstarted(f) != started]
            self._ended = [f for f in self._ended if not f.done() or _unstarted(f) == started]
        return sorted(taken, key=self._seqs.__getitem__)

    def _ended_now(self, f: Future[T]) -> None:
        """`f` ended or was cancelled (under the lock): the next hand-over takes it."""
        if f in self._undone:
            self._undone.discard(f)
            self._ended.append(f)

    def cancel(self, futures: Iterable[Future[T]]) -> list[Action]:
        """Take back what has not begun (a pause cut at maxPause): each one's `cancelled`
        is told; the requests taken back."""
        out = []
        for f in futures:
            if f.cancel():
                with self._mutex:
                    self._ended_now(f)
                out.append(self._futures[f].action)
        self._account_unstarted()
        return out

    # --- holding: nothing new begins (the canary) ---

    def hold(self) -> None:
        """No new request begins; wait for those in flight."""
        with self._mutex:
            self._held = True
            while self._running_jobs:
                self._lock.wait(0.2)

    def release(self) -> None:
        with self._mutex:
            self._held = False
            self._lock.notify_all()

    # --- the workers ---

    def _grow(self) -> None:
        while len(self._workers) < min(self.concurrency, len(self._queue) + self._running_jobs):
            t = threading.Thread(target=self._work, name=f"apply-{len(self._workers)}", daemon=True)
            self._workers.append(t)
            t.start()

    def _next(self) -> Future[T] | None:
        """The most urgent request not cancelled, once nothing holds the pool; None: closed."""
        with self._mutex:
            while True:
                while not self._closed and (self._held or not self._queue):
                    self._lock.wait()
                if not self._queue:
                    return None
                f = heapq.heappop(self._queue)[2]
                if f.set_running_or_notify_cancel():
                    self._running_jobs += 1
                    return f

    def _work(self) -> None:
        while True:
            f = self._next()
            if f is None:
                return
            job = self._futures[f]
            try:
                if self.stopped():
                    f.set_exception(_NotStarted())
                    continue
                try:
                    done = job.work(job.action)
                except BaseException as exc:
                    self.halt.set()  # a bug stops the run: send nothing more
                    self.error = self.error or exc
                    f.set_exception(exc)
                    continue
                error = job.failed(done)
                if error is not None:
                    self.error = self.error or error
                    self.halt.set()
                f.set_result(done)
            finally:
                with self._mutex:
                    self._running_jobs -= 1
                    self._ended_now(f)
                    self._lock.notify_all()
                self._done()

    def close(self) -> None:
        """The workers end once the queue is empty (cancelled or done)."""
        with self._mutex:
            self._closed = True
            self._lock.notify_all()

    # --- stopping ---

    def stop_and_wait(self) -> None:
        """Send nothing more: cancel what is queued, wait for what is in flight (DESIGN step 5:
        a pipeline is never started while requests to it are in flight)."""
        self.halt.set()
        for f in self._futures:
            if f.cancel():
                with self._mutex:
                    self._ended_now(f)
        with self._mutex:
            self._lock.notify_all()
        self._account_unstarted()
        running = self._running()
        if running and not self._stop_noted:
            self._stop_noted = True
            self.reporter.note(
                f"stopping: {plural(self._cancelled, 'queued request')} not sent; waiting for {running} "
                "in flight to finish and be recorded"
            )
        while self._running():
            with self._mutex:  # not concurrent.futures.wait: it takes every future's lock in turn
                if self._undone:
                    self._lock.wait(0.2)  # woken as one ends; timed, so a raised Ctrl-C is heard
            self.collect()
        self.collect()

    def _account_unstarted(self) -> None:
        """Each request cancelled, or stopped before it began, says once what it comes to."""
        for f in self._take_ended(started=False):
            if f not in self._settled:
                self._settled.add(f)
                self._cancelled += 1
                job = self._futures[f]
                job.cancelled(job.action)

    def _running(self) -> int:
        with self._mutex:
            return len(self._undone)

    def in_flight_note(self) -> str:
        return (
            f"waiting for {plural(self._running(), 'request')} in flight to finish and be recorded; "
            "paused pipelines are started again after"
        )
