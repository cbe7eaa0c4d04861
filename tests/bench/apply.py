"""The apply benchmark: `reconcile apply` against a plain peer script, side by side in one run.

    python tests/bench/apply.py [--runs N] [--concurrency 8] [--latency-ms 50]

4 manifests x 10 stages x 10,000 assets x 1 point, split at 1,000 assets: 400 requests
(40 stages of 10), against an emulator answering each business call in 50 ms. The
pipelines are PAUSED already, by a person as far as apply knows, so apply pauses and
starts none: neither side makes a pipeline call but List Pipelines (apply also reads
each pipeline's details once, for its stage names). Whole processes, best of N each,
interleaved, against the same emulator, in two pairs that make the same calls:

- canary: `reconcile apply --auto-approve --concurrency 8` as it runs by default, the
  canary on (each stage's first request sent alone and read before and after: 40
  stages, 160 reads), against `peer_apply.py --canary`, which makes those reads under the
  same rule (one stage at a time; a canary's delete and read-back with no other delete
  in flight; the others go 8 at a time meanwhile);
- no canary: `reconcile apply ... --no-canary` against the plain `peer_apply.py`: one
  token call, one List Pipelines call, the 400 signed deletes from --concurrency threads
  over one pooled httpx client, no ledger.

Apply runs on a fresh empty ledger each time, every request journalled (intent + delete,
fsynced). Target: reconcile <= 1.1x its peer in both pairs (issue 28). Exits 1 when
either is missed. The emulator runs as `reconcile emulator` in its own process, as a
real gateway would: neither measured process shares a GIL or an event loop with it, and
the benchmark's own bookkeeping (reading the ledger afterwards) cannot slow it down. Each
measured process gets a fresh one, every cell holding state as before any clear, so the
canary's reads carry their 1,000 items whichever process runs first.

Measured on the 2-core machine shared by five engineers (load: `uptime`'s 1-minute
average before and after; CPU: user + system of each process, every run):

| date (2026-12-07, then 12-08) | code | load | pair | peer | apply | ratio | CPU apply / peer |
| --- | --- | --- | --- | --- | --- | --- | --- |
| 21:15, `--runs 3` | ff6174e, this script before the pairs | 3.3-3.8 | apply (canary on) vs the plain peer | 3.170 s | 11.255 s | 3.55x | not measured |
| 22:02, `--runs 3` | ff6174e | 3.6-4.0 | canary | 10.485 s | 12.102 s | 1.15x | 2.21-2.33 / 1.25-1.29 s |
| | | | no canary | 3.057 s | 3.828 s | 1.25x | 1.71-1.81 / 0.63-0.71 s |
| 22:04, `--runs 3` | 5e15bbf | 4.0-5.8 | canary | 10.261 s | 10.837 s | 1.06x | 1.82-2.12 / 1.15-1.35 s |
| | | | no canary | 3.203 s | 3.723 s | 1.16x | 1.15-1.32 / 0.59-0.69 s |
| 22:12, `--runs 3` | 08a12e7 | 2.1-2.7 | canary | 10.264 s | 10.809 s | 1.05x | 1.99-2.17 / 1.23-1.27 s |
| | | | no canary | 3.161 s | 3.661 s | 1.16x | 1.25-1.32 / 0.60-0.69 s |
| 12-08 02:00, `--runs 3` | b7828bb | 7.6-6.1 | canary | 10.090 s | 10.396 s | 1.03x | 1.51-1.71 / 0.95-1.02 s |
| | | | no canary | 3.134 s | 3.633 s | 1.16x | 0.97-1.06 / 0.48-0.54 s |
| 12-08 02:32, `--runs 3` | db8f203 | 3.4-5.4 | canary | 9.773 s | 10.166 s | 1.04x | 1.56-1.63 / 0.95-1.04 s |
| | | | no canary | 3.060 s | 3.397 s | 1.11x | 1.04-1.12 / 0.52-0.54 s |
| 12-08 02:34, `--runs 3` | b7828bb | 5.4-5.1 | canary | 9.921 s | 10.667 s | 1.08x | 1.53-1.67 / 0.97-1.04 s |
| | | | no canary | 3.089 s | 3.599 s | 1.17x | 1.06-1.14 / 0.53-0.55 s |
| 12-08 02:48, `--runs 3` | dd2a3e3 | 3.3-2.1 | canary | 9.627 s | 10.096 s | 1.05x | 1.67-1.77 / 1.10-1.20 s |
| | | | no canary | 3.002 s | 3.328 s | 1.11x | 1.06-1.12 / 0.54-0.58 s |
| 12-08 02:50, `--runs 3` | b7828bb | 2.1-4.4 | canary | 9.927 s | 10.558 s | 1.06x | 1.66-1.67 / 1.00-1.11 s |
| | | | no canary | 3.156 s | 3.678 s | 1.17x | 1.05-1.14 / 0.55-0.56 s |
| 12-08 03:20, `--runs 3`, a fresh clone, alone on the machine | b2ada9e | 1.14-0.71 | canary | 9.632 s | 9.643 s | 1.00x | 1.68-1.86 / 1.11-1.14 s |
| | | | no canary | 3.035 s | 3.411 s | 1.12x | 1.21-1.28 / 0.63-0.64 s |
| 12-08 04:13, `--runs 5`, alone on the machine | 07333c9 | 0.09-0.43 | canary | 9.716 s | 10.027 s | 1.03x | 1.80-2.09 / 1.16-1.28 s |
| | | | no canary | 3.029 s | 3.270 s | 1.08x | 1.11-1.26 / 0.62-0.85 s |
| 12-08 04:16, `--runs 5` | 35c102a (`PYTHONPATH`) | 0.16-0.50 | canary | 9.629 s | 10.002 s | 1.04x | 1.81-2.07 / 1.14-1.25 s |
| | | | no canary | 3.014 s | 3.351 s | 1.11x | 1.12-1.30 / 0.61-0.73 s |
| 12-08 04:19, `--runs 5`, the next minutes | 07333c9 | 0.50-0.08 | canary | 9.671 s | 9.895 s | 1.02x | 1.71-1.93 / 1.10-1.23 s |
| | | | no canary | 2.979 s | 3.233 s | 1.09x | 1.06-1.19 / 0.56-0.70 s |
| 12-08 04:43, `--runs 5`, after the review's fixes | 97a3ef6 | 2.73-0.67 | canary | 9.703 s | 9.914 s | 1.02x | 1.80-1.92 / 1.16-1.26 s |
| | | | no canary | 2.998 s | 3.257 s | 1.09x | 1.10-1.21 / 0.58-0.65 s |
| 12-08 04:59, `--runs 5` | c1415c9 | 2.21 | canary | 9.518 s | 9.943 s | 1.04x | 1.67-1.84 / 1.06-1.20 s |
| | | | no canary | 2.957 s | 3.203 s | 1.08x | 1.01-1.16 / 0.56-0.61 s |
The first row compared unlike work: apply's canary (40 stages, each read, deleted alone
and read again) against a peer that sent deletes only (and, one emulator for every run,
the reads after the first run found no state). ff6174e runs with this script from
`PYTHONPATH` (its `reconciler/` from `git archive`). Between the two, the pool hands over
only what ended since it last looked (its run thread had asked every request ever
submitted on each wake), a canary is queued ahead of the deletes and, once waiting, no
delete begins before it, and the pipelines' details are read at once; main moved on too.

With the canary, 40 stages one after another cost three calls' latency each whatever the
client: both sides spend 10-11 s, and apply meets the goal. Without it, b7828bb was 0.5 s
(0.55 s of CPU) behind the peer, mostly the process's start. Since then (the b7828bb rows of
12-08 ran from `PYTHONPATH=<git archive b7828bb>` in the same minutes): the pipelines'
details for the stage-name warning are read alongside List Pipelines, not after it (one
round trip less before the first delete); a new ID list is stored (its file and its folder,
two fsyncs) before the ledger writer's mutex, not under it where it held every other
request's record, ten times at each pipeline's first stage; a record's lists are joined
and hashed once; and the process leaves out httpx's own command-line client (click,
pygments: ~30 ms of imports). 1.11x against b7828bb's 1.16-1.17x: the goal is at the edge
of the noise, not met in every run, so the target stays 1.2x. Alone on the machine (03:20)
it is 1.12x: timed from outside (the emulator's journal, three runs each), apply's first
delete is answered 0.47-0.48 s after launch against the peer's 0.26 s, and its last one
2.86-2.99 s after its first against the peer's 2.70-2.72 s: the gap is half start, half
the 400 requests' own cost.

What is left (dd2a3e3, load 4.8, three runs each, timed from outside the code): apply sends
its first delete 0.47-0.64 s after launch against the peer's 0.26-0.34 s: imports, 0.25 s
of CPU (typer, and pydantic, which the manifests need anyway, rich, filelock, yaml; the
peer imports httpx alone), the lock, two git calls (the actor's commit, whether the ledger
left git), the plan (15 ms), showing it (35-50 ms), the client's TLS context (35-45 ms,
which the peer builds too). Then its 400 deletes take 3.06-3.17 s against the peer's
2.77-3.1 s, 0.6 ms more CPU a request (the journal's two records and their fsyncs, the
session, the pool). The journal already commits in groups (`LedgerWriter`: one fsync covers
every record written before it; 617 fsyncs for 800 records here). An fsync of one line on
this disk took ~3 ms at 12-08 02:04 and ~0.2 ms at 02:36 (the same probe: what differed is
what else wrote to the disk; the suites moved to /dev/shm meanwhile), which is how the
12-07 paragraph came to put the requests' gap on the journal. Each request
still waits for two fsyncs, its intent's before it is sent and its delete's before it is
reported done. One would cover both if a worker wrote its next request's intent before
handing over its last one's outcome (then reported done): that is a change to the pool's
worker loop (`StoppablePool._work`). Its upper bound, probed by not syncing delete records
at all (unsafe, not in the code): 0-0.1 s of the run (medians 3.48 s vs 3.38 s, load 4-6).

12-08 (the 04:13-04:19 rows; earlier that morning, `--runs 3` and `--runs 5` as each change
landed: 1.082x at 0d05237, 1.088x at 39501e4, 1.089x at 9050bef, 1.095x at 07333c9):
**1.08-1.09x without the canary, 1.02-1.04x with it: the issue's 1.1x is met in
every run, by 0.5-2%**, so the target is now 1.1x. Timed from outside (the first
`stage-state` bytes on the socket, five runs each), apply sends its first delete
0.35-0.37 s after launch against the peer's 0.21 s, and its 400 requests take ~0.1 s
longer. What moved it since 35c102a's 1.11x:
- showing the plan takes a key's single pending group as it is instead of rebuilding
  10,000 assets per key into dicts (38 -> 20 ms);
- the CA bundle loads on a thread of its own (`reconciler.tls`; from the command's start in
  the 04:13-04:43 rows, once the plan has work from c1415c9 on): OpenSSL does it without the GIL,
  so the ~20 ms are off the way to the first request on a second core (the session's
  client 34 -> 12-19 ms);
- nothing is imported that the run does not use: reconcile.yaml's models for the snapshot
  check, the summary renderer and rich's progress bar in CI (~5 ms). The 04:13-04:19 rows
  also left git plumbing unloaded outside a repository (~5 ms more); a review put that back
  (f317445): with git missing, the check that the ledger did not leave git must stop
  apply, as it did, not pass.
What is left:
- The start, ~0.15 s, is the stack's imports: typer ~25 ms, pydantic ~45 ms (the manifest
  models and typer's option adapters need it), rich ~13 ms, PyYAML, filelock and tenacity
  ~18 ms, our own modules ~45 ms (frozen dataclasses cost ~0.45 ms each to build on
  Python 3.11). httpx (~25 ms) the peer pays too.
- The requests' ~0.1 s is the journal's fsyncs: with `os.fsync` a no-op (a probe, never
  the code) apply's 400 requests take as long as the peer's. 550-660 fsyncs a run,
  0.33 s of disk time in all (median 0.33 ms, p90 1.1 ms); each request waits for its
  intent's (before it is sent) and its delete's (before the next is announced), and the
  eight workers' answers come in bursts, each burst's records needing about two fsyncs.
- Tried and left out, each worth ~10 ms here and no more: reading the pipelines (token,
  List Pipelines, details) on a thread while the plan is shown, under --auto-approve (the
  reads need the GIL between round trips, which the rendering holds); skipping typer's
  pydantic adapters for options not given (the first adapter pays pydantic's schema
  machinery, which the manifest models need anyway); and a shorter GIL switch interval.
  Making one fsync cover a delete and the same worker's next intent (above) is worth
  0-40 ms here and changes the pool's worker loop and when a request is reported done.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from reconciler.ledger import read

MANIFESTS, STAGES, ASSETS, BATCH = 4, 10, 10_000, 1_000
TARGET_RATIO = 1.1
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
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-apply-") as tmp:
        root = Path(tmp)
        _workload(root)
        env = {
            **_ENV,
            "CI": "1",
            "NO_COLOR": "1",
            "ENOS_APP_KEY": DEFAULT_APP_KEY,
            "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
        }
        peer_cmd = [
            sys.executable,
            str(HERE / "peer_apply.py"),
            "GATEWAY",
            "manifests",
            str(args.concurrency),
        ]
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
        # Like for like: apply as it runs by default (the canary on) against the peer making
        # the canary's calls too, and apply --no-canary against the plain peer.
        pairs = [
            ("canary", [*peer_cmd, "--canary"], apply_cmd),
            ("no canary", peer_cmd, [*apply_cmd, "--no-canary"]),
        ]
        walls: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):  # interleaved, so all see the same machine load
            for name, peer, apply in pairs:
                for side, cmd in (("peer", peer), ("apply", apply)):
                    ledger.write_bytes(b"")  # an empty ledger: every run sends all 400
                    # A fresh emulator each time: every cell holds state, as before any clear,
                    # so the canary's reads carry their 1,000 items whoever runs first.
                    with _emulator(root, args.latency_ms) as gateway:
                        wall, cpu = _timed(
                            [gateway if a == "GATEWAY" else a for a in cmd],
                            root,
                            env | {"ENOS_API_GATEWAY": gateway},
                        )
                    walls.setdefault((name, side), []).append(wall)
                    cpus.setdefault((name, side), []).append(cpu)
                records = read(ledger).records
                intents = sum(r.kind == "intent" for r in records)
                deletes = sum(r.kind == "delete" for r in records)
                if not intents == deletes == requests:
                    print(
                        f"journal: {intents} intents, {deletes} deletes, expected {requests}", file=sys.stderr
                    )
                    return 1
    ideal = requests * args.latency_ms / 1000 / args.concurrency
    print(
        f"apply benchmark: {requests} requests, {args.latency_ms} ms emulator latency, "
        f"--concurrency {args.concurrency}, {os.cpu_count()} cores, load {load:.2f} -> {os.getloadavg()[0]:.2f}; "
        f"latency floor {ideal:.2f} s"
    )
    ok = True
    for name, _peer, _apply in pairs:
        peer, best = min(walls[name, "peer"]), min(walls[name, "apply"])
        ratio = best / peer
        ok = ok and ratio <= TARGET_RATIO
        print(f"  {name}:")
        print(
            f"    peer    best {peer:.3f} s of {args.runs} ({_all(walls[name, 'peer'])}); {_cpu(cpus[name, 'peer'])}"
        )
        print(
            f"    apply   best {best:.3f} s of {args.runs} ({_all(walls[name, 'apply'])}); "
            f"{_cpu(cpus[name, 'apply'])}; {requests} intents + deletes, fsynced"
        )
        print(f"    ratio   {ratio:.3f}x   target <= {TARGET_RATIO}x")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


@contextmanager
def _emulator(root: Path, latency_ms: int, state: str = "world.json", *more: str) -> Iterator[str]:
    """`reconcile emulator` on a world (`state`, from `root`), in its own process, with
    `more` of its options; its URL."""
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
            state,
            "--latency-ms",
            str(latency_ms),
            *more,
        ],
        cwd=root,
        env=_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        emulator.terminate()
        emulator.wait()


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds (user + system) of the process."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def _cpu(cpus: list[float]) -> str:
    return "CPU " + ", ".join(f"{c:.2f}" for c in cpus) + " s"


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
