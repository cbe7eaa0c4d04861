"""A local EnOS gateway for tests, the demo and users' own CI.

Token service, Delete/Get Stage State, List Pipelines, Get Pipeline Details and
Operate Pipeline with the documented validation and codes, an in-memory state
store, a request log, seeded fault injection, hooks that act at exact requests
and an injectable clock. Imports nothing else of
reconciler, so it stays an independent stand-in for the real gateway.
"""

from __future__ import annotations

from reconciler.emulator.hooks import EXPIRY_SHAPES, Hook
from reconciler.emulator.seed import EmulatorError
from reconciler.emulator.server import RunningEmulator, serve_forever
from reconciler.emulator.world import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    FAULT_KINDS,
    FakeClock,
    Faults,
    World,
)

__all__ = [
    "DEFAULT_APP_KEY",
    "DEFAULT_APP_SECRET",
    "EXPIRY_SHAPES",
    "FAULT_KINDS",
    "EmulatorError",
    "FakeClock",
    "Faults",
    "Hook",
    "RunningEmulator",
    "World",
    "serve_forever",
]
