"""One run: pause, send, verify and start again, journalling every step (invariants 4, 7, 10)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from reconciler.apply.gateways import Gateways, status_of, writable
from reconciler.apply.values import ApplyOptions, ApplyResult, Outcome, Reporter, Resume
from reconciler.errors import (
    ApplyRefused,
    EnosError,
    LedgerWriteError,
    NotPausedError,
    TooManyPointsError,
)
from reconciler.ledger import LedgerWriter, Record
from reconciler.plan import Action
from reconciler.plan.values import PendingResume, PipelineRef
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.enos import Pipeline

_NOT_PAUSED_RETRIES = 3


@dataclass
class Run:
    """The collaborators of one apply, and what it has done so far."""

    gateways: Gateways
    writer: LedgerWriter
    reporter: Reporter
    options: ApplyOptions
    result: ApplyResult
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    now: Callable[[], float]
    stopped: dict[PipelineRef, str] = field(default_factory=dict)
    never_paused: set[PipelineRef] = field(default_factory=set)  # waited pause_timeout in vain
    intents: dict[Action, list[Record]] = field(default_factory=dict)
    doubtful: list[Action] = field(default_factory=list)
    announced: bool = False
    halt: threading.Event = field(default_factory=threading.Event)
    # Every request submitted to a pool, and what cancelling it means for that pool.
    futures: dict[Future[None], tuple[Action, Callable[[Action], None]]] = field(default_factory=dict)
    accounted: set[Future[None]] = field(default_factory=set)
    stop_noted: bool = False

    def record(self, kind: str, fields: dict[str, Any]) -> Record:
        return self.writer.append(kind, {**fields, "actor": self.options.actor})

    def record_intent(self, action: Action) -> None:
        """One `intent` per manifest the request serves (a shared physical cell is sent once)."""
        self.intents[action] = [self.record("intent", f) for f in action.ledger_fields()]

    def record_outcome(self, kind: str, action: Action, code: int | None = None, message: str = "") -> None:
        """`delete` or `failed` for a request, per manifest it serves: one that is exactly its
        intent's refers to it (ledger format v2, no repeated ID lists); a split half lists
        its own cells."""
        actor = {"actor": self.options.actor}
        intents = self.intents.get(action)
        if intents is None:
            extra = {"code": code, "message": message} if kind == "failed" else {}
            for fields in action.ledger_fields():
                self.record(kind, {**fields, **extra})
            return
        for intent in intents:
            if kind == "delete":
                self.writer.append_delete(intent, actor)
            else:
                self.writer.append_failed(intent, code=code, message=message, fields=actor)

    def write_ahead(
        self, pauses: Sequence[Resume], actions: Sequence[Action], publish: Callable[[str], None] | None
    ) -> None:
        """Every pause and intent recorded (and, with the ledger in git, pushed) before any call."""
        for r in pauses:
            self._record_pause(r)
        for a in actions:
            self.record_intent(a)
        self.announced = True
        if publish is not None:
            publish(
                f"reconcile: write-ahead of {plural(len(actions), 'request')}, {plural(len(pauses), 'pause')}"
            )

    def _record_pause(self, r: Resume) -> None:
        # Recorded before the call: a crash right after pausing must still leave a record
        # that makes the next apply start the pipeline again.
        self.record(
            "pause",
            {
                "orgId": r.ref.org_id,
                "pipelineId": r.ref.pipeline_id,
                "executionMode": r.execution_mode,
                "kafkaRate": r.kafka_rate,
            },
        )

    # --- pause ---

    def pause(self, r: Resume) -> None:
        ref = r.ref
        self.reporter.note(f"pausing {ref.pipeline_id}")
        if not self.announced:
            self._record_pause(r)
        client = self.gateways.client(ref.org_id)
        try:
            client.pause(*ref)
        except EnosError as exc:
            # The answer may be lost, or a retry refused with 61152 after the first pause
            # landed: the status read back decides (DESIGN "Apply" step 5).
            status = self.gateways.status(ref)
            if status != "PAUSED" and exc.definite and status == "RUNNING":
                self.record("resume", {**_pipe(ref), "note": f"pause refused: {exc}"})
                raise ApplyRefused(f"could not pause {ref.pipeline_id}: {exc}; nothing was sent") from exc
            self.reporter.note(f"pause of {ref.pipeline_id} answered {exc}; reading its status back")
        self.result.paused.append(ref)  # from here on it is started again, whatever happens
        self._wait_status(ref, "PAUSED")

    def _wait_status(self, ref: PipelineRef, wanted: str) -> bool:
        deadline = self.clock() + self.options.pause_timeout
        while True:
            status = self.gateways.status(ref)
            if status == wanted:
                return True
            if self.clock() >= deadline:
                if wanted == "PAUSED":
                    self.never_paused.add(ref)
                    raise ApplyRefused(
                        f"{ref.pipeline_id} did not reach PAUSED within {self.options.pause_timeout:g}s "
                        f"(it is {status}); nothing was sent to it"
                    )
                return False
            self.sleep(self.options.poll_interval)

    # --- left-over pauses ---

    def leftover_resumes(
        self, leftover: Mapping[PipelineRef, PendingResume], statuses: dict[PipelineRef, Pipeline]
    ) -> list[Resume]:
        """Pipelines an interrupted run paused: started again once this run's deletes are done."""
        out: list[Resume] = []
        for ref, pending in sorted(leftover.items()):
            status = status_of(statuses, ref)
            if status == "RUNNING" and self._pause_may_land(ref, pending):
                status = "PAUSED"
            if status != "PAUSED":
                self.reporter.note(
                    f"{ref.pipeline_id} was left paused by an earlier run but is {status} now; "
                    "recording it as resumed without starting it"
                )
                self.record("resume", {**_pipe(ref), "note": f"found {status}"})
                continue
            mode, rate = pending.execution_mode, pending.kafka_rate
            if mode is None or rate is None:
                self.result.resume_failed.append((ref, "its pause record has no executionMode/kafkaRate"))
                continue
            out.append(Resume(ref, mode, rate))
        return out

    def _pause_may_land(self, ref: PipelineRef, pending: PendingResume) -> bool:
        """A pause sent by a run that was killed may still be settling: look again before closing.

        Only a pause recorded less than `pause_timeout` ago can still land (the record is
        written just before the call); it is polled for what is left of that time, at most
        ten polls, before it is closed as found RUNNING.
        """
        left = self.options.pause_timeout - (self.now() - _epoch(pending.paused_at))
        if left <= 0:
            return False
        self.reporter.note(
            f"{ref.pipeline_id} is RUNNING; checking whether an earlier pause is still landing"
        )
        deadline = self.clock() + min(left, 10 * self.options.poll_interval)
        while self.clock() < deadline:
            self.sleep(self.options.poll_interval)
            if self.gateways.status(ref) == "PAUSED":
                return True
        return False

    # --- deletes ---

    def send_all(self, actions: list[Action]) -> None:
        if not actions:
            return
        self.reporter.start(len(actions), sum(a.cells for a in actions))
        self._run_pool(actions, self.send_one, lambda a: self._not_sent(a, "not sent: the run was stopped"))
        self.reporter.finish()

    def _run_pool(
        self, actions: Sequence[Action], work: Callable[[Action], None], cancelled: Callable[[Action], None]
    ) -> None:
        """Run `work` over `actions`; on Ctrl-C, SIGTERM or a ledger failure, send nothing more
        and wait for the requests in flight: they finish and are journalled. `cancelled` says
        what a request never started comes to (not sent, still in doubt, not verified)."""
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.concurrency), thread_name_prefix="apply")

        def guarded(a: Action) -> None:
            try:
                work(a)
            except BaseException:
                self.halt.set()  # a failed append (or a bug) stops the run: send nothing more
                raise

        # Every request is registered before any is handed to the pool, so a Ctrl-C that
        # lands anywhere from here on finds each one either in flight (waited for) or not
        # started (cancelled, accounted). One that lands earlier finds nothing started.
        futures: dict[Future[None], Action] = {Future(): a for a in actions}
        self.futures.update({f: (a, cancelled) for f, a in futures.items()})
        error: BaseException | None = None
        try:
            for f, a in futures.items():
                pool.submit(_run_into, f, guarded, a)
            pending = set(futures)
            # A timed wait, so Ctrl-C and a stopped run are heard within 0.2 s; not one per
            # finished request, which would re-register on every pending future each time.
            while pending and not self.halt.is_set():
                _done, pending = wait(pending, timeout=0.2)
        except KeyboardInterrupt as exc:
            error = exc
        stopping = self.halt.is_set() or error is not None
        if stopping and self._shielded(self.stop_and_wait, self._in_flight_note):
            error = error or KeyboardInterrupt()
        pool.shutdown(wait=False)
        failures = (f.exception() for f in futures if not f.cancelled())
        error = error or next((e for e in failures if e is not None), None)
        if error is not None:
            raise error

    def stop_and_wait(self) -> None:
        """Send nothing more: cancel what is queued, wait for what is in flight (DESIGN step 5:
        a pipeline is never started while requests to it are in flight)."""
        self.halt.set()
        for f in self.futures:
            f.cancel()
        for f, (a, cancelled) in self.futures.items():
            if f.cancelled() and f not in self.accounted:
                self.accounted.add(f)
                cancelled(a)
        running = sum(1 for f in self.futures if not f.done())
        if running and not self.stop_noted:
            self.stop_noted = True
            self.reporter.note(
                f"stopping: {plural(len(self.accounted), 'queued request')} not sent; waiting for {running} "
                "in flight to finish and be recorded"
            )
        while not all(f.done() for f in self.futures):
            wait(list(self.futures), timeout=0.2)  # a timed wait, so Ctrl-C is heard at once

    def _in_flight_note(self) -> str:
        running = sum(1 for f in self.futures if not f.done())
        return (
            f"waiting for {plural(running, 'request')} in flight to finish and be recorded; "
            "paused pipelines are started again after"
        )

    def _shielded(self, step: Callable[[], None], why: Callable[[], str]) -> bool:
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

    def _not_sent(self, action: Action, message: str) -> None:
        with self.result.lock:
            self.result.not_sent.append(action)
        if self.announced:  # its intent is on record: close it, the cells are pending again
            with contextlib.suppress(LedgerWriteError):  # the failing append already stopped the run
                self.record_outcome("failed", action, None, message)

    def send_one(self, action: Action) -> None:
        if self.halt.is_set():
            self._not_sent(action, "not sent: the run was stopped")
            return
        if action.pipeline in self.stopped:
            self._not_sent(action, f"not sent: {self.stopped[action.pipeline]}")
            return
        if not self.announced:
            try:
                self.record_intent(action)
            except LedgerWriteError:
                self._not_sent(action, "not sent: its intent could not be recorded")
                raise
        self.delete(action)

    def delete(self, action: Action) -> None:
        client = self.gateways.client(action.org_id)
        for attempt in range(_NOT_PAUSED_RETRIES + 1):
            try:
                client.delete_stage_state(
                    action.org_id,
                    action.pipeline_id,
                    action.stage,
                    action.asset_ids,
                    action.point_ids,
                    may_retry=lambda: self._still_paused(action.pipeline),
                )
                break
            except TooManyPointsError as exc:
                if action.cells <= 1:
                    self.refused(action, exc, "the gateway refuses even a single cell as too many points")
                    return
                # The halves are covered by the parent's intent (DESIGN: matching is by cells).
                for half in action.halves():
                    self.delete(half)
                return
            except NotPausedError as exc:
                if not self._still_paused(action.pipeline) or attempt == _NOT_PAUSED_RETRIES:
                    self.ended_in_doubt(action, str(exc))
                    return
                self.sleep(self.options.poll_interval * (attempt + 1))
            except EnosError as exc:
                if exc.definite:
                    self.refused(action, exc, str(exc))
                else:
                    self.ended_in_doubt(action, str(exc))
                return
        try:
            self.record_outcome("delete", action)
        except LedgerWriteError:
            # Cleared, but the ledger cannot say so: in doubt, for a person or the next run.
            with self.result.lock:
                self.result.in_doubt.append((action, "cleared, but its delete record was not written"))
            raise
        with self.result.lock:
            self.result.deleted.append(action)
        self.reporter.advance(action, Outcome.DONE)

    def _still_paused(self, ref: PipelineRef) -> bool:
        """After 61199: read the status; a pipeline no longer PAUSED gets nothing more this run."""
        if ref in self.stopped:
            return False
        try:
            status = self.gateways.status(ref)
        except EnosError as exc:  # unknown is not PAUSED: send nothing more, leave it in doubt
            status = f"unknown (List Pipelines failed: {exc})"
        if writable(status):
            return True
        with self.result.lock:
            if ref in self.stopped:
                return False
            why = f"{ref.pipeline_id} is {status} now (started outside reconcile?)"
            self.stopped[ref] = why
            self.result.stopped_pipelines.append((ref, why))
        self.reporter.note(f"{why}: no more requests go to it in this run")
        # Closing any pause of ours: the pipeline ran, so earlier in-doubt requests
        # must not be re-sent without a person (DESIGN "Applied ledger").
        self.record("resume", {**_pipe(ref), "note": f"found {status} during apply"})
        return False

    def refused(self, action: Action, exc: EnosError | None, message: str) -> None:
        """A definite refusal: recorded as `failed`, so its cells are pending again."""
        self.record_outcome("failed", action, exc.code if exc is not None else None, message)
        with self.result.lock:
            self.result.failed.append((action, message))
        self.reporter.advance(action, Outcome.FAILED, message)

    def ended_in_doubt(self, action: Action, message: str) -> None:
        with self.result.lock:
            self.doubtful.append(action)
        self.reporter.advance(action, Outcome.IN_DOUBT, message)

    def resend_doubtful(self) -> None:
        """Re-send, while the pipeline is still paused, the requests of this run that ended in
        doubt, so a person is only asked about what could not be settled (DESIGN step 5)."""
        todo, self.doubtful = self.doubtful, []
        for ref in sorted({a.pipeline for a in todo} - set(self.stopped)):
            self._still_paused(ref)
        self.doubtful = [a for a in todo if a.pipeline in self.stopped]
        resend = [a for a in todo if a.pipeline not in self.stopped]
        if resend:
            self.reporter.note(f"re-sending {plural(len(resend), 'request')} that ended in doubt")
            self._run_pool(resend, self.delete, self.doubtful.append)  # not re-sent: still in doubt

    def finish(self, resumes: Sequence[Resume], leftover: Iterable[PipelineRef]) -> None:
        """The end of every run, however it stopped: wait for what is in flight, then start
        again what was paused; neither is cut short by another Ctrl-C or SIGTERM."""
        if self._shielded(self.stop_and_wait, self._in_flight_note):
            self.result.interrupted = True
        self.close_unsent()
        self.settle()
        self.resume_all(resumes, leftover)

    def close_unsent(self) -> None:
        """Announced requests the run never got to (a pause refused, the run stopped before
        sending): a `failed` record each, so they are pending again and never in doubt."""
        if not self.announced:
            return
        submitted = {a for a, _ in self.futures.values()}
        for action in [a for a in self.intents if a not in submitted]:
            self._not_sent(action, "not sent: the run stopped before sending it")

    def settle(self) -> None:
        """What is still in doubt at the end is the result's, for the summary and a person."""
        with self.result.lock:
            self.result.in_doubt.extend((a, "no answer recorded") for a in self.doubtful)
            self.doubtful = []

    # --- verify ---

    def verify(self) -> None:
        """Read every deleted cell back with Get Stage State; no item may remain."""
        done = list(self.result.deleted)
        self.reporter.note("reading the cleared cells back with Get Stage State")
        self.reporter.start(len(done), sum(a.cells for a in done), verb="verify")
        self._run_pool(done, self._verify_one, lambda a: None)  # not read back: nothing to record
        self.reporter.finish()
        if not self.result.verify_failed:
            self.reporter.note(
                f"verified: no state left in the {plural(self.result.cells_deleted, 'cell')} cleared"
            )

    def _verify_one(self, a: Action) -> None:
        try:
            items = self.gateways.client(a.org_id).get_stage_state(
                a.org_id, a.pipeline_id, a.stage, a.asset_ids, a.point_ids
            )
        except EnosError as exc:
            with self.result.lock:
                self.result.verify_failed.append((a, -1))
            self.reporter.advance(a, Outcome.FAILED, f"could not read it back: {exc}")
            return
        assets, points = set(a.asset_ids), set(a.point_ids)
        left = sum(1 for i in items if i.get("assetId") in assets and i.get("pointId") in points)
        if left:
            with self.result.lock:
                self.result.verify_failed.append((a, left))
        self.reporter.advance(
            a,
            Outcome.FAILED if left else Outcome.DONE,
            f"{plural(left, 'cell')} still {'holds' if left == 1 else 'hold'} state" if left else "",
        )

    # --- resume ---

    def resume_all(self, resumes: Sequence[Resume], leftover: Iterable[PipelineRef]) -> None:
        """Start again every pipeline this run (or an interrupted one) paused: each is tried,
        through Ctrl-C, and each failure is reported by name."""
        paused = set(self.result.paused) | set(leftover)
        todo = [r for r in resumes if r.ref not in self.stopped and r.ref in paused]

        def resume_each() -> None:
            while todo:
                done = {*self.result.resumed, *(ref for ref, _ in self.result.resume_failed)}
                if todo[0].ref not in done:  # an interrupted resume is tried again, a finished one not
                    self.resume(todo[0])
                todo.pop(0)

        if self._shielded(resume_each, lambda: "still starting paused pipelines again; press Ctrl-C later"):
            self.result.interrupted = True

    def resume(self, r: Resume) -> None:
        ref = r.ref
        client = self.gateways.client(ref.org_id)
        try:
            # A pause still settling refuses a start (61165): wait for PAUSED first, unless
            # this run already waited the whole pause_timeout for it in vain.
            if ref not in self.never_paused and self.gateways.status(ref) == "RUNNING":
                self._wait_status(ref, "PAUSED")
            client.start(*ref, r.execution_mode, r.kafka_rate)
        except (EnosError, ApplyRefused) as exc:
            # A lost answer, or a retry refused because the first start landed: read back.
            try:
                running = self.gateways.status(ref) == "RUNNING"
            except EnosError:
                running = False
            if not running:
                self.result.resume_failed.append((ref, str(exc)))
                self.reporter.note(
                    f"could not start {ref.pipeline_id} again: {exc}. Start it in the EnOS console "
                    "(24 h pause limit)."
                )
                return
        try:
            self.record("resume", _pipe(ref))
        except LedgerWriteError as exc:
            self.result.ledger_error = self.result.ledger_error or exc
            self.result.resume_failed.append((ref, f"started, but the resume record was not written: {exc}"))
        self.result.resumed.append(ref)
        self.reporter.note(f"started {ref.pipeline_id} again")


def _epoch(at: str) -> float:
    """A ledger time (`2026-11-27T10:00:00.123Z`) in seconds; unreadable counts as just now."""
    try:
        return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return time.time()


def _pipe(ref: PipelineRef) -> dict[str, Any]:
    return {"orgId": ref.org_id, "pipelineId": ref.pipeline_id}


def _run_into(future: Future[None], work: Callable[[Action], None], action: Action) -> None:
    """`work(action)` on a pool thread, its outcome set on `future`; nothing if it was
    cancelled while queued (the run stopped before this request was sent)."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        work(action)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(None)
