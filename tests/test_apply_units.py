"""`StoppablePool`, `Starter` and the rollout's schedule as units: fakes and a fake clock,
no emulator, milliseconds each (review R4: they were reachable only through whole runs)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler.apply.gateways import Gateways
from reconciler.apply.pool import StoppablePool
from reconciler.apply.requests import CanaryGate
from reconciler.apply.rollout import schedule
from reconciler.apply.stages import StageNames
from reconciler.apply.starts import Started, Starter
from reconciler.apply.values import ApplyOptions, NullReporter, Resume
from reconciler.emulator.world import FakeClock
from reconciler.enos.client import PipelineDetails
from reconciler.enos.pipelinejson import stage_names
from reconciler.errors import EnosError, OrgBusyError
from reconciler.plan import Action
from reconciler.plan.rollout import Costs, chunks, rollout
from reconciler.plan.values import PipelineRef
from reconciler.windows import pause_duration as parse_duration

P1, P2 = PipelineRef("o", "p1"), PipelineRef("o", "p2")


def action(i: int, pipeline: str = "p1", stage: str = "s1") -> Action:
    return Action("m", "o", pipeline, stage, (f"a{i:03d}",), ("x",))


# --- the pool ------------------------------------------------------------------------


def pool(concurrency: int = 1) -> tuple[StoppablePool[str], threading.Event]:
    halt = threading.Event()
    return StoppablePool(concurrency, NullReporter(), halt), halt


def test_the_pause_that_began_first_goes_first_and_others_fill_in() -> None:
    p, _ = pool(concurrency=1)
    order: list[str] = []

    def work(a: Action) -> str:
        order.append(a.pipeline_id)  # in the order the worker takes them
        return a.pipeline_id

    p.hold()  # nothing begins until both are queued
    late = p.submit([action(1, "p2"), action(2, "p2")], work, lambda a: None, lambda x: None, priority=(1, 0))
    first = p.submit([action(3), action(4)], work, lambda a: None, lambda x: None, priority=(0, 1))
    p.release()
    p.wait_all([*late, *first])
    assert order == ["p1", "p1", "p2", "p2"]
    p.close()


def test_a_ctrl_c_at_any_point_of_taking_the_pools_lock_never_leaves_it_held() -> None:
    """Python raises a Ctrl-C at whatever line the run's thread is on. Here one is raised on
    the first line the run's thread runs after the pool's lock is acquired, as a signal would
    be: in `threading.Condition.__enter__`, had the pool entered its lock that way, which
    left it held and both workers blocked on it for ever (a 300 s timeout in
    test_apply_invariants); else inside the pool's own `with`, which lets it go. The run
    stops through it, and both requests in flight end and are collected."""
    import sys

    p, _ = pool(concurrency=2)
    gate = threading.Event()
    begun = threading.Semaphore(0)
    collected: list[str] = []

    def work(a: Action) -> str:
        begun.release()
        gate.wait(10)
        return a.asset_ids[0]

    futures = p.submit([action(1), action(2)], work, lambda a: None, collected.append)
    assert begun.acquire(timeout=10) and begun.acquire(timeout=10)  # both in flight before the run waits
    outcome: list[str] = []
    interrupted = threading.Event()
    pool_file = sys.modules[StoppablePool.__module__].__file__

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if outcome:  # one interrupt
            return None
        if (
            frame.f_code.co_name == "__enter__"
            and frame.f_locals.get("self") is p._lock
            and event == "return"
        ):
            outcome.append("interrupted in Condition.__enter__")
            interrupted.set()
            raise KeyboardInterrupt
        in_wait = frame.f_code.co_filename == pool_file and frame.f_code.co_name == "wait_all"
        if in_wait and event == "line" and p._lock._is_owned():  # type: ignore[attr-defined]
            outcome.append("interrupted holding the lock in a with")
            interrupted.set()
            raise KeyboardInterrupt
        return tracer

    def run() -> None:
        sys.settrace(tracer)
        try:
            p.wait_all(futures)
        except KeyboardInterrupt:
            outcome.append("stopped")
        finally:
            sys.settrace(None)

    t = threading.Thread(target=run, daemon=True)  # stuck for ever on the old code
    t.start()
    # the run's thread is interrupted while both are in flight (a sleep of 0.3 s made that
    # likely only: under load the two could end first), and waits for them
    assert interrupted.wait(10), outcome
    gate.set()
    t.join(timeout=10)
    assert not t.is_alive(), f"the run never stopped: {outcome}"
    assert outcome[-1] == "stopped" and len(outcome) == 2, outcome
    assert sorted(collected) == ["a001", "a002"]  # both ended and were handed over
    p.close()


class OpenOnStop(NullReporter):
    """Opens `gate` when the pool says it stops: once it has cancelled what was queued."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def note(self, message: str) -> None:
        super().note(message)
        if message.startswith("stopping:"):
            self.gate.set()


