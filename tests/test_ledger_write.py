"""A failed append (disk full, file gone, read-only, fsync error) leaves the file ending at
its last whole record, names the file and the reason, and stops the writer.

The faults are injected at the lowest level (`os.write`, `os.fsync`, `os.open`) for this
unit of the ledger itself; a real full tmpfs is used when running as root.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import LEDGER_CELLS as CELLS

from reconciler import ledger as L
from reconciler.errors import LedgerError, LedgerWriteError


def seeded(path: Path, n: int = 2) -> L.Ledger:
    with L.LedgerWriter(L.read(path)) as w:
        for _ in range(n):
            w.append("intent", CELLS)
    return L.read(path)


class Faults:
    """Make `os.write`/`os.fsync` fail on the ledger's descriptor from the n-th call on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path = path
        self.write_fails_at: int | None = None
        self.partial = 0  # bytes the first failing write still puts in the file (a short write)
        self.fsync_fails_at: int | None = None
        self.writes = self.fsyncs = 0
        real_write, real_fsync = os.write, os.fsync
        monkeypatch.setattr(os, "write", self._wrap(real_write, "write"))
        monkeypatch.setattr(os, "fsync", self._wrap(real_fsync, "fsync"))

    def _ours(self, fd: int) -> bool:
        try:
            st, here = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)

    def _wrap(self, real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(fd: int, *args: Any) -> Any:
            if not self._ours(fd):
                return real(fd, *args)
            if name == "write":
                self.writes += 1
                if self.write_fails_at is not None and self.writes >= self.write_fails_at:
                    if self.partial:  # a short write, as the kernel reports one: the next call fails
                        n, self.partial = self.partial, 0
                        return real(fd, bytes(args[0])[:n])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            else:
                self.fsyncs += 1
                if self.fsync_fails_at is not None and self.fsyncs >= self.fsync_fails_at:
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real(fd, *args)

        return call


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "l.jsonl"


@pytest.mark.parametrize("partial", [0, 7], ids=["nothing-written", "half-written"])
def test_disk_full_leaves_the_last_whole_record_and_stops_the_writer(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch, partial: int
) -> None:
    led = seeded(ledger_path)
    before = ledger_path.read_bytes()
    faults = Faults(monkeypatch, ledger_path)
    faults.write_fails_at, faults.partial = 1, partial
    w = L.LedgerWriter(led)
    with pytest.raises(LedgerWriteError) as exc:
        w.append("intent", CELLS)
    assert str(ledger_path) in str(exc.value) and "No space left on device" in str(exc.value)
    assert "seq 3" in str(exc.value)
    assert ledger_path.read_bytes() == before
    faults.write_fails_at = None  # the disk has room again: the writer still refuses
    with pytest.raises(LedgerWriteError, match="an earlier append failed; nothing more is written"):
        w.append("delete", CELLS)
    w.close()
    assert ledger_path.read_bytes() == before and L.read(ledger_path).head_seq == 2


def test_fsync_error_cuts_the_record_back_and_never_reuses_its_seq(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = seeded(ledger_path)
    w = L.LedgerWriter(led)
    kept = w.append("intent", CELLS)
    before = ledger_path.read_bytes()
    faults = Faults(monkeypatch, ledger_path)
    faults.fsync_fails_at = 1
    with pytest.raises(LedgerWriteError, match=r"seq 4 durable: Input/output error") as exc:
        w.append("delete", CELLS)
    assert str(ledger_path) in str(exc.value)
    assert ledger_path.read_bytes() == before
    assert [r.seq for r in w.records] == [kept.seq]
    with pytest.raises(LedgerWriteError, match="earlier append failed"):
        w.append("delete", CELLS)
    w.close()
    assert L.read(ledger_path).head_seq == 3


def test_read_only_file_system_is_named(ledger_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    led = seeded(ledger_path)
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == ledger_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with L.LedgerWriter(led) as w, pytest.raises(LedgerWriteError) as exc:
        w.append("intent", CELLS)
    assert str(exc.value).startswith(
        f"{ledger_path}: cannot open the ledger to append: Read-only file system"
    )


def test_a_ledger_removed_after_reading_is_not_recreated(ledger_path: Path) -> None:
    led = seeded(ledger_path)
    ledger_path.unlink()
    with L.LedgerWriter(led) as w, pytest.raises(LedgerWriteError, match="was it removed"):
        w.append("intent", CELLS)
    assert not ledger_path.exists()


def test_a_ledger_removed_while_appending_fails_the_append(ledger_path: Path) -> None:
    led = seeded(ledger_path)
    with L.LedgerWriter(led) as w:
        w.append("intent", CELLS)
        ledger_path.unlink()
        with pytest.raises(LedgerWriteError, match="removed or replaced") as exc:
            w.append("delete", CELLS)
        assert str(ledger_path) in str(exc.value)


def test_concurrent_appends_with_a_failure_keep_exactly_the_returned_records(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = seeded(ledger_path, 1)
    faults = Faults(monkeypatch, ledger_path)
    faults.write_fails_at, faults.partial = 40, 5
    returned: list[int] = []
    refused: list[str] = []
    w = L.LedgerWriter(led)

    def worker() -> None:
        for _ in range(20):
            try:
                returned.append(w.append("intent", CELLS).seq)
            except LedgerWriteError as exc:
                refused.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    on_disk = [r.seq for r in L.read(ledger_path).records]
    assert on_disk == [1, *sorted(returned)] and len(set(returned)) == len(returned)
    assert len(returned) + len(refused) == 120 and refused
    assert ledger_path.read_bytes().endswith(b"\n")


def test_refuses_when_the_file_grew_since_it_was_read(ledger_path: Path) -> None:
    led = seeded(ledger_path)
    with L.LedgerWriter(L.read(ledger_path)) as other:
        other.append("intent", CELLS)  # another writer, not holding our view
    after = ledger_path.read_bytes()
    with (
        L.LedgerWriter(led) as w,
        pytest.raises(LedgerError, match="changed since it was read; another apply"),
    ):
        w.append("intent", CELLS)
    assert ledger_path.read_bytes() == after


@pytest.mark.parametrize(
    "change",
    [lambda b: b + b'more"}', lambda b: b[:-3] + b"XYZ"],
    ids=["torn-tail-grew", "torn-tail-rewritten"],
)
def test_never_cuts_a_torn_tail_it_did_not_read(ledger_path: Path, change: Callable[[bytes], bytes]) -> None:
    seeded(ledger_path)
    ledger_path.write_bytes(ledger_path.read_bytes() + b'{"v":1,"seq":3,"kind":"int')
    led = L.read(ledger_path)
    assert len(led.warnings) == 1
    changed = change(ledger_path.read_bytes())
    ledger_path.write_bytes(changed)
    with L.LedgerWriter(led) as w, pytest.raises(LedgerError, match="changed since it was read"):
        w.append("intent", CELLS)
    assert ledger_path.read_bytes() == changed


# --- a real full disk -------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 KiB tmpfs needs root; the fault-injection tests cover the logic")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {res.stderr.strip()}")
    try:
        yield mnt
    finally:  # lazily if something still holds it: never leave a mount behind
        if subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_a_really_full_disk(small_tmpfs: Path) -> None:
    path = small_tmpfs / "l.jsonl"
    w = L.LedgerWriter(L.read(path))
    returned = []
    with pytest.raises(LedgerWriteError) as exc:
        for n in range(100):  # each list about 4 KB, stored by content: a new file each time
            big = {**CELLS, "assetIds": [f"asset-{n:03d}-{i:04d}" for i in range(300)]}
            returned.append(w.append("intent", big).seq)
    assert str(path) in str(exc.value) and "No space left on device" in str(exc.value)
    with pytest.raises(LedgerWriteError, match="earlier append failed"):
        w.append("intent", CELLS)
    w.close()
    led = L.read(path)
    assert led.warnings == [] and [r.seq for r in led.records] == returned and returned
    assert path.read_bytes().endswith(b"\n")


def test_a_directory_that_cannot_be_made_is_named_and_stops_the_writer(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "sub" / "l.jsonl"
    w = L.LedgerWriter(L.Ledger(path, exists=False))  # as read before the directory went bad
    with pytest.raises(
        LedgerWriteError, match=rf"^{tmp_path}/file/sub: cannot create the ledger's directory"
    ):
        w.append("intent", CELLS)
    with pytest.raises(LedgerWriteError, match="earlier append failed"):
        w.append("intent", CELLS)


def test_the_folders_a_write_makes_are_durable_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file fsynced into a folder whose own entry never reached the disk can vanish with
    it: each folder the writer makes (the ledger's, `<ledger>.d/`, its `ids/`) has its
    entry in its parent fsynced, as the files in them have theirs."""
    from reconciler.ledger import _lists

    tmp_path = tmp_path.resolve()  # as /proc names the descriptors
    synced: list[Path] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    path = tmp_path / "new" / "folder" / "l.jsonl"
    seeded(path, 1)
    assert {tmp_path, tmp_path / "new", tmp_path / "new" / "folder"} <= set(synced)
    synced.clear()
    sidecar = tmp_path / "new" / "folder" / "l.jsonl.d"
    assert _lists.store(sidecar, "ab" * 32, b"a1\na2\n")
    assert {tmp_path / "new" / "folder", sidecar, sidecar / "ids"} <= set(synced)
    synced.clear()
    assert not _lists.store(sidecar, "ab" * 32, b"a1\na2\n")  # already there: nothing written
    assert synced == []
