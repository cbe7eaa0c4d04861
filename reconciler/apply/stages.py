"""Stage names a pipeline does not have: warned about before anything is paused.

Get Pipeline Details' `pipelineJson` (REFERENCE 2.2, format undocumented) may list the
pipeline's stage instance names; the client reads it defensively and says "unknown"
rather than guess. Where it does list them, a manifest's stage name that is not among
them is almost always a typo, which the gateway would only refuse request by request
(DESIGN "Apply" step 7). Read-only calls, so `plan --refresh` warns the same way; the
pipelines' details are read at once (`READS_AT_ONCE` at most), not one after another, and
while List Pipelines is asked (`StageNames`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from reconciler.errors import EnosError
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef

if TYPE_CHECKING:
    from reconciler.apply.gateways import Gateways
    from reconciler.enos.client import PipelineDetails

READS_AT_ONCE = 8


def stage_warnings(gateways: Gateways, actions: Iterable[Action]) -> list[str]:
    """One warning per (pipeline, stage) the plan sends to that the pipeline plainly lacks
    (`StageNames`, read and judged at once)."""
    return StageNames(gateways, actions).warnings()


class StageNames:
    """The details of the pipelines `actions` go to, read from the moment it is made, in
    threads of their own: the reads overlap the List Pipelines call that precedes the
    warnings (one round trip to the gateway instead of two before anything is sent).

    A pipeline whose details cannot be read, or whose `pipelineJson` lists no stages we can
    read, gets no warning: silence means "not known", never "fine" or "wrong".
    """

    def __init__(self, gateways: Gateways, actions: Iterable[Action]) -> None:
        self._gateways = gateways
        self._wanted = _wanted(actions)
        self._details: dict[PipelineRef, PipelineDetails | None] = {}
        self._error: BaseException | None = None
        todo = iter(sorted(self._wanted))
        lock = threading.Lock()
        # Daemons: a run that fails or is interrupted before `warnings` does not wait for them.
        self._threads = [
            threading.Thread(target=self._read, args=(todo, lock), name="stage-names", daemon=True)
            for _ in range(min(READS_AT_ONCE, len(self._wanted)))
        ]
        for t in self._threads:
            t.start()

    def _read(self, todo: Iterator[PipelineRef], lock: threading.Lock) -> None:
        while True:
            with lock:
                ref = next(todo, None)
            if ref is None:
                return
            try:
                details: PipelineDetails | None = self._gateways.client(ref.org_id).pipeline_details(*ref)
            except EnosError:
                details = None
            except BaseException as exc:  # a bug: raised by `warnings`, in the caller's thread
                self._error = exc
                return
            self._details[ref] = details

    def warnings(self, actions: Iterable[Action] | None = None) -> list[str]:
        """One warning per (pipeline, stage) that `actions` (by default those it was made
        with; never others) send to and the pipeline plainly lacks."""
        for t in self._threads:
            t.join()
        if self._error is not None:
            raise self._error
        wanted = self._wanted if actions is None else _wanted(actions)
        out: list[str] = []
        for ref in sorted(wanted):
            details = self._details.get(ref)
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


def _wanted(actions: Iterable[Action]) -> dict[PipelineRef, dict[str, set[str]]]:
    """The manifests that declare each stage a request goes to, by pipeline."""
    wanted: dict[PipelineRef, dict[str, set[str]]] = {}
    for a in actions:
        wanted.setdefault(a.pipeline, {}).setdefault(a.stage, set()).add(a.manifest)
    return wanted
