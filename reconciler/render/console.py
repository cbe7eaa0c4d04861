"""The two output streams: data to stdout, messages and progress to stderr.

Only renderers and the CLI write to the terminal, through a `Consoles` value the
CLI makes once per command and passes down (no module-level console). rich
honours NO_COLOR and strips markup when not on a terminal. rich is imported on
first use only: `plan --format json` writes plain data and should not pay for it.
"""

from __future__ import annotations

import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

from reconciler.errors import Hinted

if TYPE_CHECKING:
    from rich.console import Console


class Consoles:
    """stdout for data and results, stderr for messages, warnings and progress."""

    def __init__(self, file_out: TextIO | None = None, file_err: TextIO | None = None) -> None:
        self._files = (file_out, file_err)

    @cached_property
    def out(self) -> Console:
        return _console(stderr=False, file=self._files[0])

    @cached_property
    def err(self) -> Console:
        return _console(stderr=True, file=self._files[1])

    @property
    def in_ci(self) -> bool:
        """Plain lines instead of a live progress bar: in CI, or when stderr is no terminal."""
        return bool(os.environ.get("CI")) or not self.err.is_terminal

    def write(self, data: str | bytes) -> None:
        """Machine-readable data goes to stdout as is, not through rich (UTF-8 bytes
        straight to the binary stream when there is one: a plan's 60 MB of JSON are
        not decoded only to be encoded again)."""
        out = self._files[0] or sys.stdout
        if isinstance(data, bytes):
            raw = getattr(out, "buffer", None)
            if raw is None:
                out.write(data.decode())
            else:
                out.flush()  # text written before it goes first
                raw.write(data)
                raw.flush()
            return
        out.write(data)
        out.flush()

    def write_parts(self, parts: list[bytes]) -> None:
        """`write(b"".join(parts))`, without the join where stdout is a file descriptor: one
        `os.writev` takes the parts as they are (a 1 MiB piece of a plan's action lines is a
        few hundred of them), so 60 MB of JSON are not copied once more before the write."""
        out = self._files[0] or sys.stdout
        fd = _descriptor(getattr(out, "buffer", None))
        if fd is None or len(parts) > _IOV_MAX:
            self.write(b"".join(parts))
            return
        out.flush()  # what was written before goes first (a text stream flushes its buffer too)
        _write_all(fd, parts)

    def warn(self, message: str) -> None:
        """One `warning:` prefix: a diagnostic (`file:line:col: warning: ...`) has its own."""
        if isinstance(message, Hinted):  # a core warning with a hint: in the CLI's words
            from reconciler.settings import advice

            message = advice(message)
        prefixed = message.startswith("warning: ") or ": warning: " in message.split("\n", 1)[0]
        self.err.print(message if prefixed else f"warning: {message}", markup=False, style="yellow")


def make_consoles(file_out: TextIO | None = None, file_err: TextIO | None = None) -> Consoles:
    return Consoles(file_out, file_err)


def _console(*, stderr: bool, file: TextIO | None) -> Console:
    from rich.console import Console

    console = Console(
        stderr=stderr,
        file=file,
        highlight=False,
        emoji=False,  # "file.jsonl:100: ..." must not print as "file.jsonl💯 ..."
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ,
    )
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        # A CI log or a file has no width: rich would take 80 columns and cut IDs and
        # error lines in tables. Lines are as long as their content instead.
        console.width = NO_TERMINAL_WIDTH
    return console


NO_TERMINAL_WIDTH = 4096


# `os.writev` takes at most this many parts (POSIX guarantees 16; Linux and macOS take 1024).
_IOV_MAX = max(16, os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in getattr(os, "sysconf_names", {}) else 16)


def _descriptor(raw: object) -> int | None:
    """The file descriptor under a binary stream, if it has one and `os.writev` exists."""
    if raw is None or not hasattr(os, "writev"):
        return None
    try:
        return int(raw.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Every byte of `parts`, in order: `os.writev` may write only some (a pipe, a signal)."""
    pending: list[bytes | memoryview] = list(parts)
    left = sum(map(len, pending))
    while left:
        written = os.writev(fd, pending)
        left -= written
        if not left:
            return
        done = 0
        while written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        pending = pending[done:]
        pending[0] = memoryview(pending[0])[written:]
