"""The ledger after a year (issue 12): file size, size in git, verify time, plan time and RSS.

    python tests/bench/ledger_year.py [--keep DIR] [--skip-v1-plan]

The year: 52 fleet-wide resets, each a new manifest over the same 200,000 assets x 50
points, applied in requests of 1,000 assets with --concurrency 4 (200 intents and 200
deletes, interleaved, between a pause and a resume), plus 500 small fixes (1-20 assets x
1-5 points, intent and delete each). The v1 ledger is written as the first writer did; the
current one (format v3: segments and ID lists under `<name>.d/`; labelled v3 below) is
`ledger.migrate` of it. Sizes count every file of a ledger (`ledger.ledger_files`).
For the year as real git history, v2 against v3, see `ledger_layout.py`.
Every figure is measured in a fresh subprocess (wall clock, peak RSS from
getrusage(RUSAGE_CHILDREN) of a wrapper). Targets: v2 file <= 0.5 x v1; `reconcile plan
--format json` on the v2 ledger <= 5 s and <= 1 GB RSS. Exits 1 when one is missed or the
plan is not exactly empty.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler import ledger

RESETS, FLEET_ASSETS, FLEET_POINTS, BATCH, CONCURRENCY, FIXES = 52, 200_000, 50, 1_000, 4, 500
SIZE_RATIO_TARGET, PLAN_WALL_TARGET, PLAN_RSS_TARGET_MB = 0.5, 5.0, 1024
ACTOR = {
    "user": "github-actions",
    "host": "fv-az1234-567",
    "tool": "reconciler/0.1.0",
    "gitCommit": "3f9c2a1be0d4c5f6a7b8c9d0e1f2a3b4c5d6e7f8",
    "runUrl": "https://github.com/acme/stage-state/actions/runs/12345678901",
}
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[2:], capture_output=True)\n"
    "wall = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "json.dump({'wall': wall, 'rss_mb': u.ru_maxrss / 1024, 'cpu': u.ru_utime + u.ru_stime,\n"
    "           'code': p.returncode, 'out': p.stdout.decode(), 'err': p.stderr.decode()[-2000:]},\n"
    "          open(sys.argv[1], 'w'))\n"
)


# --- the year's workload ---------------------------------------------------------


def _ids(rnd: random.Random, n: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    out: dict[str, None] = {}
    while len(out) < n:
        out["".join(rnd.choices(alphabet, k=8))] = None
    return list(out)


class Year:
    def __init__(self, seed: int = 12) -> None:
        rnd = random.Random(seed)
        self.assets = _ids(rnd, FLEET_ASSETS)
        self.points = [f"WTG.Measure{i:02d}.value" for i in range(FLEET_POINTS)]
        self.fixes = [
            (
                f"fix-{i:03d}",
                f"pipe{i % 20:02d}",
                f"stage_{i % 3}",
                rnd.sample(self.assets, rnd.randint(1, 20)),
                rnd.sample(self.points, rnd.randint(1, 5)),
            )
            for i in range(FIXES)
        ]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of the year in order, as an apply would append them."""
        fixes = iter(self.fixes)
        for week in range(RESETS):
            day = f"2026-{1 + week * 12 // RESETS:02d}-{1 + week % 4 * 7:02d}"
            yield from self._reset(week, day)
            for _ in range(FIXES // RESETS + (1 if week < FIXES % RESETS else 0)):
                name, pipe, stage, assets, points = next(fixes)
                cells = _cells(name, pipe, stage, assets, points)
                yield {"kind": "intent", "at": f"{day}T11:00:00.000Z", **cells}
                yield {"kind": "delete", "at": f"{day}T11:00:01.000Z", **cells}

    def _reset(self, week: int, day: str) -> Iterator[dict[str, Any]]:
        pipe = {"orgId": "o15589291683811", "pipelineId": "pipefleet"}
        at = f"{day}T10:00:00.000Z"
        yield {"kind": "pause", "at": at, **pipe, "executionMode": 1, "kafkaRate": 5000}
        batches = [self.assets[b : b + BATCH] for b in range(0, FLEET_ASSETS, BATCH)]
        cells = [_cells(f"fleet-reset-w{week:02d}", "pipefleet", "counter", b, self.points) for b in batches]
        for i in range(len(cells) + CONCURRENCY):  # concurrency 4: an intent, later its delete
            if i < len(cells):
                yield {"kind": "intent", "at": at, **cells[i]}
            if i >= CONCURRENCY:
                yield {"kind": "delete", "at": at, **cells[i - CONCURRENCY]}
        yield {"kind": "resume", "at": at, **pipe}

    def declared_cells(self) -> int:
        return RESETS * FLEET_ASSETS * FLEET_POINTS + sum(len(f[3]) * len(f[4]) for f in self.fixes)


def _cells(name: str, pipe: str, stage: str, assets: list[str], points: list[str]) -> dict[str, Any]:
    return {
        "manifest": name,
        "orgId": "o15589291683811",
        "pipelineId": pipe,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
    }


def write_v1(year: Year, path: Path) -> int:
    prev, n = ledger.GENESIS, 0
    with path.open("wb") as fh:
        for n, rec in enumerate(year.records(), start=1):
            full = {"v": 1, "seq": n, **rec, "actor": ACTOR, "prev": prev}
            full["hash"] = prev = ledger.record_hash(full)
            fh.write(ledger.canonical(full) + b"\n")
    return n


def write_manifests(year: Year, root: Path) -> Path:
    mdir = root / "manifests"
    (mdir / "ids").mkdir(parents=True)
    (mdir / "ids" / "fleet.txt").write_text("\n".join(year.assets) + "\n")
    (mdir / "ids" / "fleet-points.txt").write_text("\n".join(year.points) + "\n")
    for week in range(RESETS):
        (mdir / f"fleet-reset-w{week:02d}.yaml").write_text(
            _manifest(f"fleet-reset-w{week:02d}", "pipefleet", "counter")
            + "  assetIdsFile: ids/fleet.txt\n  pointIdsFile: ids/fleet-points.txt\n"
        )
    for f in range(0, FIXES, 50):
        docs = [
            _manifest(name, pipe, stage)
            + f"  assetIds: {json.dumps(assets)}\n  pointIds: {json.dumps(points)}\n"
            for name, pipe, stage, assets, points in year.fixes[f : f + 50]
        ]
        (mdir / f"fixes-{f // 50:02d}.yaml").write_text("---\n".join(docs))
    return mdir


def _manifest(name: str, pipe: str, stage: str) -> str:
    return (
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\n"
        f"metadata:\n  name: {name}\nspec:\n  orgId: o15589291683811\n  pipelineId: {pipe}\n"
        f"  stageInstanceNames: [{stage}]\n"
    )


# --- measuring -------------------------------------------------------------------


def measure(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Wall clock and peak RSS of `cmd`, from a wrapper process that only runs it."""
    result = cwd / ".measure.json"
    subprocess.run([sys.executable, "-c", _MEASURE, str(result), *cmd], cwd=cwd, check=True)
    data: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    if data["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({data['code']}):\n{data['err']}")
    return data


def git_packed_size(path: Path, work: Path) -> int:
    repo = work / f"git-{path.name}"
    repo.mkdir()
    files = ledger.ledger_files(path)
    ledger.write_files(
        repo / "applied-ledger.jsonl",
        {"applied-ledger.jsonl" + k[len(path.name) :]: v for k, v in files.items()},
    )
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ledger"], check=True)
    subprocess.run([*git, "gc", "-q"], check=True)
    size = sum(p.stat().st_size for p in (repo / ".git" / "objects" / "pack").glob("*.pack"))
    shutil.rmtree(repo)
    return size


_READ = "import sys; from reconciler import ledger; ledger.read(sys.argv[1])"
_LOAD = "from reconciler import manifests; manifests.load_or_raise(['manifests'])"


def plan_cmd(ledger_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reconciler",
        "plan",
        "manifests",
        "--format",
        "json",
        "--ledger",
        str(ledger_file),
    ]


def verify_cmd(ledger_file: Path) -> list[str]:
    return [sys.executable, "-m", "reconciler", "ledger", "verify", "--ledger", str(ledger_file)]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def run(root: Path, skip_v1_plan: bool) -> bool:
    year = Year()
    v1, v2 = root / "v1.jsonl", root / "v2.jsonl"
    t = time.perf_counter()
    n = write_v1(year, v1)
    write_manifests(year, root)
    print(f"built {n:,} records in {time.perf_counter() - t:.1f} s")
    shutil.copy(v1, v2)
    t = time.perf_counter()
    migrated = ledger.migrate(v2)
    (root / "v2.jsonl.v1.bak").unlink()
    print(f"ledger.migrate v1 -> v3: {time.perf_counter() - t:.1f} s, {migrated.referenced:,} deletes refer")
    sizes = {name: sum(map(len, ledger.ledger_files(p).values())) for name, p in (("v1", v1), ("v2", v2))}
    packed = {name: git_packed_size(p, root) for name, p in (("v1", v1), ("v2", v2))}
    verify = {name: measure(verify_cmd(p), root) for name, p in (("v1", v1), ("v2", v2))}
    reads = {
        name: measure([sys.executable, "-c", _READ, str(p)], root) for name, p in (("v1", v1), ("v2", v2))
    }
    load = {"v1": measure([sys.executable, "-c", _LOAD], root)}
    load["v2"] = load["v1"]
    plans = {"v2": measure(plan_cmd(v2), root)}
    if not skip_v1_plan:
        plans["v1"] = measure(plan_cmd(v1), root)
    expected = year.declared_cells()
    summaries = [json.loads(p["out"])["summary"] for p in plans.values()]
    exact = all(s["pendingCells"] == 0 and s["appliedCells"] == expected for s in summaries)
    ratio = sizes["v2"] / sizes["v1"]
    plan2 = plans["v2"]
    ok = (
        ratio <= SIZE_RATIO_TARGET
        and plan2["wall"] <= PLAN_WALL_TARGET
        and plan2["rss_mb"] <= PLAN_RSS_TARGET_MB
        and exact
    )
    print(f"\nledger after a year: {n:,} records, {expected:,} cells declared and applied")
    print(f"  {'':22}{'v1':>14}{'v3':>14}{'v3/v1':>9}   target")
    print(
        f"  {'file size':22}{_mb(sizes['v1']):>14}{_mb(sizes['v2']):>14}{ratio:>9.2f}   "
        f"v3/v1 <= {SIZE_RATIO_TARGET}"
    )
    print(
        f"  {'git pack after gc':22}{_mb(packed['v1']):>14}{_mb(packed['v2']):>14}"
        f"{packed['v2'] / packed['v1']:>9.2f}"
    )
    _row("ledger verify wall", verify, "wall", "s", "")
    _row("ledger verify RSS", verify, "rss_mb", "MB", "")
    _row("plan --format json", plans, "wall", "s", f"v3 <= {PLAN_WALL_TARGET} s")
    _row("plan peak RSS", plans, "rss_mb", "MB", f"v3 <= {PLAN_RSS_TARGET_MB} MB")
    print("  of which, alone:")
    _row("  ledger read+verify", reads, "wall", "s", "")
    _row("  manifests load", load, "wall", "s", "")
    print(f"  plan exactly empty, all {expected:,} cells applied: {exact}")
    print("  result:", "PASS" if ok else "FAIL")
    return ok


def _row(label: str, figures: dict[str, dict[str, Any]], key: str, unit: str, target: str) -> None:
    cells = [f"{figures[v][key]:,.2f} {unit}" if v in figures else "-" for v in ("v1", "v2")]
    ratio = f"{figures['v2'][key] / figures['v1'][key]:.2f}" if "v1" in figures else "-"
    print(f"  {label:22}{cells[0]:>14}{cells[1]:>14}{ratio:>9}   {target}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", type=Path, help="build in this (new) directory and keep it")
    parser.add_argument("--skip-v1-plan", action="store_true", help="plan only against the v2 ledger")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True)
        return 0 if run(args.keep, args.skip_v1_plan) else 1
    with tempfile.TemporaryDirectory(prefix="reconcile-ledger-year-") as tmp:
        return 0 if run(Path(tmp), args.skip_v1_plan) else 1


if __name__ == "__main__":
    sys.exit(main())
