"""Planning from files: manifests + ledger -> Plan; saving and re-checking saved plans.

Keeps DESIGN invariant 6 (staleness): a saved plan is only ever used to decide
*whether* to go on. What apply sends is always re-derived from the manifests and
the ledger, and must equal the saved plan exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler import ledger as ledger_mod
from reconciler import manifests
from reconciler.errors import PlanError, ReconcilerError
from reconciler.plan import PLAN_FORMAT, Options, Plan, build_plan, diff, plan_hash


def make_plan(
    paths: Sequence[str],
    ledger_path: str,
    max_points: int = 100_000,
    max_assets: int = 1_000,
    targets: Sequence[str] = (),
    ledger: ledger_mod.Ledger | None = None,
) -> tuple[Plan, manifests.LoadResult]:
    """Load manifests (raising on any error), read and verify the ledger, plan."""
    result = manifests.load_or_raise(paths)
    unknown = sorted(set(targets) - {m.name for m in result.manifests})
    if unknown:
        raise PlanError(f"--target names no manifest: {', '.join(unknown)}")
    led = ledger if ledger is not None else ledger_mod.read(ledger_path)
    options = Options(max_points=max_points, max_assets=max_assets, targets=tuple(targets))
    return build_plan(diff(result.manifests, led), options, manifest_paths=paths), result


def save_plan(plan: Plan, path: Path) -> None:
    from reconciler.render import plan_json

    path.write_text(plan_json(plan))


def read_saved_plan(path: Path) -> dict[str, Any]:
    """Parse a saved plan and check it is internally consistent (not hand-edited)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise PlanError(f"{path}: cannot read plan: {exc.strerror}") from None
    except ValueError:
        raise PlanError(f"{path}: not a plan file (invalid JSON)") from None
    if not isinstance(data, dict) or data.get("formatVersion") != PLAN_FORMAT:
        raise PlanError(f"{path}: not a reconcile plan (formatVersion {PLAN_FORMAT} expected)")
    try:
        led = data["ledger"]
        recomputed = plan_hash(data["actions"], led["seq"], led["hash"])
        stated = data["planHash"]
        data["manifests"], data["options"]
    except (KeyError, TypeError):
        raise PlanError(
            f"{path}: plan file is incomplete; make it again with `reconcile plan --out`"
        ) from None
    if recomputed != stated:
        raise PlanError(
            f"{path}: plan file does not match its own plan hash; it was edited. "
            "Make it again with `reconcile plan --out`"
        )
    return data


def replan_saved(path: Path, ledger: ledger_mod.Ledger) -> Plan:
    """Re-derive a saved plan from its manifests and the ledger; refuse unless identical."""
    data = read_saved_plan(path)
    head = data["ledger"]
    if (head["seq"], head["hash"]) != (ledger.head_seq, ledger.head_hash):
        raise PlanError(
            f"saved plan is stale: it was made against ledger seq {head['seq']}, "
            f"the ledger is now at seq {ledger.head_seq}. Run `reconcile plan --out` again"
        )
    opts = data["options"]
    plan, _ = make_plan(
        data["manifests"],
        str(ledger.path),
        int(opts["maxPoints"]),
        int(opts["maxAssets"]),
        tuple(opts.get("targets", ())),
        ledger=ledger,
    )
    if plan.plan_hash != data["planHash"]:
        raise PlanError(
            f"saved plan does not match what its manifests give now (plan hash "
            f"{data['planHash'][:12]} vs {plan.plan_hash[:12]}); the manifests changed since "
            "it was made. Run `reconcile plan --out` again"
        )
    return plan


def live_statuses(plan: Plan, gateway: str | None) -> dict[tuple[str, str], str]:
    """Each planned pipeline's status from List Pipelines (read-only)."""
    from reconciler.enos import EnosClient, credentials_from_env

    pipelines = sorted({a.pipeline for a in plan.actions} | {k.key[1:3] for k in plan.keys})
    url = gateway or os.environ.get("ENOS_API_GATEWAY")
    if not url:
        raise ReconcilerError("no gateway: pass --gateway URL or set ENOS_API_GATEWAY")
    with EnosClient(url, credentials_from_env()) as client:
        found = client.pipeline_statuses(pipelines)
    return {p: (found[p].status if p in found else "MISSING") for p in pipelines}
