"""The apply benchmark: `reconcile apply` against a plain peer script, side by side in one run.

    python tests/bench/apply.py [--runs N] [--concurrency 8] [--latency-ms 50]

4 manifests x 10 stages x 10,000 assets x 1 point, split at 1,000 assets: 400
requests, against an emulator answering each business call in 50 ms. Two whole
processes, best of N each, interleaved, against the same emulator:

- the peer, `peer_apply.py`: one token call, one List Pipelines call, the 400 signed
  deletes from --concurrency threads over one pooled httpx client, no ledger;
- `reconcile apply --auto-approve --concurrency 8` on a fresh empty ledger, every
  request journalled (intent + delete, fsynced).

Target: reconcile <= 1.2x the peer (goal 1.1x), every request journalled. Exits 1
when missed. The emulator runs as `reconcile emulator` in its own process, as a real
gateway would: neither measured process shares a GIL or an event loop with it, and
the benchmark's own bookkeeping (reading the ledger afterwards) cannot slow it down.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from reconciler.ledger import read

MANIFESTS, STAGES, ASSETS, BATCH = 4, 10, 10_000, 1_000
TARGET_RATIO = 1.2
GOAL_RATIO = 1.1
HERE = Path(__file__).resolve().parent
# An installed package has its bytecode cached (see plan.py).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workload(root: Path) -> None:
    mdir = root / "manifests"
    (mdir / "ids").mkdir(parents=True)
    stages = [f"stage_{i}" for i in range(STAGES)]
    pipelines = []
    for m in range(MANIFESTS):
        (mdir / "ids" / f"assets-{m}.txt").write_text(
            "\n".join(f"M{m}A{i:05d}" for i in range(ASSETS)) + "\n"
        )
        (mdir / f"m{m}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: StageStateDeletion\n"
            f"metadata:\n  name: bench-{m}\nspec:\n  orgId: o1\n  pipelineId: pipe{m}\n"
            f"  stageInstanceNames: [{', '.join(stages)}]\n"
            f"  assetIdsFile: ids/assets-{m}.txt\n  pointIds: [P.value]\n"
        )
        pipelines.append(
            {
                "pipelineId": f"pipe{m}",
                "orgId": "o1",
                "status": "PAUSED",
                "executionMode": 1,
                "kafkaRate": 1000,
                "stages": dict.fromkeys(stages, "LastRecordAppender"),
                "fillState": True,
            }
        )
    (root / "world.json").write_text(json.dumps({"pipelines": pipelines}))


def bench_apply(args: argparse.Namespace) -> int:
    requests = MANIFESTS * STAGES * ASSETS // BATCH
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-apply-") as tmp:
        root = Path(tmp)
        _workload(root)
        port = _free_port()
        gateway = f"http://127.0.0.1:{port}"
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "emulator",
                "--port",
                str(port),
                "--state",
                "world.json",
                "--latency-ms",
                str(args.latency_ms),
            ],
            cwd=root,
            env=_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {
            **_ENV,
            "CI": "1",
            "NO_COLOR": "1",
            "ENOS_API_GATEWAY": gateway,
            "ENOS_APP_KEY": DEFAULT_APP_KEY,
            "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
        }
        peer_cmd = [sys.executable, str(HERE / "peer_apply.py"), gateway, "manifests", str(args.concurrency)]
        apply_cmd = [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            "--auto-approve",
            "--concurrency",
            str(args.concurrency),
        ]
        ledger = root / "applied-ledger.jsonl"
        peer_walls: list[float] = []
        apply_walls: list[float] = []
        try:
            _wait_for(port)
            for _ in range(args.runs):  # interleaved, so both see the same machine load
                peer_walls.append(_timed(peer_cmd, root, env))
                ledger.write_bytes(b"")  # an empty ledger: every run sends all 400
                apply_walls.append(_timed(apply_cmd, root, env))
                records = read(ledger).records
                intents = sum(r.kind == "intent" for r in records)
                deletes = sum(r.kind == "delete" for r in records)
                if not intents == deletes == requests:
                    print(
                        f"journal: {intents} intents, {deletes} deletes, expected {requests}", file=sys.stderr
                    )
                    return 1
        finally:
            emulator.terminate()
            emulator.wait()
    peer, best = min(peer_walls), min(apply_walls)
    ideal = requests * args.latency_ms / 1000 / args.concurrency
    ratio = best / peer
    ok = ratio <= TARGET_RATIO
    print(
        f"apply benchmark: {requests} requests, {args.latency_ms} ms emulator latency, "
        f"--concurrency {args.concurrency}, {os.cpu_count()} cores"
    )
    print(f"  peer    best {peer:.3f} s of {args.runs} ({_all(peer_walls)})")
    print(
        f"  apply   best {best:.3f} s of {args.runs} ({_all(apply_walls)}); {requests} intents + deletes, fsynced"
    )
    print(
        f"  ratio   {ratio:.3f}x   target <= {TARGET_RATIO}x (goal {GOAL_RATIO}x); latency floor {ideal:.2f} s"
    )
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return wall


def _all(walls: list[float]) -> str:
    return "all: " + ", ".join(f"{w:.3f}" for w in walls)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the emulator did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/bench/apply.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each process (best is kept)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=50)
    return bench_apply(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
