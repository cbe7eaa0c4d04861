"""A ledger for years (issue 18): the issue-12 workload as real git history, v2 against v3.

    python tests/bench/ledger_layout.py [--years 1 3] [--runs 3] [--keep DIR]

The workload of `ledger_year.py`, for one year and for three: every week a fleet-wide
reset (a new manifest over the same 200,000 assets x 50 points, 200 requests of 1,000
assets with concurrency 4, between a pause and a resume), plus 500 small fixes a year.

- v3 (what apply writes now): the records are appended by `LedgerWriter` itself, one
  apply after another, and after each apply the ledger's files (`ledger.ledger_files`,
  what the git code commits) are committed: one commit per apply, fed to
  `git fast-import`, then `git gc`.
- v2 (today's baseline, one file): the same records as v2 lines, committed once a week
  (the fleet reset and that week's fixes; fewer versions than per apply, which only
  favours the baseline), then `git gc`.

Figures, each beside its target (exit 1 when one is missed):
- the largest file in any commit's tree: <= 10 MB;
- the repository's packed size after `git gc`: v3 <= 0.5 x v2 of the same history;
- `reconcile plan manifests --format json` on the v3 ledger: <= 2x its floor, the floor
  being `floor_plan.py` (reads the manifests' ID files; reads and hash-verifies every
  record of every segment and every ID list file), best of N, interleaved; and the plan
  must be exactly empty. Judged on CPU time (user + system, from getrusage): on a shared
  2-core VM the wall ratio of the same code moved between 1.5x and 2.6x from run to
  run, while CPU time is what the code decides; both are printed;
- a CI apply of one 3-cell manifest from a fresh `git clone --depth 1` of a bare origin
  holding a `reconcile init` scaffold and the ledger, anchored by an earlier apply (as
  every repository is after its first), against `reconcile emulator`:
  <= 2x the same on a repository holding one week of ledger, <= 300 MB peak RSS (best of
  N, each run on its own copy of the origin; the clone's own time printed beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_year import _MEASURE, ACTOR, BATCH, CONCURRENCY, FIXES, FLEET_ASSETS, RESETS, Year, _manifest
from scaffold import scaffold_origin

from reconciler import ledger
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

HERE = Path(__file__).resolve().parent
MAX_FILE_MB, PACK_RATIO, PLAN_RATIO, CI_RATIO, CI_RSS_MB = 10.0, 0.5, 2.0, 2.0, 300
LEDGER = "applied-ledger.jsonl"
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
Apply = tuple[int, list[dict[str, Any]]]  # (week index over all years, its records)


# --- the history ------------------------------------------------------------------------


def _names(y: int) -> tuple[str, str]:
    """Manifest name prefixes of year `y` (year 0 keeps `ledger_year.py`'s names)."""
    return ("fleet-reset-w", "fix-") if y == 0 else (f"fleet-reset-y{y}w", f"fix-y{y}-")


def applies(year: Year, years: int) -> Iterator[Apply]:
    """Every apply of `years` years in order: each week's reset, then that week's fixes."""
    for y in range(years):
        reset, fix = _names(y)
        fixes = iter(year.fixes)
        for week in range(RESETS):
            day = f"{2026 + y}-{1 + week * 12 // RESETS:02d}-{1 + week % 4 * 7:02d}"
            yield y * RESETS + week, list(_reset(year, f"{reset}{week:02d}", f"{day}T10:00:00.000Z"))
            for _ in range(FIXES // RESETS + (1 if week < FIXES % RESETS else 0)):
                name, pipe, stage, assets, points = next(fixes)
                cells = _cells(fix + name[4:], pipe, stage, assets, points)
                yield (
                    y * RESETS + week,
                    [
                        {"kind": "intent", "at": f"{day}T11:00:00.000Z", **cells},
                        {"kind": "delete", "at": f"{day}T11:00:01.000Z", **cells},
                    ],
                )


def _reset(year: Year, name: str, at: str) -> Iterator[dict[str, Any]]:
    pipe = {"orgId": "o15589291683811", "pipelineId": "pipefleet"}
    yield {"kind": "pause", "at": at, **pipe, "executionMode": 1, "kafkaRate": 5000}
    batches = [year.assets[b : b + BATCH] for b in range(0, FLEET_ASSETS, BATCH)]
    cells = [_cells(name, "pipefleet", "counter", b, year.points) for b in batches]
    for i in range(len(cells) + CONCURRENCY):  # concurrency 4: an intent, later its delete
        if i < len(cells):
            yield {"kind": "intent", "at": at, **cells[i]}
        if i >= CONCURRENCY:
            yield {"kind": "delete", "at": at, **cells[i - CONCURRENCY]}
    yield {"kind": "resume", "at": at, **pipe}


def _cells(name: str, pipe: str, stage: str, assets: list[str], points: list[str]) -> dict[str, Any]:
    return {
        "manifest": name,
        "orgId": "o15589291683811",
        "pipelineId": pipe,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
    }


def _cell_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    return (rec["manifest"], rec["stageInstanceName"], rec["assetIds"][0])


def write_manifests(year: Year, root: Path, years: int) -> None:
    mdir = root / "manifests"
    (mdir / "ids").mkdir(parents=True)
    (mdir / "ids" / "fleet.txt").write_text("\n".join(year.assets) + "\n")
    (mdir / "ids" / "fleet-points.txt").write_text("\n".join(year.points) + "\n")
    for y in range(years):
        reset, fix = _names(y)
        for week in range(RESETS):
            (mdir / f"{reset}{week:02d}.yaml").write_text(
                _manifest(f"{reset}{week:02d}", "pipefleet", "counter")
                + "  assetIdsFile: ids/fleet.txt\n  pointIdsFile: ids/fleet-points.txt\n"
            )
        for f in range(0, FIXES, 50):
            docs = [
                _manifest(fix + name[4:], pipe, stage)
                + f"  assetIds: {json.dumps(assets)}\n  pointIds: {json.dumps(points)}\n"
                for name, pipe, stage, assets, points in year.fixes[f : f + 50]
            ]
            (mdir / f"{fix}{f // 50:02d}.yaml").write_text("---\n".join(docs))


# --- committing -------------------------------------------------------------------------


class FastImport:
    """One commit per call to `commit`, through `git fast-import` into a bare repository."""

    def __init__(self, repo: Path) -> None:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
        self.repo = repo
        self.proc = subprocess.Popen(
            ["git", "-C", str(repo), "fast-import", "--quiet", "--depth=50"], stdin=subprocess.PIPE
        )
        assert self.proc.stdin is not None
        self.out: IO[bytes] = self.proc.stdin
        self.n = 0
        self.largest = 0

    def commit(self, changed: dict[str, bytes], message: str) -> None:
        self.n += 1
        msg = message.encode()
        self.out.write(b"commit refs/heads/main\n")
        self.out.write(b"committer bench <bench@example.invalid> %d +0000\n" % (1767225600 + self.n * 600))
        self.out.write(b"data %d\n%s\n" % (len(msg), msg))
        for path, data in changed.items():
            self.out.write(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)))
            self.out.write(data)
            self.out.write(b"\n")
            self.largest = max(self.largest, len(data))

    def finish(self) -> int:
        """Close the stream, `git gc`, and give the packed size in bytes."""
        self.out.close()
        if self.proc.wait() != 0:
            raise SystemExit("git fast-import failed")
        subprocess.run(["git", "-C", str(self.repo), "gc", "-q"], check=True)
        return sum(p.stat().st_size for p in (self.repo / "objects" / "pack").glob("*.pack"))


