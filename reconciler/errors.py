"""The project's error tree and diagnostics.

Every problem a user can cause or meet is a `ReconcilerError`; the CLI maps it to
a short message and an exit code, never a traceback (STYLE: errors reach people
once, well). Problems in input files are `Diagnostic` values, collected and
reported together rather than raised one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem or warning at a place in a file (1-based line and column)."""

    path: str
    line: int
    col: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        return f"{where}: {prefix}{self.message}"


class ReconcilerError(Exception):
    """Root of every error the CLI reports as a message with exit code 1."""

    exit_code = 1


class InputError(ReconcilerError):
    """Bad input files: carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in manifests")


class LedgerError(ReconcilerError):
    """The ledger is unreadable or its hash chain is broken."""


class LockError(ReconcilerError):
    """Another process holds the ledger lock."""


class PlanError(ReconcilerError):
    """A saved plan is stale, tampered with, or refused by a guardrail."""


class ApplyRefused(ReconcilerError):
    """Apply stopped before sending anything (pre-flight, approval, pause check)."""


class EnosError(ReconcilerError):
    """Base of the errors the EnOS client raises; nothing above it sees httpx."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(EnosError):
    """May pass later: connection drops, timeouts, HTTP 5xx/429, 61199, data:false."""

    def __init__(self, message: str, *, code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TooManyPointsError(EnosError):
    """61105: the gateway takes fewer points per request; apply splits the request."""


class PermanentError(EnosError):
    """The API refused the request for a reason retrying cannot fix."""


class AuthError(EnosError):
    """Credentials are wrong or a token was refused even after a fresh one."""