def test_a_stop_cancels_what_is_queued_once_each_and_waits_for_what_is_in_flight() -> None:
    # The request in flight ends once the stop has cancelled the queued ones: a timer of
    # 0.05 s let it end first when the test's thread was late to stop (under load), and the
    # next one began before the stop.
    gate = threading.Event()
    halt = threading.Event()
    p = StoppablePool(1, OpenOnStop(gate), halt)
    started = threading.Event()
    cancelled: list[Action] = []
    collected: list[str] = []

    def work(a: Action) -> str:
        started.set()
        gate.wait(5)
        return a.asset_ids[0]

    futures = p.submit([action(i) for i in range(4)], work, cancelled.append, collected.append)
    started.wait(5)
    p.stop_and_wait()
    assert halt.is_set() and collected == ["a000"]  # the one in flight finished and was collected
    assert sorted(a.asset_ids[0] for a in cancelled) == ["a001", "a002", "a003"]
    p.stop_and_wait()
    p.collect()
    assert len(cancelled) == 3 and len(collected) == 1  # each told once
    assert all(f.done() for f in futures)
    p.close()


def test_a_failed_outcome_stops_the_pool_and_is_raised() -> None:
    p, halt = pool(concurrency=1)
    boom = RuntimeError("ledger full")
    with pytest.raises(RuntimeError, match="ledger full"):
        p.run(
            [action(i) for i in range(3)],
            lambda a: "x",
            lambda a: None,
            lambda x: None,
            failed=lambda x: boom,
        )
    assert halt.is_set()
    p.close()


def test_every_request_that_ends_wakes_the_run_once_begun_or_not() -> None:
    """The rollout waits for `done`, not a tick: each request answered, and each one a stop
    kept from beginning, tells it once."""
    halt, ended = threading.Event(), threading.Semaphore(0)
    p: StoppablePool[str] = StoppablePool(1, NullReporter(), halt, done=ended.release)
    gate = threading.Event()
    p.submit([action(0)], lambda a: (gate.wait(5), "slow")[1], lambda a: None, lambda x: None)
    assert not ended.acquire(timeout=0.05)  # in flight: nothing ended yet
    p.submit([action(1), action(2)], lambda a: "x", lambda a: None, lambda x: None)
    halt.set()  # the queued two begin after the stop: they send nothing, and still wake it
    gate.set()
    assert all(ended.acquire(timeout=5) for _ in range(3))
    p.close()


def test_hold_waits_for_requests_in_flight_and_begins_none() -> None:
    p, _ = pool(concurrency=2)
    gate, began = threading.Event(), threading.Event()
    seen: list[str] = []
    p.submit([action(0)], lambda a: (began.set(), gate.wait(5), "slow")[2], lambda a: None, seen.append)
    assert began.wait(5)  # in flight (one only queued is not: hold keeps it from beginning)
    threading.Timer(0.05, gate.set).start()
    p.hold()  # returns once the slow one is done
    assert gate.is_set()
    later = p.submit([action(1)], lambda a: "later", lambda a: None, seen.append)
    assert not later[0].done()  # held: not begun
    p.release()
    p.wait_all(later)
    assert seen == ["slow", "later"]
    p.close()


def test_wait_all_returns_once_every_outcome_is_handed_over_once() -> None:
    p, _ = pool(concurrency=4)
    seen: list[str] = []
    futures = p.submit([action(i) for i in range(200)], lambda a: a.asset_ids[0], lambda a: None, seen.append)
    p.wait_all(futures)
    assert sorted(seen) == [f"a{i:03d}" for i in range(200)]
    p.close()


