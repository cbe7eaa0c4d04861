"""Requests in a run: send, split on 61105, hold a key refused for good, doubt, re-send
and verify (DESIGN "Apply" steps 5-7; invariants 1, 4 and 10).

Each worker sends one request (and its halves) and returns what it came to, as `Done`
values; the pool hands them back to this object in the run's thread, which alone fills
the `ApplyResult`. A request's records are written by its worker as soon as its answer
is in: an `intent` before it (unless the run announced every intent ahead), a `delete`
or `failed` after.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from reconciler.apply.gateways import Gateways
from reconciler.apply.journal import Journal
from reconciler.apply.pipelines import Pipelines
from reconciler.apply.pool import StoppablePool
from reconciler.apply.refusals import Refusals, scope_of
from reconciler.apply.snapshot import Snapshot, SnapshotError
from reconciler.apply.values import ApplyOptions, ApplyResult, Outcome, Reporter
from reconciler.errors import EnosError, LedgerWriteError, NotPausedError, TooManyPointsError
from reconciler.plan import Action
from reconciler.words import plural

_NOT_PAUSED_RETRIES = 3


@dataclass(frozen=True)
class Done:
    """What one request (or one half of it) came to.

    kind: `deleted`, `failed` (pending again), `doubt` (may have acted: re-sent while the
    pipeline is still paused), `in_doubt` (left in doubt for good), `not_sent`,
    `verified`, `verify_failed` (`left` items remain; -1: could not be read), or `stop`
    (a ledger append failed: `error`, and the run sends nothing more).
    """

    kind: str
    action: Action
    message: str = ""
    left: int = 0
    error: LedgerWriteError | None = None


Outcomes = list[Done]


def _error(outcomes: Outcomes) -> LedgerWriteError | None:
    return next((d.error for d in outcomes if d.error is not None), None)


class Requests:
    """Send the plan's requests and account for each."""

    def __init__(
        self,
        gateways: Gateways,
        journal: Journal,
        pipelines: Pipelines,
        pool: StoppablePool[Outcomes],
        reporter: Reporter,
        options: ApplyOptions,
        result: ApplyResult,
    ) -> None:
        self.gateways = gateways
        self.journal = journal
        self.pipelines = pipelines
        self.pool = pool
        self.reporter = reporter
        self.options = options
        self.result = result
        self.refusals = Refusals()
        # apply --snapshot: the state read before each delete; an unwritable file is refused here
        self.snapshot = Snapshot(options.snapshot) if options.snapshot is not None else None
        self.doubtful: list[Action] = []  # ended in doubt this run: re-sent before any start

    # --- the outcomes, in the run's thread ---

    def collect(self, outcomes: Outcomes) -> None:
        r = self.result
        for d in outcomes:
            if d.kind == "deleted":
                r.deleted.append(d.action)
            elif d.kind == "failed":
                r.failed.append((d.action, d.message))
            elif d.kind == "doubt":
                self.doubtful.append(d.action)
            elif d.kind == "in_doubt":
                r.in_doubt.append((d.action, d.message))
            elif d.kind == "not_sent":
                r.not_sent.append(d.action)
            elif d.kind == "verify_failed":
                r.verify_failed.append((d.action, d.left))

    def _not_sent(self, action: Action, message: str) -> None:
        """A request never sent (cancelled, or announced and never reached): pending again."""
        self.result.not_sent.append(action)
        if self.journal.announced:  # its intent is on record: close it, the cells are pending again
            with contextlib.suppress(LedgerWriteError):  # the failing append already stopped the run
                self.journal.outcome("failed", action, None, message)

    # --- send ---

    def send_all(self, actions: list[Action]) -> None:
        if not actions:
            return
        self.reporter.start(len(actions), sum(a.cells for a in actions))
        self.pool.run(
            actions,
            self.send_one,
            lambda a: self._not_sent(a, "not sent: the run was stopped"),
            self.collect,
            failed=_error,
        )
        self.reporter.finish()

    def send_one(self, action: Action) -> Outcomes:
        """One request, in a worker: checked, announced, sent; what it came to."""
        out: Outcomes = []
        try:
            self._send_one(action, out)
        except LedgerWriteError as exc:
            out.append(Done("stop", action, error=exc))
        return out

    def _send_one(self, action: Action, out: Outcomes) -> None:
        if self.pool.halt.is_set():
            self._closed(action, "not sent: the run was stopped", out)
            return
        stopped = self.pipelines.stopped(action.pipeline)
        if stopped is not None:
            self._closed(action, f"not sent: {stopped}", out)
            return
        if self._held(action, recorded=self.journal.announced, out=out):
            return
        if not self.journal.announced:
            try:
                self.journal.intent(action)
            except LedgerWriteError:
                out.append(Done("not_sent", action))  # its intent could not be recorded
                raise
        self.delete(action, out)

    def _closed(self, action: Action, message: str, out: Outcomes) -> None:
        out.append(Done("not_sent", action))
        if self.journal.announced:  # its intent is on record: close it, the cells are pending again
            with contextlib.suppress(LedgerWriteError):  # the failing append already stopped the run
                self.journal.outcome("failed", action, None, message)

    def delete(self, action: Action, out: Outcomes) -> None:
        if self._held(action, recorded=True, out=out):
            return
        client = self.gateways.client(action.org_id)
        evidence = None
        for attempt in range(_NOT_PAUSED_RETRIES + 1):
            try:
                if self.snapshot is not None and evidence is None:  # no evidence, no delete
                    evidence = self.snapshot.take(client, action, self.journal.intents.get(action))
                read = self.snapshot is not None or attempt > 0  # a read came between (git: the lease)
                if read and self.pool.halt.is_set():  # so the stop is asked again, right before the call
                    self._stopped_before_send(action, attempt, out)
                    return
                client.delete_stage_state(
                    action,
                    may_retry=lambda: (
                        self.pipelines.still_paused(action.pipeline) and not self.pool.halt.is_set()
                    ),
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
                    self.delete(half, out)
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
        try:
            self.journal.outcome("delete", action, evidence=evidence)
        except LedgerWriteError:
            # Cleared, but the ledger cannot say so: in doubt, for a person or the next run.
            out.append(Done("in_doubt", action, "cleared, but its delete record was not written"))
            raise
        out.append(Done("deleted", action))
        self.reporter.advance(action, Outcome.DONE)

    def _stopped_before_send(self, action: Action, attempt: int, out: Outcomes) -> None:
        """Stopped (Ctrl-C, or the lease lost) right before the delete: not sent, its intent
        closed as `failed` (pending again); after an ambiguous attempt, in doubt."""
        message = "not sent: the run was stopped"
        if attempt:
            self._ended_in_doubt(action, message, out)
            return
        out.append(Done("not_sent", action))
        if self.journal.announced or action in self.journal.intents:
            with contextlib.suppress(LedgerWriteError):  # the failing append already stopped the run
                self.journal.outcome("failed", action, None, message)

    def _refused(self, action: Action, exc: EnosError | None, message: str, out: Outcomes) -> None:
        """A definite refusal: recorded as `failed`, so its cells are pending again."""
        self.journal.outcome("failed", action, exc.code if exc is not None else None, message)
        out.append(Done("failed", action, message))
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
        out.append(Done("failed", action, message))
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
        out.append(Done("failed", action, str(exc)))
        self.reporter.advance(action, Outcome.HELD, str(exc))

    def _ended_in_doubt(self, action: Action, message: str, out: Outcomes) -> None:
        out.append(Done("doubt", action, message))
        self.reporter.advance(action, Outcome.IN_DOUBT, message)

    # --- in doubt ---

    def resend_doubtful(self) -> None:
        """Re-send, while the pipeline is still paused, the requests of this run that ended in
        doubt, so a person is only asked about what could not be settled (DESIGN step 5)."""
        todo, self.doubtful = self.doubtful, []
        for ref in sorted({a.pipeline for a in todo}):
            if self.pipelines.stopped(ref) is None:
                self.pipelines.still_paused(ref)
        self.doubtful = [a for a in todo if self.pipelines.stopped(a.pipeline) is not None]
        resend = [a for a in todo if self.pipelines.stopped(a.pipeline) is None]
        if resend:
            self.reporter.note(f"re-sending {plural(len(resend), 'request')} that ended in doubt")
            # Not re-sent (the run was stopped): still in doubt.
            self.pool.run(resend, self._resend_one, self.doubtful.append, self.collect, failed=_error)

    def _resend_one(self, action: Action) -> Outcomes:
        """A request in doubt is not closed as failed when its key was refused since: it
        may have taken effect, so it stays in doubt, for a person or the next run."""
        if self.refusals.holding(action) is not None:
            return [Done("doubt", action)]
        out: Outcomes = []
        try:
            self.delete(action, out)
        except LedgerWriteError as exc:
            out.append(Done("stop", action, error=exc))
        return out

    def close_unsent(self) -> None:
        """Announced requests the run never got to (a pause refused, the run stopped before
        sending): a `failed` record each, so they are pending again and never in doubt."""
        if not self.journal.announced:
            return
        submitted = self.pool.submitted
        for action in [a for a in self.journal.intents if a not in submitted]:
            self._not_sent(action, "not sent: the run stopped before sending it")

    def settle(self) -> None:
        """What is still in doubt at the end is the result's, for the summary and a person;
        so are the keys refused for good."""
        self.result.in_doubt.extend((a, "no answer recorded") for a in self.doubtful)
        self.doubtful = []
        self.result.refusals = self.refusals.all

    # --- verify ---

    def verify(self) -> None:
        """Read every deleted cell back with Get Stage State; no item may remain."""
        done = list(self.result.deleted)
        self.reporter.note("reading the cleared cells back with Get Stage State")
        self.reporter.start(len(done), sum(a.cells for a in done), verb="verify")
        self.pool.run(
            done, self._verify_one, lambda a: None, self.collect
        )  # not read back: nothing to record
        self.reporter.finish()
        if not self.result.verify_failed:
            self.reporter.note(
                f"verified: no state left in the {plural(self.result.cells_deleted, 'cell')} cleared"
            )

    def _verify_one(self, a: Action) -> Outcomes:
        try:
            items = self.gateways.client(a.org_id).get_stage_state(a)
        except EnosError as exc:
            self.reporter.advance(a, Outcome.FAILED, f"could not read it back: {exc}")
            return [Done("verify_failed", a, left=-1)]
        assets, points = set(a.asset_ids), set(a.point_ids)
        left = sum(1 for i in items if i.get("assetId") in assets and i.get("pointId") in points)
        self.reporter.advance(
            a,
            Outcome.FAILED if left else Outcome.DONE,
            f"{plural(left, 'cell')} still {'holds' if left == 1 else 'hold'} state" if left else "",
        )
        return [Done("verify_failed", a, left=left)] if left else [Done("verified", a)]
