"""Reading a ledger: the whole chain verified, across its segments, and the torn-line rule.

A ledger is its main file and, in format v3, the segments and ID lists under
`<name>.d/` (`_lists`). The main file is the first segment. A segment that has grown
past `SEGMENT_BYTES` ends with a `seal` record naming the next segment file, and the
chain (`seq`, `prev`, `hash`) runs on there: every record of every segment is verified
in one chain, so a removed, reordered or edited record anywhere breaks it (DESIGN
invariant 5). Sealed segments never change again; only the last one is appended to.

DESIGN "Applied ledger": a last line with no final newline that does not parse or
verify is torn (a warning, cut by the next append); one that verifies is a whole
record. Every newline-terminated line must verify, or reading fails naming its file
and line. Only the last segment can end torn: a seal is written whole before the next
segment is used.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain as chained
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from reconciler import yamlsource
from reconciler.errors import Hint, LedgerError
from reconciler.ledger import _lists
from reconciler.ledger._format import Chain, record_hash
from reconciler.ledger._record import CELL_KINDS, GENESIS, PIPELINE_KINDS, Record
from reconciler.ledger._summary import SegmentSummary, body_digest, check_summary, from_seal

# A reader's answer, for a sealed segment's summary: True when nothing of its cells is
# needed (the segment is then checked by its digest and not parsed; see `_summary`).
Skim = Callable[[SegmentSummary], bool]

SEGMENTS_DIR = "segments"


def segment_name(number: int) -> str:
    """The path of segment `number` (2, 3, ...) inside the sidecar directory."""
    return f"{SEGMENTS_DIR}/{number:06d}.jsonl"


@dataclass
class Ledger:
    """A verified ledger as read: its records, head, and anything worth a warning.

    `exists` is False when the main file was missing (apply refuses that, plan warns).
    `tail` is the segment appended to (the main file until the first seal); `size`,
    `good_bytes`, `unterminated` and `end_bytes` describe it, so that a writer can check
    that it is still exactly what was read before it appends.
    """

    path: Path
    records: list[Record] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    good_bytes: int = 0  # the whole records of the tail; anything after them is torn
    exists: bool = True
    size: int = 0  # the tail's size when read
    unterminated: bool = False  # the last record has no final newline
    end_offset: int = 0  # where the tail's last line (whole or torn) starts ...
    end_bytes: bytes = b""  # ... and its bytes up to the end of the file, as read
    # Intents that a later delete or failed record closes exactly (same cells): never in doubt.
    closed_intents: set[int] = field(default_factory=set)
    tail: Path = Path()
    segment: int = 1  # the tail's number: 1 is the main file
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # v3 lists read, by digest
    last_hash: str | None = None  # the chain's last hash when a seal follows the last record
    last_seq: int | None = None  # the chain's last seq (records may skip skimmed segments)
    tail_after: int = 0  # the seq the tail segment follows: its records are those after it
    # Sealed segments taken from their seal's summary instead of their records (`read(skim=)`):
    # `records` then holds only the other segments' records. Empty after a full read.
    skimmed: list[SegmentSummary] = field(default_factory=list)

    @property
    def head_seq(self) -> int:
        if self.last_seq is not None:
            return self.last_seq
        return self.records[-1].seq if self.records else 0

    def pipeline_records(self) -> list[Record]:
        """The `pause`, `start` and `resume` records that say where each pipeline was left,
        in ledger order: all of them read, and each skimmed segment's last ones."""
        read = [r for r in self.records if r.kind in PIPELINE_KINDS]
        if not self.skimmed:
            return read
        return sorted(chained(read, *(s.pipelines for s in self.skimmed)), key=lambda r: r.seq)

    @property
    def head_hash(self) -> str:
        if self.last_hash is not None:
            return self.last_hash
        return self.records[-1].hash if self.records else GENESIS

    @property
    def sidecar(self) -> Path:
        """`<name>.d/` beside the resolved main file (a symlinked ledger keeps its files)."""
        return _lists.sidecar_dir(Path(os.path.realpath(self.path)))

    def shown(self, rel: str) -> Path:
        """A file of the sidecar as messages name it: spelt like the main file was given,
        unless the main file is a symlink (then where the files really are)."""
        if os.path.islink(self.path):
            return self.sidecar / rel
        return _lists.sidecar_dir(self.path) / rel


class Files(Protocol):
    """Where a ledger's files are read from: its directory, or a mapping of their bytes."""

    def open(self, rel: str | None) -> BinaryIO | None:
        """The main file (`rel` None) or a file inside the sidecar directory; None: missing."""

    def list_bytes(self, digest: str) -> bytes | None: ...


class DiskFiles:
    def __init__(self, main: Path) -> None:
        self.main = main
        self.sidecar = _lists.sidecar_dir(Path(os.path.realpath(main)))

    def open(self, rel: str | None) -> BinaryIO | None:
        target = self.main if rel is None else self.sidecar / rel
        try:
            return yamlsource.open_regular(target)  # /dev/zero or a FIFO: refused, never read
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LedgerError(f"{target}: cannot read ledger: {exc.strerror or exc}") from exc

    def list_bytes(self, digest: str) -> bytes | None:
        fh = self.open(_lists.list_name(digest))
        if fh is None:
            return None
        with fh:
            return fh.read()


