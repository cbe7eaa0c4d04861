"""The scaffolded GitLab jobs, run for real with gitlab-ci-local (shell executor).

A scaffolded repository whose `reconcile` is this checkout (the venv's bin first on
PATH; the job's pip install is then already satisfied), a bare `origin` in a temp dir,
the emulator as the gateway, and a fake GitLab notes API. HOME is isolated and no git
identity is configured anywhere.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import bare_origin, clone, git, person, pipeline, remote_records, world_for
from helpers.node import node_package

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RunningEmulator, World
from reconciler.scaffold import init

pytestmark = [pytest.mark.slow(5), pytest.mark.npm]  # seconds of wall, about (helpers/kinds.py)

ROOT = Path(__file__).resolve().parent.parent
ORG, PIPELINE, STAGE = "o15589291683811", "4a0b6e9c7f1d4e2a", "window_avg_1"


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    if not shutil.which("rsync"):
        reason = "gitlab-ci-local's shell executor needs rsync (apt-get install rsync)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return node_package("gitlab-ci-local") / "src" / "index.js"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    out = {k: v for k, v in os.environ.items() if k in keep}
    out.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1")
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    return out


def _scaffold_with_the_example_merged(seed: Path) -> None:
    """`reconcile init`, and the example copied into manifests/ (the first pull request,
    reviewed and merged: the scaffold alone applies nothing)."""
    init(seed, branch="main")
    shutil.copy(seed / "examples" / "example.yaml", seed / "manifests" / "example.yaml")


def _cloned(origin: Path, work: Path, env: dict[str, str]) -> Path:
    clone(origin, work, env=env)
    (work / ".git" / "info" / "exclude").write_text(".gitlab-ci-local/\n")
    return work


@pytest.fixture()
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    """The scaffold with its example merged, pushed to a bare origin, cloned as the CI job
    would see it."""
    origin = bare_origin(tmp_path, _scaffold_with_the_example_merged, env=env)
    return _cloned(origin, tmp_path / "work", env)


def run_job(
    cli: Path, work: Path, env: dict[str, str], job: str, variables: dict[str, str], *, ok: bool = True
) -> str:
    args = ["node", str(cli), "--force-shell-executor", "--no-color", job]
    for k, v in {"RECONCILE_INSTALL": "enos-reconciler", **variables}.items():
        args += ["--variable", f"{k}={v}"]
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, output
    return output


def emulator_vars(em: RunningEmulator) -> dict[str, str]:
    return {
        "ENOS_API_GATEWAY": em.url,
        "ENOS_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
    }


@pytest.fixture()
def emulator() -> Iterator[RunningEmulator]:
    seed = world_for([pipeline(PIPELINE, "RUNNING", (STAGE,), orgId=ORG)])
    with RunningEmulator(World(seed)) as em:
        yield em


def test_apply_job_pauses_clears_restarts_and_pushes_the_ledger(
    gitlab_ci_local: Path, project: Path, env: dict[str, str], emulator: RunningEmulator
) -> None:
    out = run_job(gitlab_ci_local, project, env, "apply", emulator_vars(emulator))
    # pausePipelines comes from reconcile.yaml, the file the merge request's plan read
    assert "reconcile apply --auto-approve --summary apply-summary.md" in out
    assert "**Applied.** 2 cells cleared" in out  # the summary, in the job log
    world = emulator.world
    assert world.deleted_cells() == {
        (ORG, PIPELINE, STAGE, asset, "WTUR.GenActivePW") for asset in ("Nj1gF1iZ", "Xk29aQ0c")
    }
    assert world.status(PIPELINE) == "RUNNING"  # paused for the deletes, started again
    records = remote_records(project.parent / "origin.git")
    assert [r["kind"] for r in records][-1] == "resume"
    intents = {r["seq"]: r for r in records if r["kind"] == "intent"}
    deleted = [intents[r["intent"]] if "intent" in r else r for r in records if r["kind"] == "delete"]
    assert sum(len(r["assetIds"].split(",")) for r in deleted) == 2
    message = git(project.parent / "origin.git", "log", "-1", "--format=%an|%B", "main", env=env)
    assert message.startswith("reconcile-bot|") and "[skip ci]" in message
    # issue 20: the evidence and the audit report are the job's artifacts
    kept = project / ".gitlab-ci-local" / "artifacts" / "apply" / "reconcile-evidence"
    assert (kept / "ledger-report.html").read_text().startswith("<!doctype html>")
    evidence = gzip.decompress((kept / "state-before-delete.jsonl.gz").read_bytes()).splitlines()
    snap = [r["snapshot"] for r in records if r["kind"] == "delete"]
    assert len(evidence) == 2 and sum(s["items"] for s in snap) == 2


def test_apply_job_applies_the_latest_main_not_its_trigger_commit(
    gitlab_ci_local: Path, project: Path, env: dict[str, str], emulator: RunningEmulator, tmp_path: Path
) -> None:
    later = tmp_path / "later"
    clone(tmp_path / "origin.git", later, env=env)
    manifest = (later / "manifests" / "example.yaml").read_text()
    (later / "manifests" / "second.yaml").write_text(
        manifest.replace("example-formula-fix-2026-11", "second-fix").replace(
            "WTUR.GenActivePW", "WTUR.Other"
        )
    )
    git(later, "add", ".", env=env)
    git(later, "commit", "-q", "-m", "a second manifest, merged after the trigger", env=person(env))
    git(later, "push", "-q", "origin", "HEAD:main", env=env)
    run_job(gitlab_ci_local, project, env, "apply", emulator_vars(emulator))
    points = {cell[4] for cell in emulator.world.deleted_cells()}
    assert points == {"WTUR.GenActivePW", "WTUR.Other"}


@dataclass
class NotesApi:
    """Just enough of GitLab's merge request notes API."""

    notes: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length", "0"))
                return json.loads(self.rfile.read(length)) if length else {}

            def do_GET(self) -> None:
                api.calls.append(("GET", self.path))
                if "/repository/commits/" in self.path:  # the merge requests of a commit
                    self._reply([{"iid": 7, "state": "merged"}, {"iid": 3, "state": "closed"}])
                    return
                self._reply(api.notes)

            def do_POST(self) -> None:
                api.calls.append(("POST", self.path))
                assert self.headers["PRIVATE-TOKEN"] == "note-token"
                api.notes.append({"id": len(api.notes) + 1, **self._body()})
                self._reply(api.notes[-1])

            def do_PUT(self) -> None:
                api.calls.append(("PUT", self.path))
                note_id = int(self.path.rsplit("/", 1)[1])
                api.notes[note_id - 1].update(self._body())
                self._reply(api.notes[note_id - 1])

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def test_plan_job_keeps_one_note_updated_in_place_with_read_only_credentials(
    gitlab_ci_local: Path, project: Path, env: dict[str, str], emulator: RunningEmulator
) -> None:
    api = NotesApi(notes=[{"id": 1, "body": "a reviewer's note"}])
    server = ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7",
        "RECONCILE_NOTE_TOKEN": "note-token",
        "ENOS_API_GATEWAY": emulator.url,
        # The production credentials are wrong here: the plan job must not use them.
        "ENOS_APP_KEY": "production-key",
        "ENOS_APP_SECRET": "production-secret",
        "ENOS_READONLY_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_READONLY_APP_SECRET": DEFAULT_APP_SECRET,
    }
    try:
        run_job(gitlab_ci_local, project, env, "plan", variables)
        run_job(gitlab_ci_local, project, env, "plan", variables)
    finally:
        server.shutdown()
    assert [c[0] for c in api.calls] == ["GET", "POST", "GET", "PUT"]
    assert api.calls[3][1] == "/api/v4/projects/42/merge_requests/7/notes/2"
    assert len(api.notes) == 2 and api.notes[0]["body"] == "a reviewer's note"
    assert api.notes[1]["body"].startswith("<!-- reconcile-plan -->\n")
    assert "2 cells" in api.notes[1]["body"]
    # --refresh ran with the read-only credentials (the production ones would be refused)
    lists = [e for e in emulator.world.log if e["route"] == "list"]
    assert lists and all(e["status"] == 200 for e in lists)
    read_only = {"list", "details", "get"}  # List Pipelines, Get Pipeline Details, Get Stage State
    assert {e["route"] for e in emulator.world.log} <= read_only and emulator.world.deleted_cells() == set()
    # issue 20: the comment says what the pending cells hold now (read-only Get Stage State)
    assert "2 cells to clear; 2 hold state now" in api.notes[1]["body"]


