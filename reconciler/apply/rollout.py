"""The rollout: a schedule of pauses, each pipeline paused only for its own work (DESIGN
"Gentle on production (the rollout)"; invariants 4, 11, 14, 15 and 16).

`schedule()` turns the plan's requests into `Pause` values (plain data: a pipeline, the
requests it is sent while paused, an estimate), pipelines with fewer requests first.
`Rollout.run()` carries them out: at most `maxPaused` pipelines of ours paused at once,
each pause begun by `begin()` (the gate, its records on the remote, the lease checked,
the pause call, the canary, its requests queued), its requests sent `concurrency` at a
time across every pause under way, its in-doubt requests re-sent while still paused,
then started again at once. A pause that reaches `maxPause` is sent nothing new, started
once its requests in flight are answered, and its other requests wait for a later pause.
`finish()` ends every run however it stopped: requests in flight are waited for, and
every pipeline this run (or an earlier one) paused is started again.

Ctrl-C and SIGTERM reach the run as a flag (`interrupts`): the first one halts the run
(nothing new is sent, paused or begun) and wakes its thread, which raises KeyboardInterrupt
itself at the top of its loop, where it holds no lock; later ones are said, and `finish()`
goes on to its end.

The run's thread never waits on the network for long: requests and each stage's canary run
in the pool's workers, pauses (write-ahead push, pause call, wait for PAUSED; a pausing
pipeline counts in `maxPaused`) and starts (their status polls included) each in a thread
of their own, so that one pipeline's slow pause never delays another's start, and
the loop sleeps until one of them says it is done (no tick), so a pipeline is started the
moment its own requests are settled and the next one paused the moment a slot frees.
A canary runs in a worker too, one at a time in the order the pauses began; its reads
overlap other pipelines' deletes, and its own delete holds the run's other deletes until
its read-back agreed (`requests`, invariant 16).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum

from typing_extensions import assert_never

from reconciler.apply.canary import Verdict, run_canary
from reconciler.apply.gateways import Gateways
from reconciler.apply.interrupts import Interrupts
from reconciler.apply.journal import Journal
from reconciler.apply.pipelines import PauseCut, Pipelines
from reconciler.apply.pool import StoppablePool
from reconciler.apply.requests import Outcomes, Requests, first_error
from reconciler.apply.starts import Started, Starter, StartReport
from reconciler.apply.values import ApplyOptions, ApplyResult, Done, DoneKind, Pause, Reporter, Resume, Span
from reconciler.errors import ApplyRefused, LedgerMoved, ReconcilerError
from reconciler.plan import Action
from reconciler.plan.rollout import Costs, by_pipeline, chunks, stages
from reconciler.plan.values import PipelineRef
from reconciler.words import plural

# The run's thread sleeps until something happens (a request ends, a start is settled):
# this is only a safety net, never what moves a pause along.
SAFETY_WAKE = 5.0


def schedule(
    actions: Sequence[Action],
    to_pause: Sequence[Resume],
    left_paused: Sequence[Resume],
    costs: Costs,
    max_pause: float,
) -> list[Pause]:
    """The pauses, in the order they begin: pipelines an earlier run left paused first
    (they are paused already), then fewer requests first; a pipeline whose requests do
    not fit one `max_pause` gets its further pauses after every other pipeline's first."""
    ours = {r.ref: r for r in to_pause}
    left = {r.ref: r for r in left_paused}
    first: list[Pause] = []
    later: list[Pause] = []
    for ref, acts in by_pipeline(actions):
        resume = left.get(ref) or ours.get(ref)
        parts = chunks(acts, costs.per_pause(max_pause)) if resume is not None else [acts]
        for i, part in enumerate(parts):
            pause = Pause(
                ref, part, costs.seconds(len(part), stages(part)) or 0.0, resume, i == 0 and ref in left
            )
            (first if i == 0 else later).append(pause)
    first.sort(key=lambda p: not p.paused)  # stable: the order by size stays
    return first + later


class _Phase(Enum):
    SENDING = "sending"
    RESENDING = "re-sending in doubt"
    VERIFYING = "verifying"
    STARTING = "starting"


