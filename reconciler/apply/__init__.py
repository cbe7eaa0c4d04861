"""apply(plan, gateways, writer, reporter, options) -> ApplyResult.

Performs exactly the plan's requests and nothing else (invariant 1), only on
pipelines seen PAUSED (invariant 7; unless `skip_pause_check`), journalling an `intent`
before and a `delete` or `failed` after every request (invariant 4), and starting again
every pipeline it paused and those an earlier run left paused, also when deletes fail,
the ledger cannot be written or the run is interrupted. Pause and start are checked by
reading the status back; a pipeline is never started while requests to it are in
flight, and one that stops being PAUSED mid-run gets nothing more (invariant 10).
While the run and its finish are under way, Ctrl-C and SIGTERM are a flag the run
reads at safe points (`interrupts`), never an exception at an arbitrary line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.apply.gateways import Gateways, status_of
from reconciler.apply.preflight import check_statuses, decide_in_doubt, resumes_to_form
from reconciler.apply.stages import StageNames, stage_warnings
from reconciler.apply.values import ApplyOptions, ApplyResult, NullReporter, Outcome, Reporter
from reconciler.errors import LedgerMoved, LedgerWriteError, PlanError
from reconciler.ledger import LedgerWriter
from reconciler.plan import Plan
from reconciler.plan.values import MISSING, PipelineRef, writable

if TYPE_CHECKING:  # httpx is imported only when a client is made: `plan` never needs it
    from reconciler.enos import Pipeline

__all__ = [
    "MISSING",
    "ApplyOptions",
    "ApplyResult",
    "Gateways",
    "NullReporter",
    "Outcome",
    "Reporter",
    "apply",
    "stage_warnings",
    "status_of",
    "writable",
]


def apply(
    plan: Plan,
    gateways: Gateways,
    writer: LedgerWriter,
    reporter: Reporter,
    options: ApplyOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
    publish: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Send the plan's requests; raise `ApplyRefused` before sending anything if unsafe.

    `publish` (the ledger in git) is called once each pause's `pause` and `intent` records
    are written, before the calls they announce, and once each `start` record is written,
    before its start call (invariant 11). Setting `stop` (the run's
    lease on the remote could not be renewed) sends nothing more, as Ctrl-C does, and
    starts no pipeline: the run that now holds the ledger starts it.

    Ctrl-C or SIGTERM before the run begins raises KeyboardInterrupt (nothing was paused or
    sent). From then on, in the main thread, they are deferred (`Interrupts.deferred`): the
    run stops sending, waits for what is in flight, records it, starts every pipeline it
    paused, and returns with `interrupted` set; a further one is said and changes nothing.
    """
    # threads and pools: loaded by apply, not by plan
    from reconciler.apply.journal import Journal
    from reconciler.apply.rollout import Rollout, schedule
    from reconciler.plan.rollout import Costs

    if writer.head != (plan.ledger.seq, plan.ledger.hash):
        raise PlanError(
            f"the plan was made against ledger seq {plan.ledger.seq}, but the ledger being written "
            f"is at seq {writer.head[0]}; plan again"
        )
    journal = Journal(writer, options.actor, publish if options.write_ahead else None)
    run = Rollout(gateways, journal, reporter, options, sleep=sleep, clock=clock, now=now, stop=stop)
    interrupts = run.interrupts
    result = run.result
    leftover = {r.pipeline: r for r in plan.pending_resumes}
    gateways.preflight({a.org_id for a in plan.actions} | {p.org_id for p in leftover})
    names = StageNames(gateways, plan.actions)  # read while List Pipelines is asked
    wanted = {a.pipeline for a in plan.actions}
    statuses: dict[PipelineRef, Pipeline] = {}
    latency = None
    if not options.skip_pause_check or leftover or any(a.in_doubt for a in plan.actions):
        started = time.monotonic()  # the latency the estimates count, as `plan --refresh` measures it
        statuses = gateways.statuses(sorted(wanted | set(leftover)))
        latency = (time.monotonic() - started) / max(1, len({ref.org_id for ref in wanted | set(leftover)}))
    result.names = {ref: p.name for ref, p in statuses.items() if p.name}
    actions = decide_in_doubt(plan.actions, statuses, options, result, reporter)
    for warning in names.warnings(actions):  # before anything is paused
        reporter.note(f"warning: {warning}")
    sending = {a.pipeline for a in actions}
    to_pause = [] if options.skip_pause_check else check_statuses(sending, statuses, options)
    pauses = resumes_to_form(to_pause, statuses, options)  # refuses before pausing anything
    left = run.pipelines.leftover_resumes(leftover, statuses)
    costs = Costs(latency, options.concurrency, options.canary, options.snapshot is not None)
    steps = schedule(actions, pauses, [r for r in left if r.ref in sending], costs, options.max_pause)
    finish, end_progress = True, False
    with interrupts.deferred():  # the handlers put back last, once every pipeline is started
        try:
            run.run(steps, [r for r in left if r.ref not in sending])
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: in-flight requests are waited for below
            result.interrupted = end_progress = True
        except LedgerWriteError as exc:
            result.ledger_error = exc
            end_progress = True
        except LedgerMoved as exc:
            # The run's first push lost the compare-and-swap: nothing was done, and nothing
            # of what the other apply paused is ours to start. Interrupted meanwhile, the
            # caller must not plan and try again.
            finish = journal.published
            if interrupts.heard:
                raise KeyboardInterrupt from exc
            raise
        finally:
            if finish:
                run.finish()
            if end_progress:  # its last line counts the requests in flight, answered by now
                reporter.finish()
            result.ledger_seqs = (plan.ledger.seq, writer.head[0])
    if interrupts.heard:  # one that came after the run's last look, during its finish
        result.interrupted = True
    return result
