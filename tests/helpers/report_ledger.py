"""A ledger with a history worth a report: three days, two pipelines, a pause and its
resume, a split request, a failure, an in-doubt intent and a pipeline left paused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler import ledger as L

ACTOR = {"user": "ci", "gitCommit": "0123456789abcdef0123", "runUrl": "https://ci.example/runs/41"}


def cells(manifest: str, pipe: str, stage: str, assets: list[str], points: list[str]) -> dict[str, Any]:
    return {
        "manifest": manifest,
        "orgId": "o1",
        "pipelineId": pipe,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
    }


def history_ledger(path: Path) -> Path:
    path.touch()
    with L.LedgerWriter(L.read(path)) as w:
        at = "2026-11-27T10:00:0{}.000Z"
        w.append(
            "pause", {"orgId": "o1", "pipelineId": "p1", "executionMode": 1, "kafkaRate": 10}, at=at.format(0)
        )
        i = w.append(
            "intent",
            {**cells("wind-fix", "p1", "s1", ["0033Tiui", "a2"], ["x", "y"]), "actor": ACTOR},
            at=at.format(1),
        )
        w.append_delete(i, {"actor": ACTOR, "snapshot": {"items": 3, "sha256": "0" * 64}}, at=at.format(2))
        w.append("resume", {"orgId": "o1", "pipelineId": "p1"}, at="2026-11-27T10:03:30.000Z")
        # a day later, on another pipeline paused by a person: a split request (two halves)
        j = w.append(
            "intent",
            {**cells("solar-reset", "p2", "c1", ["b1"], ["x", "y", "z", "w"]), "actor": ACTOR},
            at="2026-11-28T09:00:00.000Z",
        )
        w.append(
            "delete",
            {**cells("solar-reset", "p2", "c1", ["b1"], ["x", "y"]), "actor": ACTOR},
            at="2026-11-28T09:00:01.000Z",
        )
        w.append(
            "delete",
            {**cells("solar-reset", "p2", "c1", ["b1"], ["z", "w"]), "actor": ACTOR},
            at="2026-11-28T09:00:02.000Z",
        )
        assert j.seq
        # two days later: a refusal, a lost answer, and a pause never resumed
        w.append(
            "pause",
            {"orgId": "o1", "pipelineId": "p1", "executionMode": 1, "kafkaRate": 10},
            at="2026-11-30T08:00:00.000Z",
        )
        k = w.append(
            "intent",
            {**cells("wind-fix-2", "p1", "bad", ["a9"], ["x"]), "actor": ACTOR},
            at="2026-11-30T08:00:01.000Z",
        )
        w.append_failed(
            k,
            code=61107,
            message="Not supported Stage Type <b>",
            fields={"actor": ACTOR},
            at="2026-11-30T08:00:02.000Z",
        )
        w.append(
            "intent",
            {**cells("wind-fix-2", "p1", "s1", ["0033Tiui"], ["x", "y", "z"]), "actor": ACTOR},
            at="2026-11-30T08:00:03.000Z",
        )
        m = w.append(
            "intent",
            {**cells("wind-fix-2", "p1", "s2", ["a5", "a6"], ["x"]), "actor": ACTOR},
            at="2026-11-30T08:00:04.000Z",
        )
        w.append_delete(m, {"actor": ACTOR}, at="2026-11-30T08:00:05.000Z")
    return path


# cells cleared: wind-fix 4 (day 1, p1), solar-reset 2 + 2 (day 2, p2), wind-fix-2 2 (day 4, p1)
EXPECTED = {"total": 10, "p1": 6, "p2": 4, "in_doubt": 3, "failed": 1, "left_paused": ["p1"]}
