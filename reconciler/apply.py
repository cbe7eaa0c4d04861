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

from reconciler.client import EnosClient, Pipeline
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
    result = ApplyResult()
    wanted = {a.pipeline for a in plan.actions}
    leftover = {r.pipeline: r for r in plan.paused_by_us}
    client.token()  # pre-flight: credentials work before anything else happens
    statuses: dict[PipelineKey, Pipeline] = {}
    if not options.skip_pause_check or leftover:
        statuses = client.pipeline_statuses(sorted(wanted | set(leftover)))
    to_pause = [] if options.skip_pause_check else _check_statuses(wanted, statuses, options)
    pauses = _resumes_to_form(to_pause, statuses, options)  # refuses before pausing anything
    resumes = pauses + _leftover_resumes(leftover, statuses, writer, reporter, options)
    actions = _decide_in_doubt(plan.actions, statuses, options, result, reporter)
    try:
        for r in pauses:
            _pause(client, writer, reporter, r, options, result, sleep)
        _send_all(actions, client, writer, reporter, options, result)
        if options.verify:
            _verify(client, reporter, result)
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        paused_now = set(result.paused) | set(leftover)
        for r in resumes:
            if r.key in paused_now:
                _resume(client, writer, reporter, r, options, result)
    return result


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
    leftover: dict[PipelineKey, Record],
    statuses: dict[PipelineKey, Pipeline],
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
) -> list[_Resume]:
    """Pipelines an interrupted run paused: started again once their deletes are done."""
    out: list[_Resume] = []
    for key, record in sorted(leftover.items()):
        status = _status(statuses, key)
        if status != "PAUSED":
            reporter.note(
                f"{key[1]} was left paused by an earlier run but is {status} now; "
                "recording it as resumed without starting it"
            )
            writer.append(
                "resume",
                {"orgId": key[0], "pipelineId": key[1], "note": f"found {status}", "actor": options.actor},
            )
            continue
        out.append(_Resume(key, int(record.data["executionMode"]), int(record.data["kafkaRate"])))
    return out


def _decide_in_doubt(
    actions: Iterable[Action],
    statuses: dict[PipelineKey, Pipeline],
    options: ApplyOptions,
    result: ApplyResult,
    reporter: Reporter,
) -> list[Action]:
    """Re-send an in-doubt request only while its pipeline stayed paused (DESIGN "Applied ledger")."""
    out: list[Action] = []
    for a in actions:
        if not a.in_doubt:
            out.append(a)
            continue
        paused_now = _status(statuses, a.pipeline) == "PAUSED"
        if options.resend_in_doubt or (paused_now and not a.resumed_since):
            out.append(a)
        else:
            result.skipped_in_doubt.append(a)
    if result.skipped_in_doubt:
        n = len(result.skipped_in_doubt)
        reporter.note(
            f"{n} in-doubt request(s) left to a person: their pipeline ran since they were sent. "
            "Check the state, then `reconcile ledger resolve` (done) or `apply --resend-in-doubt`."
        )
    return out


# --- pause and resume ------------------------------------------------------------


def _pause(
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    r: _Resume,
    options: ApplyOptions,
    result: ApplyResult,
    sleep: Callable[[float], None],
) -> None:
    org, pid = r.key
    reporter.note(f"pausing {pid}")
    # Recorded before the call: a crash right after pausing must still leave a record
    # that makes the next apply start the pipeline again (a record of a pause that did
    # not happen is harmless: that apply finds it RUNNING and leaves it alone).
    writer.append(
        "pause",
        {
            "orgId": org,
            "pipelineId": pid,
            "executionMode": r.execution_mode,
            "kafkaRate": r.kafka_rate,
            "actor": options.actor,
        },
    )
    try:
        client.pause(org, pid)
    except EnosError:
        writer.append(
            "resume", {"orgId": org, "pipelineId": pid, "note": "pause failed", "actor": options.actor}
        )
        raise
    result.paused.append(r.key)  # from here on it is started again, whatever happens
    deadline = time.monotonic() + options.pause_timeout
    while True:
        found = client.pipeline_statuses([r.key])
        status = _status(found, r.key)
        if status == "PAUSED":
            reporter.note(f"{pid} is PAUSED")
            return
        if time.monotonic() >= deadline:
            raise ApplyRefused(
                f"{pid} did not reach PAUSED within {options.pause_timeout:g}s (it is {status})"
            )
        sleep(options.poll_interval)


