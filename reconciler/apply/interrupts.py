"""Ctrl-C and SIGTERM during a run: a flag the run reads at safe points, never an exception
raised at whatever line it is on (DESIGN "Apply" step 5; invariants 4 and 14).

Python runs a signal's handler in the main thread between two bytecodes, so the default
handler raises KeyboardInterrupt anywhere: inside `threading.Condition.__enter__` just
after its lock was acquired, inside `Future.done()` or `Event.wait()`, between a lock's
acquire and the `try` that releases it. Such a lock stays held, the threads that need it
block for ever, and a run waiting for them never starts its paused pipelines again.

So while a run is under way (`Interrupts.deferred()`, entered by `apply()` around the run
and its finish, in the main thread), SIGINT and SIGTERM, where they would raise
KeyboardInterrupt (their handler is `signal.default_int_handler`, as the CLI sets both),
get a handler that only counts them. The C-level handler also writes the signal's number
to a pipe (`signal.set_wakeup_fd`), which a watcher thread reads: on the first one it runs
the run's stop callbacks (halt: nothing new is sent; wake the run's waits), and it says
each later one (or any one during the finish) in the words of the step under way, as a
Ctrl-C in that step always has. The run's thread calls `check()` at its safe points and
raises KeyboardInterrupt there itself, so everything after is what a Ctrl-C has always
done: requests in flight waited for and recorded, paused pipelines started again, the
summary `interrupted`, exit 130. Before the run (planning, prompts, the sync) and after it,
Ctrl-C raises as it always has.

Off the main thread, or with a handler of the caller's own, nothing is deferred: a
KeyboardInterrupt raised in the run's thread (by a test, say) takes the same path.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

ALREADY_STOPPING = (
    "already stopping: requests in flight are waited for and recorded, then paused pipelines "
    "are started again"
)


class Interrupts:
    """The Ctrl-Cs and SIGTERMs of one run. `note` says a later one to the person watching."""

    def __init__(self, note: Callable[[str], None] = lambda _: None) -> None:
        self._note = note
        self._handled = 0  # counted by the handler, in the main thread
        self._woken = 0  # counted by the watcher, from the wakeup pipe
        self._raised = False  # check() raised: the run stopped on the first one
        self._why: Callable[[], str] | None = None  # the shielded step under way says this
        self._stops: list[Callable[[], None]] = []

    @property
    def heard(self) -> bool:
        """A Ctrl-C or SIGTERM came while the run was deferring them."""
        return bool(self._handled or self._woken)

    def _count(self) -> int:
        # Each counts every signal, at its own moment: the larger is how many came so far.
        return max(self._handled, self._woken)

    def on_stop(self, stop: Callable[[], None]) -> None:
        """Called, from the watcher thread, as the first Ctrl-C or SIGTERM comes: it must
        only set events and notify conditions (never wait on the run's thread)."""
        self._stops.append(stop)

    def check(self) -> None:
        """At a safe point of the run's thread: raise KeyboardInterrupt if one came."""
        if self.heard:
            self._raised = True
            raise KeyboardInterrupt

    def shielded(self, step: Callable[[], None], why: Callable[[], str]) -> bool:
        """Run `step` to its end through further Ctrl-Cs and SIGTERMs, each said as `why()`;
        whether one came. What runs here (waiting for requests in flight, starting pipelines
        again) must not be cut short: stopping halfway leaves a pipeline paused, or starts
        it while a request to it is in flight."""
        interrupted = False
        while True:
            before = self._count()
            self._why = why
            try:
                step()
            except KeyboardInterrupt:  # raised, not deferred (off the main thread): again
                interrupted = True
                self._note(why())
                continue
            finally:
                self._why = None
            return interrupted or self._count() != before

    def deferred(self) -> _Deferral:
        """While inside: SIGINT and SIGTERM that would raise KeyboardInterrupt are counted
        instead (in the main thread; elsewhere, nothing changes)."""
        return _Deferral(self)

    # --- in the main thread, between any two bytecodes ---

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs wherever the main thread is, maybe holding a lock: it takes none, and raises nothing.
        self._handled += 1

    # --- the watcher thread ---

    def _watch(self, fd: int, signums: frozenset[int]) -> None:
        while data := os.read(fd, 64):
            for signum in data:
                if signum in signums:
                    self._heard_one()

    def _heard_one(self) -> None:
        self._woken += 1
        if self._woken == 1:
            for stop in self._stops:
                stop()
        why = self._why
        if self._woken > 1 or (why is not None and not self._raised):
            self._note(why() if why is not None else ALREADY_STOPPING)


class _Deferral:
    """Installs the counting handler and the watcher; puts back what was there on exit,
    the handlers last (until then a signal is still counted, never raised)."""

    def __init__(self, interrupts: Interrupts) -> None:
        self._interrupts = interrupts
        self._handlers: dict[int, signal._HANDLER] = {}
        self._old_fd: int | None = None
        self._pipe: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> Interrupts:
        i = self._interrupts
        if threading.current_thread() is not threading.main_thread():
            return i  # signals reach the main thread only: nothing to defer here
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is signal.default_int_handler:
                # first: from here on a signal is counted, and no longer raised
                self._handlers[signum] = signal.signal(signum, i._handle)
        if not self._handlers:
            return i
        r, w = os.pipe()
        self._pipe = (r, w)
        os.set_blocking(w, False)  # set_wakeup_fd needs it; a full pipe drops bytes, not the signal
        self._watcher = threading.Thread(
            target=i._watch, args=(r, frozenset(self._handlers)), name="apply-signals", daemon=True
        )
        self._watcher.start()
        try:
            self._old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):  # no wakeup fd here: counted, heard at the run's next wake
            self._old_fd = None
        return i

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._old_fd is not None:
            signal.set_wakeup_fd(self._old_fd)
        if self._pipe is not None:
            r, w = self._pipe
            os.close(w)  # the watcher reads what is left, then the end of the pipe
            if self._watcher is not None:
                self._watcher.join()
            os.close(r)
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
