"""operations: the lease heartbeat that keeps another runner off a run's requests."""

from __future__ import annotations

import threading

from reconciler.apply import NullReporter
from reconciler.errors import GitSyncError
from reconciler.operations import _Heartbeat


class FlakySync:
    """A ledger remote whose pushes start failing after `good` renewals."""

    def __init__(self, good: int, lease_seconds: float = 0.3) -> None:
        self.lease_seconds = lease_seconds
        self.good = good
        self.calls = 0
        self.renewed = threading.Event()

    def heartbeat(self) -> None:
        self.calls += 1
        if self.calls > self.good:
            raise GitSyncError("cannot push the ledger to origin/main: connection refused")
        self.renewed.set()


def test_renewals_keep_the_run_going() -> None:
    sync = FlakySync(good=10**6)
    beat = _Heartbeat(sync, NullReporter())  # type: ignore[arg-type]
    beat.start()
    assert sync.renewed.wait(5)
    beat.stop()
    assert not beat.lost.is_set()


def test_a_lease_that_may_run_out_stops_the_run() -> None:
    sync = FlakySync(good=1)
    reporter = NullReporter()
    beat = _Heartbeat(sync, reporter)  # type: ignore[arg-type]
    beat.start()
    assert beat.lost.wait(5)  # set before the lease (0.3 s after the last renewal) runs out
    beat.stop()
    assert any("could not renew the ledger lease" in n for n in reporter.notes)
    assert any("sending nothing more" in n for n in reporter.notes)
