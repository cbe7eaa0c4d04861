"""The plan benchmark: `reconcile plan` against its floor, side by side in one run.

    python tests/bench/plan.py [--runs N] [--no-breakdown] [--shape separate|shared|both]

Workload: 20 manifests of 2 stages x 5,000 assets x 2,000 points and one of
200,000 assets x 50 points (410M declared cells, ~302k IDs in ID files), and a
301-record ledger (7 MB). Two shapes of it (default: both):

- `separate`: each of the 20 manifests on its own pipeline;
- `shared`: the 20 manifests on 4 pipelines, 5 on each pipeline's two stages (weekly
  fixes of the same pipeline and stage: `build_plan`'s shared-stage path), each with
  its own farm's assets, so the plan is the same cells.

Two whole processes, best of N each, interleaved:

- the floor, `floor_plan.py`: reads the same ID files and reads and hash-verifies
  the same ledger, importing nothing beyond `json` and `hashlib`;
- `reconcile plan manifests --ledger applied-ledger.jsonl --format json`.

Targets: reconcile <= 3x the floor (goal 2x), peak RSS <= 250 MB, the exact
pending count. Then an in-process breakdown (a fresh interpreter) shows where the
time goes. Exits 1 when a target or the count is missed. Timings are never asserts
in tests (STYLE).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.ledger import GENESIS, canonical, record_hash

HERE = Path(__file__).resolve().parent

RATIO_TARGET = 3.0
RATIO_GOAL = 2.0
PLAN_RSS_TARGET_MB = 250
PLAN_PENDING = 195_025_000


def _manifest(name: str, pipeline: str, stages: list[str], assets_file: str, points: str) -> str:
    return (
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\n"
        f"metadata:\n  name: {name}\nspec:\n  orgId: o1\n  pipelineId: {pipeline}\n"
        f"  stageInstanceNames: [{', '.join(stages)}]\n"
        f"  assetIdsFile: {assets_file}\n  {points}\n"
    )


def _pipe(m: int, shape: str) -> str:
    return f"pipe{m % 4:02d}" if shape == "shared" else f"pipe{m:02d}"


def write_plan_workload(root: Path, shape: str = "separate") -> Path:
    """20 manifests of 2 x 5,000 x 2,000, one of 200,000 x 50, and a 301-record ledger."""
    mdir = root / "manifests"
    (mdir / "ids").mkdir(parents=True)
    points = [f"P{i:05d}.value" for i in range(2000)]
    (mdir / "ids" / "points.txt").write_text("\n".join(points) + "\n")
    farms: list[list[str]] = []
    for m in range(20):
        assets = [f"F{m:02d}A{i:05d}" for i in range(5000)]
        farms.append(assets)
        (mdir / "ids" / f"farm-{m:02d}.txt").write_text("\n".join(assets) + "\n")
        (mdir / f"m{m:02d}.yaml").write_text(
            _manifest(
                f"fix-{m:02d}",
                _pipe(m, shape),
                ["stage_a", "stage_b"],
                f"ids/farm-{m:02d}.txt",
                "pointIdsFile: ids/points.txt",
            )
        )
    fleet = [f"FLEET{i:06d}" for i in range(200_000)]
    fleet_points = [f"FP{i:02d}" for i in range(50)]
    (mdir / "ids" / "fleet.txt").write_text("\n".join(fleet) + "\n")
    (mdir / "fleet.yaml").write_text(
        _manifest(
            "fleet-reset", "pipefleet", ["counter"], "ids/fleet.txt", f"pointIds: [{', '.join(fleet_points)}]"
        )
    )
    batches: list[tuple[str, str, str, list[str], list[str]]] = []
    for m in range(10):
        for stage in ("stage_a", "stage_b"):
            for b in range(0, 5000, 1000):
                batches.append((f"fix-{m:02d}", _pipe(m, shape), stage, farms[m][b : b + 1000], points))
    batches.append(("fix-10", _pipe(10, shape), "stage_a", farms[10][:2500], points))
    for b in range(200):
        pts = fleet_points if b < 199 else fleet_points[:25]
        batches.append(("fleet-reset", "pipefleet", "counter", fleet[b * 1000 : (b + 1) * 1000], pts))
    ledger = root / "applied-ledger.jsonl"
    prev = GENESIS
    with ledger.open("wb") as fh:
        for seq, (name, pipe, stage, assets, pts) in enumerate(batches, start=1):
            rec = {
                "v": 1,
                "seq": seq,
                "kind": "delete",
                "at": "2026-11-27T10:00:00.000Z",
                "manifest": name,
                "orgId": "o1",
                "pipelineId": pipe,
                "stageInstanceName": stage,
                "assetIds": assets,
                "pointIds": pts,
                "actor": {"user": "bench"},
                "prev": prev,
            }
            rec["hash"] = prev = record_hash(rec)
            fh.write(canonical(rec) + b"\n")
    return root


# An installed package has its bytecode cached; PYTHONDONTWRITEBYTECODE (set in some
# dev shells) would make every run compile reconciler from source (~50 ms).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: list[str], cwd: Path) -> tuple[float, float, bytes]:
    """One whole process: (wall seconds, its own peak RSS in MB, stdout); raises if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=_ENV, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode()}")
        return wall, usage.ru_maxrss / 1024, out.read()


