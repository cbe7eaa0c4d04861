"""Reading input files safely, and YAML with positions: the one module of the package that touches
ruamel.yaml (the emulator, which stands alone, reads its seed files with it too).

Reads only regular files, never more than a bound (a FIFO or `/dev/zero` named
like a manifest must not block or fill memory), decodes strict UTF-8 without a
BOM, refuses anchors and aliases (a small file must not expand into a huge one),
reports duplicate keys without stopping, and keeps ruamel's round-trip nodes so
that every later problem can name `file:line:col`.

Files in the plain shape manifests have (block mappings of `key: scalar`, flow or
block lists of scalars, comments) are read by `fastyaml` (libyaml's parser, our policy)
into nodes that carry the same values and positions ruamel's would; anything else goes
to ruamel, which is imported only then, and parses the file once: the checks above run
on each event as ruamel's composer takes it (tests/test_fastyaml.py proves the two agree).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from reconciler import fastyaml
from reconciler.errors import Diagnostic

if TYPE_CHECKING:
    from ruamel.yaml import YAML

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document of a file: its data and where it starts."""

    data: Any
    line: int
    col: int
    # The file's lines, to point at one character inside a scalar (see `char_position`).
    source: tuple[str, ...] = field(default=(), repr=False, compare=False)


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a directory: never read."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file ({kind}); refusing to read it")
        self.kind = kind


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class FileTooLarge(OSError):
    """The file holds more than the bound its reader allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file is larger than {_size(limit)}")
        self.limit = limit


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


# A ledger's lines run to tens of KB (a record of 1,000 assets and 2,000 points): read
# through the default 8 KiB buffer, each line is read in pieces and joined (a 7 MB ledger
# took 5.5 ms to read line by line, 1 ms through this).
_STREAM_BUFFER = 256 * 1024


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """A regular file opened for reading, as `read_regular` opens it (non-blocking, then
    `fstat` on the descriptor): a FIFO, a device such as /dev/zero, a socket or a directory
    is refused with `NotRegularFile`, never read. For readers that stream a large file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # as open() says it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(next((k for test, k in _KINDS if test(st.st_mode)), "a special file"))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=_STREAM_BUFFER)
    except BaseException:
        os.close(fd)
        raise


def loads_json(data: str | bytes) -> Any:
    """`json.loads`, with JSON nested deeper than the decoder can follow refused as a
    `ValueError` like any other invalid JSON (not a `RecursionError`, which reads as a bug)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Opened non-blocking and checked with `fstat` on the opened descriptor, so a FIFO
    or a device put in place after any earlier check is still refused, never read;
    at most `limit` + 1 bytes are read, also from a file that grows meanwhile.
    Raises `NotRegularFile`, `FileTooLarge`, or `OSError` as the system reports it.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(next((k for test, k in _KINDS if test(st.st_mode)), "a special file"))
        if st.st_size > limit:
            raise FileTooLarge(limit)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, st.st_size + 1 if not chunks else 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise FileTooLarge(limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


_BOM = b"\xef\xbb\xbf"


def decode(path: str, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Decode UTF-8 strictly, without a leading BOM, naming the line and column of the first bad byte.

    Editors on Windows write a BOM and CRLF line ends; both are accepted (CR is
    dropped where the caller splits lines), so that `\\ufeffWTG0001` never becomes an ID.
    """
    raw = raw.removeprefix(_BOM)
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [Diagnostic(path, line, col, f"file is not UTF-8 (byte 0x{raw[exc.start]:02x})")]


MAX_DEPTH = 32
MAX_BYTES = 256 * 1024  # about 25,000 inline IDs; longer lists belong in an *IdsFile


class _Refused(Exception):
    """An anchor, an alias or nesting past MAX_DEPTH: the file is refused at that event."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _EventChecks:
    """Anchors, aliases, nesting depth and duplicate keys, one event at a time, as ruamel's
    composer takes them: a hostile file is refused at its first anchor or alias, or past
    MAX_DEPTH levels, before anything is expanded or nested deeper (no hang, no recursion
    error); duplicate keys are collected, so loading goes on and names them all."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.duplicates: list[Diagnostic] = []
        # Each open collection: None for a sequence, else [seen keys, expecting a key?].
        self.stack: list[list[Any] | None] = []

    def see(self, event: Any) -> None:
        from ruamel.yaml.events import (
            AliasEvent,
            CollectionEndEvent,
            MappingStartEvent,
            NodeEvent,
            ScalarEvent,
            SequenceStartEvent,
        )

        mark = event.start_mark
        if isinstance(event, NodeEvent) and event.anchor is not None:
            what = "alias" if isinstance(event, AliasEvent) else "anchor"
            msg = f"YAML {what} '{event.anchor}' is not allowed in manifests; write the values out"
            raise _Refused(Diagnostic(self.path, mark.line + 1, mark.column + 1, msg))
        stack = self.stack
        if isinstance(event, NodeEvent) and stack and stack[-1] is not None:
            top = stack[-1]
            if top[1] and isinstance(event, ScalarEvent):
                if event.value in top[0]:
                    msg = f"duplicate key '{event.value}'"
                    self.duplicates.append(Diagnostic(self.path, mark.line + 1, mark.column + 1, msg))
                top[0].add(event.value)
            top[1] = not top[1]
        if isinstance(event, MappingStartEvent):
            stack.append([set(), True])
        elif isinstance(event, SequenceStartEvent):
            stack.append(None)
        elif isinstance(event, CollectionEndEvent):
            stack.pop()
        if len(stack) > MAX_DEPTH:
            msg = f"nested deeper than {MAX_DEPTH} levels; a manifest needs 3"
            raise _Refused(Diagnostic(self.path, mark.line + 1, mark.column + 1, msg))
        long = isinstance(event, ScalarEvent) and event.style is None and len(event.value) > MAX_NUMBER
        if long and _LONG_NUMBER.match(event.value):  # int() would refuse it (or take quadratic time)
            msg = f"a number of {len(event.value):,} characters is too long; quote it if it is an ID"
            raise _Refused(Diagnostic(self.path, mark.line + 1, mark.column + 1, msg))