@dataclass(eq=False)
class _Active:
    """A pause under way (the run's thread only)."""

    pause: Pause
    began: float
    order: int
    phase: _Phase = _Phase.SENDING
    futures: list[Future[Outcomes]] = field(default_factory=list)
    left: int = 0  # requests not yet answered or cancelled
    doubtful: list[Action] = field(default_factory=list)
    cut: list[Action] = field(default_factory=list)  # taken back at maxPause: for a later pause
    cutting: bool = False
    told: bool = False
    sent_any: bool = False
    deleted: list[Action] = field(default_factory=list)  # cleared in this pause (read back with --verify)


class _Began(Enum):
    PAUSED = "paused"  # (or not ours, or paused already): its requests go
    NOT_PAUSED = "not paused"  # refused, or never PAUSED: its requests stay pending
    NOT_BEGUN = "not begun"  # the run stopped before its pause call
    CUT = "cut"  # the run stopped while its pause settled: started again


@dataclass(frozen=True)
class _Begun:
    """What the pause thread did with one pause."""

    pause: Pause
    began: float
    outcome: _Began
    why: str = ""


class Rollout:
    """One apply's pauses, requests and starts; `result` is written by this thread only."""

    def __init__(
        self,
        gateways: Gateways,
        journal: Journal,
        reporter: Reporter,
        options: ApplyOptions,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        now: Callable[[], float],
        stop: threading.Event | None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.reporter = reporter
        self.interrupts = interrupts or Interrupts(reporter.note)
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.result = ApplyResult(max_pause=options.max_pause)
        self.halt = threading.Event()  # Ctrl-C, a failed append, the canary: nothing more is sent
        self.lease = stop or threading.Event()  # set when this run's lease may be lost
        self.journal = journal
        self.pipelines = Pipelines(
            gateways, journal, reporter, options, self.result, sleep=sleep, clock=clock, now=now
        )
        self.requests = Requests(gateways, journal, self.pipelines, reporter, options, self.stopped)
        self.wake = threading.Event()  # something happened that the run's thread must see
        self.pool: StoppablePool[Outcomes] = StoppablePool(
            options.concurrency,
            reporter,
            self.halt,
            stopped=self.lease.is_set,
            done=self.wake.set,
            interrupts=self.interrupts,
        )
        self.interrupts.on_stop(self.wake.set)  # after the pool's halt: the loop then sees both
        self.starter = Starter(
            gateways,
            journal,
            reporter,
            options,
            clock=clock,
            sleep=sleep,
            never_paused=self.pipelines.never_paused,
            seen_paused=self.pipelines.seen_paused,
            may_start=self._may_start,
            label=self.result.label,
        )
        # Starts run in a thread of their own (one `step` at a time), so that a start's
        # status polls never hold up another pipeline's pause, requests or start.
        self._starting: threading.Thread | None = None
        self._start_reports: list[StartReport] = []
        self._start_error: BaseException | None = None
        # Pauses are begun in a thread of their own too (one batch at a time): a slow push,
        # pause call or wait for PAUSED never holds up another pipeline's start.
        self._pausing: threading.Thread | None = None
        self._pausing_batch: list[Pause] = []
        self._begun: list[_Begun] = []
        self._pause_error: BaseException | None = None
        self._verdicts: dict[Action, Verdict] = {}  # a canary's verdict, from its worker
        self._canaries_waiting: list[
            tuple[tuple[int, int], int, _Active, tuple[str, str, str], list[Action]]
        ] = []
        self._canary_seq = itertools.count()
        self._canary_out = False  # a canary is in the pool
        self.waiting: deque[Pause] = deque()
        self.active: list[_Active] = []
        self.checked: set[tuple[str, str, str]] = set()  # stages whose canary agreed
        self.handed: set[Action] = set()  # given to the pool or a canary since last announced
        self.start_pending: dict[PipelineRef, tuple[Resume, float, float | None]] = {}
        self._order = 0
        self._cuts: dict[PipelineRef, int] = {}  # pauses of a pipeline cut at maxPause so far

    def stopped(self) -> bool:
        return self.halt.is_set() or self.interrupts.heard or self.lease.is_set()

    def _may_start(self) -> str | None:
        if self.lease.is_set():
            return "this run may have lost its lease on the ledger"
        return None

    # --- the loop ---

    def run(self, pauses: Sequence[Pause], idle: Sequence[Resume]) -> None:
        """Carry out the schedule; `idle`: pipelines an earlier run left paused with nothing
        left to send, started at once."""
        started = self.clock()
        for r in idle:
            self._start(r, started, None)
        if idle and not pauses:  # the run's compare-and-swap comes before any start
            self.journal.push("reconcile: starting pipelines an earlier run left paused")
        self.waiting.extend(pauses)
        if pauses and not self.options.canary:
            self.result.canary_off = True
            self.reporter.note("canary off: no stage's first request is read back before the others are sent")
        self.reporter.start(
            sum(len(p.actions) for p in pauses), sum(a.cells for p in pauses for a in p.actions)
        )
        while self.waiting or self.active or self.start_pending or self._pausing is not None:
            self.wake.clear()  # what happens from here on wakes the wait below
            self._collect()
            self.interrupts.check()  # a Ctrl-C or SIGTERM is raised here, holding nothing
            if self.stopped():
                break
            self._step_pauses()
            self._begin_what_fits()
            self._step_starts()
            self._cut_long_pauses()
            for a in list(self.active):
                self._advance(a)
            self._idle()
        self.interrupts.check()  # one that came as the last pause was settled
        self.reporter.finish()
        if self.options.verify and not self.result.verify_failed and self.result.deleted:
            self.reporter.note(
                f"verified: no state left in the {plural(self.result.cells_deleted, 'cell')} cleared"
            )

    def _collect(self) -> None:
        self.pool.collect()
        if self.pool.error is not None:
            raise self.pool.error

    def _idle(self) -> None:
        """Until something happens: a request ends, a start is settled, a start is due."""
        if self.wake.is_set():
            return
        due = self.starter.next_due()
        now = self.clock()
        later = due - now if due is not None and due > now else None
        if self.pool.busy() or self._starting is not None or self._pausing is not None:
            self.wake.wait(min(later, SAFETY_WAKE) if later is not None else SAFETY_WAKE)
        elif later is not None and not self._can_begin():
            # Nothing runs and nothing may begin before this start is due: a Ctrl-C during
            # the sleep halts at once (no pause begins) and is raised once it ends, which is
            # when `finish()` would try this start anyway.
            self.sleep(later)

    # --- starts, off the run's thread ---

    def _step_starts(self) -> None:
        """Fold what the start thread settled; launch it again when a start is due."""
        t = self._starting
        if t is not None:
            if t.is_alive():
                return
            self._join_starts()
        due = self.starter.next_due()
        if due is not None and due <= self.clock():
            self._starting = threading.Thread(target=self._start_step, name="apply-start", daemon=True)
            self._starting.start()

    def _start_step(self) -> None:
        try:
            self._start_reports = self.starter.step()
        except BaseException as exc:  # a bug: raised in the run's thread
            self._start_error = exc
        finally:
            self.wake.set()

    def _join_starts(self) -> None:
        error = self._settle_starts()
        if error is not None:
            raise error

    def _settle_starts(self) -> BaseException | None:
        """Wait for the start thread and fold what it settled; what it raised, if anything."""
        t, self._starting = self._starting, None
        if t is not None:
            t.join()
        reports, self._start_reports = self._start_reports, []
        for report in reports:
            self._started(report)
        error, self._start_error = self._start_error, None
        return error

    def _can_begin(self) -> bool:
        return bool(self.waiting) and self._fits(self.waiting[0]) and not self.result.deferred

    # --- beginning a pause ---

    def _busy_refs(self) -> set[PipelineRef]:
        pausing = {p.ref for p in self._pausing_batch}
        return {a.pause.ref for a in self.active} | set(self.start_pending) | pausing

    def _fits(self, p: Pause) -> bool:
        """The budget: pipelines of ours paused at once, waiting for a start included."""
        if p.ref in self._busy_refs():
            return False  # its previous pause is still being settled or started
        if not p.ours or p.paused:
            return True
        pausing = {p.ref for p in self._pausing_batch if p.ours}  # a pausing pipeline counts
        ours = {a.pause.ref for a in self.active if a.pause.ours} | set(self.start_pending) | pausing
        return len(ours) < max(1, self.options.max_paused)

    def _begin_what_fits(self) -> None:
        """Launch the next pause that fits in its thread (one at a time): a slow push, pause
        call or wait for PAUSED never holds up another pipeline's requests or start."""
        if self._pausing is not None:
            return
        if self.waiting and not self.stopped() and not self.result.deferred and self._fits(self.waiting[0]):
            batch = [self.waiting.popleft()]
            if not batch[0].ours:  # pipelines a person paused: their records pushed at once
                while self.waiting and not self.waiting[0].ours and self._fits(self.waiting[0]):
                    batch.append(self.waiting.popleft())
            self.begin(batch)

    def begin(self, batch: list[Pause]) -> None:
        """Do a pause: the gate (here), then in a thread of its own its records (pushed), the
        lease, the pause call and the wait for PAUSED; `_step_pauses` then queues its requests
        (the canary first). A batch of pipelines a person paused shares one push. Until it is
        folded, the batch counts in the budget (`_fits`)."""
        gate = self.options.gate
        why = gate(sum(p.estimate for p in batch)) if gate is not None else None
        if why is not None:
            self._defer(batch, why)
            return
        self._pausing_batch = batch
        self._pausing = threading.Thread(
            target=self._pause_step, args=(batch,), name="apply-pause", daemon=True
        )
        self._pausing.start()

    def _pause_step(self, batch: list[Pause]) -> None:
        """In the pause thread: write-ahead, then each pause call; outcomes for the run's thread."""
        try:
            self._write_ahead(batch)
            for p in batch:
                self._begun.append(self._pause_one(p))
        except BaseException as exc:  # a lost push, or a bug: raised in the run's thread
            self._pause_error = exc
        finally:
            self.wake.set()

    def _pause_one(self, p: Pause) -> _Begun:
        if self.stopped():  # checked after the push, right before the pause call
            return _Begun(p, self.clock(), _Began.NOT_BEGUN, "the run was stopped")
        began = self.clock()
        if not p.ours or p.paused:
            return _Begun(p, began, _Began.PAUSED)
        assert p.resume is not None
        try:
            return _Begun(p, self.pipelines.pause(p.resume, stop=self.stopped), _Began.PAUSED)
        except ApplyRefused as exc:  # refused, or never PAUSED: the others go on
            return _Begun(p, began, _Began.NOT_PAUSED, str(exc))
        except PauseCut:  # the run stopped while it settled: the call went out, start it again
            return _Begun(p, began, _Began.CUT, "the run was stopped")
        except BaseException:  # raised in the run's thread; a call that went out is ours to start
            if p.ref in self.pipelines.called:
                self._begun.append(_Begun(p, began, _Began.CUT, "the run was stopped"))
            raise

    def _step_pauses(self) -> None:
        """Fold the pause thread's outcomes once it is done; raise what it raised."""
        if self._pausing is not None and not self._pausing.is_alive():
            error = self._settle_pauses(send=True)
            if error is not None:
                raise error

    def _settle_pauses(self, *, send: bool) -> BaseException | None:
        """Wait for the pause thread and fold its outcomes: a pipeline PAUSED gets its
        requests (`send`; at the end of a run, none); what the thread raised, if anything."""
        t, self._pausing = self._pausing, None
        if t is not None:
            t.join()
        self._pausing_batch = []
        begun, self._begun = self._begun, []
        for b in begun:
            self._fold_begun(b, send=send)
        error, self._pause_error = self._pause_error, None
        return error

    def _fold_begun(self, b: _Begun, *, send: bool) -> None:
        p = b.pause
        match b.outcome:
            case _Began.PAUSED:
                self._order += 1
                active = _Active(p, b.began, self._order)
                self.active.append(active)
                if send and not self.stopped():
                    self._send(active)
                else:  # the run stopped as it paused: it is sent nothing, and started again
                    unannounced = [x for x in p.actions if not self.journal.announced(x)]
                    self.result.not_sent.extend(unannounced)  # the announced: `finish` closes them
            case _Began.NOT_PAUSED:
                self._not_paused(p, b.began, b.why)
            case _Began.NOT_BEGUN:
                self._not_begun(p, b.why)
            case _Began.CUT:
                assert p.resume is not None
                if p.ref in self.pipelines.called:
                    self._start(p.resume, b.began, p.estimate)
                for x in p.actions:
                    self._fold_one(self.requests.close(x, f"not sent: {b.why}"), [])
            case _:
                assert_never(b.outcome)

    def _not_paused(self, p: Pause, began: float, why: str) -> None:
        """A pipeline that could not be paused gets nothing; its requests stay pending and
        the run goes on with the others (the exit names it)."""
        assert p.resume is not None
        if p.ref in self.pipelines.called:  # the call went out: ours to start again
            self._start(p.resume, began, p.estimate)
        self.result.not_paused.append((p.ref, why))
        self.reporter.note(f"could not pause {self.result.label(p.ref)}: {why}; its requests stay pending")
        for a in p.actions:
            self._fold_one(self.requests.close(a, f"not sent: {why}"), [])

    def _write_ahead(self, batch: list[Pause]) -> None:
        """Each pause's `pause` record, and with write-ahead its intents, before the call;
        pushed. The first push is the run's compare-and-swap: a lost one raises (nothing
        was done); a later one that fails closes what it announced and stops the run."""
        head = batch[0]
        if not self.options.write_ahead:
            if head.ours and not head.paused:
                assert head.resume is not None
                self.journal.pause(head.resume)
            return
        first = not self.journal.published
        for p in batch:
            pause = p.resume if p.ours and not p.paused else None
            if pause is not None:
                self.journal.pause(pause)
            for a in p.actions:
                self.journal.intent(a)
        what = (
            f"pausing {head.ref.pipeline_id}"
            if head.ours and not head.paused
            else (f"{plural(len(batch), 'pipeline')} paused already")
        )
        try:
            self.journal.push(
                f"reconcile: {what}: write-ahead of {plural(sum(len(p.actions) for p in batch), 'request')}"
            )
        except LedgerMoved:
            if first:
                raise
            self._unannounce(batch, "its records could not be pushed first")
            raise
        except ReconcilerError:
            if not first:
                self._unannounce(batch, "its records could not be pushed first")
            raise

    def _unannounce(self, batch: list[Pause], why: str) -> None:
        for p in batch:
            self._not_begun(p, why)

    def _not_begun(self, p: Pause, why: str) -> None:
        """A pause announced and not made: its intents closed (pending), its pause record too."""
        for a in p.actions:
            self._fold_one(self.requests.close(a, f"not sent: {why}"), [])
        if p.ours and not p.paused:  # its pause record is written: close it
            self.journal.resume(p.ref, f"not paused: {why}")

    def _defer(self, batch: list[Pause], why: str) -> None:
        """The gate said not now: this pause and every later one are not begun (no record);
        their requests stay pending. Pipelines an earlier run left paused are started."""
        self.result.deferred = why
        self.reporter.note(f"deferred: {why}")
        for p in [*batch, *self.waiting]:
            self.result.deferred_actions.extend(p.actions)
            if p.paused and p.resume is not None and p.ref not in self.start_pending:
                self._start(p.resume, self.clock(), None)
        self.waiting.clear()

    # --- sending ---

    def _send(self, a: _Active) -> None:
        actions = list(a.pause.actions)
        if not self.options.canary:
            self._submit(a, actions, lambda action: self._send_one(a, action))
            return
        for stage in dict.fromkeys((x.org_id, x.pipeline_id, x.stage) for x in actions):
            same = [x for x in actions if (x.org_id, x.pipeline_id, x.stage) == stage]
            if stage in self.checked:
                self._submit(a, same, lambda action: self._send_one(a, action))
            else:
                self._want_canary(a, stage, same)

    def _want_canary(self, a: _Active, stage: tuple[str, str, str], same: list[Action]) -> None:
        """Canaries go one at a time, in the order their pauses began: the first pipeline
        paused is the first checked (their deletes cannot overlap anyway: each holds the
        run's other deletes until its read-back agreed). The stage counts as outstanding."""
        a.left += 1
        order = (0 if a.pause.ours else 1, a.order)
        heapq.heappush(self._canaries_waiting, (order, next(self._canary_seq), a, stage, same))
        self._next_canary()

    def _next_canary(self) -> None:
        while self._canaries_waiting and not self._canary_out:
            *_, a, stage, same = heapq.heappop(self._canaries_waiting)
            a.left -= 1
            if self.stopped() or a.cutting:
                self._take_back(a, same)
                continue
            self._canary(a, stage, same)

    def _drop_canaries(self) -> None:
        """The run ends: canaries still waiting their turn are taken back, never sent."""
        while self._canaries_waiting:
            *_, a, _stage, same = heapq.heappop(self._canaries_waiting)
            a.left -= 1
            self._take_back(a, same)

    def _send_one(self, a: _Active, action: Action) -> Outcomes:
        """In a worker: a pause that reached maxPause is sent nothing new (invariant 15)."""
        over = a.cutting or self.clock() - a.began >= self.options.max_pause
        if a.pause.ours and a.sent_any and over:  # one at least, so every pause makes progress
            return [self._postpone(action)]
        a.sent_any = True
        return self.requests.send_one(action)

    def _postpone(self, action: Action) -> Done:
        closed = self.requests.close(
            action, "not sent in this pause: it reached maxPause; sent in a later one"
        )
        return Done(DoneKind.POSTPONED, closed.action)

    def _submit(self, a: _Active, actions: Sequence[Action], work: Callable[[Action], Outcomes]) -> None:
        a.left += len(actions)
        self.handed.update(actions)
        priority = (0 if a.pause.ours else 1, a.order)
        a.futures += self.pool.submit(
            actions,
            work,
            lambda action: self._cancelled(a, action),
            lambda outs: self._answered(a, outs),
            priority=priority,
            failed=first_error,
        )

    def _canary(self, a: _Active, stage: tuple[str, str, str], same: list[Action]) -> None:
        """A stage's first request in a worker: read, send, read again (`run_canary`; its
        delete holds the run's other deletes until its read-back agreed). The stage's other
        requests are queued once it agreed (`_canaried`)."""
        first, rest = same[0], same[1:]
        following = rest[0] if rest else None

        def work(action: Action) -> Outcomes:
            a.sent_any = True
            verdict = run_canary(self.requests, action, following)
            self._verdicts[action] = verdict
            return verdict.outcomes

        a.left += 1
        self.handed.add(first)
        self._canary_out = True
        a.futures += self.pool.submit(
            [first],
            work,
            lambda action: self._canary_taken_back(a, [action, *rest]),
            lambda outs: self._canaried(a, stage, first, rest, outs),
            # ahead of the requests of its class (the others' order is (class, order >= 1)):
            # its delete holds every other one, so no request queued before it may delay it
            priority=(0 if a.pause.ours else 1, 0, a.order),
            failed=first_error,
        )

    def _canaried(
        self, a: _Active, stage: tuple[str, str, str], first: Action, rest: list[Action], outs: Outcomes
    ) -> None:
        """A canary's verdict: a lying gateway stops the run; a request that gave no verdict
        (refused, in doubt) makes the next one the canary; else the stage's rest is queued."""
        self._canary_out = False
        verdict = self._verdicts.pop(first)
        if verdict.checked:
            self.checked.add(stage)
            if not rest:  # no next request to read back: checked only for "kept"
                self.result.kept_only.append(stage)
        if verdict.stop is not None:
            self.result.canary = verdict.stop
            self.reporter.note(
                f"CANARY: {verdict.stop}. Nothing more is sent in this run, to any stage; "
                "paused pipelines are started again"
            )
            self.halt.set()
        if not rest:
            pass
        elif self.stopped():
            self._take_back(a, rest)
        elif stage not in self.checked:
            self._canary(a, stage, rest)
        else:
            self._next_canary()  # queued first: the next stage's reads overlap these deletes
            self._submit(a, rest, lambda action: self._send_one(a, action))
        self._answered(a, outs)
        self._next_canary()

    def _canary_taken_back(self, a: _Active, actions: list[Action]) -> None:
        self._canary_out = False
        self._take_back(a, actions, counted=1)
        self._next_canary()

    def _take_back(self, a: _Active, actions: list[Action], counted: int = 0) -> None:
        """A canary not begun (the run stopped, or its pause was cut at maxPause), or the rest
        of its stage once the run stopped: each comes to what any request taken back comes
        to. `counted`: how many of them `a.left` counts already (queued)."""
        a.left += len(actions) - counted
        for action in actions:
            self._cancelled(a, action)

    def _answered(self, a: _Active, outs: Outcomes) -> None:
        a.left -= 1
        self._fold(a, outs)

    def _cancelled(self, a: _Active, action: Action) -> None:
        a.left -= 1
        if a.cutting:
            self.requests.close(
                action, "not sent in this pause: it reached maxPause; it goes in a later pause"
            )
            a.cut.append(action)
            self.handed.discard(action)
            return
        if a.phase is _Phase.RESENDING:  # not re-sent: still in doubt
            self.result.in_doubt.append((action, "no answer recorded"))
            return
        if a.phase is _Phase.VERIFYING:
            return  # not read back: nothing to record
        self._fold_one(self.requests.close(action, "not sent: the run was stopped"), a.doubtful)

    def _fold(self, a: _Active, outs: Outcomes) -> None:
        for d in outs:
            if d.kind is DoneKind.DELETED:
                a.deleted.append(d.action)
            elif d.kind is DoneKind.POSTPONED:
                a.cut.append(d.action)
                self.handed.discard(d.action)
            self._fold_one(d, a.doubtful)

    def _fold_one(self, d: Done, doubtful: list[Action]) -> None:
        Requests.fold(self.result, d, doubtful)

    # --- settling a pause, then starting its pipeline ---

    def _advance(self, a: _Active) -> None:
        if a.left > 0 or self.stopped():
            return
        self.wake.set()  # a step taken: the loop looks again at once, not at the next event
        match a.phase:
            case _Phase.SENDING:
                a.phase = _Phase.RESENDING
                self._resend(a)
            case _Phase.RESENDING:
                a.phase = _Phase.VERIFYING
                self.result.in_doubt.extend((x, "no answer recorded") for x in a.doubtful)
                a.doubtful = []
                if self.options.verify:
                    self._submit(a, a.deleted, self.requests.verify_one)
            case _Phase.VERIFYING:
                a.phase = _Phase.STARTING
                self._done(a)
            case _Phase.STARTING:
                pass
            case _:
                assert_never(a.phase)

    def _resend(self, a: _Active) -> None:
        """Re-send, while the pipeline is still paused, what ended in doubt (DESIGN step 5)."""
        todo, a.doubtful = a.doubtful, []
        if not todo:
            return
        ref = a.pause.ref
        if self.pipelines.stopped(ref) is None:
            self.pipelines.still_paused(ref)
        if self.pipelines.stopped(ref) is not None:
            self.result.in_doubt.extend((x, "no answer recorded") for x in todo)
            return
        self.reporter.note(f"re-sending {plural(len(todo), 'request')} that ended in doubt")
        self._submit(a, todo, self.requests.resend_one)

    def _done(self, a: _Active) -> None:
        """Its requests are answered: start it again now (ours), and queue what a cut at
        maxPause took back for a later pause."""
        self.active.remove(a)
        p = a.pause
        if a.cut:
            self.waiting.append(Pause(p.ref, tuple(a.cut), p.estimate, p.resume))
        if p.ours and self.pipelines.stopped(p.ref) is None:
            assert p.resume is not None
            self._start(p.resume, a.began, p.estimate)
        elif p.ours:  # started by someone else mid-run: not ours to start, nor to time
            self.result.spans.append(Span(p.ref, self.clock() - a.began, p.estimate))

    def _start(self, r: Resume, began: float, estimate: float | None) -> None:
        self.start_pending[r.ref] = (r, began, estimate)
        self.starter.add(r)

    def _started(self, report: StartReport) -> None:
        """A start's outcome into the result, with how long the pipeline stayed paused."""
        ref, result = report.ref, self.result
        pending = self.start_pending.pop(ref, None)
        if pending is not None and pending[2] is not None:
            result.spans.append(Span(ref, report.at - pending[1], pending[2]))
        if report.ledger_error is not None:
            result.ledger_error = result.ledger_error or report.ledger_error
        match report.outcome:
            case Started.RUNNING:
                result.started(ref)
                result.started_at(ref, report.at)
            case Started.UNRECORDED:
                result.started(ref)
                result.resume_failed.append((ref, report.why))
            case Started.LEFT_PAUSED | Started.NOT_OURS:
                if ref in result.resumed:  # started after an earlier pause, left paused after this one
                    result.resumed.remove(ref)
                result.resume_failed.append((ref, report.why))
            case _:
                assert_never(report.outcome)

    def _cut_long_pauses(self) -> None:
        """maxPause reached: send it nothing new; it is started once what is in flight is
        answered, and paused again later for the rest (invariant 15)."""
        limit = self.options.max_pause
        now = self.clock()
        for a in self.active:
            if a.pause.ours and a.phase is _Phase.SENDING and not a.cutting and now - a.began >= limit:
                a.cutting = True
                self.pool.cancel(a.futures)
            if a.cutting and a.cut and not a.told:
                a.told = True
                ref = a.pause.ref
                self._cuts[ref] = n = self._cuts.get(ref, 0) + 1
                if n == 1:
                    self.reporter.note(
                        f"{self.result.label(ref)} has been paused for maxPause: starting it again "
                        "once its requests in flight are answered; the rest wait for a later pause"
                    )
                else:  # said once in full: each later split briefly
                    self.reporter.note(
                        f"{ref.pipeline_id}: pause {n} reached maxPause too; the rest in pause {n + 1}"
                    )

    # --- the end of every run ---

    def finish(self) -> None:
        """However the run stopped: wait for what is in flight, close what was announced and
        not sent, then start again every pipeline paused by us; neither is cut short by
        another Ctrl-C or SIGTERM."""
        if self.interrupts.shielded(self.pool.stop_and_wait, self.pool.in_flight_note):
            self.result.interrupted = True
        self.pool.close()
        self._drop_canaries()
        # A pause under way in its thread is settled first (its wait for PAUSED stops with
        # the run): a pipeline it paused is started again below, its requests not sent.
        pause_error: list[BaseException | None] = [None]

        def settle_pauses() -> None:
            pause_error[0] = self._settle_pauses(send=False)

        if self.interrupts.shielded(settle_pauses, lambda: "still pausing a pipeline; press Ctrl-C later"):
            self.result.interrupted = True
        # A start under way in its thread is settled first: two steppers would take the same
        # queue head, starting one pipeline twice and popping the next one unstarted.
        if self.interrupts.shielded(
            self._join_starts, lambda: "still starting a pipeline again; press Ctrl-C later"
        ):
            self.result.interrupted = True
        for action in [x for x in self.journal.intents if x not in self.handed]:
            self._fold_one(self.requests.close(action, "not sent: the run stopped before sending it"), [])
        for a in self.active:
            self.result.in_doubt.extend((x, "no answer recorded") for x in a.doubtful)
            a.doubtful = []
            self.result.not_sent.extend(a.cut)  # taken back at maxPause: no later pause now
            if (
                a.pause.ours
                and a.pause.ref not in self.start_pending
                and self.pipelines.stopped(a.pause.ref) is None
            ):
                assert a.pause.resume is not None
                self._start(a.pause.resume, a.began, a.pause.estimate)
        for p in self.waiting:
            self.result.not_sent.extend(p.actions)  # never announced: pending
            if p.paused and p.resume is not None and p.ref not in self.start_pending:
                self._start(p.resume, self.clock(), None)
        self.waiting.clear()
        self.active.clear()
        self.result.refusals = self.requests.refusals.all
        self.result.stopped_pipelines = self.pipelines.stopped_pipelines()
        if self.interrupts.shielded(
            self._start_all, lambda: "still starting paused pipelines again; press Ctrl-C later"
        ):
            self.result.interrupted = True
        if pause_error[0] is not None:  # raised once every pipeline paused is started again
            raise pause_error[0]

    def _start_all(self) -> None:
        """Every start left, in this thread once the start thread is done: one `step` at a
        time, so that no pipeline is started twice."""
        error = self._settle_starts()
        for report in self.starter.run():
            self._started(report)
        self.result.lags += self.starter.lags()
        if error is not None:
            raise error
