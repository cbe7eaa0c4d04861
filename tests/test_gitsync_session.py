"""gitsync.session: apply's choreography with the ledger in git, on the in-memory remote.

Renewals push every few seconds while a run sends; a run whose renewals fail, or whose
renewal push hangs, stops sending before its lease can run out (invariant 9); a push
that outlived its timeout but landed counts as done.
"""

from __future__ import annotations

import threading
from pathlib import Path

from helpers import LEDGER, cell_fields

from reconciler import ledger as L
from reconciler.errors import GitSyncError
from reconciler.gitsync import LedgerRepo, MemoryRemote, Session
from reconciler.gitsync._git import GitTimeout


class FlakyRemote(MemoryRemote):
    """Publishes succeed `good` times, then fail (or hang past their timeout and maybe land)."""

    def __init__(self, good: int, how: str = "fail") -> None:
        super().__init__()
        self.good, self.how = good, how
        self.calls = 0
        self.renewed = threading.Event()

    def publish(self, *args, **kw):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls <= self.good:
            if self.calls > 1:
                self.renewed.set()
            return super().publish(*args, **kw)
        if self.how == "hang-and-land":
            super().publish(*args, **kw)  # it landed, but the answer never came
            raise GitTimeout("git push did not answer within 5s")
        if self.how == "hang":
            raise GitTimeout("git push did not answer within 5s")
        raise GitSyncError("cannot push the ledger to origin/main: connection refused")


def session(tmp_path: Path, remote: MemoryRemote, lease: float = 1.0) -> tuple[Session, list[str]]:
    remote.commit("main", {LEDGER: b""})
    repo = LedgerRepo(tmp_path, LEDGER, transport=remote, rel_path=LEDGER, lease_seconds=lease)
    notes: list[str] = []
    s = Session(repo, notes.append)
    s.before_plan()
    with L.LedgerWriter(L.read(tmp_path / LEDGER)) as writer:
        writer.append("intent", cell_fields())
    return s, notes


def test_renewals_keep_the_run_going(tmp_path: Path) -> None:
    remote = FlakyRemote(good=10**6)
    s, notes = session(tmp_path, remote)
    s.announce("write-ahead")
    assert remote.renewed.wait(30)
    assert s.still_held() and not notes
    s.finish("done")
    assert remote.read("main", [f"{LEDGER}.lease"]).file(f"{LEDGER}.lease") is None  # released


def test_failed_renewals_stop_the_run_before_its_lease_runs_out(tmp_path: Path) -> None:
    remote = FlakyRemote(good=1)
    s, notes = session(tmp_path, remote)
    s.announce("write-ahead")
    beat = s._beat
    assert beat is not None and beat.lost.wait(30)
    assert not s.still_held()
    assert any("could not renew the ledger lease" in n for n in notes)
    assert any("sending nothing more" in n for n in notes)
    s.abort(None)


def test_a_renewal_push_that_hangs_stops_the_run(tmp_path: Path) -> None:
    remote = FlakyRemote(good=1, how="hang")
    s, notes = session(tmp_path, remote)
    s.announce("write-ahead")
    beat = s._beat
    assert beat is not None and beat.lost.wait(30)
    assert any("did not answer" in n for n in notes) and not s.still_held()
    s.abort(None)


def test_a_push_that_timed_out_but_landed_counts_as_done(tmp_path: Path) -> None:
    remote = FlakyRemote(good=0, how="hang-and-land")
    s, _ = session(tmp_path, remote, lease=60)
    s.announce("write-ahead")  # no error: it looked, and the write-ahead is on the remote
    assert s.announced and s.still_held()
    assert remote.read("main", [LEDGER]).file(LEDGER) == (tmp_path / LEDGER).read_bytes()
    s.abort(None)


def test_the_stop_event_reads_the_lease_when_asked(tmp_path: Path) -> None:
    """apply's `stop` asks the lease at the moment of the question (right before a call),
    not when a watcher last looked: a process resumed past its lease sees it set at once."""
    from reconciler.gitsync import LeaseStop

    now = [0.0]
    remote = MemoryRemote()
    remote.commit("main", {LEDGER: b""})
    repo = LedgerRepo(
        tmp_path, LEDGER, transport=remote, rel_path=LEDGER, lease_seconds=30, clock=lambda: now[0]
    )
    notes: list[str] = []
    s = Session(repo, notes.append)
    stop = LeaseStop(s)
    s.before_plan()
    assert not stop.is_set()  # nothing announced: nothing held, nothing to lose
    with L.LedgerWriter(L.read(tmp_path / LEDGER)) as writer:
        writer.append("intent", cell_fields())
    repo.publish("write-ahead")
    s.announced = True  # as `announce` does, without its renewal thread
    assert not stop.is_set() and not stop.wait(0)
    now[0] += 20.0  # a SIGSTOP of two thirds of the lease: no renewal confirmed meanwhile
    assert stop.wait(0) and stop.is_set() and not s.still_held()
    now[0] -= 20.0
    assert stop.is_set()  # once lost, it stays set
    assert sum("no longer holds the lease" in n for n in notes) == 1
