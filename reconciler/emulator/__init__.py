"""A local EnOS gateway for tests, the demo and users' own CI.

Token service, Delete/Get Stage State, List Pipelines, Get Pipeline Details,
Operate Pipeline and Get Pipeline Offset and Lag with the documented validation and
codes (one start at a time per org: 61121; no processing resource: 61128; the request
limit read as points or as cells; an EnOS 3.x gateway without the streaming routes), an
in-memory state store, a request log, seeded fault injection (a lying delete included),
hooks that act at exact requests and an injectable clock. Imports nothing else of
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
    LIE_KINDS,
    FakeClock,
    Faults,
    World,
)

__all__ = [
    "DEFAULT_APP_KEY",
    "DEFAULT_APP_SECRET",
    "EXPIRY_SHAPES",
    "FAULT_KINDS",
    "LIE_KINDS",
    "EmulatorError",
    "FakeClock",
    "Faults",
    "Hook",
    "RunningEmulator",
    "World",
    "serve_forever",
]
