"""Flags, environment and reconcile.yaml merged into the typed settings operations take.

The one place that reads the environment (credentials, gateway) and where option
defaults are decided: flags win over the repository config, which wins over the
built-in defaults (DESIGN "CLI").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError
from reconciler.plan import DEFAULT_MAX_ASSETS, DEFAULT_MAX_POINTS, Options

if TYPE_CHECKING:
    from reconciler.apply import Gateways

DEFAULT_LEDGER = "applied-ledger.jsonl"


def resolve_ledger(flag: str | None) -> str:
    """`--ledger` (or RECONCILE_LEDGER), else the default."""
    return flag or DEFAULT_LEDGER


def plan_options(max_points: int | None, max_assets: int | None, targets: Iterable[str] | None) -> Options:
    return Options(
        max_points=max_points or DEFAULT_MAX_POINTS,
        max_assets=max_assets or DEFAULT_MAX_ASSETS,
        targets=tuple(targets or ()),
    )


def gateways_for(
    gateway: str | None,
    orgs: Iterable[str],
    *,
    read_only: bool = False,
    on_retry: Callable[[str], None] | None = None,
) -> Callable[[], Gateways]:
    """Check the configuration now (no network) and return what builds the clients later.

    Checked before any plan is shown: a missing gateway or credential is the first thing
    a user hears about, not the last.
    """
    from reconciler.enos import EnosClient, check_gateway, credentials_from_env

    url = gateway or os.environ.get("ENOS_API_GATEWAY")
    if not url:
        raise ReconcilerError("no gateway: pass --gateway URL or set ENOS_API_GATEWAY")
    url = check_gateway(url)
    creds = credentials_from_env()

    def build() -> Gateways:
        from reconciler.apply import Gateways

        return Gateways.single(EnosClient(url, creds, on_retry=on_retry))

    return build


def schemas() -> dict[str, str]:
    """Every JSON Schema the project publishes in schemas/, by file name."""
    from reconciler.schema import SCHEMA_FILE, render_schema

    return {SCHEMA_FILE: render_schema()}
