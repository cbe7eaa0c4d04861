"""Stage names a pipeline does not have: warned about before anything is paused.

Get Pipeline Details' `pipelineJson` (REFERENCE 2.2, format undocumented) may list the
pipeline's stage instance names; the client reads it defensively and says "unknown"
rather than guess. Where it does list them, a manifest's stage name that is not among
them is almost always a typo, which the gateway would only refuse request by request
(DESIGN "Apply" step 7). Read-only calls, so `plan --refresh` warns the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.errors import EnosError
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.apply.gateways import Gateways


def stage_warnings(gateways: Gateways, actions: Iterable[Action]) -> list[str]:
    """One warning per (pipeline, stage) the plan sends to that the pipeline plainly lacks.

    A pipeline whose details cannot be read, or whose `pipelineJson` lists no stages we can
    read, gets no warning: silence means "not known", never "fine" or "wrong".
    """
    wanted: dict[PipelineRef, dict[str, set[str]]] = {}
    for a in actions:
        wanted.setdefault(a.pipeline, {}).setdefault(a.stage, set()).add(a.manifest)
    out: list[str] = []
    for ref, stages in sorted(wanted.items()):
        try:
            details = gateways.client(ref.org_id).pipeline_details(*ref)
        except EnosError:
            continue
        for stage, manifests in sorted(stages.items()):
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
