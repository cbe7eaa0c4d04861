"""The ledger's commands: their arguments (see `reconciler.args`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.args import ShowFormat


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
