"""The ledger for people: one line per record, or the records as JSON.

Every line goes through `text.term`: a description, a manifest name or a run URL with a
newline or an ANSI escape in it is shown, never obeyed (issue 27 item 7)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.ledger import Record
from reconciler.render.plan import sample
from reconciler.render.text import term
from reconciler.words import plural


def records_json(records: Iterable[Mapping[str, object]]) -> str:
    return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"


def ledger_lines(records: Sequence[Record]) -> str:
    """One line per record: grep-able in CI logs and readable at a terminal."""
    lines = []
    for r in records:
        d = r.data
        raw_actor = d.get("actor")
        actor: Mapping[str, Any] = raw_actor if isinstance(raw_actor, dict) else {}
        who = f" by {actor.get('user', '?')}" if actor else ""
        if actor.get("gitCommit"):
            who += f" @{str(actor['gitCommit'])[:8]}"
        if actor.get("runUrl"):
            who += f" {actor['runUrl']}"
        if actor.get("unreviewed"):
            who += " UNREVIEWED (--allow-unreviewed)"
        kind = r.kind + (" (resolved)" if d.get("resolved") else "")
        snap = d.get("snapshot")
        if isinstance(snap, dict):  # apply --snapshot: the evidence this record vouches for
            who += f"  [snapshot: {plural(int(snap.get('items') or 0), 'item')}]"
        if r.asset_ids:
            what = (
                f"{d['manifest']}  {d['pipelineId']}/{d['stageInstanceName']}  "
                f"{plural(len(r.asset_ids), 'asset')} ({sample(r.asset_ids)}) x "
                f"{plural(len(r.point_ids), 'point')} ({sample(r.point_ids)})"
            )
        else:
            what = f"{d.get('orgId', '')}/{d.get('pipelineId', '')}"
        lines.append(term(f"#{r.seq:<5} {r.at}  {kind:<8} {what}{who}"))
    lines.append(f"{plural(len(records), 'record')}")
    return "\n".join(lines) + "\n"


def last_cleared_text(
    records: Sequence[Record],
    what: str,
    descriptions: Mapping[str, str | None] | None = None,
    *,
    asset: str | None = None,
    point: str | None = None,
    in_doubt: Sequence[tuple[Record, frozenset[tuple[str, str]]]] = (),
) -> str:
    """When was X last cleared, and why: the latest `delete` among `records` (already
    filtered to X), who did it from which commit and run, and the manifest's description;
    then any request for X still in doubt (`in_doubt`: `ledger.history.open_intents`)."""
    deletes = [r for r in records if r.kind == "delete"]
    doubt = _in_doubt_for(in_doubt, asset, point)
    if not deletes:
        return term(f"{what}: never cleared in these records.") + "\n" + doubt
    last = deletes[-1]
    d, actor = last.data, last.actor
    lines = [
        f"{what}: last cleared {last.at} (record #{last.seq}; {plural(len(deletes), 'clear')} so far)",
        f"  manifest {d.get('manifest')}, pipeline {d.get('pipelineId')}, stage {d.get('stageInstanceName')}",
    ]
    why = (descriptions or {}).get(str(d.get("manifest")))
    if why:
        lines.append(f"  why: {why}")
    by = f"  by {actor.get('user', '?')}"
    if actor.get("gitCommit"):
        by += f" at commit {actor['gitCommit']}"
    if actor.get("runUrl"):
        by += f", run {actor['runUrl']}"
    if last.resolved:
        by += " (recorded by a person with `ledger resolve`)"
    if actor.get("unreviewed"):
        by += " UNREVIEWED: applied with --allow-unreviewed, not from a reviewed commit"
    lines.append(by)
    return "\n".join(map(term, lines)) + "\n" + doubt


def _in_doubt_for(
    in_doubt: Sequence[tuple[Record, frozenset[tuple[str, str]]]], asset: str | None, point: str | None
) -> str:
    """Requests for these cells whose answer was lost: they may or may not have cleared."""
    found = [
        r
        for r, cells in in_doubt
        if any((asset is None or a == asset) and (point is None or p == point) for a, p in cells)
    ]
    return "".join(
        term(
            f"  in doubt since {r.at}: intent #{r.seq} ({r.manifest}, stage {r.data.get('stageInstanceName')}); "
            "settle it with `reconcile ledger resolve --verify`"
        )
        + "\n"
        for r in found
    )
