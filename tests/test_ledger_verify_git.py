"""`ledger verify` with the ledger in git checks the ledger every other command reads: the
anchored one its branch holds (the store's `read`), and says how the checkout's file stands
beside it. Real git, a bare origin, the emulator over loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    gateway_env,
    manifest_yaml,
    pipeline,
    run_cli,
    world_for,
)

from reconciler import ledger as L


def _origin(tmp_path: Path, branch: str) -> Path:
    files = {
        "reconcile.yaml": LEDGER_IN_GIT.format(branch=branch),
        "manifests/a.yaml": manifest_yaml("a", assets=["a1", "a2"], points=["x"]),
        LEDGER: "",
    }
    return bare_origin(tmp_path, files)


def _applied(tmp_path: Path, make_emulator: Any) -> tuple[Path, Path]:
    """A checkout made before an apply, and the runner's that applied (2 records published)."""
    origin = _origin(tmp_path, "main")
    before = clone(origin, tmp_path / "before")
    runner = clone(origin, tmp_path / "runner")
    em = make_emulator(world_for([pipeline()]))
    assert run_cli(["apply", "--auto-approve"], runner, gateway_env(em)).code == 0
    return before, runner


def test_verify_reads_the_branch_and_names_a_checkout_behind_it(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    stale, runner = _applied(tmp_path, make_emulator)

    res = run_cli(["ledger", "verify"], stale)
    assert res.code == 0, res.all
    assert f"origin/main: {LEDGER}: 2 records, chain intact; head seq 2" in res.out, res.all
    assert f"{LEDGER} in this checkout is behind origin/main (head seq 0 of 2)" in res.err, res.all
    assert (stale / LEDGER).read_bytes() == b""  # verify changes nothing

    res = run_cli(["ledger", "verify"], runner)  # its file is what it published
    assert res.code == 0 and "2 records, chain intact" in res.out and "checkout" not in res.err, res.all


def _append_pause(ledger: Path) -> None:
    """A record a run wrote but never published (a kill before its push)."""
    with L.LedgerWriter(L.read(ledger)) as w:
        w.append("pause", {"orgId": "o1", "pipelineId": "p1"})


def test_verify_names_records_the_branch_lacks_and_a_checkout_that_differs(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    diverged, runner = _applied(tmp_path, make_emulator)

    _append_pause(runner / LEDGER)
    res = run_cli(["ledger", "verify"], runner)
    assert res.code == 0, res.all
    assert "origin/main: " in res.out and "2 records, chain intact; head seq 2" in res.out, res.all
    assert f"{LEDGER} in this checkout has 1 record origin/main does not (head seq 3)" in res.err, res.all

    _append_pause(diverged / LEDGER)  # seq 1 here, while the branch's seq 1 is the intent
    res = run_cli(["ledger", "verify"], diverged)
    assert res.code == 0, res.all
    assert "2 records, chain intact; head seq 2" in res.out, res.all
    assert f"{LEDGER} in this checkout differs from origin/main (its head: seq 1 hash" in res.err, res.all
