"""The pull-request comment when plan refuses (issue 27 item 3, "The pull request always hears").

A refused plan still prints a comment body, so CI replaces the comment that described an
earlier version of the pull request: it says plainly that plan refused, why (the error,
every diagnostic, verbatim in a code block: a message quotes what the pull request wrote),
and what to do. Pure: the CLI passes the error and the base commit in.
"""

from __future__ import annotations

import re

from reconciler.errors import (
    ApplyRefused,
    InputError,
    LedgerError,
    LedgerNotAnchored,
    ReconcilerError,
)
from reconciler.render.text import clip, md_code, visible

MAX_LINES = 200  # diagnostics listed; the rest are counted (the comment has 65,536 characters)
MAX_LINE = 300

_WHAT_TO_DO = {
    "manifests": (
        "Fix what is named below (run `reconcile validate` locally to see every problem), "
        "then push: the plan and this comment are made again."
    ),
    "ledger-touched": (
        "Only `reconcile apply` writes the ledger. Take the ledger's files (and its lease) "
        "out of this pull request: `git checkout origin/<base> -- <ledger files>`, then push."
    ),
    "ledger-moved": (
        "The ledger on its branch is not the one reconcile last published (cut, rewritten or "
        "force-pushed). Nothing can be planned until it is put back: `reconcile ledger restore` "
        '(see the README, "When plan refuses").'
    ),
    "ledger": (
        "The ledger does not verify. Run `reconcile ledger verify` to see the line, and restore "
        "the file from the commit that had it whole."
    ),
    "other": "Fix the problem below and push again; `reconcile plan` locally shows the same message.",
}


def refusal_kind(exc: BaseException) -> str:
    """Which advice fits: the manifests, the ledger touched by the pull request, the ledger
    moved outside reconcile, an unreadable ledger, or anything else."""
    if isinstance(exc, InputError):
        return "manifests"
    if isinstance(exc, LedgerNotAnchored):
        return "ledger-moved"
    if isinstance(exc, ApplyRefused):
        return "ledger-touched"
    if isinstance(exc, LedgerError):
        return "ledger"
    return "other"


def refusal_lines(exc: BaseException) -> list[str]:
    """The error as the terminal shows it: each diagnostic, then the message."""
    lines: list[str] = []
    if isinstance(exc, InputError):
        lines += [str(d) for d in exc.diagnostics]
    from reconciler.settings import advice

    message = advice(exc) if isinstance(exc, ReconcilerError) else f"{type(exc).__name__}: {exc}"
    lines += message.split("\n")
    return lines


def refusal_markdown(exc: BaseException, base_commit: str | None = None) -> str:
    """A whole comment body: refused, why, and what to do."""
    lines = [clip(visible(line), MAX_LINE) for line in refusal_lines(exc)]
    more = len(lines) - MAX_LINES
    lines = lines[:MAX_LINES] + (
        [f"… and {more:,} more lines (run `reconcile plan` to see them)"] if more > 0 else []
    )
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    out = [
        "## reconcile plan: refused",
        "",
        "> [!CAUTION]",
        "> **`reconcile plan` refused this pull request: there is no plan to review.** Any "
        "earlier plan comment here describes another version of it; do not approve from that.",
        "",
        f"**What to do:** {_WHAT_TO_DO[refusal_kind(exc)]}",
        "",
        "**Why:**",
        "",
        fence + "text",
        *lines,
        fence,
    ]
    if base_commit:
        out += ["", f"- Base commit: {md_code(base_commit)}"]
    return "\n".join(out) + "\n"
