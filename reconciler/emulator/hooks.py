"""Hooks: what a test makes the emulated gateway do at exact requests.

A hook matches requests by route ("delete", "get", "list", "details",
"operate", or "operate:pause"/"operate:start"/"operate:stop") or by a predicate
on the request's log entry, lets the first `skip` matches pass, then fires
`times` times. Firing can hold the request until the test releases it, run a
function before or after the request is handled (a person starts the pipeline
now), answer that the token expired in one of the shapes the gateway uses, or
let the request take effect and then drop the connection unanswered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

# How a gateway says "token expired": HTTP 401, or on HTTP 200 a `code` 1203 (REFERENCE
# 3.5), a `status` 4011 or an `apim_status` 4012 (the Python SDK's shapes, REFERENCE 4.2).
EXPIRY_SHAPES = ("http401", "code1203", "status4011", "apim_status4012")

Match: TypeAlias = "str | Callable[[dict[str, Any]], bool] | None"
W = TypeVar("W")  # the world a hook's actions are given (`World`, which imports this module)


@dataclass
class Hook(Generic[W]):
    """One armed hook; `fired` counts the requests it acted on."""

    match: Match
    skip: int = 0
    times: int | None = 1
    before: Callable[[W, dict[str, Any]], None] | None = None
    after: Callable[[W, dict[str, Any]], None] | None = None
    lose_answer: bool = False
    expire_token: str | None = None
    hold: threading.Event | None = None
    fired: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(entry))
        route, _, action = self.match.partition(":")
        return entry["route"] == route and (not action or entry["query"].get("action") == action)

    def take(self, entry: dict[str, Any]) -> bool:
        """Whether the hook fires for this request; called under the world's lock."""
        if not self.matches(entry):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        self.entries.append(entry)
        return True

    def release(self) -> None:
        """Let a held request go on."""
        if self.hold is not None:
            self.hold.set()


def expiry_reply(shape: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of an expired-token answer in `shape`."""
    if shape == "http401":
        return 401, {"message": "Invalid authentication credentials"}
    field_name, code = {"code1203": ("code", 1203), "status4011": ("status", 4011)}.get(
        shape, ("apim_status", 4012)
    )
    return 200, {field_name: code, "msg": "access token expired", "data": None}
