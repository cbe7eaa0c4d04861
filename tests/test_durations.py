"""The one duration formatter (review D-9): each style's shapes, and `spelled` read back
by the parser reconcile.yaml and the flags use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import durations
from reconciler.windows import parse_duration


@pytest.mark.parametrize(
    ("seconds", "compact", "spelled", "words", "rough"),
    [
        (0.25, "0.2s", "0.25s", "0.2s", "1s"),
        (2.0076, "2s", "2.0076s", "2s", "2s"),
        (45, "45s", "45s", "45s", "45s"),
        (90, "1m30s", "1m30s", "90s", "2 min"),
        (125, "2m05s", "2m5s", "2 min 5s", "2 min"),
        (600, "10m00s", "10m", "10 min", "10 min"),
        (5400, "1h30m", "1h30m", "90 min", "90 min"),
        (82800, "23h00m", "23h", "1380 min", "1380 min"),
        (86400 + 61, "24h01m", "1d1m1s", "1441 min 1s", "1441 min"),
    ],
)
def test_each_style(seconds: float, compact: str, spelled: str, words: str, rough: str) -> None:
    assert durations.compact(seconds) == compact
    assert durations.spelled(seconds) == spelled
    assert durations.words(seconds) == words
    assert durations.rough(seconds) == rough


@given(st.integers(min_value=1, max_value=366 * 86400))
def test_spelled_reads_back_as_the_same_duration(seconds: int) -> None:
    assert parse_duration(durations.spelled(seconds)).total_seconds() == seconds
