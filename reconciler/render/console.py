"""The two output streams: data to stdout, messages and progress to stderr.

Only renderers and the CLI write to the terminal, through a `Consoles` value the
CLI makes once per run and passes down (no module-level console). rich honours
NO_COLOR and strips markup when not on a terminal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console


@dataclass(frozen=True)
class Consoles:
    """stdout for data and results, stderr for messages, warnings and progress."""

    out: Console
    err: Console

    @property
    def in_ci(self) -> bool:
        """Plain lines instead of a live progress bar: in CI, or when stderr is no terminal."""
        return bool(os.environ.get("CI")) or not self.err.is_terminal

    def write(self, data: str) -> None:
        """Machine-readable data goes to stdout as is, not through rich."""
        self.out.file.write(data)
        self.out.file.flush()

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", markup=False, style="yellow")


def make_consoles(file_out: TextIO | None = None, file_err: TextIO | None = None) -> Consoles:
    return Consoles(_console(stderr=False, file=file_out), _console(stderr=True, file=file_err))


def _console(*, stderr: bool, file: TextIO | None) -> Console:
    return Console(
        stderr=stderr,
        file=file,
        highlight=False,
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ,
    )
