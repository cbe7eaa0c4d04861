"""`reconcile demo`: the whole loop, offline, against an in-process emulator in a temp dir.

validate -> plan -> apply -> plan (nothing to do) -> apply (sends nothing) -> ledger.
Runs the real CLI commands and the real client over loopback HTTP; the repository
and the user's environment are left untouched.

The fleet: the example manifests' two pipelines (one PAUSED by a person, one RUNNING) and
two more RUNNING ones, of uneven size, so that the rollout shows: each RUNNING pipeline is
paused just before its own first request and started again once they are answered, the
one with fewer requests first, at most two at once. The emulator answers in a few
milliseconds, as a gateway does, so that each pause has a length to report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.render.console import Consoles
from reconciler.words import plural

ORG = "o15589291683811"
# Two more production pipelines, beside the example manifests' two (emulator/world.py).
FLEET: list[dict[str, Any]] = [
    {
        "pipelineId": "b81f3c2a90d64e57",
        "orgId": ORG,
        "pipelineName": "wind-alarm-capture",
        "status": "RUNNING",
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": {"alarm_capture_1": "RecordCapturer"},
        "fillState": True,
    },
    {
        "pipelineId": "e5d47a1c3b2f9068",
        "orgId": ORG,
        "pipelineName": "solar-inverter-last",
        "status": "RUNNING",
        "executionMode": 0,
        "kafkaRate": 2000,
        "stages": {"last_record_1": "LastRecordAppender"},
        "fillState": True,
    },
]
MAX_ASSETS = 10  # assets per request in the demo: small requests, so that sizes differ
LATENCY_MS = 20  # how long the emulator takes to answer each call


def _fleet_manifests(dest: Path) -> None:
    """The two extra pipelines' manifests: 8 alarm assets (1 request), 90 inverters (9)."""
    for name, pipeline, stage, prefix, n, points, why in (
        (
            "wind-alarm-replay-2026-11",
            "b81f3c2a90d64e57",
            "alarm_capture_1",
            "WTG",
            8,
            ["WTUR.AlarmCode"],
            "Drop the alarms captured during the SCADA replay (INC-5521)",
        ),
        (
            "solar-last-value-fix-2026-11",
            "e5d47a1c3b2f9068",
            "last_record_1",
            "INVB",
            90,
            ["INV.GenActivePW"],
            "Last values computed before the meter swap on farm B (OPS-1301)",
        ),
    ):
        assets = "\n".join(f"    - {prefix}{i:04d}" for i in range(1, n + 1))
        point_list = "\n".join(f"    - {p}" for p in points)
        (dest / f"{name}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata:\n"
            f"  name: {name}\n  description: {why}\nspec:\n  orgId: {ORG}\n"
            f"  pipelineId: {pipeline}\n  stageInstanceNames: [{stage}]\n"
            f"  assetIds:\n{assets}\n  pointIds:\n{point_list}\n",
            encoding="utf-8",
        )


@contextmanager
def _scoped_env(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    old_cwd, old_env = Path.cwd(), {k: os.environ.get(k) for k in env}
    os.chdir(cwd)
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(c: Consoles, args: list[str], why: str) -> int:
    """One real command line, through the CLI's own error handling and exit codes."""
    from reconciler.cli._app import run

    c.out.print(f"\n[bold cyan]==> reconcile {' '.join(args)}[/bold cyan]   [dim]# {why}[/dim]")
    return run(args)


def copy_examples(dest: Path) -> None:
    """The example manifests shipped in the package (the same as the repository's manifests/)."""
    src = resources.files("reconciler") / "templates" / "manifests"
    with resources.as_file(src) as path:
        shutil.copytree(path, dest)


def pauses_seen(log: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float, int]]]:
    """What the gateway saw of each pipeline's pauses: (pause call, start call, deletes
    to it between them), from its log of answered calls."""
    out: dict[str, list[tuple[float, float, int]]] = {}
    began: dict[str, float] = {}
    deletes: dict[str, int] = {}
    for e in log:
        if e.get("code") != 0:
            continue
        pid = e["path"].rsplit("/", 1)[-1] if e["route"] == "operate" else None
        action = e["query"].get("action")
        if pid is not None and action == "pause":
            began[pid], deletes[pid] = e["at"], 0
        elif pid is not None and action == "start" and pid in began:
            out.setdefault(pid, []).append((began.pop(pid), e["at"], deletes.pop(pid)))
        elif e["route"] == "delete":
            target = e["body"]["pipelineId"]
            if target in began:
                deletes[target] += 1
    return out


