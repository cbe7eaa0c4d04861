"""Ctrl-C at any line of the run's thread never hangs apply (`apply.interrupts`).

A signal's default handler raises KeyboardInterrupt between any two bytecodes of the main
thread: just after a stdlib lock was acquired and before the `try` that lets it go. These
tests deliver Ctrl-C there, at every event of the stdlib's threading and futures code the
run's thread passes through in two waits that another thread of the run depends on, as the
kernel would (`signal.raise_signal`: the handler runs at that very line). The run must end,
interrupted, with every pipeline it started again RUNNING, nothing in flight unrecorded and
the ledger verifying. Before Ctrl-C was deferred during the run, some of these hung for
ever (a lock left held by the run's thread, which another thread it then joined needed) or
raised a bug ("release unlocked lock").
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from helpers import (
    fault_pipeline,
    gateway_env,
    interrupt_main,
    manifest_yaml,
    numbered_manifest,
    pipeline,
    run_cli,
    spawn_cli,
    world_for,
    write,
)
from helpers.emulators import running

from reconciler import ledger as L
from reconciler.apply import ApplyOptions, ApplyResult, Gateways, NullReporter, apply
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RunningEmulator, World
from reconciler.emulator.world import FakeClock
from reconciler.enos import Credentials, EnosClient, Session
from reconciler.manifests import Manifest
from reconciler.plan import Options, build_plan, diff

SECOND = (
    r"(waiting for \d+ requests? in flight to finish|still pausing a pipeline|"
    r"still starting (a pipeline|paused pipelines) again|already stopping)"
)
SYNC_CODE = {threading.__file__, sys.modules[Future.__module__].__file__}
WATCHDOG = 60.0  # a run that has not ended by then is stuck for ever: fail instead of hanging


class Hung(Exception):
    """The run never ended."""


class CtrlCAt:
    """A trace function for the run's thread. The first call `opens(frame)` picks opens an
    extent; each line and return of stdlib threading and futures code inside it is counted, and at the
    `at`-th (None: none, only count) Ctrl-C is delivered there. `then` runs once the extent
    is over, or right after Ctrl-C (to let a held request go on)."""

    def __init__(
        self, opens: Callable[[FrameType], bool], at: int | None, then: Callable[[], None] = lambda: None
    ) -> None:
        self.opens = opens
        self.at = at
        self.then = then
        self.events = 0
        self.delivered = False
        self._extent: FrameType | None = None
        self._over = False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self._over:
            return None
        if self._extent is None:
            if event != "call" or not self.opens(frame):
                return self if frame.f_code.co_filename in SYNC_CODE else None
            self._extent = frame
        # a call comes before the function's first line: where its caller's last line was
        if event != "call" and frame.f_code.co_filename in SYNC_CODE and self._inside(frame):
            self.events += 1
            if self.events == self.at:
                self._over = self.delivered = True
                try:
                    signal.raise_signal(signal.SIGINT)  # its handler runs here, at this line
                finally:
                    self.then()
                return None
        if event == "return" and frame is self._extent:
            self._end()
        return self

    def _inside(self, frame: FrameType | None) -> bool:
        while frame is not None:
            if frame is self._extent:
                return True
            frame = frame.f_back
        return False

    def _end(self) -> None:
        self._over = True
        self.then()


@contextmanager
def traced(tracer: CtrlCAt) -> Iterator[None]:
    """The run's thread traced, and a watchdog that turns a run stuck for ever into `Hung`."""

    def hung(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"the run never ended after a Ctrl-C at event {tracer.at}")

    old = signal.signal(signal.SIGUSR1, hung)
    main = threading.main_thread().ident or 0
    watchdog = threading.Timer(WATCHDOG, signal.pthread_kill, (main, signal.SIGUSR1))
    watchdog.start()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(None)
        watchdog.cancel()
        signal.signal(signal.SIGUSR1, old)


def client(em: RunningEmulator) -> EnosClient:
    return EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), sleep=lambda s: None))


