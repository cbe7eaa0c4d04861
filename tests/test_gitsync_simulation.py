"""The ledger-in-git protocol against the in-memory remote (`MemoryRemote`, the typed seam
the way httpx's `MockTransport` serves clients): thousands of sync, write-ahead, renewal,
finish, kill, merge, clock-skew, tampering, anchor-moving, PID-namespace and
stopped-mid-read interleavings in seconds.

After every step the simulation checks the protocol's invariants (DESIGN):
- 9, one writer: when a run takes the lease, no other run may still send (`Holding`), and a
  run resumed after a stop between a read and a delete sends only while the remote's lease
  is its own (`LeaseStop`, what apply asks right before each delete); runners in two PID
  namespaces of one host never take each other's live lease over at once;
- 11, remote durability: every record a publish returned for is in the ledger reconcile
  last published;
- 13, history: what reconcile publishes (restore included) only grows, whatever a third
  party does to the branch or to the anchor (moved back, forward, or to a forged commit);
  and while the branch's ledger is not the anchored one, every sync refuses it;
- 14, resume: a run that finished (exit 0) left every pipeline it paused with a `resume`;
- the rollout's write-ahead per pause (issue 25): a run pauses its pipelines one after
  another, each pause announced by its own push (its `pause` record and the intents of the
  requests it sends, and nothing for a later pause) and each start by its own; at each pause
  call the published ledger holds that pause's records, at each start call its `start`, and
  a runner killed between two pauses leaves in doubt only requests of pauses it made.
Invariants 10 and 12 are about what apply sends; real-git and emulator tests prove them
(test_reviewed, test_apply_git, test_gitsync_holes).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import LEDGER, cell_fields

from reconciler import ledger as L
from reconciler.errors import GitSyncError, LedgerBehind, LedgerMoved, LedgerNotAnchored
from reconciler.gitsync import ANCHOR_REF, LeaseStop, LedgerRepo, MemoryRemote, Session
from reconciler.gitsync.lease import HOLDER_SHARE, Here, LeaseUnreadable
from reconciler.gitsync.repo import RENEWED

LEASE = 30.0


@dataclass
class World:
    remote: MemoryRemote = field(default_factory=MemoryRemote)
    now: float = 0.0
    tampered: bool = False  # the branch's ledger (or lease) is not the anchored one
    moved: bool = False  # a third party moved the anchor (until a restore)
    trace: list[str] = field(default_factory=list)
    published: bytes = b""  # the ledger reconcile last published: it may only grow
    promised: list[bytes] = field(default_factory=list)  # records a publish returned for
    anchors: list[str] = field(default_factory=list)  # every anchor commit reconcile made
    live: dict[str, set[int]] = field(default_factory=dict)  # PID namespace -> live pids
    pids: dict[str, itertools.count[int]] = field(default_factory=dict)
    owner: str | None = None  # the runner whose lease the remote holds
    sends: int = 0
    called: set[str] = field(default_factory=set)  # pipelines whose pause call was made
    pauses: int = 0  # pause calls made by all runs (each announced by its own push)


@dataclass(frozen=True)
class SimHere(Here):
    """A runner's place on one simulated host: its PID namespace's live pids are the world's."""

    world: World = field(default_factory=World, compare=False, repr=False)

    def runs(self, pid: int) -> bool:
        return pid in self.world.live.get(self.pidns, set())


