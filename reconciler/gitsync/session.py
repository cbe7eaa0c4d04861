"""The choreography an apply runs with the ledger in git (Terraform's `hook_state.go`:
when to persist, not how).

    s = Session(repo, note)      one per apply attempt (`store.Writer.session`), under the lock
    s.before_plan()              sync, and wait out another live run's lease
    s.announce(message)          the write-ahead push (invariant 11), then renewals
    s.still_held()               False once the lease may have been taken over (invariant 9)
    s.finish(message)            every record on the remote before exit 0
    s.abort(exc)                 a run that raised: push what was recorded, or drop intents
                                 never announced

Renewals push the records written since the last push at least every
`PUSH_EVERY` seconds while sending, so a runner that dies leaves the remote only
seconds behind (DESIGN "The ledger in git", the lease rules).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from reconciler.errors import Hint, Hinted, LedgerMoved, LockError, ReconcilerError
from reconciler.gitsync.repo import RENEWED, LedgerRepo

PUSH_EVERY = 10.0  # seconds between renewal pushes at most, whatever the lease's length

Note = Callable[[str], None]


class Session:
    """One apply's use of the ledger in git; `note` tells the user what happens."""

    def __init__(
        self,
        repo: LedgerRepo,
        note: Note,
        *,
        wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self._note = note
        self._wait = wait
        self._sleep = sleep
        self._clock = clock
        self._beat: _Heartbeat | None = None
        self.announced = False  # the write-ahead push landed: this run's records are on the remote
        self._lost_told = False

    # --- before planning -------------------------------------------------------------

    def before_plan(self) -> None:
        """Fetch the ledger's branch first (never plan from a ledger behind it), then wait
        for another run's live lease, or refuse: its announced requests look in doubt and
        its pauses look left over, and neither is ours to re-send or start while it runs."""
        for line in self.repo.sync().notes:
            self._note(line)
        lease = self.repo.live_lease()
        if lease is None:
            return
        timeout = self._wait if self._wait is not None else 2 * self.repo.lease_seconds + 5
        self._note(
            f"another apply is sending from this ledger: {lease.describe()}; it runs out after "
            f"{self.repo.lease_left():.0f}s unrenewed; waiting up to {timeout:g}s"
        )
        deadline = self._clock() + timeout
        while lease is not None and self._clock() < deadline:
            self._sleep(min(2.0, max(0.1, self.repo.lease_seconds / 6)))
            self.repo.sync()
            lease = self.repo.live_lease()
        if lease is not None:
            raise LockError(
                f"another apply holds the ledger on the remote: {lease.describe()}. Nothing was sent. "
                "Wait longer for it; if that runner died, apply again once its lease has run out"
            )

    def check_reviewed(self, paths: Sequence[str], *, allow: bool = False) -> None:
        """Invariant 12: the manifests are those of a commit on the remote's branch (the
        ledger's branch, or the remote's default one when the ledger has its own)."""
        from reconciler.gitsync import review

        repo = self.repo
        if allow:
            self._note(
                Hinted(
                    "warning: applying manifests that may not be on the remote's branch, as allowed; "
                    'every record of this run says "unreviewed": true',
                    Hint.ALLOW_UNREVIEWED,
                )
            )
            return
        repo.rel_path  # noqa: B018 -- checks the repository and its remote first
        branch = repo.branch
        if repo.dedicated:
            branch = review.default_branch(repo.git, repo.remote_target) or "main"
        review.check_reviewed(
            repo.git, repo.remote_target, branch, paths, exclude=(repo.rel_path, repo.lease_path)
        )

    def refuse_if_leased(self) -> None:
        """`ledger resolve`: a live run's requests are in flight, not in doubt."""
        self.repo.sync()
        lease = self.repo.live_lease()
        if lease is not None:
            raise LockError(
                f"another apply is sending from this ledger: {lease.describe()}. Nothing was "
                "recorded; resolve once it has finished"
            )

    def lost_the_race(self) -> None:
        """The write-ahead push was refused because another apply pushed first: our
        intents were never acted on, so they go before re-planning."""
        self.repo.reset_to_remote()

    # --- while sending ---------------------------------------------------------------

    def announce(self, message: str) -> None:
        """The write-ahead push (invariant 11): every pause and intent on the remote first,
        with this run's lease, renewed from then on while it sends."""
        self.repo.publish(message)
        self.announced = True
        if self._beat is None:
            self._beat = _Heartbeat(self.repo, self._note)
            self._beat.start()

    def still_held(self) -> bool:
        """This run may make its next irreversible call: before the write-ahead push it
        holds nothing and has announced nothing (each push is then the check); after it,
        False once its lease may have run out (a stalled renewal, a stopped process, a
        renewal refused because another run took over). Judged by this process's own
        monotonic clock, which a SIGSTOP does not stop, so a process resumed past its
        lease learns it here, on its first question. Ask it right before the call, after
        any read that precedes the call (apply's `stop` event does: `LeaseStop`)."""
        if not self.announced:
            return True
        held = self.repo.holding.stands() and not (self._beat and self._beat.lost.is_set())
        if not held and not self._lost_told:
            self._lost_told = True
            self._note(
                f"this run no longer holds the lease on {self.repo.where} (a renewal failed or was "
                "late, or the process was stopped): it sends nothing more. Another apply may have "
                "taken over; it finishes what is left"
            )
        return held

    # --- after -------------------------------------------------------------------------

    def finish(self, message: str) -> None:
        """Every record on the remote, the lease released, before exiting 0."""
        self._stop_beat()
        self.repo.publish_final(message)

    def abort(self, exc: BaseException | None) -> None:
        """A run that raised: before the write-ahead push landed nothing was sent, so its
        local intents go (the next sync would take them for calls that were made); after
        it, what it recorded is pushed, so a disposable runner takes nothing with it."""
        self._stop_beat()
        if not self.announced:
            if not isinstance(exc, LedgerMoved):  # that one is handled by re-planning
                self.repo.reset_to_remote()
            return
        try:
            self.repo.publish_final("reconcile: records of an apply that did not finish")
        except ReconcilerError as err:
            self._note(f"could not push the ledger: {err}")

    def _stop_beat(self) -> None:
        if self._beat is not None:
            self._beat.stop()
            self._beat = None


class LeaseStop(threading.Event):
    """apply's `stop` event for a run with the ledger in git: set like any event (Ctrl-C,
    a failed append), and also reads as set once `Session.still_held()` is False.

    apply asks `is_set()` right before each irreversible call, after any read that
    precedes it (each delete after its snapshot read, each request the pool begins), so
    the lease is judged at that moment, not when a watcher thread last looked: a process
    stopped mid-read (SIGSTOP, a frozen VM) and resumed past its lease sends nothing more.
    `wait()` answers the same way. Once the lease is lost the event stays set."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session

    def is_set(self) -> bool:
        if not super().is_set() and not self._session.still_held():
            self.set()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set() or super().wait(timeout)


class _Heartbeat:
    """Renews the run's lease, pushing its records so far, every `PUSH_EVERY` seconds or
    third of the lease, whichever is sooner; sets `lost` when renewals keep failing."""

    def __init__(self, repo: LedgerRepo, note: Note) -> None:
        self._repo = repo
        self._note = note
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease", daemon=True)
        self.lost = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        every = min(PUSH_EVERY, self._repo.lease_seconds / 3)
        while not self._stop.wait(every):
            try:
                self._repo.publish(RENEWED)
            except ReconcilerError as exc:
                self._note(f"could not renew the ledger lease: {exc}")
                if not self._repo.holding.stands() and not self.lost.is_set():
                    self._note("the lease may run out: sending nothing more")
                    self.lost.set()