def test_apply_job_tells_the_merged_merge_request_what_it_did(
    gitlab_ci_local: Path, project: Path, env: dict[str, str], emulator: RunningEmulator
) -> None:
    api = NotesApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    variables = {
        **emulator_vars(emulator),
        "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
        "CI_PROJECT_ID": "42",
        "RECONCILE_NOTE_TOKEN": "note-token",
    }
    try:
        run_job(gitlab_ci_local, project, env, "apply", variables)
    finally:
        server.shutdown()
    sha = git(project, "rev-parse", "HEAD", env=env)
    assert api.calls == [
        ("GET", f"/api/v4/projects/42/repository/commits/{sha}/merge_requests"),
        ("POST", "/api/v4/projects/42/merge_requests/7/notes"),
    ]  # the merged one only
    body = api.notes[0]["body"]
    assert body.startswith("<!-- reconcile-apply -->\n## reconcile apply\n\n**Applied.** 2 cells cleared")
    assert f"`{PIPELINE}`: paused " in body and "started again" in body
    [found] = project.glob(".gitlab-ci-local/**/apply-summary.json")
    summary = json.loads(found.read_text())
    assert summary["outcome"] == "applied" and summary["cells"]["cleared"] == 2


def test_the_scaffolds_first_push_is_not_an_apply(
    gitlab_ci_local: Path, tmp_path: Path, env: dict[str, str], emulator: RunningEmulator
) -> None:
    """Issue 27, item 6: the first push of `reconcile init`'s files runs the apply job (it
    changes reconcile.yaml), and clears nothing: the example is under examples/."""
    origin = bare_origin(tmp_path, lambda seed: init(seed, branch="main"), env=env)
    work = _cloned(origin, tmp_path / "work", env)
    out = run_job(gitlab_ci_local, work, env, "apply", emulator_vars(emulator))
    assert "Nothing to apply." in out
    assert emulator.world.deleted_cells() == set() and emulator.world.status(PIPELINE) == "RUNNING"
    assert not [e for e in emulator.world.log if e["route"] in ("delete", "operate")]


