"""The applied ledger kept in git: the only module that changes anything in git (`actor`
only reads HEAD and the manifests' status for the ledger's `actor` field).

CI runners are disposable, so in CI the ledger's truth is its file on a remote branch
(DESIGN "The ledger in git (CI)"). `LedgerRepo` keeps the local ledger file and that
branch in step with git plumbing only: no merge base, no checkout of the ledger's
branch, no identity from the user's config, so it works on a bare runner and in a
shallow clone.

- `sync()` before planning: fast-forward the local file to the remote's ledger, or
  refuse (`LedgerBehind`) when that is not a pure append; never plan from a stale one.
- `publish()` after appending `pause`/`intent` records and before the calls they
  announce: the push is the compare-and-swap between racing applies (invariants 9
  and 11); a remote ledger that moved meanwhile is `LedgerMoved`, and nothing is sent.
- `publish_final()` before exiting 0: the same push, but when another apply appended
  meanwhile this run's records (calls already made) are re-chained after the remote's
  tail rather than lost.

- A lease (`<ledger>.lease` beside the ledger on the branch) says which run is sending:
  written by the write-ahead push, renewed by `heartbeat()` while the run sends, removed
  by its final push; a runner that died lets it expire. Another apply that finds a live
  lease waits or refuses (invariant 9 across runners: it never re-sends what a live run
  announced, nor starts what that run paused).

The ledger branch only ever moves forward by commits whose parent is its current head;
nothing here force-pushes, so the branch keeps every merge.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from reconciler import ledger as ledger_io
from reconciler.actor import local_user
from reconciler.errors import GitSyncError, LedgerBehind, LedgerMoved, PushRefused
from reconciler.words import plural

DEFAULT_NAME = "reconcile-bot"
DEFAULT_EMAIL = "reconcile-bot@users.noreply.github.com"
# GitHub skips workflows for a pushed head commit whose message holds this; GitLab too.
SKIP_CI = "[skip ci]"
# GitLab: no pipeline for this push. Servers that do not take push options get none.
PUSH_OPTIONS = ("ci.skip",)
MAX_ATTEMPTS = 5
_KEEP = b"keep"  # `_commit`: leave the lease file as the head has it
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


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
class Lease:
    """The run that is sending from this ledger branch now, and until when it says so."""

    run: str
    user: str
    host: str
    pid: int
    since: str
    until: float  # epoch seconds, by the holder's clock; renewed while it sends

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes | None) -> Lease | None:
        """None for no lease or one this version cannot read (it then binds nobody)."""
        try:
            return cls(**json.loads(data)) if data else None
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        left = max(0.0, self.until - time.time())
        return (
            f"run {self.run[:8]} by {self.user} on {self.host} (pid {self.pid}) since {self.since}; "
            f"its lease runs {left:.0f}s more unless renewed"
        )


@dataclass(frozen=True)
class SyncResult:
    """What `sync` found and did."""

    remote_head: str | None  # the ledger branch's head commit; None: no such branch yet
    remote_bytes: int  # length of the remote ledger; 0 when the branch has none
    fast_forwarded: bool  # the local file was extended with the remote's records
    records_added: int  # how many records the fast-forward added
    checkout_head: str | None  # the work tree's HEAD commit
    notes: tuple[str, ...] = ()  # lines worth showing the user (fast-forward, stale checkout)


def redact(text: str) -> str:
    """Credentials in URLs (`https://user:token@host`) replaced by `***`."""
    return _CREDENTIALS.sub(r"\1***@", text)


def _whole_lines(data: bytes) -> bytes:
    """Up to the last newline: a torn last line is never compared or pushed."""
    return data[: data.rfind(b"\n") + 1]


def _count(data: bytes) -> int:
    return data.count(b"\n")


class LedgerRepo:
    """The ledger file of a git work tree, kept on `branch` of `remote`.

    `ledger` is the ledger file's path (absolute, or relative to `worktree`).
    `dedicated` says the branch holds only the ledger (e.g. `reconcile/ledger`) rather
    than being the branch the manifests are checked out from; by default any branch but
    `main`/`master` is dedicated. Use only while holding the ledger's `LedgerLock`.
    """

    def __init__(
        self,
        worktree: str | os.PathLike[str],
        ledger: str | os.PathLike[str],
        *,
        remote: str = "origin",
        branch: str = "main",
        dedicated: bool | None = None,
        identity: Identity | None = None,
        push_options: tuple[str, ...] = PUSH_OPTIONS,
        lease_seconds: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.worktree = Path(worktree)
        self.file = self.worktree / ledger
        self.remote = remote
        self.branch = branch
        self.dedicated = branch not in ("main", "master") if dedicated is None else dedicated
        self.identity = identity or Identity.from_env()
        self.push_options = push_options
        self._rel: str | None = None
        # What the last fetch saw: the branch head and its ledger's bytes; and the remote
        # ledger the local file extends (the last one synced or pushed).
        self._head: str | None = None
        self._remote_bytes = b""
        self._base = b""
        self._fetched = False
        self.lease_seconds = lease_seconds
        self._clock = clock
        self.run = uuid.uuid4().hex
        self._since = ledger_io.utc_now()
        self._remote_lease: Lease | None = None
        self._shallow: bool | None = None

    # --- the one git helper --------------------------------------------------------

    def _git(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        full = dict(os.environ)
        full.update(
            GIT_TERMINAL_PROMPT="0",  # a missing credential fails; it never waits on a prompt
            LC_ALL="C",  # git's messages are matched below
            LANGUAGE="C",
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
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitSyncError(f"git {args[0]} could not run: {exc}") from None

    def _ok(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        proc = self._git(*args, stdin=stdin, env=env)
        if proc.returncode != 0:
            raise GitSyncError(f"git {args[0]} failed: {_stderr(proc)}")
        return proc.stdout.decode().strip()

    # --- reading -------------------------------------------------------------------

    @property
    def rel_path(self) -> str:
        """The ledger's path inside the repository, as git names it."""
        if self._rel is None:
            top = Path(self._ok("rev-parse", "--show-toplevel")).resolve()
            try:
                self._rel = self.file.resolve().relative_to(top).as_posix()
            except ValueError:
                raise GitSyncError(f"{self.file} is not inside the git repository at {top}") from None
        return self._rel

    def _fetch(self, branch: str) -> str | None:
        """Fetch `branch`; its head commit, or None if the remote has no such branch."""
        args = ["fetch", "--no-tags", "--no-recurse-submodules", "--quiet"]
        if self._shallow is None:  # asked once: every heartbeat and lease poll fetches
            self._check_repository()
            self._shallow = self._ok("rev-parse", "--is-shallow-repository") == "true"
        if self._shallow:
            args.append("--depth=1")  # a shallow runner stays shallow: only the tip is needed
        proc = self._git(*args, self.remote, f"refs/heads/{branch}")
        if proc.returncode != 0:
            if "couldn't find remote ref" in proc.stderr.decode(errors="replace"):
                return None
            raise GitSyncError(f"cannot fetch {branch} from {self.remote}: {_stderr(proc)}")
        return self._ok("rev-parse", "--verify", "FETCH_HEAD^{commit}")

    def _check_repository(self) -> None:
        """A git repository with the remote, or an error that says what to do instead of
        git's own words (reconcile.yaml's `ledger.git` is what asked for git)."""
        off = "or set ledger.git.enabled: false in reconcile.yaml to keep the ledger in this directory only"
        if self._git("rev-parse", "--git-dir").returncode != 0:
            raise GitSyncError(
                f"{self.worktree.resolve()} is not a git repository, but reconcile.yaml keeps the "
                f"ledger in git (ledger.git): run this in a clone of the manifests repository, {off}"
            )
        if self._git("remote", "get-url", self.remote).returncode != 0:
            raise GitSyncError(
                f"this repository has no remote {self.remote!r}, but reconcile.yaml keeps the ledger on "
                f"{self.remote}/{self.branch} (ledger.git): add it (git remote add {self.remote} URL), "
                f"name another in ledger.git.remote, {off}"
            )

    def _blob(self, commit: str | None, path: str | None = None) -> bytes | None:
        if commit is None:
            return None
        proc = self._git("cat-file", "blob", f"{commit}:{path or self.rel_path}")
        return proc.stdout if proc.returncode == 0 else None

    def _refresh(self) -> None:
        self._head = self._fetch(self.branch)
        self._remote_bytes = self._blob(self._head) or b""
        self._remote_lease = Lease.parse(self._blob(self._head, self.lease_path))
        self._fetched = True

    @property
    def lease_path(self) -> str:
        return self.rel_path + ".lease"

    def live_lease(self) -> Lease | None:
        """Another run's lease on the branch as last fetched, if it has not expired."""
        lease = self._remote_lease
        if lease is None or lease.run == self.run or lease.until <= self._clock():
            return None
        return lease

    def _our_lease(self) -> bytes:
        return Lease(
            self.run,
            local_user(),
            socket.gethostname(),
            os.getpid(),
            self._since,
            self._clock() + self.lease_seconds,
        ).to_bytes()

    def heartbeat(self, message: str = "reconcile: still applying (lease renewed)") -> str | None:
        """Renew this run's lease, pushing the records written so far with it."""
        return self._publish(message, rechain=False, drop_from_seq=None, hold=True)

    def read_ledger_bytes(self, branch: str | None = None) -> bytes | None:
        """The ledger as it is on the remote's `branch` (default: the ledger's branch);
        None when the branch or the file on it does not exist. For `plan` in
        dedicated-branch mode. Changes nothing locally."""
        return self._blob(self._fetch(branch or self.branch))

    def _local(self) -> bytes:
        try:
            return _whole_lines(self.file.read_bytes())
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise GitSyncError(f"{self.file}: cannot read the ledger: {exc.strerror}") from None

    # --- sync ----------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Bring the local ledger file up to the remote branch's, before planning.

        Equal: nothing to do. The remote extends the local file: the local file becomes
        the remote's (fast-forward). The local file has records the remote lacks, or
        they differ: `LedgerBehind`, naming why and what to do; nothing is changed.
        """
        self._refresh()
        local, remote = self._local(), self._remote_bytes
        where = f"{self.remote}/{self.branch}"
        if self._head is None and not self.dedicated:
            raise GitSyncError(
                f"{self.remote} has no branch {self.branch}: push it first, or set ledger.git.branch "
                "in reconcile.yaml to the branch that should hold the ledger"
            )
        notes: list[str] = []
        added = 0
        if self._head is None:
            notes.append(f"{where} does not exist yet: the first publish creates it with this ledger")
        elif local != remote:
            if not remote.startswith(local):
                raise LedgerBehind(self._why_not_fast_forward(local, remote))
            added = _count(remote) - _count(local)
            self._write_local(remote)
            notes.append(
                f"{self.file}: fast-forwarded to {where} ({plural(added, 'record')} this checkout lacked)"
            )
        self._base = remote
        checkout = self._ok("rev-parse", "--verify", "HEAD^{commit}") if self._has_head() else None
        if not self.dedicated and self._head and checkout != self._head:
            notes.append(
                f"this checkout ({checkout and checkout[:12]}) is not the head of {where} "
                f"({self._head[:12]}): the ledger is {where}'s, manifests are this checkout's"
            )
        return SyncResult(self._head, len(remote), bool(added), added, checkout, tuple(notes))

    def _has_head(self) -> bool:
        return self._git("rev-parse", "--verify", "-q", "HEAD^{commit}").returncode == 0

    def _why_not_fast_forward(self, local: bytes, remote: bytes) -> str:
        where = f"{self.remote}/{self.branch}"
        nothing = "Nothing was planned or sent."
        if local.startswith(remote):
            first, last = _count(remote) + 1, _count(local)
            return (
                f"{self.file} has {'record' if first == last else 'records'} {first}..{last} that "
                f"{where} lacks: an earlier apply "
                f"on this machine did not push them, or they were written by hand. {nothing} "
                f"If they record calls that were made, commit and push the file to {self.branch}; "
                f"otherwise take the remote's: git fetch {self.remote} {self.branch} && "
                f"git checkout FETCH_HEAD -- {self.rel_path}"
            )
        line = _first_difference(local, remote)
        head = self._blob("HEAD") if self._has_head() else None
        edited = head is not None and not local.startswith(_whole_lines(head))
        why = (
            "the file has uncommitted changes that are not appends (the ledger is append-only)"
            if edited
            else "each holds records the other lacks"
        )
        return (
            f"{self.file} and {where} differ from line {line}: {why}. {nothing} Take the remote's "
            f"ledger (git fetch {self.remote} {self.branch} && git checkout FETCH_HEAD -- "
            f"{self.rel_path}); records only in the local file describe calls the remote does not "
            "know of: check them with `reconcile ledger show` and settle them with "
            "`reconcile ledger resolve` after the remote's."
        )

    def _write_local(self, data: bytes) -> None:
        """Replace the local ledger file atomically (a crash leaves the old or the new)."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.file.name}.", dir=self.file.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.file)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise GitSyncError(f"{self.file}: cannot write the ledger: {exc.strerror}") from None
        dfd = os.open(self.file.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def reset_to_remote(self) -> None:
        """Drop every local record the remote lacks (after `LedgerMoved`: unsent intents),
        so the caller can re-plan on the remote's ledger."""
        self._require_sync()
        self._write_local(self._remote_bytes)
        self._base = self._remote_bytes

    # --- publish -------------------------------------------------------------------

    def publish(self, message: str) -> str | None:
        """Push the local ledger as one commit on the branch head last fetched.

        The push is the compare-and-swap: if the branch moved but its ledger did not
        (a manifest merge), commit again on the new head and retry; if its ledger moved
        (another apply appended), raise `LedgerMoved`: send nothing, `reset_to_remote`,
        and re-plan. Returns the pushed commit (None if there was nothing to push).
        """
        return self._publish(message, rechain=False, drop_from_seq=None, hold=True)

    def publish_final(self, message: str, *, drop_from_seq: int | None = None) -> str | None:
        """Like `publish`, but when another apply appended meanwhile, re-append this run's
        records (same fields and time, new seq/prev/hash) after the remote's tail and push
        that: records of calls already made are never lost. Records from local seq
        `drop_from_seq` on (intents never sent) are dropped instead of re-appended."""
        return self._publish(message, rechain=True, drop_from_seq=drop_from_seq, hold=False)

    def _require_sync(self) -> None:
        if not self._fetched:
            raise GitSyncError("internal: publish before sync")

    def _publish(self, message: str, *, rechain: bool, drop_from_seq: int | None, hold: bool) -> str | None:
        """Push the ledger; `hold` writes (or renews) this run's lease, else removes it."""
        self._require_sync()
        local = self._local()
        if drop_from_seq is not None:
            local = self._drop_from(local, drop_from_seq)
        if not local.startswith(self._base):
            raise LedgerBehind(self._why_not_fast_forward(local, self._base))
        for _ in range(MAX_ATTEMPTS):
            ours = self._remote_lease is not None and self._remote_lease.run == self.run
            if local == self._base and not hold and not ours:
                return self._head  # nothing of ours to push, and no lease of ours to remove
            if self._remote_bytes != self._base:
                if not rechain:
                    raise LedgerMoved(
                        f"{self.remote}/{self.branch} moved: another apply appended to the ledger "
                        "since this run read it. Nothing was sent."
                    )
                local = self._rechain()
            # Holding: write or renew ours. Not holding: remove ours, leave another run's.
            lease = self._our_lease() if hold else (None if ours else _KEEP)
            commit = self._commit(local, message, lease)
            if self._push(commit):
                self._head, self._remote_bytes, self._base = commit, local, local
                self._remote_lease = Lease.parse(self._our_lease()) if hold else None
                return commit
            # Moved meanwhile. If only other files changed (a merge), the next round
            # commits the same ledger on the new head.
            self._refresh()
        raise GitSyncError(
            f"{self.remote}/{self.branch} kept moving: the ledger was not pushed after "
            f"{MAX_ATTEMPTS} attempts; {self.file} keeps its records, run apply again to push them"
        )

    def _drop_from(self, local: bytes, seq: int) -> bytes:
        keep = max(seq - 1, _count(self._base))
        data = b"".join(local.splitlines(keepends=True)[:keep])
        self._write_local(data)
        return data

    def _rechain(self) -> bytes:
        """The remote's ledger, then this run's records (those past the base it extended)
        appended again after its tail, keeping their times; an `intent` reference to one of
        them follows its new seq (`LedgerWriter.append_copies`)."""
        ours = ledger_io.read(self.file).records[_count(self._base) :]
        self._write_local(self._remote_bytes)
        self._base = self._remote_bytes
        with ledger_io.LedgerWriter(ledger_io.read(self.file)) as writer:
            writer.append_copies(ours)
        ledger_io.read(self.file)  # the re-chained file must verify before it is pushed
        return self._local()

    def _commit(self, data: bytes, message: str, lease: bytes | None) -> str:
        """A commit of `data` at the ledger's path on the fetched head, with `lease` beside it
        (None: no lease file; `_KEEP`: the head's as it is); no work tree touched."""
        with tempfile.TemporaryDirectory(prefix="reconcile-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if self._head is None:
                self._ok("read-tree", "--empty", env=env)
            else:
                self._ok("read-tree", self._head, env=env)
            blob = self._ok("hash-object", "-w", "--no-filters", "--stdin", stdin=data)
            self._ok("update-index", "--add", "--cacheinfo", f"100644,{blob},{self.rel_path}", env=env)
            if lease == _KEEP:
                pass
            elif lease is not None:
                held = self._ok("hash-object", "-w", "--no-filters", "--stdin", stdin=lease)
                self._ok("update-index", "--add", "--cacheinfo", f"100644,{held},{self.lease_path}", env=env)
            else:
                self._ok("update-index", "--force-remove", self.lease_path, env=env)
            tree = self._ok("write-tree", env=env)
        parents = ["-p", self._head] if self._head else []
        body = f"{message}\n\n{SKIP_CI}\n".encode()
        return self._ok("-c", "commit.gpgsign=false", "commit-tree", tree, *parents, stdin=body)

    def _push(self, commit: str) -> bool:
        """True if pushed; False if the branch moved (not a fast-forward); else raise."""
        refspec = f"{commit}:refs/heads/{self.branch}"
        options = [f"--push-option={o}" for o in self.push_options]
        proc = self._git("push", "--porcelain", "--no-verify", *options, self.remote, refspec)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode != 0 and options and "does not support push options" in text:
            proc = self._git("push", "--porcelain", "--no-verify", self.remote, refspec)
            text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode == 0:
            return True
        if re.search(r"\[rejected\].*\((non-fast-forward|fetch first|stale info)\)", text):
            return False
        if _lost_ref_update(text):  # another push won the ref at the same moment: a lost CAS
            return False
        if _is_permission(text):
            raise PushRefused(self._refusal(text))
        raise GitSyncError(
            f"cannot push the ledger to {self.remote}/{self.branch} (network, credentials or the "
            f"remote itself; not a permission refusal): {redact(text.strip())}"
        )

    def _refusal(self, text: str) -> str:
        return (
            f"{self.remote} refused the ledger push to {self.branch} for lack of permission "
            f"(a protected branch or a server hook):\n  {redact(text.strip())}\n"
            "Fix one of: GitHub: give the workflow `permissions: contents: write` and let "
            "github-actions (or the bot's token) bypass the branch protection rule of "
            f"{self.branch}; GitLab: allow the push token's role (Maintainer) to push to the "
            f"protected branch {self.branch}. Or keep the ledger on a dedicated, unprotected "
            "branch: `ledger: {git: {branch: reconcile/ledger}}` in reconcile.yaml."
        )


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


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    return redact(proc.stderr.decode(errors="replace").strip()) or f"exit status {proc.returncode}"


def _first_difference(a: bytes, b: bytes) -> int:
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), start=1):
        if x != y:
            return number
    return min(_count(a), _count(b)) + 1
