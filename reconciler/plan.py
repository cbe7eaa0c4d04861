"""The plan: a frozen value built from a `Diff` and `Options`, pure.

`build_plan(diff, options)` turns the diff into requests that cover exactly the
pending cells, split to the size limits (DESIGN invariant 1 and "Plan"). No
network, clock, files or randomness here. The plan's JSON document (printed and
saved) lives in `planfile`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.diff import (
    Diff,
    KeyDiff,
    LedgerHead,
    PendingGroup,
    PendingResume,
    PipelineRef,
    RenameHint,
    StageKey,
)
from reconciler.ledger import canonical

DEFAULT_MAX_POINTS = 100_000
DEFAULT_MAX_ASSETS = 1_000


@dataclass(frozen=True)
class Options:
    """What shapes a plan besides manifests and ledger; saved with the plan."""

    max_points: int = DEFAULT_MAX_POINTS
    max_assets: int = DEFAULT_MAX_ASSETS
    targets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"maxPoints": self.max_points, "maxAssets": self.max_assets, "targets": list(self.targets)}


@dataclass(frozen=True)
class Action:
    """One Delete Stage State request: every listed asset x every listed point."""

    manifest: str
    org_id: str
    pipeline_id: str
    stage: str
    asset_ids: tuple[str, ...]
    point_ids: tuple[str, ...]
    in_doubt: bool = False
    resumed_since: bool = False

    @property
    def cells(self) -> int:
        return len(self.asset_ids) * len(self.point_ids)

    @property
    def key(self) -> StageKey:
        return StageKey(self.manifest, self.org_id, self.pipeline_id, self.stage)

    @property
    def pipeline(self) -> PipelineRef:
        return PipelineRef(self.org_id, self.pipeline_id)

    def halves(self) -> tuple[Action, Action]:
        """Split in two for a gateway that takes fewer points (61105), or fewer assets."""
        if len(self.point_ids) > 1:
            mid = len(self.point_ids) // 2
            return (
                replace(self, point_ids=self.point_ids[:mid]),
                replace(self, point_ids=self.point_ids[mid:]),
            )
        mid = len(self.asset_ids) // 2
        return (
            replace(self, asset_ids=self.asset_ids[:mid]),
            replace(self, asset_ids=self.asset_ids[mid:]),
        )

    def cell_fields(self) -> dict[str, Any]:
        """The fields of a ledger `intent`/`delete`/`failed` record for this request."""
        return {
            "manifest": self.manifest,
            "orgId": self.org_id,
            "pipelineId": self.pipeline_id,
            "stageInstanceName": self.stage,
            "assetIds": list(self.asset_ids),
            "pointIds": list(self.point_ids),
        }

    def to_json(self) -> dict[str, Any]:
        out = {**self.cell_fields(), "cells": self.cells}
        if self.in_doubt:
            out["inDoubt"] = True
            out["resumedSince"] = self.resumed_since
        return out


@dataclass(frozen=True)
class Summary:
    """Counts of distinct cells (and requests) a plan reports."""

    pending_cells: int
    requests: int
    applied_cells: int
    undeclared_cells: int
    in_doubt_cells: int

    def to_json(self) -> dict[str, int]:
        return {
            "pendingCells": self.pending_cells,
            "requests": self.requests,
            "appliedCells": self.applied_cells,
            "undeclaredCells": self.undeclared_cells,
            "inDoubtCells": self.in_doubt_cells,
        }


@dataclass(frozen=True)
class Plan:
    """What apply would do: requests and per-key summaries, over the diff they came from."""

    diff: Diff
    options: Options
    keys: tuple[KeyDiff, ...]
    actions: tuple[Action, ...]
    summary: Summary
    manifest_paths: tuple[str, ...] = ()

    @property
    def ledger(self) -> LedgerHead:
        return self.diff.ledger

    @property
    def undeclared(self) -> tuple[tuple[StageKey, int], ...]:
        return self.diff.undeclared

    @property
    def pending_resumes(self) -> tuple[PendingResume, ...]:
        return self.diff.pending_resumes

    @property
    def renames(self) -> tuple[RenameHint, ...]:
        """Rename hints for the manifests this plan covers (`--target` narrows them)."""
        names = {k.key.manifest for k in self.keys}
        return tuple(r for r in self.diff.renames if r.manifest in names)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions or self.pending_resumes)

    @property
    def pipelines(self) -> tuple[PipelineRef, ...]:
        """Every pipeline the plan touches: its requests, its keys and left-over pauses."""
        found = {a.pipeline for a in self.actions} | {k.key.pipeline for k in self.keys}
        found |= {r.pipeline for r in self.pending_resumes}
        return tuple(sorted(found))

    @property
    def plan_hash(self) -> str:
        return plan_hash(self.hashed_fields())

    def hashed_fields(self) -> dict[str, Any]:
        """What the plan hash covers: every field a saved plan is re-derived from."""
        return {
            "actions": [a.to_json() for a in self.actions],
            "ledger": {"path": self.ledger.path, "seq": self.ledger.seq, "hash": self.ledger.hash},
            "manifests": list(self.manifest_paths),
            "options": self.options.to_json(),
        }


def plan_hash(fields: dict[str, Any]) -> str:
    """sha256 over the canonical actions, ledger head, manifest paths and options."""
    return hashlib.sha256(canonical(fields)).hexdigest()


def build_plan(d: Diff, options: Options = Options(), manifest_paths: Sequence[str] = ()) -> Plan:
    """Requests covering exactly the pending cells, split to the size limits."""
    keys = tuple(k for k in d.keys if not options.targets or k.key.manifest in options.targets)
    actions: list[Action] = []
    for kd in keys:
        for group in kd.pending:
            actions.extend(_split(kd.key, group, options, in_doubt=False, resumed=False))
        for group in kd.in_doubt:
            actions.extend(_split(kd.key, group, options, in_doubt=True, resumed=kd.resumed_since_intent))
    summary = Summary(
        pending_cells=sum(k.pending_cells for k in keys),
        requests=len(actions),
        applied_cells=sum(k.applied_cells for k in keys),
        undeclared_cells=sum(n for _, n in d.undeclared),
        in_doubt_cells=sum(k.in_doubt_cells for k in keys),
    )
    return Plan(d, options, keys, tuple(actions), summary, tuple(manifest_paths))


def _chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _split(
    key: StageKey, group: PendingGroup, options: Options, *, in_doubt: bool, resumed: bool
) -> Iterator[Action]:
    for assets in _chunks(group.assets, options.max_assets):
        for points in _chunks(group.points, options.max_points):
            yield Action(*key, asset_ids=assets, point_ids=points, in_doubt=in_doubt, resumed_since=resumed)
