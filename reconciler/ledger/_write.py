"""Appending records: group commit, segments, and what a failed append leaves behind.

Keeps DESIGN invariant 4 (durability): `append` returns only once its record is
written and fsynced. An append that raises leaves none of its bytes in the file:
the file ends at its last whole record, no `seq` is used twice, and every later
append on the writer refuses at once (DESIGN "Applied ledger": the run stops
sending). The writer never cuts bytes it did not read or write itself.

Format v3: long ID lists go to their list file (written and fsynced before the record
that names them), and once the segment appended to holds `segment_bytes`, a `seal`
record closes it and names the next segment file, created empty (and fsynced) before
the seal is written; records then go there. So no file of the ledger grows past about
`segment_bytes`, and what git must store and send per apply stays small.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.errors import LedgerError, LedgerWriteError
from reconciler.ledger import _lists
from reconciler.ledger._format import Chain, canonical, join_ids, record_hash, utc_now
from reconciler.ledger._read import DiskFiles, Ledger, segment_name
from reconciler.ledger._record import CELL_KINDS, FORMAT_VERSION, KEY_FIELDS, LIST_FIELDS, Record
from reconciler.ledger._summary import body_digest, summarize
from reconciler.ledger.history import MARK_FIELDS

_CHANGED = "the ledger changed since it was read; another apply?"
# What the chain sets on every record (as opposed to the fields a caller gives).
CHAIN_FIELDS = ("v", "seq", "kind", "at", "prev", "hash")
# A segment is sealed once it holds this much, at the start of the next run that appends:
# the year's workload of issue 18 makes about 16 MB of records a year, so about 16 segments
# a year. Every publish to git writes and sends the segment appended to, so it stays small.
# A run's records stay in one segment (its seal's summary then sums up whole manifests, see
# `_summary`) unless the run alone writes `RUN_SEGMENTS` times this much.
SEGMENT_BYTES = 1_000_000
RUN_SEGMENTS = 8


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class LedgerWriter:
    """Appends records to a verified ledger, with group commit across threads.

    Records are written in `seq` order under a mutex; fsync runs outside it, and one
    fsync covers every record written before it (group commit). Use only while
    holding `LedgerLock`, on the `Ledger` just read: the first append refuses if the
    file changed since.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        sync_each: bool = True,
        seal_within_runs: bool = False,
    ) -> None:
        self.path = ledger.path
        self._ledger = ledger
        self._tail = ledger.tail if ledger.exists else ledger.path  # the segment appended to
        self._segment = ledger.segment
        self.segment_bytes = segment_bytes
        self._sync_each = sync_each  # False (migrate only): durable at `sync()`, and at each seal
        self._retired: list[int] = []  # descriptors of sealed segments: closed with the writer
        self._fd: int | None = None  # opened on the first append: a run that writes nothing leaves no file
        self._seq = ledger.head_seq
        self._prev = ledger.head_hash
        # Each record is verified as the reader will before it is written: the writer can
        # never put down a line that a later read refuses.
        self._chain = Chain(self.path, load_list=DiskFiles(self.path).list_bytes)
        self._chain.prev, self._chain.seq = self._prev, self._seq
        self._chain.refs = dict(ledger.lists)
        self._chain.intents = {r.seq: r for r in ledger.records if r.kind == "intent"}
        self._tail_after = ledger.tail_after  # the seq the segment appended to follows
        self._in_run = False  # records appended since the writer was made (or `new_run`)
        self._seal_within_runs = seal_within_runs  # migrate: no runs to keep together
        self._end = 0  # the file's size once every record written so far is in it
        self._mutex = threading.RLock()  # re-entered by a seal, written under it
        self._sync = threading.Lock()
        self._lists_lock = threading.Lock()  # `_storing`, and the lists `_store_once` adds to `refs`
        self._storing: dict[str, threading.Event] = {}  # lists being stored, by digest: set once done
        self._synced = (self._seq, 0)  # (seq, end) known to be on disk
        self._limit = -1  # after a failure: the last seq that may still succeed; -1: none failed
        self._failure = ""
        self.records: list[Record] = []

    # --- the public surface -----------------------------------------------------

    def append(self, kind: str, fields: Mapping[str, Any], *, at: str | None = None) -> Record:
        """Append one record (format v2); `at` keeps a record's time when it is re-chained.

        Cell kinds take `assetIds`/`pointIds` as lists (written comma-joined), or, for
        `delete`/`failed` closing an intent exactly, `"intent": <its seq>` and no lists
        (the key fields are then taken from the intent). Raises `LedgerWriteError` naming
        the file and the OS reason if the record could not be made durable; nothing of
        it is then left in the file, and every later append refuses at once.
        """
        if kind == "seal":
            raise LedgerError(f"{self.path}: seal records are written by the writer alone")
        if self._full():
            with self._sync, self._mutex:
                if self._full():
                    self._seal()
        lists = self._store_lists(kind, fields)
        fd, record = self._append_locked(kind, fields, at, lists)
        self._in_run = True
        if self._sync_each:
            self._sync_to(fd, record.seq)
        return record

    def sync(self) -> None:
        """Make every record appended so far durable (for a writer made with `sync_each=False`)."""
        if self._fd is not None:
            self._sync_to(self._fd, self._seq)

    def _append_locked(
        self, kind: str, fields: Mapping[str, Any], at: str | None, lists: Mapping[str, Any] | None = None
    ) -> tuple[int, Record]:
        with self._mutex:
            self._check_usable()
            sealing = kind == "seal"  # a seal takes no seq: it says which seq it follows
            seq = self._seq if sealing else self._seq + 1
            data: dict[str, Any] = {"v": FORMAT_VERSION, "kind": kind, "at": at or utc_now()}
            data.update({"after": seq} if sealing else {"seq": seq})
            data.update(self._encode(seq, kind, fields, lists or {}))
            data["prev"] = self._prev
            data["hash"] = record_hash(data)
            line = canonical(data)
            record = self._chain.verify(seq, line)
            fd = self._open()
            self._write(fd, seq + sealing, kind, line + b"\n")  # a failed seal keeps seq itself
            self._seq, self._prev = seq, data["hash"]
            if not sealing:
                self.records.append(record)
        return fd, record

    def new_run(self) -> None:
        """The records appended from now on are another run's: the segment may be sealed
        before the first of them (a writer is one run until this is called)."""
        self._in_run = False

    def _full(self) -> bool:
        end = self._end if self._fd is not None else self._ledger.good_bytes
        if self._in_run and not self._seal_within_runs:
            return end >= self.segment_bytes * RUN_SEGMENTS and not self._failure
        return end >= self.segment_bytes and not self._failure

    def _seal(self) -> None:
        """Close the tail with a `seal` naming the next segment, and append there from now on.

        The next file is created empty and made durable first, so a seal never names a
        missing file; a crash before the seal leaves an empty file no seal names (the next
        seal truncates it). Held: `_sync` and `_mutex`; the sealed tail is fsynced here.
        """
        fd = self._open()
        rel = segment_name(self._segment + 1)
        target = self._ledger.sidecar / rel
        try:
            _lists.make_dirs(target.parent)
            new = os.open(
                target, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644
            )
        except OSError as exc:
            raise self._fail(f"{target}: cannot create the next ledger segment: {_reason(exc)}") from exc
        try:
            os.fsync(new)
            _lists.fsync_dir(target.parent)
            _lists.fsync_dir(self._ledger.sidecar)
        except OSError as exc:
            os.close(new)
            raise self._fail(f"{target}: cannot create the next ledger segment: {_reason(exc)}") from exc
        try:
            _, seal = self._append_locked("seal", {"next": rel, **self._summary(fd)}, None)
            self._fsync_upto(fd, seal.seq)
        except LedgerWriteError:
            os.close(new)
            raise
        self._retired.append(fd)
        self._fd, self._tail, self._segment = new, target, self._segment + 1
        self._tail_after = seal.seq
        self._end = 0
        self._synced = (self._seq, 0)

    def _summary(self, fd: int) -> dict[str, object]:
        """The seal's `body` digest and `summary` of the segment it closes (`_summary`)."""
        try:
            body = os.pread(fd, self._end, 0)
        except OSError as exc:
            raise self._fail(f"{self._tail}: cannot read the segment to seal it: {_reason(exc)}") from exc
        if len(body) != self._end:
            raise self._fail(f"{self._tail}: {_CHANGED} It is shorter than what was written to it.")
        after = self._tail_after
        records = [r for r in (*self._ledger.records, *self.records) if r.seq > after]
        return {"body": body_digest(body), "summary": summarize(records)}

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written or read: what a plan must have been made on."""
        return (self._seq, self._prev)

    def append_delete(
        self, intent: Record, fields: Mapping[str, Any] | None = None, *, at: str | None = None
    ) -> Record:
        """Record that `intent`'s request succeeded, exactly as sent: `{"intent": seq}`, no lists."""
        return self.append("delete", {**(fields or {}), "intent": self._own(intent).seq}, at=at)

    def append_failed(
        self,
        intent: Record,
        *,
        code: int | None,
        message: str,
        fields: Mapping[str, Any] | None = None,
        at: str | None = None,
    ) -> Record:
        """Record that the gateway definitely refused `intent`'s request: its cells are pending again."""
        body = {**(fields or {}), "intent": self._own(intent).seq, "code": code, "message": message}
        return self.append("failed", body, at=at)

    def append_copies(self, records: Iterable[Record]) -> list[Record]:
        """Re-append records of another chain after this one (a git rebase), keeping their
        times; an `intent` reference to a record copied in the same call follows its new seq."""
        moved: dict[int, int] = {}
        out = []
        for r in records:
            if r.kind == "seal":  # the layout of the other chain: this writer seals its own
                continue
            fields = {k: v for k, v in r.data.items() if k not in CHAIN_FIELDS}
            if r.kind in CELL_KINDS and r.intent_seq is not None:
                fields["intent"] = moved.get(r.intent_seq, r.intent_seq)
            elif r.kind in CELL_KINDS:
                fields["assetIds"], fields["pointIds"] = r.asset_ids, r.point_ids
            new = self.append(r.kind, fields, at=r.at)
            moved[r.seq] = new.seq
            out.append(new)
        return out

    def _own(self, intent: Record) -> Record:
        mine = self._chain.intents.get(intent.seq)
        if mine is None or mine.hash != intent.hash:
            raise LedgerError(f"{self.path}: record seq {intent.seq} is not an intent of this ledger")
        return mine

    def _encode(
        self, seq: int, kind: str, fields: Mapping[str, Any], lists: Mapping[str, Any]
    ) -> dict[str, Any]:
        out = dict(fields)
        if kind not in CELL_KINDS:
            return out
        if "intent" in out:
            intent = self._chain.intents.get(out["intent"])
            if intent is not None:  # the key comes from the intent; the chain checks the rest
                for name, value in zip(KEY_FIELDS, intent.key, strict=True):
                    out.setdefault(name, value)
                if kind == "delete":  # and its marks: every delete of the manifest says why
                    for name in MARK_FIELDS:
                        if name in intent.data:
                            out.setdefault(name, intent.data[name])
            return out
        where = f"{self.path}: {kind} record seq {seq}"
        for name in LIST_FIELDS:
            if name in lists:  # joined, and if long stored, before the mutex (`_store_lists`)
                out[name] = lists[name]
                continue
            ids = out.get(name) or ()
            text = join_ids(where, name, ids)
            out[name] = text if len(text) <= _lists.INLINE_MAX else self._by_content(tuple(ids))
        return out

    def _store_lists(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A cell record's ID lists as the record holds them, joined (and, if long, stored
        by content: v3) before its record takes the mutex: a new list costs two fsyncs (its
        file, then its directory), and the other threads' records need not wait for them,
        nor for the joining and hashing. A list several threads append at once is stored by
        one of them while the others wait for it. A list that does not join is left to
        `_encode`, which refuses it naming its record."""
        out: dict[str, Any] = {}
        if kind not in CELL_KINDS or "intent" in fields or self._failure:
            return out
        for name in LIST_FIELDS:
            ids = fields.get(name) or ()
            try:
                text = join_ids(str(self.path), name, ids)
            except LedgerError:
                continue
            out[name] = text if len(text) <= _lists.INLINE_MAX else self._store_once(tuple(ids))
        return out

    def _store_once(self, ids: tuple[str, ...]) -> dict[str, Any]:
        digest, data = _lists.encode(ids)
        ref = {"sha256": digest, "count": len(ids)}
        with self._lists_lock:
            if digest in self._chain.refs:
                return ref
            other = self._storing.get(digest)
            done = self._storing[digest] = other or threading.Event()
        if other is not None:
            other.wait()  # stored by now, or the writer failed and refuses every append
            return ref
        try:
            _lists.store(self._ledger.sidecar, digest, data)
        except LedgerWriteError as exc:
            with self._mutex:
                raise self._fail(str(exc)) from exc
        else:
            with self._lists_lock:
                self._chain.refs[digest] = ids
        finally:
            with self._lists_lock:
                del self._storing[digest]
            done.set()
        return ref

    def _by_content(self, ids: tuple[str, ...]) -> dict[str, Any]:
        """Store a long list once, by content, before the record that names it (v3);
        `append` has stored it already (`_store_lists`), outside the mutex."""
        digest, data = _lists.encode(ids)
        if digest not in self._chain.refs:
            try:
                _lists.store(self._ledger.sidecar, digest, data)
            except LedgerWriteError as exc:
                raise self._fail(str(exc)) from exc
            self._chain.refs[digest] = ids
        return {"sha256": digest, "count": len(ids)}

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            for fd in self._retired:
                os.close(fd)
            self._retired.clear()

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- opening: refuse a changed file, then cut a torn tail or end the last line ---

    def _check_usable(self) -> None:
        if self._failure:
            raise LedgerWriteError(f"an earlier append failed; nothing more is written. {self._failure}")

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            fd = self._open_file()
            try:
                self._check_unchanged(fd)
                self._repair_end(fd)
            except LedgerWriteError:
                os.close(fd)
                raise
        except LedgerWriteError as exc:
            self._failure = str(exc)
            raise
        self._fd = fd
        return fd

    def _open_file(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            if self._ledger.exists:
                return os.open(self._tail, flags)
            _make_dir(self.path.parent)
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:  # created since it was read: checked like any change
                return os.open(self.path, flags)
            _lists.fsync_dir(self.path.parent)  # the new file's directory entry must survive a crash
            return fd
        except OSError as exc:
            where = exc.filename or self._tail
            gone = " (it existed when read: was it removed?)" if exc.errno == errno.ENOENT else ""
            raise LedgerWriteError(
                f"{where}: cannot open the ledger to append: {_reason(exc)}{gone}"
            ) from exc

    def _check_unchanged(self, fd: int) -> None:
        led = self._ledger
        try:
            size = os.fstat(fd).st_size
            same = size == led.size and os.pread(fd, len(led.end_bytes), led.end_offset) == led.end_bytes
        except OSError as exc:
            raise LedgerWriteError(f"{self._tail}: cannot check the ledger: {_reason(exc)}") from exc
        if not same:
            raise LedgerWriteError(
                f"{self._tail}: {_CHANGED} It was {led.size} bytes when read and is {size} now; "
                "nothing was written. Read it again under the lock."
            )

    def _repair_end(self, fd: int) -> None:
        led = self._ledger
        try:
            if led.good_bytes < led.size:  # a torn tail this process read: cut exactly it
                os.ftruncate(fd, led.good_bytes)
                os.fsync(fd)
            elif led.unterminated:  # a whole last record without its newline
                os.write(fd, b"\n")
                os.fsync(fd)
        except OSError as exc:
            raise LedgerWriteError(
                f"{self._tail}: cannot repair the ledger's last line before appending: {_reason(exc)}"
            ) from exc
        self._end = led.good_bytes + (1 if led.unterminated else 0)
        self._synced = (self._seq, self._end)

    # --- writing and syncing -----------------------------------------------------

    def _write(self, fd: int, seq: int, kind: str, line: bytes) -> None:
        start, written = self._end, 0
        view = memoryview(line)
        try:
            while written < len(line):
                n = os.write(fd, view[written:])
                if n <= 0:
                    raise OSError(errno.EIO, "the write made no progress")
                written += n
        except OSError as exc:
            self._limit = seq - 1
            cut = self._cut_back(fd, start, start + written)
            raise self._fail(
                f"{self._tail}: cannot append {kind} record seq {seq}: {_reason(exc)}{cut}"
            ) from exc
        self._end = start + written

    def _sync_to(self, fd: int, seq: int) -> None:
        with self._sync:
            self._fsync_upto(fd, seq)

    def _fsync_upto(self, fd: int, seq: int) -> None:
        """Make records up to `seq` durable (one fsync covers all written). Held: `_sync`."""
        if self._synced[0] >= seq:
            return
        if 0 <= self._limit < seq:
            raise LedgerWriteError(
                f"{self.path}: record seq {seq} was not kept: an append failed before it was "
                f"on disk. {self._failure}"
            )
        with self._mutex:
            target = (self._seq, self._end) if self._limit < 0 else (self._limit, self._end)
        try:
            os.fsync(fd)
            self._check_same_file(fd)
        except OSError as exc:
            with self._mutex:
                self._limit = self._synced[0]
                cut = self._cut_back(fd, self._synced[1], self._end)
                self.records = [r for r in self.records if r.seq <= self._limit]
                raise self._fail(
                    f"{self._tail}: cannot make record seq {seq} durable: {_reason(exc)}{cut}"
                ) from exc
        self._synced = target

    def _check_same_file(self, fd: int) -> None:
        # A record fsynced into a file that no longer has this name is not in the ledger.
        gone = OSError(errno.ENOENT, "the ledger file was removed or replaced while appending")
        try:
            here = os.stat(self._tail)
        except FileNotFoundError as exc:
            raise gone from exc
        ours = os.fstat(fd)
        if (here.st_dev, here.st_ino) != (ours.st_dev, ours.st_ino):
            raise gone

    def _cut_back(self, fd: int, to: int, expected_size: int) -> str:
        """Cut the bytes this writer wrote after `to`, only if the file is exactly as we left it."""
        if expected_size == to:
            return "; nothing of it was written"
        n = expected_size - to
        try:
            size = os.fstat(fd).st_size
            if size != expected_size:
                return f"; the file is {size} bytes, not the {expected_size} written, so it was left as is"
            os.ftruncate(fd, to)
        except OSError as exc:
            return f"; cutting back the {n} bytes written also failed: {_reason(exc)}"
        try:
            os.fsync(fd)
        except OSError as exc:
            return f"; the {n} bytes written were cut off again (that cut is not synced: {_reason(exc)})"
        return f"; the {n} bytes written were cut off again"

    def _fail(self, message: str) -> LedgerWriteError:
        self._failure = message
        if self._limit < 0:
            self._limit = self._seq
        return LedgerWriteError(message)


def _make_dir(directory: Path) -> None:
    try:
        _lists.make_dirs(directory)
    except OSError as exc:
        raise LedgerWriteError(f"{directory}: cannot create the ledger's directory: {_reason(exc)}") from exc