MAX_NUMBER = 1000  # characters of a plain scalar read as a number; Python refuses ints past 4,300 digits
_LONG_NUMBER = re.compile(r"[-+]?(0[xob])?[0-9a-fA-F_]+$")


def _yaml(checks: _EventChecks) -> YAML:
    """ruamel's pure round-trip loader whose parser hands each event to `checks` first."""
    from ruamel.yaml import YAML
    from ruamel.yaml.parser import RoundTripParser

    class CheckedParser(RoundTripParser):
        def get_event(self) -> Any:
            event = super().get_event()
            checks.see(event)
            return event

    y = YAML(typ="rt", pure=True)
    y.Parser = CheckedParser
    y.allow_duplicate_keys = True  # reported by the checks, so loading can go on
    return y


def load_documents(path: str, text: str, *, fast: bool = True) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document of a file; syntax errors become diagnostics.

    `fast=False` skips the libyaml path: ruamel reads every file (the differential tests
    compare the two; nothing else needs it).
    """
    if len(text) > MAX_BYTES:
        return [], [
            Diagnostic(
                path, 1, 1, f"file is larger than {MAX_BYTES >> 10} KiB; put long ID lists in an *IdsFile"
            )
        ]
    plain_docs = fastyaml.documents(text) if fast else None
    if plain_docs is not None:  # the plain shape: no anchor, alias or duplicate key, 6 levels deep
        lines = tuple(text.split("\n"))
        return [Document(d, d.lc.line + 1, d.lc.col + 1, source=lines) for d in plain_docs], []
    return _ruamel_documents(path, text)


def _ruamel_documents(path: str, text: str) -> tuple[list[Document], list[Diagnostic]]:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    checks = _EventChecks(path)
    try:
        lines = tuple(text.split("\n"))
        docs = [Document(d, *_start(d), source=lines) for d in _yaml(checks).load_all(text) if d is not None]
    except _Refused as exc:
        return [], [*checks.duplicates, exc.diagnostic]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return [], [Diagnostic(path, line, col, f"YAML syntax error: {problem}")]
    except YAMLError as exc:
        return [], [Diagnostic(path, 1, 1, f"YAML error: {exc}")]
    return docs, checks.duplicates


def _start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    return (lc.line + 1, lc.col + 1) if lc is not None else (1, 1)


def plain(node: Any) -> Any:
    """Round-trip nodes as plain dicts and lists, for validation."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def position(doc: Document, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the node at `loc` (or its key), else its nearest parent."""
    node: Any = doc.data
    line, col = doc.line, doc.col
    # ruamel's CommentedMap/CommentedSeq and fastyaml's nodes: dicts and lists with `lc`.
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and hasattr(node, "lc") and part in node:
            key_pos = node.lc.key(part)
            val_pos = node.lc.value(part)
            line, col = (key_pos if at_key and last else val_pos) or key_pos
            line, col = line + 1, col + 1
            node = node[part]
        elif (
            isinstance(node, list) and hasattr(node, "lc") and isinstance(part, int) and 0 <= part < len(node)
        ):
            line, col = node.lc.item(part)
            line, col = line + 1, col + 1
            node = node[part]
        else:
            break
    return line, col


def char_position(doc: Document, loc: Loc, value: str, offset: int) -> tuple[int, int]:
    """Line and column of character `offset` of the scalar `value` at `loc`.

    Exact when the scalar is written on one line as it reads (plain or quoted);
    inside an escape sequence it points where the escape starts; otherwise at the
    scalar itself.
    """
    line, col = position(doc, loc)
    if not 0 < line <= len(doc.source):
        return line, col
    text, start = doc.source[line - 1], col - 1
    if text[start : start + 1] in ("'", '"'):
        start += 1
    if text.startswith(value[:offset], start):
        return line, start + offset + 1
    return line, col
