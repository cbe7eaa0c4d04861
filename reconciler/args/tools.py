"""`reconcile init` and `reconcile emulator`: their arguments (see `reconciler.args`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
