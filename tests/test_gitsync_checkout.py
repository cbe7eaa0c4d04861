"""`gitsync.checkout.fast_forward`: after a person's publish, the checkout moves to the
published commit only when that is what `git pull` would do and its work tree already
holds the published ledger; otherwise nothing in it changes. Real git in a temp dir."""

from __future__ import annotations

from pathlib import Path

from helpers import LEDGER, git, person

from reconciler.gitsync import Git
from reconciler.gitsync.checkout import fast_forward

OLD, NEW = b'{"seq":1}\n', b'{"seq":1}\n{"seq":2}\n'


def published_on_top(work: Path, files: dict[str, bytes]) -> str:
    """A commit on HEAD with `files` changed, made with plumbing as `LedgerRepo` publishes
    (no checkout touched); the work tree is then given the same files."""
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    index = work / ".git" / "published-index"
    env = {**person(), "GIT_INDEX_FILE": str(index)}
    git(work, "read-tree", "HEAD", env=env)
    git(work, "add", "--", *files, env=env)
    tree = git(work, "write-tree", env=env)
    return git(work, "commit-tree", tree, "-p", "HEAD", "-m", "reconcile: published", env=env)


def checkout(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / LEDGER).write_bytes(OLD)
    (work / "notes.txt").write_text("a person's file\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "seed", env=person())
    return work


def test_a_work_tree_holding_the_published_ledger_is_fast_forwarded(tmp_path: Path, home: Path) -> None:
    work = checkout(tmp_path)
    commit = published_on_top(work, {LEDGER: NEW, f"{LEDGER}.d/ids/x.txt": b"a1\n"})
    (work / "notes.txt").write_text("an edit of the person's, not staged\n")
    assert fast_forward(Git(work), commit, "main", LEDGER, None) is None
    assert git(work, "rev-parse", "HEAD") == commit
    assert git(work, "status", "--porcelain") == "M notes.txt"  # their edit kept, nothing else


def test_a_work_tree_whose_ledger_differs_is_left_alone(tmp_path: Path, home: Path) -> None:
    work = checkout(tmp_path)
    head = git(work, "rev-parse", "HEAD")
    commit = published_on_top(work, {LEDGER: NEW})
    (work / LEDGER).write_bytes(NEW + b'{"seq":3}\n')  # a record written since, not published
    note = fast_forward(Git(work), commit, "main", LEDGER, None)
    assert note is not None and "`git pull` it" in note
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "status", "--porcelain") == f"M {LEDGER}"  # unstaged, as it was
    assert (work / LEDGER).read_bytes() == NEW + b'{"seq":3}\n'


def test_another_branch_checked_out_is_left_alone(tmp_path: Path, home: Path) -> None:
    work = checkout(tmp_path)
    git(work, "checkout", "-q", "-b", "topic")
    head = git(work, "rev-parse", "HEAD")
    commit = published_on_top(work, {LEDGER: NEW})
    assert fast_forward(Git(work), commit, "main", LEDGER, None) is None
    assert git(work, "rev-parse", "HEAD") == head == git(work, "rev-parse", "main")
