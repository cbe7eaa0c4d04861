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

Targets: reconcile <= 3x the floor in CPU (user + system; goal 2x), peak RSS <= 250 MB,
the exact pending count. Each process is measured by a small wrapper process (CPU, wall
and peak RSS); CPU is judged, since walls on this shared VM move by several times. Then
an in-process breakdown (a fresh interpreter) shows where the CPU goes. Exits 1 when a
target or the count is missed. Timings are never asserts in tests (STYLE).

Measured 2026-12-07 (`python tests/bench/plan.py --runs 3`, this 2-core VM at load
average 18-21 while six other sessions ran their test suites; the "before" is main at
3dc1473, run with this script as `PYTHONPATH=<checkout of 3dc1473> python
tests/bench/plan.py --runs 3`):

| shape | floor CPU | plan CPU before | plan CPU after | ratio before -> after | peak RSS before -> after |
| --- | --- | --- | --- | --- | --- |
| separate | 0.29-0.30 s | 1.567 s | 1.136 s | 5.49x -> 3.81x | 252 -> 152 MB |
| shared | 0.29-0.30 s | 2.166 s | 1.266 s | 7.42x -> 4.21x | 252 -> 151 MB |

After: imports 0.41 s, manifests and ID files 0.21 s, ledger 0.14 s, diff 0.03 s,
build 0.01 s, JSON 0.39 s (of which ~0.15 s joining and decoding the 60 MB for the
breakdown's `dumps`; the CLI writes the bytes as they are). Before, JSON took 1.04-1.08 s:
`json.dumps` of every action line. Under that load the hard target (3x) is not met;
what stands between it and 2x is mostly fixed cost: importing typer and pydantic and
typer 0.29 building a pydantic adapter per option (~0.4 s here, ~0.1 s on a quiet VM).

Measured 2026-12-07 21:48 (`python tests/bench/plan.py --runs 5`, main at b993174, load
average 3.5-4.2 while other sessions ran their suites; "before" is ff6174e, run in the same
minute as `PYTHONPATH=<export of ff6174e> python tests/bench/plan.py --runs 5 --no-breakdown`):

| shape | floor CPU | plan CPU before -> after | ratio before -> after | peak RSS before -> after |
| --- | --- | --- | --- | --- |
| separate | 0.129-0.135 s | 0.576 -> 0.492 s | 4.26x -> 3.82x | 152 -> 99 MB |
| shared | 0.129-0.135 s | 0.698 -> 0.506 s | 5.17x -> 3.94x | 153 -> 99 MB |

(A run ten minutes earlier, load 3.9-5.3, `--runs 3`: 4.10x -> 3.61x and 5.10x -> 3.81x.)
Breakdown after (separate): imports 0.16 s, manifests and ID files 0.08 s, ledger 0.06 s,
diff 0.02 s, build 0.005 s, JSON encoded, hashed and written as the CLI does 0.08 s (the
step used to time `dumps`, whose join and decode of 60 MB the CLI never does). What
changed: the shared shape's plan spent 0.11 s in `recleared` diffing each pending key
against every other manifest's deletes on its stage (other farms: nothing in common); the
action lines are kept in parts, a shared point list one part, and printed in 1 MiB pieces
(JSON 0.13 -> 0.06 s, and 50 MB less RSS); pydantic no longer looks for plugins (~5 ms).

What stands between this and 3x is fixed cost, not the work: a plan of one cell takes
0.23-0.25 s of CPU (the 3x budget is 0.39 s), of which typer and pydantic (imported, typer
building every command and a pydantic adapter per option, manifests' models) are ~0.15 s;
the work itself is at the floor's pace (ID files 0.056 s against the floor's 0.05 s with
validation, ledger 0.06 s against 0.065 s). Beyond the floor, plan hashes and writes its
60 MB of JSON (sha256 of the action lines ~0.05 s, the floor prints one line).

Then (393f5e1) a plan outside CI stopped importing `gitsync` (`base_from_env` moved to the
store) and `apply` (`writable` and MISSING moved to `plan.values`). Measured 2026-12-07
21:59, `python tests/bench/plan.py --runs 3 --shape separate --no-breakdown` twice each,
before (`PYTHONPATH=<export of 5936ea3>`) and after, interleaved, load average 4.2-4.5:
plan CPU 0.491-0.496 s -> 0.460-0.461 s, ratio 3.77-3.87x -> 3.58-3.61x (floor
0.127-0.131 s). The hard target (3x) is still missed. Left: `config`'s pydantic models
(~12 ms, needed whenever there is a reconcile.yaml) and the `reconciler.args` dataclasses
(~7 ms); typer 0.29 itself needs pydantic, so the ~0.15 s of typer and pydantic stays
while the CLI is typer's.

Measured 2026-12-08 00:19 (`python tests/bench/plan.py --runs 5`, at 4e5e06b, load average
4.7-5.1 while other sessions ran their suites; "before" is main at ab75439, run in the same
minute as `PYTHONPATH=<checkout of ab75439> python tests/bench/plan.py --runs 5 --no-breakdown`):

| shape | floor CPU | plan CPU before -> after | ratio before -> after | peak RSS before -> after |
| --- | --- | --- | --- | --- |
| separate | 0.147-0.150 s | 0.534 -> 0.441 s | 3.60x -> 2.95x | 98 -> 81 MB |
| shared | 0.147-0.148 s | 0.545 -> 0.462 s | 3.68x -> 3.15x | 98 -> 86 MB |

(A minute earlier, load 5.2-7.0, two rounds of each: separate 2.90x and 2.79x against 3.62x
and 3.73x, shared 3.09x and 3.13x against 3.74x and 3.69x.) Breakdown after (separate):
imports 0.177 s, manifests and ID files 0.056 s, ledger 0.063 s, diff 0.012 s, build
0.006 s, JSON 0.071 s. A plan of one cell: 0.19-0.20 s of CPU against main's 0.22-0.24 s
(interleaved, same load). What changed: a command line builds its own command only (typer
built all of them from their signatures, ~15 ms), and of `reconciler.args` its own value's
class only (~6 ms); with no reconcile.yaml the config's models are not imported (~10 ms);
an ID file in ascending order is checked for repeats by comparing neighbours instead of
hashing all its IDs into a set (~15-25 ms), and its lines are split in place; the diff
intersects each pair of point sets once, not once per delete (~9 ms); ledger segments are
read through a 256 KiB buffer (~4 ms); the action lines' parts are copied to their size,
since orjson's bytes keep the buffer it reserved (8 KB for 600 bytes: 13 MB of RSS and ~7 ms
of page faults), and are written with one `os.writev` a piece instead of being joined.
The neighbour check serves sorted files only: with the workload's ID files shuffled (a
local copy of this script), after is 3.19x and 3.36x against main's 3.50-3.60x and
3.79-3.90x.

