"""`plan --refresh`'s read of the pending cells' state (read-only credentials), degrading
to a warning and the offline plan when it fails (DESIGN "Plan")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.apply.live import LiveState
    from reconciler.config import RepoConfig
    from reconciler.plan import Plan
    from reconciler.render.console import Consoles


def read_live(c: Consoles, plan: Plan, gateway: str | None, cfg: RepoConfig | None) -> LiveState | None:
    """The live state of every pending request, or None (with a warning) when it cannot be read."""
    from reconciler.apply.live import read_or_warn
    from reconciler.cli.settings import gateways_for

    if not plan.actions:
        return None
    try:
        build = gateways_for(gateway, cfg, read_only=True)
    except ReconcilerError as exc:
        c.warn(f"live state not read: {exc}; the plan below is the offline plan")
        return None
    return read_or_warn(build, plan.actions, c.warn, concurrency=(cfg.concurrency if cfg else None) or 4)
