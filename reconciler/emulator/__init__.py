"""A local EnOS gateway for tests, the demo and users' own CI.

Token service, Delete/Get Stage State, List Pipelines, Get Pipeline Details and
Operate Pipeline with the documented validation and codes, an in-memory state
store, a request log and seeded fault injection. Imports nothing else of
reconciler, so it stays an independent stand-in for the real gateway.
"""

from __future__ import annotations

from reconciler.emulator.server import RunningEmulator, serve_forever
from reconciler.emulator.world import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FAULT_KINDS, Faults, World

__all__ = [
    "DEFAULT_APP_KEY",
    "DEFAULT_APP_SECRET",
    "FAULT_KINDS",
    "Faults",
    "RunningEmulator",
    "World",
    "serve_forever",
]
