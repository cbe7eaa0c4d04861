"""The ledger as a set of files: what git keeps, whether a new set extends an old one,
and making the local ledger exactly a set (after a fast-forward).

A ledger is its main file plus, in format v3, the files under `<name>.d/` (segments
and ID lists). Keys are POSIX paths relative to the main file's directory. Segments
(the main file included) are append-only; ID list files are immutable. This is the
interface the git code uses, so that it never needs to know the layout:

    ledger_files(path) -> {rel: bytes}         whole records only (a torn tail left out)
    extension_problem(new, old) -> str | None  None: `new` only adds to `old`
    write_files(path, files)                   the local ledger becomes exactly `files`

DESIGN "The ledger only grows" (invariant 13): `extension_problem` is the check. One
rewrite is accepted: one that keeps every record of `old`, seq for seq, with the same
kind, time, fields and cells (`ledger migrate`; the bytes change, the history does not).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler import yamlsource
from reconciler.errors import LedgerError
from reconciler.ledger import _lists
from reconciler.ledger._format import record_hash
from reconciler.ledger._migrate import same_records
from reconciler.ledger._read import MapFiles, read_from, segment_name


def ledger_files(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every file of the ledger whose main file is `path`: the main file, the segments its
    seals name in order, then the ID list files; {} when the main file does not exist.

    Append-only files end at their last whole record: a torn last line (no final newline,
    does not verify) is left out; a last record without its newline that verifies is kept
    as it is. Raises `LedgerError` for an ID list file whose bytes do not match its name.
    """
    name = Path(path).name
    real = Path(os.path.realpath(path))  # a symlinked ledger's files are beside its target
    data = _read(real)
    if data is None:
        return {}
    out: dict[str, bytes] = {}
    key, number, link = name, 1, None
    while data is not None:
        whole, last = _whole_records(data, link)
        out[key] = whole
        if last is None or last.get("kind") != "seal" or last.get("next") != segment_name(number + 1):
            break
        number += 1
        key = f"{name}.d/{segment_name(number)}"
        link = last
        data = _read(_lists.sidecar_dir(real) / segment_name(number))
    out.update(_list_files(real, name))
    return out


def whole_records(data: bytes) -> bytes:
    """A single-file ledger's bytes up to its last whole record (`ledger_files`'s rule for
    the main file): a torn last line is cut, a last record that only lacks its newline is
    kept. Cutting at the last newline instead would drop that record, and then the file
    and its copy on a remote would seem to hold records the other lacks."""
    return _whole_records(data, None)[0]


def extension_problem(new: Mapping[str, bytes], old: Mapping[str, bytes]) -> str | None:
    """None when `new` is an append-only extension of `old` (both `ledger_files` mappings):
    every file of `old` is in `new`, ID lists byte-equal, other files starting with old's
    bytes; or `new` is a rewrite that keeps every record of `old` (a migration). Otherwise
    one line naming the first file and line that differ or vanished."""
    problem = _byte_problem(new, old)
    if problem is None or _keeps_every_record(new, old):
        return None
    return problem


def write_files(path: str | os.PathLike[str], files: Mapping[str, bytes], *, durable: bool = True) -> None:
    """Make the local ledger at `path` exactly `files`: each file that differs replaced
    atomically (fsynced), sidecar files first and the main file last, so a crash leaves
    a main file whose seals and lists are all in place; sidecar files not in `files`
    (strays of a crash, or of a ledger since replaced) removed last. `durable=False`: a
    throwaway copy (a plan's, in a new temporary directory), written without fsync."""
    given = Path(path)
    main = Path(os.path.realpath(path))  # a symlinked ledger: its target is replaced, not the link
    side = _lists.sidecar_dir(main)
    if given.name not in files:
        raise LedgerError(f"{given}: the ledger to write has no main file {given.name}")
    inside: dict[str, bytes] = {}  # by path inside the sidecar directory
    for rel, data in files.items():
        _check_key(given, rel)
        if rel != given.name:
            inside[rel.split("/", 1)[1]] = data
    write = _replace if durable else _write_plain
    for rel, data in inside.items():
        write(side / rel, data)
    write(main, files[given.name])
    if side.is_dir():
        for target in sorted(side.rglob("*")):
            if target.is_file() and target.relative_to(side).as_posix() not in inside:
                target.unlink()


# --- reading ------------------------------------------------------------------------


# Files read before, by path, with the `os.stat` fields that change when a file does (an
# append changes its size, `write_files` replaces it by rename): a git publish reads the
# ledger's files again and again, and sealed segments and ID lists never change. Bounded:
# the oldest entries go once it holds more than `_SEEN_BYTES`. As git does with its index,
# a file written in the last `_RACY_NS` is not remembered: file times are coarser than
# nanoseconds, and a second write in the same tick could keep every field the same.
_SEEN: dict[str, tuple[tuple[int, ...], bytes]] = {}
_SEEN_BYTES = 256 * 2**20
_RACY_NS = 50_000_000
_seen_bytes = [0]


def _read(target: Path) -> bytes | None:
    now = time.time_ns()
    try:
        with yamlsource.open_regular(target) as fh:  # /dev/zero or a FIFO: refused, never read
            st = os.fstat(fh.fileno())
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            seen = _SEEN.get(str(target))
            if seen is not None and seen[0] == stamp:
                return seen[1]
            data = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"{target}: cannot read ledger: {exc.strerror or exc}") from exc
    if len(data) == stamp[2] and st.st_mtime_ns < now - _RACY_NS and st.st_ctime_ns < now - _RACY_NS:
        _remember(str(target), stamp, data)
    return data


