"""apply(plan, client, writer, reporter, options) -> ApplyResult.

Performs exactly the plan's requests and nothing else (invariant 1), only on
pipelines seen PAUSED (invariant 7), journalling an `intent` before and a
`delete` after every request (invariant 4), and starting again exactly the
pipelines it paused, also when deletes fail or the run is interrupted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.enos import EnosClient, Pipeline
from reconciler.errors import ApplyRefused, EnosError, TooManyPointsError
from reconciler.ledger import LedgerWriter, Record
from reconciler.plan import Action, Plan

PipelineKey = tuple[str, str]


class Reporter(Protocol):
    """What apply tells the person watching; the CLI renders it (progress bar or lines)."""

    def note(self, message: str) -> None: ...
    def start(self, requests: int, cells: int) -> None: ...
    def advance(self, action: Action, ok: bool, message: str = "") -> None: ...
    def finish(self) -> None: ...


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int = 4
    pause_pipelines: bool = False
    skip_pause_check: bool = False
    resend_in_doubt: bool = False
    verify: bool = False
    kafka_rate: int | None = None
    pause_timeout: float = 600.0
    poll_interval: float = 2.0
    actor: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApplyResult:
    deleted: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    skipped_in_doubt: list[Action] = field(default_factory=list)
    not_sent: list[Action] = field(default_factory=list)
    paused: list[PipelineKey] = field(default_factory=list)
    resumed: list[PipelineKey] = field(default_factory=list)
    resume_failed: list[tuple[PipelineKey, str]] = field(default_factory=list)
    verify_failed: list[tuple[Action, int]] = field(default_factory=list)
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ok(self) -> bool:
        return not (
            self.failed
            or self.skipped_in_doubt
            or self.not_sent
            or self.resume_failed
            or self.verify_failed
            or self.interrupted
        )

    @property
    def cells_deleted(self) -> int:
        return sum(a.cells for a in self.deleted)


@dataclass
class _Resume:
    """A pipeline to start again at the end, with the body its `pause` record holds."""

    key: PipelineKey
    execution_mode: int
    kafka_rate: int


def apply(
    plan: Plan,
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyResult:
    """Send the plan's requests; raise `ApplyRefused` before sending anything if unsafe."""
    run = _Run(client, writer, reporter, options, ApplyResult(), sleep)
    wanted = {a.pipeline for a in plan.actions}
    leftover = {r.pipeline: r for r in plan.paused_by_us}
    client.token()  # pre-flight: credentials work before anything else happens
    statuses: dict[PipelineKey, Pipeline] = {}
    if not options.skip_pause_check or leftover:
        statuses = client.pipeline_statuses(sorted(wanted | set(leftover)))
    to_pause = [] if options.skip_pause_check else _check_statuses(wanted, statuses, options)
    pauses = _resumes_to_form(to_pause, statuses, options)  # refuses before pausing anything
    resumes = pauses + _leftover_resumes(leftover, statuses, run)
    actions = _decide_in_doubt(plan.actions, statuses, run)
    try:
        for r in pauses:
            run.pause(r)
        run.send_all(actions)
        if options.verify:
            run.verify()
    except KeyboardInterrupt:
        run.result.interrupted = True
        raise
    finally:
        paused_now = set(run.result.paused) | set(leftover)
        for r in resumes:
            if r.key in paused_now:
                run.resume(r)
    return run.result


# --- pre-flight ------------------------------------------------------------------


def _status(statuses: dict[PipelineKey, Pipeline], key: PipelineKey) -> str:
    """A pipeline's status; one List Pipelines does not return is MISSING (never written to)."""
    return statuses[key].status if key in statuses else "MISSING"


