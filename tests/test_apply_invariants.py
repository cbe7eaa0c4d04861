"""Invariants 9 and 10 as properties: random interleavings of lost answers, console starts
and Ctrl-Cs across consecutive applies over one ledger, checked against what reached the
emulator (its delete log and every pipeline status change, in order)."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import fault_pipeline as pipe
from helpers import interrupt_main
from helpers import numbered_manifest as manifest
from helpers.emulators import running
from helpers.examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import ledger as L
from reconciler.apply import ApplyOptions, ApplyResult, Gateways, NullReporter, apply
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RunningEmulator, World
from reconciler.emulator.world import FakeClock, Pipeline
from reconciler.enos import Credentials, EnosClient, Session
from reconciler.errors import LockError
from reconciler.manifests import Manifest
from reconciler.plan import Options, build_plan, diff

Event = tuple[Any, ...]


class _Watched(Pipeline):
    """A pipeline whose every status change lands on its world's timeline."""

    timeline: list[Event]

    @property  # type: ignore[override]
    def status(self) -> str:
        return str(self.__dict__["status"])

    @status.setter
    def status(self, value: str) -> None:
        if self.__dict__.get("status") != value:
            self.__dict__["timeline"].append(("status", self.pipeline_id, value))
        self.__dict__["status"] = value


class _DeleteLog(list):  # type: ignore[type-arg]
    def __init__(self, timeline: list[Event]) -> None:
        super().__init__()
        self.timeline = timeline

    def append(self, entry: Any) -> None:
        super().append(entry)
        cells = {(entry["stage"], a, p) for a in entry["assets"] for p in entry["points"]}
        self.timeline.append(("delete", entry["pipelineId"], frozenset(cells)))


class WatchedWorld(World):
    """A world that keeps one ordered timeline of status changes and successful deletes."""

    def __init__(self, seed: dict[str, Any], **kw: Any) -> None:
        super().__init__(seed, **kw)
        self.timeline: list[Event] = [("status", p.pipeline_id, p.status) for p in self.pipelines.values()]
        for p in self.pipelines.values():
            p.__dict__["timeline"] = self.timeline
            p.__class__ = _Watched
        self.delete_log = _DeleteLog(self.timeline)


def re_clears_while_not_paused(timeline: list[Event]) -> list[str]:
    """Invariant 10: a cell cleared again only while its pipeline stayed PAUSED since."""
    ran: dict[tuple[str, Any], bool] = {}  # (pipeline, cell) -> ran since its last clear
    bad: list[str] = []
    for kind, pid, what in timeline:
        if kind == "status" and what != "PAUSED":
            for key in ran:
                if key[0] == pid:
                    ran[key] = True
        elif kind == "delete":
            for cell in what:
                if ran.get((pid, cell)):
                    bad.append(f"{pid} {cell} cleared again after the pipeline ran")
                ran[(pid, cell)] = False
    return bad


def left_paused_by_us(timeline: list[Event]) -> list[str]:
    """Pipelines whose last move from RUNNING to PAUSED (only apply pauses) has no start after."""
    state: dict[str, str] = {}
    open_pause: dict[str, bool] = {}
    for kind, pid, what in timeline:
        if kind != "status":
            continue
        if what == "PAUSED" and state.get(pid) == "RUNNING":
            open_pause[pid] = True
        elif what == "RUNNING":
            open_pause[pid] = False
        state[pid] = what
    return sorted(p for p, is_open in open_pause.items() if is_open)


fault = st.one_of(
    st.tuples(
        st.just("lose"),
        st.sampled_from(["delete", "operate:pause", "operate:start"]),
        st.integers(1, 6),
        st.integers(1, 16),  # a request ends in doubt after 12 (6 attempts, re-sent once)
    ),
    st.tuples(st.just("lose_request"), st.sampled_from(["p1", "p2"]), st.integers(0, 3)),
    st.tuples(st.just("console_start"), st.sampled_from(["p1", "p2"]), st.integers(1, 8)),
    st.tuples(st.just("interrupt"), st.integers(1, 10)),
)
runs = st.lists(st.tuples(st.lists(fault, max_size=3), st.sampled_from([1, 2, 4])), min_size=2, max_size=3)

MANIFESTS: list[Manifest] = [manifest("m1", "p1", ("s1", "s2"), assets=4), manifest("m2", "p2", assets=4)]
SEED = {
    "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
    "pipelines": [pipe("p1", "RUNNING"), pipe("p2", "PAUSED")],
}


