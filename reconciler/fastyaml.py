"""The plain shape of YAML that manifests have, read without ruamel (used by `yamlsource` only).

A manifest is a few block mappings of `key: scalar`, with lists written `[a, b]` or as
`- a` lines, and comments. ruamel's pure-Python round-trip parser spends about 5 ms on
each such document (a year of small fixes is hundreds of them) and costs its import;
this reads that shape line by line. `documents(text)` returns nodes holding exactly the
values and positions ruamel's round-trip nodes would (`lc.line`, `lc.col`, `lc.key(k)`,
`lc.value(k)`, `lc.item(i)`, 0-based), or None for anything else: then ruamel reads the
file, so every diagnostic stays ruamel's. What it accepts is narrow on purpose:

- printable ASCII only (no tab, CR, or other control character); no directive (`%`),
  document end (`...`) or `---` with anything after it on its line;
- each document a block mapping starting in column 0, at most `_MAX_DEPTH` levels;
- keys plain words, each once per mapping (a repeated key is ruamel's diagnostic);
- values: a plain scalar on one line, made of a narrow set of characters, that YAML
  1.1 and 1.2 both read as a string (never a bool, null, number or date); a quoted
  scalar closed on its line, without escapes (`\\`, `''`); a flow list of such
  scalars on one line; a block list of such scalars; or a nested block mapping;
- never an anchor, alias, tag, multi-line scalar, empty value or flow mapping.

tests/test_fastyaml.py proves it against ruamel: on every text it accepts, the same
values, types and positions, and the same manifests and diagnostics when loaded.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

_MAX_DEPTH = 6
_UNSAFE = re.compile(r"[^\x20-\x7e\n]|^(?:%|\.\.\.|---.)", re.M)
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +|$)")
# A plain scalar: in a block (to the end of its line) or in a flow list (no space, comma or bracket).
_BLOCK_PLAIN = re.compile(r"[A-Za-z0-9_/(][A-Za-z0-9_./()+=~,' -]*")
_FLOW_PLAIN = re.compile(r"[A-Za-z0-9_/(][A-Za-z0-9_./()+=~-]*")
# Words some YAML version reads as a bool or null; each starts with a letter.
_NOT_STRINGS = frozenset(
    word
    for base in ("y", "yes", "n", "no", "on", "off", "true", "false", "null")
    for word in (base, base.capitalize(), base.upper())
)
# A plain scalar starting with a digit can be a number, a date or a time only if all its
# characters are among these (YAML 1.1 and 1.2 ints, floats, timestamps, sexagesimals).
_NUMBERISH = frozenset("0123456789_.+-:eEtTzZ xXoObB")


class Fallback(Exception):
    """The text is not in the plain shape: ruamel reads it."""


class LineCol:
    """Positions as ruamel's round-trip `lc` keeps them: 0-based line and column."""

    __slots__ = ("col", "data", "line")

    def __init__(self, line: int, col: int) -> None:
        self.line = line
        self.col = col
        self.data: dict[Any, list[int]] = {}

    def key(self, k: Any) -> tuple[int, int]:
        return self.data[k][0], self.data[k][1]

    def value(self, k: Any) -> tuple[int, int]:
        return self.data[k][2], self.data[k][3]

    def item(self, i: int) -> tuple[int, int]:
        return self.data[i][0], self.data[i][1]


class Map(dict[str, Any]):
    """A block mapping with ruamel's positions."""

    lc: LineCol


class Seq(list[str]):
    """A list of scalars with ruamel's positions."""

    lc: LineCol


def documents(text: str) -> list[Map] | None:
    """Every document of `text`, if all are in the plain shape; else None."""
    if _UNSAFE.search(text):
        return None
    lines = text.split("\n")
    bounds = [-1, *(i for i, line in enumerate(lines) if line == "---"), len(lines)]
    docs: list[Map] = []
    try:
        for n, (start, end) in enumerate(pairwise(bounds)):
            reader = _Reader(lines, end)
            first = reader.content(start + 1)
            if first == end:
                if n == 0:  # comments before the first `---`: no document
                    continue
                raise Fallback
            doc, after = reader.mapping(first, 0, 1)
            if reader.content(after) != end:
                raise Fallback
            docs.append(doc)
    except (Fallback, IndexError):
        return None
    return docs or None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _string(value: str) -> str:
    """`value` if every YAML version reads this plain scalar as a string."""
    c = value[0]
    if c.isalpha() and value not in _NOT_STRINGS:
        return value
    if c.isdigit() and not set(value) <= _NUMBERISH and value[:2].lower() not in ("0x", "0o", "0b"):
        return value
    if c in "_/(":
        return value
    raise Fallback


