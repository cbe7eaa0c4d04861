"""The lease: which run is sending from a ledger branch (DESIGN "The ledger in git", the
lease rules; invariant 9 across runners).

A lease file (`<ledger>.lease` on the branch) is written with the write-ahead push,
renewed while the run sends, and removed by its final push. Whether another run's
lease has run out never depends on two runners' clocks agreeing: the waiting runner
judges it by what it observes itself (`LeaseWatch`: no renewal seen for the lease's
length on its own monotonic clock). A lease is taken over at once only when its holder
is provably a dead process this runner can judge: same host name, same boot (the
kernel's boot id) and same PID namespace, and no process with its pid. Containers share
a kernel and, with host networking, a host name, but not a PID namespace: there a pid
that looks dead may be a live runner next door, so the waiter waits the lease out. The
holder keeps its own side (`Holding`): it may send only while its last confirmed
renewal is recent enough that no waiter can have taken over.

The lease's length has one bound (`config.LEASE_SECONDS_MIN`/`MAX`), checked where the
setting is read, where a lease is written, and where one is read: a lease an older
version wrote outside it is read as the nearest bound, never refused (it must not make
every later apply fail, `restore` included).
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from reconciler.config import LEASE_SECONDS_MAX, LEASE_SECONDS_MIN
from reconciler.errors import GitSyncError

# A holder stops sending when this much of the lease has passed since the renewal push
# it last *started* that then landed: a waiter, which starts counting only once it has
# seen that renewal, still has a third of the lease to go.
HOLDER_SHARE = 2 / 3


class LeaseUnreadable(GitSyncError):
    """A lease file this tool did not write the way it writes them."""


@dataclass(frozen=True)
class Lease:
    """The run sending from this ledger branch: who, where, and its renewal count."""

    run: str
    user: str
    host: str
    pid: int
    since: str
    renewal: int  # changes with every renewal: what a waiter watches
    seconds: float  # the lease's length, as the holder was configured
    boot: str = ""  # the holder's kernel boot id ("" when unknown, or an older lease)
    pidns: str = ""  # the holder's PID namespace, "device:inode" ("" when unknown)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    def renewed(self) -> Lease:
        return replace(self, renewal=self.renewal + 1)

    @classmethod
    def parse(cls, data: bytes | None, where: str) -> Lease | None:
        """None for no lease; `LeaseUnreadable` (naming `where`) for anything not written
        the way this tool writes leases: a planted file must never bind or crash a run."""
        if not data:
            return None
        try:
            raw = json.loads(data)
            lease = cls(**raw) if isinstance(raw, dict) else None
        except (ValueError, TypeError, RecursionError):
            lease = None
        if lease is None or not _well_formed(lease):
            raise LeaseUnreadable(
                f"{where}: the lease file is not one reconcile writes ({_sample(data)}). Only "
                "`reconcile apply` writes it; nothing was sent. Restore it with `reconcile ledger "
                "restore` (the ledger and lease as reconcile last published them)"
            )
        return replace(lease, seconds=_bounded(lease.seconds))

    def on_this_host_and_dead(self, here: Here | None = None) -> bool:
        """Its holder was a process this runner can judge (same host, same boot, same PID
        namespace: its pid means the same process here) that no longer runs. Anything
        less (another container with the host's name, an older lease without the boot and
        namespace, a system that tells neither) is not proof: the lease runs out instead."""
        here = here or Here.current()
        if self.pid <= 0 or not here.boot or not here.pidns:
            return False
        if (self.host, self.boot, self.pidns) != (here.host, here.boot, here.pidns):
            return False
        return not here.runs(self.pid)

    def describe(self) -> str:
        return f"run {self.run[:8]} by {self.user} on {self.host} (pid {self.pid}) since {self.since}"


def _well_formed(lease: Lease) -> bool:
    texts = (lease.run, lease.user, lease.host, lease.since)
    numbers_ok = (
        isinstance(lease.pid, int)
        and isinstance(lease.renewal, int)
        and isinstance(lease.seconds, (int, float))
        and not isinstance(lease.seconds, bool)
    )
    optional = all(isinstance(t, str) and len(t) <= 256 for t in (lease.boot, lease.pidns))
    return all(isinstance(t, str) and 0 < len(t) <= 256 for t in texts) and numbers_ok and optional


def _bounded(seconds: float) -> float:
    """A lease's length as read: within the one bound. An older version let a longer (or
    shorter) one be configured and wrote it; the waiter waits at most the bound, which no
    holder of this version renews slower than."""
    if math.isnan(seconds):
        return float(LEASE_SECONDS_MAX)
    return float(min(max(seconds, LEASE_SECONDS_MIN), LEASE_SECONDS_MAX))


def check_seconds(seconds: float) -> float:
    """The lease's length this run writes: within the bound, or an error naming the setting."""
    if not (isinstance(seconds, (int, float)) and LEASE_SECONDS_MIN <= seconds <= LEASE_SECONDS_MAX):
        raise GitSyncError(
            f"ledger.git.leaseSeconds is {seconds}: it must be between {LEASE_SECONDS_MIN} and "
            f"{LEASE_SECONDS_MAX} seconds (a day, the longest EnOS keeps a job paused); nothing was sent"
        )
    return float(seconds)


