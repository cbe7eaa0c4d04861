"""Where the tests' temp dirs live: in memory (/dev/shm) when the machine has room there.

The acceptance tests build thousands of small git repositories, ledgers and clones, and
remove each passing test's at its teardown (pyproject.toml). On a disk that is file
system work the kernel does for every mkdir, write, fsync (git's packs, the ledger's
records) and rmdir: on the 2-core VM this project is built on, about 9 s of the suite's
system CPU and a few seconds of its wall (2026-12-07: 20.4 -> 11.5 s system CPU, 73 -> 68 s
wall, the same run back to back). The tests assert nothing about the disk itself: a crash
test kills the process, it never cuts the power, so the files and what git and the ledger
do with them are the same in memory.

The system's temp dir moves with it (`TMPDIR`, for this process, the xdist workers and
every process a test starts), unless `TMPDIR` is set: the property tests make a
`tempfile.TemporaryDirectory` per example, and the ledger in git writes a temporary index
there on every publish. On the disk the ledger's fsyncs waited on it: 4.6 -> 1.0 s for
test_ledger_skim's property, 3.8 -> 2.2 s for test_diff_fast's (2026-12-08).

pytest's temp root moves (`PYTEST_DEBUG_TEMPROOT`, which pytest reads for exactly this)
only when nobody chose one: `--basetemp`, or that variable already set, win.
A machine without /dev/shm, or with a small one (a container's default is 64 MB), keeps
the system's temp dir.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

MEMORY = Path("/dev/shm")
ROOM = 1 << 30  # free bytes /dev/shm must have: a run holds a few MB there at once (a passing
# test's dir goes at its teardown), a run where everything fails keeps every dir
VARIABLE = "PYTEST_DEBUG_TEMPROOT"
SYSTEM = "TMPDIR"  # tempfile's, git's and every process's temp dir


def memory_root(free: int | None = None) -> Path | None:
    """/dev/shm when it is a writable directory with `ROOM` free, else None."""
    if not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK | os.X_OK)):
        return None
    if free is None:
        free = shutil.disk_usage(MEMORY).free
    return MEMORY if free >= ROOM else None


def prefer_memory(config: pytest.Config) -> Path | None:
    """Point pytest's temp root, and the system's temp dir unless `TMPDIR` is set, at
    /dev/shm unless a root was chosen; the root now in use by this choice, or None when the
    system's temp dir stays. Called before any temp dir is made (pytest_configure): xdist's
    controller gives each worker a dir under this root, and the workers inherit both."""
    if config.option.basetemp or os.environ.get(VARIABLE):
        return None
    root = memory_root()
    if root is not None:
        os.environ[VARIABLE] = str(root)
        if not os.environ.get(SYSTEM):
            os.environ[SYSTEM] = str(root)
            tempfile.tempdir = None  # gettempdir() looks again, if it looked before
    return root
