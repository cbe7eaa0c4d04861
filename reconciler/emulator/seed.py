"""The seed (state file) format, checked strictly: unknown keys and wrong types are errors
that name the file, the place and the key, in one line."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


class EmulatorError(ValueError):
    """The emulator cannot start: a bad state file, bad fault kinds, a port in use."""


TOP_KEYS = {
    "apps": list,
    "pipelines": list,
    "tokenLifetime": (int, float),
    "maxPoints": int,
    "getShape": str,
    "requireSignature": bool,
    "requestLimit": str,
    "startWindow": (int, float),
    "noResource": list,
    "streamingApi": bool,
}
REQUEST_LIMITS = ("points", "cells")
APP_KEYS = {"appKey": str, "appSecret": str}
PIPELINE_KEYS = {
    "pipelineId": str,
    "orgId": str,
    "pipelineName": str,
    "status": str,
    "executionMode": int,
    "kafkaRate": (int, type(None)),
    "stages": dict,
    "fillState": bool,
    "released": bool,
    "pauseDelay": (int, float),
    "state": list,
    "lag": int,
}
STATE_KEYS = {
    "stage": str,
    "assets": list,
    "points": list,
    # what Get Stage State returns for these cells (emulator/items.py)
    "value": (str, int, float, bool, type(None)),
    "time": int,
    "quality": int,
    "dq": int,
}


def check_seed(seed: Any, source: str) -> None:
    """Raise `EmulatorError` for the first problem, e.g.
    `state.yaml: pipelines[0]: unknown key 'pipelinename' (did you mean 'pipelineName'?)`."""
    _mapping(seed, TOP_KEYS, source, "", required=())
    if seed.get("requestLimit", "points") not in REQUEST_LIMITS:
        raise EmulatorError(
            f"{source}: requestLimit: {seed['requestLimit']!r} is not one of {', '.join(REQUEST_LIMITS)}"
        )
    if not all(isinstance(o, str) for o in seed.get("noResource") or []):
        raise EmulatorError(f"{source}: noResource: expected a list of orgId strings")
    for i, app in enumerate(seed.get("apps") or []):
        _mapping(app, APP_KEYS, source, f"apps[{i}]", required=("appKey", "appSecret"))
    for i, p in enumerate(seed.get("pipelines") or []):
        where = f"pipelines[{i}]"
        _mapping(p, PIPELINE_KEYS, source, where, required=("pipelineId", "orgId"))
        for name, kind in (p.get("stages") or {}).items():
            if not isinstance(name, str) or not isinstance(kind, str):
                raise EmulatorError(f"{source}: {where}.stages: expected stage name: operator type strings")
        for j, rect in enumerate(p.get("state") or []):
            at = f"{where}.state[{j}]"
            _mapping(rect, STATE_KEYS, source, at, required=("stage", "assets", "points"))
            for key in ("assets", "points"):
                if not all(isinstance(x, str) for x in rect[key]):
                    raise EmulatorError(f"{source}: {at}.{key}: expected a list of strings")


def _mapping(value: Any, keys: Mapping[str, Any], source: str, where: str, required: tuple[str, ...]) -> None:
    place = f"{source}: {where}: " if where else f"{source}: "
    if not isinstance(value, Mapping):
        raise EmulatorError(f"{place}expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in keys:
            raise EmulatorError(f"{place}unknown key {key!r}{_suggest(str(key), keys)}")
    for key in required:
        if key not in value:
            raise EmulatorError(f"{place}missing key {key!r}")
    for key, expected in keys.items():
        if key in value and (
            not isinstance(value[key], expected) or (expected is int and isinstance(value[key], bool))
        ):
            raise EmulatorError(f"{place}{key}: wrong type {type(value[key]).__name__}")


def _suggest(key: str, keys: Mapping[str, Any]) -> str:
    lowered = {k.lower(): k for k in keys}
    close = lowered.get(key.lower()) or next(iter(difflib.get_close_matches(key, list(keys), n=1)), None)
    return f" (did you mean {close!r}?)" if close else f" (known: {', '.join(keys)})"
