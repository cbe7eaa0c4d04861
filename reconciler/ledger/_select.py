"""Filtering the history (`ledger show`): validated filters, times compared as times."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone

from reconciler.errors import Hint, LedgerError, ReconcilerError
from reconciler.ledger._read import Ledger
from reconciler.ledger._record import KNOWN_KINDS, Record

_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SINCE_FORMS = (
    "a date (2026-11-01), a date and time (2026-11-01T08:00, 2026-11-01T08:00:00Z, "
    "2026-11-01T08:00:00+01:00; UTC when no offset is given) or a duration back from now "
    "(30m, 12h, 7d, 2w)"
)


def select(
    ledger: Ledger,
    *,
    manifest: str | None = None,
    pipeline: str | None = None,
    since: str | None = None,
    kinds: Iterable[str] | None = None,
    stage: str | None = None,
    asset: str | None = None,
    point: str | None = None,
    limit: int | None = None,
    tail: int | None = None,
    now: datetime | None = None,
) -> list[Record]:
    """The records matching every filter given, in ledger order; `limit` keeps the first
    N of them, `tail` the last N.

    Raises `ReconcilerError` for a filter that cannot match by construction: a `since` in
    no accepted form, an unknown kind, a name or ID no record of this ledger holds (with
    the closest that it does hold), a limit below 1, or both limit and tail. A filter that
    is valid but matches nothing (e.g. too recent a `since`) gives an empty list.
    """
    start = parse_since(since, now=now) if since is not None else None
    wanted = check_kinds(kinds) if kinds else None
    _check_counts(limit, tail)
    _check_known(ledger, manifest=manifest, pipeline=pipeline, stage=stage, asset=asset, point=point)
    has_asset = _Membership(asset)
    has_point = _Membership(point)
    out = []
    for r in ledger.records:
        if manifest is not None and r.manifest != manifest:
            continue
        if pipeline is not None and r.pipeline_id != pipeline:
            continue
        if wanted is not None and r.kind not in wanted:
            continue
        if stage is not None and r.data.get("stageInstanceName") != stage:
            continue
        if asset is not None and not has_asset(r.asset_ids):
            continue
        if point is not None and not has_point(r.point_ids):
            continue
        if start is not None and record_time(r) < start:
            continue
        out.append(r)
    if limit is not None:
        out = out[:limit]
    if tail is not None:
        out = out[-tail:]
    return out


_FILTER_FIELDS: dict[str, Callable[[Record], tuple[object, ...]]] = {
    "manifest": lambda r: (r.manifest,),
    "pipeline": lambda r: (r.pipeline_id,),
    "stage": lambda r: (r.data.get("stageInstanceName"),),
    "asset": lambda r: r.asset_ids,
    "point": lambda r: r.point_ids,
}


class _Membership:
    """`value in ids`, once per distinct ID tuple: the reader shares one tuple per distinct
    list, so a year of fleet-wide deletes asks about a few hundred lists, not 20,000."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.memo: dict[int, bool] = {}

    def __call__(self, ids: tuple[str, ...]) -> bool:
        hit = self.memo.get(id(ids))
        if hit is None:
            hit = self.memo[id(ids)] = self.value in ids
        return hit


def _check_known(ledger: Ledger, **given: str | None) -> None:
    """A name or ID the ledger never mentions is a typo until proven otherwise: say so, with
    the closest the ledger holds, instead of printing "0 records"."""
    for name, value in given.items():
        if value is None:
            continue
        lists = _distinct(ledger, name)
        if any(value in values for values in lists):
            continue
        known = {v for values in lists for v in values if isinstance(v, str)}
        near = [k for k in known if abs(len(k) - len(value)) <= 3]  # difflib on 200,000 IDs is slow
        close = difflib.get_close_matches(value, sorted(near), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        where = f"{ledger.path}" if ledger.records else f"{ledger.path} (it has no records)"
        raise ReconcilerError(
            f"{value!r}: no record of {where} names this {name}{hint}", hint=Hint.FILTER, hint_value=name
        )


def _distinct(ledger: Ledger, name: str) -> list[tuple[object, ...]]:
    """The value lists of one filter's field, each shared tuple once."""
    field = _FILTER_FIELDS[name]
    found: dict[int, tuple[object, ...]] = {}
    singles: set[object] = set()
    for r in ledger.records:
        values = field(r)
        if name in ("asset", "point"):
            found.setdefault(id(values), tuple(values))
        else:
            singles.update(values)
    return [*found.values(), tuple(singles)]


def _check_counts(limit: int | None, tail: int | None) -> None:
    if limit is not None and tail is not None:
        raise ReconcilerError(
            "limit and tail exclude each other: a limit of N keeps the first N records, a tail of N the last N",
            hint=Hint.COUNTS,
        )
    for name, value in (("limit", limit), ("tail", tail)):
        if value is not None and value < 1:
            raise ReconcilerError(f"must be at least 1, not {value}", hint=Hint.FILTER, hint_value=name)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from a date, a datetime or a duration back from `now`."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        moment = now or datetime.now(timezone.utc)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            return moment - timedelta(**{_UNITS[duration.group(2)]: int(duration.group(1))})
        except (OverflowError, ValueError):  # past year 1, or more digits than int() takes
            raise ReconcilerError(
                f"{text[:40]!r} reaches back before the year 1; use a shorter duration or a date ({SINCE_FORMS})"
            ) from None
    parsed = _parse_time(value)
    if parsed is None:
        raise ReconcilerError(f"{text!r} is not a time; use {SINCE_FORMS}")
    return parsed


def record_time(record: Record) -> datetime:
    parsed = _parse_time(record.at)
    if parsed is None:
        raise LedgerError(f"record seq {record.seq} has an unreadable time {record.at!r}")
    return parsed


# What `ledger show --kind` can select: a `seal` is layout (it ends a segment and names the
# next), not history, so it is never among the records shown.
SHOWN_KINDS = tuple(k for k in KNOWN_KINDS if k != "seal")


def check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(kinds)
    for kind in sorted(wanted):
        if kind == "seal":
            raise ReconcilerError(
                "seal records end a segment of the ledger and are not history: `ledger show` lists "
                f"records of the kinds {', '.join(SHOWN_KINDS)}; `ledger verify` checks every seal"
            )
        if kind not in SHOWN_KINDS:
            close = difflib.get_close_matches(kind, SHOWN_KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ReconcilerError(
                f"unknown record kind {kind!r}{hint}; known kinds: {', '.join(SHOWN_KINDS)}"
            )
    return wanted


def _parse_time(value: str) -> datetime | None:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?", value):
        return None
    iso = value[:-1] + "+00:00" if value.endswith("Z") else value
    iso = re.sub(r"\.(\d{1,6})", lambda m: "." + m.group(1).ljust(6, "0"), iso)  # 3.10 wants 6 digits
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
