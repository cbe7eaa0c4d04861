"""The pull request always hears (issue 27, item 3, the CI side), for the scaffold's
GitHub plan workflow: its Plan step run for real in bash (GitHub's `-eo pipefail`) in a
pull request whose plan refuses, and its comment step's script run for real in Node with
a recording stand-in for the GitHub API. The GitLab job is run by gitlab-ci-local in
test_gitlab_ci.py; both are linted in test_init.py.

- plan refuses (exit 1): the step still succeeds, keeps plan.md and says status=1; the
  comment step posts (or updates) the comment; the last step fails the job;
- plan prints nothing at all: the comment still replaces an older one, saying so;
- the path filters and artifacts cover the ledger's `.d/` folder and lease.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import LEDGER, bare_origin, clone, git, person
from ruamel.yaml import YAML

from reconciler.scaffold import init, planned_files

PLAN_WORKFLOW = ".github/workflows/reconcile-plan.yml"
APPLY_WORKFLOW = ".github/workflows/reconcile-apply.yml"


def _workflow(rel: str) -> dict[str, Any]:
    return YAML(typ="safe").load(planned_files(branch="main")[rel])  # type: ignore[no-any-return]


def _step(name: str) -> dict[str, Any]:
    [step] = [s for s in _workflow(PLAN_WORKFLOW)["jobs"]["plan"]["steps"] if s.get("name") == name]
    return step


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # this reconcile
    return {**keep, "PATH": path, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1"}


def _pull_request(tmp_path: Path, env: dict[str, str], change: Any) -> tuple[Path, str]:
    """The scaffold with its example merged, then a pull request making `change`."""

    def scaffold(seed: Path) -> None:
        init(seed, branch="main")
        shutil.copy(seed / "examples/example.yaml", seed / "manifests/example.yaml")

    origin = bare_origin(tmp_path, scaffold, env=env)
    work = clone(origin, tmp_path / "work", env=env)
    base = git(work, "rev-parse", "HEAD", env=env)
    git(work, "checkout", "-q", "-b", "pr", env=env)
    change(work)
    git(work, "add", "-A", env=env)
    git(work, "commit", "-qm", "pr", env=person(env))
    return work, base


def _run_plan_step(
    work: Path, env: dict[str, str], base: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    event = work.parent / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": base}}}))
    output, summary = work.parent / "github_output", work.parent / "step_summary"
    step_env = {
        **env,
        **{k: str(v) for k, v in _step("Plan")["env"].items() if "${{" not in str(v)},
        "ENOS_API_GATEWAY": "",
        "ENOS_APP_KEY": "",  # a fork: no secrets, plan offline
        "ENOS_APP_SECRET": "",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _step("Plan")["run"]],
        cwd=work,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc, output.read_text() if output.exists() else ""


COMMENT_HARNESS = """
const calls = [];
const comments = JSON.parse(process.env.EXISTING || "[]");
const github = {
  paginate: async () => comments,
  rest: { issues: {
    listComments: "listComments",
    createComment: async (args) => calls.push(["create", args]),
    updateComment: async (args) => calls.push(["update", args]),
  } },
};
const context = {
  repo: { owner: "acme", repo: "pv" }, issue: { number: 7 },
  serverUrl: "https://github.com", runId: 99,
};
(async () => {
SCRIPT
})().then(() => console.log(JSON.stringify(calls)));
"""


def _run_comment_step(work: Path, existing: list[dict[str, Any]]) -> list[list[Any]]:
    if not shutil.which("node"):
        pytest.skip("the comment step's script needs Node.js (apt-get install nodejs)")
    script = work.parent / "comment.cjs"
    script.write_text(
        COMMENT_HARNESS.replace("SCRIPT", _step("Post or update the plan comment")["with"]["script"])
    )
    proc = subprocess.run(
        ["node", str(script)],
        cwd=work,
        env={**os.environ, "EXISTING": json.dumps(existing)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_a_refused_plan_is_still_posted_and_then_fails_the_job(tmp_path: Path) -> None:
    env = _env(tmp_path)

    def touch_the_ledger(work: Path) -> None:
        (work / LEDGER).write_text("forged\n")

    work, base = _pull_request(tmp_path, env, touch_the_ledger)
    proc, output = _run_plan_step(work, env, base)
    assert proc.returncode == 0, proc.stderr  # the step goes on to the comment
    assert "status=1" in output.splitlines()
    assert "this pull request changes the ledger" in proc.stderr
    calls = _run_comment_step(work, [{"id": 5, "body": "<!-- reconcile-plan -->\nan older plan: 2 cells"}])
    [[what, args]] = calls
    assert what == "update" and args["comment_id"] == 5  # the older comment is replaced
    body = args["body"]
    assert body.startswith("<!-- reconcile-plan -->\n## reconcile plan") and "2 cells" not in body
    plan_md = (work / "plan.md").read_text()
    if plan_md.strip():  # plan printed the comment's body on refusal: that is what is posted
        assert body == "<!-- reconcile-plan -->\n" + plan_md
    else:
        assert "reconcile plan failed and printed no plan" in body
        assert "https://github.com/acme/pv/actions/runs/99" in body
    fail = _step("Fail the check when plan refused")
    assert "steps.plan.outputs.status != '0'" in fail["if"] and "exit 1" in fail["run"]


def test_a_plan_that_prints_nothing_still_replaces_the_old_comment(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "plan.md").write_text("")
    [[what, args]] = _run_comment_step(work, [])
    assert what == "create" and args["issue_number"] == 7
    assert "reconcile plan failed and printed no plan" in args["body"]


def test_a_plan_with_changes_posts_it_and_passes(tmp_path: Path) -> None:
    env = _env(tmp_path)

    def add_a_manifest(work: Path) -> None:
        text = (work / "manifests/example.yaml").read_text()
        (work / "manifests/second.yaml").write_text(text.replace("example-formula-fix-2026-11", "second"))

    work, base = _pull_request(tmp_path, env, add_a_manifest)
    proc, output = _run_plan_step(work, env, base)
    assert proc.returncode == 0 and "status=0" in output.splitlines(), proc.stderr
    [[what, args]] = _run_comment_step(work, [])
    assert what == "create" and "`second`" in args["body"] and "2 cells" in args["body"]


def test_every_step_after_plan_runs_when_plan_refused() -> None:
    """A refusal fails the Plan step's command, never the step: the comment step and the
    last step are gated on `!cancelled()`, not on success()."""
    for name in ("Plan", "Post or update the plan comment", "Fail the check when plan refused"):
        assert "!cancelled()" in _step(name)["if"], name
    assert "steps.plan.outcome == 'success'" in _step("Post or update the plan comment")["if"]


def test_the_ledgers_folder_and_lease_are_covered() -> None:
    paths = _workflow(PLAN_WORKFLOW)["on"]["pull_request"]["paths"]
    assert {"applied-ledger.jsonl", "applied-ledger.jsonl.d/**", "applied-ledger.jsonl.lease"} <= set(paths)
    [kept] = [
        s
        for s in _workflow(APPLY_WORKFLOW)["jobs"]["apply"]["steps"]
        if "ledger as an artifact" in s.get("name", "")
    ]
    assert "applied-ledger.jsonl.d/" in kept["with"]["path"].split()
    gitlab = YAML(typ="safe").load(planned_files(branch="main")[".gitlab-ci.yml"])
    assert "applied-ledger.jsonl.d/" in gitlab["apply"]["artifacts"]["paths"]
    assert gitlab["plan"]["artifacts"]["when"] == "always" and gitlab["plan"]["needs"] == []
