"""Counted nouns for messages people read: "1 cell", "2 cells", never "cell(s)"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` with `word`, or its plural (`many`, else word + "s"), thousands separated."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
