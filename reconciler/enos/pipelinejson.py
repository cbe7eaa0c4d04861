"""Reading stage instance names out of Get Pipeline Details' `pipelineJson`, defensively.

The field holds "the full configuration" (REFERENCE 2.2) in a format EnOS does not
document. Stream pipelines are built from StreamSets operators, whose pipeline
configuration lists `stages` with an `instanceName`; other shapes name a stage
`stageInstanceName`, or `name` inside a `stages` list. Anything else (not JSON, no such
list) reads as "unknown", never as "no stages": a name is only called missing when the
document plainly lists stages and that name appears nowhere in it (DESIGN "Apply" step 7,
the stage-name warning before anything is paused).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_NAME_KEYS = ("instanceName", "stageInstanceName")
_LIST_KEYS = ("stages", "operators", "stageList")
_MAX_DEPTH = 64


def stage_names(pipeline_json: Any) -> frozenset[str] | None:
    """The stage instance names the configuration lists; None when it lists none we can read."""
    doc = _document(pipeline_json)
    if doc is None:
        return None
    names = frozenset(_names(doc, 0))
    return names or None


def mentions(pipeline_json: Any, name: str) -> bool:
    """Whether `name` appears as any string value anywhere in the configuration."""
    doc = _document(pipeline_json)
    return doc is not None and name in set(_strings(doc, 0))


def _document(raw: Any) -> Any:
    if isinstance(raw, (dict, list)):
        return raw
    if isinstance(raw, (str, bytes)):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return None


def _names(node: Any, depth: int) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key in _NAME_KEYS:
            if isinstance(node.get(key), str) and node[key]:
                yield node[key]
        for key, value in node.items():
            if key in _LIST_KEYS and isinstance(value, list):
                yield from (
                    s["name"] for s in value if isinstance(s, dict) and isinstance(s.get("name"), str)
                )
            yield from _names(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _names(item, depth + 1)


def _strings(node: Any, depth: int) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, depth + 1)