class MapFiles:
    """A ledger's files as `ledger_files` gives them: POSIX paths beside the main file."""

    def __init__(self, name: str, files: Mapping[str, bytes]) -> None:
        self.name = name
        self.files = files

    def open(self, rel: str | None) -> BinaryIO | None:
        data = self.files.get(self.name if rel is None else f"{self.name}.d/{rel}")
        return None if data is None else io.BytesIO(data)

    def list_bytes(self, digest: str) -> bytes | None:
        return self.files.get(f"{self.name}.d/{_lists.list_name(digest)}")


def read(
    path: str | os.PathLike[str],
    *,
    skim: Skim | None = None,
    check_seals: bool = False,
    files: Mapping[str, bytes] | None = None,
) -> Ledger:
    """Read and verify the whole chain; raise `LedgerError` naming the first bad line.

    Streams each segment line by line: memory holds the records, not the files.
    `skim`: sealed segments it answers True for are checked by their seal's digest and
    taken from its summary (`Ledger.skimmed`), not parsed; if a summed-up key turns out to
    have records in another segment too, it is read again with those segments in full (a
    key's distinct cells cannot be added across segments). `check_seals` (`ledger verify`):
    each seal's summary must also be exactly what its segment's records give. `files`:
    the ledger's files held in memory (by paths beside the main file, as `ledger_files`
    gives them; the ledger kept in git, as its branch holds it), read as if at `path`:
    nothing is written anywhere to read them.
    """
    given = Path(path)
    if files is not None:
        return read_from(given, MapFiles(given.name, files), skim=skim, check_seals=check_seals)
    side = given.parent.parent
    if given.parent.name == SEGMENTS_DIR and side.name.endswith(".d") and side.name != ".d":
        main = side.with_name(side.name[: -len(".d")])
        raise LedgerError(
            f"{given} is a segment of the ledger {main}, not a ledger: name the main file; it reads "
            "every segment in order",
            hint=Hint.LEDGER_SEGMENT,
            hint_value=str(main),
        )
    return read_from(given, DiskFiles(given), skim=skim, check_seals=check_seals)


