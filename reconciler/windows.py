"""Change windows and freezes (DESIGN "Windows"): when apply may pause production.

`apply.windows` in reconcile.yaml names a time zone, `allow` windows (a cron expression
for each opening and how long it stays open; none listed: any time) and `deny` freezes
(dates, or a cron expression with a duration, each with a reason). A freeze wins over an
allow window. Apply outside a window pauses and sends nothing and says it deferred, why
and until when; inside one, a pause is not begun when its estimate would run past the
window's end (`gate`).

Pure: every function is given the instant it judges (an aware datetime, or a clock
returning epoch seconds), so tests inject the clock; nothing here reads the time itself.

The cron library is **cronsim**, not croniter:
- it has no dependencies (croniter brings python-dateutil), and ships type hints, so
  `mypy --strict` checks our calls without stubs;
- its daylight-saving rules are the cron daemons' (Debian's cron): an opening skipped by
  a spring-forward happens at the first minute after the gap, and one repeated by a
  fall-back happens once. That is what someone who writes crontabs expects of a window;
- it iterates backwards (`reverse=True`), which "is a window open now" needs: the latest
  opening at or before now, and whether it has closed since;
- it is small and kept up (it runs the cron checks of Healthchecks.io).
Time zones come from the standard `zoneinfo`, with the `tzdata` package as the IANA
database where the system has none (slim CI images, Windows).

Durations are elapsed time: `4h` from 01:00 on the night the clocks go back ends at
04:00 by the clock, having lasted four hours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler import durations

UTC = timezone.utc
UTC_ZONE = ZoneInfo("UTC")
HORIZON = timedelta(days=400)  # "when does it open next" looks this far ahead, then says "not within a year"
_STEPS = 10_000  # bound on the search's jumps (each jump is to a window's or a freeze's edge)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_DURATION = timedelta(days=366)
OUTSIDE = "outside the apply windows (apply.windows.allow)"


# --- parsing (config.py reports the errors with file:line:col) -----------------------------


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `4h`, `1d`, or a sum such as `1h30m`; positive, at most a year."""
    value = _positive_duration(text, "90s, 30m, 4h, 1d or 1h30m")
    if value > MAX_DURATION:
        raise ValueError(f"{text!r}: a duration may be at most 366d")
    return value


MAX_PAUSE = timedelta(hours=23)  # EnOS keeps a job paused for at most 24 h


def pause_duration(text: str) -> float:
    """apply.rollout.maxPause / --max-pause in seconds: a duration as above, at most 23h
    (its examples are ones it takes: `1d` never is)."""
    value = _positive_duration(text, "90s, 30m, 4h or 1h30m")
    if value > MAX_PAUSE:
        raise ValueError(f"{text!r} is longer than 23h: EnOS keeps a job paused for at most 24 h")
    return value.total_seconds()


def _positive_duration(text: str, examples: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise ValueError(f"{text!r} is not a duration: write it as {examples}")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    value = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if value <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return value


def check_cron(expr: str) -> str:
    """The expression, if cronsim accepts it (five fields: minute hour day month weekday)."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(
            f"{expr!r} is not a valid cron expression ({exc}): five fields, minute hour "
            "day-of-month month day-of-week, e.g. '0 1 * * *' for 01:00 every day"
        ) from None
    return expr


def zone(name: str) -> ZoneInfo:
    """An IANA time zone (`Asia/Shanghai`, `UTC`)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{name!r} is not an IANA time zone name (e.g. UTC, Asia/Shanghai, Europe/Berlin)"
        ) from None


def parse_when(value: str) -> date | datetime:
    """A freeze's `from`/`to`: a date (`2027-01-25`) or a local date and time
    (`2027-01-25T18:00`), in the windows' time zone."""
    try:
        if "T" in value or " " in value.strip():
            when = datetime.fromisoformat(value.strip())
            if when.tzinfo is not None:
                raise ValueError("offset")
            return when
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date: write 2027-01-25, or 2027-01-25T18:00 for a time of day "
            "(in apply.windows.timeZone, without an offset)"
        ) from None


