"""Running `git`: the environment every call gets, and the best-effort reads.

`gitsync._git.Git` (the ledger's plumbing, with its errors and identity) runs git with
`environment()`; so do the reads `actor` (HEAD, uncommitted manifests) and `scaffold`
(the default branch) make through `read`, where no answer is an answer too: no git, not
a repository, a timeout.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

FIXED = {
    "GIT_TERMINAL_PROMPT": "0",  # a missing credential fails; it never waits on a prompt
    "LC_ALL": "C",  # git's messages are matched by callers
    "LANGUAGE": "C",
    # `git status` would rewrite the index, and to do that it re-reads every file checked
    # out in the same second (racy git): a fresh CI clone's whole ledger
    "GIT_OPTIONAL_LOCKS": "0",
}


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `FIXED` over it, then `extra`."""
    return {**os.environ, **FIXED, **(extra or {})}


def read(args: Sequence[str], cwd: str | os.PathLike[str] | None = None, timeout: float = 10.0) -> str | None:
    """The output of `git args` run in `cwd` when it succeeds, else None."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=Path(cwd) if cwd is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=environment(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None
