"""The project's error tree and diagnostics.

Every problem a user can cause or meet is a `ReconcilerError`; the CLI maps it to
a short message and an exit code, never a traceback (STYLE: errors reach people
once, well). Problems in input files are `Diagnostic` values, collected and
reported together rather than raised one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
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


class Hint(str, Enum):
    """A setting that would get past an error, or that a message is about, named
    neutrally: the core says what went wrong and which setting helps; the CLI says how its
    command spells it (review L-1). A hint may carry the setting's value (`hint_value`)."""

    PAUSE_PIPELINES = "pause_pipelines"
    LEDGER_IN_GIT = "ledger_in_git"
    LEDGER_MISSING = "ledger_missing"  # the ledger named does not exist: its path may be wrong
    LEDGER_NONE_YET = "ledger_none_yet"  # planning against no ledger: nothing applied, or the wrong path
    LEDGER_SEGMENT = "ledger_segment"  # a segment named as the ledger (value: the main file)
    TARGETS = "targets"  # a target that names no manifest
    START_PIPELINE = "start_pipeline"  # a start in doubt to settle, as ORG/PIPELINE
    SETTLE_START = "settle_start"  # what settles a start in doubt (value: its ORG/PIPELINE)
    RESEND_IN_DOUBT = "resend_in_doubt"
    KAFKA_RATE = "kafka_rate"
    SNAPSHOT = "snapshot"  # the evidence file (value: its path)
    SNAPSHOT_PER_RUN = "snapshot_per_run"  # each run's evidence is in the file that run wrote
    START_TIMEOUT = "start_timeout"  # (value: the timeout, in words)
    COUNTS = "counts"  # show's first N or last N (value: which, "limit" or "tail")
    FILTER = "filter"  # a filter of the history (value: its name, as `ledger.select` takes it)
    IGNORE_WINDOW = "ignore_window"
    ALLOW_UNREVIEWED = "allow_unreviewed"
    SAVED_PLAN = "saved_plan"  # make the saved plan again


class ReconcilerError(Exception):
    """Root of every error the CLI reports as a message with exit code 1; `hint`, when
    set, is advice the CLI adds in its own words (`settings.ADVICE`). `details` are lines
    said under the message, each of which may be a `Hinted` with advice of its own (one
    error about several things, each settled its own way)."""

    exit_code = 1
    hint: Hint | None = None
    hint_value: str = ""
    details: tuple[str, ...] = ()

    def __init__(
        self, *args: object, hint: Hint | None = None, hint_value: str = "", details: Sequence[str] = ()
    ) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint, self.hint_value = hint, hint_value
        if details:
            self.details = tuple(details)

    @property
    def headline(self) -> str:
        """The message without its details."""
        return super().__str__()

    def __str__(self) -> str:
        return self.headline + "".join(f"\n  {line}" for line in self.details)


class Hinted(str):
    """A note or warning (not an error) with a `Hint`: the same text to a library caller,
    the CLI's advice added where it shows it (`settings.advice`). Joining or formatting
    it gives a plain `str`, so it is handed on whole."""

    hint: Hint
    hint_value: str

    def __new__(cls, text: str, hint: Hint, hint_value: str = "") -> Hinted:
        said = super().__new__(cls, text)
        said.hint, said.hint_value = hint, hint_value
        return said


class InputError(ReconcilerError):
    """Bad input files: carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors):,} error{'' if len(errors) == 1 else 's'} in manifests")


class LedgerError(ReconcilerError):
    """The ledger is unreadable or its hash chain is broken."""


class LockError(ReconcilerError):
    """Another process holds the ledger lock."""


class LedgerLocked(LockError):
    """The ledger file's local lock is held (commands that can wait say how)."""


class PlanError(ReconcilerError):
    """A saved plan is stale, tampered with, or refused by a guardrail."""


class ApplyRefused(ReconcilerError):
    """Apply stopped before sending anything (pre-flight, approval, pause check)."""


class EnosError(ReconcilerError):
    """Base of the errors the EnOS client raises; nothing above it sees httpx.

    `definite` is True when the gateway certainly did not act on the request (it
    refused it, or it never left this machine): apply then records a `failed`
    record and the cells are pending again. False means the call may have taken
    effect (an answer lost, a timeout, a 5xx): the request stays in doubt.
    """

    definite = False

    def __init__(self, message: str, *, code: int | None = None, definite: bool | None = None) -> None:
        super().__init__(message)
        self.code = code
        if definite is not None:
            self.definite = definite


class TransientError(EnosError):
    """May pass later: connection drops, timeouts, HTTP 5xx/429, data:false."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        definite: bool | None = None,
    ) -> None:
        super().__init__(message, code=code, definite=definite)
        self.retry_after = retry_after


class NotPausedError(EnosError):
    """61199 on a delete: the client does not retry it; apply re-reads the pipeline's status
    and sends more only while the pipeline is still PAUSED (DESIGN "Apply" step 5)."""


class TooManyPointsError(EnosError):
    """61105: the gateway takes fewer points per request; apply splits the request."""

    definite = True


class PermanentError(EnosError):
    """The API refused the request for a reason retrying cannot fix."""

    definite = True


class OrgBusyError(EnosError):
    """61121 on a start: another stream-processing job of the org is being started. The
    start was refused (definite); apply tries it again with backoff for up to
    `--start-timeout` (DESIGN "Apply" step 8)."""

    definite = True


class ApiNotAvailable(PermanentError):
    """The gateway has no Stream Processing API (HTTP 404 on its routes: EnOS 3.x)."""


class AuthError(EnosError):
    """Credentials are wrong or a token was refused even after a fresh one."""

    definite = True


class LedgerWriteError(LedgerError):
    """An append failed (disk full, file gone, read-only): the run stops sending at once."""


class ConfigError(ReconcilerError):
    """The repository config file (reconcile.yaml) is invalid."""


class GitSyncError(ReconcilerError):
    """Keeping the ledger in git failed: fetch, fast-forward, commit or push."""


class LedgerBehind(GitSyncError):
    """The local ledger is behind or has diverged from the remote branch and cannot be
    fast-forwarded safely: never plan from it."""


class LedgerMoved(GitSyncError):
    """The compare-and-swap was lost: the remote ledger changed since this run read it.
    The caller re-syncs and re-plans before sending anything."""


class PushRefused(GitSyncError):
    """The remote refused the push for lack of permission (a protected branch)."""


class LedgerNotAnchored(GitSyncError):
    """The ledger on the branch is not the one this tool last published (cut, rewritten,
    forged, force-pushed, deleted or moved): DESIGN invariant 13. Nothing is planned or sent."""


class Unreviewed(ApplyRefused):
    """With the ledger in git, the manifests are not those of a commit on the remote's
    branch (uncommitted, unpushed or another branch): DESIGN invariant 12."""
