"""What `apply --snapshot` costs: the same apply with and without evidence, side by side.

    python tests/bench/snapshot.py [--runs N] [--concurrency 8] [--latency-ms 50]

The workload of `apply.py` (400 requests of 1,000 cells, every cell holding state, an
emulator answering each call in 50 ms, in its own process). With `--snapshot FILE.gz`
each request is read first (one more call) and its 1,000 items appended, gzipped and
fsynced, before its delete. Best of N each, interleaved. Prints both walls, the ratio,
the file's size and its check against the ledger (`ledger show --snapshot`).

Target: with a snapshot <= 3x without (the read doubles the calls; the rest is
writing 400,000 items). Exits 1 when missed, or when the evidence does not match.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from apply import _ENV, _all, _free_port, _timed, _wait_for, _workload

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

TARGET_RATIO = 3.0


def _fresh(root: Path, latency_ms: int) -> tuple[subprocess.Popen[bytes], int]:
    """An emulator whose every cell holds state again (a delete is remembered per process)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", str(port), "--state", "world.json",
         "--latency-ms", str(latency_ms)],
        cwd=root, env=_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(port)
    return proc, port


def _run(root: Path, args: argparse.Namespace, extra: list[str]) -> float:
    (root / "applied-ledger.jsonl").write_bytes(b"")
    emulator, port = _fresh(root, args.latency_ms)
    env = {
        **_ENV,
        "CI": "1",
        "NO_COLOR": "1",
        "ENOS_API_GATEWAY": f"http://127.0.0.1:{port}",
        "ENOS_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
    }
    cmd = [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        "--auto-approve",
        "--concurrency",
        str(args.concurrency),
    ]
    try:
        return _timed([*cmd, *extra], root, env)
    finally:
        emulator.terminate()
        emulator.wait()


def bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-snapshot-") as tmp:
        root = Path(tmp)
        _workload(root)
        evidence = root / "evidence.jsonl.gz"
        plain, snap = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            plain.append(_run(root, args, []))
            evidence.unlink(missing_ok=True)
            snap.append(_run(root, args, ["--snapshot", str(evidence)]))
        check = subprocess.run(
            [sys.executable, "-m", "reconciler", "ledger", "verify", "--snapshot", str(evidence)],
            cwd=root, env=_ENV, capture_output=True, text=True, check=False,
        )  # fmt: skip
        size = evidence.stat().st_size
    ratio = min(snap) / min(plain)
    checked = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()
    ok = ratio <= TARGET_RATIO and check.returncode == 0 and "400,000 items match" in checked
    print(
        f"snapshot benchmark: 400 requests x 1,000 cells, {args.latency_ms} ms latency, --concurrency {args.concurrency}"
    )
    print(f"  apply             best {min(plain):.3f} s ({_all(plain)})")
    print(
        f"  apply --snapshot  best {min(snap):.3f} s ({_all(snap)}); evidence {size / 2**20:.1f} MiB gzipped"
    )
    print(f"  ratio   {ratio:.2f}x   target <= {TARGET_RATIO}x")
    print(f"  check   {checked}")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/bench/snapshot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="runs of each (best is kept)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=50)
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