def build_v3(year: Year, years: int, work: Path, repo: FastImport, weeks: int | None = None) -> int:
    """Append every apply with the real writer; commit the ledger's files after each
    (`weeks`: only the applies of that many first weeks)."""
    path = work / LEDGER
    path.touch()  # as `reconcile init` leaves it
    published: dict[str, bytes] = {}
    intents: dict[tuple[str, str, str], ledger.Record] = {}
    n = 0
    with ledger.LedgerWriter(ledger.read(path), sync_each=False) as w:
        for week, records in applies(year, years):
            if weeks is not None and week >= weeks:
                break
            for rec in records:
                at, kind = rec["at"], rec["kind"]
                fields = {k: v for k, v in rec.items() if k not in ("at", "kind")}
                if kind == "delete":
                    w.append_delete(intents.pop(_cell_key(rec)), {"actor": ACTOR}, at=at)
                else:
                    made = w.append(kind, {**fields, "actor": ACTOR}, at=at)
                    if kind == "intent":
                        intents[_cell_key(rec)] = made
                n += 1
            files = ledger.ledger_files(path)
            repo.commit({k: v for k, v in files.items() if published.get(k) != v}, f"apply, week {week}")
            published = files
            w.new_run()  # the next apply's records: a segment may be sealed before them
        w.sync()
    return n