def bench_plan(args: argparse.Namespace) -> int:
    shapes = ("separate", "shared") if args.shape == "both" else (args.shape,)
    return max(bench_shape(args, shape) for shape in shapes)


def bench_shape(args: argparse.Namespace, shape: str) -> int:
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
        root = write_plan_workload(Path(tmp), shape)
        id_files = sorted(str(p.relative_to(root)) for p in (root / "manifests" / "ids").glob("*.txt"))
        floor_cmd = [sys.executable, str(HERE / "floor_plan.py"), "applied-ledger.jsonl", *id_files]
        plan_cmd = [
            sys.executable,
            "-m",
            "reconciler",
            "plan",
            "manifests",
            "--ledger",
            "applied-ledger.jsonl",
            "--format",
            "json",
        ]
        floor_walls, plan_walls = [], []
        floor_rss = plan_rss = 0.0
        out = b""
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            wall, floor_rss, _ = _run(floor_cmd, root)
            floor_walls.append(wall)
            wall, plan_rss, out = _run(plan_cmd, root)
            plan_walls.append(wall)
        summary = json.loads(out)["summary"]
        steps = _breakdown(root) if args.breakdown else []
    floor, best = min(floor_walls), min(plan_walls)
    ratio = best / floor
    ok = ratio <= RATIO_TARGET and plan_rss <= PLAN_RSS_TARGET_MB and summary["pendingCells"] == PLAN_PENDING
    where = (
        "20 manifests on 4 pipelines' stages" if shape == "shared" else "each manifest on its own pipeline"
    )
    print(
        f"plan benchmark ({shape}: {where}): 410,000,000 declared cells, 301 ledger records, {os.cpu_count()} cores"
    )
    print(f"  floor   best {floor:.3f} s of {args.runs} ({_all(floor_walls)}); peak RSS {floor_rss:.0f} MB")
    print(f"  plan    best {best:.3f} s of {args.runs} ({_all(plan_walls)}); peak RSS {plan_rss:.0f} MB")
    print(
        f"  ratio   {ratio:.3f}x   target <= {RATIO_TARGET}x (goal {RATIO_GOAL}x); "
        f"RSS target <= {PLAN_RSS_TARGET_MB} MB"
    )
    print(
        f"  pendingCells {summary['pendingCells']:,} (expected {PLAN_PENDING:,}), "
        f"requests {summary['requests']}, appliedCells {summary['appliedCells']:,}"
    )
    if steps:
        print("  in-process breakdown (one fresh interpreter):")
        for name, seconds in steps:
            print(f"    {name:<34} {seconds:.3f} s")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def _all(walls: list[float]) -> str:
    return "all: " + ", ".join(f"{w:.3f}" for w in walls)


_BREAKDOWN = """
import gc, json, sys, time
gc.set_threshold(100_000, 10, 10)  # as `reconcile` sets it (reconciler.cli._app.main)
t0 = time.perf_counter()
import reconciler.cli  # what `reconcile plan --format json` imports: the app, then in the
import typer._adapters  # command its option parsing (typer 0.29 builds pydantic adapters)
from reconciler import ledger, manifests, operations
from reconciler.plan import file as planfile
from reconciler.plan import diff
from reconciler.plan import Options, build_plan
t1 = time.perf_counter()
loaded = manifests.load_or_raise(["manifests"])
t2 = time.perf_counter()
led = ledger.read("applied-ledger.jsonl")
t3 = time.perf_counter()
d = diff(loaded.manifests, led)
t4 = time.perf_counter()
p = build_plan(d, Options(), manifest_paths=["manifests"])
t5 = time.perf_counter()
text = planfile.dumps(p)
t6 = time.perf_counter()
print(json.dumps([
    ["imports (typer, pydantic, core)", t1 - t0],
    ["load manifests and ID files", t2 - t1],
    ["read and verify the ledger", t3 - t2],
    ["diff", t4 - t3],
    ["build_plan", t5 - t4],
    ["render JSON (planfile.dumps)", t6 - t5],
]))
"""


def _breakdown(root: Path) -> list[tuple[str, float]]:
    """Where `reconcile plan`'s time goes, step by step, in a fresh interpreter."""
    _, _, out = _run([sys.executable, "-c", _BREAKDOWN], root)
    return [(name, float(seconds)) for name, seconds in json.loads(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/bench/plan.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each process (best is kept)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    parser.add_argument("--shape", choices=("separate", "shared", "both"), default="both")
    return bench_plan(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
