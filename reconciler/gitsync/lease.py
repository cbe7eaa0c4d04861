"""The lease: which run is sending from a ledger branch (DESIGN "The ledger in git", the
lease rules; invariant 9 across runners).

A lease file (`<ledger>.lease` on the branch) is written with the write-ahead push,
renewed while the run sends, and removed by its final push. Whether another run's
lease has run out never depends on two runners' clocks agreeing: the waiting runner
judges it by what it observes itself (`LeaseWatch`: no renewal seen for the lease's
length on its own monotonic clock). A lease whose holder is a dead process on this
same host is taken over at once. The holder keeps its own side (`Holding`): it may
send only while its last confirmed renewal is recent enough that no waiter can have
taken over.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

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

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    def renewed(self) -> Lease:
        return Lease(self.run, self.user, self.host, self.pid, self.since, self.renewal + 1, self.seconds)

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
        return lease

    def on_this_host_and_dead(self) -> bool:
        """Its holder was a process on this host that no longer runs."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, but not ours to signal
            return False
        return False

    def describe(self) -> str:
        return f"run {self.run[:8]} by {self.user} on {self.host} (pid {self.pid}) since {self.since}"


def _well_formed(lease: Lease) -> bool:
    texts = (lease.run, lease.user, lease.host, lease.since)
    numbers_ok = (
        isinstance(lease.pid, int)
        and isinstance(lease.renewal, int)
        and isinstance(lease.seconds, (int, float))
        and not isinstance(lease.seconds, bool)
        and math.isfinite(lease.seconds)
        and 0 < lease.seconds <= 86_400
    )
    return all(isinstance(t, str) and 0 < len(t) <= 256 for t in texts) and numbers_ok


def _sample(data: bytes) -> str:
    text = data[:80].decode(errors="replace").strip()
    return repr(text) + ("..." if len(data) > 80 else "")


def new_lease(run: str, user: str, since: str, seconds: float) -> Lease:
    return Lease(run, user, socket.gethostname(), os.getpid(), since, 0, float(seconds))


class LeaseWatch:
    """A waiting runner's view of another run's lease, by its own monotonic clock.

    `observe(lease)` after each fetch; `expired()` once the same lease (same run, same
    renewal) has been seen unchanged for its whole length, or at once when its holder
    is a dead process on this host.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: Lease | None = None
        self._since = 0.0

    def observe(self, lease: Lease | None) -> None:
        if lease != self._seen:
            self._seen, self._since = lease, self._clock()

    def expired(self) -> bool:
        lease = self._seen
        if lease is None:
            return True
        if lease.on_this_host_and_dead():
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
