"""Starting paused pipelines again: one start at a time per org, 61121 waited out, RUNNING
confirmed, the lag reported (DESIGN "Apply" step 8, invariant 14).

EnOS starts one stream-processing job at a time per organization and refuses any other
start with 61121 (REFERENCE section 8). So the pipelines of an org are started one after
another, each confirmed RUNNING before the next; a 61121 is tried again with capped,
jittered backoff for up to `--start-timeout`, while other orgs go on. A pipeline that
cannot be started is named (the exit is non-zero), and since no `resume` record follows
its `pause`, the next apply starts it. 61128 (no processing resource) says what a person
must do. Once the starts are done, Get Pipeline Offset and Lag (where the gateway answers
it) of each pipeline started gives the lag the summary reports (`lags()`): read then, not
between two starts, so that the next start of the org waits for nothing but the one before.

The rollout adds a pipeline as soon as its own requests are settled and calls `step()`
in a thread of its own (one at a time; `add` may come meanwhile); `run()` finishes the
queue (the end of a run). A pipeline the run's own pause saw PAUSED is started without a
status read first. Each start comes back
as a `StartReport`, which the run folds into its result.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from typing_extensions import assert_never

from reconciler import durations
from reconciler.errors import (
    ApplyRefused,
    EnosError,
    Hint,
    Hinted,
    LedgerWriteError,
    OrgBusyError,
    ReconcilerError,
)
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.apply.gateways import Gateways
    from reconciler.apply.journal import Journal
    from reconciler.apply.values import ApplyOptions, Reporter, Resume
    from reconciler.enos import OffsetLag

BACKOFF_CAP = 30.0
PAUSE_LIMIT = "EnOS keeps a job paused for at most 24 h"


class Started(Enum):
    """What starting a pipeline came to."""

    RUNNING = "running"  # started, confirmed, its `resume` recorded
    UNRECORDED = "unrecorded"  # started, but its `resume` record could not be written
    LEFT_PAUSED = "left paused"  # not started: the next apply starts it
    NOT_OURS = "not ours"  # accepted, then found neither PAUSED nor RUNNING: for a person


class _Attempt(Enum):
    DONE = "done"  # started, or failed for good
    RETRY = "retry"  # 61121: try again later
    GAVE_UP = "gave up"  # 61121 past --start-timeout


@dataclass(frozen=True)
class StartReport:
    ref: PipelineRef
    outcome: Started
    why: str = ""
    at: float = 0.0  # clock when it was confirmed RUNNING (or given up)
    ledger_error: LedgerWriteError | None = None


class Starter:
    """Starts pipelines; `run()` may be called again after a Ctrl-C cut it short, and goes
    on where it stopped."""

    def __init__(
        self,
        gateways: Gateways,
        journal: Journal,
        reporter: Reporter,
        options: ApplyOptions,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        never_paused: set[PipelineRef],
        seen_paused: set[PipelineRef] | None = None,
        may_start: Callable[[], str | None] = lambda: None,
        label: Callable[[PipelineRef], str] = lambda ref: ref.pipeline_id,
    ) -> None:
        self._gateways = gateways
        self._journal = journal
        self._reporter = reporter
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._never_paused = never_paused  # waited pause_timeout in vain: no second wait
        # confirmed PAUSED by this run's own pause: no status read before its start
        self._seen_paused = seen_paused if seen_paused is not None else set()
        self._may_start = may_start  # why not (this run lost its lease), or None
        self._label = label
        self._queues: dict[str, deque[Resume]] = {}
        self._next_try: dict[str, float] = {}  # org -> when a 61121 may be tried again
        self._delay: dict[str, float] = {}
        self._busy_since: dict[str, float] = {}  # org -> its first 61121 since a start went through
        self._noted: set[PipelineRef] = set()
        self._left_paused: list[PipelineRef] = []
        self._sent: set[PipelineRef] = set()  # a start was sent (it may have landed)
        self._announced: dict[PipelineRef, Resume] = {}  # a `start` record is on the ledger
        self._reports: list[StartReport] = []
        self._finished: set[PipelineRef] = set()  # reported, not yet taken off its queue (Ctrl-C)
        self._jitter = random.Random()
        self._started: list[PipelineRef] = []  # confirmed RUNNING: their lag is read at the end
        # `add`, `waiting` and `next_due` may be called while `step` runs in another thread
        # (the rollout starts pipelines off its own thread): the queues are read under it.
        self._lock = threading.Lock()

    def add(self, r: Resume) -> None:
        with self._lock:
            self._queues.setdefault(r.ref.org_id, deque()).append(r)

    def waiting(self) -> set[PipelineRef]:
        with self._lock:
            return {r.ref for q in self._queues.values() for r in q}

    def next_due(self) -> float | None:
        """When the next start may be tried (clock), or None with nothing queued."""
        with self._lock:
            return min((self._next_try.get(org, 0.0) for org, q in self._queues.items() if q), default=None)

    def step(self) -> list[StartReport]:
        """Try every start that is due; what finished. One caller at a time."""
        now = self._clock()
        with self._lock:
            due = sorted(o for o, q in self._queues.items() if q and self._next_try.get(o, 0) <= now)
        for org in due:
            self._step(org)
        out, self._reports = self._reports, []
        return out

    def run(self) -> list[StartReport]:
        """Until every queue is empty: start what is due, else sleep until something is."""
        out: list[StartReport] = []
        while (due := self.next_due()) is not None:
            now = self._clock()
            if due > now:
                self._sleep(due - now)
                continue
            out += self.step()
        self.advise()
        return out

    def _step(self, org: str) -> None:
        with self._lock:
            queue = self._queues[org]
            r = queue[0]
        outcome = _Attempt.DONE if r.ref in self._finished else self._attempt(r)
        match outcome:
            case _Attempt.RETRY:
                return
            case _Attempt.DONE:  # the org was free: a later 61121 gets the whole timeout again
                self._delay.pop(org, None)
                self._busy_since.pop(org, None)
            case _Attempt.GAVE_UP:
                pass
            case _:
                assert_never(outcome)
        with self._lock:
            queue.popleft()
            self._next_try.pop(org, None)
        self._finished.discard(r.ref)
        self._sent.discard(r.ref)  # paused again later, it is a new start
        self._announced.pop(r.ref, None)

    def _attempt(self, r: Resume) -> _Attempt:
        """One start; whether it is done, to be tried again, or given up."""
        ref = r.ref
        try:
            # A pause still settling refuses a start (61165): wait for PAUSED first, unless
            # this run already waited the whole pause_timeout for it in vain, or already sent
            # a start (a Ctrl-C cut the wait for RUNNING short: it is RUNNING by our hand).
            waited = ref in self._never_paused or ref in self._sent or ref in self._seen_paused
            if not waited and self._gateways.status(ref) == "RUNNING":
                self._wait(ref, "PAUSED")
            if ref not in self._sent and not self._announce(r):
                return _Attempt.DONE
            self._sent.add(ref)
            self._seen_paused.discard(ref)  # paused again later, it is confirmed again
            self._gateways.client(ref.org_id).start(*ref, r.execution_mode, r.kafka_rate, r.resource_config)
        except OrgBusyError as exc:
            return _Attempt.RETRY if self._busy(r, exc) else _Attempt.GAVE_UP
        except (EnosError, ApplyRefused) as exc:
            # A lost answer, or a retry refused because the first start landed: read back.
            if self._gateways.status_or_unknown(ref) != "RUNNING":
                self._not_started(ref, str(exc))
                return _Attempt.DONE
        self._confirm(ref)
        return _Attempt.DONE

    def _wait(self, ref: PipelineRef, wanted: str) -> bool:
        o = self._options
        reached, _ = self._gateways.wait_status(
            ref, wanted, timeout=o.pause_timeout, poll=o.poll_interval, clock=self._clock, sleep=self._sleep
        )
        return reached

    def _announce(self, r: Resume) -> bool:
        """The `start` record, on the remote before the call (invariant 11). If it cannot be
        pushed, or this run may have lost its lease on the ledger, the start is not sent:
        the pipeline stays paused, named, and the next apply starts it."""
        if r.ref in self._announced:
            return True
        why = self._may_start()
        if why is not None:
            self._not_started(r.ref, f"not started: {why}; the apply that holds the ledger starts it")
            return False
        try:
            self._journal.start(r.ref)
        except LedgerWriteError as exc:  # no record of the start: it is not made
            self._not_started(r.ref, f"its start could not be recorded ({exc}); not sent", exc)
            return False
        except ReconcilerError as exc:
            self._announced[r.ref] = r
            self._not_started(r.ref, f"its start could not be recorded on the remote first ({exc}); not sent")
            return False
        self._announced[r.ref] = r
        return True

    def _busy(self, r: Resume, exc: OrgBusyError) -> bool:
        """61121: whether to try again: until --start-timeout has passed since the org's first
        61121 (the pipelines after one that gave up get one try each, not a timeout each)."""
        ref, org, timeout = r.ref, r.ref.org_id, self._options.start_timeout
        now = self._clock()
        first = self._busy_since.setdefault(org, now)
        deadline = first + timeout
        if now >= deadline:
            self._not_started(
                ref,
                Hinted(
                    f"EnOS refused the start with 61121 (another job of org {org} is being started) for "
                    f"{durations.words(now - first)}",
                    Hint.START_TIMEOUT,
                    durations.words(timeout),
                ),
            )
            return False
        delay = self._delay.get(org, self._options.start_backoff)
        self._delay[org] = min(BACKOFF_CAP, delay * 2)
        wait = self._jitter.uniform(delay / 2, delay)
        self._next_try[org] = min(now + wait, deadline)
        if ref not in self._noted:
            self._noted.add(ref)
            self._reporter.note(
                f"{ref.pipeline_id}: another start is in progress in org {org} (61121); trying again "
                f"for up to {durations.words(timeout)}"
            )
        return True

    def _confirm(self, ref: PipelineRef) -> None:
        """Wait for RUNNING; then the `resume` record, and the lag where the gateway has it."""
        try:
            running = self._wait(ref, "RUNNING")
        except EnosError:
            running = False
        if not running:
            status = self._gateways.status_or_unknown(ref)
            why = (
                f"the start was accepted, but it reports {status} after "
                f"{durations.words(self._options.pause_timeout)}"
            )
            if status == "PAUSED" or status.startswith("unknown"):
                # The start did not take (or nobody can tell): no resume record, so the
                # next apply reads the status again and starts it if it is still PAUSED.
                self._not_started(ref, why)
                return
            self._record_resume(ref, f"found {status} after the start")
            self._report(
                ref,
                Started.NOT_OURS,
                f"{why}; it is not this run's to start any more: look at it in the EnOS console",
            )
            return
        error = self._record_resume(ref)
        if error is not None:
            self._report(
                ref, Started.UNRECORDED, f"started, but the resume record was not written: {error}", error
            )
            return
        self._reporter.note(f"started {self._label(ref)} again: it reports RUNNING")
        self._finished.add(ref)
        self._reports.append(StartReport(ref, Started.RUNNING, at=self._clock()))
        self._started.append(ref)

    def _record_resume(self, ref: PipelineRef, note: str | None = None) -> LedgerWriteError | None:
        try:
            self._journal.resume(ref, note)
        except LedgerWriteError as exc:
            return exc
        return None

    def lags(self) -> list[tuple[PipelineRef, OffsetLag]]:
        """The lag of each pipeline started since the last call, where the gateway has it."""
        refs, self._started = list(dict.fromkeys(self._started)), []
        return [(ref, lag) for ref in refs if (lag := self._lag(ref)) is not None]

    def _lag(self, ref: PipelineRef) -> OffsetLag | None:
        """Get Pipeline Offset and Lag, once: not every gateway answers it, and it is only news."""
        try:
            return self._gateways.client(ref.org_id).offset_lag(*ref)
        except EnosError:
            return None

    def _not_started(self, ref: PipelineRef, why: str, error: LedgerWriteError | None = None) -> None:
        """Left PAUSED: after a `start` record, a new `pause` record says it is still paused
        by us, so the next apply starts it (a bare `start` would leave it to a person)."""
        r = self._announced.get(ref)
        if r is not None:
            try:
                self._journal.reopen(r)
            except LedgerWriteError as exc:
                error = error or exc
        self._left_paused.append(ref)
        self._report(ref, Started.LEFT_PAUSED, why, error)

    def _report(
        self, ref: PipelineRef, outcome: Started, why: str, error: LedgerWriteError | None = None
    ) -> None:
        said = f"could not start {self._label(ref)} again: {why}"
        self._reporter.note(Hinted(said, why.hint, why.hint_value) if isinstance(why, Hinted) else said)
        self._finished.add(ref)
        self._reports.append(StartReport(ref, outcome, why, self._clock(), ledger_error=error))

    def advise(self) -> None:
        """Once, after every start was tried: what happens to the pipelines left PAUSED."""
        if not self._left_paused:
            return
        names = ", ".join(f"{r.org_id}/{r.pipeline_id}" for r in sorted(self._left_paused))
        it = "it" if len(self._left_paused) == 1 else "them"
        self._reporter.note(
            f"left PAUSED: {names}. The next `reconcile apply` starts {it} (a pause record with no "
            f"resume). Start {it} in the EnOS console if that cannot wait: {PAUSE_LIMIT}."
        )
        self._left_paused = []


def pending(reports: Sequence[StartReport]) -> list[PipelineRef]:
    """The pipelines these reports leave paused."""
    return [r.ref for r in reports if r.outcome is Started.LEFT_PAUSED]
