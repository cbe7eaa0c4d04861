"""kill -9 at a random moment, N times, in the scaffolded CI loop: how much does the re-run
re-send? (issue "A ledger that stays small and cheap in git for years", item 2).

    python tests/bench/kill_resend.py [--runs 5] [--latency-ms 250] [--seed 1]

Each run: a bare `origin` holding a `reconcile init` scaffold (the ledger in git) and one
manifest of 1 stage x 600 assets x 2 points, sent as 120 requests of 5 assets one at a
time to `reconcile emulator` answering each business call in --latency-ms (about 30 s of
sending). Runner 1 (`reconcile apply` in its own clone, as a CI job) is killed with
SIGKILL at a random moment while it sends; runner 2, a fresh clone, applies again. The
emulator's journal counts every cell cleared and how often.

Target: the re-run re-sends at most 10 s of requests plus what was in flight, because
renewals push the records written since the last push at least every 10 s
(`gitsync.session.PUSH_EVERY`). So for each run: cells cleared twice <= (10 s / latency
+ 1 in flight) x cells per request. Prints each run and exits 1 when one misses.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from apply import _emulator
from scaffold import ENV as _ENV
from scaffold import git as _git
from scaffold import scaffold_origin

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

ASSETS, POINTS, BATCH = 600, 2, 5
PUSH_EVERY = 10.0


def _origin(root: Path) -> Path:
    """A bare origin whose main is a `reconcile init` scaffold with the bench manifest."""

    def fill(seed: Path) -> None:
        ids = seed / "manifests" / "ids"
        ids.mkdir(exist_ok=True)
        (ids / "bench-assets.txt").write_text("".join(f"A{i:04d}\n" for i in range(ASSETS)))
        (seed / "manifests" / "bench.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata:\n  name: bench\n"
            "spec:\n  orgId: o1\n  pipelineId: p1\n  stageInstanceNames: [s1]\n"
            "  assetIdsFile: ids/bench-assets.txt\n  pointIds: [P1, P2]\n"
        )

    return scaffold_origin(root, fill)


def _world(root: Path) -> Path:
    world = root / "world.json"
    pipeline = {
        "pipelineId": "p1",
        "orgId": "o1",
        "status": "PAUSED",
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": {"s1": "LastRecordAppender"},
        "fillState": True,
    }
    world.write_text(json.dumps({"pipelines": [pipeline]}))
    return world


def _apply(clone: Path, gateway: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        "--auto-approve",
        "--concurrency",
        "1",
        "--max-assets",
        str(BATCH),
    ]


def one_run(root: Path, latency: float, kill_after: float) -> tuple[int, int, float]:
    """Cells cleared twice, cells per request, and how long runner 1 ran before the kill."""
    origin = _origin(root)
    journal = root / "journal.jsonl"
    with _emulator(root, int(latency * 1000), str(_world(root)), "--journal", str(journal)) as gateway:
        env = {
            **_ENV,
            "CI": "1",
            "NO_COLOR": "1",
            "ENOS_API_GATEWAY": gateway,
            "ENOS_APP_KEY": DEFAULT_APP_KEY,
            "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
        }
        runners = []
        for name in ("runner1", "runner2"):
            _git(root, "clone", "-q", "--depth", "1", f"file://{origin}", str(root / name))
            runners.append(root / name)
        cmd = _apply(runners[0], gateway)
        first = subprocess.Popen(
            cmd, cwd=runners[0], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started = time.monotonic()
        time.sleep(kill_after)
        first.send_signal(signal.SIGKILL)
        first.wait()
        ran = time.monotonic() - started
        second = subprocess.run(
            _apply(runners[1], gateway), cwd=runners[1], env=env, capture_output=True, text=True
        )
        if second.returncode != 0:
            print(second.stdout[-2000:], second.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"the re-run failed with exit {second.returncode}")
    counts: Counter[tuple[str, str]] = Counter()
    for line in journal.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "delete":
            for a in event["assets"]:
                for p in event["points"]:
                    counts[(a, p)] += 1
    if len(counts) != ASSETS * POINTS:
        raise SystemExit(f"{len(counts)} cells cleared, expected {ASSETS * POINTS}")
    return sum(1 for n in counts.values() if n > 1), BATCH * POINTS, ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=250.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    latency = args.latency_ms / 1000
    sending = ASSETS // BATCH * latency
    allowed_requests = PUSH_EVERY / latency + 1  # 10 s of requests, plus the one in flight
    worst = 0.0
    print(
        f"{ASSETS // BATCH} requests of {BATCH * POINTS} cells, {args.latency_ms:g} ms each (~{sending:.0f} s)"
    )
    for i in range(args.runs):
        kill_after = rng.uniform(3.0, 3.0 + sending * 0.8)
        with tempfile.TemporaryDirectory(prefix="reconcile-bench-kill-") as tmp:
            twice, per_request, ran = one_run(Path(tmp), latency, kill_after)
        resent = twice / per_request
        seconds = resent * latency
        worst = max(worst, resent)
        print(
            f"run {i + 1}: killed after {ran:5.1f} s; re-sent {resent:4.0f} requests ({twice} cells) = "
            f"{seconds:4.1f} s of requests   target <= {allowed_requests:.0f} requests (10 s + 1 in flight)"
        )
    ok = worst <= allowed_requests
    print(
        f"worst: {worst:.0f} requests re-sent; target <= {allowed_requests:.0f}: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
