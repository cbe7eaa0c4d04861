"""The suite's own set-up: where its temp dirs live (helpers/tmp.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import kinds, tmp


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


def test_slow_tests_run_first_longest_first_and_the_rest_keep_their_order(
    request: pytest.FixtureRequest,
) -> None:
    """helpers/kinds.py: what xdist hands out first are the tests that take seconds, the
    longest first; the browser's tests are side by side; the rest keep their order."""
    items = request.session.items
    slow = [i for i, item in enumerate(items) if kinds.seconds(item) is not None]
    assert slow == list(range(len(slow)))  # all of them ahead of every other test
    figures = [kinds.seconds(items[i]) for i in slow]
    assert figures == sorted(figures, reverse=True)
    browser = [i for i, item in enumerate(items) if i >= len(slow) and kinds.uses_browser(item)]
    assert browser == list(range(browser[0], browser[0] + len(browser))) if browser else True
    rest = [item for i, item in enumerate(items) if i >= len(slow) and i not in browser]
    for path in {item.path for item in rest}:  # as collected: each file's tests side by side, in order
        where = [i for i, item in enumerate(rest) if item.path == path]
        assert where == list(range(where[0], where[0] + len(where))), path
        lines = [rest[i].reportinfo()[1] or 0 for i in where]
        assert lines == sorted(lines), path


def item(name: str, slow: float | None = None, browser: bool = False) -> Any:
    marks = {"slow": SimpleNamespace(args=() if slow == kinds.SLOW else (slow,))} if slow else {}

    def test() -> None:
        from helpers.browser import open_page  # what a browser test calls

        assert open_page

    def plain() -> None:
        pass

    return SimpleNamespace(name=name, get_closest_marker=marks.get, function=test if browser else plain)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_order_puts_the_slow_first_and_the_browsers_at_the_second_workers_share(workers: int) -> None:
    items = [
        item("a"), item("s2", slow=kinds.SLOW), item("b1", browser=True), item("c"), item("s10", slow=10),
        item("d"), item("b2", browser=True), item("e"), item("f"), item("s3", slow=3),
    ]  # fmt: skip
    kinds.order(items, workers)
    names = [i.name for i in items]
    assert names[:3] == ["s10", "s3", "s2"]
    share = len(items) // workers if workers > 1 else 3
    assert names[share : share + 2] == ["b1", "b2"]  # where the second worker's slice begins
    assert [n for n in names if n in "acdef"] == ["a", "c", "d", "e", "f"]