def test_a_refused_plan_still_updates_the_note_and_fails_the_job(
    gitlab_ci_local: Path, project: Path, env: dict[str, str]
) -> None:
    """Issue 27, item 3: a merge request that touches the ledger is refused by plan; the note
    still says so (the older note, describing another change, is replaced), then the job fails."""
    base = git(project, "rev-parse", "HEAD", env=env)
    git(project, "checkout", "-q", "-b", "mr", env=env)
    (project / "applied-ledger.jsonl").write_text("forged\n")
    git(project, "commit", "-qam", "touch the ledger", env=person(env))
    api = NotesApi(notes=[{"id": 1, "body": "<!-- reconcile-plan -->\nan older plan: 2 cells"}])
    server = ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7",
        "RECONCILE_NOTE_TOKEN": "note-token",
        "CI_JOB_URL": "https://gitlab.example/acme/pv/-/jobs/5",
    }
    try:
        out = run_job(gitlab_ci_local, project, env, "plan", variables, ok=False)
    finally:
        server.shutdown()
    assert "this pull request changes the ledger" in out
    assert [c[0] for c in api.calls] == ["GET", "PUT"]  # the older note, updated in place
    body = api.notes[0]["body"]
    assert body.startswith("<!-- reconcile-plan -->\n## reconcile plan") and "2 cells" not in body
    assert (
        "this pull request changes the ledger" in body or "reconcile plan failed and printed no plan" in body
    )


# --- the schedule (issue 26): a run that always happens --------------------------------------


def listed(cli: Path, work: Path, env: dict[str, str], source: str) -> dict[str, str]:
    """Job name -> `when`, as gitlab-ci-local evaluates the rules for a pipeline `source`."""
    proc = subprocess.run(
        ["node", str(cli), "--list", "--no-color", "--variable", f"CI_PIPELINE_SOURCE={source}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    jobs = {}
    for line in proc.stdout.splitlines()[1:]:  # a header, then one job per line
        parts = line.split()
        if len(parts) >= 3:
            jobs[parts[0]] = line
    return jobs


def test_a_scheduled_pipeline_runs_the_apply_job_and_not_the_plan(
    gitlab_ci_local: Path,
    project: Path,
    env: dict[str, str],
) -> None:
    scheduled = listed(gitlab_ci_local, project, env, "schedule")
    assert "apply" in scheduled and "validate" in scheduled
    assert "plan" not in scheduled
    merge_request = listed(gitlab_ci_local, project, env, "merge_request_event")
    assert "plan" in merge_request and "apply" not in merge_request


@pytest.mark.slow(155)  # the freeze's 150 s, waited out: the first test CI=true starts
def test_a_deferred_merge_is_applied_by_the_scheduled_run_without_another_merge(
    gitlab_ci_local: Path,
    project: Path,
    env: dict[str, str],
    emulator: RunningEmulator,
) -> None:
    # Long enough for the merge's run to start inside the freeze on a busy machine.
    ends = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=150)
    config = project / "reconcile.yaml"
    freeze = (
        "  windows:\n    deny:\n"
        f'      - {{from: "2000-01-01", to: "{ends:%Y-%m-%dT%H:%M:%S}", reason: "release freeze"}}\n'
    )
    config.write_text(config.read_text().replace("  # windows:\n", freeze + "  # windows:\n", 1))
    git(project, "commit", "-q", "-am", "a freeze", env=person(env))
    git(project, "push", "-q", "origin", "HEAD:main", env=env)

    out = run_job(gitlab_ci_local, project, env, "apply", emulator_vars(emulator))  # the merge's run
    assert "Deferred: release freeze" in out and ends.strftime("%Y-%m-%dT%H:%M") in out
    world = emulator.world
    assert world.deleted_cells() == set() and world.log == []  # nothing paused, nothing sent

    time.sleep(max(0.0, (ends - datetime.now(timezone.utc)).total_seconds() + 1))
    out = run_job(
        gitlab_ci_local, project, env, "apply", {**emulator_vars(emulator), "CI_PIPELINE_SOURCE": "schedule"}
    )
    assert "**Applied.** 2 cells cleared" in out
    assert len(world.deleted_cells()) == 2
