"""The remote the ledger is published to: the typed seam of the ledger-in-git protocol.

`Remote` is what `LedgerRepo` needs of a remote, and no more, the way httpx's
transports serve its clients: read a branch and the anchor in one go, and publish
files on a branch head while moving the anchor, as one compare-and-swap. `GitRemote`
does it with git; `MemoryRemote` does it in memory, for tests that drive thousands of
sync, race, kill and tampering interleavings in seconds.

**The anchor** (`refs/reconcile/anchor`) is this tool's own record of the last ledger it
published (DESIGN "The ledger only grows", invariant 13). Merged pull requests move
branches, never this ref, so a ledger cut, rewritten or forged on a branch, a
force-pushed or deleted branch, or a `reconcile.yaml` that points somewhere else, is
told from the real thing by comparing with it. Each anchor commit's tree holds exactly
the ledger and lease files as published, its message names the ledger's path and
branch and the branch commit published with it, and its parent is the previous anchor:
the ref only ever fast-forwards, and a depth-1 fetch is enough to read it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reconciler import ledger as ledger_io
from reconciler.errors import GitSyncError
from reconciler.gitsync._git import Git, RefUpdate, blob_id, end_of_options, redact, stderr

ANCHOR_REF = "refs/reconcile/anchor"
SKIP_CI = "[skip ci]"  # GitHub and GitLab skip pipelines for a head commit that says so
PUSH_OPTIONS = ("ci.skip",)  # GitLab: no pipeline for this push
_SEEN = "refs/reconcile/seen/"  # where fetched tips are kept locally

Files = Mapping[str, "bytes | None"]


@dataclass(frozen=True)
class Anchor:
    """The last ledger this tool published: where, and exactly what."""

    commit: str
    ledger_path: str
    branch: str
    published: str  # the branch commit pushed with it
    files: Mapping[str, bytes]  # the ledger file and, while a run held it, the lease
    made: str = ""  # who made the anchor commit, and when (git's author and date), when known

    @property
    def ledger(self) -> dict[str, bytes]:
        """The ledger's files (the main file and `<main>.d/`), without the lease."""
        return {p: d for p, d in self.files.items() if is_ledger_file(p, self.ledger_path)}

    @property
    def lease(self) -> bytes | None:
        return self.files.get(self.ledger_path + ".lease")


def is_ledger_file(path: str, ledger_path: str) -> bool:
    """The main file, or a file under its sidecar directory `<main>.d/` (segments, ID lists)."""
    return path == ledger_path or path.startswith(ledger_path + ".d/")


@dataclass(frozen=True)
class Version:
    """One version of the ledger in a branch's history: the commit that wrote it, that
    commit's subject, and the ledger's files (and lease) as it left them."""

    commit: str
    subject: str
    files: Mapping[str, bytes]

    @property
    def by_reconcile(self) -> bool:
        """A commit this tool published (every one's subject starts so): a merged pull
        request or a person's push is not a version reconcile published."""
        return self.subject.startswith(PUBLISHED_SUBJECT)


PUBLISHED_SUBJECT = "reconcile: "  # the subject of every commit this tool publishes


@dataclass(frozen=True)
class RemoteState:
    """One read of the remote: the branch head, the asked-for files on it, the anchor."""

    head: str | None  # None: the branch does not exist
    files: Mapping[str, bytes | None]
    anchor: Anchor | None

    def file(self, path: str) -> bytes | None:
        return self.files.get(path)

    def ledger(self, ledger_path: str) -> dict[str, bytes]:
        """The ledger's files on the branch (empty when the branch or ledger is missing)."""
        return {p: d for p, d in self.files.items() if d is not None and is_ledger_file(p, ledger_path)}


