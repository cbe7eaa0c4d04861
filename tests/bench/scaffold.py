"""A bare origin whose main is a `reconcile init` scaffold (the ledger in git), for the
benchmarks that run the CI loop as a user's repository would (`kill_resend.py`,
`ledger_layout.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ENOS_", "GITHUB_", "CI_"))}
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**ENV, **IDENTITY}, check=True, capture_output=True)


def scaffold_origin(root: Path, fill: Callable[[Path], None]) -> Path:
    """`root/origin.git`, whose main holds `reconcile init`'s scaffold without its example
    manifests, and whatever `fill` writes into the seed work tree."""
    bare = root / "origin.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / "seed"
    git(root, "clone", "-q", str(bare), str(seed))
    subprocess.run(
        [sys.executable, "-m", "reconciler", "init", "--install-source", "enos-reconciler", str(seed)],
        env=ENV,
        check=True,
        capture_output=True,
    )
    for example in (seed / "manifests").glob("*.yaml"):
        example.unlink()
    fill(seed)
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "scaffold")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare
