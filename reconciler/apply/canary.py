"""The canary: a stage's first request, sent alone and checked by reading back (DESIGN
"Gentle on production", invariant 16).

Before the first request to a stage, Get Stage State reads its cells and the cells of the
stage's next request (the two reads at once); the request is sent once the deletes in flight are answered, and
no other delete begins until both are read again (`CanaryGate`). Its cells must hold
nothing, and the next request's cells must hold every item they held. Otherwise the
gateway did not do what it answered, and the run stops before any other delete is let
go: nothing more is sent to any stage. A request that answered true but kept its state
is recorded `failed` (its cells pending again), never `delete`. One whose cells read back
empty while the gateway cleared others too is recorded `delete`: it was cleared, and a
re-send after its pipeline ran again would clear new state (invariant 10).

A read refused for good (61106, 61107, auth) holds for its key as the delete's refusal
would (DESIGN "Apply" 7), and the run goes on; any other failure to read stops it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.apply.live import holding_cells
from reconciler.apply.refusals import scope_of
from reconciler.apply.values import Done, DoneKind, Outcome
from reconciler.errors import EnosError, LedgerWriteError, ReconcilerError, TooManyPointsError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.apply.requests import Outcomes, Requests
    from reconciler.plan import Action

A = TypeVar("A")
B = TypeVar("B")

KEPT = "it answered true and kept the state"
CLEARED_OTHERS = "it cleared cells it was not asked to"


@dataclass(frozen=True)
class Verdict:
    """What the canary came to: its outcomes; `checked` (the request cleared and the
    read-back agreed, so the stage needs no other canary); `stop`: why the run stops."""

    outcomes: list[Done]
    checked: bool
    stop: str | None = None


def where(action: Action) -> str:
    return f"{action.org_id}/{action.pipeline_id}/{action.stage}"


def run_canary(requests: Requests, action: Action, following: Action | None) -> Verdict:
    """Read, send `action` with no other delete in flight, read again (in a worker)."""
    if requests.stopped() or requests.refusals.holds(action):
        return Verdict(requests.send_one(action), False)  # closed, or held: nothing to read
    try:
        (own, whole), others = _alongside(
            lambda: _read_first(requests, action),
            lambda: _read(requests, following) if following is not None else [],
        )
    except EnosError as exc:
        if scope_of(exc) is not None:  # the delete would be refused the same way: hold its key
            refused = requests.refused_before_send(action, exc, "the canary could not read its cells")
            return Verdict([refused], False)
        return _unread(requests, action, exc)
    except ReconcilerError as exc:
        return _unread(requests, action, exc)
    out: Outcomes = []
    with requests.gate.checking():
        try:
            # A read split by 61105 means a split delete: each half's snapshot reads its own.
            requests.send_first(action, out, prefetched=own if whole else None)
        except LedgerWriteError as exc:
            out.append(Done(DoneKind.STOP, action, error=exc))
            return Verdict(out, False)
        found = _check(requests, action, following, others, out)
        if found.stop is not None:
            requests.gate.lied = found.stop  # before any other delete is let go
    return Verdict(_record(requests, out, KEPT if found.kept else None), found.checked, found.stop)


def _unread(requests: Requests, action: Action, exc: Exception) -> Verdict:
    """The state could not be read first: nothing is sent, and the run stops (a gateway
    that cannot be read back cannot be checked)."""
    closed = [requests.close(action, f"not sent: the canary could not read its cells first: {exc}")]
    return Verdict(closed, False, f"stage {where(action)}: the canary could not read its state first ({exc})")


@dataclass(frozen=True)
class _Finding:
    checked: bool
    stop: str | None = None
    kept: bool = False


def _check(
    requests: Requests,
    action: Action,
    following: Action | None,
    others: list[dict[str, Any]],
    out: Outcomes,
) -> _Finding:
    """What the read-back shows, once the request answered: its cells must hold nothing,
    the next request's every item they held."""
    cleared = [d for d in out if d.kind is DoneKind.DELETED]
    if not cleared or len(cleared) != len(out):  # refused, in doubt or not sent: no verdict
        return _Finding(False)
    try:
        mine, theirs = _alongside(
            lambda: _read(requests, action),
            lambda: _read(requests, following) if following is not None else [],
        )
        still = holding_cells(mine, action.asset_ids, action.point_ids)
        after = holding_cells(theirs, following.asset_ids, following.point_ids) if following else set()
    except (EnosError, ReconcilerError) as exc:
        return _Finding(
            False,
            f"stage {where(action)}: its first request answered true, but its state could not be read "
            f"back ({exc})",
        )
    before = holding_cells(others, following.asset_ids, following.point_ids) if following else set()
    if still:
        hold = "holds" if len(still) == 1 else "hold"
        message = f"{KEPT} ({plural(len(still), 'cell')} of {action.cells:,} still {hold} state)"
        return _Finding(False, f"stage {where(action)}: {message}", kept=True)
    lost = before - after
    if lost:
        their = "its" if len(lost) == 1 else "their"
        message = f"{CLEARED_OTHERS} ({plural(len(lost), 'cell')} of its next request lost {their} state)"
        return _Finding(False, f"stage {where(action)}: {message}")
    return _Finding(True)


def _alongside(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Both reads at once (the request's cells and the next request's): the canary holds
    every other delete while it reads back, so it takes one call's time, not two."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="canary-read") as pool:
        other = pool.submit(second)
        return first(), other.result()


def _read_first(requests: Requests, action: Action) -> tuple[list[dict[str, Any]], bool]:
    """Its items, and whether one read took them (not split on 61105)."""
    try:
        return requests.gateways.client(action.org_id).get_stage_state(action), True
    except TooManyPointsError:
        if action.cells <= 1:
            raise
        return _read(requests, action), False


def _read(requests: Requests, action: Action) -> list[dict[str, Any]]:
    """One request's items; halves on 61105, as the delete would be split."""
    client = requests.gateways.client(action.org_id)
    try:
        return client.get_stage_state(action)
    except TooManyPointsError:
        if action.cells <= 1:
            raise
        first, second = action.halves()
        return _read(requests, first) + _read(requests, second)


def _record(requests: Requests, out: list[Done], kept: str | None) -> list[Done]:
    """The records the canary held back: `delete` for what cleared, or `failed` (pending
    again) when the gateway kept the state it answered cleared."""
    recorded: list[Done] = []
    for d in out:
        if d.kind is not DoneKind.DELETED:
            recorded.append(d)
            continue
        if kept is not None:
            requests.journal.outcome("failed", d.action, None, f"the canary found: {kept}")
            requests.reporter.advance(d.action, Outcome.FAILED, kept)
            recorded.append(Done(DoneKind.FAILED, d.action, kept))
            continue
        try:
            requests.record_deleted(d.action, d.evidence, recorded)
        except LedgerWriteError as exc:
            recorded.append(Done(DoneKind.STOP, d.action, error=exc))
            break
    return recorded
