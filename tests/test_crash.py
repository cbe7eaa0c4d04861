"""Durability (invariant 4): kill -9 apply at random moments; the ledger always verifies,
the end result is exact, and a resumed apply re-sends at most what was in flight."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from itertools import product
from pathlib import Path
from typing import Any

from conftest import ORG, gateway_env, manifest_yaml, pipeline, run_cli, spawn_cli, world_for, write

from reconciler import ledger as L
from reconciler.emulator import Faults


def in_flight(path: Path) -> int:
    """Intents whose cells no later delete covers: the requests that may have been sent."""
    records = L.read(path).records
    done = {(r.key, a, p) for r in records if r.kind == "delete" for a in r.asset_ids for p in r.point_ids}
    return sum(
        1
        for r in records
        if r.kind == "intent" and any((r.key, a, p) not in done for a in r.asset_ids for p in r.point_ids)
    )


def test_kill_9_at_random_moments_then_resume(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]), Faults(latency_ms=40, seed=5))
    assets = [f"a{i:03d}" for i in range(200)]
    write(
        repo / "manifests/a.yaml", manifest_yaml("a", stages=["s1", "s2"], assets=assets, points=["x", "y"])
    )
    ledger = repo / "applied-ledger.jsonl"
    args = ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1", "--concurrency", "4"]
    rng = random.Random(1234)
    kills = 0
    allowed_resends = 0
    for _ in range(12):
        proc = spawn_cli(args, repo, gateway_env(em), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.9))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        L.read(ledger)  # verifies after every kill (a torn last line is only a warning)
        allowed_resends += in_flight(ledger)
    assert kills >= 5, f"only {kills} kills: the workload should outlast five of them"
    final = run_cli(
        ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1", "--concurrency", "8"],
        repo,
        gateway_env(em),
    )
    assert final.code == 0, final.all
    led = L.read(ledger)
    want = {(ORG, "p1", s, a, p) for s, a, p in product(["s1", "s2"], assets, ["x", "y"])}
    assert em.world.deleted_cells() == want
    assert em.world.violations == []
    recorded = sum(1 for r in led.records if r.kind == "delete")
    extra = len(em.world.delete_log) - recorded
    assert extra <= allowed_resends  # only requests whose intent had no delete were sent again
    assert extra <= kills * 4  # and never more than --concurrency per interrupted run
    assert em.world.status("p1") == "RUNNING"  # started again by the run that finished
    assert run_cli(["plan", "--detailed-exitcode"], repo).code == 0