The hard target is met on the first shape and missed by about 5% on the shared one, where
`recleared` and the shared-stage grouping hash the pending assets (~15 ms). What is left is
mostly fixed: pydantic's import (~60 ms under this load), paid by typer's first parameter
adapter (the other fifteen cost ~2 ms together; the manifest models need pydantic anyway);
typer's (~20 ms); `pydantic.plugin._loader`, imported by pydantic's
`create_schema_validator` for the first model or adapter before it reads
PYDANTIC_DISABLE_PLUGINS, importing `importlib.metadata` (~6 ms, upstream's to fix); the
frozen dataclasses of our own modules (~20 ms to build on Python 3.11); and freeing the
ledger's and manifests' 560,000 IDs and the interpreter (~20 ms).

Measured 2026-12-08 00:39-00:40 (`python tests/bench/plan.py --runs 7 --no-breakdown`, two
rounds, each interleaved with main at 91807b1 run in the same minute as `PYTHONPATH=<checkout
of 91807b1> python tests/bench/plan.py --runs 7 --no-breakdown`, load average 4.0-4.2):

| shape | floor CPU | plan CPU before -> after | ratio before -> after | peak RSS before -> after |
| --- | --- | --- | --- | --- |
| separate | 0.127-0.136 s | 0.401, 0.378 -> 0.374, 0.362 s | 2.94x, 2.97x -> 2.91x, 2.80x | 81 -> 81 MB |
| shared | 0.127-0.130 s | 0.396, 0.388 -> 0.373, 0.368 s | 3.04x, 2.98x -> 2.93x, 2.84x | 86 -> 84 MB |

(Half a minute earlier, load 2.0-2.5, `--runs 5`, two rounds: separate 2.89x and 2.84x against
main's 2.89x and 2.84x, shared 2.89x and 2.90x against 2.99x and 3.02x.) What changed:
`recleared` probes a manifest's pending assets once against all the other manifests' deletes
on its stage together, and the second stage of a pipeline (the same lists) reuses the answer
(12 -> 6.5 ms in process); the shared-stage grouping finds the assets several manifests have
pending once per set of equal lists and passes groups that share nothing to the split as they
are (8.3 -> 7.1 ms); and a plan that succeeds ends its process with `os._exit` after flushing
stdout and stderr and running the atexit functions (`cli._app._end_now`, as mypy's
`hard_exit`), not freeing its IDs and modules: ~20-30 ms measured alone with stdout to
/dev/null, less visible in these figures. The hard target is met on both shapes by 3-7%;
the goal (2x) is not. Left: pydantic's plugin loader importing `importlib.metadata` (~6 ms),
pydantic's and typer's imports, our frozen dataclasses, the plan hash (sha256 of 60 MB,
~50 ms, the contract) and, in a development checkout only, the editable install's finder.

Measured 2026-12-08 03:19, a fresh clone of b2ada9e alone on the machine (load 1.1-3.0),
`python tests/bench/plan.py --runs 7 --no-breakdown` three times, the last two interleaved
with `PYTHONPATH=<git archive c724ebf>` (this morning's main) in the same minute:
separate 2.83x, 2.99x, 2.80x (c724ebf 2.80x, 2.86x); shared 2.95x, 2.87x, 2.90x (c724ebf
2.86x, 2.91x); floor CPU 0.119-0.122 s, plan CPU 0.333-0.352 s, peak RSS 81 and 84 MB.
Nothing in plan's path changed this session: the hard target holds on both shapes, by as
little as 0.3% in one round, and the goal does not. What stands between it and 2x is what
the entries above say: a plan that imports neither typer nor pydantic.

Measured 2026-12-08 04:26, alone on the machine (load 0.6-0.75), `python tests/bench/plan.py
--runs 7`, after `PYTHONPATH=<git archive 35c102a>` (this session's start) with
`--no-breakdown` in the same minute: separate 2.86x (35c102a 2.82x), shared 2.94x (2.90x);
floor CPU 0.113-0.114 s, plan CPU 0.327-0.333 s, peak RSS 81 and 83 MB. Plan's path did not
change; the hard target holds by 2-5%, the goal does not.

The script now measures why (the `stack` and `bound` lines): a command on the project's
stack that reads and writes nothing (typer parsing three options, one pydantic model
validating one document; `_STACK`) costs 0.131-0.135 s of CPU against the bare
interpreter's 0.020 s. Floor plus stack, less the interpreter both pay, is 0.225-0.235 s:
**1.96-2.01x the floor before plan does any work the floor does not**. Two parts of that
work are the plan's contract and cannot go: sha256 over the 60 MB of action lines for
`planHash` (36 ms of CPU, measured alone) and writing the 60 MB of JSON (20 ms of system
time). With them no plan on typer 0.29 and pydantic 2, which DESIGN and the guide name,
costs less than about 2.5x; plan is within ~0.05 s of CPU of that, which is parsing and
validating 21 YAML manifests, the diff, the build and encoding the JSON. Reaching 2x means a
plan command that parses its options without typer and validates manifests without
pydantic: a second CLI and a second schema beside the ones the project keeps, which we do
not build.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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


# Measured by a small wrapper process that only runs the command: a child forked from this
# benchmark would report this process's own peak RSS when that is higher (Linux keeps the
# high-water mark across fork and exec), as it is once it has parsed a 60 MB plan.
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "with open(sys.argv[2], 'wb') as out:\n"
    "    p = subprocess.run(sys.argv[3:], stdout=out, stderr=subprocess.PIPE)\n"
    "wall = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "json.dump({'wall': wall, 'rss_mb': u.ru_maxrss / 1024, 'cpu': u.ru_utime + u.ru_stime,\n"
    "           'code': p.returncode, 'err': p.stderr.decode()[-2000:]}, open(sys.argv[1], 'w'))\n"
)


# The stack's own floor: a command on the project's stack (typer parsing its options, which
# typer 0.29 does through pydantic adapters; one pydantic model validating one document, as
# each manifest is) that reads and writes nothing. `plan --format json` imports no rich. Any
# `reconcile plan` costs at least the floor's work plus this, less the interpreter the floor
# pays too.
_STACK = """
import gc, os
gc.set_threshold(100_000, 10, 10)
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from typing import Literal, Optional
import typer
from pydantic import BaseModel, ConfigDict
class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    orgId: str
    pipelineId: str
    stageInstanceNames: list[str]
    pointIds: list[str]
class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    apiVersion: Literal["reconciler/v1"]
    kind: Literal["StageStateDeletion"]
    spec: Spec
app = typer.Typer(add_completion=False)
@app.command()
def plan(
    paths: Optional[list[str]] = typer.Argument(None),
    ledger: Optional[str] = typer.Option(None, "--ledger"),
    fmt: str = typer.Option("text", "--format"),
) -> None:
    Doc.model_validate({"apiVersion": "reconciler/v1", "kind": "StageStateDeletion",
        "spec": {"orgId": "o", "pipelineId": "p", "stageInstanceNames": ["s"], "pointIds": ["x"]}})
app(["manifests", "--ledger", "applied-ledger.jsonl", "--format", "json"], standalone_mode=False)
"""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss_mb: float
    out: Path


def _run(cmd: list[str], cwd: Path, stdout: str = ".stdout") -> Run:
    """One whole process, measured by a wrapper; raises if it fails."""
    result, out = cwd / ".measure.json", cwd / stdout
    subprocess.run(
        [sys.executable, "-c", _MEASURE, str(result), str(out), *cmd], cwd=cwd, env=_ENV, check=True
    )
    data = json.loads(result.read_text())
    if data["code"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {data['code']}:\n{data['err']}")
    return Run(data["wall"], data["cpu"], data["rss_mb"], out)


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
        floors: list[Run] = []
        plans: list[Run] = []
        stacks: list[Run] = []
        bare: list[Run] = []
        for _ in range(args.runs):  # interleaved, so all see the same machine load
            floors.append(_run(floor_cmd, root))
            plans.append(_run(plan_cmd, root))
            stacks.append(_run([sys.executable, "-c", _STACK], root, ".stdout-stack"))
            bare.append(_run([sys.executable, "-c", "pass"], root, ".stdout-stack"))
        summary = json.loads(plans[-1].out.read_bytes())["summary"]
        steps = _breakdown(root) if args.breakdown else []
    floor_cpu, plan_cpu = min(r.cpu for r in floors), min(r.cpu for r in plans)
    floor_wall, plan_wall = min(r.wall for r in floors), min(r.wall for r in plans)
    ratio, wall_ratio = plan_cpu / floor_cpu, plan_wall / floor_wall
    plan_rss = max(r.rss_mb for r in plans)
    ok = ratio <= RATIO_TARGET and plan_rss <= PLAN_RSS_TARGET_MB and summary["pendingCells"] == PLAN_PENDING
    where = (
        "20 manifests on 4 pipelines' stages" if shape == "shared" else "each manifest on its own pipeline"
    )
    print(
        f"plan benchmark ({shape}: {where}): 410,000,000 declared cells, 301 ledger records, {os.cpu_count()} cores"
    )
    for name, runs in (("floor", floors), ("plan", plans)):
        print(
            f"  {name:<5}   CPU best {min(r.cpu for r in runs):.3f} s of {args.runs} ({_all([r.cpu for r in runs])}); "
            f"wall best {min(r.wall for r in runs):.3f} s; peak RSS {max(r.rss_mb for r in runs):.0f} MB"
        )
    stack_cpu, bare_cpu = min(r.cpu for r in stacks), min(r.cpu for r in bare)
    bound = floor_cpu + stack_cpu - bare_cpu
    print(
        f"  stack   CPU best {stack_cpu:.3f} s ({_all([r.cpu for r in stacks])}; the interpreter alone "
        f"{bare_cpu:.3f} s): typer and a pydantic model, a command that does nothing"
    )
    print(
        f"  bound   floor + stack - interpreter = {bound:.3f} s, {bound / floor_cpu:.2f}x: no plan on this "
        "stack costs less, before the diff, build and JSON the floor does not do"
    )
    print(
        f"  ratio   CPU {ratio:.3f}x (judged), wall {wall_ratio:.3f}x; target <= {RATIO_TARGET}x, goal "
        f"{RATIO_GOAL}x: {'met' if ratio <= RATIO_GOAL else 'not met'}; RSS target <= {PLAN_RSS_TARGET_MB} MB"
    )
    print(
        f"  pendingCells {summary['pendingCells']:,} (expected {PLAN_PENDING:,}), "
        f"requests {summary['requests']}, appliedCells {summary['appliedCells']:,}"
    )
    if steps:
        print("  in-process breakdown (one fresh interpreter, CPU seconds):")
        for name, seconds in steps:
            print(f"    {name:<34} {seconds:.3f} s")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def _all(walls: list[float]) -> str:
    return "all: " + ", ".join(f"{w:.3f}" for w in walls)


_BREAKDOWN = """
import gc, json, sys, time
gc.set_threshold(100_000, 10, 10)  # as `reconcile` sets it (reconciler.cli._app.main)
t0 = time.process_time()
import reconciler.cli  # what `reconcile plan --format json` imports: the app, then in the
import typer._adapters  # command its option parsing (typer 0.29 builds pydantic adapters)
from reconciler import ledger, manifests, operations
from reconciler.plan import file as planfile
from reconciler.plan import diff
from reconciler.plan import Options, build_plan
t1 = time.process_time()
loaded = manifests.load_or_raise(["manifests"])
t2 = time.process_time()
led = ledger.read("applied-ledger.jsonl")
t3 = time.process_time()
d = diff(loaded.manifests, led)
t4 = time.process_time()
p = build_plan(d, Options(), manifest_paths=["manifests"])
t5 = time.process_time()
with open(".breakdown.json", "wb") as out:  # as the CLI writes it: encoded pieces, never one str
    for piece in planfile.encoded(p):
        out.write(piece)
t6 = time.process_time()
print(json.dumps([
    ["imports (typer, pydantic, core)", t1 - t0],
    ["load manifests and ID files", t2 - t1],
    ["read and verify the ledger", t3 - t2],
    ["diff", t4 - t3],
    ["build_plan", t5 - t4],
    ["render and write JSON (planfile.encoded)", t6 - t5],
]))
"""


def _breakdown(root: Path) -> list[tuple[str, float]]:
    """Where `reconcile plan`'s time goes, step by step, in a fresh interpreter."""
    out = _run([sys.executable, "-c", _BREAKDOWN], root).out
    return [(name, float(seconds)) for name, seconds in json.loads(out.read_bytes())]


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
