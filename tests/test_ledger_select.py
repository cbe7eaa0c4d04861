"""`ledger.select`: validated filters for `ledger show`; times compared as times."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler import ledger as L
from reconciler.errors import ReconcilerError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
CELLS = {"orgId": "o", "stageInstanceName": "s", "assetIds": ["a"], "pointIds": ["p"]}


@pytest.fixture
def led(tmp_path: Path) -> L.Ledger:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", {**CELLS, "manifest": "a", "pipelineId": "p1"}, at="2026-10-31T23:59:59.999Z")
        w.append("delete", {**CELLS, "manifest": "a", "pipelineId": "p1"}, at="2026-11-01T00:00:00.000Z")
        w.append("pause", {"orgId": "o", "pipelineId": "p2"}, at="2026-11-27T12:00:00.000Z")
        w.append("delete", {**CELLS, "manifest": "b", "pipelineId": "p2"}, at="2026-11-28T11:30:00.000Z")
    return L.read(path)


def seqs(records: list[L.Record]) -> list[int]:
    return [r.seq for r in records]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-11-01", [2, 3, 4]),
        ("2026-11-01T00:00:00Z", [2, 3, 4]),
        ("2026-11-01T00:00:00.001Z", [3, 4]),
        ("2026-11-01T01:00:00+01:00", [2, 3, 4]),  # the same instant as midnight UTC
        ("2026-11-01T00:00", [2, 3, 4]),  # no offset: UTC
        ("2026-10-31 23:59:59.999", [1, 2, 3, 4]),
        ("30m", [4]),
        ("12h", [4]),
        ("1d", [3, 4]),
        ("2w", [3, 4]),
        ("4w", [1, 2, 3, 4]),
    ],
)
def test_since_accepts_dates_datetimes_and_durations(led: L.Ledger, since: str, expected: list[int]) -> None:
    assert seqs(L.select(led, since=since, now=NOW)) == expected


@pytest.mark.parametrize(
    "since", ["yesterday", "2026-13-45", "2026-11-31", "7 days", "7y", "", "2026-11-01T25:00"]
)
def test_since_refuses_anything_else_saying_what_is_accepted(led: L.Ledger, since: str) -> None:
    with pytest.raises(
        ReconcilerError, match=r"is not a time; use a date \(2026-11-01\).*\(30m, 12h, 7d, 2w\)"
    ):
        L.select(led, since=since, now=NOW)


def test_kinds_must_be_known_with_a_suggestion(led: L.Ledger) -> None:
    assert seqs(L.select(led, kinds=["delete", "pause"])) == [2, 3, 4]
    with pytest.raises(ReconcilerError, match=r"unknown record kind 'deleted' \(did you mean 'delete'\?\)"):
        L.select(led, kinds=["deleted"])
    with pytest.raises(ReconcilerError, match="known kinds: intent, delete, failed, pause, start, resume"):
        L.select(led, kinds=["zzz"])


def test_manifest_and_pipeline_filters_combine(led: L.Ledger) -> None:
    assert seqs(L.select(led, manifest="a")) == [1, 2]
    assert seqs(L.select(led, pipeline="p2")) == [3, 4]
    assert seqs(L.select(led, pipeline="p2", kinds=["delete"], since="2026-11-28", now=NOW)) == [4]
    with pytest.raises(ReconcilerError, match=r"'nope': no record .* names this manifest") as raised:
        L.select(led, manifest="nope")  # issue 20: not "0 records"
    from reconciler.settings import advice

    assert advice(raised.value).startswith("--manifest 'nope': no record")  # the CLI names the filter
