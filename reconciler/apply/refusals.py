"""Refusals that hold for a whole key: after the first, nothing more is sent to that key.

DESIGN "Apply" step 7: 61107 (the stage type has no state operations) holds for the
stage, 61106 (wrong pipeline, or no privilege on it) for the pipeline, an auth error
(or a gateway without the Stream Processing API) for the org. Sending the other
requests of that key would only be refused the same way, one FAILED line and two
ledger records each; they are closed as `failed` instead (pending, never in doubt),
and the person watching is told once per key.
"""

from __future__ import annotations

import threading

from reconciler.apply.values import Refusal
from reconciler.errors import ApiNotAvailable, AuthError, EnosError
from reconciler.plan import Action

STAGE_CODES = frozenset({61107})
PIPELINE_CODES = frozenset({61106})


def scope_of(exc: EnosError) -> str | None:
    """The key a definite refusal holds for, or None when it is about this request only."""
    if not exc.definite:
        return None
    if isinstance(exc, (AuthError, ApiNotAvailable)):
        return "org"
    if exc.code in PIPELINE_CODES:
        return "pipeline"
    if exc.code in STAGE_CODES:
        return "stage"
    return None


def _key(action: Action, scope: str) -> tuple[str, ...]:
    if scope == "org":
        return (action.org_id,)
    if scope == "pipeline":
        return (action.org_id, action.pipeline_id)
    return (action.org_id, action.pipeline_id, action.stage)


class Refusals:
    """The keys refused so far in a run; thread-safe (the sending pool consults it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, tuple[str, ...]], Refusal] = {}

    def holds(self, action: Action) -> bool:
        """Whether a refusal holds for this request already (not counted: `holding` is)."""
        with self._lock:
            return any(self._held.get((s, _key(action, s))) is not None for s in ("org", "pipeline", "stage"))

    def holding(self, action: Action) -> Refusal | None:
        """The refusal that already holds for this request's org, pipeline or stage, counted."""
        with self._lock:
            for scope in ("org", "pipeline", "stage"):
                found = self._held.get((scope, _key(action, scope)))
                if found is not None:
                    found.requests += 1
                    return found
        return None

    def hold(self, action: Action, exc: EnosError, scope: str) -> tuple[Refusal, bool]:
        """Record the refusal for its key; (the refusal, whether it is the key's first)."""
        key = (scope, _key(action, scope))
        with self._lock:
            found = self._held.get(key)
            if found is not None:
                found.requests += 1
                return found, False
            self._held[key] = Refusal(scope, key[1], str(exc), exc.code)
            return self._held[key], True

    @property
    def all(self) -> list[Refusal]:
        with self._lock:
            return list(self._held.values())