def _fleet_words(world: Any) -> str:
    """Each RUNNING pipeline's pauses as the gateway saw them, and how many were paused at once."""
    seen = pauses_seen(world.log)
    names = {pid: p.name for pid, p in world.pipelines.items()}
    parts = []
    for pid, spans in sorted(seen.items(), key=lambda kv: kv[1][0][0]):
        held = sum(end - start for start, end, _ in spans)
        sent = sum(n for _, _, n in spans)
        parts.append(f"{names.get(pid, pid)} {held:.2f}s for {plural(sent, 'request')}")
    edges = sorted(
        [(s, 1) for v in seen.values() for s, _, _ in v] + [(e, -1) for v in seen.values() for _, e, _ in v]
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return f"paused, in the order the gateway saw: {', '.join(parts)}; at most {most} at once"


def run_demo(c: Consoles, keep: bool = False) -> None:
    from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, Faults, RunningEmulator, World
    from reconciler.emulator.world import DEFAULT_WORLD

    tmp = Path(tempfile.mkdtemp(prefix="reconcile-demo-"))
    copy_examples(tmp / "manifests")
    _fleet_manifests(tmp / "manifests")
    (tmp / "applied-ledger.jsonl").touch()  # as `reconcile init` leaves it
    world = World(
        {**DEFAULT_WORLD, "pipelines": [*DEFAULT_WORLD["pipelines"], *FLEET]}, Faults(latency_ms=LATENCY_MS)
    )
    small = ["--max-assets", str(MAX_ASSETS)]
    with RunningEmulator(world) as emulator:
        env = {
            "ENOS_API_GATEWAY": emulator.url,
            "ENOS_APP_KEY": DEFAULT_APP_KEY,
            "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
            "CI": "1",
        }
        c.out.print(
            f"[bold]reconcile demo[/bold]: example manifests in {tmp}, "
            f"EnOS emulator on {emulator.url} (in this process)."
        )
        c.out.print(
            "A fleet of four pipelines: wind-10min-averages is PAUSED (a person paused it: apply leaves it "
            "so); three are RUNNING, with 1, 4 and 9 requests. apply (--pause-pipelines) pauses each one "
            "just before its own first request and starts it again as soon as they are answered: fewest "
            "requests first, at most 2 paused at once."
        )
        with _scoped_env(tmp, env):
            codes = [
                _run(c, ["validate"], "check the manifests: every problem as file:line:col"),
                _run(
                    c,
                    ["plan", "--detailed-exitcode", "--pause-pipelines", "--refresh", *small],
                    "what would be cleared, in which order (exit 2: changes pending)",
                ),
                _run(
                    c,
                    ["apply", "--auto-approve", "--pause-pipelines", "--verify", *small],
                    "clear it, each pipeline paused only for its own requests",
                ),
            ]
            deletes_after_first = len(world.delete_log)
            fleet = _fleet_words(world)
            codes += [
                _run(c, ["plan", "--detailed-exitcode", *small], "again: nothing left to do (exit 0)"),
                _run(c, ["apply", "--auto-approve", *small], "again: idempotent, sends nothing"),
                _run(c, ["ledger", "verify"], "the hash chain is intact"),
                _run(
                    c, ["ledger", "show", "--kind", "delete", "--tail", "4"], "the audit trail (the last 4)"
                ),
            ]
    sent_again = len(world.delete_log) - deletes_after_first
    c.out.print(
        f"\n[bold]Done.[/bold] The emulator received {plural(deletes_after_first, 'delete request')} on the first "
        f"apply and {sent_again} on the second; deletes on a pipeline that was not paused: "
        f"{len(world.violations)}."
    )
    c.out.print(f"The RUNNING pipelines were {fleet}.")
    expected = [0, 2, 0, 0, 0, 0, 0]
    if keep:
        c.out.print(f"Kept {tmp}: its manifests and ledger, to look at (remove it when done).")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        c.out.print(f"Removed {tmp} (`reconcile demo --keep` leaves it, to look at the ledger).")
    if codes != expected or sent_again or world.violations:
        raise ReconcilerError(f"the demo did not go as expected (exit codes {codes})")