class Remote(Protocol):
    """What the ledger-in-git protocol needs of a remote."""

    name: str

    def read(self, branch: str, paths: Sequence[str], dirs: Sequence[str] = ()) -> RemoteState:
        """The branch head with `paths` and every file under `dirs` on it, and the anchor."""
        ...

    def publish(
        self, branch: str, seen: RemoteState, files: Files, message: str, ledger_path: str
    ) -> RemoteState | None:
        """Commit `files` (None: remove) on `seen.head`, and move the anchor to hold the ledger
        and lease as they now are, atomically, only if neither ref moved since `seen`.
        The remote as it now is, or None when either had moved (the compare-and-swap lost)."""
        ...

    def changed_by(self, anchor: Anchor, head: str, path: str) -> str | None:
        """The newest commit after the anchor's that changed `path`, when history tells."""
        ...

    def ledger_versions(self, head: str, ledger_path: str, limit: int) -> list[Version]:
        """Up to `limit` versions of the ledger (main file, `<main>.d/`, lease) in `head`'s
        history, newest first: each commit that changed the main file or its sidecar."""
        ...


def changes(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> dict[str, bytes | None]:
    """What to commit to turn `old` into `new`: changed or new files, and None for gone ones."""
    out: dict[str, bytes | None] = {p: d for p, d in new.items() if old.get(p) != d}
    out.update({p: None for p in old if p not in new})
    return out


def extends(new: Mapping[str, bytes], old: Mapping[str, bytes]) -> bool:
    """`new` is `old`, or `old` with records appended (`ledger.extension_problem`)."""
    return new == old or ledger_io.extension_problem(new, old) is None


def head_seq(files: Mapping[str, bytes], rel: str) -> int:
    """The seq of the ledger's last record: the last line with a seq in its last segment."""
    chain = sorted(p for p in files if p == rel or p.startswith(rel + ".d/segments/"))
    for path in reversed(chain):
        for line in reversed(files[path].splitlines()):
            try:
                seq = json.loads(line).get("seq")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(seq, int):
                return seq
    return 0


def restore_command(source: str, ledger_path: str, files: Mapping[str, object]) -> str:
    """The shell line that makes the work tree's ledger exactly `files` as `source` (a
    commit) holds them: the main file and `<main>.d/` (segments, ID lists), with no file
    under `<main>.d/` that `source` lacks. Restoring the main file alone leaves an edited
    segment in place. `git rm -f`: a segment an apply appended to since the last commit has
    local modifications, which a plain `git rm` refuses (and the `&&` chain stops there)."""
    side = ledger_path + ".d"
    paths = f"{ledger_path} {side}" if any(p.startswith(side + "/") for p in files) else ledger_path
    return f"git rm -rqf --ignore-unmatch -- {side} && rm -rf {side} && git checkout {source} -- {paths}"


def anchor_message(ledger_path: str, branch: str, published: str) -> str:
    return (
        "reconcile: the ledger as last published\n\n"
        f"Reconcile-Ledger: {ledger_path}\nReconcile-Branch: {branch}\nReconcile-Commit: {published}\n"
    )


def parse_anchor_message(message: str) -> tuple[str, str, str] | None:
    trailers = dict(
        line.split(": ", 1) for line in message.splitlines() if line.startswith("Reconcile-") and ": " in line
    )
    try:
        return trailers["Reconcile-Ledger"], trailers["Reconcile-Branch"], trailers["Reconcile-Commit"]
    except KeyError:
        return None


def _after(
    seen: RemoteState, files: Files, commit: str, anchor: str, ledger_path: str, branch: str
) -> RemoteState:
    """The remote's state once a publish of `files` on `seen` landed."""
    merged = {**seen.files, **files}
    held = _anchor_files(files, ledger_path, seen)
    return RemoteState(commit, merged, Anchor(anchor, ledger_path, branch, commit, held))


def _anchor_files(files: Files, ledger_path: str, seen: RemoteState) -> dict[str, bytes]:
    """The ledger's files and the lease after a publish of `files` on top of `seen`."""
    merged = {**seen.files, **files}
    lease = ledger_path + ".lease"
    return {
        p: d for p, d in merged.items() if d is not None and (p == lease or is_ledger_file(p, ledger_path))
    }


class GitRemote:
    """A git remote, through the work tree's git."""

    def __init__(self, git: Git, name: str = "origin", push_options: Sequence[str] = PUSH_OPTIONS) -> None:
        self.git = git
        self.target = name  # a remote's name, or a URL (which may carry a token)
        self.name = redact(name)  # what messages show
        self.push_options = tuple(push_options)
        self._blobs: dict[str, bytes] = {}  # blob id -> contents: a ledger's files never change
        self._top: Path | None = None  # the work tree's top, once asked
        self._anchors: dict[str, Anchor | None] = {}  # anchor commit -> what it holds
        self._trees: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}  # (commit, paths) -> blob ids

    def _files(self, commit: str | None, paths: Sequence[str]) -> dict[str, bytes]:
        """The files of `commit` at or under `paths` (all when none). Only blobs this run has
        not read before are read: each renewal reads what changed, not the whole ledger."""
        key = (commit or "", tuple(paths))
        if key not in self._trees:  # a commit's tree never changes
            self._trees[key] = self.git.tree_entries(commit, paths)
        entries = self._trees[key]
        unknown = {sha for sha in entries.values() if sha not in self._blobs}
        if unknown:
            self._from_worktree({p: sha for p, sha in entries.items() if sha in unknown})
        self._blobs.update(self.git.objects(sorted(unknown - self._blobs.keys())))
        return {p: self._blobs[sha] for p, sha in entries.items() if sha in self._blobs}

    def _from_worktree(self, entries: Mapping[str, str]) -> None:
        """Blobs the work tree holds as they are (a fresh clone holds the whole ledger),
        read from disk instead of through `cat-file`: a file is taken only if its git blob
        id is the one wanted, so the bytes are the blob's."""
        if self._top is None:
            try:
                self._top = self.git.toplevel()
            except GitSyncError:
                return
        for path, sha in entries.items():
            try:
                data = (self._top / path).read_bytes()
            except OSError:
                continue
            if blob_id(data) == sha:
                self._blobs[sha] = data

    def read(self, branch: str, paths: Sequence[str], dirs: Sequence[str] = ()) -> RemoteState:
        ref = f"refs/heads/{branch}"
        try:
            found = self.git.ls_remote(self.target, ref, ANCHOR_REF)
        except GitSyncError as exc:
            raise GitSyncError(f"cannot fetch {branch}: {exc}") from exc
        refs = [
            (r, _SEEN + ("anchor" if r == ANCHOR_REF else "branch")) for r in (ref, ANCHOR_REF) if r in found
        ]
        here = self.git.commits_here([found[src] for src, _ in refs])
        missing = [(src, dst) for src, dst in refs if found[src] not in here]
        if missing:
            self.git.fetch(self.target, *(f"+{src}:{dst}" for src, dst in missing))
            here |= self.git.commits_here([found[src] for src, _ in missing])
        head = self._resolve(found.get(ref), _SEEN + "branch", here)
        anchor_commit = self._resolve(found.get(ANCHOR_REF), _SEEN + "anchor", here)
        tree = self._files(head, [*paths, *dirs]) if head else {}
        files: dict[str, bytes | None] = {p: tree.get(p) for p in paths}
        files.update({p: d for p, d in tree.items() if p not in files})
        return RemoteState(head, files, self._anchor(anchor_commit))

    def _resolve(self, sha: str | None, local_ref: str, here: set[str]) -> str | None:
        if sha is None:
            return None
        if sha in here:
            return sha
        return self.git.ok("rev-parse", "--verify", f"{local_ref}^{{commit}}")  # moved since ls-remote

    def _anchor(self, commit: str | None) -> Anchor | None:
        """The anchor `commit` holds; read once per run (a commit never changes), so a
        renewal that finds the anchor it last read asks git nothing more about it."""
        if commit is None:
            return None
        if commit not in self._anchors:
            self._anchors[commit] = self._read_anchor(commit)
        return self._anchors[commit]

    def _read_anchor(self, commit: str) -> Anchor | None:
        # who made it and when, then its message, in one `git log`
        proc = self.git.run("log", "-1", "--format=%an <%ae>, %cI%x00%B", commit)
        if proc.returncode != 0:
            raise GitSyncError(f"git log failed: {stderr(proc)}")
        made, _, message = proc.stdout.partition(b"\0")
        parsed = parse_anchor_message(message.decode().strip())
        if parsed is None:
            return None
        ledger_path, branch, published = parsed
        files = self._files(commit, [])  # an anchor holds only the ledger
        return Anchor(commit, ledger_path, branch, published, files, made.decode(errors="replace").strip())

    def publish(
        self, branch: str, seen: RemoteState, files: Files, message: str, ledger_path: str
    ) -> RemoteState | None:
        commit = self.git.commit_tree(seen.head, dict(files), f"{message}\n\n{SKIP_CI}\n")
        held = _anchor_files(files, ledger_path, seen)
        before = seen.anchor
        if before is not None and before.ledger_path == ledger_path:
            # on the last anchor's tree, only what changed: a publish writes the segment it
            # appended to, not years of sealed segments again
            anchor = self.git.commit_tree(
                before.commit, changes(before.files, held), anchor_message(ledger_path, branch, commit)
            )
        else:
            anchor = self.git.commit_tree(
                before.commit if before else None,
                dict(held),
                anchor_message(ledger_path, branch, commit),
                base="",
            )
        updates = [
            RefUpdate(f"refs/heads/{branch}", commit, seen.head),
            RefUpdate(ANCHOR_REF, anchor, seen.anchor.commit if seen.anchor else None),
        ]
        if self.git.push(self.target, updates, self.push_options) != "pushed":
            return None
        return _after(seen, files, commit, anchor, ledger_path, branch)

    def ledger_versions(self, head: str, ledger_path: str, limit: int) -> list[Version]:
        if self.git.shallow():
            self.git.run("fetch", "--quiet", "--no-tags", "--deepen=1000", *end_of_options(self.target), head)
        side = ledger_path + ".d"
        proc = self.git.run("log", f"-{limit}", "--format=%H %s", head, "--", ledger_path, side)
        lines = proc.stdout.decode(errors="replace").splitlines() if proc.returncode == 0 else []
        out = []
        for line in lines:
            commit, _, subject = line.partition(" ")
            found = self._files(commit, [ledger_path, side, ledger_path + ".lease"])
            out.append(Version(commit, subject, found))
        return out

    def changed_by(self, anchor: Anchor, head: str, path: str) -> str | None:
        if self.git.is_ancestor(anchor.published, head) is None and self.git.shallow():
            self.git.run("fetch", "--quiet", "--no-tags", "--deepen=500", *end_of_options(self.target), head)
        proc = self.git.run("log", "-1", "--format=%H", f"{anchor.published}..{head}", "--", path)
        out = proc.stdout.decode().strip()
        return out or None if proc.returncode == 0 else None


