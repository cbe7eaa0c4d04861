"""Issue 18, item 5: a ledger in git whose only fault is a missing final newline (it
verifies) keeps its last record through apply, and a no-change apply then succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    bare_origin,
    clone,
    gateway_env,
    isolate_git,
    manifest_yaml,
    pipeline,
    remote_ledger,
    run_cli,
    world_for,
)

from reconciler import ledger as L

CONFIG = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {enabled: true, remote: origin, branch: main}
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_git(tmp_path / "home", monkeypatch)


@pytest.fixture
def em(make_emulator: Any) -> Any:
    return make_emulator(world_for([pipeline()]))


def seed(work: Path) -> None:
    (work / "reconcile.yaml").write_text(CONFIG)
    (work / "manifests").mkdir()
    (work / "manifests" / "a.yaml").write_text(manifest_yaml("a", assets=["a1", "a2"], points=["x"]))
    path = work / LEDGER
    with L.LedgerWriter(L.read(path)) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "elsewhere"})
        w.append("resume", {"orgId": "o", "pipelineId": "elsewhere"})
    path.write_bytes(path.read_bytes()[:-1])  # the last record without its newline


def test_a_last_record_without_its_newline_survives_apply_and_a_no_change_apply(
    tmp_path: Path, home: Path, em: Any
) -> None:
    origin = bare_origin(tmp_path, seed)
    runner = clone(origin, tmp_path / "runner")
    first = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert first.code == 0, first.all
    remote = remote_ledger(origin, tmp_path)
    assert [r.kind for r in remote.records[:2]] == ["pause", "resume"]  # the resume was kept
    assert {r.kind for r in remote.records[2:]} == {"intent", "delete"}
    again = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert again.code == 0, again.all
    assert "Nothing to apply" in again.all and "each holds records the other lacks" not in again.all
