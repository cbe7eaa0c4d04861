"""Request sizes under both readings of the limit (issue 17 item 2; DESIGN "EnOS contract
decisions", Request size): the en page limits point IDs per request to 100,000, the zh
page assets x points. Default request shapes satisfy both; the emulator enforces either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, ledger_of, pipeline, run_cli, world_for, write
from helpers.emulators import running
from helpers.examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, World
from reconciler.enos import Credentials, EnosClient, Session, StateRequest
from reconciler.errors import TooManyPointsError
from reconciler.manifests import Manifest
from reconciler.plan import Options, build_plan, diff
from reconciler.plan._build import MAX_REQUEST_CELLS
from reconciler.plan.values import Action


def actions_for(assets: int, points: int, options: Options = Options()) -> tuple[Action, ...]:
    m = Manifest(
        "m",
        "o",
        "p",
        ("s",),
        tuple(f"a{i}" for i in range(assets)),
        tuple(f"x{i}" for i in range(points)),
        "m.yaml",
        1,
    )
    return build_plan(diff([m], ledger_of([])), options).actions


def test_2000_assets_by_300_points_take_6_requests_within_both_readings() -> None:
    actions = actions_for(2000, 300)
    assert len(actions) == 6  # 600,000 cells: the fewest that fit 100,000 cells each
    assert all(a.cells <= MAX_REQUEST_CELLS and len(a.point_ids) <= 100_000 for a in actions)
    assert sum(a.cells for a in actions) == 600_000


@settings(max_examples=examples(60), deadline=None)
@given(
    st.integers(1, 2500),
    st.integers(1, 400),
    st.integers(1, 500),
    st.integers(1, 3000),
)
def test_every_request_satisfies_both_readings_and_the_flags(
    assets: int, points: int, max_points: int, max_assets: int
) -> None:
    options = Options(max_points=max_points, max_assets=max_assets)
    actions = actions_for(assets, points, options)
    # Exact cover, once: every asset is sent every point exactly once (checked by asset: a
    # set of the cells themselves would be up to a million tuples per example).
    sent: dict[str, list[str]] = {}
    for act in actions:
        for a in act.asset_ids:
            sent.setdefault(a, []).extend(act.point_ids)
    assert sum(act.cells for act in actions) == assets * points
    assert sorted(sent) == sorted(f"a{i}" for i in range(assets))
    every_point = {f"x{i}" for i in range(points)}
    assert all(len(ps) == points and set(ps) == every_point for ps in sent.values())
    for act in actions:
        assert act.cells <= MAX_REQUEST_CELLS
        assert len(act.point_ids) <= max_points and len(act.asset_ids) <= max_assets
    if min(assets, max_assets) * min(points, max_points) <= MAX_REQUEST_CELLS:  # the flags' shape is kept
        assert len(actions) == -(-assets // max_assets) * -(-points // max_points)


def emulated(limit: str, max_ids: int) -> World:
    return World(world_for([pipeline("p1")], requestLimit=limit, maxPoints=max_ids))


@pytest.mark.parametrize("limit", ["points", "cells"])
def test_the_emulator_enforces_either_reading(limit: str) -> None:
    world = emulated(limit, 10)
    with (
        running(world) as em,
        EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c,
    ):
        c.delete_stage_state(
            StateRequest("o1", "p1", "s1", ["a1", "a2"], ["x", "y", "z"])
        )  # 6 cells: both pass
        with pytest.raises(TooManyPointsError):
            c.delete_stage_state(
                StateRequest("o1", "p1", "s1", ["a1"], [f"x{i}" for i in range(11)])
            )  # 11 points
        twelve_cells = (["a1", "a2", "a3", "a4"], ["x", "y", "z"])
        if limit == "cells":
            with pytest.raises(TooManyPointsError) as caught:
                c.delete_stage_state(StateRequest("o1", "p1", "s1", *twelve_cells))
            assert caught.value.code == 61105
        else:
            c.delete_stage_state(StateRequest("o1", "p1", "s1", *twelve_cells))
    assert [e["code"] for e in world.log] == [0, 61105, 61105 if limit == "cells" else 0]


@pytest.mark.slow(4)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_cli_2000_assets_by_300_points_against_the_cells_reading(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1")], requestLimit="cells"))
    write(repo / "manifests/ids/assets.txt", "\n".join(f"asset{i:04d}" for i in range(2000)) + "\n")
    write(repo / "manifests/ids/points.txt", "\n".join(f"pt{i:03d}" for i in range(300)) + "\n")
    write(
        repo / "manifests/big.yaml",
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata: {name: big}\n"
        "spec:\n  orgId: o1\n  pipelineId: p1\n  stageInstanceNames: [s1]\n"
        "  assetIdsFile: ids/assets.txt\n  pointIdsFile: ids/points.txt\n",
    )
    plan = json.loads(run_cli(["plan", "--format", "json"], repo).out)
    assert plan["summary"]["requests"] == 6 and plan["summary"]["pendingCells"] == 600_000
    assert all(a["cells"] <= 100_000 for a in plan["actions"])
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 0, res.all
    deletes = [e for e in em.world.log if e["route"] == "delete"]
    assert len(deletes) == 6 and {e["code"] for e in deletes} == {0}  # no 61105, no split
    assert "600,000 cells cleared in 6 requests" in res.out