def test_a_canary_waiting_for_the_deletes_in_flight_goes_before_any_delete_that_comes_later() -> None:
    gate, order = CanaryGate(), []
    in_flight, release = threading.Event(), threading.Event()

    def delete(name: str, hold: bool = False) -> None:
        with gate.sending():
            order.append(name)
            if hold:
                in_flight.set()
                release.wait(5)

    first = threading.Thread(target=delete, args=("in flight", True))
    first.start()
    assert in_flight.wait(5)

    def canary() -> None:
        with gate.checking():
            order.append("canary")

    waiting = threading.Thread(target=canary)
    waiting.start()
    while not gate._canary_waiting:  # the canary waits for the delete in flight
        time.sleep(0.001)
    later = threading.Thread(target=delete, args=("later",))
    later.start()
    later.join(0.05)  # given the time to go ahead of the canary, it does not
    release.set()
    for t in (first, waiting, later):
        t.join(5)
    assert order == ["in flight", "canary", "later"]


# --- the starter ---------------------------------------------------------------------


# --- the stage names, read alongside List Pipelines ------------------------------------


class DetailsClient:
    """Get Pipeline Details as a gateway answers it: s1 only, or an error."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail

    def pipeline_details(self, org_id: str, pipeline_id: str) -> PipelineDetails:
        if self.fail is not None:
            raise self.fail
        raw = '{"stages": [{"instanceName": "s1"}]}'
        return PipelineDetails(pipeline_id, pipeline_id, stage_names(raw), raw)


def test_stage_names_warn_only_about_the_actions_asked_and_silence_means_not_known() -> None:
    gw = SimpleNamespace(client=lambda org: DetailsClient())
    names = StageNames(gw, [action(1), action(2, stage="s9"), action(3, "p2", "s8")])  # type: ignore[arg-type]
    warned = names.warnings([action(2, stage="s9")])  # p2's request is held back (in doubt)
    assert len(warned) == 1 and "o/p1 (p1) has no stage named 's9'" in warned[0]
    failing = SimpleNamespace(client=lambda org: DetailsClient(EnosError("unreachable")))
    assert StageNames(failing, [action(1, stage="s9")]).warnings() == []  # type: ignore[arg-type]


def test_a_bug_in_a_stage_name_read_is_raised_in_the_callers_thread() -> None:
    broken = SimpleNamespace(client=lambda org: DetailsClient(ValueError("a bug")))
    names = StageNames(broken, [action(1), action(2, "p2")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a bug"):
        names.warnings()


class FakeClient:
    def __init__(self, gw: FakeGateways) -> None:
        self.gw = gw

    def start(self, org: str, pipeline: str, mode: int, rate: int, resource: str | None) -> None:
        self.gw.calls.append(("start", pipeline))
        answer = self.gw.answers.pop(0) if self.gw.answers else None
        if self.gw.lands:
            self.gw.status_now[pipeline] = "RUNNING"
        if answer is not None:
            raise answer
        self.gw.status_now[pipeline] = "RUNNING"

    def offset_lag(self, org: str, pipeline: str) -> SimpleNamespace:
        self.gw.lag_reads.append(pipeline)
        return SimpleNamespace(lag=7)


class FakeGateways:
    def __init__(self, answers: list[EnosError | None], status: str = "PAUSED") -> None:
        self.answers = answers
        self.lands = False  # a start that fails still lands (its answer was lost)
        self.calls: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.lag_reads: list[str] = []
        self.status_now: dict[str, str] = {"p1": status, "p2": status}

    def client(self, org: str) -> FakeClient:
        return FakeClient(self)

    def status(self, ref: PipelineRef) -> str:
        self.reads.append(ref.pipeline_id)
        return self.status_now[ref.pipeline_id]

    def status_or_unknown(self, ref: PipelineRef) -> str:
        return self.status(ref)

    def wait_status(self, ref: PipelineRef, wanted: str, **kw: Any) -> tuple[bool, str]:
        now = self.status_now[ref.pipeline_id]  # polls are not `reads`: those are single looks
        return now == wanted, now


class FakeJournal:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def start(self, ref: PipelineRef) -> None:
        self.records.append(("start", ref.pipeline_id))

    def resume(self, ref: PipelineRef, note: str | None = None) -> None:
        self.records.append(("resume", ref.pipeline_id))

    def reopen(self, r: Resume) -> None:
        self.records.append(("pause", r.ref.pipeline_id))


def starter(
    answers: list[EnosError | None],
    *,
    may_start: Callable[[], str | None] = lambda: None,
    timeout: float = 60,
    seen_paused: set[PipelineRef] | None = None,
) -> tuple[Starter, FakeGateways, FakeJournal, FakeClock]:
    clock, gw, journal = FakeClock(), FakeGateways(answers), FakeJournal()
    options = ApplyOptions(start_timeout=timeout, start_backoff=1.0)
    s = Starter(
        gw,  # type: ignore[arg-type]
        journal,  # type: ignore[arg-type]
        NullReporter(),
        options,
        clock=clock,
        sleep=clock.advance,
        never_paused=set(),
        seen_paused=seen_paused,
        may_start=may_start,
    )
    return s, gw, journal, clock


def test_61121_is_waited_out_with_backoff_and_the_start_confirmed() -> None:
    s, gw, journal, clock = starter([OrgBusyError("busy", code=61121)] * 3)
    s.add(Resume(P1, 1, 1000))
    t0 = clock()
    (report,) = s.run()
    assert report.outcome is Started.RUNNING and report.ref == P1
    assert gw.calls == [("start", "p1")] * 4
    assert journal.records == [("start", "p1"), ("resume", "p1")]  # one start record, not four
    assert 0 < clock() - t0 < 60


def test_61121_past_the_start_timeout_leaves_it_paused_on_record() -> None:
    s, _gw, journal, _ = starter([OrgBusyError("busy", code=61121)] * 100, timeout=10)
    s.add(Resume(P1, 1, 1000))
    (report,) = s.run()
    assert report.outcome is Started.LEFT_PAUSED and "61121" in report.why
    assert journal.records[0] == ("start", "p1") and journal.records[-1] == ("pause", "p1")  # reopened


def test_one_org_busy_does_not_hold_another() -> None:
    s, _gw, _, _ = starter([OrgBusyError("busy", code=61121), None])
    s.add(Resume(P1, 1, 1000))
    s.add(Resume(PipelineRef("o2", "p2"), 1, 1000))
    reports = s.step()  # o: 61121, o2: started at once
    assert [r.ref.pipeline_id for r in reports] == ["p2"]
    assert [r.outcome for r in s.run()] == [Started.RUNNING]


def test_a_run_that_lost_its_lease_starts_nothing() -> None:
    s, gw, journal, _ = starter([], may_start=lambda: "this run may have lost its lease on the ledger")
    s.add(Resume(P1, 1, 1000))
    (report,) = s.run()
    assert report.outcome is Started.LEFT_PAUSED and "lease" in report.why
    assert gw.calls == [] and journal.records == []


def test_a_lost_start_answer_is_read_back() -> None:
    s, gw, _, _ = starter([EnosError("connection reset")])
    gw.lands = True
    s.add(Resume(P1, 1, 1000))
    (report,) = s.run()
    assert report.outcome is Started.RUNNING and gw.calls == [("start", "p1")]


def test_a_pipeline_this_run_saw_paused_is_started_without_reading_its_status_first() -> None:
    seen = {P1}
    s, gw, _, _ = starter([], seen_paused=seen)
    s.add(Resume(P1, 1, 1000))
    s.add(Resume(P2, 1, 1000))  # left paused by an earlier run: its pause may still be settling
    assert [r.outcome for r in s.run()] == [Started.RUNNING, Started.RUNNING]
    assert gw.reads == ["p2"]  # one look before its start; RUNNING is then confirmed by polling
    assert seen == set()  # started: a later pause of p1 must be confirmed again


def test_lags_are_read_once_the_starts_are_done_not_between_two_starts() -> None:
    """Get Pipeline Offset and Lag is only news: the next start of the org does not wait for it."""
    s, gw, _, _ = starter([])
    s.add(Resume(P1, 1, 1000))
    s.add(Resume(P2, 1, 1000))
    assert [r.outcome for r in s.run()] == [Started.RUNNING, Started.RUNNING]
    assert gw.lag_reads == []  # none between the two starts
    assert [(ref, lag.lag) for ref, lag in s.lags()] == [(P1, 7), (P2, 7)]
    assert s.lags() == [] and gw.lag_reads == ["p1", "p2"]  # once each


class StatusClient:
    """List Pipelines, answering PAUSED from `at` on (clock), each read's time kept."""

    def __init__(self, clock: FakeClock, at: float) -> None:
        self.clock, self.at = clock, at
        self.reads: list[float] = []

    def pipeline_statuses(self, refs: object) -> dict[tuple[str, str], SimpleNamespace]:
        self.reads.append(self.clock())
        return {("o", "p1"): SimpleNamespace(status="PAUSED" if self.clock() >= self.at else "RUNNING")}


