"""git plumbing: the ledger's runner of `git` (pre-commit's `git.py`, Terraform's "dumb"
remote client), in the environment `reconciler.gitcmd` fixes for every git call. Everything above it speaks of commits, blobs and ref updates.

No checkout and no identity from the user's config: commits are built with
`commit-tree` on a private index, so this works on a bare CI runner and in a shallow
clone. Every call has a timeout (a hung remote must not outlive a ledger lease).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitcmd
from reconciler.errors import GitSyncError, PushRefused

DEFAULT_NAME = "reconcile-bot"
DEFAULT_EMAIL = "reconcile-bot@users.noreply.github.com"
DEFAULT_TIMEOUT = 60.0
_INDEXES_KEPT = 4  # a publish commits on the branch's last commit and on the anchor's
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """Credentials in URLs (`https://user:token@host`) replaced by `***`."""
    return _CREDENTIALS.sub(r"\1***@", text)


def end_of_options(remote: str) -> tuple[str, str]:
    """`--end-of-options` and `remote`, as the last options of a git command that talks to a
    remote: a value beginning with `-` (`--upload-pack=<command>`) is never an option.
    Refused outright too, since it can only be a mistake or an attack."""
    if remote.startswith("-"):
        raise GitSyncError(f"{redact(remote)!r} is not a git remote (it would be read as an option)")
    return ("--end-of-options", remote)


@dataclass(frozen=True)
class Identity:
    """Who the ledger commits are by; never taken from the user's git config."""

    name: str = DEFAULT_NAME
    email: str = DEFAULT_EMAIL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Identity:
        """`GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL` when set, else the bot."""
        env = os.environ if env is None else env
        return cls(env.get("GIT_AUTHOR_NAME") or DEFAULT_NAME, env.get("GIT_AUTHOR_EMAIL") or DEFAULT_EMAIL)


@dataclass(frozen=True)
class RefUpdate:
    """Set `ref` to `new` only if it is `old` now (None: it must not exist)."""

    ref: str
    new: str
    old: str | None


