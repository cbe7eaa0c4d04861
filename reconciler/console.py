"""The two output streams: data to stdout, messages and progress to stderr.

Only renderers and the CLI write to the terminal, and they do it through these
consoles. rich honours NO_COLOR and strips markup when not on a terminal.
"""

from __future__ import annotations

import os

from rich.console import Console


def _console(stderr: bool) -> Console:
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ,
    )


out = _console(stderr=False)
err = _console(stderr=True)


def in_ci() -> bool:
    return bool(os.environ.get("CI")) or not err.is_terminal
