"""Requests in a run: send, split on 61105, hold a key refused for good, doubt, verify and
the canary (DESIGN "Apply" steps 5-7, "Gentle on production"; invariants 1, 4, 10, 16).

Each worker sends one request (and its halves) and returns what it came to, as `Done`
values; the run folds them into its result in its own thread (`fold`). A request's
records are written by its worker as soon as its answer is in: an `intent` before it
(unless its pause announced it ahead), a `delete` or `failed` after.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from typing_extensions import assert_never

from reconciler.apply.gateways import Gateways
from reconciler.apply.journal import Journal
from reconciler.apply.live import holding_cells
from reconciler.apply.pipelines import Pipelines
from reconciler.apply.refusals import Refusals, scope_of
from reconciler.apply.snapshot import Snapshot, SnapshotError
from reconciler.apply.values import ApplyOptions, ApplyResult, Done, DoneKind, Outcome, Reporter
from reconciler.errors import EnosError, LedgerWriteError, NotPausedError, TooManyPointsError
from reconciler.plan import Action
from reconciler.words import plural

_NOT_PAUSED_RETRIES = 3

Outcomes = list[Done]


def first_error(outcomes: Outcomes) -> LedgerWriteError | None:
    return next((d.error for d in outcomes if d.error is not None), None)


class CanaryGate:
    """Invariant 16: no delete is sent after a canary's until its read-back agreed.

    A canary's delete waits for the deletes in flight, and from then on, while it is out
    and being read back, no other delete begins (reads go on: they change nothing): a
    stage's canary is not kept waiting behind a stream of other stages' deletes. When it
    shows a lying gateway, `lied` says what it did, before any waiting delete is let go,
    and no delete is sent in this run any more.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sending = 0
        self._checking = False
        self._canary_waiting = 0  # canaries waiting for the deletes in flight
        self.lied: str | None = None

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Around one delete that is not a canary's (ask again whether to send it: it may
        have waited for a canary that caught a lie)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._checking and not self._canary_waiting)
            self._sending += 1
        try:
            yield
        finally:
            with self._cond:
                self._sending -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Around a canary's delete and its read-back: nothing else deletes meanwhile."""
        with self._cond:
            self._canary_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._checking and not self._sending)
            finally:
                self._canary_waiting -= 1
            self._checking = True
        try:
            yield
        finally:
            with self._cond:
                self._checking = False
                self._cond.notify_all()


