"""`plan --refresh` reads what the pending cells hold now (Get Stage State, read-only
credentials, one read per request), in every format; a failing read degrades to a warning."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

GOLDEN = Path(__file__).parent / "golden"
READONLY = {"appKey": "readonly-key", "appSecret": "readonly-secret"}


def world() -> dict[str, Any]:
    """p1's s1 holds state for a1 and a2 only (x: seeded value); s2 holds none."""
    p = {
        **pipeline("p1"),
        "fillState": False,
        "state": [
            {"stage": "s1", "assets": ["a1", "a2"], "points": ["x"], "value": "41.5", "time": 1764000000000},
            {"stage": "s1", "assets": ["a1"], "points": ["y"]},
        ],
    }
    seed = world_for([p])
    seed["apps"].append(READONLY)
    return seed


def env(em: Any) -> dict[str, str]:
    return {
        **gateway_env(em),
        "ENOS_READONLY_APP_KEY": READONLY["appKey"],
        "ENOS_READONLY_APP_SECRET": READONLY["appSecret"],
    }


@pytest.fixture
def scene(repo: Path, make_emulator: Any) -> tuple[Path, Any]:
    em = make_emulator(world())
    write(
        repo / "manifests/a.yaml",
        manifest_yaml("a", stages=["s1", "s2"], assets=["a1", "a2", "a3"], points=["x", "y"]),
    )
    return repo, em


def holding(em: Any, stage: str) -> int:
    p = em.world.pipelines["p1"]
    return sum(p.has_state(stage, a, pt) for a in ("a1", "a2", "a3") for pt in ("x", "y"))


def test_json_counts_per_action_and_in_total(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    res = run_cli(["plan", "--refresh", "--format", "json"], repo, env(em))
    assert res.code == 0, res.all
    plan = json.loads(res.out)
    by_stage = {a["stageInstanceName"]: a["liveStateCells"] for a in plan["actions"]}
    assert by_stage == {"s1": holding(em, "s1"), "s2": 0} and by_stage["s1"] == 3
    assert plan["summary"]["liveStateCells"] == 3 and plan["summary"]["pendingCells"] == 12
    samples = plan["liveStateSamples"]
    assert {(s["assetId"], s["pointId"]) for s in samples} <= {("a1", "x"), ("a2", "x"), ("a1", "y")}
    seeded = next(s for s in samples if (s["assetId"], s["pointId"]) == ("a1", "x"))
    assert seeded["value"] == "41.5" and seeded["time"] == "2025-11-24T16:00:00Z"  # ms read as ms


def test_read_only_credentials_one_read_per_request(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    res = run_cli(["plan", "--refresh", "--max-points", "1", "--format", "json"], repo, env(em))
    assert res.code == 0, res.all
    actions = json.loads(res.out)["actions"]
    gets = [e for e in em.world.log if e["route"] == "get"]
    assert len(gets) == len(actions) == 4  # the same request shapes as the deletes
    assert all(len(e["body"]["pointIds"].split(",")) == 1 for e in gets)
    assert set(em.world.app_tokens) == {READONLY["appKey"]}  # never the production credentials
    assert not [e for e in em.world.log if e["route"] == "delete"]


def test_a_saved_or_printed_plan_with_live_state_still_applies(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    res = run_cli(["plan", "--refresh", "--format", "json"], repo, env(em))
    (repo / "printed.json").write_text(res.out)
    applied = run_cli(["apply", "--auto-approve", "printed.json"], repo, env(em))
    assert applied.code == 0, applied.all  # live fields are not covered by the plan hash


def test_text_and_markdown_say_what_holds_state(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    text = run_cli(["plan", "--refresh"], repo, env(em))
    assert "12 cells to clear; 3 hold state now." in text.out
    assert "s1: a1 / x = 41.5 at 2025-11-24T16:00:00Z" in text.out
    assert "a / p1 / s2: no state in its 6 cells" in text.out
    md = run_cli(["plan", "--refresh", "--format", "markdown"], repo, env(em))
    section = md.out[md.out.index("### Live state") :]
    golden = GOLDEN / "plan-live.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(section)
    assert section == golden.read_text()
    assert "**12 cells to clear; 3 hold state now.**" in section and "<details>" in section


def test_a_failing_read_degrades_to_the_offline_plan(repo: Path, make_emulator: Any) -> None:
    seed = world_for([{**pipeline("p1"), "stages": {"s1": "KafkaProducer"}}])  # Get answers 61107
    em = make_emulator(seed)
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    offline = run_cli(["plan", "--format", "json"], repo)
    res = run_cli(["plan", "--refresh", "--format", "json"], repo, gateway_env(em))
    assert res.code == 0 and "live state not read" in res.err and "61107" in res.err
    plan = json.loads(res.out)
    assert "liveStateCells" not in plan["summary"] and "liveStateCells" not in plan["actions"][0]
    assert plan["actions"] == json.loads(offline.out)["actions"]
    text = run_cli(["plan", "--refresh", "--detailed-exitcode"], repo, gateway_env(em))
    assert text.code == 2 and "Live state" not in text.out  # exit codes of an offline plan


def test_no_pending_work_reads_nothing(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["plan", "--refresh"], repo, gateway_env(em))
    assert res.code == 0 and "Live state" not in res.out
    assert not [e for e in em.world.log if e["route"] == "get"]


def test_in_doubt_cells_are_counted_apart(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    from helpers import cell_fields

    from reconciler import ledger as L

    with L.LedgerWriter(L.read(repo / "applied-ledger.jsonl")) as w:
        w.append("intent", cell_fields("a1", "x", "a"))
        w.append("resume", {"orgId": "o1", "pipelineId": "p1"})
    res = run_cli(["plan", "--refresh", "--format", "json"], repo, env(em))
    plan = json.loads(res.out)
    assert plan["summary"]["inDoubtCells"] == 1 and plan["summary"]["liveStateInDoubtCells"] == 1
    assert plan["summary"]["liveStateCells"] == 2  # a2/x and a1/y: the pending ones
    text = run_cli(["plan", "--refresh"], repo, env(em)).out
    assert "11 cells to clear; 2 hold state now." in text
    assert "In doubt: 1 cell, 1 holds state now: their deletes did not take effect" in text


def test_the_comment_stays_within_githubs_limit(repo: Path, make_emulator: Any) -> None:
    from reconciler.render.plan import GITHUB_COMMENT_LIMIT

    em = make_emulator(world_for([pipeline()]))
    assets = [f"asset-{i:05d}-with-a-long-id" for i in range(6000)]
    write(repo / "manifests/ids.txt", "\n".join(assets) + "\n")
    text = manifest_yaml("big", points=["x", "y"]).replace("assetIds: [a1, a2]", "assetIdsFile: ids.txt")
    write(repo / "manifests/a.yaml", text)
    md = run_cli(["plan", "--refresh", "--format", "markdown"], repo, gateway_env(em))
    assert md.code == 0, md.all
    assert "12,000 cells to clear; 12,000 hold state now" in md.out
    assert GITHUB_COMMENT_LIMIT - 2000 < len(md.out) <= GITHUB_COMMENT_LIMIT  # full, and not over


def test_one_refresh_is_one_gateway_session_and_one_token(scene: tuple[Path, Any]) -> None:
    repo, em = scene
    res = run_cli(["plan", "--refresh", "--format", "json"], repo, env(em))
    assert res.code == 0, res.all
    routes = {e["route"] for e in em.world.log}
    assert {"list", "get"} <= routes  # both reads: the pipelines' statuses and the cells
    assert em.world.token_calls == ["get"]  # one token, shared by both
