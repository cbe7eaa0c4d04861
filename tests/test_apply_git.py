"""The whole `reconcile apply` with the ledger in git: real git, bare remotes, isolated HOME.

The outcomes of the CI issue: a stale checkout never re-clears; a merge that lands while
an apply runs keeps main's history and the ledger; a protected branch is a clear error;
and every cell is cleared exactly once.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler import ledger as L

CONFIG = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {enabled: true, remote: origin, branch: main}
"""


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No global git identity or config leaks in."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("AUTHOR", "COMMITTER"):
        for what in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{who}_{what}", raising=False)
    return h


def person() -> dict[str, str]:
    import os

    ident = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@x", "GIT_COMMITTER_NAME": "dev"}
    return {**os.environ, **ident, "GIT_COMMITTER_EMAIL": "dev@x"}


@pytest.fixture
def origin(tmp_path: Path, home: Path) -> Path:
    """A bare `origin` whose main holds a manifest, reconcile.yaml and an empty ledger."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    write(seed / "reconcile.yaml", CONFIG)
    write(seed / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"], points=["x", "y"]))
    write(seed / "applied-ledger.jsonl", "")
    git(seed, "add", ".", env=person())
    git(seed, "commit", "-qm", "seed", env=person())
    git(seed, "push", "-q", "origin", "HEAD:main", env=person())
    return bare


def clone(origin: Path, where: Path, *extra: str) -> Path:
    git(where.parent, "clone", "-q", *extra, f"file://{origin}", str(where))
    return where


def remote_ledger(origin: Path, tmp_path: Path) -> L.Ledger:
    data = subprocess.run(
        ["git", "--git-dir", str(origin), "show", "main:applied-ledger.jsonl"],
        capture_output=True,
        check=True,
    ).stdout
    path = tmp_path / "remote-ledger.jsonl"
    path.write_bytes(data)
    return L.read(path)


def test_a_stale_checkout_never_clears_again(origin: Path, tmp_path: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    first = clone(origin, tmp_path / "runner1")
    stale = clone(origin, tmp_path / "runner2", "--depth", "1")  # shallow, checked out before job 1 ran
    res = run_cli(["apply", "--auto-approve"], first, gateway_env(em))
    assert res.code == 0, res.all
    assert len(em.world.delete_log) == 1
    res = run_cli(["apply", "--auto-approve"], stale, gateway_env(em))
    assert res.code == 0, res.all
    assert "Nothing to apply." in res.out
    assert len(em.world.delete_log) == 1  # the second runner fast-forwarded its ledger first
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"]
    assert run_cli(["plan", "--detailed-exitcode"], stale).code == 0


def test_a_merge_landing_during_apply_keeps_history_and_ledger(
    origin: Path, tmp_path: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline()]))
    runner = clone(origin, tmp_path / "runner")
    dev = clone(origin, tmp_path / "dev")

    def merge(_world: Any, _entry: Any) -> None:  # PR 2 lands while job 1 is between its two pushes
        git(dev, "pull", "-q", "--rebase", "origin", "main", env=person())
        write(dev / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))
        git(dev, "add", ".", env=person())
        git(dev, "commit", "-qm", "PR 2", env=person())
        git(dev, "push", "-q", "origin", "HEAD:main", env=person())

    em.world.on_request("delete", before=merge)
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 0, res.all
    log = git(tmp_path, "--git-dir", str(origin), "log", "--format=%s", "main")
    assert "PR 2" in log and "seed" in log  # main's history keeps every merge
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"]
    # The next job applies PR 2's manifest only: each cell is cleared exactly once.
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0, res.all
    counts = Counter(
        (e["pipelineId"], e["stage"], a, p)
        for e in em.world.delete_log
        for a in e["assets"]
        for p in e["points"]
    )
    assert counts and set(counts.values()) == {1}


def test_a_protected_branch_is_a_clear_error_with_nothing_sent(
    origin: Path, tmp_path: Path, make_emulator: Any
) -> None:
    hook = origin / "hooks/pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GitLab: You are not allowed to push code to protected branches' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner"), gateway_env(em))
    assert res.code == 1
    assert "protected" in res.err or "refused" in res.err
    assert "reconcile/ledger" in res.err  # the setting that fixes it
    assert em.world.delete_log == []  # the write-ahead push failed: nothing was sent


def test_ledger_resolve_pushes_its_records(origin: Path, tmp_path: Path) -> None:
    seed = clone(origin, tmp_path / "seed2")
    with L.LedgerWriter(L.read(seed / "applied-ledger.jsonl")) as w:  # a request left in doubt
        w.append(
            "intent",
            {
                "manifest": "a",
                "orgId": "o1",
                "pipelineId": "p1",
                "stageInstanceName": "s1",
                "assetIds": ["a1"],
                "pointIds": ["x"],
            },
        )
    git(seed, "commit", "-qam", "in doubt", env=person())
    git(seed, "push", "-q", "origin", "HEAD:main", env=person())
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(["ledger", "resolve", "--auto-approve"], runner)
    assert res.code == 0 and "Recorded 1 in-doubt request as done." in res.out, res.all
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"] and led.records[-1].data["resolved"] is True


def test_ledger_verify_refuses_a_missing_file(tmp_path: Path) -> None:
    res = run_cli(["ledger", "verify", "--ledger", "nope.jsonl"], tmp_path)
    assert res.code == 1 and "nope.jsonl does not exist: nothing to verify" in res.err
