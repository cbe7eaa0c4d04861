"""Benchmarks with stated targets (never timing asserts in tests).

    python -m reconciler.bench plan    # 410M declared cells; target <= 1.0 s, <= 250 MB
    python -m reconciler.bench apply   # 400 requests at 50 ms, --concurrency 8; target <= 1.25x ideal

Each prints its figures and exits 1 if a target or an exact count is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.ledger import GENESIS, canonical, record_hash

PLAN_WALL_TARGET = 1.0
PLAN_RSS_TARGET_MB = 250
PLAN_PENDING = 195_025_000


def _manifest(name: str, pipeline: str, stages: list[str], assets_file: str, points: str) -> str:
    return (
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\n"
        f"metadata:\n  name: {name}\nspec:\n  orgId: o1\n  pipelineId: {pipeline}\n"
        f"  stageInstanceNames: [{', '.join(stages)}]\n"
        f"  assetIdsFile: {assets_file}\n  {points}\n"
    )


def write_plan_workload(root: Path) -> Path:
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
                f"pipe{m:02d}",
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
                batches.append((f"fix-{m:02d}", f"pipe{m:02d}", stage, farms[m][b : b + 1000], points))
    batches.append(("fix-10", "pipe10", "stage_a", farms[10][:2500], points))
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


def bench_plan(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
        root = write_plan_workload(Path(tmp))
        cmd = [
            sys.executable,
            "-m",
            "reconciler",
            "plan",
            "manifests",
            "--format",
            "json",
            "--ledger",
            "applied-ledger.jsonl",
        ]
        walls = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=root, capture_output=True, check=False)
            walls.append(time.perf_counter() - start)
            if proc.returncode != 0:
                print(proc.stderr.decode(), file=sys.stderr)
                return 1
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads(proc.stdout)["summary"]
    best = min(walls)
    ok = best <= PLAN_WALL_TARGET and rss_mb <= PLAN_RSS_TARGET_MB and summary["pendingCells"] == PLAN_PENDING
    print(f"plan benchmark: 410,000,000 declared cells, 301 ledger records, {os.cpu_count()} cores")
    print(
        f"  wall     best {best:.3f} s of {args.runs} (all: {', '.join(f'{w:.3f}' for w in walls)})"
        f"   target <= {PLAN_WALL_TARGET} s"
    )
    print(f"  peak RSS {rss_mb:.0f} MB   target <= {PLAN_RSS_TARGET_MB} MB")
    print(
        f"  pendingCells {summary['pendingCells']:,} (expected {PLAN_PENDING:,}), "
        f"requests {summary['requests']}, appliedCells {summary['appliedCells']:,}"
    )
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="which", required=True)
    p = sub.add_parser("plan", help="plan over 410M declared cells")
    p.add_argument("--runs", type=int, default=3)
    a = sub.add_parser("apply", help="400 requests against a 50 ms emulator")
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args(argv)
    if args.which == "plan":
        return bench_plan(args)
    from reconciler.bench_apply import bench_apply

    return int(bench_apply(args))


if __name__ == "__main__":
    sys.exit(main())