class Runner:
    """One CI runner: its own disposable directory, clock offset, PID namespace and repo."""

    def __init__(self, world: World, where: Path, name: str, skew: float, pidns: str = "ns0") -> None:
        self.world, self.where, self.name, self.skew, self.pidns = world, where, name, skew, pidns
        self.here: SimHere | None = None
        self.fresh()

    def clock(self) -> float:
        return self.world.now + self.skew

    def fresh(self) -> None:
        """A new runner in the same place: nothing local survives (kill -9, new job)."""
        world = self.world
        if self.here is not None:
            world.live[self.pidns].discard(self.here.pid)  # the old process is dead
        start = 100 if self.pidns == "ns0" else 5000  # pids of one namespace mean nothing in another
        pid = next(world.pids.setdefault(self.pidns, itertools.count(start)))
        world.live.setdefault(self.pidns, set()).add(pid)
        self.here = SimHere("sim-host", "boot-1", self.pidns, pid, world)
        self.where.mkdir(parents=True, exist_ok=True)
        (self.where / LEDGER).unlink(missing_ok=True)
        self.repo = LedgerRepo(
            self.where,
            LEDGER,
            transport=world.remote,
            rel_path=LEDGER,
            lease_seconds=LEASE,
            clock=self.clock,
            here=self.here,
        )
        self.session = Session(self.repo, lambda _line: None, clock=self.clock)
        self.stop = LeaseStop(self.session)  # apply's stop event: asked right before each delete
        self.synced = False
        self.holding = False
        self.reading = False  # stopped between a read and the delete it precedes
        self.paused: set[str] = set()  # pipelines this run paused and has not started again
        self.current: str | None = None  # the pipeline of the pause under way
        self.k = 0  # pauses this run began
        self.n = 0

    def append(self, kind: str, pipe: str) -> bytes:
        self.n += 1
        with L.LedgerWriter(L.read(self.where / LEDGER)) as writer:
            if kind in ("pause", "start", "resume"):
                fields: dict[str, object] = {"orgId": "o1", "pipelineId": pipe}
                if kind == "pause":
                    fields.update(executionMode=1, kafkaRate=1000)
                    self.paused.add(pipe)
                writer.append(kind, fields)
            else:
                writer.append(kind, cell_fields(asset=f"{self.name}-{self.n}", pipeline=pipe))
        return (self.where / LEDGER).read_bytes()

    def next_pipe(self) -> str:
        self.k += 1
        return f"p-{self.name}-{self.here.pid if self.here else 0}-{self.k}"


def anchored_ledger(world: World) -> bytes:
    anchor = world.remote.read("main", [LEDGER]).anchor
    return anchor.ledger.get(LEDGER, b"") if anchor else b""


def published(world: World) -> None:
    """Reconcile just published (a publish or a restore): 13, it never cuts what it published."""
    now = anchored_ledger(world)
    assert now.startswith(world.published), "13: reconcile published a ledger that cuts one it published"
    world.published = now
    world.anchors.append(world.remote.refs[ANCHOR_REF])


def check(world: World, runners: list[Runner]) -> None:
    for data in world.promised:
        assert world.published.startswith(data), "11: a record a publish returned for is not published"


def step(rng: random.Random, world: World, runners: list[Runner]) -> None:
    r = rng.choice(runners)
    ops = ["sync", "announce", "renew", "finish", "kill", "merge", "wait", "tamper", "restore"]
    ops += ["rewind", "forward", "forge", "read", "continue", "start"]
    op = rng.choices(
        ops,
        weights=[20, 20, 10, 10, 4, 6, 15, 2, 4, 2, 1, 1, 6, 6, 10],
    )[0]
    world.trace.append(f"t={world.now:g} {r.name} {op} holding={[x.name for x in runners if x.holding]}")
    if op == "wait":
        world.now += rng.choice([1.0, 5.0, LEASE / 3, LEASE])
    elif op == "merge":
        world.remote.commit("main", {f"manifests/m{rng.randrange(9)}.yaml": b"# merged\n"})
    elif op == "kill":
        r.fresh()
        killed(world)
    elif op == "tamper" and not world.moved and world.remote.refs.get("refs/heads/main") and world.anchors:
        tamper(rng, world)
    elif op in ("rewind", "forward", "forge") and not world.tampered and len(world.anchors) > 1:
        move_anchor(rng, world, op)
    elif op == "restore":
        try:
            r.repo.restore()
        except GitSyncError:
            return
        published(world)
        world.tampered = world.moved = False
        r.synced = False
    elif op == "sync":
        do_sync(world, r)
    elif op == "announce" and r.synced and r.current is None and r.repo.live_lease() is None:
        announce(world, runners, r, rng.randint(1, 3))
    elif op == "start" and r.holding and r.synced and r.current is not None and not r.reading:
        start(world, r)
    elif op == "renew" and r.holding:
        publish(world, r, lambda: r.repo.publish(RENEWED))
    elif op == "read" and r.holding:
        r.reading = True  # a snapshot read before a delete, answered only at "continue"
    elif op == "continue" and r.reading:
        r.reading = False
        if not r.stop.is_set():  # what apply asks right before the delete
            assert world.owner == r.name, "9: a run sent while another run held the lease"
            world.sends += 1
    elif op == "finish" and r.synced:
        finish(world, r)