# --- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recurring:
    """A window that opens at each time `cron` names (in the windows' zone) and stays
    open for `duration` of elapsed time."""

    cron: str
    duration: timedelta
    reason: str | None = None

    def covering(self, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The interval holding `at` (the latest opening at or before it), else None."""
        from cronsim import CronSim

        local = at.astimezone(tz) + timedelta(seconds=1)  # cronsim's reverse step is strict
        try:
            opened = next(CronSim(self.cron, local, reverse=True)).astimezone(UTC)
        except StopIteration:
            return None
        end = opened + self.duration
        return (opened, end) if opened <= at < end else None

    def next_start(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first opening strictly after `after`."""
        from cronsim import CronSim

        try:
            return next(CronSim(self.cron, after.astimezone(tz))).astimezone(UTC)
        except StopIteration:
            return None

    def describe(self) -> str:
        return f"cron {self.cron!r} for {durations.spelled(self.duration.total_seconds())}"


@dataclass(frozen=True)
class Dates:
    """A freeze from one day (or local time) to another; a date `to` is the whole day."""

    start: date | datetime
    end: date | datetime
    reason: str | None = None

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return _local(self.start, tz, end=False), _local(self.end, tz, end=True)

    def covering(self, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        lo, hi = self.bounds(tz)
        return (lo, hi) if lo <= at < hi else None

    def next_start(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        lo, _ = self.bounds(tz)
        return lo if lo > after else None

    def describe(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


Rule = Recurring | Dates


def _local(value: date | datetime, tz: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz).astimezone(UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Windows:
    """reconcile.yaml `apply.windows`, checked."""

    tz: ZoneInfo = UTC_ZONE
    allow: tuple[Recurring, ...] = ()
    deny: tuple[Rule, ...] = ()

    @property
    def tz_name(self) -> str:
        return self.tz.key


@dataclass(frozen=True)
class WindowState:
    """Whether apply may pause production at an instant, and why not or until when.

    Closed: `reason` says why (a freeze's reason, or outside every allow window) and
    `next` when it opens (None: not within a year). Open: `closes` says when it closes
    (None: no window or freeze ends it within a year)."""

    open: bool
    at: datetime
    reason: str | None = None
    next: datetime | None = None
    closes: datetime | None = None
    tz: ZoneInfo = UTC_ZONE

    def local(self, when: datetime | None) -> str | None:
        """An instant as ISO 8601 in the windows' time zone (what the team reads)."""
        return None if when is None else when.astimezone(self.tz).isoformat(timespec="minutes")

    @property
    def until(self) -> str | None:
        return self.local(self.next)

    def to_json(self) -> dict[str, Any]:
        """Plan JSON `policy.window` (DESIGN "Windows")."""
        return {
            "open": self.open,
            "reason": self.reason,
            "next": self.local(self.next),
            "closes": self.local(self.closes),
            "timeZone": self.tz.key,
        }

    def words(self) -> str:
        """One line: open (until when) or closed (why, and when apply will run)."""
        if self.open:
            if self.closes is None:
                return "the apply window is open"
            return f"the apply window is open until {self.local(self.closes)}"
        return f"outside the apply window: {self.reason}; {self.runs_words()}"

    def runs_words(self) -> str:
        if self.next is None:
            return "no window opens within a year (apply defers until reconcile.yaml changes)"
        return f"apply will run when the window opens at {self.local(self.next)}"


def _covering(rules: tuple[Rule, ...], at: datetime, tz: ZoneInfo) -> list[tuple[Rule, datetime]]:
    out = []
    for rule in rules:
        span = rule.covering(at, tz)
        if span is not None:
            out.append((rule, span[1]))
    return out


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("windows judge aware instants only")
    return at.astimezone(UTC)


def state(windows: Windows, at: datetime) -> WindowState:
    """Is the window open at `at`; if not, why and when it next opens; if so, when it closes."""
    at = _aware(at)
    tz = windows.tz
    frozen = _covering(windows.deny, at, tz)
    allowed = _covering(windows.allow, at, tz) if windows.allow else None
    if frozen or (allowed is not None and not allowed):
        reason = frozen[0][0].reason if frozen else None
        return WindowState(False, at, reason or OUTSIDE, next=next_open(windows, at), tz=tz)
    return WindowState(True, at, closes=_closes(windows, at), tz=tz)


def next_open(windows: Windows, at: datetime) -> datetime | None:
    """The first instant at or after `at` when the window is open (None: not within
    `HORIZON`). Jumps from edge to edge: past every freeze holding the instant, then to
    the next allow opening, until neither holds it back."""
    at = _aware(at)
    tz, t = windows.tz, at
    for _ in range(_STEPS):
        if t - at > HORIZON:
            return None
        frozen = _covering(windows.deny, t, tz)
        if frozen:
            t = max(end for _, end in frozen)
            continue
        if windows.allow and not _covering(windows.allow, t, tz):
            starts = [s for s in (r.next_start(t, tz) for r in windows.allow) if s is not None]
            if not starts:
                return None
            t = min(starts)
            continue
        return t
    return None


def _closes(windows: Windows, at: datetime) -> datetime | None:
    """When an open window closes: the end of the allow windows holding `at` (chained
    through windows that open before it ends), or the next freeze, whichever is first."""
    tz = windows.tz
    candidates: list[datetime] = []
    if windows.allow:
        end = at
        for _ in range(_STEPS):
            held = _covering(windows.allow, end, tz)
            if not held or end - at > HORIZON:
                break
            end = max(e for _, e in held)
        if end - at <= HORIZON:
            candidates.append(end)
    for rule in windows.deny:
        start = rule.next_start(at, tz)
        if start is not None and start - at <= HORIZON:
            candidates.append(start)
    return min(candidates) if candidates else None


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def gate(windows: Windows, now: Callable[[], float]) -> Callable[[float], str | None]:
    """apply's `ApplyOptions.gate`: called right before a pause would begin with that
    pause's estimated seconds; None to go, else why not (its requests stay pending)."""

    def check(estimate: float) -> str | None:
        at = from_epoch(now())
        s = state(windows, at)
        if not s.open:
            return f"{s.reason}; {s.runs_words()}"
        if s.closes is not None and at + timedelta(seconds=max(estimate, 0.0)) > s.closes:
            after = WindowState(False, at, next=next_open(windows, s.closes), tz=s.tz)
            return (
                f"a pause estimated at {durations.rough(estimate)} would run past "
                f"the window's end at {s.local(s.closes)}; {after.runs_words()}"
            )
        return None

    return check


@dataclass(frozen=True)
class Deferred:
    """A run that paused and sent nothing because the window was closed."""

    reason: str
    until: str | None  # ISO 8601 in the windows' time zone; None: no window within a year

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "until": self.until}

    def words(self) -> str:
        when = f"until {self.until}" if self.until else "no window opens within a year"
        return f"deferred: {self.reason}; {when}"
