"""Stage names a pipeline does not have: warned about before anything is paused.

Get Pipeline Details' `pipelineJson` (REFERENCE 2.2, format undocumented) may list the
pipeline's stage instance names; the client reads it defensively and says "unknown"
rather than guess. Where it does list them, a manifest's stage name that is not among
them is almost always a typo, which the gateway would only refuse request by request
(DESIGN "Apply" step 7). Read-only calls, so `plan --refresh` warns the same way; the
pipelines' details are read at once (`READS_AT_ONCE` at most), not one after another.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from reconciler.errors import EnosError
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.apply.gateways import Gateways
    from reconciler.enos.client import PipelineDetails

READS_AT_ONCE = 8


def stage_warnings(gateways: Gateways, actions: Iterable[Action]) -> list[str]:
    """One warning per (pipeline, stage) the plan sends to that the pipeline plainly lacks.

    A pipeline whose details cannot be read, or whose `pipelineJson` lists no stages we can
    read, gets no warning: silence means "not known", never "fine" or "wrong".
    """
    wanted: dict[PipelineRef, dict[str, set[str]]] = {}
    for a in actions:
        wanted.setdefault(a.pipeline, {}).setdefault(a.stage, set()).add(a.manifest)
    refs = sorted(wanted)

    def read(ref: PipelineRef) -> PipelineDetails | None:
        try:
            return gateways.client(ref.org_id).pipeline_details(*ref)
        except EnosError:
            return None

    if len(refs) > 1:
        with ThreadPoolExecutor(min(READS_AT_ONCE, len(refs)), thread_name_prefix="stage-names") as pool:
            read_all = list(pool.map(read, refs))
    else:
        read_all = [read(ref) for ref in refs]
    out: list[str] = []
    for ref, details in zip(refs, read_all, strict=True):
        if details is None:
            continue
        for stage, manifests in sorted(wanted[ref].items()):
            if details.lacks(stage):
                known = ", ".join(sorted(details.stage_names or ()))
                named = f" ({details.name})" if details.name else ""
                out.append(
                    f"pipeline {ref.org_id}/{ref.pipeline_id}{named} has no stage named {stage!r} "
                    f"(its released configuration lists: {known}); declared by "
                    f"{', '.join(sorted(manifests))}: check spec.stageInstanceNames, the name on the "
                    "operator's Info tab in Stream Development"
                )
    return out
