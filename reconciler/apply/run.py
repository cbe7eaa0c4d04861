"""One run: its journal, its stoppable pool, its pipelines and its requests, and the order
they act in (invariants 4, 7, 10 and 14).

`apply()` drives the steps; each job lives in its own module: `journal` (every record),
`pool` (requests `--concurrency` at a time, stopped cleanly), `pipelines` (pause, wait,
watch, start again) and `requests` (send, split, hold, doubt, verify).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from reconciler.apply.gateways import Gateways
from reconciler.apply.journal import Journal
from reconciler.apply.pipelines import Pipelines
from reconciler.apply.pool import StoppablePool
from reconciler.apply.requests import Outcomes, Requests
from reconciler.apply.values import ApplyOptions, ApplyResult, Reporter, Resume
from reconciler.ledger import LedgerWriter
from reconciler.plan import Action
from reconciler.plan.values import PendingResume, PipelineRef

if TYPE_CHECKING:
    from reconciler.enos import Pipeline


class Run:
    """The collaborators of one apply, and what it has done so far."""

    def __init__(
        self,
        gateways: Gateways,
        writer: LedgerWriter,
        reporter: Reporter,
        options: ApplyOptions,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        now: Callable[[], float],
        halt: threading.Event | None = None,
    ) -> None:
        self.reporter = reporter
        self.options = options
        self.result = ApplyResult()
        self.halt = halt or threading.Event()
        self.journal = Journal(writer, options.actor)
        self.pool: StoppablePool[Outcomes] = StoppablePool(options.concurrency, reporter, self.halt)
        self.pipelines = Pipelines(
            gateways, self.journal, reporter, options, self.result, sleep=sleep, clock=clock, now=now
        )
        self.requests = Requests(
            gateways, self.journal, self.pipelines, self.pool, reporter, options, self.result
        )

    def write_ahead(
        self, pauses: Sequence[Resume], actions: Sequence[Action], publish: Callable[[str], None] | None
    ) -> None:
        self.journal.write_ahead(pauses, actions, publish)

    def leftover_resumes(
        self, leftover: Mapping[PipelineRef, PendingResume], statuses: dict[PipelineRef, Pipeline]
    ) -> list[Resume]:
        return self.pipelines.leftover_resumes(leftover, statuses)

    def pause(self, r: Resume) -> None:
        self.pipelines.pause(r)

    def send_all(self, actions: list[Action]) -> None:
        self.requests.send_all(actions)

    def resend_doubtful(self) -> None:
        self.requests.resend_doubtful()

    def verify(self) -> None:
        self.requests.verify()

    def finish(self, resumes: Sequence[Resume], leftover: Iterable[PipelineRef]) -> None:
        """The end of every run, however it stopped: wait for what is in flight, then start
        again what was paused; neither is cut short by another Ctrl-C or SIGTERM."""
        if self.pool.shielded(self.pool.stop_and_wait, self.pool.in_flight_note):
            self.result.interrupted = True
        self.requests.close_unsent()
        self.requests.settle()
        self.result.stopped_pipelines = self.pipelines.stopped_pipelines()
        if self.pipelines.resume_all(resumes, leftover, self.pool.shielded):
            self.result.interrupted = True
