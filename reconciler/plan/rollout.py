"""The rollout: in which order apply pauses pipelines, how many pauses each needs and how
long each should hold it (DESIGN "Gentle on production (the rollout)").

Pure functions of the plan's requests and a few figures (no network, no clock): `plan`
shows what they give, and `apply` runs the same schedule. Pipelines with fewer requests
go first, so a problem shows before the longest pause; a pipeline's requests are cut into
pauses that each fit `maxPause` at the assumed latency (apply also cuts a pause short
when it reaches `maxPause` for real).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.plan.values import Action, PipelineRef

DEFAULT_MAX_PAUSED = 2
DEFAULT_MAX_PAUSE = 3600.0  # 1h
# What one call is assumed to take before apply has measured any (and offline, to count
# pauses): 200 ms, a slow gateway's figure (issue 25).
ASSUMED_LATENCY = 0.2
# A canary: its cells read (the snapshot's read, with --snapshot), the request with no
# other delete in flight, its cells read again, one after the other; the next request's
# cells are read alongside each read, in no more time.
CANARY_CALLS = 3
PAUSE_CALLS = 4  # pause, its status read, start, its status read


@dataclass(frozen=True)
class Costs:
    """What a pause's estimate counts: one call's latency (None: unknown, offline), the
    requests sent at once, and whether the canary and the snapshot add their reads."""

    latency: float | None
    concurrency: int = 4
    canary: bool = True
    snapshot: bool = False

    def seconds(self, requests: int, stages: int) -> float | None:
        """How long a pause of `requests` to `stages` stages holds its pipeline."""
        if self.latency is None:
            return None
        canaries = min(stages, requests) if self.canary else 0  # each stage's first, sent alone
        rest = requests - canaries
        reads = rest if self.snapshot else 0  # one read before each delete (a canary's is its own)
        calls = math.ceil((rest + reads) / max(1, self.concurrency)) + PAUSE_CALLS
        return (calls + CANARY_CALLS * canaries) * self.latency

    def per_pause(self, max_pause: float) -> int:
        """The requests one pause may hold so that it fits `max_pause` (at least one)."""
        latency = self.latency if self.latency is not None else ASSUMED_LATENCY
        per_request = latency * (2 if self.snapshot else 1) / max(1, self.concurrency)
        return max(1, int(max_pause * 0.9 / per_request) if per_request > 0 else 1 << 30)


@dataclass(frozen=True)
class PipelineRollout:
    """One pipeline in the order apply takes it: its requests, its pauses and each pause's
    estimate (None offline). `pauses` is 0 for a pipeline apply does not pause."""

    ref: PipelineRef
    requests: int
    pauses: int
    estimated_pause_seconds: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "orgId": self.ref.org_id,
            "pipelineId": self.ref.pipeline_id,
            "requests": self.requests,
            "pauses": self.pauses,
            "estimatedPauseSeconds": (
                round(self.estimated_pause_seconds, 1) if self.estimated_pause_seconds is not None else None
            ),
        }


def by_pipeline(actions: Iterable[Action]) -> list[tuple[PipelineRef, tuple[Action, ...]]]:
    """Each pipeline's requests, fewer requests first (then by org and ID, so it repeats)."""
    found: dict[PipelineRef, list[Action]] = {}
    for a in actions:
        found.setdefault(a.pipeline, []).append(a)
    return sorted(((ref, tuple(acts)) for ref, acts in found.items()), key=lambda x: (len(x[1]), x[0]))


def chunks(actions: Sequence[Action], per_pause: int) -> list[tuple[Action, ...]]:
    """A pipeline's requests cut into pauses of at most `per_pause` requests."""
    n = max(1, per_pause)
    return [tuple(actions[i : i + n]) for i in range(0, len(actions), n)] or [()]


def stages(actions: Iterable[Action]) -> int:
    return len({a.stage for a in actions})


def rollout(
    actions: Iterable[Action],
    pausing: Iterable[PipelineRef],
    costs: Costs,
    max_pause: float = DEFAULT_MAX_PAUSE,
) -> list[PipelineRollout]:
    """Every pipeline with requests, in apply's order; those in `pausing` (RUNNING, paused
    by apply) with their pauses and the estimate of their longest one."""
    paused = set(pausing)
    out: list[PipelineRollout] = []
    for ref, acts in by_pipeline(actions):
        if ref not in paused:
            out.append(PipelineRollout(ref, len(acts), 0, None))
            continue
        parts = chunks(acts, costs.per_pause(max_pause))
        longest = max((costs.seconds(len(p), stages(p)) for p in parts), key=lambda s: s or 0.0)
        out.append(PipelineRollout(ref, len(acts), len(parts), longest))
    return out
