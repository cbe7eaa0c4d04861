"""The canary: a stage's first request, sent alone and checked by reading back (DESIGN
"Gentle on production", invariant 16).

Before the first request to a stage, Get Stage State reads its cells and the cells of the
stage's next request; the request is sent with nothing else in flight; both are read
again. Its cells must hold nothing, and the next request's cells must hold every item
they held. Otherwise the gateway did not do what it answered, and the run stops: the
caller sends nothing more to any stage. A request that answered true but kept its state
is recorded `failed` (its cells pending again), never `delete`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.apply.live import holding_cells
from reconciler.apply.values import Done, DoneKind, Outcome
from reconciler.errors import EnosError, LedgerWriteError, ReconcilerError, TooManyPointsError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.apply.requests import Outcomes, Requests
    from reconciler.plan import Action

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
    """Read, send `action` alone, read again; the caller holds the pool meanwhile."""
    try:
        own = _read(requests, action)
        others = _read(requests, following) if following is not None else []
    except (EnosError, ReconcilerError) as exc:
        closed = [requests.close(action, f"not sent: the canary could not read its cells first: {exc}")]
        return Verdict(
            closed, False, f"stage {where(action)}: the canary could not read its state first ({exc})"
        )
    out: Outcomes = []
    try:
        requests.send_first(action, out, prefetched=own)
    except LedgerWriteError as exc:
        out.append(Done(DoneKind.STOP, action, error=exc))
        return Verdict(out, False)
    cleared = [d for d in out if d.kind is DoneKind.DELETED]
    if not cleared or len(cleared) != len(out):  # refused, in doubt or not sent: no verdict
        return Verdict(_record(requests, out, None), False)
    try:
        still = holding_cells(_read(requests, action), action.asset_ids, action.point_ids)
        after = (
            holding_cells(_read(requests, following), following.asset_ids, following.point_ids)
            if following
            else set()
        )
    except (EnosError, ReconcilerError) as exc:
        return Verdict(
            _record(requests, out, None),
            False,
            f"stage {where(action)}: its first request answered true, but its state could not be read "
            f"back ({exc})",
        )
    before = holding_cells(others, following.asset_ids, following.point_ids) if following else set()
    if still:
        message = f"{KEPT} ({plural(len(still), 'cell')} of {action.cells:,} still hold state)"
        return Verdict(_record(requests, out, message), False, f"stage {where(action)}: {message}")
    lost = before - after
    if lost:
        message = f"{CLEARED_OTHERS} ({plural(len(lost), 'cell')} of its next request lost their state)"
        return Verdict(_record(requests, out, None), False, f"stage {where(action)}: {message}")
    return Verdict(_record(requests, out, None), True)


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
