"""`plan --refresh`'s read of the pending cells' state (read-only credentials), degrading
to a warning and the offline plan when it fails (DESIGN "Plan")."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.apply import Gateways
    from reconciler.apply.live import LiveState
    from reconciler.config import RepoConfig
    from reconciler.plan import Plan
    from reconciler.render.console import Consoles


def read_live(c: Consoles, plan: Plan, gateways: Gateways, cfg: RepoConfig | None) -> LiveState | None:
    """The live state of every pending request, or None (with a warning) when it cannot be read."""
    from reconciler.apply.live import read_or_warn

    if not plan.actions:
        return None
    return read_or_warn(gateways, plan.actions, c.warn, concurrency=(cfg.concurrency if cfg else None) or 4)
