"""The suite's own set-up: where its temp dirs live (helpers/tmp.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import tmp


def config(basetemp: str | None = None) -> Any:
    return SimpleNamespace(option=SimpleNamespace(basetemp=basetemp))


@pytest.mark.skipif(tmp.memory_root(free=tmp.ROOM) is None, reason="this machine has no writable /dev/shm")
def test_memory_is_used_only_with_room_to_spare() -> None:
    assert tmp.memory_root(free=tmp.ROOM) == Path("/dev/shm")
    assert tmp.memory_root(free=tmp.ROOM - 1) is None  # a container's 64 MB /dev/shm: the disk


def test_a_chosen_temp_root_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tmp.VARIABLE, "/somewhere/chosen")
    monkeypatch.delenv(tmp.SYSTEM, raising=False)
    assert tmp.prefer_memory(config()) is None
    assert os.environ[tmp.VARIABLE] == "/somewhere/chosen"
    monkeypatch.delenv(tmp.VARIABLE)
    assert tmp.prefer_memory(config(basetemp="/tmp/mine")) is None  # --basetemp
    assert tmp.VARIABLE not in os.environ
    assert tmp.SYSTEM not in os.environ  # the system's temp dir stays with the chosen root


@pytest.mark.skipif(tmp.memory_root() is None, reason="this machine has no /dev/shm with room")
@pytest.mark.parametrize("chosen", [None, "/somewhere/chosen"])
def test_the_system_temp_dir_moves_to_memory_unless_chosen(
    chosen: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tmp.VARIABLE, raising=False)
    if chosen is None:
        monkeypatch.delenv(tmp.SYSTEM, raising=False)
    else:
        monkeypatch.setenv(tmp.SYSTEM, chosen)
    monkeypatch.setattr(tempfile, "tempdir", "/looked/before")
    assert tmp.prefer_memory(config()) == tmp.MEMORY
    assert os.environ[tmp.VARIABLE] == str(tmp.MEMORY)
    assert os.environ[tmp.SYSTEM] == (chosen or str(tmp.MEMORY))
    assert tempfile.tempdir == (None if chosen is None else "/looked/before")  # looked for again


def test_this_run_says_where_its_temp_dirs_are(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    """The choice made at start-up is the one tmp_path follows."""
    chosen = os.environ.get(tmp.VARIABLE)
    if pytestconfig.option.basetemp and not chosen:
        assert tmp_path.is_relative_to(Path(pytestconfig.option.basetemp).resolve())
    elif chosen:
        assert tmp_path.resolve().is_relative_to(Path(chosen).resolve())
    else:
        assert tmp.memory_root() is None


def test_slow_tests_run_first_and_the_rest_keep_their_order(request: pytest.FixtureRequest) -> None:
    """helpers/kinds.py: what xdist hands out first are the tests that take seconds."""
    items = request.session.items
    slow = [i for i, item in enumerate(items) if item.get_closest_marker("slow")]
    assert slow == list(range(len(slow)))  # all of them ahead of every other test
    rest = [item.path for item in items[len(slow) :]]
    for path in set(rest):  # the others as collected: each file's tests side by side
        where = [i for i, p in enumerate(rest) if p == path]
        assert where == list(range(where[0], where[0] + len(where))), path
