"""The commands, as functions of their arguments: pre-commit's `commands/` package.

Each takes its parsed arguments (`reconciler.args`), the consoles to write to and, when it
asks a person, how to ask; it owns the whole run and returns a `CommandOutcome` that carries the
exit code. `cli/` only declares the flags and hands the value over; no typer here, so a
test calls a command with an arguments object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import ApplyRefused

Ask = Callable[[str], str]
"""Put a question to the person at the terminal; their answer. Ctrl-C is KeyboardInterrupt."""

EXIT_CHANGES = 2  # `plan --detailed-exitcode`: changes pending
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class CommandOutcome:
    """How a command ended: its exit code (0 done or nothing to do, 1 error, 2 changes
    pending, 130 interrupted) and, for an error found after the work, what to say (on
    stderr, as `error: ...`). Errors found before any work are raised, not returned."""

    code: int = 0
    error: str | None = None


DONE = CommandOutcome()


def ask_stdin(question: str) -> str:
    """`ask` without a terminal library: the question on stderr, the answer from stdin."""
    print(question + ": ", end="", file=sys.stderr, flush=True)
    try:
        return input()
    except EOFError:
        raise KeyboardInterrupt from None


def approve(auto_approve: bool, ask: Ask, question: str = "Clear this state? It cannot be undone.") -> None:
    """Go on only if `auto_approve`, or the person at the terminal answers 'yes'."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ApplyRefused("no terminal to ask for approval; pass --auto-approve to go on non-interactively")
    if ask(f"{question} Only 'yes' will be accepted").strip() != "yes":
        raise ApplyRefused("cancelled; nothing was sent")
