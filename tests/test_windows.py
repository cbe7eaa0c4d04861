"""Change windows and freezes, judged at injected instants (DESIGN "Windows")."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciler import windows as w
from reconciler.config import load_config
from reconciler.errors import ConfigError

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def shanghai() -> w.Windows:
    """DESIGN's example: 01:00-05:00 Shanghai, frozen for Spring Festival and month-ends."""
    return w.Windows(
        SH,
        allow=(w.Recurring("0 1 * * *", timedelta(hours=4)),),
        deny=(
            w.Dates(date(2027, 1, 25), date(2027, 2, 5), "Spring Festival freeze"),
            w.Recurring("0 0 28-31 * *", timedelta(hours=24), "month-end settlement"),
        ),
    )


def test_no_windows_is_always_open() -> None:
    s = w.state(w.Windows(), at(UTC, 2027, 3, 5, 12, 0))
    assert s.open and s.closes is None and s.reason is None


def test_allow_window_open_inside_and_closed_outside_with_next_opening() -> None:
    win = shanghai()
    inside = w.state(win, at(SH, 2027, 3, 3, 2, 30))
    assert inside.open
    assert inside.local(inside.closes) == "2027-03-03T05:00+08:00"
    outside = w.state(win, at(SH, 2027, 3, 3, 5, 0))  # the end is not inside
    assert not outside.open and outside.reason == w.OUTSIDE
    assert outside.until == "2027-03-04T01:00+08:00"
    opening = w.state(win, at(SH, 2027, 3, 4, 1, 0))  # the opening minute is inside
    assert opening.open


def test_freeze_wins_over_allow_and_says_its_reason_and_when_it_opens() -> None:
    win = shanghai()
    s = w.state(win, at(SH, 2027, 1, 30, 2, 0))  # inside an allow window, inside the freeze
    assert not s.open
    assert s.reason == "Spring Festival freeze"
    assert s.until == "2027-02-06T01:00+08:00"  # the day after `to`, at the next allow opening
    # The last frozen day is frozen whole.
    assert not w.state(win, at(SH, 2027, 2, 5, 23, 59)).open


def test_chained_freezes_are_jumped_past() -> None:
    # Month-end settlement (28th-31st, each a 24h freeze) holds the window shut to the 1st.
    s = w.state(shanghai(), at(SH, 2027, 3, 28, 2, 0))
    assert not s.open and s.reason == "month-end settlement"
    assert s.until == "2027-04-01T01:00+08:00"


def test_window_closes_at_the_next_freeze_when_that_comes_first() -> None:
    win = w.Windows(UTC, deny=(w.Recurring("0 18 * * 5", timedelta(hours=62), "weekend"),))
    s = w.state(win, at(UTC, 2027, 3, 5, 17, 0))  # a Friday
    assert s.open and s.closes == at(UTC, 2027, 3, 5, 18, 0)
    frozen = w.state(win, at(UTC, 2027, 3, 6, 9, 0))
    assert not frozen.open and frozen.reason == "weekend"
    assert frozen.next == at(UTC, 2027, 3, 8, 8, 0)


def test_time_zones_shift_the_window() -> None:
    utc_win = w.Windows(UTC, allow=(w.Recurring("0 1 * * *", timedelta(hours=4)),))
    sh_win = w.Windows(SH, allow=(w.Recurring("0 1 * * *", timedelta(hours=4)),))
    t = at(UTC, 2027, 3, 3, 2, 0)  # 10:00 in Shanghai
    assert w.state(utc_win, t).open
    assert not w.state(sh_win, t).open
    assert w.state(sh_win, at(UTC, 2027, 3, 2, 17, 30)).open  # 01:30 in Shanghai


def test_dst_spring_forward_opening_moves_to_after_the_gap_and_duration_is_elapsed() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28: the window opens at 03:00 (as cron does).
    win = w.Windows(BERLIN, allow=(w.Recurring("30 2 * * *", timedelta(hours=2)),))
    s = w.state(win, at(BERLIN, 2027, 3, 28, 1, 0))
    assert not s.open
    assert s.until == "2027-03-28T03:00+02:00"
    assert w.state(win, at(BERLIN, 2027, 3, 28, 4, 59)).open
    assert not w.state(win, at(BERLIN, 2027, 3, 28, 5, 0)).open


def test_dst_fall_back_opens_once_and_lasts_its_elapsed_duration() -> None:
    # 2027-10-31: 03:00 CEST becomes 02:00 CET. A 01:00 window of 4h ends at 04:00 CET.
    win = w.Windows(BERLIN, allow=(w.Recurring("0 1 * * *", timedelta(hours=4)),))
    s = w.state(win, at(BERLIN, 2027, 10, 31, 1, 30))
    assert s.open
    assert s.local(s.closes) == "2027-10-31T04:00+01:00"
    assert s.closes is not None and s.closes - at(UTC, 2027, 10, 30, 23, 0) == timedelta(hours=4)