def finish(world: World, r: Runner) -> None:
    for pipe in sorted(r.paused):  # what is still paused is started at the end
        r.append("start", pipe)
        r.append("resume", pipe)
    if not publish(world, r, lambda: r.repo.publish_final("done")):
        return
    last = {}
    for line in world.published.splitlines():
        rec = json.loads(line)
        if rec.get("kind") in ("pause", "resume", "start"):
            last[rec["pipelineId"]] = rec["kind"]
    for pipe in r.paused:
        assert last.get(pipe) == "resume", "14: a run that finished left a pipeline it paused"
    r.paused.clear()
    r.current = None
    r.holding = r.reading = False
    r.session.announced = False
    if world.owner == r.name:
        world.owner = None


def move_anchor(rng: random.Random, world: World, how: str) -> None:
    """A third party moves refs/reconcile/anchor (hosts do not protect it): back to an earlier
    anchor reconcile made, forward to a later one, or to a forged commit with a cut ledger."""
    remote = world.remote
    now = remote.refs[ANCHOR_REF]
    at = world.anchors.index(now) if now in world.anchors else len(world.anchors) - 1
    if how == "rewind" and at > 0:
        remote.move_anchor(world.anchors[rng.randrange(at)])
    elif how == "forward" and at < len(world.anchors) - 1:
        remote.move_anchor(world.anchors[rng.randrange(at + 1, len(world.anchors))])
    elif how == "forge":
        ledger = anchored_ledger(world)
        cut = ledger[: ledger.rstrip(b"\n").rfind(b"\n") + 1]
        head = remote.refs["refs/heads/main"]
        remote.move_anchor(remote.forge_anchor({LEDGER: cut}, LEDGER, "main", head))
    else:
        return
    world.moved = True
    world.tampered = not consistent(world)


def consistent(world: World) -> bool:
    after = world.remote.read("main", [LEDGER, f"{LEDGER}.lease"])
    anchor = after.anchor
    assert anchor is not None
    return not (
        after.head is None
        or after.file(LEDGER) != anchor.ledger.get(LEDGER)
        or after.file(f"{LEDGER}.lease") != anchor.lease
    )


def do_sync(world: World, r: Runner) -> None:
    try:
        r.repo.sync()
        r.synced = True
        assert not world.tampered, "13: a tampered ledger was synced"
    except (LedgerNotAnchored, LeaseUnreadable):
        assert world.tampered, "13: an intact ledger was refused"
        r.synced = False
    except LedgerBehind:
        r.fresh()  # its local records were never pushed: a new runner starts over


