"""gitsync.session: apply's choreography with the ledger in git, on the in-memory remote.

Renewals push every few seconds while a run sends; a run whose renewals fail, or whose
renewal push hangs, stops sending before its lease can run out (invariant 9); a push
that outlived its timeout but landed counts as done, and its records are never pushed
again, even when another run appended after them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from helpers import LEDGER, cell_fields

from reconciler import ledger as L
from reconciler.errors import GitSyncError
from reconciler.gitsync import LedgerRepo, MemoryRemote, Session
from reconciler.gitsync._git import GitTimeout
from reconciler.gitsync.repo import RENEWED


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


def session(
    tmp_path: Path, remote: MemoryRemote, lease: float = 1.0, clock: Callable[[], float] = time.monotonic
) -> tuple[Session, list[str]]:
    remote.commit("main", {LEDGER: b""})
    repo = LedgerRepo(tmp_path, LEDGER, transport=remote, rel_path=LEDGER, lease_seconds=lease, clock=clock)
    notes: list[str] = []
    s = Session(repo, notes.append)
    s.before_plan()
    with L.LedgerWriter(L.read(tmp_path / LEDGER)) as writer:
        writer.append("intent", cell_fields())
    return s, notes


class SlowRemote(FlakyRemote):
    """Every push takes half a second of the run's clock (`now`), which moves for nothing else."""

    def __init__(self) -> None:
        super().__init__(good=10**6)
        self.now = [0.0]

    def publish(self, *args, **kw):  # type: ignore[no-untyped-def]
        after = super().publish(*args, **kw)
        self.now[0] += 0.5
        return after


def test_renewals_keep_the_run_going(tmp_path: Path) -> None:
    """The write-ahead push starts at 0 and lands at 0.5; the renewal starts at 0.5 and lands
    at 1.0: past two thirds of the 1 s lease since the write-ahead, the run holds it by the
    renewal. On the real clock, a renewal thread woken late under load (its push begun past
    two thirds of the lease, a third late) and a look while its push was under way rightly
    found the lease given up: the test asked for renewals on time and got them by luck."""
    remote = SlowRemote()
    s, notes = session(tmp_path, remote, clock=lambda: remote.now[0])
    s.announce("write-ahead")
    beat = s._beat
    assert beat is not None and remote.renewed.wait(30)
    beat.stop()  # the renewal under way lands first
    assert remote.now[0] >= 1.0 and s.still_held() and not notes
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


class LostAnswer(MemoryRemote):
    """A remote whose next publish lands, then `meanwhile` happens, and only then is the
    push's answer lost to its timeout (the pusher was stopped while its push landed)."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], None] | None = None

    def publish(self, *args, **kw):  # type: ignore[no-untyped-def]
        after = super().publish(*args, **kw)
        if self.meanwhile is None:
            return after
        meanwhile, self.meanwhile = self.meanwhile, None
        meanwhile()
        raise GitTimeout("git push did not answer within 5s")


def append(repo: LedgerRepo, *records: tuple[str, dict[str, object]]) -> None:
    with L.LedgerWriter(L.read(repo.file)) as writer:
        for kind, fields in records:
            writer.append(kind, fields)


def test_a_push_that_landed_before_another_run_took_over_is_never_pushed_again(tmp_path: Path) -> None:
    """Run one's renewal carries the `delete` of a call it made; the push lands, but the
    process is stopped before the answer comes. Run two waits its lease out, re-sends what
    one left, starts the pipeline and finishes; then one resumes and its push times out.
    The push landed: its records are on the remote once, and one's final push appends only
    what it wrote after them. Pushed again, the `delete` would follow two's `resume`, as if
    one had cleared the cells after the pipeline ran again. Nor does the renewal hold
    anything for one: the remote's lease is no longer its own."""
    now = [0.0]
    remote = LostAnswer()
    remote.commit("main", {LEDGER: b""})
    one, two = (
        LedgerRepo(
            tmp_path / n, LEDGER, transport=remote, rel_path=LEDGER, lease_seconds=30, clock=lambda: now[0]
        )
        for n in ("one", "two")
    )
    for repo in (one, two):
        repo.file.parent.mkdir()
        repo.file.write_bytes(b"")
    pipe = {"orgId": "o1", "pipelineId": "p1"}
    one.sync()
    append(one, ("intent", cell_fields("a1")), ("intent", cell_fields("a2")))
    one.publish("write-ahead")
    append(one, ("delete", {"intent": 1}))  # its call was made

    def two_takes_over() -> None:
        two.sync()
        now[0] += 30  # one is stopped: two sees its lease unrenewed for the lease's length
        two.sync()
        append(two, ("intent", cell_fields("a2")))
        two.publish("write-ahead")
        append(two, ("delete", {"intent": 4}), ("start", pipe))
        two.publish("starting p1 again")
        append(two, ("resume", pipe))
        two.publish_final("applied")

    remote.meanwhile = two_takes_over
    with contextlib.suppress(GitTimeout):  # as the renewal thread takes a failed push
        one.publish(RENEWED)  # it landed; its answer came too late, after two's pushes
    assert not one.holding.stands()  # it sends nothing more
    append(one, ("failed", {"intent": 2, "code": None, "message": "run stopped"}))
    one.publish_final("records of an apply that did not finish")
    assert remote.read("main", [LEDGER]).file(LEDGER) == one.file.read_bytes()
    kinds = [(r.seq, r.kind) for r in L.read(one.file).records]
    assert kinds == [
        *[(1, "intent"), (2, "intent"), (3, "delete")],  # one's, the delete by the renewal
        *[(4, "intent"), (5, "delete"), (6, "start"), (7, "resume")],  # two's
        (8, "failed"),  # one's, after it resumed: its delete is not pushed again
    ]


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