def test_status_polls_start_short_and_back_off_to_the_poll_interval() -> None:
    clock = FakeClock(0.0)
    client = StatusClient(clock, at=10.0)
    gw = Gateways.single(client)  # type: ignore[arg-type]
    reached, status = gw.wait_status(P1, "PAUSED", timeout=600, poll=2.0, clock=clock, sleep=clock.advance)
    assert reached and status == "PAUSED"
    gaps = [b - a for a, b in itertools.pairwise(client.reads)]
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0])
    assert client.reads[-1] - 10.0 < 2.0  # seen within one poll interval of landing


def test_status_polls_stop_at_the_timeout() -> None:
    clock = FakeClock(0.0)
    client = StatusClient(clock, at=1e9)
    reached, status = Gateways.single(client).wait_status(  # type: ignore[arg-type]
        P1, "PAUSED", timeout=5, poll=2.0, clock=clock, sleep=clock.advance
    )
    assert not reached and status == "RUNNING" and client.reads[-1] == pytest.approx(5.0)


# --- the schedule ----------------------------------------------------------------------


def test_fewer_requests_first_left_over_pauses_first_and_long_ones_cut() -> None:
    acts = [action(i, "big") for i in range(5)] + [action(9, "small")] + [action(8, "left")] * 1
    costs = Costs(latency=1.0, concurrency=1, canary=False)
    resumes = [Resume(PipelineRef("o", "big"), 1, 1), Resume(PipelineRef("o", "small"), 1, 1)]
    left = [Resume(PipelineRef("o", "left"), 1, 1)]
    steps = schedule(acts, resumes, left, costs, max_pause=3 / 0.9)
    assert [(p.ref.pipeline_id, len(p.actions), p.paused) for p in steps] == [
        ("left", 1, True),
        ("small", 1, False),
        ("big", 3, False),
        ("big", 2, False),
    ]
    assert steps[2].estimate == (3 + 4) * 1.0  # its requests, then pause and start


