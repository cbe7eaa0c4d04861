"""The typed value the rest of the tool sees: `RepoConfig` (snake_case, resolved paths,
parsed durations and windows). `pick`, by which a flag wins over it, is in `config.bounds`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler import windows as windows_mod
    from reconciler.config.schema import ConfigDoc


@dataclass(frozen=True)
class Gateway:
    org_id: str | None
    url: str
    app_key_env: str
    app_secret_env: str


@dataclass(frozen=True)
class ResumeSettings:
    org_id: str
    pipeline_id: str
    execution_mode: int
    kafka_rate: int
    resource_config: str | None  # canonical JSON of the object, so the value stays hashable


@dataclass(frozen=True)
class GitSync:
    remote: str
    branch: str
    lease_seconds: int = 120


@dataclass(frozen=True)
class NotifyTarget:
    url_env: str  # the variable holding the URL: the URL itself is a secret, never kept here
    on: tuple[str, ...]
    timeout: float = 10.0


@dataclass(frozen=True)
class RepoConfig:
    """reconcile.yaml, checked. `git` is None when git sync is off."""

    path: Path
    ledger_path: Path  # relative to the working directory when the file is
    git: GitSync | None
    gateways: tuple[Gateway, ...] = ()
    pipelines: tuple[ResumeSettings, ...] = ()
    max_cells: int | None = None
    concurrency: int | None = None
    pause_pipelines: bool | None = None
    start_timeout: float | None = None
    snapshot: Path | None = None  # apply.snapshot, relative to the working directory like ledger_path
    windows: windows_mod.Windows | None = None  # apply.windows; None: any time
    max_paused: int | None = None  # apply.rollout.maxPaused
    max_pause: float | None = None  # apply.rollout.maxPause, in seconds
    canary: bool | None = None  # apply.rollout.canary
    notify: tuple[NotifyTarget, ...] = ()
    # the file as checked, for comparing two versions setting by setting (`review_changes`)
    doc: ConfigDoc | None = field(default=None, compare=False, repr=False)
