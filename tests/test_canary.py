"""The canary (issue 25 item 4; DESIGN "Gentle on production", invariant 16): each stage's
first request is read, sent alone and read again, and a gateway that answered true and
kept the state, or cleared cells it was not asked to, stops the whole run. The real CLI
and `apply` in-process, against the emulator over loopback, its lying faults included."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from enos_bench import Bench, bench_factory, manifest, pipe
from helpers import HANG, gateway_env, interrupt_main, manifest_yaml, pipeline, run_cli, world_for, write
from test_apply_faults import Notes

from reconciler import ledger as L
from reconciler.apply.canary import CLEARED_OTHERS, KEPT
from reconciler.emulator import FAULT_KINDS, LIE_KINDS, Faults

HEAD = "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\n"
PAUSING = HEAD + "apply:\n  pausePipelines: true\n"
WHAT = {"kept": KEPT, "cleared_others": CLEARED_OTHERS}


def business(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stage-state calls (reads and deletes), in the order the gateway received them."""
    return [e for e in log if e["route"] in ("get", "delete")]


def cells_of(e: dict[str, Any]) -> tuple[str, str, str, str]:
    b = e["body"]
    return (b["pipelineId"], b["stageInstanceName"], b["assetIds"], b["pointIds"])


def reads_by_stage(log: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """Per (pipeline, stage), the assets each Get Stage State read asked for, in order."""
    out: dict[tuple[str, str], list[str]] = {}
    for e in log:
        if e["route"] == "get":
            out.setdefault((e["body"]["pipelineId"], e["body"]["stageInstanceName"]), []).append(
                e["body"]["assetIds"]
            )
    return out


def a_fleet(repo: Path, config: str = PAUSING) -> None:
    """Two RUNNING pipelines: p1 with three requests to s1 and two to s2, p2 with two to s1
    (one asset per request: `--max-assets 1`)."""
    write(repo / "reconcile.yaml", config)
    write(
        repo / "manifests/m1.yaml",
        manifest_yaml("m1", pipeline="p1", stages=["s1"], assets=["a1", "a2", "a3"]),
    )
    write(repo / "manifests/m2.yaml", manifest_yaml("m2", pipeline="p1", stages=["s2"], assets=["b1", "b2"]))
    write(repo / "manifests/m3.yaml", manifest_yaml("m3", pipeline="p2", stages=["s1"], assets=["c1", "c2"]))


def fleet_world() -> dict[str, Any]:
    return world_for([pipeline("p1", status="RUNNING"), pipeline("p2", status="RUNNING")])


APPLY = ["apply", "--auto-approve", "--max-assets", "1"]


def records(repo: Path) -> list[L.Record]:
    return list(L.read(repo / "applied-ledger.jsonl").records)


# --- an honest gateway --------------------------------------------------------------


def test_an_honest_gateway_gets_one_canary_per_stage_and_the_run_completes(
    repo: Path, make_emulator: Any
) -> None:
    a_fleet(repo)
    em = make_emulator(fleet_world())
    res = run_cli(APPLY, repo, gateway_env(em))
    assert res.code == 0, res.all
    reads = {stage: sorted(assets) for stage, assets in reads_by_stage(em.world.log).items()}
    # Each stage: its first request's cells and the next request's, before and after.
    assert reads == {
        ("p2", "s1"): ["c1", "c1", "c2", "c2"],
        ("p1", "s1"): ["a1", "a1", "a2", "a2"],
        ("p1", "s2"): ["b1", "b1", "b2", "b2"],
    }
    calls = business(em.world.log)
    for first in ("c1", "a1", "b1"):  # no other delete from the canary's until its read-back
        i = next(n for n, e in enumerate(calls) if e["route"] == "delete" and e["body"]["assetIds"] == first)
        stage = cells_of(calls[i])[:2]
        back = [n for n, e in enumerate(calls) if n > i and e["route"] == "get" and cells_of(e)[:2] == stage]
        assert len(back) == 2 and [e for e in calls[i + 1 : back[-1]] if e["route"] == "delete"] == []
    assert len([e for e in calls if e["route"] == "delete"]) == 7
    assert {em.world.status(p) for p in ("p1", "p2")} == {"RUNNING"}
    assert run_cli(["ledger", "verify"], repo).code == 0
    after = run_cli(["plan", "--max-assets", "1", "--detailed-exitcode"], repo, gateway_env(em))
    assert after.code == 0, after.all  # nothing pending


def test_a_stage_with_a_single_request_reads_only_its_own_cells(repo: Path, make_emulator: Any) -> None:
    write(repo / "reconcile.yaml", HEAD)
    write(repo / "manifests/m.yaml", manifest_yaml("m", pipeline="p1", stages=["s1"], assets=["a1", "a2"]))
    em = make_emulator(world_for([pipeline("p1")]))
    res = run_cli(["apply", "--auto-approve", "--summary", "s.json"], repo, gateway_env(em))  # one request
    assert res.code == 0, res.all
    # the summary says which stages were checked only for "kept" (no next request to read)
    assert json.loads((repo / "s.json").read_text())["canaryKeptOnly"] == ["p1/s1"]
    assert [(e["route"], cells_of(e)) for e in business(em.world.log)] == [
        ("get", ("p1", "s1", "a1,a2", "pt1")),
        ("delete", ("p1", "s1", "a1,a2", "pt1")),
        ("get", ("p1", "s1", "a1,a2", "pt1")),
    ]


@pytest.mark.parametrize("off", ["flag", "reconcile.yaml"])
def test_the_canary_turned_off_reads_nothing(repo: Path, make_emulator: Any, off: str) -> None:
    a_fleet(repo, PAUSING + ("  rollout: {canary: false}\n" if off == "reconcile.yaml" else ""))
    em = make_emulator(fleet_world())
    res = run_cli(
        APPLY + ["--summary", "s.md"] + (["--no-canary"] if off == "flag" else []), repo, gateway_env(em)
    )
    assert res.code == 0, res.all
    assert "canary off" in res.all  # the console, and the summary, say it was off
    assert "Canary: off" in (repo / "s.md").read_text()
    assert [e for e in em.world.log if e["route"] == "get"] == []
    assert len([e for e in em.world.log if e["route"] == "delete"]) == 7


def test_the_snapshot_s_read_is_the_canary_s_first_read(repo: Path, make_emulator: Any) -> None:
    write(repo / "reconcile.yaml", HEAD)
    write(repo / "manifests/m.yaml", manifest_yaml("m", pipeline="p1", stages=["s1"], assets=["a1", "a2"]))
    em = make_emulator(world_for([pipeline("p1")]))
    res = run_cli([*APPLY, "--snapshot", "evidence.jsonl"], repo, gateway_env(em))
    assert res.code == 0, res.all
    calls = [(e["route"], e["body"]["assetIds"]) for e in business(em.world.log)]
    first, second = calls.index(("delete", "a1")), calls.index(("delete", "a2"))
    # the canary's first read of a1 is the snapshot's: a1 is read once before its delete, and
    # once after (the read-back); a2 before and after the canary, then for its own snapshot
    assert sorted(calls[:first]) == [("get", "a1"), ("get", "a2")]
    assert sorted(calls[first + 1 : second]) == [("get", "a1"), ("get", "a2"), ("get", "a2")]
    assert calls[second - 1] == ("get", "a2") and len(calls) == second + 1
    kept = [json.loads(line) for line in (repo / "evidence.jsonl").read_text().splitlines()]
    assert [row["item"]["assetId"] for row in kept] == ["a1", "a2"]
    deletes = [r for r in records(repo) if r.kind == "delete"]
    assert len(deletes) == 2 and all(r.data.get("snapshot") for r in deletes)


# --- a lying gateway stops the whole run (invariant 16) ------------------------------


@pytest.mark.parametrize("lie", LIE_KINDS)
def test_a_lying_gateway_stops_the_whole_run(repo: Path, make_emulator: Any, lie: str) -> None:
    a_fleet(repo)
    em = make_emulator(fleet_world(), Faults(rate=1.0, kinds=(lie,)))
    res = run_cli([*APPLY, "--summary", "s.json", "--summary", "s.md"], repo, gateway_env(em))
    assert res.code == 1, res.all
    # Both pipelines are paused (maxPaused 2) and each stage has a canary reading, but the
    # first canary's delete is the only delete of the run: it met the lie, nothing followed.
    deletes = [cells_of(e) for e in em.world.log if e["route"] == "delete"]
    assert len(deletes) == 1, deletes
    pid, stage, asset, _ = deletes[0]
    assert f"stage o1/{pid}/{stage}" in res.err and WHAT[lie] in res.err, res.err
    assert {em.world.status(p) for p in ("p1", "p2")} == {"RUNNING"}
    operated = [(e["query"]["action"], e["path"][-2:]) for e in em.world.log if e["route"] == "operate"]
    assert ("pause", pid) in operated  # every pipeline paused is started again, once
    assert all(operated.count(("start", p)) == 1 for what, p in operated if what == "pause")
    # what the canary's request comes to: kept state is pending again (`failed`); cells
    # that read back empty were cleared (`delete`): a re-send would clear new state
    canary = [r for r in records(repo) if r.kind in ("delete", "failed")]
    assert [r.kind for r in canary] == (["failed"] if lie == "kept" else ["delete"])
    assert run_cli(["ledger", "verify"], repo).code == 0
    plan = run_cli(["plan", "--max-assets", "1", "--format", "json"], repo, gateway_env(em))
    pending = {
        (a["pipelineId"], a["stageInstanceName"], a["assetIds"][0]) for a in json.loads(plan.out)["actions"]
    }
    every = {
        ("p2", "s1", "c1"),
        ("p2", "s1", "c2"),
        ("p1", "s1", "a1"),
        ("p1", "s1", "a2"),
        ("p1", "s1", "a3"),
    }
    every |= {("p1", "s2", "b1"), ("p1", "s2", "b2")}
    assert pending == (every if lie == "kept" else every - {(pid, stage, asset)})
    summary = json.loads((repo / "s.json").read_text())
    assert summary["outcome"] == "incomplete" and WHAT[lie] in summary["canary"]
    assert f"o1/{pid}/{stage}" in summary["canary"], summary
    assert summary["requests"]["notSent"] == 6, (summary["requests"], res.all)
    assert WHAT[lie] in (repo / "s.md").read_text()


def test_a_pipeline_paused_as_the_canary_lies_counts_its_requests_as_not_sent(
    bench: Callable[..., Bench],
) -> None:
    """p2's canary lies while p1's pause call is still unanswered (held until the CANARY
    note): p1 is sent nothing and started again, and its 5 requests count as not sent.
    They were once counted nowhere: the summary's `notSent` said 1 where the console said
    6, at random under load."""
    b = bench(
        [pipe("p1"), pipe("p2")],
        [
            manifest("m1", "p1", assets=3),
            manifest("m2", "p1", ("s2",), assets=2),
            manifest("m3", "p2", assets=2),
        ],
    )
    b.world.faults = Faults(rate=1.0, kinds=("kept",))

    def p1_pause(e: dict[str, Any]) -> bool:
        return bool(e["route"] == "operate" and e["query"]["action"] == "pause" and e["path"].endswith("/p1"))

    p1_paused = b.world.on_request(p1_pause, hold=True)
    # p1's pause begins once p2's is done, as p2's canary goes out: under load the canary
    # could meet the lie before p1's pause call was sent, and p1 would rightly never be
    # paused. So the canary's delete waits until p1's pause call has arrived.
    p2_canary = b.world.on_request(
        lambda e: e["route"] == "delete" and e["body"]["pipelineId"] == "p2", hold=True
    )

    def release_the_canary_once_p1_is_pausing() -> None:
        try:
            b.world.wait_for(p1_pause, timeout=30)
        finally:
            p2_canary.release()

    class ReleaseAtTheLie(Notes):
        def note(self, message: str) -> None:
            super().note(message)
            if message.startswith("CANARY"):  # the verdict, in the run's thread: it stops next
                p1_paused.release()

    waiter = threading.Thread(target=release_the_canary_once_p1_is_pausing, daemon=True)
    waiter.start()
    try:
        result, notes = b.apply(ReleaseAtTheLie(), pause_pipelines=True)
    finally:
        p1_paused.release()
        p2_canary.release()
    assert result.canary is not None and KEPT in result.canary
    assert len(b.log("delete")) == 1
    assert [e["path"][-2:] for e in b.log("operate", "pause")] == ["p2", "p1"]
    assert {b.world.status(p) for p in ("p1", "p2")} == {"RUNNING"}  # both started again
    assert len(result.failed) == 1  # the canary: its state kept, pending again
    assert len(result.not_sent) == 6, (result.not_sent, notes.notes)
    assert not result.deleted and not result.in_doubt


def test_a_bad_canary_setting_is_refused_before_any_call(repo: Path, make_emulator: Any) -> None:
    a_fleet(repo, PAUSING + "  rollout: {canary: maybe}\n")
    em = make_emulator(fleet_world())
    res = run_cli(APPLY, repo, gateway_env(em))
    assert res.code == 1 and "reconcile.yaml:6:21: apply.rollout.canary: expected true or false" in res.err
    assert em.world.log == []


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    yield from bench_factory(tmp_path)


def test_a_lie_after_an_honest_stage_stops_every_stage_of_the_run(bench: Callable[..., Bench]) -> None:
    """p1's canary agrees and its requests go out; p2's canary meets a gateway that kept the
    state: no request is sent after it, to p2 or to p1, and both run again."""
    b = bench([pipe("p1"), pipe("p2")], [manifest("m1", "p1", assets=3), manifest("m2", "p2", assets=4)])

    def keep(w: Any, e: dict[str, Any]) -> None:  # p2's first delete answers true, clears nothing
        w.pipelines["p2"].deleted["s1"].pop()

    b.world.on_request(lambda e: e["route"] == "delete" and e["body"]["pipelineId"] == "p2", after=keep)
    result, notes = b.apply(pause_pipelines=True, max_paused=2, concurrency=2)
    assert result.canary is not None and result.canary.startswith("stage o/p2/s1: " + KEPT)
    deletes = [e for e in b.world.log if e["route"] == "delete"]
    lying = next(i for i, e in enumerate(deletes) if e["body"]["pipelineId"] == "p2")
    assert lying == len(deletes) - 1  # the canary's was the last delete of the run
    assert deletes[0]["body"]["pipelineId"] == "p1"
    assert {b.world.status(p) for p in ("p1", "p2")} == {"RUNNING"}
    assert result.in_doubt == [] and not result.ok
    assert any(n.startswith("CANARY: stage o/p2/s1") for n in notes.notes)
    left = {(a.pipeline_id, a.asset_ids) for a in b.plan().actions}
    assert len(left) == 7 - (len(deletes) - 1)  # all but p1's cleared requests are pending


# --- what the reviewer and the operator are told --------------------------------------


def two_equal_pipelines(repo: Path, config: str) -> None:
    """p1: four requests to one stage; p2: two requests to each of two stages."""
    write(repo / "reconcile.yaml", config)
    write(repo / "manifests/m1.yaml", manifest_yaml("m1", pipeline="p1", assets=["a1", "a2", "a3", "a4"]))
    write(
        repo / "manifests/m2.yaml",
        manifest_yaml("m2", pipeline="p2", stages=["s1", "s2"], assets=["b1", "b2"]),
    )


@pytest.mark.parametrize("canary", [True, False])
def test_the_plan_s_estimate_counts_the_canary_s_reads(repo: Path, make_emulator: Any, canary: bool) -> None:
    """Same requests, same measured latency: the canary's reads are one set per stage, so
    the pipeline with two stages is estimated longer, by the canary alone."""
    two_equal_pipelines(repo, PAUSING + ("" if canary else "  rollout: {canary: false}\n"))
    em = make_emulator(
        world_for([pipeline("p1", status="RUNNING"), pipeline("p2", status="RUNNING")]), Faults(latency_ms=50)
    )
    res = run_cli(["plan", "--refresh", "--max-assets", "1", "--format", "json"], repo, gateway_env(em))
    assert res.code == 0, res.all
    est = {r["pipelineId"]: r["estimatedPauseSeconds"] for r in json.loads(res.out)["rollout"]}
    assert est["p1"] > 0
    if canary:
        assert est["p2"] > est["p1"]
    else:
        assert est["p2"] == est["p1"]


def test_the_emulator_help_lists_every_fault_kind() -> None:
    res = run_cli(["emulator", "--help"], Path.cwd())
    assert res.code == 0
    for kind in FAULT_KINDS + LIE_KINDS:
        assert f"\n    {kind} " in res.out, kind


def test_apply_help_says_what_the_canary_does_and_costs() -> None:
    res = run_cli(["apply", "--help"], Path.cwd())
    text = " ".join(res.out.split())
    assert "--no-canary" in text and "stops the whole run" in text and "four reads per stage" in text


def test_ctrl_c_while_the_canary_is_out_lets_it_finish_and_be_recorded(bench: Callable[..., Bench]) -> None:
    """The canary's request is a request in flight like any other (DESIGN "Apply" 5): a
    Ctrl-C waits for its answer and its read-back, records it, and sends nothing more."""
    b = bench([pipe("p1")], [manifest("m1", "p1", assets=3)])
    held = b.world.on_request("delete", hold=True)
    notes = Notes()

    def press_ctrl_c() -> None:
        try:
            b.world.wait_for(lambda e: e["route"] == "delete", timeout=HANG)
            interrupt_main()
            notes.wait_for("stopping")
        finally:
            held.release()

    helper = threading.Thread(target=press_ctrl_c)
    helper.start()
    result, _ = b.apply(notes, pause_pipelines=True)
    helper.join()
    assert result.interrupted and len(result.deleted) == 1 and result.in_doubt == []
    assert [e["body"]["assetIds"] for e in b.log("delete")] == ["a0000"]  # nothing after it
    assert sorted(e["body"]["assetIds"] for e in b.log("get")) == ["a0000", "a0000", "a0001", "a0001"]
    assert b.kinds("delete") == ["delete"] and b.world.status("p1") == "RUNNING"
    assert len(b.plan().actions) == 2  # the two not sent are pending
