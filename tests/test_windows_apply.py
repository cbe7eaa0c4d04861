"""`reconcile apply` and `plan` with apply.windows: the real CLI, real git, the emulator.

Outside a window apply pauses and sends nothing, exits 0 saying it deferred, why and until
when, and still starts what an earlier run left paused; `--ignore-window --reason` applies
anyway and every record of the run says so; the plan says whether the window is open.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from helpers import (
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    gateway_env,
    kill_at_held_call,
    manifest_yaml,
    pipeline,
    remote_records,
    run_cli,
    spawn_cli,
    world_for,
)

CONFIG = LEDGER_IN_GIT.format(branch="main").replace("branch: main}", "branch: main, leaseSeconds: 30}")
TODAY = date.today()
FREEZE = (
    CONFIG + "apply:\n  pausePipelines: true\n  concurrency: 1\n  windows:\n    deny:\n"
    f'      - {{from: "{TODAY - timedelta(days=1)}", to: "{TODAY + timedelta(days=1)}", '
    'reason: "Spring Festival freeze"}\n'
)
UNTIL = f"{TODAY + timedelta(days=2)}T00:00+00:00"  # the day after `to`, in UTC
MANIFEST = manifest_yaml("a", stages=["s1", "s2"], assets=["a1", "a2"], points=["x"])


def make_origin(tmp_path: Path, config: str = FREEZE) -> Path:
    files = {"reconcile.yaml": config, "manifests/a.yaml": MANIFEST, "applied-ledger.jsonl": ""}
    return bare_origin(tmp_path, files)


def test_inside_a_freeze_apply_defers_sending_and_pausing_nothing(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    origin = make_origin(tmp_path)
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(
        ["apply", "--auto-approve", "--summary", "s.json", "--summary", "s.md"], runner, gateway_env(em)
    )
    assert res.code == 0, res.all
    assert (
        f"Deferred: Spring Festival freeze; nothing was paused or sent; the pending requests are applied when the window opens at {UNTIL}"
        in res.out
    )
    assert [e["route"] for e in em.world.log] == []  # not even a token: nothing to start either
    assert em.world.status("p1") == "RUNNING"
    summary = json.loads((runner / "s.json").read_text())
    assert summary["outcome"] == "deferred" and summary["ok"] is True
    assert summary["deferred"] == {"reason": "Spring Festival freeze", "until": UNTIL}
    assert "Deferred" in (runner / "s.md").read_text() and UNTIL in (runner / "s.md").read_text()
    assert remote_records(origin) == []  # nothing recorded: nothing was done
    # The plan says so in every format.
    plan = run_cli(["plan"], runner)
    assert (
        f"outside the apply window: Spring Festival freeze; apply will run when the window opens at {UNTIL}"
        in plan.out
    )
    md = run_cli(["plan", "--format", "markdown"], runner)
    assert "Spring Festival freeze" in md.out and UNTIL in md.out
    doc = json.loads(run_cli(["plan", "--format", "json"], runner).out)
    assert doc["policy"]["window"]["open"] is False
    assert doc["policy"]["window"]["reason"] == "Spring Festival freeze"
    assert doc["policy"]["window"]["next"] == UNTIL


def test_the_break_glass_applies_and_every_record_says_why(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    origin = make_origin(tmp_path)
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    runner = clone(origin, tmp_path / "runner")
    bare = run_cli(["apply", "--auto-approve", "--ignore-window"], runner, gateway_env(em))
    assert bare.code == 1 and "--ignore-window needs --reason" in bare.err
    res = run_cli(
        ["apply", "--auto-approve", "--ignore-window", "--reason", "INC-42: stuck windows"],
        runner,
        gateway_env(em),
    )
    assert res.code == 0, res.all
    assert "--ignore-window" in res.all and "Spring Festival freeze" in res.all
    assert len(em.world.delete_log) == 2 and em.world.status("p1") == "RUNNING"
    records = remote_records(origin)
    assert {r["kind"] for r in records} >= {"pause", "intent", "delete", "resume"}
    assert all(r["actor"]["windowOverride"] == "INC-42: stuck windows" for r in records)


def test_a_pipeline_a_dead_runner_left_paused_is_started_by_a_deferred_run(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Runner 1 (break glass) dies with a delete in flight: p1 stays PAUSED. The next run,
    in the freeze, sends nothing but starts p1 (a window gates pausing, never resuming)."""
    origin = make_origin(tmp_path)
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    hook = em.world.on_request("delete", hold=True)
    proc = spawn_cli(
        ["apply", "--auto-approve", "--ignore-window", "--reason", "incident"],
        clone(origin, tmp_path / "runner1"),
        gateway_env(em),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_at_held_call(proc, em.world, hook, lambda e: e["route"] == "delete")
    assert em.world.status("p1") == "PAUSED"
    deletes = len(em.world.delete_log)

    runner2 = clone(origin, tmp_path / "runner2")
    res = run_cli(["apply", "--auto-approve", "--summary", "s.json"], runner2, gateway_env(em))
    assert res.code == 0, res.all
    assert em.world.status("p1") == "RUNNING"  # started by the deferred run
    assert len(em.world.delete_log) == deletes  # and nothing sent
    assert "Deferred: Spring Festival freeze" in res.out
    summary = json.loads((runner2 / "s.json").read_text())
    assert summary["outcome"] == "deferred"
    assert [p["startedAgain"] for p in summary["pipelines"]] == [True]
    kinds = [r["kind"] for r in remote_records(origin)]
    assert kinds[0] == "pause" and "resume" in kinds and kinds.count("delete") <= 1
