"""The apply benchmark: 400 requests against an emulator answering in 50 ms.

4 manifests x 10 stages x 10,000 assets x 1 point, split at 1,000 assets: 400 requests.
At --concurrency 8 the ideal is 400 x 0.05 / 8 = 2.5 s; the target is within 1.25x
(3.125 s), start-up excluded, with every request journalled (intent + delete, fsynced).
The emulator runs in its own process, as a real gateway would.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from reconciler.ledger import read

MANIFESTS, STAGES, ASSETS, BATCH = 4, 10, 10_000, 1_000
TARGET_RATIO = 1.25


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
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-apply-") as tmp:
        root = Path(tmp)
        _workload(root)
        port = _free_port()
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
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port)
            env = {
                **os.environ,
                "CI": "1",
                "NO_COLOR": "1",
                "ENOS_API_GATEWAY": f"http://127.0.0.1:{port}",
                "ENOS_APP_KEY": DEFAULT_APP_KEY,
                "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
            }
            start = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reconciler",
                    "apply",
                    "--auto-approve",
                    "--concurrency",
                    str(args.concurrency),
                ],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            total = time.perf_counter() - start
        finally:
            emulator.terminate()
            emulator.wait()
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 1
        done = re.findall(r"^\s*([\d,]+)/([\d,]+) requests done \(([\d.]+)s\)$", proc.stderr, re.M)
        records = read(root / "applied-ledger.jsonl").records
    if not done or done[-1][0] != done[-1][1]:
        print(proc.stderr, file=sys.stderr)
        return 1
    send = float(done[-1][2])
    requests = MANIFESTS * STAGES * ASSETS // BATCH
    ideal = requests * args.latency_ms / 1000 / args.concurrency
    intents = sum(r.kind == "intent" for r in records)
    deletes = sum(r.kind == "delete" for r in records)
    ok = send <= ideal * TARGET_RATIO and intents == deletes == requests
    print(
        f"apply benchmark: {requests} requests, {args.latency_ms} ms emulator latency, "
        f"--concurrency {args.concurrency}, {os.cpu_count()} cores"
    )
    print(
        f"  send phase {send:.2f} s (start-up excluded); ideal {ideal:.2f} s; ratio {send / ideal:.2f}x "
        f"(target <= {TARGET_RATIO}x)"
    )
    print(f"  whole command {total:.2f} s; journal: {intents} intents + {deletes} deletes, each fsynced")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the emulator did not start")
