"""The plain shape of YAML that manifests have, read by libyaml (used by `yamlsource` only).

A manifest is a few block mappings of `key: scalar`, with lists of scalars, and comments.
ruamel's pure-Python round-trip parser spends about 5 ms on each such document (a year of
small fixes is hundreds of them) and costs its import. Here libyaml, PyYAML's C parser
(`CSafeLoader`, as pre-commit uses it), does the tokenizing and parsing; this module keeps
only our policy: which shapes are plain, and which scalars are strings in both YAML 1.1
and 1.2. `documents(text)` returns nodes holding exactly the values and positions
ruamel's round-trip nodes would (`lc.line`, `lc.col`, `lc.key(k)`, `lc.value(k)`,
`lc.item(i)`, 0-based, from libyaml's event marks), or None for anything else: then
ruamel reads the file, so every diagnostic stays ruamel's. What it accepts:

- each document a block mapping, at most `_MAX_DEPTH` levels; no directive;
- keys strings (below), each once per mapping (a repeated key is ruamel's diagnostic);
- values: a scalar on one line that both YAML versions read as a string (a quoted one,
  or a plain one that is never a bool, null, number or date); a list of such scalars,
  flow (`[a, b]`) or block (`- a` lines); or a nested block mapping;
- never an anchor, alias, tag, block (`|`, `>`) or multi-line scalar, empty value,
  flow mapping, or a list holding anything but scalars.

Non-ASCII text, CRLF line ends, `''` and escapes in quotes, trailing commas and `...`
are all libyaml's to read; a tab anywhere is not (the two versions differ on it). Without
libyaml (a PyYAML built without it), nothing is plain.

tests/test_fastyaml.py proves it against ruamel: on every text it accepts, the same
values, types and positions, and the same manifests and diagnostics when loaded; and it
fails if the fast path stops accepting the shapes manifests have.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml import events as ev

_LOADER = getattr(yaml, "CSafeLoader", None)
_MAX_DEPTH = 6
# What libyaml (YAML 1.1) and ruamel (1.2) do not read alike, so ruamel reads the file:
# a tab (libyaml takes one inside a plain scalar, ruamel refuses it), line breaks only
# 1.1 knows, a BOM past the start, and C0/C1 controls other than LF and CR.
_UNSAFE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u2028\u2029]")
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
    if _LOADER is None or _UNSAFE.search(text):
        return None
    try:
        loader = _LOADER(text)
        try:  # libyaml's own get_event, not `yaml.parse`'s Python generator around it
            docs = _Reader(loader.get_event).stream()
        finally:
            loader.dispose()
    except (Fallback, yaml.YAMLError, UnicodeError):  # libyaml takes UTF-8: a lone surrogate is not
        return None
    return docs or None


def _at(event: ev.Event, end: bool = False) -> tuple[int, int]:
    """Where `event` starts (or ends): 0-based line and column, as ruamel counts them."""
    mark = event.end_mark if end else event.start_mark
    if mark is None:  # libyaml always marks its events; a parser that did not is not ours
        raise Fallback
    return mark.line, mark.column


def _string(value: str) -> str:
    """`value` if every YAML version reads this plain scalar as a string."""
    c = value[:1]
    if c.isalpha() and value not in _NOT_STRINGS:
        return value
    if c.isdigit() and not set(value) <= _NUMBERISH and value[:2].lower() not in ("0x", "0o", "0b"):
        return value
    if c in ("_", "/", "("):
        return value
    raise Fallback


class _Reader:
    """A recursive descent over libyaml's events, building `Map`/`Seq` nodes."""

    def __init__(self, next_event: Callable[[], ev.Event | None]) -> None:
        self.next = next_event  # None past the stream's end: no branch takes it, so Fallback

    def stream(self) -> list[Map]:
        if not isinstance(self.next(), ev.StreamStartEvent):
            raise Fallback
        docs: list[Map] = []
        while isinstance(event := self.next(), ev.DocumentStartEvent):
            if event.version is not None or event.tags:
                raise Fallback  # a %YAML or %TAG directive
            start = self.next()
            if not isinstance(start, ev.MappingStartEvent):
                raise Fallback  # a scalar, a list or an empty document
            docs.append(self.mapping(start, 1))
            if not isinstance(self.next(), ev.DocumentEndEvent):
                raise Fallback
        if not isinstance(event, ev.StreamEndEvent):
            raise Fallback
        return docs

    def mapping(self, start: ev.MappingStartEvent, depth: int) -> Map:
        if depth > _MAX_DEPTH or start.flow_style or start.anchor is not None or start.tag is not None:
            raise Fallback
        node = Map()
        node.lc = LineCol(*_at(start))
        positions = node.lc.data
        while not isinstance(event := self.next(), ev.MappingEndEvent):
            key = self.scalar(event)
            if key in node:
                raise Fallback
            value = self.next()
            if isinstance(value, ev.SequenceStartEvent):
                node[key] = self.sequence(value)
            elif isinstance(value, ev.MappingStartEvent):
                node[key] = self.mapping(value, depth + 1)
            else:
                node[key] = self.scalar(value)  # an alias or a stream's end: Fallback
            assert event is not None and value is not None  # else `scalar` fell back
            k, v = event.start_mark, value.start_mark
            assert k is not None and v is not None  # checked by `scalar`, or `_at` in the calls above
            positions[key] = [k.line, k.column, v.line, v.column]
        return node

    def sequence(self, start: ev.SequenceStartEvent) -> Seq:
        if start.anchor is not None or start.tag is not None:
            raise Fallback
        seq = Seq()
        seq.lc = LineCol(*_at(start))
        positions = seq.lc.data
        append = seq.append
        while not isinstance(event := self.next(), ev.SequenceEndEvent):
            value = self.scalar(event)
            assert event is not None  # else `scalar` fell back
            mark = event.start_mark
            assert mark is not None  # checked by `scalar`
            positions[len(seq)] = [mark.line, mark.column]
            append(value)
        return seq

    def scalar(self, event: ev.Event | None) -> str:
        """The string a scalar event holds, if both YAML versions read it as one."""
        if type(event) is not ev.ScalarEvent or event.anchor is not None or event.tag is not None:
            raise Fallback  # an alias, a collection where a scalar must be, an anchor or a tag
        start, end = event.start_mark, event.end_mark
        if start is None or end is None or start.line != end.line:
            raise Fallback  # unmarked (not libyaml's), or a multi-line scalar
        style = event.style
        if style == "'" or style == '"':
            return event.value
        if style:  # a literal or folded block scalar
            raise Fallback
        return _string(event.value)