def test_the_plan_s_rollout_counts_pauses_and_estimates_offline_as_null() -> None:
    acts = [action(i, "p1") for i in range(10)]
    online = rollout(acts, [P1], Costs(latency=0.05, concurrency=4, canary=True, snapshot=True))
    assert online[0].pauses == 1 and online[0].estimated_pause_seconds == pytest.approx(
        (5 + 4 + 3) * 0.05
    )  # 9 requests and their snapshot reads / 4, pause and start, one stage's canary (3 calls)
    offline = rollout(acts, [], Costs(latency=None))
    assert offline[0].to_json()["estimatedPauseSeconds"] is None and offline[0].pauses == 0
    assert len(chunks(acts, 4)) == 3


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "-1m", "24h", "soon", "", "45"])
def test_bad_durations_say_why(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_pause_words_say_the_total_the_longest_and_an_overrun() -> None:
    from reconciler.apply.values import ApplyResult, Span
    from reconciler.plan.values import PipelineRef

    ref = PipelineRef("o1", "p1")
    r = ApplyResult()
    assert r.pause_words(ref) is None  # never paused by this run
    r.spans.append(Span(ref, 4.0, 3.0))
    assert r.pause_words(ref) == "paused 4s"
    r.spans.append(Span(ref, 130.0, 20.0))  # more than twice its estimate, by more than a second
    assert r.pause_words(ref) == "paused 2m14s in 2 pauses, longest 2m10s (over twice its estimate of 20s)"
    assert len(f"o1/p1, {r.pause_words(ref)}") < 120
