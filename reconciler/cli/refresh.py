"""`plan --refresh`: what the gateway says now, by read-only calls, for the reviewer.

Pipeline statuses and names (List Pipelines), how long one call took (for a rough idea
of how long apply pauses a pipeline), and how many pending cells hold state now (Get
Stage State, DESIGN "Plan": `liveStateCells`). The gateways are those of the config in
use (`--config`, or the pull request's base), and are closed after. When the gateway
cannot be reached or refuses the credentials, the offline plan still goes out whole,
with a warning that says why the live part is missing; exit codes stay those of an
offline plan.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.errors import EnosError, ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.apply import Gateways
    from reconciler.config import RepoConfig
    from reconciler.plan import Action, Plan
    from reconciler.plan.values import PipelineRef
    from reconciler.render.review import Review

# Get Stage State reads every item of a request's cells: past this many requests (a fleet
# reset), the live state is not read, and the plan says so.
MAX_LIVE_STATE_REQUESTS = 200


def refreshed(
    warn: Callable[[str], None], review: Review, p: Plan, gateway: str | None, cfg: RepoConfig | None
) -> Review:
    from reconciler.apply import stage_warnings, status_of
    from reconciler.cli.settings import gateways_for
    from reconciler.render.review import LiveStatus

    try:
        with gateways_for(gateway, cfg, read_only=True)() as gw:
            started = time.monotonic()
            found = gw.statuses(p.pipelines)
            latency = (time.monotonic() - started) / max(1, len({ref.org_id for ref in p.pipelines}))
            stages = tuple(stage_warnings(gw, p.actions))  # stage names a pipeline lacks
            cells, note = _live_state(gw, p.actions, set(found))
    except ReconcilerError as exc:
        warn(f"--refresh failed, showing the offline plan: {exc}")
        return dataclasses.replace(review, refresh_error=str(exc))
    statuses = {
        ref: LiveStatus(status_of(found, ref), found[ref].name if ref in found else "") for ref in p.pipelines
    }
    for w in stages:
        warn(w)
    return dataclasses.replace(
        review,
        statuses=statuses,
        latency=latency,
        live_cells=cells,
        live_state_note=note,
        warnings=(*review.warnings, *stages),
    )


def _live_state(
    gw: Gateways, actions: tuple[Action, ...], listed: set[PipelineRef]
) -> tuple[tuple[int | None, ...] | None, str | None]:
    """Per request, how many of its cells hold state at the gateway now; None for one that
    could not be read (its pipeline is not listed, or the gateway refused the read)."""
    if len(actions) > MAX_LIVE_STATE_REQUESTS:
        return None, (
            f"{plural(len(actions), 'request')}, more than {MAX_LIVE_STATE_REQUESTS:,} "
            "(Get Stage State reads every item)"
        )
    out: list[int | None] = []
    failed: list[str] = []
    for a in actions:
        if failed:  # one refusal (a read-only app without that privilege) says it for all
            out.append(None)
            continue
        if a.pipeline not in listed:
            out.append(None)
            continue
        try:
            items = gw.client(a.org_id).get_stage_state(a)
        except EnosError as exc:
            out.append(None)
            failed.append(str(exc))
            continue
        assets, points = set(a.asset_ids), set(a.point_ids)
        # items are per (asset, point) and more (a time, a window): count cells, not items
        held = {(i.get("assetId"), i.get("pointId")) for i in items}
        out.append(sum(1 for asset, point in held if asset in assets and point in points))
    unread = out.count(None)
    note = None
    if unread:
        why = f": {failed[0]}" if failed else " (pipeline not listed)"
        note = f"{plural(unread, 'request')}{why}"
    return tuple(out), note