def announce(world: World, runners: list[Runner], r: Runner, requests: int) -> None:
    """A pause's write-ahead: its `pause` record and the intents of its own requests, one push;
    then its pause call, which must find them on the remote (invariant 11, per pause)."""
    pipe = r.next_pipe()
    r.append("pause", pipe)
    for _ in range(requests):
        r.append("intent", pipe)
    if publish(world, r, lambda: r.repo.publish("write-ahead")):
        mine = lifecycle(world.published, pipe)
        assert mine == ["pause"] + ["intent"] * requests, (
            f"11: pause call of {pipe} before its records: {mine}"
        )
        world.called.add(pipe)
        world.pauses += 1
        r.current = pipe
        for other in runners:  # 9: whoever held the lease before can no longer send
            if other is not r and other.holding:
                assert not other.repo.holding.stands(), "9: two runs may send at once"
                assert other.stop.is_set(), "9: a run that lost its lease may still send"
                other.holding = False
        r.holding = True
        r.session.announced = True  # as `Session.announce` does, without its renewal thread
        world.owner = r.name
    else:  # apply stops with an error, its records never pushed: the disposable runner is gone
        r.fresh()


def start(world: World, r: Runner) -> None:
    """Its requests answered: the `start` record pushed before the start call (invariant 11),
    the `resume` after; the run's next pause is announced by a push of its own."""
    pipe = r.current
    assert pipe is not None
    r.append("start", pipe)
    if publish(world, r, lambda: r.repo.publish("reconcile: starting it again")):
        assert lifecycle(world.published, pipe)[-1] == "start", f"11: start call of {pipe} before its record"
        r.append("resume", pipe)
        r.paused.discard(pipe)
        r.current = None
    else:  # the start is not sent: the run fails, the pipeline left paused on record
        r.fresh()


def lifecycle(ledger: bytes, pipe: str) -> list[str]:
    return [rec["kind"] for rec in map(json.loads, ledger.splitlines()) if rec.get("pipelineId") == pipe]


def killed(world: World) -> None:
    """A runner died, maybe between two pauses: every intent on the remote is of a pause whose
    call was made, so the requests of a pause not begun are pending, never in doubt."""
    for rec in map(json.loads, world.published.splitlines()):
        if rec.get("kind") == "intent":
            assert rec["pipelineId"] in world.called, "an intent of a pause never begun: it would be in doubt"


def publish(world: World, r: Runner, call: object) -> bool:
    assert callable(call)
    anchor = world.remote.refs.get(ANCHOR_REF)
    try:
        call()
    except LedgerMoved:
        r.repo.reset_to_remote()
        r.synced = False
        return False
    except (
        LedgerNotAnchored,
        LedgerBehind,
        LeaseUnreadable,
    ):  # a tamper meanwhile: refused, nothing re-chained over it
        r.synced = False
        return False
    if world.remote.refs.get(ANCHOR_REF) != anchor:  # it pushed (a final push may have nothing to push)
        published(world)
    path = r.where / LEDGER
    world.promised.append(path.read_bytes() if path.exists() else b"")
    return True


def tamper(rng: random.Random, world: World) -> None:
    remote = world.remote
    head = remote.refs["refs/heads/main"]
    ledger = remote.commits[head].tree.get(LEDGER, b"")
    how = rng.choice(["cut", "forge", "force", "delete", "lease"])
    if how == "cut" and ledger:
        remote.commit("main", {LEDGER: ledger[: ledger.rstrip(b"\n").rfind(b"\n") + 1]})
    elif how == "forge":
        remote.commit("main", {LEDGER: ledger + b'{"kind":"pause","v":2}\n'})
    elif how == "force" and remote.commits[head].parent and ledger:
        first = head
        while remote.commits[first].parent:
            first = remote.commits[first].parent  # type: ignore[assignment]
        remote.force("main", first)
    elif how == "delete":
        remote.delete("main")
    elif how == "lease":
        remote.commit("main", {f"{LEDGER}.lease": b'{"until": "tomorrow"}\n'})
    else:
        return
    world.tampered = not consistent(world)


