"""The ledger-in-git protocol against the in-memory remote (`MemoryRemote`, the typed seam
the way httpx's `MockTransport` serves clients): thousands of sync, write-ahead, renewal,
finish, kill, merge, clock-skew and tampering interleavings in seconds.

After every step the simulation checks the protocol's invariants (DESIGN):
- 9, one writer: when a run takes the lease, no other run may still send (`Holding`);
- 11, remote durability: every record a publish returned for is on the anchored ledger;
- 13, history: the anchored ledger only grows, and once a branch's ledger is cut, forged
  or the branch is force-pushed or deleted, every sync refuses it until `restore`.
Invariants 10, 12 and 14 are about what apply sends; real-git and emulator tests prove
them (test_reviewed, test_apply_git, test_apply_invariants).
"""

from __future__ import annotations

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
from reconciler.gitsync import ANCHOR_REF, LedgerRepo, MemoryRemote
from reconciler.gitsync.lease import HOLDER_SHARE, LeaseUnreadable

LEASE = 30.0


@dataclass
class World:
    remote: MemoryRemote = field(default_factory=MemoryRemote)
    now: float = 0.0
    tampered: bool = False
    trace: list[str] = field(default_factory=list)
    anchored: bytes = b""  # the anchor's ledger as last seen: it may only grow
    promised: list[bytes] = field(default_factory=list)  # records a publish returned for


class Runner:
    """One CI runner: its own disposable directory, clock offset and repo."""

    def __init__(self, world: World, where: Path, name: str, skew: float) -> None:
        self.world, self.where, self.name, self.skew = world, where, name, skew
        self.fresh()

    def clock(self) -> float:
        return self.world.now + self.skew

    def fresh(self) -> None:
        """A new runner in the same place: nothing local survives (kill -9, new job)."""
        self.where.mkdir(parents=True, exist_ok=True)
        (self.where / LEDGER).unlink(missing_ok=True)
        self.repo = LedgerRepo(
            self.where,
            LEDGER,
            transport=self.world.remote,
            rel_path=LEDGER,
            lease_seconds=LEASE,
            clock=self.clock,
        )
        self.synced = False
        self.holding = False
        self.n = 0

    def append(self, kind: str) -> bytes:
        self.n += 1
        with L.LedgerWriter(L.read(self.where / LEDGER)) as writer:
            writer.append(kind, cell_fields(asset=f"{self.name}-{self.n}"))
        return (self.where / LEDGER).read_bytes()


def anchored_ledger(world: World) -> bytes:
    anchor = world.remote.read("main", [LEDGER]).anchor
    return anchor.ledger.get(LEDGER, b"") if anchor else b""


def check(world: World, runners: list[Runner]) -> None:
    now = anchored_ledger(world)
    assert now.startswith(world.anchored), "13: the anchored ledger lost records"
    world.anchored = now
    for data in world.promised:
        assert now.startswith(data), "11: a record a publish returned for is not on the remote"


def step(rng: random.Random, world: World, runners: list[Runner]) -> None:
    r = rng.choice(runners)
    op = rng.choices(
        ["sync", "announce", "renew", "finish", "kill", "merge", "wait", "tamper", "restore"],
        weights=[20, 20, 10, 10, 4, 6, 15, 2, 4],
    )[0]
    world.trace.append(f"t={world.now:g} {r.name} {op} holding={[x.name for x in runners if x.holding]}")
    if op == "wait":
        world.now += rng.choice([1.0, 5.0, LEASE / 3, LEASE])
    elif op == "merge":
        world.remote.commit("main", {f"manifests/m{rng.randrange(9)}.yaml": b"# merged\n"})
    elif op == "kill":
        r.fresh()
    elif op == "tamper" and world.remote.refs.get("refs/heads/main") and world.remote.refs.get(ANCHOR_REF):
        tamper(rng, world)
    elif op == "restore":
        try:
            r.repo.restore()
            world.tampered = False
            r.synced = False
        except GitSyncError:
            pass
    elif op == "sync":
        do_sync(world, r)
    elif op == "announce" and r.synced and r.repo.live_lease() is None:
        announce(world, runners, r)
    elif op == "renew" and r.holding:
        publish(world, r, r.repo.heartbeat)
    elif op == "finish" and r.synced and publish(world, r, lambda: r.repo.publish_final("done")):
        r.holding = False


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


def announce(world: World, runners: list[Runner], r: Runner) -> None:
    r.append("intent")
    if publish(world, r, lambda: r.repo.publish("write-ahead")):
        for other in runners:  # 9: whoever held the lease before can no longer send
            if other is not r and other.holding:
                assert not other.repo.holding.stands(), "9: two runs may send at once"
                other.holding = False
        r.holding = True


def publish(world: World, r: Runner, call: object) -> bool:
    assert callable(call)
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
    after = remote.read("main", [LEDGER, f"{LEDGER}.lease"])
    anchor = after.anchor
    assert anchor is not None
    world.tampered = (
        after.head is None
        or after.file(LEDGER) != anchor.ledger.get(LEDGER)
        or after.file(f"{LEDGER}.lease") != anchor.lease
    )


def simulate(seed: int, where: Path, steps: int = 250) -> tuple[int, int]:
    """One random schedule; the pushes it made and the steps it spent tampered."""
    rng = random.Random(seed)
    world = World()
    world.remote.commit("main", {LEDGER: b"", "manifests/a.yaml": b"# a\n"})
    runners = [Runner(world, where / f"r{i}", f"r{i}", skew=rng.uniform(-300.0, 300.0)) for i in range(3)]
    refused = 0
    for _ in range(steps):
        refused += world.tampered
        try:
            step(rng, world, runners)
            check(world, runners)
        except AssertionError:
            print("\n".join(world.trace[-40:]))
            raise
    return world.remote.pushes, refused


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
    pushes, _ = simulate(seed, fast_dir)
    assert pushes > 5  # the schedule did publish: not a vacuous run


def test_the_schedules_do_tamper_and_restore(fast_dir: Path) -> None:
    refused = [simulate(seed, fast_dir / str(seed), steps=150)[1] for seed in range(100, 104)]
    assert sum(refused) > 0  # some steps ran against a tampered ledger, and were refused


def test_a_waiter_judges_the_lease_by_its_own_clock_whatever_the_holders_says(tmp_path: Path) -> None:
    world = World()
    world.remote.commit("main", {LEDGER: b""})
    ahead = Runner(world, tmp_path / "ahead", "a", skew=+300.0)  # its clock 5 minutes ahead
    behind = Runner(world, tmp_path / "behind", "b", skew=-300.0)  # and this one 5 minutes behind
    ahead.repo.sync()
    ahead.append("intent")
    ahead.repo.publish("write-ahead")
    behind.repo.sync()
    assert behind.repo.live_lease() is not None  # ten minutes apart, the lease still binds
    world.now += LEASE - 1
    behind.repo.sync()
    assert behind.repo.live_lease() is not None
    ahead.repo.heartbeat()
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
    holder.append("intent")
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
