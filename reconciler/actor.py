"""Who is applying: user, host, tool version, git commit and CI run URL for the ledger."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Sequence
from typing import Any

from reconciler import __version__, gitcmd


def _git(*args: str) -> str | None:
    return gitcmd.read(args, timeout=5)


def _git_commit() -> str | None:
    """The commit the manifests were read from: the work tree's HEAD (CI may apply a newer
    commit than the one that triggered it), else what CI says."""
    head = (_git("rev-parse", "HEAD") or "").strip()
    if head:
        return head
    for var in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    return None


def dirty(paths: Sequence[str]) -> bool:
    """Uncommitted changes under the manifest paths: what is applied is not what HEAD says."""
    status = _git("status", "--porcelain", "--", *paths)
    return bool(status and status.strip())


def _run_url() -> str | None:
    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL") or None


def local_user() -> str:
    """The login name of this process, or "unknown" where the system has none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (e.g. a bare container)
        return "unknown"


def _user() -> str:
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if os.environ.get(var):
            return os.environ[var]
    return local_user()


def current_actor(paths: Sequence[str] = ()) -> dict[str, Any]:
    """The `actor` of every record this run appends (never a secret); `gitDirty` when the
    manifests at `paths` have uncommitted changes."""
    actor: dict[str, Any] = {
        "user": _user(),
        "host": socket.gethostname(),
        "tool": f"reconciler/{__version__}",
    }
    commit, url = _git_commit(), _run_url()
    if commit:
        actor["gitCommit"] = commit
    if url:
        actor["runUrl"] = url
    if commit and paths and dirty(paths):
        actor["gitDirty"] = True
    return actor
