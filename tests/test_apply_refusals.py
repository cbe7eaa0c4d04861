"""A refusal that holds for a whole key (issue 17 item 3; DESIGN "Apply" step 7): after
the first 61107 nothing more goes to that stage, after 61106 to that pipeline, after an
auth error to that org; what was not sent is pending (`failed`), never in doubt, and the
person watching reads one line per key. Also the stage-name warning before any pause."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from enos_bench import ORG, Bench, bench_factory, manifest, pipe
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler.apply import Outcome
from reconciler.enos.client import PipelineDetails
from reconciler.enos.pipelinejson import stage_names


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    yield from bench_factory(tmp_path)


def outcomes(reporter: Any) -> list[Outcome]:
    return [o for _, o, _ in reporter.advanced]


def sent_to(b: Bench, stage: str | None = None, pipeline: str | None = None, org: str | None = None) -> int:
    return sum(
        1
        for e in b.log("delete")
        if (stage is None or e["body"]["stageInstanceName"] == stage)
        and (pipeline is None or e["body"]["pipelineId"] == pipeline)
        and (org is None or e["query"]["orgId"] == org)
    )


def test_61107_stops_sends_to_the_stage_after_the_first_answer(bench: Callable[..., Bench]) -> None:
    b = bench([pipe(status="PAUSED")], [manifest("m", stages=("bad", "s1"), assets=40)])
    result, reporter = b.apply(concurrency=1)
    assert sent_to(b, "bad") == 1 and sent_to(b, "s1") == 40  # the other stage is not held
    (refusal,) = result.refusals
    assert (refusal.scope, refusal.where, refusal.code, refusal.requests) == ("stage", "o/p1/bad", 61107, 40)
    bad = [(o, m) for a, o, m in reporter.advanced if a.stage == "bad"]
    assert [o for o, _ in bad] == [Outcome.FAILED] + [Outcome.HELD] * 39
    assert "nothing more is sent to stage o/p1/bad in this run" in bad[0][1]
    assert len(result.failed) == 40 and result.in_doubt == [] and len(result.deleted) == 40
    # Only what was sent is on record (no write-ahead): one intent, one failed.
    assert b.kinds("intent").count("intent") == 41 and b.kinds("failed") == ["failed"]
    plan = b.plan()
    assert plan.summary.in_doubt_cells == 0 and plan.summary.pending_cells == 40  # pending again


def test_with_write_ahead_every_unsent_request_is_closed_failed_never_in_doubt(
    bench: Callable[..., Bench],
) -> None:
    b = bench([pipe(status="PAUSED")], [manifest("m", stages=("bad",), assets=40)])
    _result, _ = b.apply(concurrency=1, write_ahead=True)
    assert sent_to(b, "bad") == 1
    assert b.kinds("intent", "failed").count("intent") == 40 and b.kinds("failed").count("failed") == 40
    plan = b.plan()
    assert plan.summary.in_doubt_cells == 0 and plan.summary.pending_cells == 40


def test_requests_in_flight_refused_the_same_way_are_told_once(bench: Callable[..., Bench]) -> None:
    b = bench([pipe(status="PAUSED")], [manifest("m", stages=("bad",), assets=12)])
    held = b.world.on_request("delete", times=4, hold=True)

    def release_when_four_arrived() -> None:
        try:
            b.world.wait_for(lambda e: sent_to(b) >= 4)
        finally:
            held.release()

    helper = threading.Thread(target=release_when_four_arrived)
    helper.start()
    result, reporter = b.apply(concurrency=4, canary=False)  # a canary would send the first alone
    helper.join()
    assert sent_to(b, "bad") == 4  # the four in flight, then nothing more
    assert outcomes(reporter).count(Outcome.FAILED) == 1 and outcomes(reporter).count(Outcome.HELD) == 11
    assert result.refusals[0].requests == 12 and len(result.failed) == 12


@pytest.mark.parametrize("canary", [False, True])
def test_61106_stops_sends_to_the_pipeline(bench: Callable[..., Bench], canary: bool) -> None:
    b = bench(
        [pipe(status="PAUSED")],
        [manifest("ghost", "p404", stages=("s1", "s2"), assets=5), manifest("m", "p1", assets=5)],
    )
    result, _ = b.apply(concurrency=1, skip_pause_check=True, canary=canary)
    # the canary's first read is refused as the delete would be: the pipeline is held as well
    assert sent_to(b, pipeline="p404") == (0 if canary else 1) and sent_to(b, pipeline="p1") == 5
    assert result.canary is None and len(result.deleted) == 5  # the run went on with the others
    (refusal,) = result.refusals
    assert (refusal.scope, refusal.where, refusal.requests) == ("pipeline", "o/p404", 10)


def test_an_auth_error_stops_sends_to_the_org(bench: Callable[..., Bench]) -> None:
    b = bench(
        [pipe(status="PAUSED"), pipe("q1", status="PAUSED", org="o2")],
        [manifest("m", "p1", assets=6), manifest("n", "q1", assets=6, org="o2")],
    )
    b.world.on_request(
        lambda e: e["route"] == "delete" and e["query"]["orgId"] == ORG, times=None, expire_token="http401"
    )
    result, reporter = b.apply(concurrency=1)
    assert sent_to(b, org=ORG) == 3  # one request: the first try and two fresh tokens
    cleared = [e for e in b.log("delete") if e["query"]["orgId"] == "o2" and e["code"] == 0]
    assert len(cleared) == 6 and len(result.deleted) == 6  # the other org is not held
    (refusal,) = result.refusals
    assert (refusal.scope, refusal.where, refusal.requests) == ("org", "o", 6)
    assert outcomes(reporter).count(Outcome.FAILED) == 1


# --- the stage-name warning ----------------------------------------------------------------


def test_a_stage_the_pipeline_lacks_is_warned_about_before_anything_is_paused(
    bench: Callable[..., Bench],
) -> None:
    b = bench([pipe()], [manifest("m", stages=("s1", "s9"))])
    _, reporter = b.apply(pause_pipelines=True)
    warning = next(i for i, n in enumerate(reporter.notes) if n.startswith("warning: "))
    assert "pipeline o/p1 (p1) has no stage named 's9'" in reporter.notes[warning]
    assert "declared by m" in reporter.notes[warning] and "'s1'" not in reporter.notes[warning]
    assert warning < reporter.notes.index("pausing p1")


def test_the_stage_names_are_read_while_list_pipelines_is_asked(bench: Callable[..., Bench]) -> None:
    """List Pipelines is held until a Get Pipeline Details has arrived: the run goes on (and
    warns) only because the two reads are out at once, one round trip before the first send."""
    b = bench([pipe("p1"), pipe("p2")], [manifest("m", "p1", stages=("s1", "s9")), manifest("n", "p2")])
    listing = b.world.on_request("list", hold=True)
    unanswered: list[bool] = []  # List Pipelines, as the first Get Pipeline Details arrived

    def release_once_details_are_asked() -> None:
        try:
            b.world.wait_for(lambda e: e["route"] == "details", timeout=60)
            unanswered.append(all(e["status"] is None for e in b.log("list")))
        finally:
            listing.release()

    waiter = threading.Thread(target=release_once_details_are_asked, daemon=True)
    waiter.start()
    try:
        result, reporter = b.apply(pause_pipelines=True)
    finally:
        listing.release()
    waiter.join()
    assert unanswered == [True], "Get Pipeline Details was asked only once List Pipelines had answered"
    warned = [n for n in reporter.notes if "has no stage named" in n]
    assert len(warned) == 1 and warned[0].startswith("warning: pipeline o/p1 (p1) has no stage named 's9'")
    assert result.deleted and sent_to(b, pipeline="p2")


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ('{"stages": [{"instanceName": "s1", "stageName": "x"}]}', {"s1"}),  # StreamSets
        ({"config": {"nodes": [{"stageInstanceName": "s2"}]}}, {"s2"}),
        ('{"stages": [{"name": "s3"}]}', {"s3"}),
        ('[{"operators": [{"name": "s4"}]}]', {"s4"}),
        ("not json", None),
        ('{"title": "no stage list"}', None),
        (None, None),
        (42, None),
    ],
)
def test_pipeline_json_is_read_defensively(raw: Any, names: set[str] | None) -> None:
    found = stage_names(raw)
    assert (None if found is None else set(found)) == names


def test_a_name_mentioned_anywhere_in_the_configuration_is_never_called_missing() -> None:
    raw = json.dumps({"stages": [{"instanceName": "s1"}], "other": {"alias": "s9"}})
    details = PipelineDetails("p", "", stage_names(raw), raw)
    assert details.lacks("s2") and not details.lacks("s1") and not details.lacks("s9")
    assert not PipelineDetails("p", "", None, "garbage").lacks("anything")  # unknown, not missing


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_prints_one_line_for_a_stage_refused_40_times(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", stages=("s1", "s2"))]))
    em.world.pipelines["p1"].stages["s2"] = "WindowAggregator"  # a type without state operations
    assets = [f"a{i}" for i in range(40)]
    write(repo / "manifests/a.yaml", manifest_yaml("a", stages=["s2"], assets=assets))
    res = run_cli(["apply", "--auto-approve", "--max-assets", "1"], repo, gateway_env(em))
    assert res.code == 1, res.all
    assert res.err.count("FAILED") == 1 and "nothing more is sent to stage o1/p1/s2 in this run" in res.err
    assert "refused for the whole stage" in res.out and "(40 requests failed or not sent)" in res.out
    assert len([e for e in em.world.log if e["route"] == "delete"]) <= 4  # at most those in flight
    plan = json.loads(run_cli(["plan", "--format", "json"], repo).out)
    assert plan["summary"]["pendingCells"] == 40 and plan["summary"]["inDoubtCells"] == 0


def test_cli_plan_refresh_and_apply_warn_about_a_stage_name_the_pipeline_lacks(
    repo: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", stages=["s1", "windw_avg"]))
    plan = run_cli(["plan", "--refresh"], repo, gateway_env(em))
    assert plan.code == 0, plan.all
    assert (
        "warning: pipeline o1/p1 (p1) has no stage named 'windw_avg' (its released configuration lists: s1, s2)"
        in plan.err
    )
    res = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert "has no stage named 'windw_avg'" in res.err
    assert res.err.index("has no stage named") < res.err.index("pausing p1")
