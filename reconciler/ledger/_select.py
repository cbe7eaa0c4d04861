"""Filtering the history (`ledger show`): validated filters, times compared as times."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

from reconciler.errors import LedgerError, ReconcilerError
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
    now: datetime | None = None,
) -> list[Record]:
    """The records matching every filter given, in ledger order.

    Raises `ReconcilerError` for a filter that cannot match by construction: a
    `since` in no accepted form, an unknown kind.
    """
    start = parse_since(since, now=now) if since is not None else None
    wanted = check_kinds(kinds) if kinds else None
    out = []
    for r in ledger.records:
        if manifest is not None and r.manifest != manifest:
            continue
        if pipeline is not None and r.pipeline_id != pipeline:
            continue
        if wanted is not None and r.kind not in wanted:
            continue
        if start is not None and record_time(r) < start:
            continue
        out.append(r)
    return out


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from a date, a datetime or a duration back from `now`."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        moment = now or datetime.now(timezone.utc)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment - timedelta(**{_UNITS[duration.group(2)]: int(duration.group(1))})
    parsed = _parse_time(value)
    if parsed is None:
        raise ReconcilerError(f"--since {text!r} is not a time; use {SINCE_FORMS}")
    return parsed


def record_time(record: Record) -> datetime:
    parsed = _parse_time(record.at)
    if parsed is None:
        raise LedgerError(f"record seq {record.seq} has an unreadable time {record.at!r}")
    return parsed


def check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(kinds)
    for kind in sorted(wanted):
        if kind not in KNOWN_KINDS:
            close = difflib.get_close_matches(kind, KNOWN_KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ReconcilerError(
                f"unknown record kind {kind!r}{hint}; known kinds: {', '.join(KNOWN_KINDS)}"
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
