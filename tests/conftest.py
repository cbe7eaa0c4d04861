"""Fixtures only: a temp manifests repository, a live emulator, an isolated git HOME.
Shared plain helpers live in the `helpers` package (`from helpers import run_cli`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.examples import load_profile
from helpers.git import isolate_git
from helpers.node import HOW, in_ci

from reconciler.emulator import Faults, RunningEmulator, World

load_profile()  # HYPOTHESIS_PROFILE=dev for a quick edit-test loop (helpers/examples.py)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `npm` run when the marker expression asks for them, or under CI=true;
    otherwise they skip, saying how to run them (their tools are never installed here)."""
    if in_ci() or "npm" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason=f"checks the scaffold with an npm tool: {HOW}")
    for item in items:
        if item.get_closest_marker("npm"):
            item.add_marker(skip)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A manifests repository as `reconcile init` leaves it: manifests/ and an empty ledger."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "applied-ledger.jsonl").touch()
    return tmp_path


@pytest.fixture
def make_emulator() -> Iterator[Any]:
    started: list[RunningEmulator] = []

    def make(seed: dict[str, Any] | None = None, faults: Faults | None = None) -> RunningEmulator:
        em = RunningEmulator(World(seed, faults)).start()
        started.append(em)
        return em

    yield make
    for em in started:
        em.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated HOME: no global or system git config, no git identity in the environment."""
    return isolate_git(tmp_path / "home", monkeypatch)
