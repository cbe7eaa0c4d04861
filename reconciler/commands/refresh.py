"""`plan --refresh`: the pipelines as the gateway says they are now, for the reviewer.

Pipeline statuses and names (List Pipelines), how long one call took (for a rough idea
of how long apply pauses a pipeline), and stage names a pipeline lacks; read-only calls.
The gateways are those of the config in use (`--config`, or the pull request's base),
closed after. When the gateway cannot be reached or refuses the credentials, the offline
plan still goes out whole, with a warning that says why the live part is missing; exit
codes stay those of an offline plan. Both reads, the pipelines' and what the pending
cells hold now, share one gateway session: one token from each gateway.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.apply import Gateways
    from reconciler.apply.live import LiveState
    from reconciler.config import RepoConfig
    from reconciler.plan import Plan
    from reconciler.render.console import Consoles
    from reconciler.render.review import Review


def refresh(
    c: Consoles, review: Review, p: Plan, gateway: str | None, cfg: RepoConfig | None
) -> tuple[Review, LiveState | None]:
    """Both reads of `plan --refresh` through one gateway session (one token from each
    gateway): the pipelines' statuses, then what the pending cells hold (`read_live`).
    When the first fails, the second is not tried: the plan goes out offline, one warning."""
    from reconciler.settings import gateways_for

    try:
        gateways = gateways_for(gateway, cfg, read_only=True)()
    except ReconcilerError as exc:
        return _failed(c.warn, review, exc), None
    with gateways:
        try:
            review = refreshed(c.warn, review, p, gateways)
        except ReconcilerError as exc:
            return _failed(c.warn, review, exc), None
        return review, read_live(c, p, gateways, cfg)


def read_live(c: Consoles, plan: Plan, gateways: Gateways, cfg: RepoConfig | None) -> LiveState | None:
    """The live state of every pending request, or None (with a warning) when it cannot be
    read: the offline plan still goes out whole (DESIGN "Plan")."""
    from reconciler.apply.live import read_or_warn

    if not plan.actions:
        return None
    return read_or_warn(gateways, plan.actions, c.warn, concurrency=(cfg.concurrency if cfg else None) or 4)


def _failed(warn: Callable[[str], None], review: Review, exc: ReconcilerError) -> Review:
    warn(f"--refresh failed, showing the offline plan: {exc}")
    return dataclasses.replace(review, refresh_error=str(exc))


def refreshed(warn: Callable[[str], None], review: Review, p: Plan, gw: Gateways) -> Review:
    """The review with the pipelines' statuses as `gw` reports them; raises what the
    gateway raised."""
    from reconciler.apply import status_of
    from reconciler.apply.stages import StageNames
    from reconciler.render.review import LiveStatus

    names = StageNames(gw, p.actions)  # read while List Pipelines is asked
    started = time.monotonic()
    found = gw.statuses(p.pipelines)
    latency = (time.monotonic() - started) / max(1, len({ref.org_id for ref in p.pipelines}))
    stages = tuple(names.warnings())  # stage names a pipeline lacks
    statuses = {
        ref: LiveStatus(status_of(found, ref), found[ref].name if ref in found else "") for ref in p.pipelines
    }
    for w in stages:
        warn(w)
    return dataclasses.replace(
        review,
        statuses=statuses,
        latency=latency,
        warnings=(*review.warnings, *stages),
    )