@dataclass
class _Commit:
    parent: str | None
    tree: dict[str, bytes]
    message: str


@dataclass
class MemoryRemote:
    """A remote in memory: refs, commits and trees as dicts (tests' `MockTransport`).

    Besides the `Remote` protocol it offers what people do to remotes, for tests:
    `commit` (a merged pull request), `force` (a force-push), `delete` (a deleted branch).
    """

    name: str = "memory"
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    pushes: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _new(self, parent: str | None, tree: dict[str, bytes], message: str) -> str:
        sha = hashlib.sha1(f"{next(self._ids)}".encode()).hexdigest()
        self.commits[sha] = _Commit(parent, tree, message)
        return sha

    def read(self, branch: str, paths: Sequence[str], dirs: Sequence[str] = ()) -> RemoteState:
        head = self.refs.get(f"refs/heads/{branch}")
        tree = self.commits[head].tree if head else {}
        wanted = list(paths) + sorted(p for p in tree for d in dirs if p.startswith(d.rstrip("/") + "/"))
        return RemoteState(head, {p: tree.get(p) for p in wanted}, self._anchor())

    def _anchor(self) -> Anchor | None:
        sha = self.refs.get(ANCHOR_REF)
        if sha is None:
            return None
        c = self.commits[sha]
        parsed = parse_anchor_message(c.message)
        assert parsed is not None
        return Anchor(sha, parsed[0], parsed[1], parsed[2], dict(c.tree))

    def publish(
        self, branch: str, seen: RemoteState, files: Files, message: str, ledger_path: str
    ) -> RemoteState | None:
        ref = f"refs/heads/{branch}"
        if self.refs.get(ref) != seen.head or self.refs.get(ANCHOR_REF) != (
            seen.anchor and seen.anchor.commit
        ):
            return None
        tree = dict(self.commits[seen.head].tree) if seen.head else {}
        for path, data in files.items():
            if data is None:
                tree.pop(path, None)
            else:
                tree[path] = data
        commit = self._new(seen.head, tree, message)
        held = _anchor_files(files, ledger_path, seen)
        anchor = self._new(
            seen.anchor.commit if seen.anchor else None, held, anchor_message(ledger_path, branch, commit)
        )
        self.refs[ref], self.refs[ANCHOR_REF] = commit, anchor
        self.pushes += 1
        return _after(seen, files, commit, anchor, ledger_path, branch)

    def changed_by(self, anchor: Anchor, head: str, path: str) -> str | None:
        sha: str | None = head
        while sha and sha != anchor.published:
            c = self.commits[sha]
            before = self.commits[c.parent].tree.get(path) if c.parent else None
            if c.tree.get(path) != before:
                return sha
            sha = c.parent
        return None

    def ledger_versions(self, head: str, ledger_path: str, limit: int) -> list[Version]:
        out: list[Version] = []
        sha: str | None = head

        def ledger(tree: Mapping[str, bytes]) -> dict[str, bytes]:
            return {p: d for p, d in tree.items() if is_ledger_file(p, ledger_path)}

        while sha and len(out) < limit:
            c = self.commits[sha]
            before = ledger(self.commits[c.parent].tree) if c.parent else {}
            if ledger(c.tree) != before:
                lease = ledger_path + ".lease"
                files = {**ledger(c.tree), **({lease: c.tree[lease]} if lease in c.tree else {})}
                out.append(Version(sha, c.message.splitlines()[0] if c.message else "", files))
            sha = c.parent
        return out

    def move_anchor(self, commit: str) -> None:
        """A third party moves the anchor (it is not protected like a branch): back to an
        earlier anchor, or to a commit of its own (`forge_anchor`)."""
        self.refs[ANCHOR_REF] = commit

    def forge_anchor(self, files: Mapping[str, bytes], ledger_path: str, branch: str, published: str) -> str:
        """An anchor commit made by a third party, holding `files`; the ref is not moved."""
        parent = self.refs.get(ANCHOR_REF)
        return self._new(parent, dict(files), anchor_message(ledger_path, branch, published))

    # --- what people do to remotes -------------------------------------------------------

    def commit(self, branch: str, files: Files, message: str = "a merged pull request") -> str:
        ref = f"refs/heads/{branch}"
        head = self.refs.get(ref)
        tree = dict(self.commits[head].tree) if head else {}
        for path, data in files.items():
            if data is None:
                tree.pop(path, None)
            else:
                tree[path] = data
        self.refs[ref] = self._new(head, tree, message)
        return self.refs[ref]

    def force(self, branch: str, commit: str) -> None:
        self.refs[f"refs/heads/{branch}"] = commit

    def delete(self, branch: str) -> None:
        self.refs.pop(f"refs/heads/{branch}", None)