def test_dates_with_local_times_and_a_zone() -> None:
    win = w.Windows(SH, deny=(w.Dates(datetime(2027, 5, 1, 18, 0), datetime(2027, 5, 2, 8, 0), "release"),))
    assert w.state(win, at(SH, 2027, 5, 1, 17, 59)).open
    s = w.state(win, at(SH, 2027, 5, 1, 18, 0))
    assert not s.open and s.until == "2027-05-02T08:00+08:00"


def test_a_window_that_never_opens_within_a_year_says_so() -> None:
    win = w.Windows(UTC, deny=(w.Dates(date(2027, 1, 1), date(2029, 1, 1), "forever-ish"),))
    s = w.state(win, at(UTC, 2027, 6, 1, 0, 0))
    assert not s.open and s.next is None
    assert "no window opens within a year" in s.words()


def test_gate_refuses_a_pause_that_would_cross_the_end_and_a_closed_window() -> None:
    win = shanghai()
    clock = [at(SH, 2027, 3, 3, 4, 0).timestamp()]  # one hour before the window closes
    gate = w.gate(win, lambda: clock[0])
    assert gate(1800) is None
    reason = gate(2 * 3600)
    assert reason is not None and "would run past the window's end at 2027-03-03T05:00+08:00" in reason
    assert "2027-03-04T01:00+08:00" in reason
    clock[0] = at(SH, 2027, 3, 3, 5, 30).timestamp()  # the window closed during the run
    closed = gate(1)
    assert closed is not None and closed.startswith(w.OUTSIDE)


def test_durations() -> None:
    assert w.parse_duration("1h30m") == timedelta(minutes=90)
    assert w.parse_duration("90s") == timedelta(seconds=90)
    for bad in ("", "4 hours", "0m", "400d", "h"):
        with pytest.raises(ValueError):
            w.parse_duration(bad)


def _config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "reconcile.yaml"
    p.write_text("apiVersion: reconciler/v1\nkind: ReconcileConfig\n" + body)
    return p


def test_config_reads_windows_and_names_every_bad_field_by_line_and_column(tmp_path: Path) -> None:
    good = _config(
        tmp_path,
        "apply:\n  windows:\n    timeZone: Asia/Shanghai\n    allow:\n"
        '      - {cron: "0 1 * * *", duration: 4h}\n    deny:\n'
        '      - {from: 2027-01-25, to: "2027-02-05", reason: "Spring Festival freeze"}\n',
    )
    cfg = load_config(good)
    assert cfg is not None and cfg.windows is not None
    assert cfg.windows.tz_name == "Asia/Shanghai"
    assert cfg.windows.deny == (w.Dates(date(2027, 1, 25), date(2027, 2, 5), "Spring Festival freeze"),)
    bad = _config(
        tmp_path,
        "apply:\n  windows:\n    timeZone: Mars/Base\n    allow:\n"
        '      - {cron: "61 1 * * *", duration: 4 hours}\n    deny:\n'
        '      - {from: 2027-01-25, to: "2027-01-05", reason: "x"}\n'
        '      - {cron: "0 0 28-31 * *", reason: "month-end"}\n'
        "notify:\n  - urlEnv: https://hooks.example/T0KEN\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    assert f"{bad}:5:15: apply.windows.timeZone: 'Mars/Base' is not an IANA time zone" in msg
    assert f"{bad}:7:16: apply.windows.allow[0].cron: '61 1 * * *' is not a valid cron expression" in msg
    assert f"{bad}:7:40: apply.windows.allow[0].duration: '4 hours' is not a duration" in msg
    assert f"{bad}:9:9: apply.windows.deny[0]: to (2027-01-05) is before from (2027-01-25)" in msg
    assert f"{bad}:10:9: apply.windows.deny[1]: a freeze needs" in msg
    assert f"{bad}:12:13: notify[0].urlEnv: is a URL" in msg
    assert "T0KEN" not in msg  # the secret is never echoed


def test_a_pull_request_that_changes_windows_or_notify_says_so(tmp_path: Path) -> None:
    from reconciler.config import review_changes

    base = load_config(_config(tmp_path, "notify:\n  - {urlEnv: HOOK}\n"))
    (tmp_path / "head").mkdir()
    head = load_config(
        _config(
            tmp_path / "head",
            "notify:\n  - {urlEnv: OTHER, on: [failed]}\napply:\n  windows:\n    allow:\n"
            '      - {cron: "0 1 * * *", duration: 4h}\n',
        )
    )
    changes = review_changes(base, head)
    notified = next(c for c in changes if c.startswith("who is notified: "))
    assert 'notify[0].urlEnv "HOOK" -> "OTHER"' in notified
    windows = next(c for c in changes if c.startswith("what apply does: "))
    assert 'apply.windows.allow[0].cron unset -> "0 1 * * *"' in windows
    assert review_changes(base, base) == []
