"""Get Stage State returns the documented item shapes per operator type (REFERENCE 1.1, 8),
as `{items: [...]}` or as a list, with values and times a state file seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ORG, pipeline, world_for, write

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, EmulatorError, World
from reconciler.enos import Credentials, EnosClient, Session, StateRequest

GENERAL = {"modelId", "modelIdPath", "attr", "assetId", "pointId", "time", "value", "quality"}
STAGES = {
    "gen": "LastRecordAppender",
    "late": "LatePointTagger",
    "win": "WindowAggregator",
    "other": "KafkaProducer",
}


def raw_get(c: EnosClient, stage: str, assets: str = "a", points: str = "x") -> Any:
    body = {"pipelineId": "p1", "stageInstanceName": stage, "assetIds": assets, "pointIds": points}
    return c.call("POST", "/streaming/v2.0/stage-state", {"action": "get", "orgId": ORG}, body)


@pytest.mark.parametrize("shape", ["items", "list"])
def test_item_shapes_per_operator_type(make_emulator: Any, shape: str) -> None:
    p = pipeline(stages=())
    p["stages"] = STAGES
    em = make_emulator(world_for([p], getShape=shape))
    with EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c:
        raw = raw_get(c, "gen", "a,b", "x")
        items = raw["items"] if shape == "items" else raw
        assert isinstance(items, list) and len(items) == 2
        assert set(items[0]) == GENERAL  # no dq without a quality bit
        late = c.get_stage_state(StateRequest(ORG, "p1", "late", ["a"], ["x", "y"]))
        assert [set(i) for i in late] == [{"assetId", "pointId", "time"}] * 2
        win = c.get_stage_state(StateRequest(ORG, "p1", "win", ["a"], ["x"]))
        assert next(iter(win[0])) == "assetId" and win[0]["pointId"] == "x"
        with pytest.raises(Exception, match="61107"):
            c.get_stage_state(StateRequest(ORG, "p1", "other", ["a"], ["x"]))


def test_values_differ_per_cell_and_repeat(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    with EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c:
        first = c.get_stage_state(StateRequest(ORG, "p1", "s1", ["a", "b"], ["x", "y"]))
        again = c.get_stage_state(StateRequest(ORG, "p1", "s1", ["a", "b"], ["x", "y"]))
    assert first == again
    assert len({i["value"] for i in first}) > 1


def test_state_file_seeds_values_and_times(make_emulator: Any, tmp_path: Path) -> None:
    seed = write(
        tmp_path / "world.yaml",
        f"""\
apps: [{{appKey: {DEFAULT_APP_KEY}, appSecret: {DEFAULT_APP_SECRET}}}]
pipelines:
  - pipelineId: p1
    orgId: {ORG}
    status: PAUSED
    stages: {{s: RecordCapturer, t: LatePointTagger}}
    state:
      - {{stage: s, assets: [a, b], points: [x], value: "41.5", time: 1764000000, quality: 1, dq: 7}}
      - {{stage: s, assets: [c], points: [x]}}
      - {{stage: t, assets: [a], points: [x], time: 1764000001000}}
""",
    )
    from reconciler.emulator import RunningEmulator

    em = RunningEmulator(World.from_file(seed)).start()
    try:
        with EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c:
            items = {
                i["assetId"]: i
                for i in c.get_stage_state(StateRequest(ORG, "p1", "s", ["a", "b", "c", "d"], ["x"]))
            }
            late = c.get_stage_state(StateRequest(ORG, "p1", "t", ["a"], ["x"]))
    finally:
        em.stop()
    assert sorted(items) == ["a", "b", "c"]  # d holds no state
    assert items["a"]["value"] == "41.5" and items["a"]["time"] == 1764000000
    assert items["a"]["quality"] == 1 and items["a"]["dq"] == 7
    assert "dq" not in items["c"] and items["c"]["value"] != "41.5"
    assert late == [{"assetId": "a", "pointId": "x", "time": 1764000001000}]


def test_seeded_value_of_wrong_type_is_named(tmp_path: Path) -> None:
    seed = write(
        tmp_path / "w.yaml",
        "pipelines:\n  - pipelineId: p\n    orgId: o\n    state:\n      - {stage: s, assets: [a], points: [x], time: soon}\n",
    )
    with pytest.raises(EmulatorError, match=r"w\.yaml: pipelines\[0\]\.state\[0\]: time: wrong type str"):
        World.from_file(seed)


def test_delete_keeps_to_the_general_types(make_emulator: Any) -> None:
    p = pipeline(stages=())
    p["stages"] = STAGES
    em = make_emulator(world_for([p]))
    with EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c:
        for stage in ("late", "win", "other"):
            with pytest.raises(Exception, match="61107"):
                c.delete_stage_state(StateRequest(ORG, "p1", stage, ["a"], ["x"]))
        c.delete_stage_state(StateRequest(ORG, "p1", "gen", ["a"], ["x"]))
        assert c.get_stage_state(StateRequest(ORG, "p1", "gen", ["a"], ["x"])) == []
