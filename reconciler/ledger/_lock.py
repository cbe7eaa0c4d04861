"""The one-writer lock: `<realpath(ledger)>.lock`, naming its holder.

DESIGN invariant 9 (one writer): the lock sits on the ledger's resolved path, so
every spelling and symlink of one ledger shares one lock.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.actor import local_user
from reconciler.errors import LedgerError, LedgerLocked
from reconciler.ledger._format import utc_now


def lock_path(ledger_path: str | os.PathLike[str]) -> Path:
    """Where the lock of a ledger lives: beside its resolved path."""
    return Path(os.path.realpath(os.fspath(ledger_path)) + ".lock")


def _holder(command: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": local_user(),
        "since": utc_now(),
        "command": command,
    }


class LedgerLock:
    """An exclusive lock beside the ledger's resolved path naming its holder."""

    def __init__(self, ledger_path: str | os.PathLike[str], *, timeout: float = 0, command: str = "") -> None:
        self.path = lock_path(ledger_path)
        self.timeout = timeout
        from filelock import FileLock  # only what writes takes the lock: not plan, not verify

        info = json.dumps(_holder(command or " ".join(sys.argv)), sort_keys=True).encode()
        self._lock = FileLock(
            self.path,
            timeout=timeout,
            preserve_lock_file=True,
            on_acquired=lambda fd: _write_holder(fd, info),
        )

    def __enter__(self) -> LedgerLock:
        from filelock import Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"{self.path.parent}: cannot create the ledger's directory: {exc.strerror or exc}"
            ) from exc
        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout as exc:
            raise LedgerLocked(self._refusal()) from exc
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot take the ledger lock: {exc.strerror or exc}") from exc
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
        return f"the ledger is locked{waited} by {who} (lock file {self.path}). Wait for it to finish."


def _write_holder(fd: int, info: bytes) -> None:
    # Who holds the lock is for the refusal message only: a full disk must not stop the
    # lock from being taken (the append that follows reports the disk, naming the ledger).
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, info + b"\n", 0)
    except OSError:
        pass
