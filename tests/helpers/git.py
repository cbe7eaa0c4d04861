"""Real git in temp dirs: an isolated HOME, a bare origin, clones, the remote's ledger,
and commits made as a person. Nothing here reads the user's or the system's git config.

One identity (`IDENTITY`, through `person()`) commits everything a person would; the
code under test must never need it, so HOME carries none.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import cli_env
from helpers.manifests import manifest_yaml, write
from reconciler import ledger as L

LEDGER = "applied-ledger.jsonl"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Person",
    "GIT_AUTHOR_EMAIL": "person@example.invalid",
    "GIT_COMMITTER_NAME": "Test Person",
    "GIT_COMMITTER_EMAIL": "person@example.invalid",
}
# reconcile.yaml keeping the ledger in git on `branch` (format it with branch=...).
LEDGER_IN_GIT = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {{enabled: true, remote: origin, branch: {branch}}}
"""
# Every remote refuses non-fast-forward pushes unless told otherwise: a force push
# anywhere fails the test, so a branch only ever moves forward.
FORWARD_ONLY = {"receive.denyNonFastForwards": "true"}


def isolate_git(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is `home`; no global or system git config and no identity in the environment."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "EMAIL", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(var, raising=False)
    for who in ("AUTHOR", "COMMITTER"):
        for what in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{who}_{what}", raising=False)
    return home


def person(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's environment by default) plus a person's git identity."""
    return {**(os.environ if env is None else env), **IDENTITY}


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """`git args` in `cwd`; its stdout, stripped. A failure fails the test with git's stderr.
    A test's own git does no housekeeping after a commit, fetch or pull (`maintenance.auto`):
    a process each time, and no part of what is tested."""
    proc = subprocess.run(
        ["git", "-c", "maintenance.auto=false", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def bare_origin(
    parent: Path,
    files: Mapping[str, str] | Callable[[Path], Any],
    *,
    config: Mapping[str, str] = FORWARD_ONLY,
    env: Mapping[str, str] | None = None,
    name: str = "origin.git",
) -> Path:
    """A bare `parent/name` whose main holds one commit made by a person from `parent/seed`:
    `files` (path -> text), or whatever the callable writes into that directory. The commit
    is made in the bare repository itself, with `seed` as its work tree (what a clone, a
    commit and a push to it would leave there, in two git calls instead of a dozen)."""
    bare = parent / name
    git(parent, "init", "-q", "--bare", "-b", "main", str(bare), env=env)
    # A hosted remote does its housekeeping on its own time, not in the push (`git gc --auto`)
    for key, value in {"receive.autogc": "false", **config}.items():
        git(bare, "config", key, value, env=env)
    seed = parent / "seed"
    seed.mkdir()
    if callable(files):
        files(seed)
    else:
        for path, text in files.items():
            (seed / path).parent.mkdir(parents=True, exist_ok=True)
            (seed / path).write_text(text)
    where = ["--git-dir", str(bare), "--work-tree", str(seed)]
    index = {"GIT_INDEX_FILE": str(parent / "seed.index")}  # the bare repository keeps none
    git(parent, *where, "add", "-A", env={**(os.environ if env is None else env), **index})
    git(parent, *where, "commit", "-qm", "seed", env={**person(env), **index})
    return bare


def clone(origin: Path, where: Path, *extra: str, env: Mapping[str, str] | None = None) -> Path:
    """A clone of `origin` at `where` (over file://, as a runner would fetch it)."""
    git(where.parent, "clone", "-q", *extra, f"file://{origin}", str(where), env=env)
    return where


def remote_bytes(origin: Path, branch: str = "main", path: str = LEDGER) -> bytes:
    """The bytes of `path` on the bare `origin`'s `branch`."""
    return subprocess.run(
        ["git", "--git-dir", str(origin), "cat-file", "blob", f"{branch}:{path}"],
        capture_output=True,
        check=True,
    ).stdout


def remote_ledger(origin: Path, tmp_path: Path, branch: str = "main") -> L.Ledger:
    """The ledger on the remote's `branch`, read and verified (a broken chain raises)."""
    path = tmp_path / f"remote-ledger-{branch.replace('/', '-')}.jsonl"
    path.write_bytes(remote_bytes(origin, branch))
    return L.read(path)


def remote_records(origin: Path, branch: str = "main") -> list[dict[str, Any]]:
    """The remote ledger's records as JSON, unverified (for reading what a job pushed)."""
    return [json.loads(line) for line in remote_bytes(origin, branch).splitlines()]


def commit_all(repo: Path) -> None:
    """`git init` and commit everything in `repo`, as a person (no global identity needed)."""
    env = person({**cli_env(), "HOME": str(repo)})
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "m"]):
        git(repo, *args, env=env)


def committed_repo(tmp_path: Path) -> Path:
    """`tmp_path/repo`: a git repository with a committed manifest and an empty ledger, no
    reconcile.yaml (so the ledger is a local file)."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(repo / LEDGER, "")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "init", env=person())
    return repo
