"""What apply is given and gives back: options, the result, the reporter it talks to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from reconciler import durations
from reconciler.errors import LedgerWriteError
from reconciler.plan import Action
from reconciler.plan.rollout import DEFAULT_MAX_PAUSE, DEFAULT_MAX_PAUSED
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.enos import OffsetLag
    from reconciler.windows import Deferred


class Outcome(Enum):
    """What one request came to, as the person watching is told."""

    DONE = "done"  # cleared (or, when verifying, read back empty)
    FAILED = "failed"  # definitely refused, or state remains: pending again
    IN_DOUBT = "in doubt"  # may or may not have taken effect
    # Not sent (or refused again) after a refusal that holds for its whole stage, pipeline
    # or org: pending again, counted as failed, told once per key (DESIGN "Apply" step 7).
    HELD = "held"


class Reporter(Protocol):
    """What apply tells the person watching; `render.apply` draws it (progress bar or lines)."""

    def note(self, message: str) -> None: ...
    def start(self, requests: int, cells: int, verb: str = "clear") -> None: ...
    def advance(self, action: Action, outcome: Outcome, message: str = "") -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    """A reporter that keeps the notes: for tests and for callers that only want the result."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.advanced: list[tuple[Action, Outcome, str]] = []
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)

    def start(self, requests: int, cells: int, verb: str = "clear") -> None:
        pass

    def advance(self, action: Action, outcome: Outcome, message: str = "") -> None:
        with self._lock:
            self.advanced.append((action, outcome, message))

    def finish(self) -> None:
        pass


class StartSettings(NamedTuple):
    """How to start a pipeline again, from reconcile.yaml `pipelines`: the start body."""

    execution_mode: int
    kafka_rate: int
    resource_config: str | None = None  # canonical JSON, sent as the body's resourceConfig


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int = 4
    pause_pipelines: bool = False
    skip_pause_check: bool = False
    resend_in_doubt: bool = False
    verify: bool = False
    kafka_rate: int | None = None
    resume_settings: Mapping[PipelineRef, StartSettings] = field(default_factory=dict)
    pause_timeout: float = 600.0  # how long a pause or a start may take to show in the status
    poll_interval: float = 2.0
    start_timeout: float = 600.0  # how long a start refused with 61121 is tried again
    start_backoff: float = 1.0  # the first wait after a 61121; doubled each time, up to 30 s
    actor: dict[str, Any] = field(default_factory=dict)
    write_ahead: bool = False  # every pause and intent recorded (and published) before any call
    snapshot: str | None = None  # apply --snapshot FILE: the state read before each delete (snapshot.py)
    # The rollout (DESIGN "Gentle on production"): pipelines paused by the run at once, the
    # longest one pause (seconds), and the canary of each stage's first request.
    max_paused: int = DEFAULT_MAX_PAUSED
    max_pause: float = DEFAULT_MAX_PAUSE
    canary: bool = True  # apply.rollout.canary, --no-canary (DESIGN "Gentle on production")
    # Asked right before each pause begins, with its estimated seconds: None (go) or why
    # not (the pause is not begun, its requests stay pending, the run says "deferred").
    gate: Callable[[float], str | None] | None = None


