"""Emulators for tests: started on a free loopback port, stopped in the background.

uvicorn takes about 0.2 s of wall time, and no CPU, to stop: its main loop looks at
`should_exit` every 0.1 s, then it gives open connections 0.1 s. No test needs to wait for
that (a test is done with its emulator when it stops it, and the next one listens on its
own port), yet waiting for it cost every emulator test 0.2 s: about 45 s over the suite.
So `stop_later` stops an emulator in a thread, and `join_stopped` (conftest, at the end of
the session) waits for them all: no server outlives the session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.emulator import RunningEmulator, World

_stopping: list[threading.Thread] = []


def stop_later(em: RunningEmulator) -> None:
    """Stop `em` in a thread; `join_stopped` waits for it."""
    thread = threading.Thread(target=em.stop, name=f"stop emulator {em.url}", daemon=True)
    thread.start()
    _stopping.append(thread)


def join_stopped() -> None:
    """Wait until every emulator `stop_later` was given has stopped."""
    while _stopping:
        _stopping.pop().join()


@contextmanager
def running(world: World) -> Iterator[RunningEmulator]:
    """`with RunningEmulator(world) as em`, except that it stops in the background."""
    em = RunningEmulator(world).start()
    try:
        yield em
    finally:
        stop_later(em)