class Requests:
    """Send the plan's requests and account for each."""

    def __init__(
        self,
        gateways: Gateways,
        journal: Journal,
        pipelines: Pipelines,
        reporter: Reporter,
        options: ApplyOptions,
        stopped: Callable[[], bool],
    ) -> None:
        self.gateways = gateways
        self.journal = journal
        self.pipelines = pipelines
        self.reporter = reporter
        self.options = options
        self._stopped = stopped  # the run was stopped, or lost its lease: nothing more is sent
        self.gate = CanaryGate()  # a canary being checked, or one that caught the gateway lying
        self.refusals = Refusals()
        # apply --snapshot: the state read before each delete; an unwritable file is refused here
        self.snapshot = Snapshot(options.snapshot) if options.snapshot is not None else None

    def stopped(self) -> bool:
        """Nothing more is sent: the run was stopped, or a canary caught the gateway lying."""
        return self._stopped() or self.gate.lied is not None

    # --- the outcomes, in the run's thread ---

    @staticmethod
    def fold(result: ApplyResult, d: Done, doubtful: list[Action]) -> None:
        """One outcome into the result; `doubt` goes to `doubtful`, to be re-sent."""
        match d.kind:
            case DoneKind.DELETED:
                result.deleted.append(d.action)
            case DoneKind.FAILED:
                result.failed.append((d.action, d.message))
            case DoneKind.DOUBT:
                doubtful.append(d.action)
            case DoneKind.IN_DOUBT:
                result.in_doubt.append((d.action, d.message))
            case DoneKind.NOT_SENT:
                result.not_sent.append(d.action)
            case DoneKind.VERIFY_FAILED:
                result.verify_failed.append((d.action, d.left))
            case DoneKind.VERIFIED | DoneKind.STOP | DoneKind.POSTPONED:
                pass  # nothing to count (a postponed request goes in a later pause)
            case _:
                assert_never(d.kind)

    def close(self, action: Action, message: str) -> Done:
        """A request never sent (cancelled, stopped, or its pause cut short): pending again,
        its intent (if on record) closed as `failed`, so it is never in doubt."""
        if self.journal.announced(action):
            with contextlib.suppress(LedgerWriteError):  # the failing append already stopped the run
                self.journal.outcome("failed", action, None, message)
        return Done(DoneKind.NOT_SENT, action, message)

    def refused_before_send(self, action: Action, exc: EnosError, what: str) -> Done:
        """A definite refusal met before sending (the canary's read): it holds for its key as
        the delete's would; this request is pending, closed as `failed` if announced."""
        scope = scope_of(exc) or "stage"
        refusal, first = self.refusals.hold(action, exc, scope)
        message = f"not sent: {what}: {exc}"
        if first:
            message += f"; nothing more is sent to {scope} {refusal.where} in this run"
        if self.journal.announced(action):
            self.journal.outcome("failed", action, exc.code, message)
        self.reporter.advance(action, Outcome.FAILED if first else Outcome.HELD, message)
        return Done(DoneKind.FAILED, action, message)

    # --- send ---

    def send_one(self, action: Action) -> Outcomes:
        """One request, in a worker: checked, announced, sent; what it came to."""
        out: Outcomes = []
        try:
            self._send_one(action, out)
        except LedgerWriteError as exc:
            out.append(Done(DoneKind.STOP, action, error=exc))
        return out

    def send_first(self, action: Action, out: Outcomes, *, prefetched: list[dict[str, Any]] | None) -> None:
        """The canary's request: checked, announced and sent like any other, its `delete`
        record left to the canary; `prefetched`: its cells as just read (the snapshot's)."""
        self._send_one(action, out, record=False, prefetched=prefetched)

    def _send_one(
        self,
        action: Action,
        out: Outcomes,
        *,
        record: bool = True,
        prefetched: list[dict[str, Any]] | None = None,
    ) -> None:
        if self.stopped():
            out.append(self.close(action, "not sent: the run was stopped"))
            return
        stopped = self.pipelines.stopped(action.pipeline)
        if stopped is not None:
            out.append(self.close(action, f"not sent: {stopped}"))
            return
        if self._held(action, recorded=self.journal.announced(action), out=out):
            return
        if not self.journal.announced(action):
            try:
                self.journal.intent(action)
            except LedgerWriteError:
                out.append(Done(DoneKind.NOT_SENT, action))  # its intent could not be recorded
                raise
        self.delete(action, out, record=record, prefetched=prefetched)

    def delete(
        self,
        action: Action,
        out: Outcomes,
        *,
        record: bool = True,
        prefetched: list[dict[str, Any]] | None = None,
    ) -> None:
        """Send one request (its halves on 61105); `record=False` leaves its `delete`
        record to the caller (the canary writes it once the read-back agrees)."""
        if self._held(action, recorded=True, out=out):
            return
        client = self.gateways.client(action.org_id)
        evidence = None
        for attempt in range(_NOT_PAUSED_RETRIES + 1):
            try:
                if self.snapshot is not None and evidence is None:  # no evidence, no delete
                    evidence = self.snapshot.take(
                        client, action, self.journal.intents.get(action), items=prefetched
                    )
                if self.stopped():  # right before the call, after the read (git: the lease)
                    self._stopped_before_send(action, attempt, out)
                    return
                with contextlib.nullcontext() if not record else self.gate.sending():
                    if self.stopped():  # while it waited: a canary caught a lie, or a Ctrl-C came
                        self._stopped_before_send(action, attempt, out)
                        return
                    client.delete_stage_state(
                        action,
                        may_retry=lambda: self.pipelines.still_paused(action.pipeline) and not self.stopped(),
                    )
                break
            except TooManyPointsError as exc:
                if action.cells <= 1:
                    self._refused(
                        action, exc, "the gateway refuses even a single cell as too many points", out
                    )
                    return
                # The halves are covered by the parent's intent (DESIGN: matching is by cells).
                for half in action.halves():
                    self.delete(half, out, record=record)
                return
            except NotPausedError as exc:
                if not self.pipelines.still_paused(action.pipeline) or attempt == _NOT_PAUSED_RETRIES:
                    self._ended_in_doubt(action, str(exc), out)
                    return
                self.pipelines.sleep(self.options.poll_interval * (attempt + 1))
            except SnapshotError as exc:
                self._refused(action, None, f"not sent: {exc}", out)
                return
            except EnosError as exc:
                if not exc.definite:
                    self._ended_in_doubt(action, str(exc), out)
                elif scope_of(exc) is not None:
                    self._refused_for_key(action, exc, out)
                else:
                    self._refused(action, exc, str(exc), out)
                return
        proof = tuple(evidence) if evidence else None
        if record:
            self.record_deleted(action, proof, out)
        else:
            out.append(Done(DoneKind.DELETED, action, evidence=proof))

    def record_deleted(
        self, action: Action, evidence: tuple[dict[str, object], ...] | None, out: Outcomes
    ) -> None:
        try:
            self.journal.outcome("delete", action, evidence=list(evidence) if evidence else None)
        except LedgerWriteError:
            # Cleared, but the ledger cannot say so: in doubt, for a person or the next run.
            out.append(Done(DoneKind.IN_DOUBT, action, "cleared, but its delete record was not written"))
            raise
        out.append(Done(DoneKind.DELETED, action))
        self.reporter.advance(action, Outcome.DONE)

    def _stopped_before_send(self, action: Action, attempt: int, out: Outcomes) -> None:
        """Stopped (Ctrl-C, or the lease lost) right before the delete: not sent, its intent
        closed as `failed` (pending again); after an ambiguous attempt, in doubt."""
        message = "not sent: the run was stopped"
        if attempt:
            self._ended_in_doubt(action, message, out)
            return
        out.append(self.close(action, message))

    def _refused(self, action: Action, exc: EnosError | None, message: str, out: Outcomes) -> None:
        """A definite refusal: recorded as `failed`, so its cells are pending again."""
        self.journal.outcome("failed", action, exc.code if exc is not None else None, message)
        out.append(Done(DoneKind.FAILED, action, message))
        self.reporter.advance(action, Outcome.FAILED, message)

    def _held(self, action: Action, *, recorded: bool, out: Outcomes) -> bool:
        """A request whose stage, pipeline or org was refused for good earlier in this run:
        not sent, closed as `failed` if its intent is on record, told once per key."""
        refusal = self.refusals.holding(action)
        if refusal is None:
            return False
        message = f"not sent: its {refusal.scope} {refusal.where} was refused: {refusal.message}"
        if recorded:
            self.journal.outcome("failed", action, refusal.code, message)
        out.append(Done(DoneKind.FAILED, action, message))
        self.reporter.advance(action, Outcome.HELD, message)
        return True

    def _refused_for_key(self, action: Action, exc: EnosError, out: Outcomes) -> None:
        """The first definite refusal that holds for a whole key is told in full, with what
        happens to the rest; the same refusal for other requests in flight is told no more."""
        scope = scope_of(exc) or "stage"
        refusal, first = self.refusals.hold(action, exc, scope)
        if first:
            self._refused(
                action, exc, f"{exc}; nothing more is sent to {scope} {refusal.where} in this run", out
            )
            return
        self.journal.outcome("failed", action, exc.code, str(exc))
        out.append(Done(DoneKind.FAILED, action, str(exc)))
        self.reporter.advance(action, Outcome.HELD, str(exc))

    def _ended_in_doubt(self, action: Action, message: str, out: Outcomes) -> None:
        out.append(Done(DoneKind.DOUBT, action, message))
        self.reporter.advance(action, Outcome.IN_DOUBT, message)

    # --- in doubt ---

    def resend_one(self, action: Action) -> Outcomes:
        """A request that ended in doubt, sent again while its pipeline is still paused. It is
        not closed as failed when its key was refused since: it may have taken effect, so it
        stays in doubt, for a person or the next run."""
        if self.refusals.holding(action) is not None:
            return [Done(DoneKind.IN_DOUBT, action, "no answer recorded")]
        out: Outcomes = []
        try:
            self.delete(action, out)
        except LedgerWriteError as exc:
            out.append(Done(DoneKind.STOP, action, error=exc))
        return [Done(DoneKind.IN_DOUBT, d.action, d.message) if d.kind is DoneKind.DOUBT else d for d in out]

    # --- verify ---

    def verify_one(self, a: Action) -> Outcomes:
        """Read a cleared request's cells back (`--verify`): no item may remain."""
        where = f"{a.manifest} {a.pipeline_id}/{a.stage} ({plural(a.cells, 'cell')})"
        try:
            items = self.gateways.client(a.org_id).get_stage_state(a)
        except EnosError as exc:
            self.reporter.note(f"VERIFY FAILED {where}: could not read it back: {exc}")
            return [Done(DoneKind.VERIFY_FAILED, a, left=-1)]
        left = len(holding_cells(items, a.asset_ids, a.point_ids))
        if left:
            held = "holds" if left == 1 else "hold"
            self.reporter.note(f"VERIFY FAILED {where}: {plural(left, 'cell')} still {held} state")
            return [Done(DoneKind.VERIFY_FAILED, a, left=left)]
        return [Done(DoneKind.VERIFIED, a)]