def arm(world: World, f: tuple[Any, ...]) -> int:
    """Arm one fault; how many deletes a console start may let through (61199)."""
    if f[0] == "lose":
        world.on_request(f[1], skip=f[2] - 1, times=f[3], lose_answer=True)
    elif f[0] == "lose_request":  # every answer to one request, all run long: it ends in doubt
        pid, asset = f[1], f"a{f[2]:03d}"
        world.on_request(
            lambda e: (
                e["route"] == "delete"
                and (e["body"] or {}).get("pipelineId") == pid
                and (e["body"] or {}).get("assetIds") == asset
            ),
            times=None,
            lose_answer=True,
        )
    elif f[0] == "console_start":
        world.set_status_after("delete", f[2], f[1], "RUNNING")
        # Only the requests already in flight when the person starts it: 61199 is not
        # retried, and a retry of a lost answer first asks whether it is still PAUSED.
        return 1
    else:
        world.on_request("delete", skip=f[1] - 1, after=lambda w, e: interrupt_main())
    return 0


def run_apply(em: RunningEmulator, path: Path, clock: FakeClock, concurrency: int) -> ApplyResult:
    plan = build_plan(diff(MANIFESTS, L.read(path)), Options(max_assets=1))
    options = ApplyOptions(concurrency=concurrency, pause_pipelines=True, poll_interval=1.0)
    with (
        EnosClient(
            Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), sleep=lambda s: None)
        ) as c,
        L.LedgerWriter(L.read(path)) as w,
    ):
        return apply(plan, Gateways.single(c), w, NullReporter(), options, sleep=clock.advance, clock=clock)


@pytest.mark.slow(2)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
@settings(
    max_examples=examples(12), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(runs)
def test_no_re_clear_after_a_run_and_every_pause_started_again(
    scenario: list[tuple[list[tuple[Any, ...]], int]],
) -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp, running(WatchedWorld(SEED, clock=clock)) as em:
        world = em.world
        assert isinstance(world, WatchedWorld)
        path = Path(tmp) / "ledger.jsonl"
        path.touch()
        let_through = 0
        for faults, concurrency in scenario:
            world.hooks = []
            let_through += concurrency * sum(arm(world, f) for f in faults)
            run_apply(em, path, clock, concurrency)
            L.read(path)  # verifies after every run
        world.hooks = []
        run_apply(em, path, clock, 4)  # a clean run settles what is left
        assert re_clears_while_not_paused(world.timeline) == []  # invariant 10
        assert left_paused_by_us(world.timeline) == []  # every pause of ours is started again
        assert build_plan(diff(MANIFESTS, L.read(path))).pending_resumes == ()
        assert len(world.violations) <= let_through  # only the deletes a console start met


def test_re_clear_check_sees_a_pipeline_that_ran() -> None:
    """The checker itself: a clear, a run, the same cell cleared again is a violation."""
    cell = frozenset({("s1", "a", "x")})
    ran = [
        ("delete", "p1", cell),
        ("status", "p1", "RUNNING"),
        ("status", "p1", "PAUSED"),
        ("delete", "p1", cell),
    ]
    assert re_clears_while_not_paused(ran) != []
    assert re_clears_while_not_paused([("delete", "p1", cell), ("delete", "p1", cell)]) == []


@pytest.mark.parametrize("spelling", ["symlink", "dotted"])
def test_two_applies_through_two_spellings_never_send_at_once(tmp_path: Path, spelling: str) -> None:
    """Invariant 9: the second apply, whatever it calls the ledger, is refused by the lock."""
    real = tmp_path / "ledger.jsonl"
    real.touch()
    (tmp_path / "sub").mkdir()
    other = tmp_path / "link.jsonl"
    if spelling == "symlink":
        other.symlink_to(real)
    else:
        other = tmp_path / "sub" / ".." / "ledger.jsonl"
    clock = FakeClock()
    with running(World({**SEED, "pipelines": [pipe("p1"), pipe("p2")]}, clock=clock)) as em:
        held = em.world.on_request("delete", hold=True)
        outcome: list[BaseException | ApplyResult] = []

        def first() -> None:
            with L.LedgerLock(real):
                outcome.append(run_apply(em, real, clock, 1))

        t = threading.Thread(target=first)
        t.start()
        em.world.wait_for(lambda e: e["route"] == "delete")
        try:
            with pytest.raises(LockError), L.LedgerLock(other):
                run_apply(em, other, clock, 1)
        finally:
            held.release()
            t.join()
        assert len(em.world.delete_log) == len(set(map(str, em.world.delete_log)))  # nothing twice
        assert isinstance(outcome[0], ApplyResult) and outcome[0].ok
