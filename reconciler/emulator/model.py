"""The emulator's plain values: fault injection settings, one emulated pipeline (status,
stages, stage state) and the clock tests move by hand. No HTTP and no locking here;
`World` owns the locking."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator.seed import EmulatorError

FAULT_KINDS = (
    "latency",
    "http500",
    "http503",
    "http429",
    "drop",
    "61199",
    "data_false",
    "lost_answer",
    "token_expiry",
)
# A gateway that answers a delete `data: true` and does something else (DESIGN "Canary",
# invariant 16): `kept` clears nothing, `cleared_others` also clears every other cell of
# the stage. Never among the default kinds: a run meets them only when they are named.
LIE_KINDS = ("kept", "cleared_others")
# What a fault does, as `reconcile emulator --help` lists it.
FAULT_HELP = {
    "latency": "the answer comes 200 ms late",
    "http500": "HTTP 500",
    "http503": "HTTP 503",
    "http429": "HTTP 429 with Retry-After",
    "drop": "the connection drops before any effect",
    "61199": "code 61199 (internal error)",
    "data_false": "a delete answers data: false",
    "lost_answer": "a delete takes effect, then the connection drops unanswered",
    "token_expiry": "the token expires after it has served",
    "kept": "a delete answers true and keeps the state",
    "cleared_others": "a delete answers true and also clears the stage's other cells",
}
DELETE_ONLY = frozenset({"data_false", "lost_answer", *LIE_KINDS})  # only a delete can meet these


@dataclass
class Faults:
    """Fault injection, seeded so runs repeat. `rate` is per business request."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    latency_ms: float = 0.0
    extra_latency_ms: float = 200.0
    retry_after: float = 0.05
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)
    turn: int = 0

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)
        unknown = set(self.kinds) - set(FAULT_KINDS) - set(LIE_KINDS)
        if unknown:
            raise EmulatorError(
                f"unknown fault kinds: {sorted(unknown)}; known: {', '.join(FAULT_KINDS + LIE_KINDS)}"
            )


@dataclass
class Pipeline:
    pipeline_id: str
    org_id: str
    name: str
    status: str
    execution_mode: int
    kafka_rate: int | None
    stages: dict[str, str]
    fill_state: bool = False
    released: bool = True
    pause_delay: float = 0.0
    pausing_since: float | None = None
    lag: int = 0  # what Get Pipeline Offset and Lag reports while RUNNING
    # explicit state: stage -> asset -> points
    cells: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # fill-state mode: every cell has state unless a delete rectangle covers it
    deleted: dict[str, list[tuple[frozenset[str], frozenset[str]]]] = field(default_factory=dict)
    wiped: set[str] = field(default_factory=set)  # stages a lying delete cleared whole (fill-state)
    # values a state file seeds (value, time, quality, dq), per rectangle; the last one wins
    seeded: list[tuple[str, frozenset[str], frozenset[str], dict[str, Any]]] = field(default_factory=list)

    def seeded_for(self, stage: str, asset: str, point: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for s, assets, points, values in self.seeded:
            if s == stage and asset in assets and point in points:
                found = values
        return found

    def current_status(self, now: float) -> str:
        if self.pausing_since is not None and now >= self.pausing_since + self.pause_delay:
            self.status, self.pausing_since = "PAUSED", None
        return self.status

    def has_state(self, stage: str, asset: str, point: str) -> bool:
        if self.fill_state:
            if stage in self.wiped:
                return False
            return not any(asset in a and point in p for a, p in self.deleted.get(stage, ()))
        return point in self.cells.get(stage, {}).get(asset, ())

    def delete(self, stage: str, assets: list[str], points: list[str]) -> None:
        if self.fill_state:
            self.deleted.setdefault(stage, []).append((frozenset(assets), frozenset(points)))
        by_asset = self.cells.get(stage, {})
        for a in assets:
            if a in by_asset:
                by_asset[a].difference_update(points)

    def wipe(self, stage: str) -> None:
        """Every cell of `stage` loses its state (the `cleared_others` lie)."""
        if self.fill_state:
            self.wiped.add(stage)
        for points in self.cells.get(stage, {}).values():
            points.clear()


class FakeClock:
    """A clock tests move by hand: `World(clock=clock)`, then `clock.advance(seconds)`."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
