"""What the pending cells hold at the gateway now: Get Stage State, read-only.

Used by `plan --refresh` (DESIGN "Plan": `liveStateCells`, per action and in total, with
a few sample values per manifest) and by `ledger resolve --verify` (a person settles an
in-doubt request from what the cells hold, not by guessing). Each read has exactly the
body of the request it previews, so reads are bounded by the same request shapes as
the deletes (`--max-points`, `--max-assets`); they run `concurrency` at a time.

Items are counted by (`assetId`, `pointId`) inside the request's cells, and kept as
returned otherwise (DESIGN "EnOS contract decisions": item shapes differ per operator
type; `time` may be seconds or milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from reconciler.errors import EnosError, ReconcilerError, TooManyPointsError

if TYPE_CHECKING:
    from reconciler.apply.gateways import Gateways
    from reconciler.plan import Action

SAMPLES_PER_MANIFEST = 3


@dataclass(frozen=True)
class Sample:
    """One cell's state as read: what a reviewer sees before it is destroyed."""

    manifest: str
    stage: str
    asset: str
    point: str
    value: Any
    time: str  # ISO 8601 UTC, or "" when the item has no time

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "stageInstanceName": self.stage,
            "assetId": self.asset,
            "pointId": self.point,
            "value": self.value,
            "time": self.time,
        }


@dataclass
class LiveState:
    """The read of every action: cells holding state per action, samples per manifest."""

    holding: dict[Action, int] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.holding.values())

    def empty_actions(self) -> list[Action]:
        """Pending actions whose cells hold no state at all: clearing them changes nothing."""
        return [a for a, n in self.holding.items() if n == 0 and not a.in_doubt]


def read_state(
    gateways: Gateways,
    actions: Sequence[Action],
    *,
    concurrency: int = 4,
    samples: int = SAMPLES_PER_MANIFEST,
) -> LiveState:
    """Read every action's cells. A read that fails is kept in `failed` (the caller decides
    whether that degrades the whole answer); the others still count."""
    state = LiveState()

    def one(a: Action) -> tuple[Action, list[dict[str, Any]] | str]:
        try:
            return a, _read(gateways, a)
        except (EnosError, ReconcilerError) as exc:
            return a, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile-read") as pool:
        results = list(pool.map(one, actions))  # in plan order, so the samples repeat
    for a, got in results:
        if isinstance(got, str):
            state.failed.append((a, got))
            continue
        held = holding_cells(got, a.asset_ids, a.point_ids)
        state.holding[a] = len(held)
        _keep_samples(state.samples.setdefault(a.manifest, []), a, got, held, samples)
    return state


def _read(gateways: Gateways, a: Action) -> list[dict[str, Any]]:
    """One request's items; halves on 61105, as apply splits the delete."""
    try:
        return gateways.client(a.org_id).get_stage_state(a)
    except TooManyPointsError:
        if a.cells <= 1:
            raise
        first, second = a.halves()
        return _read(gateways, first) + _read(gateways, second)


def holding_cells(
    items: Sequence[Mapping[str, Any]], assets: Sequence[str], points: Sequence[str]
) -> set[tuple[str, str]]:
    """The (asset, point) cells of a request that the items say hold state."""
    a, p = set(assets), set(points)
    return {
        (str(i.get("assetId")), str(i.get("pointId")))
        for i in items
        if i.get("assetId") in a and i.get("pointId") in p
    }


def item_time(value: Any) -> str:
    """`time` as ISO 8601 UTC: milliseconds above 1e12, else seconds (REFERENCE 1.1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    seconds = value / 1000 if value > 1e12 else value
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _keep_samples(
    kept: list[Sample], a: Action, items: Sequence[Mapping[str, Any]], held: set[tuple[str, str]], n: int
) -> None:
    for i in items:
        if len(kept) >= n:
            return
        cell = (str(i.get("assetId")), str(i.get("pointId")))
        if cell in held:
            kept.append(
                Sample(a.manifest, a.stage, cell[0], cell[1], i.get("value"), item_time(i.get("time")))
            )


def read_or_warn(
    gateways: Gateways,
    actions: Sequence[Action],
    warn: Callable[[str], None],
    concurrency: int = 4,
) -> LiveState | None:
    """`read_state`, degrading like every refresh failure: a warning that says why, and None
    (the caller prints the offline plan). Partial answers are not shown as totals."""
    try:
        state = read_state(gateways, actions, concurrency=concurrency)
    except ReconcilerError as exc:  # an EnosError is one
        warn(f"live state not read: {exc}; the plan below is the offline plan")
        return None
    if state.failed:
        a, why = state.failed[0]
        more = f" (and {len(state.failed) - 1} more)" if len(state.failed) > 1 else ""
        warn(
            f"live state not read: {a.manifest} / {a.pipeline_id} / {a.stage}: {why}{more}; "
            "the plan below is the offline plan"
        )
        return None
    return state