def run_apply(
    c: EnosClient,
    ledger: Path,
    manifests: list[Manifest],
    tracer: CtrlCAt,
    reporter: NullReporter,
    **options: Any,
) -> ApplyResult:
    plan = build_plan(diff(manifests, L.read(ledger)), Options(max_assets=1))
    opts = ApplyOptions(poll_interval=1.0, **options)
    clock = FakeClock()
    with L.LedgerWriter(L.read(ledger)) as w, traced(tracer):
        return apply(plan, Gateways.single(c), w, reporter, opts, sleep=clock.advance, clock=clock)


def open_intents(ledger: Path) -> int:
    """Intents whose cells no later `delete` or `failed` covers: requests that may have been
    sent and not recorded."""
    records = L.read(ledger).records  # verifies
    closed = {
        (r.key, a, p)
        for r in records
        if r.kind in ("delete", "failed")
        for a in r.asset_ids
        for p in r.point_ids
    }
    return sum(
        1
        for r in records
        if r.kind == "intent" and any((r.key, a, p) not in closed for a in r.asset_ids for p in r.point_ids)
    )


# --- the wait for a start thread ---------------------------------------------------------


def _waits_for_the_start(frame: FrameType) -> bool:
    """The run's thread waits for its start thread (`Rollout._idle` on `wake`), which sets
    that event as it ends: a lock of it left held leaves the start thread, and the run's
    join of it, stuck for ever."""
    back = frame.f_back
    return (
        frame.f_code is threading.Event.wait.__code__ and back is not None and back.f_code.co_name == "_idle"
    )


def test_a_ctrl_c_at_any_line_of_the_wait_for_a_start_never_hangs_the_run(tmp_path: Path) -> None:
    """A pipeline an earlier run left paused: the run starts it in its start thread and
    waits for it. Ctrl-C at each event of that wait: the start still ends, RUNNING, on
    record, and the run says it was interrupted."""
    ledger = tmp_path / "ledger.jsonl"
    ledger.touch()
    with L.LedgerWriter(L.read(ledger)) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p1", "executionMode": 1, "kafkaRate": 1000})
    left_paused = ledger.read_bytes()
    seed = {
        "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
        "pipelines": [fault_pipeline()],
    }
    with running(World(seed)) as em, client(em) as c:  # one token for every run
        counting = CtrlCAt(_waits_for_the_start, None)
        run_apply(c, ledger, [], counting, NullReporter())
        assert counting.events > 10 and em.world.status("p1") == "RUNNING"  # the wait was traced
        for at in range(1, counting.events + 1):
            ledger.write_bytes(left_paused)
            em.world.set_status("p1", "PAUSED")
            tracer = CtrlCAt(_waits_for_the_start, at)
            result = run_apply(c, ledger, [], tracer, NullReporter())
            assert result.interrupted == tracer.delivered, at
            assert em.world.status("p1") == "RUNNING", at
            assert result.resumed == [("o", "p1")] and result.resume_failed == [], at
            assert build_plan(diff([], L.read(ledger))).pending_resumes == (), at  # verifies, closed
            assert em.world.violations == []


# --- a second Ctrl-C while the run stops ---------------------------------------------------


def _cancels_in_flight(frame: FrameType) -> bool:
    """Stopping, the run's thread cancels each request; the first is the one in flight
    (concurrency 1): its future's lock left held leaves its worker, and the wait for it,
    stuck for ever."""
    back = frame.f_back
    return (
        frame.f_code is concurrent.futures.Future.cancel.__code__
        and back is not None
        and back.f_code.co_name == "stop_and_wait"
    )


