"""The applied ledger: an append-only, hash-chained JSON Lines file, and its lock.

The only module that touches the ledger file. It keeps DESIGN invariants 4
(durability: every record is written, flushed and fsynced before the caller goes
on; a torn last line is cut off, never trusted) and 5 (integrity: any change to
an existing line breaks the chain and is named by line number).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from filelock import FileLock, Timeout

from reconciler.actor import local_user
from reconciler.errors import LedgerError, LockError

FORMAT_VERSION = 1
GENESIS = "0" * 64
CELL_KINDS = ("intent", "delete")
KNOWN_KINDS = (*CELL_KINDS, "pause", "resume")
_CELL_FIELDS = ("manifest", "orgId", "pipelineId", "stageInstanceName", "assetIds", "pointIds")


def canonical(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON as DESIGN fixes it: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its `hash` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Record:
    """One verified ledger record; `data` is the record exactly as stored."""

    seq: int
    kind: str
    at: str
    hash: str
    data: Mapping[str, Any]
    asset_ids: tuple[str, ...] = ()
    point_ids: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(manifest, org, pipeline, stage): the group a cell record belongs to."""
        d = self.data
        return (d["manifest"], d["orgId"], d["pipelineId"], d["stageInstanceName"])

    @property
    def pipeline(self) -> tuple[str, str]:
        return (self.data["orgId"], self.data["pipelineId"])


@dataclass
class Ledger:
    """A verified ledger as read: its records, head, and anything worth a warning."""

    path: Path
    records: list[Record] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    good_bytes: int = 0

    @property
    def head_seq(self) -> int:
        return self.records[-1].seq if self.records else 0

    @property
    def head_hash(self) -> str:
        return self.records[-1].hash if self.records else GENESIS


def read(path: str | os.PathLike[str]) -> Ledger:
    """Read and verify the whole chain; raise `LedgerError` naming the first bad line."""
    ledger = Ledger(Path(path))
    try:
        raw = ledger.path.read_bytes()
    except FileNotFoundError:
        return ledger
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read ledger: {exc.strerror}") from None
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    interned: dict[tuple[str, ...], tuple[str, ...]] = {}
    offset = 0
    prev_hash = GENESIS
    for number, line in enumerate(complete, start=1):
        data = _parse(path, number, line, last=number == len(complete) and not tail)
        if data is None:  # a torn last line: ignored, cut off by the next append
            ledger.warnings.append(
                f"{path}:{number}: last line is not valid JSON (a write was interrupted); ignored"
            )
            break
        record = _verify(path, number, data, prev_hash, interned)
        ledger.records.append(record)
        prev_hash = record.hash
        offset += len(line) + 1
    if tail:
        ledger.warnings.append(
            f"{path}:{len(lines)}: last line is incomplete (a write was interrupted); ignored"
        )
    ledger.good_bytes = offset
    return ledger


def _parse(path: Any, number: int, line: bytes, *, last: bool) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        if last:
            return None
        raise LedgerError(f"{path}:{number}: not valid JSON; the ledger was edited or damaged") from None
    if not isinstance(data, dict):
        raise LedgerError(f"{path}:{number}: a record must be a JSON object")
    return data


def _verify(
    path: Any,
    number: int,
    data: dict[str, Any],
    prev_hash: str,
    interned: dict[tuple[str, ...], tuple[str, ...]],
) -> Record:
    where = f"{path}:{number}"
    if data.get("v") != FORMAT_VERSION:
        raise LedgerError(f"{where}: unsupported record version {data.get('v')!r}")
    if data.get("seq") != number:
        raise LedgerError(
            f"{where}: seq is {data.get('seq')!r}, expected {number}; lines were removed or reordered"
        )
    if data.get("prev") != prev_hash:
        raise LedgerError(
            f"{where}: prev does not match the hash of line {number - 1}; "
            "a line before it was changed, removed or reordered"
        )
    if data.get("hash") != record_hash(data):
        raise LedgerError(f"{where}: hash does not match the record; this line was edited")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise LedgerError(f"{where}: record has no kind")
    assets: tuple[str, ...] = ()
    points: tuple[str, ...] = ()
    if kind in CELL_KINDS:
        _check_cell_fields(where, data)
        assets = tuple(data["assetIds"])
        points = tuple(data["pointIds"])
        # Batches of one manifest repeat the same point list; keep one shared copy.
        points = interned.setdefault(points, points)
        data["assetIds"], data["pointIds"] = assets, points
    elif kind in ("pause", "resume") and not all(
        isinstance(data.get(k), str) for k in ("orgId", "pipelineId")
    ):
        raise LedgerError(f"{where}: {kind} record lacks orgId or pipelineId")
    return Record(number, kind, str(data.get("at", "")), data["hash"], data, assets, points)


