"""Tests by kind: `unit` tests run in the test process only; `acceptance` tests start the
emulator (loopback HTTP), real git, a browser or another process.

A test is marked at collection from the fixtures it takes and from what its module uses
(its source), so a new test is sorted without anyone remembering to: `pytest -m unit` is
the fast inner loop, `pytest -m acceptance` the rest. Once selected, the tests are put in
the order xdist hands them out (`order`).

`-n auto` (pyproject.toml) asks `workers` how many xdist workers to start: none when only
unit tests are selected (`-m unit`, or only unit test files named), since a worker adds
nothing to them but its own start (it imports and collects the whole suite: seconds of
CPU, on 2 cores shared with the tests); otherwise one more than there are cores. The
acceptance tests wait on git, processes, HTTP and backoffs, and while one worker waits the
extra one keeps its core busy: on 2 cores, 3 workers ran the suite in 62-65 s of wall
against 75 s for 2 and 74 s for 4, for the same CPU (2026-12-07, load average 2.3-3.9).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

KINDS = ("unit", "acceptance")
ACCEPTANCE_FIXTURES = frozenset({"make_emulator", "home"})
# What an acceptance module uses: the emulator, git (helpers.git's runners), a process.
_USES = re.compile(
    r"make_emulator|RunningEmulator|helpers\.emulators|subprocess|\bgit\(|bare_origin|\bclone\(|isolate_git"
    r"|run_cli_process|spawn_cli|helpers\.browser|\bhome\b"
)


@functools.cache
def module_kind(path: Path) -> str:
    return "acceptance" if _USES.search(path.read_text(encoding="utf-8")) else "unit"


def kind(item: pytest.Item) -> str:
    if ACCEPTANCE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "acceptance"
    return module_kind(item.path)


def mark(items: list[pytest.Item]) -> None:
    """Mark every test with its kind (before `-m` selects by it)."""
    for item in items:
        item.add_marker(kind(item))


SLOW = 2.0  # seconds of a test marked `slow` without a figure


def seconds(item: pytest.Item) -> float | None:
    """What a `slow` test's mark says it takes (`@pytest.mark.slow(10)`), None for the rest."""
    slow = item.get_closest_marker("slow")
    if slow is None:
        return None
    return float(slow.args[0]) if slow.args else SLOW


def uses_browser(item: pytest.Item) -> bool:
    """Whether the test opens a page in the browser its worker shares (helpers/browser.py)."""
    function = getattr(item, "function", None)
    return "open_page" in getattr(getattr(function, "__code__", None), "co_names", ())


def order(items: list[pytest.Item], workers: int) -> None:
    """The selected tests in the order xdist hands them out: the `slow` ones first, longest
    first; the browser's where the second worker's share begins; the rest as collected.

    A slow test waits seconds of wall (a lease running out, backoffs, killed processes)
    or computes them (the largest properties). xdist's `worksteal` (pyproject.toml) gives
    each worker an equal slice of this list, in order (worker 1 the first `len // workers`),
    and later moves the back half of one's queue to a worker that ran dry, never a running
    test: a slow test begun near the end is the run's tail (9 s for the lease tests). Begun
    first on one worker, longest first, their waits overlap the other workers' work.

    Each worker that opens a page starts a Chromium of its own (~0.5 s of CPU, then its
    own warm-up): the browser tests side by side at the head of another worker's slice run
    in one. The rest keep their order: all acceptance tests first was slower (64.5 s against
    60-64 s, the git and process tests contending for the 2 cores at once)."""
    slow = sorted((i for i in items if seconds(i) is not None), key=lambda i: -(seconds(i) or 0))
    browser = [i for i in items if seconds(i) is None and uses_browser(i)]
    rest = [i for i in items if seconds(i) is None and not uses_browser(i)]
    share = len(items) // workers if workers > 1 else 0
    ahead = max(0, share - len(slow))  # the rest that fill the first worker's slice
    items[:] = [*slow, *rest[:ahead], *browser, *rest[ahead:]]


def workers(config: pytest.Config) -> int:
    """xdist workers for `-n auto`: 0 for a selection of unit tests, else one more than the cores."""
    if (config.option.markexpr or "").strip() in ("unit", "not acceptance"):
        return 0
    named = [Path(config.invocation_params.dir, a.split("::")[0]) for a in config.args]
    if named and all(p.is_file() and module_kind(p.resolve()) == "unit" for p in named):
        return 0
    return (os.cpu_count() or 1) + 1
