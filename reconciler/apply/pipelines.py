"""Pipelines in a run: pause and wait, the pauses an interrupted run left, and who stopped
being PAUSED mid-run (DESIGN "Apply" steps 4 and 5); `starts` starts them again.

Pause and start are checked by reading the status back (List Pipelines). A pipeline
found no longer PAUSED mid-run gets no more requests (invariant 10): the workers ask
`still_paused` before a retry, so that part is thread-safe; the rest runs in the run's
own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from reconciler.apply.gateways import Gateways, status_of
from reconciler.apply.journal import Journal
from reconciler.apply.values import ApplyOptions, ApplyResult, EarlierPause, Reporter, Resume
from reconciler.errors import ApplyRefused, EnosError
from reconciler.plan.values import PendingResume, PipelineRef, writable

if TYPE_CHECKING:
    from reconciler.enos import Pipeline


class PauseCut(Exception):
    """The run stopped while a pause call settled: the call went out, so it is ours to start."""


class Pipelines:
    """Pause, wait, watch and start the pipelines of one run."""

    def __init__(
        self,
        gateways: Gateways,
        journal: Journal,
        reporter: Reporter,
        options: ApplyOptions,
        result: ApplyResult,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        now: Callable[[], float],
    ) -> None:
        self.gateways = gateways
        self.journal = journal
        self.reporter = reporter
        self.options = options
        self.result = result
        self.sleep = sleep
        self.clock = clock
        self.now = now
        self.never_paused: set[PipelineRef] = set()  # waited pause_timeout in vain
        self.called: set[PipelineRef] = set()  # its last pause call went out: ours to start
        self.seen_paused: set[PipelineRef] = set()  # PAUSED read back after our pause call
        self._lock = threading.Lock()
        self._stopped: dict[PipelineRef, str] = {}  # no longer PAUSED mid-run, and why

    # --- pause ---

    def pause(self, r: Resume, stop: Callable[[], bool] = lambda: False) -> float:
        """The pause call (its record is written already), then wait for PAUSED; when it
        began (clock). From the call on, the pipeline is started again whatever happens.
        Runs in the rollout's pause thread; `stop()` (the run stopped) cuts the wait short
        with `PauseCut`."""
        ref = r.ref
        self.called.discard(ref)
        self.seen_paused.discard(ref)
        self.reporter.note(f"pausing {self.result.label(ref)}")
        client = self.gateways.client(ref.org_id)
        try:
            client.pause(*ref)
        except EnosError as exc:
            # The answer may be lost, or a retry refused with 61152 after the first pause
            # landed: the status read back decides (DESIGN "Apply" step 5).
            status = self.gateways.status(ref)
            if status != "PAUSED" and exc.definite and status == "RUNNING":
                self.journal.resume(ref, f"pause refused: {exc}")
                raise ApplyRefused(
                    f"could not pause {ref.pipeline_id}: {exc}; nothing was sent to it"
                ) from exc
            self.reporter.note(f"pause of {ref.pipeline_id} answered {exc}; reading its status back")
        began = self.clock()
        self.called.add(ref)
        if ref not in self.result.paused:
            self.result.paused.append(ref)
        self.wait_status(ref, "PAUSED", stop)
        self.seen_paused.add(ref)
        return began

    def wait_status(self, ref: PipelineRef, wanted: str, stop: Callable[[], bool] = lambda: False) -> bool:
        """Poll List Pipelines until `wanted`, for up to pause_timeout; PAUSED never reached
        refuses the run (nothing is sent to that pipeline)."""
        o = self.options
        reached, status = self.gateways.wait_status(
            ref,
            wanted,
            timeout=o.pause_timeout,
            poll=o.poll_interval,
            clock=self.clock,
            sleep=self.sleep,
            stop=stop,
        )
        if not reached and stop():
            raise PauseCut(ref.pipeline_id)
        if not reached and wanted == "PAUSED":
            self.never_paused.add(ref)
            raise ApplyRefused(
                f"{ref.pipeline_id} did not reach PAUSED within {o.pause_timeout:g}s "
                f"(it is {status}); nothing was sent to it"
            )
        return reached

    # --- pauses an interrupted run left ---

    def leftover_resumes(
        self, leftover: Mapping[PipelineRef, PendingResume], statuses: dict[PipelineRef, Pipeline]
    ) -> list[Resume]:
        """Pipelines an interrupted run paused: started again once this run's deletes are done."""
        out: list[Resume] = []
        for ref, pending in sorted(leftover.items()):
            status = status_of(statuses, ref)
            if status == "RUNNING" and self._pause_may_land(ref, pending):
                status = "PAUSED"
            if status != "PAUSED":
                self.reporter.note(
                    f"{ref.pipeline_id} was left paused by an earlier run but is {status} now; "
                    "recording it as resumed without starting it"
                )
                self.journal.resume(ref, f"found {status}")
                continue
            found = max(0.0, self.now() - _epoch(pending.paused_at))
            self.result.earlier_pauses[ref] = EarlierPause(pending.paused_at, found, self.clock())
            mode, rate = pending.execution_mode, pending.kafka_rate
            if mode is None or rate is None:
                self.result.resume_failed.append((ref, "its pause record has no executionMode/kafkaRate"))
                continue
            configured = self.options.resume_settings.get(ref)
            out.append(Resume(ref, mode, rate, configured.resource_config if configured else None))
        return out

    def _pause_may_land(self, ref: PipelineRef, pending: PendingResume) -> bool:
        """A pause sent by a run that was killed may still be settling: look again before closing.

        Only a pause recorded less than `pause_timeout` ago can still land (the record is
        written just before the call); it is polled for what is left of that time, at most
        ten polls, before it is closed as found RUNNING.
        """
        left = self.options.pause_timeout - (self.now() - _epoch(pending.paused_at))
        if left <= 0:
            return False
        self.reporter.note(
            f"{ref.pipeline_id} is RUNNING; checking whether an earlier pause is still landing"
        )
        deadline = self.clock() + min(left, 10 * self.options.poll_interval)
        while self.clock() < deadline:
            self.sleep(self.options.poll_interval)
            if self.gateways.status(ref) == "PAUSED":
                return True
        return False

    # --- no longer PAUSED mid-run (called from the sending workers) ---

    def stopped(self, ref: PipelineRef) -> str | None:
        """Why the pipeline gets nothing more in this run, or None."""
        with self._lock:
            return self._stopped.get(ref)

    def still_paused(self, ref: PipelineRef) -> bool:
        """After 61199: read the status; a pipeline no longer PAUSED gets nothing more this run."""
        if self.stopped(ref) is not None:
            return False
        status = self.gateways.status_or_unknown(ref)  # unknown is not PAUSED: nothing more
        if writable(status):
            return True
        with self._lock:
            if ref in self._stopped:
                return False
            why = f"{ref.pipeline_id} is {status} now (started outside reconcile?)"
            self._stopped[ref] = why
        self.reporter.note(f"{why}: no more requests go to it in this run")
        # Closing any pause of ours: the pipeline ran, so earlier in-doubt requests
        # must not be re-sent without a person (DESIGN "Applied ledger").
        self.journal.resume(ref, f"found {status} during apply")
        return False

    def stopped_pipelines(self) -> list[tuple[PipelineRef, str]]:
        with self._lock:
            return list(self._stopped.items())


def _epoch(at: str) -> float:
    """A ledger time (`2026-11-27T10:00:00.123Z`) in seconds; unreadable counts as just now."""
    try:
        return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return time.time()
