"""The ledger for people: one line per record, or the records as JSON.

Every line goes through `text.term`: a description, a manifest name or a run URL with a
newline or an ANSI escape in it is shown, never obeyed (issue 27 item 7)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.ledger import Record
from reconciler.render.plan import sample
from reconciler.render.text import WIDTH, fit, term
from reconciler.words import plural


def records_json(records: Iterable[Mapping[str, object]]) -> str:
    return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"


def ledger_lines(records: Sequence[Record], width: int = WIDTH) -> str:
    """One entry per record, grep-able in CI logs and readable at a terminal: its seq, time
    and kind first, then what and who; an entry longer than `width` goes on under its
    first line, as a table cell wraps (every fact kept, no line wider than `width`)."""
    lines = []
    for r in records:
        kind = r.kind + (" (resolved)" if r.data.get("resolved") else "")
        head = term(f"#{r.seq:<5} {r.at}  {kind:<8} ")
        parts = [(sep, term(text)) for sep, text in [*_what(r), *_who(r)]]
        # Under the first line's "what" when every part fits there; else less indented,
        # so that a long URL is not folded.
        indent = len(head)
        if any(len(sep.lstrip() + text) > width - indent for sep, text in parts):
            indent = CONTINUED
        first, *rest = fit(parts, start=len(head), indent=indent, width=width)
        lines += [head + first, *(" " * indent + line for line in rest)]
    lines.append(f"{plural(len(records), 'record')}")
    return "\n".join(lines) + "\n"


CONTINUED = 8  # columns a record's further lines are indented by, when not under its "what"


def _what(r: Record) -> list[tuple[str, str]]:
    d = r.data
    if not r.asset_ids:
        return [("", f"{d.get('orgId', '')}/{d.get('pipelineId', '')}")]
    return [
        ("", str(d["manifest"])),
        ("  ", f"{d['pipelineId']}/{d['stageInstanceName']}"),
        ("  ", f"{plural(len(r.asset_ids), 'asset')} ({sample(r.asset_ids)})"),
        (" x ", f"{plural(len(r.point_ids), 'point')} ({sample(r.point_ids)})"),
    ]


def _who(r: Record) -> list[tuple[str, str]]:
    """Who, from which commit and run: one part, so that it is read (and grepped) together."""
    raw = r.data.get("actor")
    actor: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    who = [f"by {actor.get('user', '?')}"] if actor else []
    if actor.get("gitCommit"):
        who.append(f"@{str(actor['gitCommit'])[:8]}")
    if actor.get("runUrl"):
        who.append(str(actor["runUrl"]))
    if actor.get("unreviewed"):
        who.append("UNREVIEWED (--allow-unreviewed)")
    out = [(" ", " ".join(who))] if who else []
    snap = r.data.get("snapshot")
    if isinstance(snap, dict):  # apply --snapshot: the evidence this record vouches for
        out.append(("  ", f"[snapshot: {plural(int(snap.get('items') or 0), 'item')}]"))
    return out


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
    return "".join(_wrapped(term(line)) for line in lines) + doubt


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
        _wrapped(
            term(
                f"  in doubt since {r.at}: intent #{r.seq} ({r.manifest}, stage {r.data.get('stageInstanceName')}); "
                "settle it with `reconcile ledger resolve --verify`"
            )
        )
        for r in found
    )


def _wrapped(line: str, width: int = WIDTH) -> str:
    """A sentence of `last_cleared_text` in lines of at most `width`, the next ones indented."""
    first, *rest = fit([("", line)], start=0, indent=4, width=width)
    return "".join(f"{text}\n" for text in [first, *(" " * 4 + x for x in rest)])
