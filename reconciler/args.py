"""Each command's arguments, parsed: one frozen value per command, its fields the flags' names.

Terraform's `command/arguments` (one struct per command, handed down whole) and Alembic's
"the command function's parameters are the flags": `cli/` declares each flag once, as a
typer parameter, and builds the value from them (`ApplyArgs(**locals())`); the commands
(`reconciler.commands`) and the settings (`reconciler.settings`) read it by the same
names. A new flag is its typer parameter and its field here. No typer: a test builds one
of these and calls the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

DEFAULT_PATHS = ["manifests"]  # the manifest paths a command reads when given none


class PlanFormat(str, Enum):
    """`plan --format`."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


class ShowFormat(str, Enum):
    """`ledger show --format`."""

    TEXT = "text"
    JSON = "json"


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
class LedgerVerifyArgs:
    """`reconcile ledger verify`."""

    ledger: str | None = None
    snapshot: Path | None = None


@dataclass(frozen=True)
class LedgerShowArgs:
    """`reconcile ledger show`: every filter None is "any"."""

    ledger: str | None = None
    fmt: ShowFormat = ShowFormat.TEXT
    manifest: str | None = None
    pipeline: str | None = None
    since: str | None = None
    kind: list[str] | None = None
    stage: str | None = None
    asset: str | None = None
    point: str | None = None
    limit: int | None = None
    tail: int | None = None
    snapshot: Path | None = None


@dataclass(frozen=True)
class LedgerResolveArgs:
    """`reconcile ledger resolve`."""

    paths: list[str] | None = None
    ledger: str | None = None
    manifest: str | None = None
    auto_approve: bool = False
    verify: bool = False
    gateway: str | None = None
    start: str | None = None


@dataclass(frozen=True)
class LedgerReportArgs:
    """`reconcile ledger report`."""

    ledger: str | None = None
    out: str = "ledger-report.html"
    title: str = "Stage state cleared"


@dataclass(frozen=True)
class LedgerMigrateArgs:
    """`reconcile ledger migrate`."""

    ledger: str | None = None
    lock_timeout: float | None = None


@dataclass(frozen=True)
class LedgerRestoreArgs:
    """`reconcile ledger restore`."""

    ledger: str | None = None
    auto_approve: bool = False


@dataclass(frozen=True)
class SchemaArgs:
    """`reconcile schema`."""

    out_dir: Path = Path("schemas")
    check: bool = False


@dataclass(frozen=True)
class InitArgs:
    """`reconcile init`."""

    directory: Path = Path(".")
    force: bool = False
    workflows_only: bool = False
    max_cells: int = 1_000_000
    branch: str | None = None
    install_source: str | None = None


@dataclass(frozen=True)
class EmulatorArgs:
    """`reconcile emulator`."""

    host: str = "127.0.0.1"
    port: int = 8910
    state: Path | None = None
    fault_rate: float = 0.0
    fault_kind: list[str] | None = None
    latency_ms: float = 0
    seed: int = 0
    journal: Path | None = None
