"""Shared fixtures: temp manifest repos, the real CLI as a subprocess, a live emulator."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, Faults, RunningEmulator, World

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