def test_a_second_ctrl_c_at_any_line_of_cancelling_a_request_in_flight_never_hangs_the_run(
    tmp_path: Path,
) -> None:
    """The first Ctrl-C comes while a delete is in flight; a second at each event of the run
    taking back its requests, the first of them the one in flight. That request still ends
    and is recorded, the two queued are not sent, and the second Ctrl-C is said."""
    seed = {
        "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
        "pipelines": [fault_pipeline()],
    }
    manifests = [numbered_manifest("m", assets=3)]
    options = {"concurrency": 1, "canary": False}
    with running(World(seed)) as em, client(em) as c:

        def once(at: int | None, ledger: Path) -> tuple[ApplyResult, CtrlCAt, NullReporter]:
            ledger.touch()
            em.world.log.clear()  # the run's own requests only
            held = em.world.on_request("delete", hold=True)
            helper = threading.Thread(
                target=lambda: (
                    em.world.wait_for(lambda e: e["route"] == "delete", WATCHDOG),
                    interrupt_main(),
                )
            )
            helper.start()
            tracer = CtrlCAt(_cancels_in_flight, at, then=held.release)
            reporter = NullReporter()
            try:
                result = run_apply(c, ledger, manifests, tracer, reporter, **options)
            finally:
                held.release()
                helper.join()
            return result, tracer, reporter

        _, counting, _ = once(None, tmp_path / "counting.jsonl")
        assert counting.events > 5  # the cancel was traced
        for at in range(1, counting.events + 1):
            ledger = tmp_path / f"ledger{at}.jsonl"
            result, tracer, reporter = once(at, ledger)
            assert tracer.delivered and result.interrupted, at
            assert len(result.deleted) == 1 and len(result.not_sent) == 2, at
            assert open_intents(ledger) == 0, at  # verifies; the one in flight is recorded
            assert len([e for e in em.world.log if e["route"] == "delete"]) == 1, at
            assert len(second_said(reporter.notes)) == 1, (at, reporter.notes)  # said once
            assert em.world.status("p1") == "PAUSED" and em.world.violations == []


def second_said(lines: list[str]) -> list[str]:
    """What a Ctrl-C or SIGTERM after the first is said as: the step of the finish under way,
    or, when the watcher hears it as that step ends, that the run is stopping already."""
    return [n for n in lines if re.match(SECOND, n)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_outside_the_run_ctrl_c_raises_as_before(sig: int) -> None:
    """Deferral is the run's alone: before and after it a signal whose handler raises
    KeyboardInterrupt still does, and the handlers are what they were."""
    from reconciler.apply.interrupts import Interrupts

    before = signal.signal(sig, signal.default_int_handler)
    try:
        heard = Interrupts()
        with heard.deferred():
            signal.raise_signal(sig)  # counted, not raised
        assert heard.heard and signal.getsignal(sig) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(sig)
    finally:
        signal.signal(sig, before)


# --- the real CLI, signalled at several moments ----------------------------------------------

ARGS = ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1", "--max-paused", "1"]


@pytest.mark.parametrize(
    ("moment", "first", "second"),
    [("operate:pause", signal.SIGTERM, signal.SIGINT), ("operate:start", signal.SIGINT, signal.SIGTERM)],
)
def test_a_signalled_apply_process_starts_its_pipelines_again_and_says_a_second_signal(
    repo: Path, make_emulator: Any, moment: str, first: int, second: int
) -> None:
    """`reconcile apply` as a process, signalled while p1's pause or start call is in flight
    (held at the emulator), then signalled again: it says the second one, lets the call
    end, starts p1 again, sends nothing more (p2 is never paused) and exits 130; what it
    did not send is pending, not in doubt, and the ledger verifies."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING"), pipeline("p2", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", pipeline="p1", assets=["a0"], points=["x"]))
    write(repo / "manifests/b.yaml", manifest_yaml("b", pipeline="p2", assets=["b0", "b1"], points=["x"]))
    held = em.world.on_request(moment, hold=True)  # p1's: the one with fewer requests goes first
    proc = spawn_cli(ARGS, repo, gateway_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        em.world.wait_for(lambda e: e["route"] == "operate", timeout=WATCHDOG)
        proc.send_signal(first)
        proc.send_signal(second)
    finally:
        held.release()
    out, err = proc.communicate(timeout=WATCHDOG)
    assert proc.returncode == 130 and "interrupted" in err, out + err
    assert len(second_said((out + err).splitlines())) == 1, out + err  # said once
    assert [em.world.status(p) for p in ("p1", "p2")] == ["RUNNING", "RUNNING"]
    assert not any(e["route"] == "operate" and "p2" in e["path"] for e in em.world.log)  # never paused
    assert em.world.violations == []
    ledger = repo / "applied-ledger.jsonl"
    assert open_intents(ledger) == 0  # verifies; nothing in doubt
    kinds = [r.kind for r in L.read(ledger).records if r.kind in ("pause", "resume")]
    assert kinds == ["pause", "resume"]
    planned = json.loads(run_cli(["plan", "--format", "json"], repo).out)["summary"]
    assert planned["inDoubtCells"] == 0 and planned["pendingCells"] >= 2  # p2's, at least