def _check_cell_fields(where: str, data: dict[str, Any]) -> None:
    for name in _CELL_FIELDS:
        value = data.get(name)
        if name.endswith("Ids"):
            ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, str) and bool(value)
        if not ok:
            raise LedgerError(f"{where}: {data['kind']} record has a missing or malformed {name}")


# --- the lock ------------------------------------------------------------------------


def _holder(command: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": local_user(),
        "since": utc_now(),
        "command": command,
    }


class LedgerLock:
    """An exclusive lock beside the ledger (`<ledger>.lock`) naming its holder."""

    def __init__(self, ledger_path: str | os.PathLike[str], *, timeout: float = 0, command: str = "") -> None:
        self.path = Path(f"{os.fspath(ledger_path)}.lock")
        self.timeout = timeout
        info = json.dumps(_holder(command or " ".join(sys.argv)), sort_keys=True).encode()
        self._lock = FileLock(
            self.path,
            timeout=timeout,
            preserve_lock_file=True,
            on_acquired=lambda fd: _write_holder(fd, info),
        )

    def __enter__(self) -> LedgerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout:
            raise LockError(self._refusal()) from None
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()

    def _refusal(self) -> str:
        try:
            h = json.loads(self.path.read_text())
            who = (
                f"pid {h['pid']} on {h['host']} (user {h['user']}) since {h['since']}, "
                f"running: {h['command']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            who = "another process"
        waited = f" after waiting {self.timeout:g}s" if self.timeout else ""
        return (
            f"the ledger is locked{waited} by {who}. Wait for it to finish, or pass "
            f"--lock-timeout SECONDS to wait. Lock file: {self.path}"
        )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_holder(fd: int, info: bytes) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, info + b"\n", 0)


# --- appending -------------------------------------------------------------------


class LedgerWriter:
    """Appends records to a verified ledger, with group commit across threads.

    Records are written in `seq` order under a mutex and flushed; fsync runs outside
    it, and one fsync covers every record written before it (group commit). `append`
    returns only once its record is on disk (DESIGN invariant 4). Use only while
    holding `LedgerLock`.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.path = ledger.path
        self._good_bytes = ledger.good_bytes
        self._fh: BinaryIO | None = (
            None  # opened on the first append: a run that writes nothing leaves no file
        )
        self._seq = ledger.head_seq
        self._prev = ledger.head_hash
        self._mutex = threading.Lock()
        self._sync = threading.Lock()
        self._synced = self._seq
        self.records: list[Record] = []

    def _open(self) -> BinaryIO:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fh = open(self.path, "ab")  # noqa: SIM115 - lives as long as the writer
            if created:  # the new file's directory entry must survive a crash too
                _fsync_dir(self.path.parent)
            if fh.tell() != self._good_bytes:
                # Cut off a torn last line before appending (DESIGN "Applied ledger").
                fh.truncate(self._good_bytes)
                os.fsync(fh.fileno())
            self._fh = fh
        return self._fh

    def append(self, kind: str, fields: Mapping[str, Any], *, at: str | None = None) -> Record:
        """Append one record; `at` keeps a record's time when it is re-chained (git rebase)."""
        with self._mutex:
            seq = self._seq + 1
            data: dict[str, Any] = {"v": FORMAT_VERSION, "seq": seq, "kind": kind, "at": at or utc_now()}
            data.update(fields)
            data["prev"] = self._prev
            data["hash"] = record_hash(data)
            fh = self._open()
            fh.write(canonical(data) + b"\n")
            fh.flush()
            self._seq, self._prev = seq, data["hash"]
            record = Record(
                seq,
                kind,
                data["at"],
                data["hash"],
                data,
                tuple(data.get("assetIds", ())),
                tuple(data.get("pointIds", ())),
            )
            self.records.append(record)
        with self._sync:
            if self._synced < seq:
                written = self._seq
                os.fsync(fh.fileno())
                self._synced = written
        return record

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written or read: what a plan must have been made on."""
        with self._mutex:
            return (self._seq, self._prev)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