class Git:
    """`git -C worktree ...` with a fixed environment and a timeout per call."""

    def __init__(
        self,
        worktree: str | os.PathLike[str],
        identity: Identity | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.worktree = Path(worktree)
        self.identity = identity or Identity.from_env()
        self.timeout = timeout
        self._shallow: bool | None = None
        self._written: set[str] = set()  # ids of the blobs this runner wrote
        self._no_push_options: set[str] = set()  # remotes that said they take none
        self._tops: dict[Path, Path] = {}  # work tree -> its top, once asked
        self._indexes: dict[str, bytes] = {}  # commit -> the index file its tree was written from

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full = gitcmd.environment()
        full.update(
            GIT_AUTHOR_NAME=self.identity.name,
            GIT_AUTHOR_EMAIL=self.identity.email,
            GIT_COMMITTER_NAME=os.environ.get("GIT_COMMITTER_NAME") or self.identity.name,
            GIT_COMMITTER_EMAIL=os.environ.get("GIT_COMMITTER_EMAIL") or self.identity.email,
        )
        full.update(env or {})
        try:
            return subprocess.run(
                ["git", "-C", str(self.worktree), *args],
                input=stdin,
                capture_output=True,
                env=full,
                check=False,
                timeout=timeout or self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitTimeout(f"git {args[0]} did not answer within {exc.timeout:g}s") from exc
        except OSError as exc:
            raise GitSyncError(f"git {args[0]} could not run: {exc.strerror}") from exc

    def ok(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        proc = self.run(*args, stdin=stdin, env=env)
        if proc.returncode != 0:
            raise GitSyncError(f"git {args[0]} failed: {stderr(proc)}")
        return proc.stdout.decode().strip()

    def succeeds(self, *args: str) -> bool:
        return self.run(*args).returncode == 0

    # --- reading ------------------------------------------------------------------------

    def toplevel(self) -> Path:
        if self.worktree not in self._tops:
            self._tops[self.worktree] = Path(self.ok("rev-parse", "--show-toplevel")).resolve()
        return self._tops[self.worktree]

    def head(self) -> str | None:
        proc = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}")
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def shallow(self) -> bool:
        if self._shallow is None:
            self._shallow = self.ok("rev-parse", "--is-shallow-repository") == "true"
        return self._shallow

    def has_object(self, sha: str) -> bool:
        return self.succeeds("cat-file", "-e", f"{sha}^{{commit}}")

    def commits_here(self, shas: Sequence[str]) -> set[str]:
        """Those of `shas` that name a commit this clone holds (`has_object` for each, in
        one `cat-file --batch-check`)."""
        if not shas:
            return set()
        proc = self.run(
            "cat-file", "--batch-check", stdin="".join(f"{s}^{{commit}}\n" for s in shas).encode()
        )
        if proc.returncode != 0:
            return {sha for sha in shas if self.has_object(sha)}
        lines = proc.stdout.decode(errors="replace").splitlines()
        return {sha for sha, line in zip(shas, lines, strict=False) if line.split()[1:2] == ["commit"]}

    def blob(self, commit: str | None, path: str) -> bytes | None:
        """The file at `path` in `commit`; None when either does not exist."""
        if commit is None:
            return None
        proc = self.run("cat-file", "blob", f"{commit}:{path}")
        return proc.stdout if proc.returncode == 0 else None

    def ls_remote(self, remote: str, *refs: str) -> dict[str, str]:
        """The remote's `refs` that exist, with their commits (one round trip)."""
        proc = self.run("ls-remote", "--refs", *end_of_options(remote), *refs)
        if proc.returncode != 0:
            raise GitSyncError(f"cannot reach {redact(remote)}: {stderr(proc)}")
        found: dict[str, str] = {}
        for line in proc.stdout.decode().splitlines():
            sha, _, ref = line.partition("\t")
            found[ref.strip()] = sha.strip()
        return found

    def fetch(self, remote: str, *shas_and_refs: str) -> None:
        """Fetch so that each named commit is here (a shallow clone stays shallow)."""
        args = ["fetch", "--no-tags", "--no-recurse-submodules", "--quiet", "--no-write-fetch-head"]
        if self.shallow():
            args.append("--depth=1")
        proc = self.run(*args, *end_of_options(remote), *shas_and_refs)
        if proc.returncode != 0:
            raise GitSyncError(f"cannot fetch from {redact(remote)}: {stderr(proc)}")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool | None:
        """True/False; None when history is missing (a shallow clone) to tell."""
        proc = self.run("merge-base", "--is-ancestor", ancestor, descendant)
        if proc.returncode in (0, 1):
            return proc.returncode == 0
        return None

    def status(self, *paths: str) -> list[str]:
        """Uncommitted changes (untracked files included) under `paths`, as porcelain lines."""
        out = self.ok("status", "--porcelain", "--untracked-files=all", "--", *paths)
        return [line for line in out.splitlines() if line.strip()]

    # --- writing ------------------------------------------------------------------------

    def tree_entries(self, commit: str | None, paths: Sequence[str] = ()) -> dict[str, str]:
        """The files of `commit` at or under `paths` (all when none), with their blob ids."""
        if commit is None:
            return {}
        out = self.ok("ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths)
        found: dict[str, str] = {}
        for entry in out.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if path and len(parts) == 3 and parts[1] == "blob":
                found[path] = parts[2]
        return found

    def objects(self, shas: Sequence[str]) -> dict[str, bytes]:
        """The contents of blobs by id, read in one `cat-file --batch`."""
        if not shas:
            return {}
        out = self.run("cat-file", "--batch", stdin="".join(f"{s}\n" for s in shas).encode())
        if out.returncode != 0:
            raise GitSyncError(f"git cat-file failed: {stderr(out)}")
        found, data, at = {}, out.stdout, 0
        for sha in shas:
            end = data.index(b"\n", at)
            header = data[at:end].split()
            at = end + 1
            if len(header) < 3 or header[1] != b"blob":
                continue
            size = int(header[2])
            found[sha] = data[at : at + size]
            at += size + 1
        return found

    def files(self, commit: str | None, paths: Sequence[str] = ()) -> dict[str, bytes]:
        """The files of `commit` at or under `paths` (all when none), with their contents."""
        entries = self.tree_entries(commit, paths)
        blobs = self.objects(sorted(set(entries.values())))
        return {p: blobs[sha] for p, sha in entries.items() if sha in blobs}

    def commit_tree(
        self, parent: str | None, files: Mapping[str, bytes | None], message: str, *, base: str | None = None
    ) -> str:
        """A commit whose tree is `base`'s (default: `parent`'s; none: empty) with `files`
        written (None: removed); the work tree and the real index are not touched. The
        blobs are written by one `hash-object` and the index by one `update-index`. The
        index starts as the one this runner built for the commit it starts from, when it
        built it (each renewal commits on the last), else from `read-tree`; none for none."""
        with tempfile.TemporaryDirectory(prefix="reconcile-index-") as tmp:
            index = Path(tmp) / "index"
            env = {"GIT_INDEX_FILE": str(index)}
            start = base if base is not None else parent
            if start and start in self._indexes:
                index.write_bytes(self._indexes[start])
            elif start:
                self.ok("read-tree", start, env=env)
            written = sorted((p, d) for p, d in files.items() if d is not None)
            info = [f"100644 {sha}\t{path}\n" for path, sha in self._blobs(tmp, written)]
            info += [f"0 {'0' * 40}\t{p}\n" for p, d in sorted(files.items()) if d is None]
            self.ok("update-index", "--index-info", stdin="".join(info).encode(), env=env)
            tree = self.ok("write-tree", env=env)
            built = index.read_bytes() if index.exists() else None
        parents = ["-p", parent] if parent else []
        commit = self.ok("-c", "commit.gpgsign=false", "commit-tree", tree, *parents, stdin=message.encode())
        if built is not None:
            self._indexes[commit] = built
            while len(self._indexes) > _INDEXES_KEPT:
                del self._indexes[next(iter(self._indexes))]
        return commit

    def _blobs(self, tmp: str, files: Sequence[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
        """(path, blob id) of each file, each blob written once by one `hash-object`: a
        publish writes the same segment into the branch's commit and the anchor's."""
        known = [blob_id(data) for _, data in files]
        ids: list[str | None] = [sha if sha in self._written else None for sha in known]
        todo = [i for i, sha in enumerate(ids) if sha is None]
        if todo:
            blob_files = [Path(tmp) / f"blob{i}" for i in todo]
            for i, target in zip(todo, blob_files, strict=True):
                target.write_bytes(files[i][1])
            listing = "".join(f"{f}\n" for f in blob_files).encode()
            shas = self.ok("hash-object", "-w", "--no-filters", "--stdin-paths", stdin=listing).split()
            for i, written in zip(todo, shas, strict=True):
                ids[i] = written
                if written == known[i]:  # a SHA-1 repository: known by content from now on
                    self._written.add(written)
        for (path, _), oid in zip(files, ids, strict=True):
            assert oid is not None
            yield path, oid

    def push(self, remote: str, updates: Sequence[RefUpdate], options: Sequence[str] = ()) -> str:
        """Push every update atomically, each only if its ref is still `old` (a
        compare-and-swap). Returns "pushed", or "moved" when a ref was not as expected;
        raises `PushRefused` for a permission refusal, `GitSyncError` otherwise."""
        leases = [f"--force-with-lease={u.ref}:{u.old or ''}" for u in updates]
        specs = [f"{u.new}:{u.ref}" for u in updates]
        base = ["push", "--porcelain", "--no-verify", "--atomic", *leases]
        # A remote that refused push options once is not offered them again: every renewal
        # would otherwise cost it a refused push first.
        flags = [] if remote in self._no_push_options else [f"--push-option={o}" for o in options]
        proc = self.run(*base, *flags, *end_of_options(remote), *specs)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode != 0 and flags and "does not support push options" in text:
            self._no_push_options.add(remote)
            proc = self.run(*base, *end_of_options(remote), *specs)
            text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode == 0:
            return "pushed"
        if re.search(r"\((non-fast-forward|fetch first|stale info|atomic push failed)\)", text):
            return "moved"
        if _lost_ref_update(text):  # another push won the ref at the same moment: a lost CAS
            return "moved"
        if _is_permission(text):
            raise PushRefused(redact(text.strip()))
        raise GitSyncError(
            f"cannot push to {redact(remote)} (network, credentials or the remote itself; not a "
            f"permission refusal): {redact(text.strip())}"
        )


def blob_id(data: bytes) -> str:
    """git's id of a blob holding `data` in a SHA-1 repository (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class GitTimeout(GitSyncError):
    """A git call outlived its timeout: what it did at the remote is unknown."""


def _lost_ref_update(text: str) -> bool:
    """Two pushes meeting at the remote: the loser's ref update fails (`cannot lock ref ...
    is at X but expected Y`); that is the compare-and-swap lost, not a permission refusal."""
    lowered = text.lower()
    return "failed to update ref" in lowered or "cannot lock ref" in lowered


def _is_permission(text: str) -> bool:
    lowered = text.lower()
    return any(
        sign in lowered
        for sign in (
            "[remote rejected]",
            "hook declined",
            "protected branch",
            "permission to",
            "not allowed to push",
            "error: 403",
            "403 forbidden",
        )
    )


def stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    return redact(proc.stderr.decode(errors="replace").strip()) or f"exit status {proc.returncode}"
