"""apply end to end: the real CLI against the emulator over loopback, proving DESIGN's invariants."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from helpers import ORG, cell_fields, gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler import ledger as L
from reconciler.emulator import DEFAULT_APP_KEY, FAULT_KINDS, Faults

Cells = set[tuple[str, str, str, str, str]]


def declared(pipe: str, stages: list[str], assets: list[str], points: list[str]) -> Cells:
    return {(ORG, pipe, s, a, p) for s, a, p in product(stages, assets, points)}


def deletes(em: Any) -> list[dict[str, Any]]:
    return [e for e in em.world.log if e["route"] == "delete"]


def apply(repo: Path, em: Any, *args: str) -> Any:
    return run_cli(["apply", "--auto-approve", *args], repo, gateway_env(em))


def test_exact_then_idempotent(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2")]))
    write(
        repo / "manifests/a.yaml",
        manifest_yaml("a", stages=["s1", "s2"], assets=["a1", "a2", "a3"], points=["x", "y"]),
    )
    write(repo / "manifests/b.yaml", manifest_yaml("b", pipeline="p2", assets=["b1"], points=["z"]))
    first = apply(repo, em)
    assert first.code == 0, first.all
    assert "Apply complete. 13 cells cleared in 3 requests." in first.out
    want = declared("p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "y"]) | declared(
        "p2", ["s1"], ["b1"], ["z"]
    )
    assert em.world.deleted_cells() == want
    sent = len(deletes(em))
    second = apply(repo, em)
    assert second.code == 0 and "Nothing to apply." in second.out
    assert len(deletes(em)) == sent  # invariant 3: a second apply sends no delete request
    plan = run_cli(["plan", "--detailed-exitcode", "--format", "json"], repo)
    assert plan.code == 0 and json.loads(plan.out)["summary"]["pendingCells"] == 0  # invariant 2
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records].count("delete") == 3
    actor = led.records[-1].data["actor"]
    assert actor["tool"].startswith("reconciler/") and actor["user"] and actor["host"]


def test_widening_an_applied_manifest_deletes_only_new_cells(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=["x"]))
    assert apply(repo, em).code == 0
    before = em.world.deleted_cells()
    em.world.delete_log.clear()
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"], points=["x", "y"]))
    assert apply(repo, em).code == 0
    new = declared("p1", ["s1"], ["a1", "a2", "a3"], ["x", "y"]) - before
    assert em.world.deleted_cells() == new


@pytest.mark.slow(3.5)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_faults_of_every_kind_still_finish_exactly(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([pipeline("p1", stages=("s1", "s2", "s3"))], tokenLifetime=2),
        Faults(rate=0.25, kinds=FAULT_KINDS, seed=11, extra_latency_ms=20),
    )
    assets = [f"a{i:02d}" for i in range(30)]
    write(
        repo / "manifests/a.yaml",
        manifest_yaml("a", stages=["s1", "s2", "s3"], assets=assets, points=["x", "y"]),
    )
    res = apply(repo, em, "--max-assets", "1", "--concurrency", "4")
    # A request can exhaust its retries (faults are a quarter of all answers, tokens last 2 s,
    # so a loaded machine sees more expiries): each next apply finishes what is left. A
    # request whose answer was lost while the pipeline's status could not be read back is
    # left to a person, who resends it as the summary says (the pipeline stays PAUSED here).
    for _ in range(5):
        if res.code == 0:
            break
        res = apply(repo, em, "--max-assets", "1", "--resend-in-doubt")
    assert res.code == 0, res.all
    faults = {e["fault"] for e in em.world.log}
    assert set(FAULT_KINDS) <= faults  # every kind happened, lost answers included
    assert em.world.deleted_cells() == declared("p1", ["s1", "s2", "s3"], assets, ["x", "y"])  # never outside
    assert em.world.violations == []  # never on a pipeline that is not paused
    L.read(repo / "applied-ledger.jsonl")  # verifies
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0


def test_running_pipeline_blocks_with_nothing_sent(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([pipeline("p1"), pipeline("p2", status="RUNNING"), pipeline("p3", status="STOPPED")])
    )
    for name, pipe in [("a", "p1"), ("b", "p2"), ("c", "p3"), ("d", "ghost")]:
        write(repo / f"manifests/{name}.yaml", manifest_yaml(name, pipeline=pipe))
    res = apply(repo, em)
    assert res.code == 1
    assert (
        "o1 / p2: RUNNING" in res.err
        and "o1 / p3: STOPPED" in res.err
        and "ghost: not found in org o1 (List Pipelines, released pipelines only): check spec.pipelineId"
        in res.err
    )
    assert "nothing was sent" in res.err
    assert "or pass --pause-pipelines to pause RUNNING ones" in res.err  # the core's hint, in CLI words
    assert deletes(em) == [] and not [e for e in em.world.log if e["route"] == "operate"]
    res = apply(repo, em, "--pause-pipelines")  # STOPPED and missing still block; nothing paused
    assert res.code == 1 and "never touched" in res.err
    assert not [e for e in em.world.log if e["route"] == "operate"]


def test_pause_pipelines_pauses_deletes_and_starts_exactly_those(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([pipeline("p1", status="RUNNING", pauseDelay=0.5, kafkaRate=777), pipeline("p2")])
    )
    write(repo / "manifests/a.yaml", manifest_yaml("a", pipeline="p1"))
    write(repo / "manifests/b.yaml", manifest_yaml("b", pipeline="p2"))
    res = apply(repo, em, "--pause-pipelines")
    assert res.code == 0, res.all
    assert em.world.status("p1") == "RUNNING" and em.world.status("p2") == "PAUSED"
    assert em.world.violations == []
    ops = [
        (e["path"].rsplit("/", 1)[1], e["query"]["action"], e["body"])
        for e in em.world.log
        if e["route"] == "operate"
    ]
    assert ops == [("p1", "pause", None), ("p1", "start", {"executionMode": 1, "kafkaRate": 777})]
    kinds = [
        (r.kind, r.data.get("pipelineId"))
        for r in L.read(repo / "applied-ledger.jsonl").records
        if r.kind in ("pause", "resume")
    ]
    assert kinds == [("pause", "p1"), ("resume", "p1")]


def test_pause_refused_when_no_resume_can_be_formed(repo: Path, make_emulator: Any) -> None:
    running = pipeline("p1", status="RUNNING")
    del running["kafkaRate"]
    em = make_emulator(world_for([running]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = apply(repo, em, "--pause-pipelines")
    assert res.code == 1 and "List Pipelines gives no kafkaRate" in res.err
    assert (
        "A kafkaRate can also be given for them all: pass --kafka-rate N." in res.err
    )  # the hint, in CLI words
    assert not [e for e in em.world.log if e["route"] in ("operate", "delete")]
    res = apply(repo, em, "--pause-pipelines", "--kafka-rate", "1500")
    assert res.code == 0, res.all
    assert em.world.pipelines["p1"].kafka_rate == 1500 and em.world.status("p1") == "RUNNING"


def test_failed_deletes_still_resume_and_stay_pending(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([{**pipeline("p1", status="RUNNING"), "stages": {"s1": "WindowAggregator"}}])
    )
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = apply(repo, em, "--pause-pipelines")
    assert res.code == 1 and "61107" in res.err and "failed (still pending)" in res.out
    assert em.world.status("p1") == "RUNNING"  # started again although the delete failed
    assert json.loads(run_cli(["plan", "--format", "json"], repo).out)["summary"]["pendingCells"] == 2


def test_in_doubt_resent_only_while_paused_since(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x"]))
    path = repo / "applied-ledger.jsonl"
    fields = cell_fields()
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", fields)
    plan = json.loads(run_cli(["plan", "--format", "json"], repo).out)
    assert plan["summary"]["inDoubtCells"] == 1 and plan["actions"][0]["inDoubt"] is True
    assert apply(repo, em).code == 0 and len(deletes(em)) == 1  # paused since: re-sent

    write(repo / "manifests/b.yaml", manifest_yaml("b", assets=["b1"], points=["x"]))
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", {**fields, "manifest": "b", "assetIds": ["b1"]})
        w.append("resume", {"orgId": ORG, "pipelineId": "p1"})
    res = apply(repo, em)
    assert res.code == 1 and "left to a person" in res.err and len(deletes(em)) == 1
    text = run_cli(["plan"], repo).out
    assert "in doubt: 1 cell" in text and "a resume followed it" in text
    resolved = run_cli(["ledger", "resolve", "--yes"], repo)
    assert resolved.code == 0 and "Recorded 1 in-doubt request as done." in resolved.out
    assert L.read(path).records[-1].data["resolved"] is True
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0
    assert len(deletes(em)) == 1


def test_resend_in_doubt_overrides(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x"]))
    with L.LedgerWriter(L.read(repo / "applied-ledger.jsonl")) as w:
        w.append("intent", cell_fields())
        w.append("resume", {"orgId": ORG, "pipelineId": "p1"})
    assert apply(repo, em, "--resend-in-doubt").code == 0 and len(deletes(em)) == 1


def test_saved_plan_applied_only_if_still_exact(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    made = run_cli(["plan", "--out", "plan.json"], repo)
    assert made.code == 0 and "Plan hash: " in made.out
    plan_hash = json.loads((repo / "plan.json").read_text())["planHash"]
    assert plan_hash in made.out

    original = (repo / "plan.json").read_text()
    tampered = json.loads(original)
    tampered["actions"][0]["assetIds"].append("not-declared")
    (repo / "plan.json").write_text(json.dumps(tampered))
    res = apply(repo, em, "plan.json")
    assert res.code == 1 and "it was edited" in res.err
    hashed = {k: tampered[k] for k in ("actions", "ledger", "manifests", "options")}
    tampered["planHash"] = __import__("reconciler.plan", fromlist=["plan_hash"]).plan_hash(hashed)
    (repo / "plan.json").write_text(json.dumps(tampered))
    res = apply(repo, em, "plan.json")
    assert res.code == 1 and "does not match what its manifests give now" in res.err

    (repo / "plan.json").write_text(original)
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"]))
    res = apply(repo, em, "plan.json")
    assert res.code == 1 and "does not match" in res.err
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    assert deletes(em) == []

    res = apply(repo, em, "plan.json")
    assert res.code == 0 and "matches the manifests and the ledger" in res.err
    assert "(manifests/a.yaml)" in res.out  # the plan it shows names each manifest's file, as plan does
    res = apply(repo, em, "plan.json")
    assert res.code == 1 and "stale" in res.err
    assert len(deletes(em)) == 1


def test_a_concurrent_apply_is_refused_by_the_lock(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    with L.LedgerLock(repo / "applied-ledger.jsonl", command="reconcile apply (the other one)"):
        res = apply(repo, em)
    assert res.code == 1 and "locked" in res.err and "reconcile apply (the other one)" in res.err
    assert "Or pass --lock-timeout SECONDS to wait for it." in res.err
    assert em.world.log == []


def test_gateway_taking_fewer_points_still_finishes_exactly(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()], maxPoints=3))
    points = [f"pt{i}" for i in range(10)]
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=points))
    res = apply(repo, em)
    assert res.code == 0, res.all
    assert em.world.deleted_cells() == declared("p1", ["s1"], ["a1", "a2"], points)
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records].count("intent") == 1
    assert all(len(r.point_ids) <= 3 for r in led.records if r.kind == "delete")
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0


def test_secrets_appear_in_no_output_or_file(repo: Path, make_emulator: Any) -> None:
    secret = "SUPER-secret-0xDEADBEEF"
    em = make_emulator(
        {"apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": secret}], "pipelines": [pipeline()]}
    )
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    env = {**gateway_env(em), "ENOS_APP_SECRET": secret}
    runs = [
        run_cli(args, repo, env)
        for args in (
            ["plan", "--out", "plan.json", "--refresh"],
            ["plan", "--format", "markdown", "--refresh"],
            ["apply", "--auto-approve", "--verify", "plan.json"],
            ["ledger", "show", "--format", "json"],
            ["--debug", "apply", "--auto-approve", "--gateway", "http://example.com"],
        )
    ]
    tokens = list(em.world.tokens)
    assert tokens
    files = [p.read_text(errors="replace") for p in repo.rglob("*") if p.is_file()]
    for text in [r.all for r in runs] + files:
        assert secret not in text
        assert all(t not in text for t in tokens)


def test_verify_max_cells_and_approval(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"]))
    res = apply(repo, em, "--max-cells", "2")
    assert (
        res.code == 1 and "clears 3 cells, more than --max-cells (2)" in res.err and "a: 3 cells" in res.err
    )
    res = run_cli(["apply"], repo, gateway_env(em))
    assert res.code == 1 and "--auto-approve" in res.err
    assert em.world.log == []
    res = apply(repo, em, "--verify", "--max-cells", "3")
    # read back before its pipeline is started again: a running pipeline may rebuild state
    assert res.code == 0 and "verified: no state left in the 3 cells cleared" in res.err
    pipe = em.world.pipelines["p1"]
    assert not any(pipe.has_state("s1", a, "pt1") for a in ("a1", "a2", "a3"))


def test_missing_credentials_are_a_clear_error(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["apply", "--auto-approve", "--gateway", "http://127.0.0.1:9"], repo)
    assert res.code == 1 and "ENOS_APP_KEY and ENOS_APP_SECRET" in res.err and "Traceback" not in res.all


def test_saved_plan_uses_its_own_ledger_unless_told(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    (repo / "applied-ledger.jsonl").unlink()
    write(repo / "audit/ledger.jsonl", "")
    assert run_cli(["plan", "--ledger", "audit/ledger.jsonl", "--out", "plan.json"], repo).code == 0
    res = apply(repo, em, "plan.json")
    assert res.code == 0, res.all
    assert (
        len(L.read(repo / "audit/ledger.jsonl").records) == 2 and not (repo / "applied-ledger.jsonl").exists()
    )


def test_a_pipeline_left_paused_is_started_at_once_when_nothing_is_left(
    repo: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    path = repo / "applied-ledger.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("pause", {"orgId": ORG, "pipelineId": "p1", "executionMode": 0, "kafkaRate": 321})
        w.append(
            "delete",
            {
                "manifest": "a",
                "orgId": ORG,
                "pipelineId": "p1",
                "stageInstanceName": "s1",
                "assetIds": ["a1", "a2"],
                "pointIds": ["pt1"],
            },
        )
        # An old pause that cannot still be landing: closed at once, not polled.
        w.append(
            "pause",
            {"orgId": ORG, "pipelineId": "p2", "executionMode": 1, "kafkaRate": 5},
            at="2026-01-01T00:00:00.000Z",
        )
    plan = run_cli(["plan", "--detailed-exitcode"], repo)
    assert plan.code == 2 and "left paused" in plan.out
    res = apply(repo, em)
    assert res.code == 0, res.all
    assert em.world.status("p1") == "RUNNING" and em.world.pipelines["p1"].kafka_rate == 321
    assert deletes(em) == []
    # p2 was found RUNNING (someone started it): recorded, not started again
    assert [e["query"]["action"] for e in em.world.log if e["route"] == "operate"] == ["start"]
    assert "p2 was left paused by an earlier run but is RUNNING now" in res.err
    notes = [r.data.get("note") for r in L.read(path).records if r.kind == "resume"]
    assert sorted(notes, key=str) == [None, "found RUNNING"]
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0


def test_one_new_turbine_in_a_shared_ids_file_is_one_request(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/ids/fleet.txt", "WT0001\nWT0002\n")
    for i in range(13):
        text = manifest_yaml(f"fix-{i:02d}", assets=["x"]).replace(
            "assetIds: [x]", "assetIdsFile: ids/fleet.txt"
        )
        write(repo / f"manifests/m{i:02d}.yaml", text)
    assert apply(repo, em).code == 0
    assert len(deletes(em)) == 1  # not 13
    write(repo / "manifests/ids/fleet.txt", "WT0001\nWT0002\nWT0003\n")  # a new turbine
    res = apply(repo, em)
    assert res.code == 0, res.all
    assert len(deletes(em)) == 2 and em.world.delete_log[-1]["assets"] == ["WT0003"]
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0  # recorded for all 13
