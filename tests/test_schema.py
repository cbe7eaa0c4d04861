"""schemas/ is generated from the models, and an independent validator agrees with ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import manifest_yaml, write
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from reconciler.manifests import load
from reconciler.manifests.schema import SCHEMA_FILE, render_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_equals_generated() -> None:
    assert (ROOT / "schemas" / SCHEMA_FILE).read_text() == render_schema()


GOOD = manifest_yaml("good-one")
CASES = {
    "good": GOOD,
    "good-files": GOOD.replace("assetIds: [a1, a2]", "assetIdsFile: ids.txt"),
    "bad-name": GOOD.replace("good-one", "Good_One"),
    "name-ends-dash": GOOD.replace("good-one", "good-"),
    "comma-id": GOOD.replace("[a1, a2]", '["a1,a2"]'),
    "space-id": GOOD.replace("[a1, a2]", '["a 1"]'),
    "control-id": GOOD.replace("[a1, a2]", '["a\\u0007"]'),
    "long-id": GOOD.replace("[a1, a2]", f"[{'a' * 257}]"),
    "empty-list": GOOD.replace("[a1, a2]", "[]"),
    "both": GOOD + "  assetIdsFile: ids.txt\n",
    "neither": GOOD.replace("  assetIds: [a1, a2]\n", ""),
    "null-list": GOOD.replace("[a1, a2]", "null"),
    "extra-top": GOOD + "status: {}\n",
    "extra-spec": GOOD + "  force: true\n",
    "wrong-version": GOOD.replace("reconciler/v1", "reconciler/v2"),
    "wrong-kind": GOOD.replace("StageStateDeletion", "Deletion"),
    "string-not-list": GOOD.replace("[a1, a2]", '"a1,a2"'),
    "number-id": GOOD.replace("[a1, a2]", "[12]"),
    "labels-not-strings": GOOD.replace("  name: good-one\n", "  name: good-one\n  labels: {n: 1}\n"),
    "good-renamed": GOOD.replace("  name: good-one\n", "  name: good-one\n  renamedFrom: [old-one, older]\n"),
    "renamed-bad-name": GOOD.replace("  name: good-one\n", "  name: good-one\n  renamedFrom: [Old_One]\n"),
    "renamed-empty": GOOD.replace("  name: good-one\n", "  name: good-one\n  renamedFrom: []\n"),
    "renamed-not-list": GOOD.replace("  name: good-one\n", "  name: good-one\n  renamedFrom: old-one\n"),
    "renamed-number": GOOD.replace("  name: good-one\n", "  name: good-one\n  renamedFrom: [12]\n"),
    "good-reclear": GOOD.replace(
        "  name: good-one\n", "  name: good-one\n  reclear: OPS-1299 counters rebuilt wrong\n"
    ),
    "reclear-blank": GOOD.replace("  name: good-one\n", '  name: good-one\n  reclear: "   "\n'),
    "reclear-empty": GOOD.replace("  name: good-one\n", '  name: good-one\n  reclear: ""\n'),
    "reclear-number": GOOD.replace("  name: good-one\n", "  name: good-one\n  reclear: 12\n"),
    "reclear-long": GOOD.replace("  name: good-one\n", f"  name: good-one\n  reclear: {'x' * 501}\n"),
    "zwsp-id": GOOD.replace("[a1, a2]", '["a1\\u200b"]'),
    "rlo-stage": GOOD.replace("[s1]", '["\\u202es1"]'),
    "bom-inside-org": GOOD.replace("orgId: o1", 'orgId: "o\\ufeff1"'),
    "good-non-ascii-id": GOOD.replace("[a1, a2]", "[Caf\u00e9, \u98ce\u673a]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_jsonschema_agrees_with_validate(case: str, tmp_path: Path) -> None:
    text = CASES[case]
    write(tmp_path / "m" / "ids.txt", "a1\na2\n")
    write(tmp_path / "m" / "x.yaml", text)
    ours_ok = not load([str(tmp_path / "m")]).errors
    schema = json.loads((ROOT / "schemas" / SCHEMA_FILE).read_text())
    doc = YAML(typ="safe").load(text)
    theirs_ok = not list(Draft202012Validator(schema).iter_errors(doc))
    assert ours_ok == theirs_ok, case
    assert ours_ok == case.startswith("good"), case
