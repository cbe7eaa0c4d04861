"""Starting pipelines again (issue 17 items 1 and 5; DESIGN "Apply" step 8, invariant 14):
one start at a time per org, 61121 waited out, 61128 explained, resourceConfig sent,
RUNNING confirmed and the lag reported. Emulator tests drive `apply` in-process with a
fake clock; CLI tests run `reconcile apply` against the emulator over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from enos_bench import ORG, Bench, bench_factory, manifest, pipe
from helpers import ORG as CLI_ORG
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler import ledger as L

BUSY = 61121


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    yield from bench_factory(tmp_path)


def starts(b: Bench) -> list[dict[str, Any]]:
    return b.log("operate", "start")


# --- item 1: 61121 -------------------------------------------------------------------


def test_invariant_14_three_pipelines_of_one_org_all_running_after_61121(bench: Callable[..., Bench]) -> None:
    """Three RUNNING pipelines of one org, paused and cleared while a colleague's start is in
    progress: 61121 for the first several seconds, then every one is RUNNING at exit 0."""
    b = bench(
        [pipe("p1"), pipe("p2"), pipe("p3")],
        [manifest("m1", "p1"), manifest("m2", "p2"), manifest("m3", "p3")],
        startWindow=5,
    )
    b.world.start_in_org(ORG)  # a colleague's start, 5 s before the org is free again
    result, notes = b.apply(pause_pipelines=True)
    assert result.ok and result.resume_failed == []
    assert {b.world.status(p) for p in ("p1", "p2", "p3")} == {"RUNNING"}
    assert sorted(result.resumed) == [(ORG, "p1"), (ORG, "p2"), (ORG, "p3")]
    refused = [e for e in starts(b) if e["code"] == BUSY]
    assert refused and refused[0]["query"]["action"] == "start"  # 61121 met, and waited out
    assert [e["code"] for e in starts(b)].count(0) == 3
    assert b.kinds("pause", "resume").count("resume") == 3
    assert any("another start is in progress in org o (61121)" in n for n in notes.notes)


def test_one_start_at_a_time_per_org(bench: Callable[..., Bench]) -> None:
    """Each start of an org goes out only after the one before it answered and reported
    RUNNING; two orgs do not wait for each other."""
    b = bench(
        [pipe("p1"), pipe("p2"), pipe("q1", org="o2"), pipe("q2", org="o2")],
        [
            manifest("m1", "p1"),
            manifest("m2", "p2"),
            manifest("n1", "q1", org="o2"),
            manifest("n2", "q2", org="o2"),
        ],
        startWindow=3,
    )
    result, _ = b.apply(pause_pipelines=True, max_paused=4)  # all four paused at once
    assert result.ok
    by_org: dict[str, list[dict[str, Any]]] = {}
    for e in starts(b):
        by_org.setdefault(e["query"]["orgId"], []).append(e)
    for entries in by_org.values():
        ok = [e for e in entries if e["code"] == 0]
        assert len(ok) == 2
        # the second start of an org came after the first was answered and its RUNNING read back
        first = b.world.log.index(ok[0])
        lists_between = [e for e in b.world.log[first : b.world.log.index(ok[1])] if e["route"] == "list"]
        assert lists_between
    # o2's first start did not wait for o's second: it came before it
    o_second = [e for e in starts(b) if e["query"]["orgId"] == ORG and e["code"] == 0][1]
    o2_first = next(e for e in starts(b) if e["query"]["orgId"] == "o2" and e["code"] == 0)
    assert b.world.log.index(o2_first) < b.world.log.index(o_second)


def test_61121_past_the_start_timeout_names_the_pipeline_and_the_next_apply_starts_it(
    bench: Callable[..., Bench],
) -> None:
    b = bench([pipe("p1"), pipe("p2")], [manifest("m1", "p1"), manifest("m2", "p2")])
    b.world.start_in_org(ORG, busy_for=3600)
    result, notes = b.apply(pause_pipelines=True, start_timeout=60)
    assert not result.ok
    assert sorted(ref.pipeline_id for ref, _ in result.resume_failed) == ["p1", "p2"]
    why = dict(result.resume_failed)[(ORG, "p1")]
    from reconciler.settings import advice

    assert why == "EnOS refused the start with 61121 (another job of org o is being started) for 60s"
    assert advice(why) == why + "; --start-timeout is 60s"  # the reason's hint, in CLI words
    assert "left PAUSED: o/p1, o/p2. The next `reconcile apply` starts them" in notes.notes[-1]
    # p2 got one try once p1 had used the org's whole timeout, not a timeout of its own
    assert len([e for e in starts(b) if e["path"].endswith("/p2")]) == 1
    assert b.world.status("p1") == b.world.status("p2") == "PAUSED"
    # Each start was announced (`start`) and, refused, followed by a `pause` that keeps it open:
    assert b.kinds("pause", "resume") == ["pause"] * 4 and b.kinds("start") == ["start"] * 2
    # The colleague's start is over: the next apply (nothing left to clear) starts both.
    b.world.org_starts.clear()
    assert [r.pipeline.pipeline_id for r in b.plan().pending_resumes] == ["p1", "p2"]
    again, _ = b.apply(pause_pipelines=True)
    assert again.ok and sorted(r.pipeline_id for r in again.resumed) == ["p1", "p2"]
    assert b.world.status("p1") == b.world.status("p2") == "RUNNING"
    assert b.plan().pending_resumes == ()


def test_61128_says_what_a_person_must_do(bench: Callable[..., Bench]) -> None:
    b = bench([pipe("p1")], [manifest("m1", "p1")], noResource=[ORG])
    result, _notes = b.apply(pause_pipelines=True)
    ((ref, why),) = result.resume_failed
    assert ref == (ORG, "p1") and "61128" in why
    assert "administrator must request or assign that resource" in why and "resourceConfig" in why
    assert len(starts(b)) == 1  # not retried: a person must act
    assert b.world.status("p1") == "PAUSED" and b.kinds("pause", "start", "resume") == [
        "pause",
        "start",
        "pause",
    ]


def test_resource_config_from_reconcile_yaml_is_sent_on_start(bench: Callable[..., Bench]) -> None:
    from reconciler.apply.values import StartSettings
    from reconciler.plan.values import PipelineRef

    b = bench([pipe("p1"), pipe("p2")], [manifest("m1", "p1"), manifest("m2", "p2")])
    settings = {PipelineRef(ORG, "p1"): StartSettings(1, 1000, '{"server":"s","yarn":{"workerCount":2}}')}
    result, _ = b.apply(pause_pipelines=True, resume_settings=settings)
    assert result.ok
    bodies = {e["path"].rsplit("/", 1)[1]: e["body"] for e in starts(b)}
    assert bodies["p1"]["resourceConfig"] == {"server": "s", "yarn": {"workerCount": 2}}
    assert "resourceConfig" not in bodies["p2"]


# --- item 5: RUNNING confirmed, lag reported ----------------------------------------------


def test_each_start_is_confirmed_running_and_its_lag_read(bench: Callable[..., Bench]) -> None:
    b = bench([pipe("p1", lag=1234)], [manifest("m1", "p1")])
    result, notes = b.apply(pause_pipelines=True)
    assert result.ok and result.resumed == [(ORG, "p1")]
    assert "started p1 again: it reports RUNNING" in notes.notes
    ((ref, lag),) = result.lags
    assert ref == (ORG, "p1") and lag.lag == 1234 and lag.partitions == 1
    assert len(b.log("offset-lag")) == 1


def test_a_start_that_does_not_take_is_not_recorded_and_the_next_apply_starts_it(
    bench: Callable[..., Bench],
) -> None:
    b = bench([pipe("p1")], [manifest("m1", "p1")])
    # The gateway accepts the start, but the job falls back to PAUSED (it never came up).
    b.world.on_request("operate:start", after=lambda w, e: w.set_status("p1", "PAUSED"))
    result, _ = b.apply(pause_pipelines=True, pause_timeout=10)
    ((_ref, why),) = result.resume_failed
    assert "the start was accepted, but it reports PAUSED after 10s" in why
    assert b.kinds("pause", "start", "resume") == ["pause", "start", "pause"] and result.lags == []
    again, _ = b.apply(pause_pipelines=True)
    assert again.ok and b.world.status("p1") == "RUNNING"


def test_no_lag_where_the_gateway_does_not_answer_it(bench: Callable[..., Bench]) -> None:
    b = bench([pipe("p1")], [manifest("m1", "p1")])
    b.world.on_request("offset-lag", expire_token="http401", times=None)  # refused for good
    result, _ = b.apply(pause_pipelines=True)
    assert result.ok and result.lags == [] and result.resumed == [(ORG, "p1")]


# --- the CLI ---------------------------------------------------------------------------


def three_pipelines(repo: Path) -> None:
    for p in ("p1", "p2", "p3"):
        write(repo / f"manifests/{p}.yaml", manifest_yaml(f"m-{p}", pipeline=p))


@pytest.mark.slow(2.5)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_cli_waits_out_61121_and_reports_every_pipeline_running(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([pipeline(p, status="RUNNING", lag=42) for p in ("p1", "p2", "p3")], startWindow=0.3)
    )
    three_pipelines(repo)
    # A colleague starts a job in the org just as our first start arrives. Started before the
    # run, its window of 0.3 s was over before our first start under load, and no 61121 came.
    em.world.on_request("operate:start", before=lambda w, e: w.start_in_org(CLI_ORG))
    res = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert res.code == 0, res.all
    assert {em.world.status(p) for p in ("p1", "p2", "p3")} == {"RUNNING"}
    assert any(e["code"] == BUSY for e in em.world.log if e["route"] == "operate")
    assert "another start is in progress in org o1 (61121)" in res.err
    for p in ("p1", "p2", "p3"):
        assert f"started {p} again: it reports RUNNING" in res.err
    # the summary table's notes wrap inside their cell (120 columns): read the cell's text
    notes = " ".join(
        " ".join(line.split("│")[-2].split()) for line in res.out.splitlines() if line.startswith("│")
    )
    assert "reporting RUNNING; lag p1 42 records, p2 42 records, p3 42 records" in notes
    assert res.out.count("lag p1") == 1  # once, in the summary


def test_cli_start_timeout_names_the_pipelines_left_paused_then_the_next_apply_starts_them(
    repo: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline(p, status="RUNNING") for p in ("p1", "p2", "p3")]))
    three_pipelines(repo)
    em.world.start_in_org(CLI_ORG, busy_for=3600)
    res = run_cli(
        ["apply", "--auto-approve", "--pause-pipelines", "--start-timeout", "0"], repo, gateway_env(em)
    )
    assert res.code == 1, res.all
    assert "apply did not finish" in res.err
    for p in ("p1", "p2", "p3"):
        assert f"could not start {p} again: " in res.err and f"o1/{p}: " in res.out
        assert em.world.status(p) == "PAUSED"
    assert (
        "61121" in res.err
        and "left PAUSED: o1/p1, o1/p2, o1/p3. The next `reconcile apply` starts them" in res.err
    )
    assert res.err.rstrip().endswith("NOT started again: o1/p1, o1/p2, o1/p3")
    plan = run_cli(["plan"], repo)
    assert plan.code == 0
    em.world.org_starts.clear()  # the colleague's start is over
    again = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert again.code == 0, again.all
    assert {em.world.status(p) for p in ("p1", "p2", "p3")} == {"RUNNING"}
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records].count("resume") == 3


def test_cli_61128_and_resource_config_from_reconcile_yaml(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")], noResource=[CLI_ORG]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(
        repo / "reconcile.yaml",
        "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\n"
        "pipelines:\n  - {orgId: o1, pipelineId: p1, executionMode: 0, kafkaRate: 500, resourceConfig: 2}\n",
    )
    res = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert res.code == 1, res.all
    assert "61128" in res.err and "an EnOS administrator must request or assign that resource" in res.err
    (start,) = [e for e in em.world.log if e["route"] == "operate" and e["query"]["action"] == "start"]
    assert start["body"]["resourceConfig"] == 2
    assert em.world.status("p1") == "PAUSED"
    em.world.no_resource.clear()  # an administrator assigned the resource
    again = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert again.code == 0, again.all
    assert em.world.status("p1") == "RUNNING"


def test_cli_help_teaches_start_timeout(repo: Path) -> None:
    res = run_cli(["apply", "--help"], repo)
    assert "--start-timeout" in res.out and "61121" in res.out


def test_cli_start_timeout_from_reconcile_yaml_and_the_flag_over_it(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(
        repo / "reconcile.yaml",
        "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\n"
        "apply: {startTimeout: 0}\n",
    )
    em.world.start_in_org(CLI_ORG, busy_for=3600)
    res = run_cli(
        ["apply", "--auto-approve", "--pause-pipelines", "--summary", "s.json"], repo, gateway_env(em)
    )
    assert res.code == 1 and "--start-timeout is 0s" in res.err
    # The core says why in neutral words with a hint; every place the CLI says it names the
    # flag: the summary table (its cells wrap: read their text), and the --summary file.
    cells = " ".join(" ".join(line.split("│")[-2].split()) for line in res.out.splitlines() if "│" in line)
    assert "o1/p1: EnOS refused the start with 61121" in cells and "--start-timeout is 0s" in cells
    why = json.loads((repo / "s.json").read_text())["pipelines"][0]["notStartedAgain"]
    assert why.startswith("EnOS refused the start with 61121") and why.endswith("; --start-timeout is 0s")
    em.world.start_in_org(CLI_ORG, busy_for=0.5)  # over in half a second: the flag waits it out
    again = run_cli(["apply", "--auto-approve", "--start-timeout", "600"], repo, gateway_env(em))
    assert again.code == 0, again.all
    assert em.world.status("p1") == "RUNNING"


def test_start_timeout_in_reconcile_yaml_is_checked(repo: Path) -> None:
    write(
        repo / "reconcile.yaml",
        "apiVersion: reconciler/v1\nkind: ReconcileConfig\napply:\n  startTimeout: -1\n",
    )
    res = run_cli(["plan"], repo)
    assert res.code == 1 and "reconcile.yaml:4:17: apply.startTimeout: must be at least 0" in res.err


def a_start_in_doubt(repo: Path, em: Any) -> None:
    """p1 cleared and started by one apply; then an apply that announced p1's start and
    died before the call (a `pause`, then a bare `start`), and a person paused p1 since."""
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    assert run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em)).code == 0
    path = repo / "applied-ledger.jsonl"
    pipe = {"orgId": CLI_ORG, "pipelineId": "p1"}
    with L.LedgerWriter(L.read(path)) as writer:
        writer.append("pause", {**pipe, "executionMode": 0, "kafkaRate": 1000})
        writer.append("start", pipe)
    em.world.set_status("p1", "PAUSED")


def test_cli_a_start_in_doubt_names_the_command_that_settles_it(repo: Path, make_emulator: Any) -> None:
    """The core says what happened and hints at what settles it; every place the CLI says it
    names the command and its flag, `reconcile ledger resolve --start ORG/PIPELINE` (L-1).
    Settled, the `resume` record's note is the text ledgers have always held."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    a_start_in_doubt(repo, em)
    settle = "then settle it: `reconcile ledger resolve --start o1/p1`"
    plan = run_cli(["plan"], repo)
    assert plan.code == 0 and "o1/p1: an apply announced its start" in plan.err and settle in plan.err
    comment = run_cli(["plan", "--format", "markdown"], repo)
    assert "o1/p1: an apply announced its start" in comment.out
    assert "reconcile ledger resolve --start o1/p1" in comment.out, comment.out
    res = run_cli(["apply", "--auto-approve", "--summary", "s.md"], repo, gateway_env(em))
    assert res.code == 1 and "nothing to apply, but 1 pipeline may be left paused" in res.err, res.all
    error = res.err.split("error: ", 1)[1]  # the refusal itself, not the warning before it
    assert "reports PAUSED now. reconcile will not start it" in error and settle in error
    assert settle in (repo / "s.md").read_text()
    # More to clear meanwhile: the run clears it, and names the pipeline it did not start.
    write(repo / "manifests/b.yaml", manifest_yaml("b", stages=["s2"]))
    res = run_cli(["apply", "--auto-approve", "--summary", "s.json"], repo, gateway_env(em))
    assert res.code == 1, res.all
    cells = " ".join(" ".join(line.split("│")[-2].split()) for line in res.out.splitlines() if "│" in line)
    assert "start by hand: o1/p1: o1/p1: an apply announced its start" in cells and settle in cells
    (p1,) = json.loads((repo / "s.json").read_text())["pipelines"]
    assert p1["notStartedAgain"].endswith(settle)
    assert em.world.status("p1") == "PAUSED"  # never started by reconcile: a person decides

    bad = run_cli(["ledger", "resolve", "--start", "o1", "--auto-approve"], repo)
    assert bad.code == 1 and "--start 'o1' is not ORG/PIPELINE" in bad.err, bad.all
    em.world.set_status("p1", "RUNNING")  # the person starts it in the console, and settles it
    res = run_cli(["ledger", "resolve", "--start", "o1/p1", "--auto-approve"], repo)
    assert res.code == 0, res.all
    last = L.read(repo / "applied-ledger.jsonl").records[-1]
    assert (last.kind, last.resolved) == ("resume", True)
    assert last.data["note"] == "a person settled a start in doubt (reconcile ledger resolve --start)"
    assert run_cli(["apply", "--auto-approve"], repo, gateway_env(em)).code == 0
