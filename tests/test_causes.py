"""Errors keep their cause: a `ReconcilerError` raised while handling an `OSError` chains it
(`raise ... from exc`), so `--debug` shows what the system said, not only our sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli

from reconciler import ledger as L
from reconciler.config import load_config
from reconciler.errors import ConfigError, LedgerError


def test_an_unreadable_ledger_chains_the_system_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").mkdir()
    with pytest.raises(LedgerError) as caught:
        L.read(tmp_path / "ledger.jsonl")
    assert isinstance(caught.value.__cause__, OSError)


def test_an_unreadable_config_chains_the_system_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_damaged_ledger_line_chains_the_json_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(LedgerError) as caught:
        L.read(path)
    assert isinstance(caught.value.__cause__, ValueError)


def test_debug_shows_the_cause(repo: Path) -> None:
    (repo / "dir.jsonl").mkdir()
    res = run_cli(["--debug", "plan", "--ledger", "dir.jsonl"], repo)
    assert res.code == 1
    assert "IsADirectoryError" in res.err and "direct cause of the following exception" in res.err
