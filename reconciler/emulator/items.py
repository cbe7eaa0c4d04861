"""What Get Stage State returns for one cell, by operator type (REFERENCE 1.1 and 8).

The zh 2.4.0 page documents three shapes; the stage's operator type picks one:

- type 1 "general" (LastRecordAppender, LastChangedRecordAppender, LatestRecordMerger,
  RecordCapturer): `modelId`, `modelIdPath`, `attr`, `assetId`, `pointId`, `time`,
  `value`, `quality`, and `dq` only when the cell has a quality bit;
- type 2 `LatePointTagger`: `assetId`, `pointId`, `time`;
- type 3 window aggregators: the stored doc copy is cut off after its first field,
  `assetId`. We emulate `assetId`, `pointId`, `windowStart`, `windowEnd`, `value` (an
  [infer], kept in this one place), which is enough for clients that count items by
  (`assetId`, `pointId`) and keep the rest as returned, as DESIGN asks.

A state file may seed `value`, `time`, `quality` and `dq` per rectangle of cells
(README "Emulator"); unseeded cells get a value derived from the cell's name, so
repeated runs see the same numbers. Like the rest of the emulator, this imports
nothing else of reconciler.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

GENERIC_TYPES = frozenset(
    {"LastRecordAppender", "LastChangedRecordAppender", "LatestRecordMerger", "RecordCapturer"}
)
LATE_TYPES = frozenset({"LatePointTagger"})
WINDOW_SUFFIX = "WindowAggregator"  # e.g. TumblingWindowAggregator, the one window EnOS offers
DEFAULT_TIME_MS = 1_582_648_020_580  # the doc sample's time (milliseconds, REFERENCE 1.1)
WINDOW_MS = 600_000  # emulated window length: ten minutes
SEEDABLE = ("value", "time", "quality", "dq")


def supported(operator_type: str | None, action: str | None) -> bool:
    """Whether Get (`action` "get") or Delete Stage State accept this operator type (else 61107).

    Get serves the three documented shapes; Delete keeps REFERENCE 5's rule (the four
    general types only), since no page says which other types it clears.
    """
    if operator_type is None:
        return False
    if operator_type in GENERIC_TYPES:
        return True
    return action == "get" and (operator_type in LATE_TYPES or is_window(operator_type))


def is_window(operator_type: str) -> bool:
    return operator_type.endswith(WINDOW_SUFFIX)


def item(
    operator_type: str, asset: str, point: str, seeded: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The item for one cell that holds state, in its operator type's documented shape."""
    seeded = seeded or {}
    time = seeded.get("time", DEFAULT_TIME_MS)
    if operator_type in LATE_TYPES:
        return {"assetId": asset, "pointId": point, "time": time}
    value = seeded.get("value", _derived_value(asset, point))
    if is_window(operator_type):
        start = (int(time) // WINDOW_MS) * WINDOW_MS
        end = start + WINDOW_MS
        return {"assetId": asset, "pointId": point, "windowStart": start, "windowEnd": end, "value": value}
    out: dict[str, Any] = {
        "modelId": "emulated",
        "modelIdPath": "/emulated",
        "attr": {},
        "assetId": asset,
        "pointId": point,
        "time": time,
        "value": value,
        "quality": seeded.get("quality", 0),
    }
    if "dq" in seeded:  # absent without a quality bit (zh 2.4.0)
        out["dq"] = seeded["dq"]
    return out


def seed_values(rect: Mapping[str, Any]) -> dict[str, Any]:
    """The seedable fields a state rectangle gives (checked by `seed.py`)."""
    return {k: rect[k] for k in SEEDABLE if k in rect}


def _derived_value(asset: str, point: str) -> float:
    """A stable, cell-specific number, so samples in a plan differ from cell to cell."""
    return round((zlib.crc32(f"{asset}/{point}".encode()) % 100_000) / 100, 2)
