"""Replacing the whole ledger file: after a git fast-forward, a dropped write-ahead, or a
restore. Atomic (a crash leaves the old file or the new, never a mix) and durable (the
file and its directory are fsynced), so the only writer of the ledger stays `ledger/`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reconciler.errors import LedgerWriteError


def replace_contents(path: str | os.PathLike[str], data: bytes) -> None:
    """Make the file at `path` hold exactly `data`."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LedgerWriteError(f"{file}: cannot write the ledger: {exc.strerror}") from exc
    dfd = os.open(file.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
