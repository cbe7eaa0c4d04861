"""Durability (invariant 4) and SIGTERM (issue 9 item 9): the real CLI as a process, stopped
at exact requests (triggered on the emulator's log, never on sleeps); the ledger always
verifies, the end result is exact, and a resumed apply re-sends at most what was in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

from helpers import (
    HANG,
    ORG,
    gateway_env,
    manifest_yaml,
    pipeline,
    run_cli,
    signal_until_heard,
    spawn_cli,
    world_for,
    write,
)

from reconciler import ledger as L

ARGS = ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1"]


def in_flight(path: Path, after: int = 0) -> int:
    """Intents after seq `after` whose cells no later delete (or `failed`: not sent after all)
    covers: requests that may have been sent."""
    records = L.read(path).records
    closed = ("delete", "failed")
    done = {(r.key, a, p) for r in records if r.kind in closed for a in r.asset_ids for p in r.point_ids}
    return sum(
        1
        for r in records
        if r.kind == "intent"
        and r.seq > after
        and any((r.key, a, p) not in done for a in r.asset_ids for p in r.point_ids)
    )


def deletes(em: Any) -> int:
    return sum(1 for e in em.world.log if e["route"] == "delete")


def signal_at_delete(em: Any, proc: subprocess.Popen[str], k: int, sig: int) -> None:
    """Hold the k-th delete this run sends, signal the process while it is in flight, then
    let the request go on: it takes effect, whether or not anyone hears the answer."""
    target = deletes(em) + k
    held = em.world.on_request("delete", skip=k - 1, hold=True)
    try:
        em.world.wait_for(lambda e: e["route"] == "delete" and deletes(em) >= target, timeout=30)
        os.kill(proc.pid, sig)
    finally:
        held.release()


def test_kill_9_at_exact_requests_then_resume(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    assets = [f"a{i:02d}" for i in range(30)]
    write(
        repo / "manifests/a.yaml", manifest_yaml("a", stages=["s1", "s2"], assets=assets, points=["x", "y"])
    )
    ledger = repo / "applied-ledger.jsonl"
    allowed_resends = 0
    for k in (1, 3, 6):
        head = L.read(ledger).head_seq
        proc = spawn_cli([*ARGS, "--concurrency", "4"], repo, gateway_env(em), stdout=subprocess.DEVNULL)
        signal_at_delete(em, proc, k, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        L.read(ledger)  # verifies after every kill (a torn last line is only a warning)
        sent_now = in_flight(ledger, after=head)
        assert 1 <= sent_now <= 4  # the held request at least, never more than --concurrency
        allowed_resends += sent_now
    assert em.world.status("p1") == "PAUSED"  # left paused by the killed runs, on record
    final = run_cli([*ARGS, "--concurrency", "8"], repo, gateway_env(em))
    assert final.code == 0, final.all
    want = {(ORG, "p1", s, a, p) for s, a, p in product(["s1", "s2"], assets, ["x", "y"])}
    assert em.world.deleted_cells() == want
    assert em.world.violations == []
    recorded = sum(1 for r in L.read(ledger).records if r.kind == "delete")
    assert len(em.world.delete_log) - recorded <= allowed_resends  # only what was in flight, again
    assert em.world.status("p1") == "RUNNING"  # started again by the run that finished
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0


def test_sigterm_at_an_exact_request(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=[f"a{i}" for i in range(12)]))
    # From the 3rd delete on, each is held until the run has heard the SIGTERM: on a loaded
    # machine the workers could otherwise send all 12 before the main thread ran its handler.
    held = em.world.on_request("delete", skip=2, times=None, hold=True)
    proc = spawn_cli(
        [*ARGS, "--concurrency", "2"],
        repo,
        gateway_env(em),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    em.world.wait_for(lambda e: e["route"] == "delete" and deletes(em) >= 3, timeout=HANG)
    out = signal_until_heard(proc, signal.SIGTERM, held)
    assert proc.returncode == 130, out
    assert em.world.status("p1") == "RUNNING"  # started again
    ledger = repo / "applied-ledger.jsonl"
    assert in_flight(ledger) == 0  # the requests in flight finished and were journalled
    kinds = [r.kind for r in L.read(ledger).records]
    assert kinds[0] == "pause" and kinds[-1] == "resume"
    assert "apply summary (interrupted)" in out and "not sent (still pending)" in out
    assert em.world.violations == [] and deletes(em) < 12


def test_kill_9_between_two_pipelines_leaves_the_second_pending_not_in_doubt(
    repo: Path, make_emulator: Any
) -> None:
    """Issue 25 item 3: a runner killed after one pipeline's pause (its start in flight) and
    before the next one's: no record of the next one at all, so its requests are pending,
    never in doubt, and the next apply sends each of them once, after pausing it."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING"), pipeline("p2", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", pipeline="p1", assets=["a0"], points=["x"]))
    write(
        repo / "manifests/b.yaml", manifest_yaml("b", pipeline="p2", assets=["b0", "b1", "b2"], points=["x"])
    )
    ledger = repo / "applied-ledger.jsonl"
    held = em.world.on_request("operate:start", hold=True)  # p1's start: p2 waits for the budget
    proc = spawn_cli([*ARGS, "--max-paused", "1"], repo, gateway_env(em), stdout=subprocess.DEVNULL)
    try:
        em.world.wait_for(
            lambda e: e["route"] == "operate" and e["query"].get("action") == "start", timeout=30
        )
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        held.release()
    records = L.read(ledger).records
    assert [r.kind for r in records if r.pipeline_id == "p2"] == []  # nothing announced for p2
    assert not any(e["route"] == "delete" and e["body"]["pipelineId"] == "p2" for e in em.world.log)
    planned = run_cli(["plan", "--format", "json"], repo)
    actions = json.loads(planned.out)["actions"]
    assert {a["pipelineId"] for a in actions} == {"p2"} and not any(a.get("inDoubt") for a in actions)
    before = deletes(em)
    final = run_cli(ARGS, repo, gateway_env(em))
    assert final.code == 0, final.all
    assert deletes(em) - before == 3  # p2's three, once each; p1's was recorded before the kill
    assert em.world.status("p1") == "RUNNING" and em.world.status("p2") == "RUNNING"
    assert em.world.violations == []
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0