def read_from(path: Path, files: Files, *, skim: Skim | None = None, check_seals: bool = False) -> Ledger:
    """`read` of a ledger whose files come from `files` (named as if at `path`)."""
    with no_gc():
        return _read_from(path, files, skim, check_seals)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic collector paused: reading a ledger (or diffing it) makes only objects
    without cycles (dicts, tuples, strings, records), so the collector's passes over the
    growing heap are pure cost (a tenth of reading a year's ledger)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_from(path: Path, files: Files, skim: Skim | None, check_seals: bool) -> Ledger:
    ledger = Ledger(path, tail=path)
    chain = Chain(path, load_list=files.list_bytes)
    fh = files.open(None)
    if fh is None:
        ledger.exists = False
        return ledger
    number = 1
    while True:
        display = path if number == 1 else ledger.shown(segment_name(number))
        seal: Record | None = None
        if skim is not None:
            seal = _skimmed(ledger, chain, fh, display, skim)
        if seal is None:
            ledger.tail_after = chain.seq
            seal = _read_segment(ledger, chain, fh, display, check_seals)
        if seal is None:
            break
        number += 1
        expected = segment_name(number)
        if seal.data["next"] != expected:
            raise LedgerError(
                f"{display}: the seal after seq {seal.seq} names {seal.data['next']!r}, not {expected!r}"
            )
        fh = files.open(expected)
        if fh is None:
            raise LedgerError(
                f"{display}: the seal after seq {seal.seq} names the next segment {ledger.shown(expected)}, "
                "which is missing"
            )
        ledger.tail, ledger.segment = ledger.sidecar / expected, number
    ledger.closed_intents = chain.closed
    ledger.lists = chain.refs
    ledger.last_hash = chain.prev
    ledger.last_seq = chain.seq
    if skim is not None and ledger.skimmed:
        shared = _summed_keys_elsewhere(ledger)
        if shared:  # read again, those in full: the chain is read in order, or not at all
            return _read_from(path, files, lambda s: s.where not in shared and skim(s), check_seals)
    return ledger


def _skimmed(ledger: Ledger, chain: Chain, fh: BinaryIO, display: Path, skim: Skim) -> Record | None:
    """`_skim_segment` on an open segment: its seal (closing `fh`) if it was skimmed, else
    None with `fh` back at its start, to be read in full. Only the last line is read
    before the decision: a big v2 ledger (one file, no seal) is never held whole."""
    try:
        last = _last_line(fh)
        seal = _seal_of(last)
        summary: SegmentSummary | None = None
        data = b""
        if seal is not None:
            summary = from_seal(str(display), seal)
            if summary is not None and not summary.open and summary.first == chain.seq + 1 and skim(summary):
                fh.seek(0)
                data = fh.read()
        fh.seek(0)
    except OSError as exc:
        fh.close()
        raise LedgerError(f"{display}: cannot read ledger: {exc.strerror or exc}") from exc
    if seal is None or summary is None or not data.endswith(last):
        return None  # not skimmed: read in full
    record = _skim_segment(ledger, chain, data[: len(data) - len(last)], seal, summary)
    if record is not None:
        fh.close()
    return record


def _last_line(fh: BinaryIO) -> bytes:
    """The file's last line (with its newline), read from the end."""
    end = fh.seek(0, io.SEEK_END)
    size = 1 << 16
    while True:
        start = max(0, end - size)
        fh.seek(start)
        chunk = fh.read(end - start)
        cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
        if cut >= 0:
            return chunk[cut + 1 :]
        if start == 0:
            return chunk
        size *= 4


def _seal_of(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        seal = json.loads(line)
    except (ValueError, RecursionError):  # read in full: the error names the line
        return None
    if not isinstance(seal, dict) or seal.get("kind") != "seal" or seal.get("v") != 3:
        return None
    return seal


def _skim_segment(
    ledger: Ledger, chain: Chain, body: bytes, seal: dict[str, Any], summary: SegmentSummary
) -> Record | None:
    """Take a sealed segment from its seal's summary, if the seal checks out against the
    file: its hash, its place in the chain, the body's size and sha256 (`body`: the bytes
    before the seal). None: read the segment in full (then any fault is named by line)."""
    first = body[: body.find(b"\n") + 1]
    try:
        head = json.loads(first)
    except (ValueError, RecursionError):  # read in full: the error names the line
        return None
    if not (
        isinstance(head, dict)
        and head.get("seq") == summary.first
        and head.get("prev") == chain.prev
        and seal["body"] == body_digest(body)
        and seal.get("hash") == record_hash(seal)
        and isinstance(seal.get("next"), str)
        and isinstance(seal.get("at"), str)
    ):
        return None
    chain.seq, chain.prev = summary.last, seal["hash"]
    ledger.skimmed.append(summary)
    return Record(summary.last, "seal", seal["at"], seal["hash"], seal)


def _summed_keys_elsewhere(ledger: Ledger) -> set[str]:
    """The skimmed segments with a key that has records in another segment as well."""
    where: dict[tuple[str, str, str, str], set[str]] = {}
    for r in ledger.records:
        if r.kind in CELL_KINDS:
            where.setdefault(r.key, set()).add("")
    for s in ledger.skimmed:
        for key in s.deleted:
            where.setdefault(key, set()).add(s.where)
    return {w for places in where.values() if len(places) > 1 for w in places if w}


def _read_segment(
    ledger: Ledger, chain: Chain, fh: BinaryIO, display: Path, check_seals: bool = False
) -> Record | None:
    """Verify one segment's lines onto the chain; its seal record, or None if it is the tail.
    A seal's `body` digest must match the bytes before it (and with `check_seals`, its
    summary the records)."""
    offset = 0
    line = b""
    seal: Record | None = None
    prefix = f"{display}:"
    ledger.unterminated = False
    body = hashlib.sha256()
    first = len(ledger.records)
    with fh:
        try:
            for number, line in enumerate(fh, start=1):
                where = prefix + str(number)
                if seal is not None:
                    raise LedgerError(
                        f"{where}: a record after the seal of this segment (which follows seq {seal.seq})"
                    )
                record = (
                    chain.verify(chain.seq + 1, line, where)
                    if line.endswith(b"\n")
                    else _read_tail(ledger, chain, where, line)
                )
                if record is not None and record.kind == "seal":
                    seal = record  # layout, not history: not among the records
                    _check_body(where, seal, offset, body)
                    if check_seals:
                        check_summary(where, seal.data, ledger.records[first:])
                else:
                    body.update(line)
                    if record is not None:
                        ledger.records.append(record)
                offset += len(line)
        except OSError as exc:
            raise LedgerError(f"{display}: cannot read ledger: {exc.strerror or exc}") from exc
    ledger.size = offset
    torn = not line.endswith(b"\n") and not ledger.unterminated
    ledger.good_bytes = offset - len(line) if torn else offset
    ledger.end_offset, ledger.end_bytes = offset - len(line), line
    return seal


def _check_body(where: str, seal: Record, size: int, digest: Any) -> None:
    body = seal.data.get("body")
    if body is None:  # sealed by an earlier version: the chain alone covers the segment
        return
    if body != {"bytes": size, "sha256": digest.hexdigest()}:
        raise LedgerError(
            f"{where}: the seal's digest of its segment ({body!r}) does not match the segment's "
            f"{size} bytes before it; the seal was edited"
        )


def _read_tail(ledger: Ledger, chain: Chain, where: str, tail: bytes) -> Record | None:
    try:
        record = chain.verify(chain.seq + 1, tail, where)
    except LedgerError as exc:
        reason = str(exc).split(": ", 1)[-1]
        ledger.warnings.append(
            f"{where}: last line is incomplete and does not verify ({reason}): "
            "a write was interrupted; ignored, and cut off by the next append"
        )
        return None
    ledger.unterminated = True
    return record
