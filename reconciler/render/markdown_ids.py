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
from reconciler.words import plural


def code(text: str, *, table: bool = False) -> str:
    """`text` verbatim as an inline code span, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if table:  # GFM splits cells on `|` even inside code spans, unless escaped
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def text(value: str) -> str:
    """Free text (a description, a pipeline name) as plain text: no markup, one line."""
    return re.sub(r"([\\`*_{}\[\]<>#|~!&])", r"\\\1", " ".join(value.split()))


def shared_details(manifests: Sequence[Sequence[KeyView]], budget: int) -> list[str]:
    """Each manifest's IDs inside `<details>`, sharing `budget` by water-filling: every
    manifest gets the same cap, and what a small one leaves goes to the others, so a
    fleet reset listed first cannot take the room of an 8-asset fix after it."""
    full = [_details(views, 10**12) for views in manifests]
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
    return [
        t if n <= cap else _details(views, cap) for t, n, views in zip(full, need, manifests, strict=True)
    ]


def _details(views: Sequence[KeyView], budget: int) -> str:
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
            block, complete = _id_block(v, g, doubt, budget)
            if len(block) + 1 > budget:  # not even the header and the note fit
                return "\n".join([opening, *blocks, closing]) if blocks else ""
            blocks.append(block)
            budget -= len(block) + 1
            if not complete:
                return "\n".join([opening, *blocks, closing])
    return "\n".join([opening, *blocks, closing])


def _id_block(v: KeyView, g: PendingGroup, doubt: bool, budget: int) -> tuple[str, bool]:
    """One group's points and assets in a code block, cut to `budget` with a count of the rest."""
    k = v.kd.key
    header = (
        f"{code(k.org_id)} / {code(k.pipeline_id)} / {code(k.stage)}: "
        f"{plural(len(g.points), 'point')} x {plural(len(g.assets), 'asset')} = {plural(g.cells, 'cell')}"
        + (f" (in doubt: {doubt_rule(v.kd.resumed_since_intent)})" if doubt else "")
    )
    lines = [
        f"# {plural(len(g.points), 'point')}",
        *g.points,
        f"# {plural(len(g.assets), 'asset')}",
        *g.assets,
    ]
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
    complete = len(kept) == len(lines)
    if not complete:
        missing = len(lines) - len(kept) - (len(kept) <= len(g.points) + 1)  # less the assets header
        kept.append(
            f"# … {plural(missing, 'more ID')} not shown (comment size limit); "
            "IDs from here on are counted, not listed"
        )
    return "\n".join(["", header, "", fence, *kept, fence]), complete