@dataclass(frozen=True)
class Here:
    """Where a runner runs, as its lease records it and as it judges another's: host name,
    kernel boot id, PID namespace ("" for what the system does not tell) and its pid."""

    host: str
    boot: str
    pidns: str
    pid: int

    @classmethod
    def current(cls) -> Here:
        host, boot, pidns = this_host()
        return cls(host, boot, pidns, os.getpid())

    def runs(self, pid: int) -> bool:
        """A process with this pid runs in this PID namespace (or may: not ours to signal)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists, but not ours to signal
            return True
        return True


@functools.cache
def this_host() -> tuple[str, str, str]:
    """This process's host name, kernel boot id and PID namespace ("" for what the system
    does not tell): a lease's holder is judged dead at once only when all three match."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        ns = os.stat("/proc/self/ns/pid")
        pidns = f"{ns.st_dev}:{ns.st_ino}"
    except OSError:
        pidns = ""
    return socket.gethostname(), boot, pidns


def _sample(data: bytes) -> str:
    text = data[:80].decode(errors="replace").strip()
    return repr(text) + ("..." if len(data) > 80 else "")


def new_lease(run: str, user: str, since: str, seconds: float, here: Here | None = None) -> Lease:
    here = here or Here.current()
    return Lease(run, user, here.host, here.pid, since, 0, check_seconds(seconds), here.boot, here.pidns)


class LeaseWatch:
    """A waiting runner's view of another run's lease, by its own monotonic clock.

    `observe(lease)` after each fetch; `expired()` once the same lease (same run, same
    renewal) has been seen unchanged for its whole length, or at once when its holder
    is provably a dead process (`Lease.on_this_host_and_dead`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, here: Here | None = None) -> None:
        self._clock = clock
        self._here = here
        self._seen: Lease | None = None
        self._since = 0.0

    def observe(self, lease: Lease | None) -> None:
        if lease != self._seen:
            self._seen, self._since = lease, self._clock()

    def expired(self) -> bool:
        lease = self._seen
        if lease is None:
            return True
        if lease.on_this_host_and_dead(self._here):
            return True
        return self._clock() - self._since >= lease.seconds

    def left(self) -> float:
        """Seconds until `expired()` by this runner's clock, if nothing changes."""
        lease = self._seen
        return 0.0 if lease is None else max(0.0, lease.seconds - (self._clock() - self._since))


class Holding:
    """The holder's side: when its lease was last confirmed, by its own monotonic clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._confirmed: float | None = None

    def attempt(self) -> float:
        """Call as a renewal push starts; pass the value to `confirmed` once it landed."""
        return self._clock()

    def confirmed(self, started: float) -> None:
        self._confirmed = started if self._confirmed is None else max(self._confirmed, started)

    def released(self) -> None:
        self._confirmed = None

    def stands(self) -> bool:
        """Sending may go on: no waiter can have taken the lease over yet."""
        if self._confirmed is None:
            return False
        return self._clock() - self._confirmed < HOLDER_SHARE * self.seconds