def simulate(seed: int, where: Path, steps: int = 250) -> tuple[int, int, int, int]:
    """One random schedule; the pushes it made, the steps it spent tampered, the deletes
    sent after a read and the pause calls made."""
    rng = random.Random(seed)
    world = World()
    world.remote.commit("main", {LEDGER: b"", "manifests/a.yaml": b"# a\n"})
    runners = [
        Runner(
            world, where / f"r{i}", f"r{i}", skew=rng.uniform(-300.0, 300.0), pidns="ns1" if i == 2 else "ns0"
        )
        for i in range(3)
    ]
    refused = 0
    for _ in range(steps):
        refused += world.tampered
        try:
            step(rng, world, runners)
            check(world, runners)
        except AssertionError:
            print("\n".join(world.trace[-40:]))
            raise
    return world.remote.pushes, refused, world.sends, world.pauses


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory when the machine has one: the ledger's fsyncs cost nothing there,
    and the simulation is about interleavings, not disks."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    where = Path(tempfile.mkdtemp(prefix="reconcile-sim-", dir=shm))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("seed", range(12))
def test_thousands_of_interleavings_keep_the_invariants(seed: int, fast_dir: Path) -> None:
    pushes, _, _, _ = simulate(seed, fast_dir)
    assert pushes > 5  # the schedule did publish: not a vacuous run


def test_the_schedules_do_send_after_a_read(fast_dir: Path) -> None:
    sends = [simulate(seed, fast_dir / str(seed), steps=250)[2] for seed in range(200, 204)]
    assert sum(sends) > 0  # some runs went on to their delete after a read, and were checked


def test_the_schedules_do_pause_one_pipeline_after_another(fast_dir: Path) -> None:
    """Runs that begin a second pause after starting their first (the rollout's order), some
    killed in between: the per-pause checks above are not vacuous."""
    pauses = [simulate(seed, fast_dir / str(seed), steps=250)[3] for seed in range(300, 304)]
    assert sum(pauses) > 8


def test_the_schedules_do_tamper_and_restore(fast_dir: Path) -> None:
    refused = [simulate(seed, fast_dir / str(seed), steps=150)[1] for seed in range(100, 104)]
    assert sum(refused) > 0  # some steps ran against a tampered ledger, and were refused


def test_a_waiter_judges_the_lease_by_its_own_clock_whatever_the_holders_says(tmp_path: Path) -> None:
    world = World()
    world.remote.commit("main", {LEDGER: b""})
    ahead = Runner(world, tmp_path / "ahead", "a", skew=+300.0)  # its clock 5 minutes ahead
    behind = Runner(world, tmp_path / "behind", "b", skew=-300.0)  # and this one 5 minutes behind
    ahead.repo.sync()
    ahead.append("intent", "p1")
    ahead.repo.publish("write-ahead")
    behind.repo.sync()
    assert behind.repo.live_lease() is not None  # ten minutes apart, the lease still binds
    world.now += LEASE - 1
    behind.repo.sync()
    assert behind.repo.live_lease() is not None
    ahead.repo.publish(RENEWED)
    world.now += LEASE - 1
    behind.repo.sync()  # saw the renewal: counts again from now
    assert behind.repo.live_lease() is not None and ahead.repo.holding.stands() is False
    world.now += LEASE
    behind.repo.sync()
    assert behind.repo.live_lease() is None  # a whole lease unrenewed, by the waiter's clock


def test_a_holder_resumed_after_a_stop_sends_nothing_more(tmp_path: Path) -> None:
    world = World()
    world.remote.commit("main", {LEDGER: b""})
    holder = Runner(world, tmp_path / "h", "h", skew=0.0)
    holder.repo.sync()
    holder.append("intent", "p1")
    holder.repo.publish("write-ahead")
    assert holder.repo.holding.stands()
    world.now += HOLDER_SHARE * LEASE  # SIGSTOP: no renewal for two thirds of the lease
    assert not holder.repo.holding.stands()  # checked before any further request


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    import subprocess

    from reconciler.gitsync.lease import Lease, LeaseWatch, this_host

    dead = subprocess.Popen(["true"])
    dead.wait()
    host, boot, pidns = this_host()
    lease = Lease("run", "ci", host, dead.pid, "2026-12-05T00:00:00Z", 0, LEASE, boot, pidns)
    watch = LeaseWatch(clock=lambda: 0.0)
    watch.observe(lease)
    assert watch.expired()
    alive = Lease("run", "ci", host, 1, "2026-12-05T00:00:00Z", 0, LEASE, boot, pidns)  # pid 1 lives
    watch.observe(alive)
    assert not watch.expired()