@dataclass
class ApplyResult:
    """What a run did. Filled in the run's own thread only (workers return outcomes)."""

    deleted: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    in_doubt: list[tuple[Action, str]] = field(default_factory=list)
    skipped_in_doubt: list[Action] = field(default_factory=list)
    not_sent: list[Action] = field(default_factory=list)
    paused: list[PipelineRef] = field(default_factory=list)
    not_paused: list[tuple[PipelineRef, str]] = field(default_factory=list)  # refused, or never PAUSED
    resumed: list[PipelineRef] = field(default_factory=list)
    resume_failed: list[tuple[PipelineRef, str]] = field(default_factory=list)
    stopped_pipelines: list[tuple[PipelineRef, str]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # one per stage, pipeline or org
    lags: list[tuple[PipelineRef, OffsetLag]] = field(default_factory=list)  # after the starts
    verify_failed: list[tuple[Action, int]] = field(default_factory=list)
    ledger_error: LedgerWriteError | None = None
    interrupted: bool = False
    # For the summary people and dashboards read: pipeline names as List Pipelines gave
    # them, when each pipeline this run paused was paused (clock) and for how long it
    # stayed paused (seconds), and the ledger's seq before and after the run.
    names: dict[PipelineRef, str] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)  # each pause of ours, as it went
    ledger_seqs: tuple[int, int] | None = None
    deferred: str | None = None  # the gate said not now: why (requests in `deferred_actions`)
    deferred_actions: list[Action] = field(default_factory=list)
    canary: str | None = None  # a stage's first request showed the gateway lying: what it did
    max_pause: float | None = None  # maxPause in force: a pause past it is said in its words
    canary_off: bool = False  # --no-canary / apply.rollout.canary: false: no request was read back
    # Stages whose canary had no next request to read (a single request): checked only
    # that the gateway did not keep the state, not that it cleared nothing else.
    kept_only: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def paused_seconds(self) -> dict[PipelineRef, float]:
        """How long each pipeline this run paused stayed paused, all its pauses together."""
        out: dict[PipelineRef, float] = {}
        for s in self.spans:
            out[s.ref] = out.get(s.ref, 0.0) + s.seconds
        return out

    def longest(self, ref: PipelineRef) -> Span | None:
        return max((s for s in self.spans if s.ref == ref), key=lambda s: s.seconds, default=None)

    def started(self, ref: PipelineRef) -> None:
        """`ref` reported RUNNING again: listed once, however many pauses maxPause split it into."""
        if ref not in self.resumed:
            self.resumed.append(ref)

    def pause_words(self, ref: PipelineRef) -> str | None:
        """How long `ref` stayed paused: in all, in how many pauses, the longest, and whether
        one ran past twice its estimate (DESIGN "Gentle on production"); None if never ours."""
        spans = [s for s in self.spans if s.ref == ref]
        earlier = self.earlier_pauses.get(ref)
        if earlier is not None and earlier.seconds is not None:
            return f"paused {durations.compact(earlier.seconds)}, since {earlier.at} (by an earlier run, left paused)"
        if not spans:
            return None
        total = sum(s.seconds for s in spans)
        words = f"paused {durations.compact(total)}"
        longest = max(spans, key=lambda s: s.seconds)
        if len(spans) > 1:
            words += f" in {len(spans)} pauses, longest {durations.compact(longest.seconds)}"
        if self.max_pause is not None and longest.seconds > self.max_pause:  # honest: said, not hidden
            words += f" (over maxPause {durations.spelled(self.max_pause)}: requests in flight were answered first)"
        over = [s for s in spans if s.overran]
        if over:
            worst = max(over, key=lambda s: s.seconds / max(s.estimate or 1.0, 1e-9))
            words += f" (over twice its estimate of {durations.compact(worst.estimate or 0.0)})"
        return words

    outside_window: Deferred | None = None  # apply.windows was closed: nothing paused or sent (windows.py)
    # Pipelines an earlier (interrupted) run left paused that this run found PAUSED.
    earlier_pauses: dict[PipelineRef, EarlierPause] = field(default_factory=dict)

    def started_at(self, ref: PipelineRef, at: float) -> None:
        """`ref` reports RUNNING at `at` (clock): an earlier run's pause ends there."""
        earlier = self.earlier_pauses.get(ref)
        if earlier is not None:
            earlier.seconds = earlier.found + max(0.0, at - earlier.clock)

    def label(self, ref: PipelineRef) -> str:
        """`p1 (Wind averages)`: the ID, and the name people know it by when there is one."""
        name = self.names.get(ref, "")
        return ref.pipeline_id + (f" ({name})" if name and name != ref.pipeline_id else "")

    @property
    def ok(self) -> bool:
        return not (
            self.failed
            or self.in_doubt
            or self.skipped_in_doubt
            or self.not_sent
            or self.not_paused
            or self.resume_failed
            or self.verify_failed
            or self.ledger_error
            or self.interrupted
            or self.canary
        )

    @property
    def cells_deleted(self) -> int:
        return sum(a.cells for a in self.deleted)


@dataclass(frozen=True)
class Resume:
    """A pipeline to start again at the end, with the body its `pause` record holds (and
    reconcile.yaml's resourceConfig for it)."""

    ref: PipelineRef
    execution_mode: int
    kafka_rate: int
    resource_config: str | None = None


@dataclass(frozen=True)
class Pause:
    """One step of the rollout: a pipeline, the requests it is sent during this pause, and
    how long the pause should hold it. `resume` is how to start it again: None for a
    pipeline that is not ours (a person paused it; no pause, no start, no budget).
    `paused` says it is already paused by us (left by an earlier run): no pause call."""

    ref: PipelineRef
    actions: tuple[Action, ...]
    estimate: float
    resume: Resume | None
    paused: bool = False

    @property
    def ours(self) -> bool:
        return self.resume is not None


@dataclass
class EarlierPause:
    """A pause an earlier run left (invariant 14): its `pause` record's time (`at`), how long
    the pipeline had been paused when this run found it (`found`: this run's wall clock less
    the record's time) at `clock` (this run's clock), and, once this run started it, how long
    it stayed paused in all (`seconds`)."""

    at: str
    found: float
    clock: float
    seconds: float | None = None


@dataclass(frozen=True)
class Span:
    """A pause of ours as it went: how long the pipeline stayed paused, against the estimate."""

    ref: PipelineRef
    seconds: float
    estimate: float | None

    @property
    def overran(self) -> bool:
        """Longer than twice its estimate (and by more than a second: polls are coarse)."""
        return self.estimate is not None and self.seconds > max(2 * self.estimate, self.estimate + 1)


class DoneKind(Enum):
    """What one request (or half of one) came to, in the worker that sent it."""

    DELETED = "deleted"
    FAILED = "failed"  # pending again
    DOUBT = "doubt"  # may have acted: re-sent while the pipeline is still paused
    IN_DOUBT = "in doubt"  # left in doubt for good
    NOT_SENT = "not sent"
    POSTPONED = "postponed"  # its pause reached maxPause first: sent in a later pause
    VERIFIED = "verified"
    VERIFY_FAILED = "verify failed"  # `left` items remain (-1: could not be read)
    STOP = "stop"  # a ledger append failed: `error`, and the run sends nothing more


@dataclass(frozen=True)
class Done:
    """One outcome; `evidence`: the snapshot digests its `delete` record carries."""

    kind: DoneKind
    action: Action
    message: str = ""
    left: int = 0
    error: LedgerWriteError | None = None
    evidence: tuple[dict[str, Any], ...] | None = None


@dataclass
class Refusal:
    """A definite refusal that holds for a whole key (DESIGN "Apply" step 7): 61107 for a
    stage, 61106 for a pipeline, an auth error (or no streaming API) for an org."""

    scope: str  # "stage", "pipeline" or "org"
    key: tuple[str, ...]  # (org, pipeline, stage), (org, pipeline) or (org,)
    message: str
    code: int | None
    requests: int = 1  # refused, or not sent because of it

    @property
    def where(self) -> str:
        return "/".join(self.key)
