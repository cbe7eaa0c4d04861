"""Starting paused pipelines again: one start at a time per org, 61121 waited out, RUNNING
confirmed, the lag reported (DESIGN "Apply" step 8, invariant 14).

EnOS starts one stream-processing job at a time per organization and refuses any other
start with 61121 (REFERENCE section 8). So the pipelines of an org are started one after
another, each confirmed RUNNING before the next; a 61121 is tried again with capped,
jittered backoff for up to `--start-timeout`, while other orgs go on. A pipeline that
cannot be started is named (the exit is non-zero), and since no `resume` record follows
its `pause`, the next apply starts it. 61128 (no processing resource) says what a person
must do. After each start, Get Pipeline Offset and Lag (where the gateway answers it)
gives the lag the summary reports once.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.errors import ApplyRefused, EnosError, LedgerWriteError, OrgBusyError, ReconcilerError
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.apply.pipelines import Pipelines
    from reconciler.apply.values import Resume

BACKOFF_CAP = 30.0
PAUSE_LIMIT = "EnOS keeps a job paused for at most 24 h"


class Starter:
    """Starts a list of pipelines; `run()` may be called again after a Ctrl-C cut it short,
    and goes on where it stopped."""

    def __init__(self, pipes: Pipelines, todo: Sequence[Resume]) -> None:
        self._pipes = pipes
        self._queues: dict[str, deque[Resume]] = {}
        for r in todo:
            self._queues.setdefault(r.ref.org_id, deque()).append(r)
        self._next_try: dict[str, float] = {}  # org -> when a 61121 may be tried again
        self._delay: dict[str, float] = {}
        self._busy_since: dict[str, float] = {}  # org -> its first 61121 since a start went through
        self._noted: set[PipelineRef] = set()
        self._left_paused: list[PipelineRef] = []
        self._sent: set[PipelineRef] = set()  # a start was sent (it may have landed)
        self._announced: dict[PipelineRef, Resume] = {}  # a `start` record is on the ledger
        self._jitter = random.Random()

    def run(self) -> None:
        """Until every queue is empty: start what is due, else sleep until something is."""
        clock = self._pipes.clock
        while any(self._queues.values()):
            now = clock()
            due = [org for org, q in sorted(self._queues.items()) if q and self._next_try.get(org, 0) <= now]
            if not due:
                wake = min(self._next_try[org] for org, q in self._queues.items() if q)
                self._pipes.sleep(max(0.0, wake - now))
                continue
            for org in due:
                self._step(org)
        self._advise()

    def _step(self, org: str) -> None:
        queue = self._queues[org]
        r = queue[0]
        done = {*self._pipes.result.resumed, *(ref for ref, _ in self._pipes.result.resume_failed)}
        if r.ref in done:  # a start Ctrl-C interrupted after it finished is not tried again
            queue.popleft()
            return
        outcome = self._attempt(r)
        if outcome == "retry":
            return
        queue.popleft()
        self._next_try.pop(org, None)
        if outcome == "done":  # the org was free: a later 61121 gets the whole timeout again
            self._delay.pop(org, None)
            self._busy_since.pop(org, None)

    def _attempt(self, r: Resume) -> str:
        """One start: "done" (started or failed for good), "retry" (61121, try again later),
        or "gave up" (61121 past --start-timeout)."""
        pipes, ref = self._pipes, r.ref
        try:
            # A pause still settling refuses a start (61165): wait for PAUSED first, unless
            # this run already waited the whole pause_timeout for it in vain, or already sent
            # a start (a Ctrl-C cut the wait for RUNNING short: it is RUNNING by our hand).
            waited = ref in pipes.never_paused or ref in self._sent
            if not waited and pipes.gateways.status(ref) == "RUNNING":
                pipes.wait_status(ref, "PAUSED")
            if not self._announce(r):
                return "done"
            self._sent.add(ref)
            pipes.gateways.client(ref.org_id).start(*ref, r.execution_mode, r.kafka_rate, r.resource_config)
        except OrgBusyError as exc:
            return "retry" if self._busy(r, exc) else "gave up"
        except (EnosError, ApplyRefused) as exc:
            # A lost answer, or a retry refused because the first start landed: read back.
            if self._status(ref) != "RUNNING":
                self._not_started(ref, str(exc))
                return "done"
        self._confirm(ref)
        return "done"

    def _announce(self, r: Resume) -> bool:
        """The `start` record, on the remote before the call (invariant 11). If it cannot be
        pushed, the start is not sent: the pipeline stays paused, named, and the next apply
        starts it."""
        if r.ref in self._announced:
            return True
        try:
            self._pipes.journal.start(r.ref)
        except LedgerWriteError as exc:  # no record of the start: it is not made
            self._pipes.result.ledger_error = self._pipes.result.ledger_error or exc
            self._not_started(r.ref, f"its start could not be recorded ({exc}); not sent")
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
        pipes, ref, org = self._pipes, r.ref, r.ref.org_id
        now = pipes.clock()
        first = self._busy_since.setdefault(org, now)
        deadline = first + pipes.options.start_timeout
        if now >= deadline:
            self._not_started(
                ref,
                f"EnOS refused the start with 61121 (another job of org {org} is being started) for "
                f"{_seconds(now - first)}; --start-timeout is {_seconds(pipes.options.start_timeout)}",
            )
            return False
        delay = self._delay.get(org, pipes.options.start_backoff)
        self._delay[org] = min(BACKOFF_CAP, delay * 2)
        wait = self._jitter.uniform(delay / 2, delay)
        self._next_try[org] = min(now + wait, deadline)
        if ref not in self._noted:
            self._noted.add(ref)
            pipes.reporter.note(
                f"{ref.pipeline_id}: another start is in progress in org {org} (61121); trying again "
                f"for up to {_seconds(pipes.options.start_timeout)}"
            )
        return True

    def _confirm(self, ref: PipelineRef) -> None:
        """Wait for RUNNING; then the `resume` record, and the lag where the gateway has it."""
        pipes = self._pipes
        try:
            running = pipes.wait_status(ref, "RUNNING")
        except EnosError:
            running = False
        if not running:
            status = self._status(ref)
            why = f"the start was accepted, but it reports {status} after {_seconds(pipes.options.pause_timeout)}"
            if status == "PAUSED" or status.startswith("unknown"):
                # The start did not take (or nobody can tell): no resume record, so the
                # next apply reads the status again and starts it if it is still PAUSED.
                self._not_started(ref, why)
                return
            self._record_resume(ref, f"found {status} after the start")
            self._fail(ref, f"{why}; it is not this run's to start any more: look at it in the EnOS console")
            return
        if self._record_resume(ref):
            pipes.result.resumed.append(ref)
            if ref in pipes.result.paused_at:
                pipes.result.paused_seconds[ref] = pipes.clock() - pipes.result.paused_at[ref]
            pipes.reporter.note(f"started {pipes.result.label(ref)} again: it reports RUNNING")
            self._lag(ref)

    def _record_resume(self, ref: PipelineRef, note: str | None = None) -> bool:
        pipes = self._pipes
        try:
            pipes.journal.resume(ref, note)
        except LedgerWriteError as exc:
            pipes.result.ledger_error = pipes.result.ledger_error or exc
            pipes.result.resumed.append(ref)
            self._fail(ref, f"started, but the resume record was not written: {exc}")
            return False
        return True

    def _lag(self, ref: PipelineRef) -> None:
        """Get Pipeline Offset and Lag, once: not every gateway answers it, and it is only news."""
        try:
            lag = self._pipes.gateways.client(ref.org_id).offset_lag(*ref)
        except EnosError:
            return
        if lag is not None:
            self._pipes.result.lags.append((ref, lag))

    def _not_started(self, ref: PipelineRef, why: str) -> None:
        """Left PAUSED: after a `start` record, a new `pause` record says it is still paused
        by us, so the next apply starts it (a bare `start` would leave it to a person)."""
        r = self._announced.get(ref)
        if r is not None:
            try:
                self._pipes.journal.reopen(r)
            except LedgerWriteError as exc:
                self._pipes.result.ledger_error = self._pipes.result.ledger_error or exc
        self._left_paused.append(ref)
        self._fail(ref, why)

    def _advise(self) -> None:
        """Once, after every start was tried: what happens to the pipelines left PAUSED."""
        if not self._left_paused:
            return
        names = ", ".join(f"{r.org_id}/{r.pipeline_id}" for r in self._left_paused)
        it = "it" if len(self._left_paused) == 1 else "them"
        self._pipes.reporter.note(
            f"left PAUSED: {names}. The next `reconcile apply` starts {it} (a pause record with no "
            f"resume). Start {it} in the EnOS console if that cannot wait: {PAUSE_LIMIT}."
        )
        self._left_paused = []

    def _fail(self, ref: PipelineRef, why: str) -> None:
        self._pipes.result.resume_failed.append((ref, why))
        self._pipes.reporter.note(f"could not start {self._pipes.result.label(ref)} again: {why}")

    def _status(self, ref: PipelineRef) -> str:
        try:
            return self._pipes.gateways.status(ref)
        except EnosError as exc:
            return f"unknown (List Pipelines failed: {exc})"


def _seconds(s: float) -> str:
    """600 -> 10 min, 2.0076 -> 2s: how long, as a person reads it."""
    if s >= 120:
        return f"{s / 60:.0f} min" if s % 60 < 1 else f"{s // 60:.0f} min {s % 60:.0f}s"
    return f"{s:.0f}s" if s >= 10 or s == int(s) else f"{s:.1f}s"
