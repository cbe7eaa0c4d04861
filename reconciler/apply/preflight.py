"""Before anything is sent: which pipelines may be written to, paused, and re-sent to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.apply.gateways import status_of
from reconciler.apply.values import ApplyOptions, ApplyResult, Reporter, Resume
from reconciler.errors import ApplyRefused, Hint, Hinted
from reconciler.plan import Action
from reconciler.plan.values import MISSING, PipelineRef, writable
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.enos import Pipeline


def check_statuses(
    wanted: Iterable[PipelineRef], statuses: dict[PipelineRef, Pipeline], options: ApplyOptions
) -> list[PipelineRef]:
    """Only PAUSED may be written to; RUNNING is paused on request; anything else blocks."""
    blocked: list[str] = []
    missing: list[str] = []
    to_pause: list[PipelineRef] = []
    for ref in sorted(wanted):
        status = status_of(statuses, ref)
        if writable(status):
            continue
        if status == MISSING:
            missing.append(
                f"  {ref.pipeline_id}: not found in org {ref.org_id} (List Pipelines, released "
                "pipelines only): check spec.pipelineId and spec.orgId"
            )
        elif status == "RUNNING" and options.pause_pipelines:
            to_pause.append(ref)
        else:
            name = statuses[ref].name if ref in statuses else ""
            shown = f" ({name})" if name and name != ref.pipeline_id else ""
            blocked.append(f"  {ref.org_id} / {ref.pipeline_id}{shown}: {status}")
    if missing or blocked:
        lines = [*missing, *blocked]
        said = ""
        if blocked and options.pause_pipelines:
            said = "\nOnly RUNNING pipelines can be paused; STOPPED, PUBLISHED or unknown ones are never touched."
        raise ApplyRefused(
            "not every pipeline in the plan can be written to; nothing was sent:\n" + "\n".join(lines) + said,
            hint=Hint.PAUSE_PIPELINES if blocked and not options.pause_pipelines else None,
        )
    return to_pause


def resumes_to_form(
    to_pause: list[PipelineRef], statuses: dict[PipelineRef, Pipeline], options: ApplyOptions
) -> list[Resume]:
    """The start body for each pipeline to pause; refuse before pausing any if one can't be formed."""
    out: list[Resume] = []
    missing: list[str] = []
    no_rate = False
    for ref in to_pause:
        p = statuses[ref]
        configured = options.resume_settings.get(ref)
        mode = p.execution_mode if p.execution_mode is not None else configured and configured.execution_mode
        rate = p.kafka_rate if p.kafka_rate is not None else configured and configured.kafka_rate
        rate = rate if rate is not None else options.kafka_rate
        resource = configured.resource_config if configured else None
        if mode is None or rate is None:
            what = "executionMode" if mode is None else "kafkaRate"
            no_rate = no_rate or rate is None
            missing.append(
                f"  {ref.org_id} / {ref.pipeline_id}: List Pipelines gives no {what}; "
                "set it under `pipelines` in reconcile.yaml"
            )
        else:
            out.append(Resume(ref, mode, rate, resource))
    if missing:
        raise ApplyRefused(
            "cannot form the start request to resume these pipelines, so none was paused:\n"
            + "\n".join(missing),
            hint=Hint.KAFKA_RATE if no_rate else None,
        )
    return out


def decide_in_doubt(
    actions: Iterable[Action],
    statuses: dict[PipelineRef, Pipeline],
    options: ApplyOptions,
    result: ApplyResult,
    reporter: Reporter,
) -> list[Action]:
    """Re-send an in-doubt request only while its pipeline stayed paused (DESIGN "Applied ledger").

    Decided before any pause: a request held for a person never causes a pause.
    """
    out: list[Action] = []
    for a in actions:
        if not a.in_doubt:
            out.append(a)
            continue
        paused_now = writable(status_of(statuses, a.pipeline))
        if options.resend_in_doubt or (paused_now and not a.resumed_since):
            out.append(a)
        else:
            result.skipped_in_doubt.append(a)
    if result.skipped_in_doubt:
        n = len(result.skipped_in_doubt)
        reporter.note(
            Hinted(
                f"{plural(n, 'in-doubt request')} left to a person: their pipeline ran since they were sent, "
                "or is not PAUSED now (or its status could not be read). "
                "Check the state, then `reconcile ledger resolve` them if they took effect.",
                Hint.RESEND_IN_DOUBT,
            )
        )
    return out