def _remember(key: str, stamp: tuple[int, ...], data: bytes) -> None:
    old = _SEEN.pop(key, None)
    if old is not None:
        _seen_bytes[0] -= len(old[1])
    _SEEN[key] = (stamp, data)
    _seen_bytes[0] += len(data)
    while _seen_bytes[0] > _SEEN_BYTES and len(_SEEN) > 1:  # the oldest first
        _seen_bytes[0] -= len(_SEEN.pop(next(iter(_SEEN)))[1])


def _whole_records(data: bytes, link: dict[str, Any] | None) -> tuple[bytes, dict[str, Any] | None]:
    """`data` up to its last whole record, and that record parsed (None: no record)."""
    cut = data.rfind(b"\n") + 1
    last_whole = data[data.rfind(b"\n", 0, cut - 1) + 1 : cut] if cut else b""
    before = _parse(last_whole) if cut else link
    if cut < len(data):
        last = _parse(data[cut:])
        if last is not None and _continues(last, before):
            return data, last
    return data[:cut], before if cut else None


def _continues(record: dict[str, Any], before: dict[str, Any] | None) -> bool:
    """The torn-line rule, cheaply: the line verifies (hash) and links to the one before."""
    prev_hash = before.get("hash") if before else "0" * 64
    seq: object = 0
    if before is not None:
        seq = before.get("after") if before.get("kind") == "seal" else before.get("seq")
    if not isinstance(seq, int):
        return False
    expected = ("after", seq) if record.get("kind") == "seal" else ("seq", seq + 1)
    linked = record.get("prev") == prev_hash and record.get(expected[0]) == expected[1]
    return linked and record.get("hash") == record_hash(record)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line.decode())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _list_files(main: Path, name: str) -> dict[str, bytes]:
    directory = _lists.sidecar_dir(main) / _lists.IDS_DIR
    out: dict[str, bytes] = {}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise LedgerError(f"{directory}: cannot list the ledger's ID lists: {exc.strerror or exc}") from exc
    for file in names:
        rel = f"{_lists.IDS_DIR}/{file}"
        if not _lists.is_list_name(rel):
            continue  # a temporary file of an interrupted write: not part of the ledger
        data = _read(directory / file)
        if data is None:
            continue
        if _lists.digest_of(data) != file[:-4]:
            raise LedgerError(f"{directory / file}: its bytes do not match its name (sha256); it was edited")
        out[f"{name}.d/{rel}"] = data
    return out


# --- comparing ----------------------------------------------------------------------


def _byte_problem(new: Mapping[str, bytes], old: Mapping[str, bytes]) -> str | None:
    for name, before in old.items():
        after = new.get(name)
        if after is None and _is_list(name) and not _named(new, name):
            continue  # a list no record names: left by a run that died before its record
        if after is None:
            return f"{name}: in the last published ledger, but gone now"
        if _is_list(name):
            if after != before:
                return f"{name}: an ID list file changed; they never change once written"
        elif not after.startswith(before):
            return _where_differs(name, after, before)
    return None


def _named(files: Mapping[str, bytes], list_key: str) -> bool:
    """Some record of `files` names the list file `list_key` (by its digest)."""
    digest = b'"sha256":"' + list_key.rsplit("/", 1)[-1][:-4].encode() + b'"'
    return any(digest in data for key, data in files.items() if not _is_list(key))


def _is_list(key: str) -> bool:
    main, _, rel = key.partition(".d/")
    return "/" not in main and _lists.is_list_name(rel)


def _where_differs(name: str, after: bytes, before: bytes) -> str:
    a, b = after.splitlines(keepends=True), before.splitlines(keepends=True)
    for number, (x, y) in enumerate(zip(a, b, strict=False), start=1):
        if x != y and not (number == len(b) and x.startswith(y)):
            return f"{name}:{number}: differs from the last published ledger (records are only ever appended)"
    return (
        f"{name}: cut at line {len(a) + 1}: the last published ledger has {len(b) - len(a)} more "
        f"line{'s' if len(b) - len(a) != 1 else ''} (records are only ever appended)"
    )


def _keeps_every_record(new: Mapping[str, bytes], old: Mapping[str, bytes]) -> bool:
    mains = [k for k in old if "/" not in k]
    if len(mains) != 1 or mains[0] not in new:
        return False
    name = mains[0]
    try:
        before = read_from(Path(name), MapFiles(name, old))
        after = read_from(Path(name), MapFiles(name, new))
    except LedgerError:
        return False
    return same_records(before.records, after.records[: len(before.records)])


def _check_key(main: Path, rel: str) -> None:
    parts = rel.split("/")
    inside = rel == main.name or (parts[0] == f"{main.name}.d" and len(parts) > 1)
    if not inside or any(p in ("", ".", "..") for p in parts):
        raise LedgerError(f"{rel!r} is not a file of the ledger {main.name} (nor under {main.name}.d/)")


def _write_plain(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _replace(target: Path, data: bytes) -> None:
    if _read(target) == data:
        return
    _lists.write_atomic(target, data)
