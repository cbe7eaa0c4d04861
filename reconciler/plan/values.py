"""The plan's value types: what a diff finds, what a request is, what a plan reports.

Plain frozen data that `apply`, `render` and the plan file share; the algorithms that
fill them are `plan._diff` (declared minus ledger) and `plan._build` (requests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from reconciler.windows import WindowState

Points = tuple[str, ...]
Ids = tuple[str, ...]


class PipelineRef(NamedTuple):
    """One pipeline of one org: what List Pipelines, pause and start are about."""

    org_id: str
    pipeline_id: str


class StageKey(NamedTuple):
    """(manifest, org, pipeline, stage): the group every cell and request belongs to."""

    manifest: str
    org_id: str
    pipeline_id: str
    stage: str

    @property
    def pipeline(self) -> PipelineRef:
        return PipelineRef(self.org_id, self.pipeline_id)


@dataclass(frozen=True)
class LedgerHead:
    """The ledger a diff (and so a plan) was computed against."""

    path: str
    seq: int
    hash: str


@dataclass(frozen=True)
class PendingResume:
    """A pipeline an interrupted run paused and did not start again (DESIGN "Applied ledger")."""

    pipeline: PipelineRef
    paused_at: str
    seq: int
    execution_mode: int | None
    kafka_rate: int | None


@dataclass(frozen=True)
class PendingGroup:
    """Assets of one key that share the same pending point set. No ID is in a group
    twice, and no asset is in two of a key's pending groups (an asset may be pending in
    one and in doubt in another): the diff gives each asset one pending point set."""

    points: Points
    assets: tuple[str, ...]

    @property
    def cells(self) -> int:
        return len(self.points) * len(self.assets)


@dataclass(frozen=True)
class KeyDiff:
    """What the ledger says about one declared (manifest, org, pipeline, stage)."""

    key: StageKey
    applied_cells: int
    pending: tuple[PendingGroup, ...]
    in_doubt: tuple[PendingGroup, ...]
    resumed_since_intent: bool

    @property
    def pending_cells(self) -> int:
        return sum(g.cells for g in (*self.pending, *self.in_doubt))

    @property
    def in_doubt_cells(self) -> int:
        return sum(g.cells for g in self.in_doubt)


def pending_by_manifest(keys: Iterable[KeyDiff], targets: tuple[str, ...] = ()) -> dict[str, int]:
    """Pending cells per manifest (those `targets` names, when it names any)."""
    per: dict[str, int] = {}
    for kd in keys:
        if kd.pending_cells and (not targets or kd.key.manifest in targets):
            per[kd.key.manifest] = per.get(kd.key.manifest, 0) + kd.pending_cells
    return per


@dataclass(frozen=True)
class RenameHint:
    """Pending cells of a manifest already cleared under a name no manifest declares now.
    `reclear`: the manifest's `metadata.reclear`, the reason it clears them again on
    purpose; without one, plan and apply refuse (DESIGN "Manifest format")."""

    manifest: str
    old_name: str
    cells: int
    reclear: str | None = None


@dataclass(frozen=True)
class Marks:
    """What a manifest's `intent`/`delete` records carry besides its cells
    (`ledger.history.MARK_FIELDS`): why it clears again what another name cleared, and
    the old names whose history it carries on."""

    reclear: str | None = None
    renamed_from: tuple[str, ...] = ()

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reclear is not None:
            out["reclear"] = self.reclear
        if self.renamed_from:
            out["renamedFrom"] = list(self.renamed_from)
        return out


@dataclass(frozen=True)
class Diff:
    keys: tuple[KeyDiff, ...]
    undeclared: tuple[tuple[StageKey, int], ...]
    pending_resumes: tuple[PendingResume, ...]
    renames: tuple[RenameHint, ...]
    ledger: LedgerHead
    marks: tuple[tuple[str, Marks], ...] = ()  # per manifest that has any


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
    # Manifests that declare these same physical cells, with the points each declares:
    # one request serves them all, and each gets its own records (empty: only `manifest`).
    shares: tuple[tuple[str, Points], ...] = ()
    # The `Marks` of the manifests it serves that have any: written into their records.
    marks: tuple[tuple[str, Marks], ...] = ()

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

    def cell_fields(self, manifest: str | None = None, points: Points | None = None) -> dict[str, Any]:
        """The fields of a ledger `intent`/`delete`/`failed` record for this request."""
        name = manifest or self.manifest
        out = {
            "manifest": name,
            "orgId": self.org_id,
            "pipelineId": self.pipeline_id,
            "stageInstanceName": self.stage,
            "assetIds": list(self.asset_ids),
            "pointIds": list(self.point_ids if points is None else points),
        }
        for m, marks in self.marks:
            if m == name:
                out.update(marks.fields())
        return out

    def ledger_fields(self) -> list[dict[str, Any]]:
        """One record's fields per manifest this request serves: its own points of the
        request's (a 61105 half keeps the shares, so each gets what the half carried)."""
        if not self.shares:
            return [self.cell_fields()]
        sent = set(self.point_ids)
        out = []
        for manifest, points in self.shares:
            own = tuple(p for p in points if p in sent)
            if own:
                out.append(self.cell_fields(manifest, own))
        return out

    def to_json(self) -> dict[str, Any]:
        out = {**self.cell_fields(), "cells": self.cells}
        if self.shares:
            marks = dict(self.marks)
            out["sharedBy"] = [
                {"manifest": m, "pointIds": list(p), **(marks[m].fields() if m in marks else {})}
                for m, p in self.shares
            ]
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
class Policy:
    """What the apply that this plan's configuration runs will do with it (DESIGN "Plan",
    `policy`): read from the same reconcile.yaml and flags apply reads, so a plan over
    `maxCells` says so on the pull request, not after the merge."""

    max_cells: int | None
    pause_pipelines: bool
    pending_cells: int
    # Pending cells per manifest, largest first: what makes a plan large.
    by_manifest: tuple[tuple[str, int], ...] = ()
    max_cells_from: str = "apply.maxCells in reconcile.yaml"
    window: WindowState | None = None  # apply.windows judged now; None: no windows configured

    @property
    def exceeds_max_cells(self) -> bool:
        return self.max_cells is not None and self.pending_cells > self.max_cells

    @property
    def large(self) -> tuple[tuple[str, int], ...]:
        """The fewest largest manifests without which the plan fits under `max_cells`."""
        if not self.exceeds_max_cells or self.max_cells is None:
            return ()
        left, out = self.pending_cells, []
        for name, cells in self.by_manifest:
            if left <= self.max_cells:
                break
            out.append((name, cells))
            left -= cells
        return tuple(out)

    @property
    def held_back(self) -> tuple[tuple[str, int], ...]:
        """The other manifests of a refused plan: apply refuses them with it."""
        large = {name for name, _ in self.large}
        return tuple((n, c) for n, c in self.by_manifest if n not in large) if large else ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "maxCells": self.max_cells,
            "exceedsMaxCells": self.exceeds_max_cells,
            "pausePipelines": self.pause_pipelines,
        }
        if self.window is not None:  # apply.windows is configured (without it: any time)
            out["window"] = self.window.to_json()
        if self.exceeds_max_cells:
            out["largeManifests"] = [{"manifest": n, "cells": c} for n, c in self.large]
            out["heldBack"] = [{"manifest": n, "cells": c} for n, c in self.held_back]
        return out


@dataclass(frozen=True)
class Recleared:
    """Pending cells of `manifest` that another manifest, still declared, already cleared:
    allowed (a new name is a new intent), and worth a line in every format."""

    manifest: str
    cleared_by: str
    cells: int
    first_at: str  # the date (YYYY-MM-DD) of the other manifest's first and last delete here
    last_at: str

    @property
    def when(self) -> str:
        if self.first_at == self.last_at:
            return f"on {self.last_at}"
        return f"between {self.first_at} and {self.last_at}"

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "clearedBy": self.cleared_by,
            "cells": self.cells,
            "firstAt": self.first_at,
            "lastAt": self.last_at,
        }


MISSING = "MISSING"  # a pipeline List Pipelines does not return: never written to


def writable(status: str) -> bool:
    """DESIGN "Is it paused?": only PAUSED may be written to; RUNNING, STOPPED, PUBLISHED,
    unknown and MISSING block. The one place this rule is written."""
    return status == "PAUSED"