def _check_statuses(
    wanted: Iterable[PipelineKey], statuses: dict[PipelineKey, Pipeline], options: ApplyOptions
) -> list[PipelineKey]:
    """Only PAUSED may be written to; RUNNING is paused on request; anything else blocks."""
    blocked: list[str] = []
    to_pause: list[PipelineKey] = []
    for key in sorted(wanted):
        status = _status(statuses, key)
        if status == "PAUSED":
            continue
        if status == "RUNNING" and options.pause_pipelines:
            to_pause.append(key)
        else:
            blocked.append(f"  {key[0]} / {key[1]}: {status}")
    if blocked:
        hint = (
            "Pause them in the EnOS console, or pass --pause-pipelines to pause RUNNING ones "
            "for the run and start them again after."
            if not options.pause_pipelines
            else "Only RUNNING pipelines can be paused; STOPPED, PUBLISHED, unknown or missing "
            "ones are never touched."
        )
        raise ApplyRefused(
            "not every pipeline in the plan is PAUSED; nothing was sent:\n" + "\n".join(blocked) + "\n" + hint
        )
    return to_pause


def _resumes_to_form(
    to_pause: list[PipelineKey], statuses: dict[PipelineKey, Pipeline], options: ApplyOptions
) -> list[_Resume]:
    """The start body for each pipeline to pause; refuse before pausing any if one can't be formed."""
    out: list[_Resume] = []
    missing: list[str] = []
    for key in to_pause:
        p = statuses[key]
        rate = p.kafka_rate if p.kafka_rate is not None else options.kafka_rate
        if p.execution_mode is None or rate is None:
            what = "executionMode" if p.execution_mode is None else "kafkaRate (pass --kafka-rate N)"
            missing.append(f"  {key[0]} / {key[1]}: List Pipelines gives no {what}")
        else:
            out.append(_Resume(key, p.execution_mode, rate))
    if missing:
        raise ApplyRefused(
            "cannot form the start request to resume these pipelines, so none was paused:\n"
            + "\n".join(missing)
        )
    return out


def _leftover_resumes(
    leftover: dict[PipelineKey, Record], statuses: dict[PipelineKey, Pipeline], run: _Run
) -> list[_Resume]:
    """Pipelines an interrupted run paused: started again once their deletes are done."""
    out: list[_Resume] = []
    for key, record in sorted(leftover.items()):
        status = _status(statuses, key)
        if status != "PAUSED":
            run.reporter.note(
                f"{key[1]} was left paused by an earlier run but is {status} now; "
                "recording it as resumed without starting it"
            )
            run.record("resume", {"orgId": key[0], "pipelineId": key[1], "note": f"found {status}"})
            continue
        out.append(_Resume(key, int(record.data["executionMode"]), int(record.data["kafkaRate"])))
    return out


def _decide_in_doubt(
    actions: Iterable[Action], statuses: dict[PipelineKey, Pipeline], run: _Run
) -> list[Action]:
    """Re-send an in-doubt request only while its pipeline stayed paused (DESIGN "Applied ledger")."""
    out: list[Action] = []
    for a in actions:
        if not a.in_doubt:
            out.append(a)
            continue
        paused_now = _status(statuses, a.pipeline) == "PAUSED"
        if run.options.resend_in_doubt or (paused_now and not a.resumed_since):
            out.append(a)
        else:
            run.result.skipped_in_doubt.append(a)
    if run.result.skipped_in_doubt:
        n = len(run.result.skipped_in_doubt)
        run.reporter.note(
            f"{n} in-doubt request(s) left to a person: their pipeline ran since they were sent. "
            "Check the state, then `reconcile ledger resolve` (done) or `apply --resend-in-doubt`."
        )
    return out


# --- the run: pause, delete, verify, resume ---------------------------------------


