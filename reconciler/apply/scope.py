"""What a run of apply sends, narrowed from the plan before `apply()` begins (DESIGN
"Apply", "Windows"; invariants 10 and 14). Plan decides the set (`plan.guards` refuses
what it must); a run narrows it:

- `deferral`: outside its window, a run pauses nothing; `resumes_only` is then what it
  still does, starting what an earlier run left paused (a window gates pausing, never
  resuming);
- `without_concurrent`: after a lost compare-and-swap, what the apply that pushed first
  announced is its own: neither re-sent nor started under it;
- `paused_starts` / `refuse_paused_starts`: a `start` record with no outcome on a
  pipeline PAUSED now is never left behind exit 0, nor started (the start may have
  landed and a person paused it since).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.apply.gateways import Gateways, status_of
from reconciler.apply.values import ApplyResult, Reporter
from reconciler.errors import ApplyRefused, Hint, Hinted, ReconcilerError
from reconciler.plan import Plan, build_plan
from reconciler.plan.guards import start_in_doubt
from reconciler.plan.values import PipelineRef
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.windows import Deferred, Windows


def deferral(
    windows: Windows | None, now: Callable[[], float], override: str | None, reporter: Reporter
) -> Deferred | None:
    """Why this run defers (the window is closed), else None; with an `override` (the
    person's reason), a closed window is said and applied through (DESIGN "Windows")."""
    if windows is None:
        return None
    from reconciler import windows as windows_mod

    state = windows_mod.state(windows, windows_mod.from_epoch(now()))
    if state.open:
        return None
    if override is not None:
        reporter.note(
            Hinted(
                f"warning: {state.words()}; applying anyway, as the window is overridden: every record of "
                f'this run says "windowOverride": {override!r}',
                Hint.IGNORE_WINDOW,
            )
        )
        return None
    return windows_mod.Deferred(state.reason or windows_mod.OUTSIDE, state.until)


def resumes_only(p: Plan) -> Plan:
    """The plan without its requests: only the pipelines an earlier run left paused."""
    return replace(p, actions=(), summary=replace(p.summary, requests=0))


def deferred_result(deferred: Deferred, p: Plan) -> ApplyResult:
    """A run that sent nothing and started nothing: its window was closed."""
    result = ApplyResult(outside_window=deferred)
    result.ledger_seqs = (p.ledger.seq, p.ledger.seq)
    return result


def without_concurrent(p: Plan, first: Plan, reporter: Reporter) -> Plan:
    """After a lost compare-and-swap: what the other apply announced is its own.

    Its intents look in doubt and its pauses look left over, yet its requests may be in
    flight and its pipelines are still to be started by it: re-sending them, or starting
    them while it sends, is exactly what the compare-and-swap is there to prevent.
    """
    seen = {(a.key, a.asset_ids, a.point_ids) for a in first.actions if a.in_doubt}
    theirs = [a for a in p.actions if a.in_doubt and (a.key, a.asset_ids, a.point_ids) not in seen]
    paused = {r.pipeline for r in first.pending_resumes}
    resumes = tuple(r for r in p.diff.pending_resumes if r.pipeline in paused)
    held = len(p.diff.pending_resumes) - len(resumes)
    if not theirs and not held:
        return p
    reporter.note(
        f"left to the apply that pushed first: {plural(len(theirs), 'request')} it announced and "
        f"{plural(held, 'pipeline')} it paused"
    )
    return build_plan(replace(p.diff, pending_resumes=resumes), p.options, p.manifest_paths, exclude=theirs)


def paused_starts(doubt: Iterable[tuple[PipelineRef, str]], gw: Gateways) -> list[tuple[PipelineRef, Hinted]]:
    """Invariant 14 for a `start` record with no outcome (`doubt`: each pipeline and when
    its start was announced): a pipeline PAUSED now (or whose status cannot be read) is
    never left behind exit 0. It is not started either (invariant 10's reading of the
    ledger: the start may have landed, the pipeline run, and a person paused it since,
    which no record shows): it is named, with the command that settles it."""
    doubt = list(doubt)
    if not doubt:
        return []
    try:
        statuses = gw.statuses(ref for ref, _at in doubt)
        found = {ref: status_of(statuses, ref) for ref, _at in doubt}
    except ReconcilerError as exc:
        found = {ref: f"unknown (List Pipelines failed: {exc})" for ref, _at in doubt}
    left = [(ref, at) for ref, at in doubt if found[ref] == "PAUSED" or found[ref].startswith("unknown")]
    return [(ref, start_in_doubt(ref, at, found[ref])) for ref, at in left]


def refuse_paused_starts(doubt: Iterable[tuple[PipelineRef, str]], gateways: Callable[[], Gateways]) -> None:
    """Nothing to apply, yet a start in doubt on a pipeline that is not RUNNING: exit 1."""
    doubt = list(doubt)
    if not doubt:
        return
    try:
        gw = gateways()
    except ReconcilerError as exc:  # no credentials: whether it is PAUSED cannot be told
        paused = [(ref, start_in_doubt(ref, at, f"unknown ({exc})")) for ref, at in doubt]
    else:
        paused = paused_starts(doubt, gw)
    if paused:
        raise ApplyRefused(
            f"nothing to apply, but {plural(len(paused), 'pipeline')} may be left paused by an apply that "
            "stopped:",
            details=[why for _ref, why in paused],  # each with the step that settles it
        )