def two_runners(tmp_path: Path, holder_ns: str) -> tuple[World, Runner, Runner]:
    world = World()
    world.remote.commit("main", {LEDGER: b""})
    holder = Runner(world, tmp_path / "h", "h", skew=0.0, pidns=holder_ns)
    waiter = Runner(world, tmp_path / "w", "w", skew=0.0, pidns="ns0")
    holder.repo.sync()
    announce(world, [holder, waiter], holder, 1)
    assert holder.holding
    return world, holder, waiter


def test_a_live_holder_in_another_pid_namespace_is_waited_out_by_the_waiters_clock(tmp_path: Path) -> None:
    """Same host name, same boot, another PID namespace (a container with host networking):
    the holder's pid names no process here, yet it runs. Waited out, never taken at once."""
    world, holder, waiter = two_runners(tmp_path, "ns1")
    assert holder.here is not None and not waiter.here.runs(holder.here.pid)  # type: ignore[union-attr]
    waiter.repo.sync()
    assert waiter.repo.live_lease() is not None
    world.now += LEASE - 1
    waiter.repo.sync()
    assert waiter.repo.live_lease() is not None
    world.now += 1
    waiter.repo.sync()
    assert waiter.repo.live_lease() is None  # a whole lease unrenewed, by the waiter's clock
    announce(world, [holder, waiter], waiter, 1)  # 9: asserts the holder can no longer send
    assert waiter.holding and holder.stop.is_set()


def test_a_dead_holder_in_the_same_pid_namespace_is_taken_over_at_once(tmp_path: Path) -> None:
    _world, holder, waiter = two_runners(tmp_path, "ns0")
    waiter.repo.sync()
    assert waiter.repo.live_lease() is not None  # alive: it binds
    holder.fresh()  # kill -9: its pid runs no more in this namespace
    waiter.repo.sync()
    assert waiter.repo.live_lease() is None


def test_a_holder_stopped_between_a_read_and_a_delete_sends_nothing_once_taken_over(tmp_path: Path) -> None:
    world, holder, waiter = two_runners(tmp_path, "ns0")
    holder.reading = True  # its snapshot read is in flight: SIGSTOP
    waiter.repo.sync()
    world.now += LEASE
    waiter.repo.sync()
    announce(world, [holder, waiter], waiter, 1)  # took over
    assert world.owner == "w"
    assert holder.stop.is_set()  # what apply asks right before the delete: nothing is sent


def test_anchors_moved_back_and_forward_never_make_reconcile_cut(tmp_path: Path) -> None:
    world = World()
    world.remote.commit("main", {LEDGER: b""})
    a = Runner(world, tmp_path / "a", "a", skew=0.0)
    for _ in range(3):  # three applies, each to the end
        do_sync(world, a)
        announce(world, [a], a, 1)
        finish(world, a)
    assert len(world.anchors) >= 6
    world.remote.move_anchor(world.anchors[1])  # a third party moves it back
    world.tampered = not consistent(world)
    do_sync(world, a)  # refused, and says why
    assert not a.synced
    with pytest.raises(LedgerNotAnchored, match="was moved backwards"):
        a.repo.sync()
    world.remote.move_anchor(world.anchors[-1])  # ... and forward again: all is well
    world.tampered = not consistent(world)
    assert not world.tampered
    do_sync(world, a)
    assert a.synced
    world.remote.move_anchor(world.anchors[2])
    a.repo.restore()  # never cuts: the branch's version is anchored again
    published(world)
    do_sync(world, a)
    assert a.synced
