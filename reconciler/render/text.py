"""Free text made safe for where it is shown: markdown, HTML and the terminal.

Everything a pull request, a file name or the gateway controls (manifest names, labels,
descriptions, file names, state values, pipeline names, reasons) is text, never
structure: it passes through one of these helpers on its way into a comment, a report
or a terminal (issue 27, "Text is text"). Each is pure and total (any `str` in, one
line out) and the property tests in tests/test_render_text.py hold them to it.

- `md_code(s)`: an inline code span that shows `s` (its control characters visible)
  and cannot end early: no backtick run, blank line, `|` in a table or HTML ends it.
- `md_text(s)`: plain markdown text, every character that could open structure escaped
  (no emphasis, link, table cell, heading, list, entity or raw HTML can start in it),
  whitespace runs folded into one space.
- `html_text(s)`: HTML element or attribute text.
- `term(s)`: terminal text with control characters (ESC, CR, newlines, bidi overrides)
  shown as escapes, so a value cannot redraw the screen or fake another line.
- `fit(parts, ...)`: parts of a line laid out in lines of at most `WIDTH` columns, as a
  table cell wraps: CI logs have no width, and nothing is ever cut.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence

__all__ = ["WIDTH", "clip", "fit", "html_text", "md_code", "md_text", "term", "visible"]

# Characters that change what a line or a screen shows without being shown themselves:
# C0/C1 controls and DEL (Cc), line and paragraph separators (Zl, Zp), lone surrogates
# (Cs) and the format characters (Cf) that reorder or hide text (bidi embeddings,
# overrides and isolates, zero-width spaces, the BOM, invisible operators). ZWJ and
# ZWNJ stay: they join emoji and shape Persian or Indic words, and hide nothing.
_KEEP = {"\u200c", "\u200d"}
_CATEGORIES = {"Cc", "Zl", "Zp", "Cs", "Cf"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _hidden(ch: str) -> bool:
    return ch not in _KEEP and unicodedata.category(ch) in _CATEGORIES


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    cp = ord(ch)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def visible(s: str) -> str:
    """`s` with every control, separator and hiding format character written as a
    Python-style escape (`\\n`, `\\x1b`, `\\u202e`); everything else as it is."""
    if s.isprintable():  # no Cc, Cf, Cs, Zl, Zp: the common case, no new string
        return s
    return "".join(_escape_char(ch) if _hidden(ch) else ch for ch in s)


def term(s: str) -> str:
    """Text for a terminal line: control characters and escape sequences made visible
    (`\\x1b[2J` is printed, not obeyed; a newline cannot fake a second record)."""
    return visible(s)


def md_code(s: str, *, table: bool = False) -> str:
    """`s` as one inline code span that ends where it should, whatever `s` holds.

    Control characters and line breaks are shown as escapes (a blank line would end
    the paragraph, and the span with it); the fence is one backtick longer than the
    longest run inside; a space pads each side so that a backtick or a space at either
    end survives CommonMark's stripping of one space; with `table`, `|` is escaped, as
    GFM splits table cells on it even inside code spans. Backslashes and HTML inside a
    code span are literal.
    """
    shown = visible(s)
    if not shown:
        return "` `"  # an empty value is not nothing: an empty span shows it
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    if table:
        shown = shown.replace("|", "\\|")
    pad = "" if shown.strip(" ") == "" or _plain_ends(shown) else " "
    return f"{fence}{pad}{shown}{pad}{fence}"


def _plain_ends(s: str) -> bool:
    """No padding needed: neither end is a backtick or a space."""
    return s[0] not in "` " and s[-1] not in "` "


# Any ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped
# one is literal text. These are the ones that can open structure anywhere in a line:
# code, emphasis, strikethrough, links and images, autolinks and raw HTML, entities,
# table cells, GitHub's math (`$`) and headings. Others are left as they are, so a
# comment's source stays readable ("2026-11-24T16:00:00Z (OPS-1234)", "a -> b").
_INLINE = re.compile(r"([\\`*_{}\[\]<#|~!&$])")
# At the start of a line, also a block quote, a list item, a thematic break or a setext
# underline (`>`, `-`, `+`, `=`), or an ordered list item (`1.`, `2)`).
_LINE_START = re.compile(r"^([-+=>])|^(\d+)([.)])")


def md_text(s: str) -> str:
    """`s` as literal markdown text on one line, anywhere in a line: whitespace runs
    (newlines included) folded to one space, other hidden characters shown as escapes,
    every character that could open structure backslash-escaped."""
    escaped = _INLINE.sub(_escape_inline, visible(" ".join(s.split())))
    return _LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped, count=1)


def _escape_inline(m: re.Match[str]) -> str:
    """A backslash before the character, except `_` between two letters or digits, which
    CommonMark never reads as emphasis (`$ENOS_APP_KEY`, `snake_case` stay as written)."""
    text, i = m.string, m.start()
    if m[1] == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
        return "_"
    return "\\" + m[1]


def html_text(s: str) -> str:
    """`s` for HTML element text or a quoted attribute value: `& < > " '` escaped, hidden
    characters shown as escapes."""
    return html.escape(visible(s), quote=True)


def clip(s: str, limit: int) -> str:
    """`s` cut to at most `limit` characters, ending in `…` when cut (a description's
    share of a comment is bounded, issue 27 item 7)."""
    if len(s) <= limit:
        return s
    return s[: max(limit - 1, 0)] + "…"


WIDTH = 120  # the widest line `ledger show` and the plan write: CI logs do not wrap


def fit(parts: Sequence[tuple[str, str]], *, start: int, indent: int, width: int = WIDTH) -> list[str]:
    """`parts` (a separator and a text each) laid out in lines of at most `width`
    characters, as a table cell wraps: the first line begins at column `start`, the next
    ones at `indent` (neither included). A part that does not fit goes to the next line
    whole, its separator dropped but for a word in it (`" x "` leaves `"x "`); one longer
    than a line is wrapped at its spaces, and a word longer than a line is folded. Nothing
    is ever cut: the lines hold every character of the parts but the spaces they break at."""
    lines: list[str] = []
    line, col = "", start
    for sep, text in parts:
        piece = sep + text if line else sep.lstrip() + text
        if col + len(piece) <= width:
            line, col = line + piece, col + len(piece)
            continue
        if line:
            lines.append(line)
            line, col, piece = "", indent, sep.lstrip() + text
        if col + len(piece) <= width:
            line, col = piece, col + len(piece)
            continue
        chunks = _wrap(piece, first=width - col, rest=width - indent)
        lines += chunks[:-1]
        line = chunks[-1]
        col = (indent if len(chunks) > 1 else col) + len(line)
    return [*lines, line]


def _wrap(text: str, *, first: int, rest: int) -> list[str]:
    """Words to lines: the first `first` wide, the others `rest`; a longer word folded."""
    body = text.lstrip(" ")
    lead = text[: len(text) - len(body)]  # an indent is kept, on the first line
    first, rest = max(1, first - len(lead)), max(1, rest)
    lines: list[str] = []
    line = ""
    for word in body.split(" "):
        room = first if not lines else rest
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
            line, room = "", rest
        while len(word) > room:
            lines.append(word[:room])
            word, room = word[room:], rest
        line = word
    lines.append(line)
    return [lead + lines[0], *lines[1:]]