class _Reader:
    def __init__(self, lines: list[str], end: int) -> None:
        self.lines = lines
        self.end = end

    def content(self, i: int) -> int:
        """The next line at or after `i` that is not blank or a comment (or the end)."""
        while i < self.end:
            rest = self.lines[i].lstrip(" ")
            if rest and rest[0] != "#":
                return i
            i += 1
        return self.end

    def mapping(self, i: int, indent: int, depth: int) -> tuple[Map, int]:
        """The block mapping whose first key is on line `i` at column `indent`."""
        if depth > _MAX_DEPTH:
            raise Fallback
        node = Map()
        node.lc = LineCol(i, indent)
        while (i := self.content(i)) < self.end:
            line = self.lines[i]
            at = _indent(line)
            if at < indent:
                break
            m = _KEY.match(line, at)
            if at > indent or m is None:
                raise Fallback
            key = _string(m.group(1))
            if key in node:
                raise Fallback
            value, vline, vcol, after = self.value(i, m.end(), indent, depth)
            node[key] = value
            node.lc.data[key] = [i, at, vline, vcol]
            i = after
        return node, i

    def value(self, i: int, at: int, indent: int, depth: int) -> tuple[Any, int, int, int]:
        """The value after `key:` on line `i`: (value, its line, its column, the next line)."""
        line = self.lines[i]
        if at < len(line) and line[at] != "#":
            if line[at] == "[":
                return self.flow_list(i, at), i, at, i + 1
            return self.scalar(line, at, _BLOCK_PLAIN), i, at, i + 1
        j = self.content(i + 1)  # nothing on the key's line: a nested block, or null
        if j == self.end:
            raise Fallback
        nested = self.lines[j]
        col = _indent(nested)
        if nested.startswith("- ", col) and col >= indent:
            seq, after = self.block_list(j, col, indent)
            return seq, j, col, after
        if col > indent:
            child, after = self.mapping(j, col, depth + 1)
            return child, j, col, after
        raise Fallback

    def block_list(self, i: int, indent: int, parent: int) -> tuple[Seq, int]:
        """`- item` lines at column `indent`, under a key at column `parent`."""
        seq = Seq()
        seq.lc = LineCol(i, indent)
        while (i := self.content(i)) < self.end:
            line = self.lines[i]
            if _indent(line) != indent or not line.startswith("- ", indent):
                break
            at = _indent(line[indent + 1 :]) + indent + 1
            seq.lc.data[len(seq)] = [i, at]
            seq.append(self.scalar(line, at, _BLOCK_PLAIN))
            i += 1
        if i < self.end and _indent(self.lines[i]) > parent:
            raise Fallback  # neither the list's nor the parent mapping's
        return seq, i

    def flow_list(self, i: int, at: int) -> Seq:
        """`[a, "b", 'c']` closed on line `i`, starting at column `at`."""
        line = self.lines[i]
        seq = Seq()
        seq.lc = LineCol(i, at)
        k = at + 1
        while line[k] == " ":
            k += 1
        if line[k] == "]":
            self.tail(line, k + 1)
            return seq
        while True:
            while line[k] == " ":
                k += 1
            seq.lc.data[len(seq)] = [i, k]
            value, k = self.token(line, k)
            seq.append(value)
            while line[k] == " ":
                k += 1
            if line[k] == "]":
                self.tail(line, k + 1)
                return seq
            if line[k] != ",":
                raise Fallback
            k += 1

    def token(self, line: str, k: int) -> tuple[str, int]:
        """A scalar inside a flow list: its value and where it ends."""
        if line[k] in "\"'":
            return self.quoted(line, k)
        m = _FLOW_PLAIN.match(line, k)
        if m is None:
            raise Fallback
        return _string(m.group()), m.end()

    def scalar(self, line: str, at: int, plain: re.Pattern[str]) -> str:
        """A scalar running to the end of the line (but for a comment)."""
        if line[at] in "\"'":
            value, k = self.quoted(line, at)
            self.tail(line, k)
            return value
        comment = line.find(" #", at)
        text = (line[at:comment] if comment >= 0 else line[at:]).rstrip(" ")
        if not plain.fullmatch(text):
            raise Fallback
        return _string(text)

    def quoted(self, line: str, k: int) -> tuple[str, int]:
        quote = line[k]
        close = line.find(quote, k + 1)
        if close < 0:
            raise Fallback
        value = line[k + 1 : close]
        if "\\" in value or line[close + 1 : close + 2] == quote:
            raise Fallback  # an escape, or '' inside single quotes
        return value, close + 1

    def tail(self, line: str, k: int) -> None:
        """After a value: only spaces, then perhaps a comment."""
        rest = line[k:]
        if rest and (rest[0] != " " or rest.lstrip(" ")[:1] not in ("", "#")):
            raise Fallback