@dataclass
class _Run:
    """The collaborators of one apply, and what it has done so far."""

    client: EnosClient
    writer: LedgerWriter
    reporter: Reporter
    options: ApplyOptions
    result: ApplyResult
    sleep: Callable[[float], None]

    def record(self, kind: str, fields: dict[str, Any]) -> None:
        self.writer.append(kind, {**fields, "actor": self.options.actor})

    def pause(self, r: _Resume) -> None:
        org, pid = r.key
        self.reporter.note(f"pausing {pid}")
        # Recorded before the call: a crash right after pausing must still leave a record
        # that makes the next apply start the pipeline again (a record of a pause that did
        # not happen is harmless: that apply finds it RUNNING and leaves it alone).
        self.record(
            "pause",
            {"orgId": org, "pipelineId": pid, "executionMode": r.execution_mode, "kafkaRate": r.kafka_rate},
        )
        try:
            self.client.pause(org, pid)
        except EnosError:
            self.record("resume", {"orgId": org, "pipelineId": pid, "note": "pause failed"})
            raise
        self.result.paused.append(r.key)  # from here on it is started again, whatever happens
        self._wait_paused(r.key)

    def _wait_paused(self, key: PipelineKey) -> None:
        deadline = time.monotonic() + self.options.pause_timeout
        while True:
            status = _status(self.client.pipeline_statuses([key]), key)
            if status == "PAUSED":
                self.reporter.note(f"{key[1]} is PAUSED")
                return
            if time.monotonic() >= deadline:
                raise ApplyRefused(
                    f"{key[1]} did not reach PAUSED within {self.options.pause_timeout:g}s (it is {status})"
                )
            self.sleep(self.options.poll_interval)

    def resume(self, r: _Resume) -> None:
        org, pid = r.key
        try:
            self.client.start(org, pid, r.execution_mode, r.kafka_rate)
        except EnosError as exc:
            self.result.resume_failed.append((r.key, str(exc)))
            self.reporter.note(
                f"could not start {pid} again: {exc}. Start it in the EnOS console (24 h pause limit)."
            )
            return
        self.record("resume", {"orgId": org, "pipelineId": pid})
        self.result.resumed.append(r.key)
        self.reporter.note(f"started {pid} again")

    def send_all(self, actions: list[Action]) -> None:
        if not actions:
            return
        self.reporter.start(len(actions), sum(a.cells for a in actions))
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.concurrency), thread_name_prefix="delete")
        futures: dict[Future[None], Action] = {pool.submit(self.send_one, a): a for a in actions}
        try:
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            # Requests already sent finish and are journalled; queued ones are never sent.
            for f in futures:
                if f.cancel():
                    self.result.not_sent.append(futures[f])
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
        self.reporter.finish()

    def send_one(self, action: Action) -> None:
        self.record("intent", action.cell_fields())
        self.delete(action)

    def delete(self, action: Action) -> None:
        try:
            self.client.delete_stage_state(
                action.org_id, action.pipeline_id, action.stage, action.asset_ids, action.point_ids
            )
        except TooManyPointsError:
            if action.cells <= 1:
                self.failed(action, "the gateway refuses even a single cell as too many points (61105)")
                return
            # The halves are covered by the parent's intent (DESIGN: matching is by cells).
            for half in action.halves():
                self.delete(half)
            return
        except EnosError as exc:
            self.failed(action, str(exc))
            return
        self.record("delete", action.cell_fields())
        with self.result.lock:
            self.result.deleted.append(action)
        self.reporter.advance(action, True)

    def failed(self, action: Action, message: str) -> None:
        with self.result.lock:
            self.result.failed.append((action, message))
        self.reporter.advance(action, False, message)

    def verify(self) -> None:
        """Read every deleted cell back with Get Stage State; no item may remain."""
        result = self.result
        self.reporter.note(f"verifying {len(result.deleted)} request(s) with Get Stage State")
        for a in result.deleted:
            try:
                items = self.client.get_stage_state(
                    a.org_id, a.pipeline_id, a.stage, a.asset_ids, a.point_ids
                )
            except EnosError as exc:
                result.verify_failed.append((a, -1))
                self.reporter.note(f"verify failed for {a.manifest}/{a.stage}: {exc}")
                continue
            assets, points = set(a.asset_ids), set(a.point_ids)
            left = sum(1 for i in items if i.get("assetId") in assets and i.get("pointId") in points)
            if left:
                result.verify_failed.append((a, left))
                self.reporter.note(f"verify: {left} cell(s) of {a.manifest}/{a.stage} still hold state")
        if not result.verify_failed:
            self.reporter.note(f"verified: no state left in the {result.cells_deleted:,} cleared cell(s)")
