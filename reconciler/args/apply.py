"""`reconcile apply`: its arguments (see `reconciler.args`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApplyArgs:
    """`reconcile apply`: None is "not given" (reconcile.yaml's, else the default)."""

    paths: list[str] | None = None
    ledger: str | None = None
    gateway: str | None = None
    auto_approve: bool = False
    concurrency: int | None = None
    pause_pipelines: bool | None = None
    kafka_rate: int | None = None
    skip_pause_check: bool = False
    resend_in_doubt: bool = False
    verify: bool = False
    snapshot: str | None = None
    max_cells: int | None = None
    summary: list[Path] | None = None
    lock_timeout: float | None = None
    start_timeout: float | None = None
    max_paused: int | None = None
    max_pause: str | None = None
    no_canary: bool = False
    allow_dirty: bool = False
    allow_unreviewed: bool = False
    ignore_window: bool = False
    reason: str | None = None
    target: list[str] | None = None
    max_points: int | None = None
    max_assets: int | None = None
    config_file: str | None = None
