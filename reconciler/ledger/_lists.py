"""ID lists stored once, by content, beside the ledger (format v3).

A cell record's long ID list is not written into the record: the record holds
`{"sha256": <hex>, "count": n}` and the list lives in `<ledger>.d/ids/<hex>.txt`, one
ID a line, each line ending in a newline; `<hex>` is the sha256 of exactly those bytes.
A weekly fleet reset that sends the same batches again therefore stores them once.
The record's hash covers the digest, and the digest covers the list: DESIGN invariant
5 (integrity) holds for the lists as for the records. The files never change once
written (content-addressed), so git keeps each once, whatever the history.

Short lists stay inline (the v2 comma-joined string): a file per fix of three assets
would cost more than it saves.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from reconciler.errors import LedgerError, LedgerWriteError

Ids = tuple[str, ...]
INLINE_MAX = 256  # bytes of comma-joined text kept in the record itself
IDS_DIR = "ids"
_NAME = re.compile(r"[0-9a-f]{64}\.txt")


def sidecar_dir(main: Path) -> Path:
    """Where a ledger's other files live: `<name>.d/` beside its main file."""
    return main.with_name(main.name + ".d")


def list_name(digest: str) -> str:
    """A list file's path inside the sidecar directory."""
    return f"{IDS_DIR}/{digest}.txt"


def is_list_name(rel: str) -> bool:
    """`rel` (inside the sidecar directory) names a list file."""
    head, _, tail = rel.partition("/")
    return head == IDS_DIR and _NAME.fullmatch(tail) is not None


def encode(ids: Ids) -> tuple[str, bytes]:
    """(digest, file bytes) of a list; the IDs are already checked (no commas, none empty)."""
    data = ("\n".join(ids) + "\n").encode()
    return hashlib.sha256(data).hexdigest(), data


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(where: str, digest: str, count: object, data: bytes) -> Ids:
    """The IDs of a list file, checked against the digest and count its record gives."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise LedgerError(
            f"{where}: its ID list {list_name(digest)} does not match its sha256; it was edited"
        )
    try:
        ids = tuple(data.decode().split("\n")[:-1])
    except UnicodeDecodeError as exc:
        raise LedgerError(f"{where}: its ID list {list_name(digest)} is not UTF-8") from exc
    if len(ids) != count or "" in ids:
        raise LedgerError(f"{where}: its ID list {list_name(digest)} does not hold {count} IDs")
    return ids


def is_ref(value: object) -> bool:
    """A v3 list reference: `{"sha256": <64 hex>, "count": <int >= 1>}` and nothing more."""
    if not isinstance(value, dict) or value.keys() != {"sha256", "count"}:
        return False
    digest, count = value["sha256"], value["count"]
    return (
        isinstance(digest, str)
        and re.fullmatch(r"[0-9a-f]{64}", digest) is not None
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count >= 1
    )


def store(directory: Path, digest: str, data: bytes) -> bool:
    """Make `directory/ids/<digest>.txt` hold `data`, durably; False if it already did.

    Written to a temporary name, fsynced and renamed, so a crash leaves the whole file or
    none: a list file is in place before the record that names it (invariant 4).
    """
    target = directory / list_name(digest)
    try:
        if target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LedgerWriteError(f"{target}: cannot read an ID list: {exc.strerror or exc}") from exc
    write_atomic(target, data)
    return True


def write_atomic(target: Path, data: bytes) -> None:
    """Replace `target` by `data`: temporary file, fsync, rename, fsync of the directory."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        make_dirs(target.parent)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LedgerWriteError(f"{target}: cannot write: {exc.strerror or exc}") from exc


def make_dirs(directory: Path) -> None:
    """`mkdir -p` whose new folders survive a crash: each one's entry in its parent is
    fsynced, top down. A file fsynced into a folder whose own entry never reached the disk
    can vanish with it (the first ID list makes `<ledger>.d/` and `ids/` at once)."""
    missing = []
    d = directory
    while not d.is_dir() and d != d.parent:
        missing.append(d)
        d = d.parent
    if not missing:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        fsync_dir(made.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