def build_v2(year: Year, years: int, work: Path, repo: FastImport) -> int:
    """The same records as today's v2 lines in one file, committed once a week."""
    path = work / LEDGER
    prev, seq = ledger.GENESIS, 0
    intents: dict[tuple[str, str, str], int] = {}
    last_week = 0
    with path.open("wb") as fh:
        for week, records in applies(year, years):
            if week != last_week:
                fh.flush()
                repo.commit({LEDGER: path.read_bytes()}, f"week {last_week}")
                last_week = week
            for rec in records:
                seq += 1
                full: dict[str, Any] = {"v": 2, "seq": seq, **rec, "actor": ACTOR}
                if rec["kind"] == "delete":
                    full["intent"] = intents.pop(_cell_key(rec))
                    del full["assetIds"], full["pointIds"]
                elif rec["kind"] == "intent":
                    intents[_cell_key(rec)] = seq
                    full["assetIds"], full["pointIds"] = ",".join(rec["assetIds"]), ",".join(rec["pointIds"])
                full["prev"] = prev
                full["hash"] = prev = ledger.record_hash(full)
                fh.write(ledger.canonical(full) + b"\n")
    repo.commit({LEDGER: path.read_bytes()}, f"week {last_week}")
    return seq


# --- measuring --------------------------------------------------------------------------


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last process `_run` ran


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """One whole process: (wall seconds, its own peak RSS in MB, stdout); raises if it fails.

    Measured by a small wrapper process (`ledger_year._MEASURE`): a child forked from this
    benchmark, which holds the year's records, would count this process's memory as its own
    peak RSS (the RSS before its exec)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "measure.json"
        subprocess.run(
            [sys.executable, "-c", _MEASURE, str(report), *cmd], cwd=cwd, env=env or _ENV, check=True
        )
        got = json.loads(report.read_text())
    if got["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{got['err']}")
    LAST_CPU[0] = got["cpu"]
    return got["wall"], got["rss_mb"], got["out"].encode()


def plan_against_floor(work: Path, runs: int) -> dict[str, Any]:
    ids = ["manifests/ids/fleet.txt", "manifests/ids/fleet-points.txt"]
    floor_cmd = [sys.executable, str(HERE / "floor_plan.py"), LEDGER, *ids]
    plan_cmd = [
        sys.executable,
        "-m",
        "reconciler",
        "plan",
        "manifests",
        "--ledger",
        LEDGER,
        "--format",
        "json",
    ]
    floors, plans, floor_cpu, plan_cpu = [], [], [], []
    out, rss = b"", 0.0
    for _ in range(runs):  # interleaved, so both see the same machine load
        floors.append(_run(floor_cmd, work)[0])
        floor_cpu.append(LAST_CPU[0])
        wall, rss, out = _run(plan_cmd, work)
        plans.append(wall)
        plan_cpu.append(LAST_CPU[0])
    return {
        "floor": min(floors),
        "plan": min(plans),
        "floor_cpu": min(floor_cpu),
        "plan_cpu": min(plan_cpu),
        "rss": rss,
        "summary": json.loads(out)["summary"],
    }


IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
CI_MANIFEST = (
    "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata:\n  name: small-fix\nspec:\n"
    "  orgId: o1\n  pipelineId: p1\n  stageInstanceNames: [s1]\n  assetIds: [A1, A2, A3]\n  pointIds: [P1]\n"
)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**_ENV, **IDENTITY}, check=True, capture_output=True)


def ci_origin(files: dict[str, bytes], root: Path, env: dict[str, str]) -> Path:
    """A bare origin as a repository in use is: a `reconcile init` scaffold (the ledger in
    git) with this ledger's files, one apply done since (of a 3-cell manifest: it made the
    anchor, which a repository gets once, on its first apply), then one more 3-cell manifest
    merged, which the measured applies apply."""

    def fill(seed: Path) -> None:
        (seed / "manifests" / "earlier.yaml").write_text(CI_MANIFEST.replace("small-fix", "earlier-fix"))
        ledger.write_files(seed / LEDGER, files)

    bare = scaffold_origin(root, fill)
    runner = root / "first-apply"
    _git(root, "clone", "-q", f"file://{bare}", str(runner))
    _run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], runner, env)
    _git(runner, "fetch", "-q", "origin")
    _git(runner, "reset", "-q", "--hard", "origin/main")  # the ledger as the apply pushed it
    (runner / "manifests" / "small.yaml").write_text(CI_MANIFEST)
    _git(runner, "add", "manifests/small.yaml")
    _git(runner, "commit", "-qm", "small fix")
    _git(runner, "push", "-q", "origin", "HEAD:main")
    shutil.rmtree(runner)
    _git(bare, "gc", "-q")
    return bare


def ci_apply(files: dict[str, bytes], root: Path, runs: int) -> tuple[float, float, float]:
    """Best wall of `reconcile apply --auto-approve` of the 3-cell manifest in a fresh
    `git clone --depth 1` (each run on its own copy of the origin), its peak RSS, and the
    best wall of the clone itself; against `reconcile emulator`."""
    root.mkdir()
    world = root / "world.json"
    world.write_text(
        json.dumps(
            {
                "pipelines": [
                    {
                        "pipelineId": "p1",
                        "orgId": "o1",
                        "status": "PAUSED",
                        "executionMode": 1,
                        "kafkaRate": 1000,
                        "stages": {"s1": "LastRecordAppender"},
                        "fillState": True,
                    }
                ]
            }
        )
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    emulator = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", str(port), "--state", str(world)],
        env=_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **_ENV,
        "CI": "1",
        "NO_COLOR": "1",
        "ENOS_API_GATEWAY": f"http://127.0.0.1:{port}",
        "ENOS_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
    }
    best = clone_best = float("inf")
    rss = 0.0
    try:
        _wait_for(port)
        pristine = ci_origin(files, root, env)
        for n in range(runs):
            origin = root / f"origin-{n}.git"
            shutil.copytree(pristine, origin)
            runner = root / f"runner-{n}"
            start = time.perf_counter()
            _git(root, "clone", "-q", "--depth", "1", f"file://{origin}", str(runner))
            clone_best = min(clone_best, time.perf_counter() - start)
            wall, rss, _ = _run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], runner, env)
            best = min(best, wall)
            shutil.rmtree(runner)
            shutil.rmtree(origin)
    finally:
        emulator.terminate()
        emulator.wait()
    return best, rss, clone_best


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the emulator did not start")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def measure(years: int, root: Path, runs: int, year: Year, with_v2: bool = True) -> bool:
    print(
        f"\n== {years} year{'s' if years > 1 else ''}: {years * RESETS} fleet resets, {years * FIXES} fixes"
    )
    v3_work, v2_work = root / f"v3-{years}", root / f"v2-{years}"
    v3_work.mkdir()
    v2_work.mkdir()
    t = time.perf_counter()
    v3_repo = FastImport(root / f"v3-{years}.git")
    records = build_v3(year, years, v3_work, v3_repo)
    v3_pack = v3_repo.finish()
    print(
        f"  v3: {records:,} records, {v3_repo.n} commits (one per apply), built in {time.perf_counter() - t:.0f} s"
    )
    t = time.perf_counter()
    v2_pack, v2_largest = 0, 0
    if with_v2:
        v2_repo = FastImport(root / f"v2-{years}.git")
        build_v2(year, years, v2_work, v2_repo)
        v2_pack, v2_largest = v2_repo.finish(), v2_repo.largest
        print(f"  v2: {v2_repo.n} commits (one per week), built in {time.perf_counter() - t:.0f} s")
    write_manifests(year, v3_work, years)
    files = ledger.ledger_files(v3_work / LEDGER)
    plan = plan_against_floor(v3_work, runs)
    expected = years * year.declared_cells()
    exact = plan["summary"]["pendingCells"] == 0 and plan["summary"]["appliedCells"] == expected
    largest = v3_repo.largest / 1e6
    ratio = plan["plan"] / plan["floor"]
    cpu_ratio = plan["plan_cpu"] / plan["floor_cpu"]
    checks = [
        (
            "largest file in any tree",
            f"{largest:.2f} MB (v2: {v2_largest / 1e6:.1f} MB)",
            f"<= {MAX_FILE_MB:g} MB",
            largest <= MAX_FILE_MB,
        ),
        (
            "packed size after git gc",
            f"{_mb(v3_pack)} (v2: {_mb(v2_pack)}, {v3_pack / v2_pack:.3f}x)"
            if with_v2
            else f"{_mb(v3_pack)} (v2 not built: --no-v2)",
            f"<= {PACK_RATIO}x v2",
            v3_pack <= PACK_RATIO * v2_pack or not with_v2,
        ),
        (
            "plan --format json",
            f"CPU {plan['plan_cpu']:.2f} s vs {plan['floor_cpu']:.2f} s: {cpu_ratio:.2f}x "
            f"(wall {plan['plan']:.2f} s vs {plan['floor']:.2f} s: {ratio:.2f}x); RSS {plan['rss']:.0f} MB",
            f"<= {PLAN_RATIO:g}x floor",
            cpu_ratio <= PLAN_RATIO,
        ),
        ("plan exactly empty", f"{expected:,} cells applied: {exact}", "True", exact),
    ]
    print(f"  ledger files: {len(files)} ({sum(map(len, files.values())) / 1e6:.1f} MB in all)")
    for label, value, target, ok in checks:
        print(f"  {label:27} {value:58} target {target:14} {'ok' if ok else 'MISSED'}")
    week_work = root / f"week-{years}"
    week_work.mkdir()
    week_repo = FastImport(root / f"week-{years}.git")
    build_v3(year, 1, week_work, week_repo, weeks=1)
    week_repo.finish()
    week = ci_apply(ledger.ledger_files(week_work / LEDGER), root / f"ci-week-{years}", runs)
    history = ci_apply(files, root / f"ci-{years}", runs)
    ratio_ci = history[0] / week[0]
    checks.append(
        (
            "CI apply, shallow clone",
            f"{history[0]:.2f} s, RSS {history[1]:.0f} MB; one week's {week[0]:.2f} s: {ratio_ci:.2f}x",
            f"<= {CI_RATIO:g}x, <= {CI_RSS_MB} MB",
            ratio_ci <= CI_RATIO and history[1] <= CI_RSS_MB,
        )
    )
    label, value, target, ok = checks[-1]
    print(f"  {label:27} {value:58} target {target:14} {'ok' if ok else 'MISSED'}")
    print(f"  {'  (the clone before it)':27} {history[2]:.2f} s; one week's {week[2]:.2f} s")
    return all(ok for *_, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/bench/ledger_layout.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--years", type=int, nargs="+", default=[1, 3], help="histories to build")
    parser.add_argument("--runs", type=int, default=3, help="runs of plan and floor (best is kept)")
    parser.add_argument("--keep", type=Path, help="build in this (new) directory and keep it")
    parser.add_argument(
        "--no-v2", dest="with_v2", action="store_false", help="skip the v2 baseline (3 years of it: ~30 min)"
    )
    args = parser.parse_args(argv)
    year = Year()
    if args.keep:
        args.keep.mkdir(parents=True)
        ok = all([measure(n, args.keep, args.runs, year, args.with_v2) for n in args.years])
    else:
        with tempfile.TemporaryDirectory(prefix="reconcile-layout-") as tmp:
            ok = all([measure(n, Path(tmp), args.runs, year, args.with_v2) for n in args.years])
    print("\nresult:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    shutil.which("git") or sys.exit("git is needed")
    sys.exit(main())
