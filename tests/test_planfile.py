"""The saved plan: one format, read back as a value that checks its own hash (invariant 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import ledger_of, manifest, record

from reconciler.errors import PlanError
from reconciler.plan import Options, build_plan, diff
from reconciler.plan import file as planfile


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    m = manifest("m1", "p1", ["s"], ["a1", "a2"], ["x"])
    plan = build_plan(
        diff([m], ledger_of([record(1, "delete", "m1", "p1", "s", ["a1"], ["x"])])),
        Options(max_points=7, targets=("m1",)),
        manifest_paths=["manifests"],
    )
    path = tmp_path / "plan.json"
    planfile.write(plan, path)
    return path


def test_round_trip(saved: Path) -> None:
    back = planfile.read(saved)
    assert back.options == Options(max_points=7, targets=("m1",))
    assert back.manifests == ("manifests",) and back.ledger.seq == 1 and back.actions == 1
    assert back.plan_hash == json.loads(saved.read_text())["planHash"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ledger", {"path": "elsewhere.jsonl", "seq": 1, "hash": "h1"}),
        ("options", {"maxPoints": 100000, "maxAssets": 1000, "targets": ["m1"]}),
        ("manifests", ["manifests", "/etc"]),
    ],
)
def test_every_hashed_field_edited_is_refused(saved: Path, field: str, value: Any) -> None:
    data = json.loads(saved.read_text())
    data[field] = value
    saved.write_text(json.dumps(data))
    with pytest.raises(PlanError, match="it was edited"):
        planfile.read(saved)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ledger", "not an object"),
        ("ledger", {"path": "l", "seq": "1", "hash": "h"}),
        ("options", {"maxPoints": 0, "maxAssets": 1, "targets": []}),
        ("options", {"maxPoints": True, "maxAssets": 1, "targets": []}),
        ("manifests", [1, 2]),
        ("actions", {}),
        ("planHash", None),
    ],
)
def test_malformed_fields_are_one_line_errors(saved: Path, field: str, value: Any) -> None:
    data = json.loads(saved.read_text())
    data[field] = value
    saved.write_text(json.dumps(data))
    with pytest.raises(PlanError, match="plan file is malformed") as err:
        planfile.read(saved)
    assert "\n" not in str(err.value)


def test_not_a_plan(tmp_path: Path) -> None:
    for text, why in [
        ("{", "invalid JSON"),
        ("[]", "not a reconcile plan"),
        ('{"formatVersion": 9}', "not a reconcile plan"),
    ]:
        (tmp_path / "p.json").write_text(text)
        with pytest.raises(PlanError, match=why):
            planfile.read(tmp_path / "p.json")
    assert not planfile.is_plan_file(str(tmp_path / "manifest.yaml"))
