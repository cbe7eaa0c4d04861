"""`reconcile plan` and `reconcile schema`: their arguments (see `reconciler.args`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.args import PlanFormat


@dataclass(frozen=True)
class PlanArgs:
    """`reconcile plan`."""

    paths: list[str] | None = None
    ledger: str | None = None
    out_file: Path | None = None
    fmt: PlanFormat = PlanFormat.TEXT
    detailed_exitcode: bool = False
    target: list[str] | None = None
    max_points: int | None = None
    max_assets: int | None = None
    max_cells: int | None = None
    pause_pipelines: bool | None = None
    max_paused: int | None = None
    max_pause: str | None = None
    no_canary: bool = False
    refresh: bool = False
    gateway: str | None = None
    config_file: str | None = None
    base: str | None = None


@dataclass(frozen=True)
class SchemaArgs:
    """`reconcile schema`."""

    out_dir: Path = Path("schemas")
    check: bool = False
