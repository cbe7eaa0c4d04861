"""Markdown pieces for pull-request comments: verbatim code spans, escaped free text, and
the full ID lists of a plan, sharing what room a comment has left.

Every ID is shown exactly as it will be sent, in code spans or code blocks, so no
manifest can inject markdown or HTML (`code`, `text`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.plan.values import PendingGroup
from reconciler.render.plan import KeyView, doubt_rule
from reconciler.render.text import md_code, md_text
from reconciler.words import plural


def code(value: str, *, table: bool = False) -> str:
    """`value` verbatim as an inline code span that cannot end early (`text.md_code`)."""
    return md_code(value, table=table)


def text(value: str) -> str:
    """Free text (a description, a pipeline name) as plain text: no markup, one line."""
    return md_text(value)


# An ID list printed in full once, by its IDs: where it is (org / pipeline / stage).
Printed = dict[tuple[str, ...], str]


def shared_details(manifests: Sequence[Sequence[KeyView]], budget: int) -> list[str]:
    """Each manifest's IDs inside `<details>`, sharing `budget` by water-filling: every
    manifest gets the same cap, and what a small one leaves goes to the others, so a
    fleet reset listed first cannot take the room of an 8-asset fix after it.

    An ID list is printed in full once in the comment; where it comes again (four
    manifests sharing one ID file, or every stage of one manifest), a line names where
    it was printed (issue 27: a fleet reset printed the same 1,417 IDs four times)."""
    printed: Printed = {}
    full = [_details(views, 10**12, printed) for views in manifests]
    need = [len(t) + 1 if t else 0 for t in full]
    if sum(need) <= budget:
        return full
    cap, left, waiting = 0, max(budget, 0), sorted(need)
    while waiting:
        share = left // len(waiting)
        if waiting[0] > share:
            cap = share
            break
        left -= waiting.pop(0)
        cap = share
    # Again in order with the room each gets: a list cut short where it came first is
    # printed (as far as room allows) where it comes next, never referred to.
    printed = {}
    return [_fitted(views, n, cap, printed) for n, views in zip(need, manifests, strict=True)]


def _fitted(views: Sequence[KeyView], need: int, cap: int, printed: Printed) -> str:
    """A manifest's IDs in its share: whole if they fitted (and still fit: a list it
    referred to may have been cut before it), else cut to `cap`."""
    if need <= cap:
        mark = dict(printed)
        whole = _details(views, 10**12, printed)
        if len(whole) + 1 <= need:
            return whole
        printed.clear()
        printed.update(mark)
    return _details(views, min(need, cap), printed)


def _details(views: Sequence[KeyView], budget: int, printed: Printed) -> str:
    """The IDs of one manifest inside `<details>`, as far as `budget` characters allow."""
    cells = sum(v.kd.pending_cells for v in views)
    opening = f"\n<details><summary>Every ID to clear ({plural(cells, 'cell')})</summary>"
    closing = "\n</details>"
    budget -= len(opening) + len(closing) + 1
    if budget < 200:
        return ""
    blocks: list[str] = []
    for v in views:
        groups = [(g, False) for g in v.kd.pending] + [(g, True) for g in v.kd.in_doubt]
        for g, doubt in groups:
            block, complete = _id_block(v, g, doubt, budget, printed)
            if len(block) + 1 > budget:  # not even the header and the note fit
                return "\n".join([opening, *blocks, closing]) if blocks else ""
            blocks.append(block)
            budget -= len(block) + 1
            if not complete:
                return "\n".join([opening, *blocks, closing])
    return "\n".join([opening, *blocks, closing])


def _id_block(v: KeyView, g: PendingGroup, doubt: bool, budget: int, printed: Printed) -> tuple[str, bool]:
    """One group's points and assets in a code block, cut to `budget` with a count of the
    rest; a list already printed in full is named, not printed again."""
    k = v.kd.key
    header = (
        f"{code(k.org_id)} / {code(k.pipeline_id)} / {code(k.stage)}: "
        f"{plural(len(g.points), 'point')} x {plural(len(g.assets), 'asset')} = {plural(g.cells, 'cell')}"
        + (f" (in doubt: {doubt_rule(v.kd.resumed_since_intent)})" if doubt else "")
    )
    here = f"{k.org_id} / {k.pipeline_id} / {k.stage}"
    lines: list[str] = []
    lists: list[tuple[tuple[str, ...], int]] = []  # each list printed here, and where it ends
    for noun, ids in (("point", g.points), ("asset", g.assets)):
        same = (
            f"# {plural(len(ids), noun)}: the same list as {printed[ids]}, printed above"
            if ids in printed
            else ""
        )
        if same and len(same) < sum(map(len, ids)) + len(ids):  # a short list is simply printed
            lines.append(same)
            continue
        lines.append(f"# {plural(len(ids), noun)}")
        lines.extend(ids)
        lists.append((ids, len(lines)))
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    frame = len(header) + len(fence) * 2 + 6
    room = budget - frame - 120  # the note on what was cut
    kept, used = [], 0
    for line in lines:
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    for ids, end in lists:
        if len(kept) >= end:
            printed.setdefault(ids, here)
    complete = len(kept) == len(lines)
    if not complete:
        missing = sum(1 for line in lines[len(kept) :] if not line.startswith("# "))
        kept.append(
            f"# … {plural(missing, 'more ID')} not shown (comment size limit); "
            "IDs from here on are counted, not listed"
        )
    return "\n".join(["", header, "", fence, *kept, fence]), complete
