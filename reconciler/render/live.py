"""The live part of `plan --refresh`: how many pending cells hold state now, and samples.

DESIGN "Plan": `summary.liveStateCells` and per action `liveStateCells` in JSON; in text
and markdown, "12,000 cells to clear; 11,437 hold state now", a few values per manifest
(folded in a pull-request comment), and the requests whose cells hold no state at all:
clearing them changes nothing, and a reviewer may find the manifest wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.apply.live import LiveState, Sample
from reconciler.plan import Action, Plan
from reconciler.render.markdown import code, text
from reconciler.render.text import term
from reconciler.words import plural

MAX_EMPTY_LISTED = 20  # a comment stays readable (and under GitHub's size limit)
MAX_SAMPLE_ROWS = 30


def live_json(plan: Plan, state: LiveState) -> dict[str, Any]:
    """What `planfile.dumps(plan, live=...)` merges into the plan JSON: `liveStateCells`
    counts pending cells (as `pendingCells` does); in-doubt ones have their own count."""
    summary = {"liveStateCells": _held(plan, state, doubt=False)}
    if any(a.in_doubt for a in plan.actions):
        summary["liveStateInDoubtCells"] = _held(plan, state, doubt=True)
    return {
        "actions": [{"liveStateCells": state.holding.get(a, 0)} for a in plan.actions],
        "summary": summary,
        "liveStateSamples": [s.to_json() for samples in state.samples.values() for s in samples],
    }


def headline(plan: Plan, state: LiveState) -> str:
    pending = sum(a.cells for a in plan.actions if not a.in_doubt)
    held = _held(plan, state, doubt=False)
    return f"{plural(pending, 'cell')} to clear; {held:,} {_verb(held)} state now"


def doubt_line(plan: Plan, state: LiveState) -> str | None:
    """What the in-doubt cells hold: state left means the lost delete did not land."""
    doubt = sum(a.cells for a in plan.actions if a.in_doubt)
    if not doubt:
        return None
    held = _held(plan, state, doubt=True)
    meaning = (
        "their deletes did not take effect, or the state was rebuilt since"
        if held
        else "they read back empty, as if their deletes took effect (`ledger resolve --verify` records that)"
    )
    return f"In doubt: {plural(doubt, 'cell')}, {held:,} {_verb(held)} state now: {meaning}"


def _held(plan: Plan, state: LiveState, *, doubt: bool) -> int:
    return sum(state.holding.get(a, 0) for a in plan.actions if a.in_doubt == doubt)


def _verb(n: int) -> str:
    return "holds" if n == 1 else "hold"


def live_text(plan: Plan, state: LiveState) -> str:
    """The terminal section, printed after the plan."""
    lines = ["", f"Live state (Get Stage State, read now): {headline(plan, state)}."]
    doubt = doubt_line(plan, state)
    if doubt:
        lines.append(f"  {doubt}.")
    for manifest, samples in state.samples.items():
        held, cells = _manifest_counts(plan, state, manifest)
        lines.append(f"  {manifest}: {held:,} of {plural(cells, 'cell')} hold state")
        lines.extend(f"    {_sample_text(s)}" for s in samples)
    lines.extend(_empty_lines(state.empty_actions(), "  ! "))
    return "\n".join(map(term, lines)) + "\n"  # state values from the gateway: shown, not obeyed


def live_markdown(plan: Plan, state: LiveState) -> str:
    """The pull-request section: the headline, then samples folded."""
    out = ["", "### Live state", "", f"**{headline(plan, state)}.** Read just now with Get Stage State.", ""]
    doubt = doubt_line(plan, state)
    if doubt:
        out += [f"{doubt}.", ""]
    empty = state.empty_actions()
    if empty:
        out += [f"> [!WARNING]\n> {_empty_summary(empty)}", ""]
        out += [
            f"- {code(a.manifest)} / {code(a.pipeline_id)} / {code(a.stage)}: no state in its "
            f"{plural(a.cells, 'cell')}"
            for a in empty[:MAX_EMPTY_LISTED]
        ]
        if len(empty) > MAX_EMPTY_LISTED:
            out.append(f"- … and {len(empty) - MAX_EMPTY_LISTED:,} more")
        out.append("")
    rows = [s for samples in state.samples.values() for s in samples][:MAX_SAMPLE_ROWS]
    if rows:
        out += ["<details><summary>Sample values, as the gateway holds them now</summary>", ""]
        out += ["| manifest | stage | asset | point | value | time |", "|---|---|---|---|---|---|"]
        out += [_sample_row(s) for s in rows]
        out += ["", "</details>", ""]
    return "\n".join(out)


def _manifest_counts(plan: Plan, state: LiveState, manifest: str) -> tuple[int, int]:
    actions = [a for a in plan.actions if a.manifest == manifest]
    return sum(state.holding.get(a, 0) for a in actions), sum(a.cells for a in actions)


def _sample_text(s: Sample) -> str:
    when = f" at {s.time}" if s.time else ""
    return f"{s.stage}: {s.asset} / {s.point} = {_value(s.value)}{when}"


def _sample_row(s: Sample) -> str:
    cells = [code(s.manifest, table=True), code(s.stage, table=True), code(s.asset, table=True)]
    cells += [code(s.point, table=True), code(_value(s.value), table=True), text(s.time or "-")]
    return "| " + " | ".join(cells) + " |"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _empty_summary(empty: Sequence[Action]) -> str:
    cells = sum(a.cells for a in empty)
    return (
        f"{plural(len(empty), 'request')} ({plural(cells, 'cell')}) would clear cells that hold no "
        "state now: clearing them changes nothing. Is the manifest right?"
    )


def _empty_lines(empty: Sequence[Action], prefix: str) -> list[str]:
    if not empty:
        return []
    lines = [f"{prefix}{_empty_summary(empty)}"]
    lines += [
        f"    {a.manifest} / {a.pipeline_id} / {a.stage}: no state in its {plural(a.cells, 'cell')}"
        for a in empty[:MAX_EMPTY_LISTED]
    ]
    if len(empty) > MAX_EMPTY_LISTED:
        lines.append(f"    … and {len(empty) - MAX_EMPTY_LISTED:,} more")
    return lines
