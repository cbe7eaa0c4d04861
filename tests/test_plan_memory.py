"""Plan memory bounded by what it must print: requests share their ID slices, and a big
plan's hash is computed a line at a time (issue 18, item 5)."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from pathlib import Path

import pytest
from helpers import ledger_of, manifest

from reconciler.plan import Options, build_plan, diff
from reconciler.plan import _build as build_mod
from reconciler.plan import file as planfile
from reconciler.plan._build import plan_hash
from reconciler.render.console import Consoles


def test_requests_of_one_group_share_each_slice_of_the_points() -> None:
    ms = [manifest("m", "p", ["s"], [f"a{i}" for i in range(10)], [f"p{i}" for i in range(7)])]
    plan = build_plan(diff(ms, ledger_of([])), Options(max_assets=2, max_points=3))
    assert len(plan.actions) == 5 * 3
    by_points: dict[tuple[str, ...], set[int]] = {}
    for a in plan.actions:
        by_points.setdefault(a.point_ids, set()).add(id(a.point_ids))
    assert len(by_points) == 3 and all(len(ids) == 1 for ids in by_points.values())


def test_a_streamed_plan_hash_is_the_plan_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    ms = [manifest(f"m{i}", "p", ["s", "t"], [f"a{j}" for j in range(9)], ["x", "y"]) for i in range(3)]
    d = diff(ms, ledger_of([]))
    whole = build_plan(d, Options(max_assets=4)).plan_hash
    monkeypatch.setattr(build_mod, "_HASH_LINES_IDS", 0)
    streamed = build_plan(d, Options(max_assets=4))
    assert streamed.plan_hash == whole == plan_hash(streamed.hashed_fields())
    assert "action_parts" not in streamed.__dict__  # no line kept


def test_a_streamed_plan_document_is_the_plan_document(monkeypatch: pytest.MonkeyPatch) -> None:
    ms = [manifest(f"m{i}", "p", ["s"], [f"a{j}" for j in range(9)], ["x", "y"]) for i in range(2)]
    d = diff(ms, ledger_of([]))
    whole = planfile.dumps(build_plan(d, Options(max_assets=4)))
    monkeypatch.setattr(build_mod, "_HASH_LINES_IDS", 0)
    streamed = build_plan(d, Options(max_assets=4))
    assert streamed.streams and "".join(planfile.pieces(streamed)) == whole
    assert "action_parts" not in streamed.__dict__
    assert json.loads(whole)["planHash"] == streamed.plan_hash
    empty = build_plan(diff([], ledger_of([])), Options())
    assert json.loads(planfile.dumps(empty))["actions"] == []


def test_apply_refuses_a_huge_declaration_by_max_cells_before_building_requests(tmp_path: Path) -> None:
    """10^10 declared cells: refused by the counts, in moments and without building them."""
    from helpers import run_cli, write

    ids = tmp_path / "manifests" / "ids"
    ids.mkdir(parents=True)
    (ids / "assets.txt").write_text("".join(f"A{i}\n" for i in range(100_000)))
    (ids / "points.txt").write_text("".join(f"P{i}\n" for i in range(100_000)))
    write(
        tmp_path / "manifests/huge.yaml",
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata: {name: huge}\n"
        "spec: {orgId: o1, pipelineId: p1, stageInstanceNames: [s1], assetIdsFile: ids/assets.txt,"
        " pointIdsFile: ids/points.txt}\n",
    )
    (tmp_path / "applied-ledger.jsonl").write_text("")
    env = {"ENOS_API_GATEWAY": "http://127.0.0.1:9", "ENOS_APP_KEY": "k", "ENOS_APP_SECRET": "s"}
    res = run_cli(["apply", "--auto-approve", "--max-cells", "1000000"], tmp_path, env)
    assert res.code == 1, res.all
    assert "clears 10,000,000,000 cells, more than --max-cells (1,000,000); nothing was sent" in res.err
    assert "huge: 10,000,000,000 cells" in res.err and "Plan:" not in res.out  # no plan was built


@pytest.mark.parametrize("chunk", [1, 40, 1 << 20])
def test_the_action_lines_read_the_same_in_pieces_of_any_size(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    ms = [manifest(f"m{i}", "p", ["s"], [f"a{j}" for j in range(9)], ["x", "y"]) for i in range(3)]
    plan = build_plan(diff(ms, ledger_of([])), Options(max_assets=4))
    whole = planfile.dumps(plan)
    monkeypatch.setattr(planfile, "_CHUNK", chunk)
    pieces = list(planfile.encoded(build_plan(diff(ms, ledger_of([])), Options(max_assets=4))))
    assert b"".join(pieces).decode() == whole
    lines = whole.split("\n")
    start = lines.index('  "actions": [') + 1
    listed = lines[start : start + len(plan.actions)]
    assert [json.loads(line.strip().removesuffix(",")) for line in listed] == [
        a.to_json() for a in plan.actions
    ]
    assert lines[start + len(plan.actions)] == "  ],"


@pytest.mark.parametrize("most", [1, 7, 1 << 20])
def test_a_plan_written_in_parts_is_its_json_however_little_each_write_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, most: int
) -> None:
    """`Consoles.write_parts` hands a piece's parts to one `os.writev`, which may take only
    some bytes (a pipe, a signal): every byte still goes, in order, after the text before."""
    ms = [manifest(f"m{i}", "p", ["s"], [f"a{j}" for j in range(9)], ["x", "y"]) for i in range(3)]
    plan = build_plan(diff(ms, ledger_of([])), Options(max_assets=4))
    writev = os.writev
    calls: list[int] = []

    def takes_some(fd: int, buffers: list[bytes]) -> int:  # the kernel's part, not ours
        calls.append(len(buffers))
        return writev(fd, [b"".join(bytes(b) for b in buffers)[:most]])

    monkeypatch.setattr(os, "writev", takes_some)
    out = tmp_path / "plan.json"
    with out.open("w") as fh:
        c = Consoles(fh, io.StringIO())
        c.write("before\n")
        for parts in planfile.encoded_parts(plan):
            c.write_parts(parts)
        c.write("after\n")
    assert out.read_text() == "before\n" + planfile.dumps(plan) + "after\n"
    assert max(calls) > 1  # the action lines went as parts, not joined


@pytest.mark.parametrize("pipelines", [["p0", "p1", "p2", "p3"], ["p", "p", "p", "p"]], ids=["own", "shared"])
def test_a_plans_kept_action_lines_hold_about_their_size(pipelines: list[str]) -> None:
    """The parts a plan keeps for its hash and then its JSON are as big as their bytes: an
    orjson result keeps the buffer orjson reserved (4 KB and more, for 40 bytes of JSON)."""
    ms = [
        manifest(f"m{i}", p, ["s"], [f"a{j:04d}" for j in range(500)], ["x", "y"])
        for i, p in enumerate(pipelines)
    ]
    plan = build_plan(diff(ms, ledger_of([])), Options(max_assets=5))
    tracemalloc.start()
    try:
        parts = plan.action_parts
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = {id(p): p for line in parts for p in line}.values()
    assert held < 4 * sum(map(len, kept))  # bytes objects and tuples: a few dozen bytes each more
