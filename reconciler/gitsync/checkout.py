"""The checkout left where `git pull` works after a person's command published the ledger.

`ledger restore` and `ledger migrate` commit on the ledger's branch with plumbing (no
checkout is touched) and write the same ledger into the work tree. HEAD is then the
commit before the published one while the work tree already holds its ledger: a plain
`git pull` refuses ("local changes would be overwritten", "untracked working tree files
would be overwritten"). When the checkout is on the ledger's branch, HEAD is an ancestor
of the published commit and the work tree's ledger files are exactly the published ones,
the checkout is fast-forwarded to it (`git merge --ff-only`, what the pull would do),
the ledger's files staged first so that git takes them as the merge's own.
"""

from __future__ import annotations

from reconciler.gitsync._git import Git
from reconciler.gitsync.remote import is_ledger_file


def fast_forward(git: Git, commit: str, branch: str, ledger_path: str, tracking: str | None) -> str | None:
    """Fast-forward the checkout to `commit` (just published on `branch`), when that is
    what `git pull` would do and the work tree's ledger (`ledger_path`, its `.d/` and
    lease) is exactly `commit`'s; `tracking` (`refs/remotes/origin/main`, when the remote
    has a name) follows. A line for the user when the checkout was left behind, else None."""
    head = git.head()
    on = git.run("symbolic-ref", "-q", "HEAD").stdout.decode().strip()
    if head is None or head == commit or on != f"refs/heads/{branch}":
        return None  # another branch (a dedicated ledger branch), or detached: nothing to pull
    behind = f"this checkout ({head[:12]}) is behind {branch}: `git pull` it"
    if not git.is_ancestor(head, commit):
        return behind
    changed = git.ok("diff", "--name-only", "--no-renames", "-z", head, commit).split("\0")
    ours = [p for p in changed if p and (is_ledger_file(p, ledger_path) or p == ledger_path + ".lease")]
    top = git.toplevel()
    present = []
    for path in ours:
        here = top / path
        data = here.read_bytes() if here.is_file() else None
        if data != git.blob(commit, path):
            return behind
        if data is not None:
            present.append(path)
    if present:
        git.ok("add", "--", *present)
    if not git.succeeds("merge", "--ff-only", "--quiet", commit):
        if present:
            git.run("reset", "-q", "--", *present)  # as it was: the ledger's files unstaged
        return behind
    if tracking is not None and git.succeeds("rev-parse", "-q", "--verify", tracking):
        git.run("update-ref", tracking, commit)
    return None
