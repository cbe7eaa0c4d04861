"""The plan: declared cells minus the ledger's, as the requests apply would send.

Pure (no network, clock, files or randomness; DESIGN "Plan") but for `plan.file`, which
reads and writes the saved plan; each step owns a module, as Terraform's `plans` and
SQLMesh's `core/plan` keep them apart:

    plan.values    the frozen value types everyone shares (PipelineRef, Action, ...)
    diff(manifests, ledger) -> Diff          plan._diff: what is pending, in doubt, history
    skim(manifests)                          plan._diff: the sealed segments a diff needs not read
    build_plan(diff, options) -> Plan        plan._build: requests that cover it exactly
    recleared(plan, ledger, manifests)       plan._history: cells another manifest cleared
    plan.guards                              what apply refuses of a plan: maxCells, re-clears
    plan.rollout                             the pauses: their order, count and length
    plan.file                                the JSON document, printed, saved and read back
"""

from __future__ import annotations

from reconciler.plan._build import Plan, build_plan, plan_hash
from reconciler.plan._diff import diff, skim, starts_in_doubt
from reconciler.plan._history import recleared
from reconciler.plan.values import (
    DEFAULT_MAX_ASSETS,
    DEFAULT_MAX_POINTS,
    Action,
    Diff,
    KeyDiff,
    LedgerHead,
    Marks,
    Options,
    PendingGroup,
    PendingResume,
    PipelineRef,
    Policy,
    Recleared,
    RenameHint,
    StageKey,
    Summary,
)

__all__ = [
    "DEFAULT_MAX_ASSETS",
    "DEFAULT_MAX_POINTS",
    "Action",
    "Diff",
    "KeyDiff",
    "LedgerHead",
    "Marks",
    "Options",
    "PendingGroup",
    "PendingResume",
    "PipelineRef",
    "Plan",
    "Policy",
    "Recleared",
    "RenameHint",
    "StageKey",
    "Summary",
    "build_plan",
    "diff",
    "plan_hash",
    "recleared",
    "skim",
    "starts_in_doubt",
]