def _resume(
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    r: _Resume,
    options: ApplyOptions,
    result: ApplyResult,
) -> None:
    org, pid = r.key
    try:
        client.start(org, pid, r.execution_mode, r.kafka_rate)
    except EnosError as exc:
        result.resume_failed.append((r.key, str(exc)))
        reporter.note(f"could not start {pid} again: {exc}. Start it in the EnOS console (24 h pause limit).")
        return
    writer.append("resume", {"orgId": org, "pipelineId": pid, "actor": options.actor})
    result.resumed.append(r.key)
    reporter.note(f"started {pid} again")


# --- deletes ---------------------------------------------------------------------


def _send_all(
    actions: list[Action],
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
    result: ApplyResult,
) -> None:
    if not actions:
        return
    reporter.start(len(actions), sum(a.cells for a in actions))
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="delete")
    futures: dict[Future[None], Action] = {
        pool.submit(_send_one, a, client, writer, reporter, options, result): a for a in actions
    }
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        # Requests already sent finish and are journalled; queued ones are never sent.
        for f in futures:
            if f.cancel():
                result.not_sent.append(futures[f])
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    reporter.finish()


def _send_one(
    action: Action,
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
    result: ApplyResult,
) -> None:
    writer.append("intent", {**action.cell_fields(), "actor": options.actor})
    _delete(action, client, writer, reporter, options, result)


def _delete(
    action: Action,
    client: EnosClient,
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
    result: ApplyResult,
) -> None:
    try:
        client.delete_stage_state(
            action.org_id, action.pipeline_id, action.stage, action.asset_ids, action.point_ids
        )
    except TooManyPointsError:
        if action.cells <= 1:
            _failed(
                action, "the gateway refuses even a single cell as too many points (61105)", reporter, result
            )
            return
        # The halves are covered by the parent's intent (DESIGN: matching is by cells).
        for half in action.halves():
            _delete(half, client, writer, reporter, options, result)
        return
    except EnosError as exc:
        _failed(action, str(exc), reporter, result)
        return
    writer.append("delete", {**action.cell_fields(), "actor": options.actor})
    with result.lock:
        result.deleted.append(action)
    reporter.advance(action, True)


def _failed(action: Action, message: str, reporter: Reporter, result: ApplyResult) -> None:
    with result.lock:
        result.failed.append((action, message))
    reporter.advance(action, False, message)


def _verify(client: EnosClient, reporter: Reporter, result: ApplyResult) -> None:
    """Read every deleted cell back with Get Stage State; no item may remain."""
    reporter.note(f"verifying {len(result.deleted)} request(s) with Get Stage State")
    for a in result.deleted:
        try:
            items = client.get_stage_state(a.org_id, a.pipeline_id, a.stage, a.asset_ids, a.point_ids)
        except EnosError as exc:
            result.verify_failed.append((a, -1))
            reporter.note(f"verify failed for {a.manifest}/{a.stage}: {exc}")
            continue
        assets, points = set(a.asset_ids), set(a.point_ids)
        left = sum(1 for i in items if i.get("assetId") in assets and i.get("pointId") in points)
        if left:
            result.verify_failed.append((a, left))
            reporter.note(f"verify: {left} cell(s) of {a.manifest}/{a.stage} still hold state")
    if not result.verify_failed:
        reporter.note(f"verified: no state left in the {result.cells_deleted:,} cleared cell(s)")
