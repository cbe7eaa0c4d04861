"""The sync/publish protocol between the local ledger file and its branch on a remote.

CI runners are disposable, so in CI the ledger's truth is its file on a remote branch
(DESIGN "The ledger in git (CI)"), checked against the anchor (`remote.py`):

- `sync()` before planning: the branch's ledger must be exactly the one this tool last
  published (`LedgerNotAnchored` otherwise: invariant 13); then the local file is
  fast-forwarded to it, or refused (`LedgerBehind`) when that is not a pure append.
- `publish()` after appending `pause`/`intent` records and before the calls they
  announce: the push is the compare-and-swap between racing applies (invariants 9 and
  11); a remote ledger that moved meanwhile is `LedgerMoved`, and nothing is sent.
- `publish_final()` before exiting 0: the same push, but when another apply appended
  meanwhile this run's records (calls already made) are re-chained after its tail.
- `publish()` again while sending renews this run's lease, pushing the records written
  since (the session's renewals, `RENEWED`).
- `restore()` puts the anchored ledger back on the branch, for a person to run after a
  cut, a force-push or a deleted branch.

Every push moves the branch and the anchor together, only forward; nothing here
force-pushes.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path

from typing_extensions import assert_never

from reconciler import ledger as ledger_io
from reconciler.actor import local_user
from reconciler.errors import (
    GitSyncError,
    LedgerBehind,
    LedgerMoved,
    LedgerNotAnchored,
    PushRefused,
    ReconcilerError,
)
from reconciler.gitsync import explain
from reconciler.gitsync._git import DEFAULT_TIMEOUT, Git, GitTimeout, Identity
from reconciler.gitsync.checkout import fast_forward
from reconciler.gitsync.lease import Here, Holding, Lease, LeaseWatch, check_seconds, new_lease
from reconciler.gitsync.remote import (
    ANCHOR_REF,
    PUBLISHED_SUBJECT,
    PUSH_OPTIONS,
    Anchor,
    GitRemote,
    Remote,
    RemoteState,
    Version,
    changes,
    extends,
    head_seq,
)
from reconciler.ledger import history
from reconciler.words import plural

MAX_ATTEMPTS = 5
HISTORY = 200  # ledger versions of the branch's history read to find the one to keep
RENEWED = "reconcile: still applying (lease renewed)"  # a renewal's commit message
_ANNOUNCES = frozenset({"pause", "intent", "start"})  # kinds pushed before the call they announce


class _Release(Enum):
    """What a push that does not hold the lease does to the lease file."""

    REMOVE = "remove"  # ours: released
    KEEP = "keep"  # not ours (or none): left as the branch has it


@dataclass(frozen=True)
class Restored:
    """What `restore` put on the branch."""

    head: str | None  # the branch's new head
    records: int  # the restored ledger's last seq
    note: str  # what was restored, and from where


@dataclass(frozen=True)
class SyncResult:
    """What `sync` found and did."""

    remote_head: str | None  # the ledger branch's head commit; None: no such branch yet
    remote_bytes: int  # length of the remote ledger; 0 when the branch has none
    fast_forwarded: bool  # the local file was extended with the remote's records
    records_added: int  # how many records the fast-forward added
    checkout_head: str | None  # the work tree's HEAD commit
    notes: tuple[str, ...] = ()  # lines worth showing the user (fast-forward, first anchor)


Files = dict[str, bytes]  # a ledger's files (main, segments, ID lists) by repository path


class LedgerRepo:
    """The ledger file of a git work tree, kept on `branch` of `remote`.

    `ledger` is the ledger file's path (absolute, or relative to `worktree`).
    `dedicated` says the branch holds only the ledger (e.g. `reconcile/ledger`) rather
    than being the branch the manifests are checked out from; by default any branch but
    `main`/`master` is dedicated. `transport` replaces the git remote (tests:
    `MemoryRemote`, with `rel_path` given). Use only while holding the `LedgerLock`.
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
        clock: Callable[[], float] = time.monotonic,
        transport: Remote | None = None,
        rel_path: str | None = None,
        here: Here | None = None,
    ) -> None:
        self.worktree = Path(worktree)
        self.file = self.worktree / ledger
        self.branch = branch
        self.dedicated = branch not in ("main", "master") if dedicated is None else dedicated
        self.lease_seconds = check_seconds(lease_seconds)  # the one bound (config.LEASE_SECONDS_*)
        # Each git call must end well inside the lease (a hung remote must not let a run
        # go on sending past it): a third of it, at most the default.
        self.git = Git(worktree, identity, timeout=min(DEFAULT_TIMEOUT, max(5.0, self.lease_seconds / 3)))
        self.remote: Remote = transport or GitRemote(self.git, remote, push_options)
        self.remote_target = remote  # for git itself: a name, or a URL that may carry a token
        self._rel = rel_path
        self.run = uuid.uuid4().hex
        self._since = ledger_io.utc_now()
        self._seen: RemoteState | None = None  # the last read of the remote
        self._remote_files: Files = {}  # the (verified) ledger of `_seen`
        self._base: Files = {}  # the remote ledger the local one extends
        self._lease: Lease | None = None  # ours, while held
        self._here = here  # where this runner runs (tests: a simulated host); None: this process
        self.watch = LeaseWatch(clock, here)
        self.holding = Holding(self.lease_seconds, clock)
        self._checked = transport is not None
        self._publishing = threading.Lock()  # the heartbeat thread and the run both publish

    # --- names ---------------------------------------------------------------------

    @cached_property
    def rel_path(self) -> str:
        """The ledger's path inside the repository, as git names it."""
        if self._rel is not None:
            return self._rel
        self._check_repository()
        top = self.git.toplevel()
        self.git.worktree = top  # index and status paths are the repository's, whatever the cwd
        try:
            return self.file.resolve().relative_to(top).as_posix()
        except ValueError as exc:
            raise GitSyncError(f"{self.file} is not inside the git repository at {top}") from exc

    @property
    def lease_path(self) -> str:
        return self.rel_path + ".lease"

    @property
    def where(self) -> str:
        return f"{self.remote.name}/{self.branch}"

    @property
    def _place(self) -> explain.Place:
        return explain.Place(self.remote.name, self.branch, self.rel_path)

    def _check_repository(self) -> None:
        """A git repository with the remote, or an error that says what to do instead of
        git's own words (reconcile.yaml's `ledger.git` is what asked for git)."""
        if self._checked:
            return
        off = "or set ledger.git.enabled: false in reconcile.yaml to keep the ledger in this directory only"
        is_url = "://" in self.remote_target or ":" in self.remote_target
        # a remote's URL is found only in a git repository: one question when all is well
        if not is_url and self.git.succeeds("remote", "get-url", self.remote_target):
            self._checked = True
            return
        if not self.git.succeeds("rev-parse", "--git-dir"):
            raise GitSyncError(
                f"{self.worktree.resolve()} is not a git repository, but reconcile.yaml keeps the "
                f"ledger in git (ledger.git): run this in a clone of the manifests repository, {off}"
            )
        if not is_url:
            raise GitSyncError(
                f"this repository has no remote {self.remote.name!r}, but reconcile.yaml keeps the ledger "
                f"on {self.where} (ledger.git): add it (git remote add {self.remote.name} URL), "
                f"name another in ledger.git.remote, {off}"
            )
        self._checked = True

    # --- reading -------------------------------------------------------------------

    @property
    def _sidecar(self) -> str:
        return self.rel_path + ".d"

    def _read(self) -> RemoteState:
        self._check_repository()
        return self.remote.read(self.branch, [self.rel_path, self.lease_path], [self._sidecar])

    def _local(self) -> Files:
        """The local ledger's files (whole records only), by their paths in the repository."""
        top = posixpath.dirname(self.rel_path)
        try:
            files = ledger_io.ledger_files(self.file)
        except OSError as exc:
            raise GitSyncError(f"{self.file}: cannot read the ledger: {exc.strerror}") from exc
        return {posixpath.join(top, k): v for k, v in files.items()}

    def _write_local(self, files: Files) -> None:
        """Make the local ledger exactly `files` (repository paths)."""
        local = self._beside_main(files)
        local.setdefault(self.file.name, b"")
        ledger_io.write_files(self.file, local)

    def _verified(self, state: RemoteState, notes: list[str]) -> Files:
        """The branch's ledger, once it is shown to be exactly the anchored one (invariant
        13); with no anchor yet (the first publish makes it), the branch's as it is."""
        anchor = state.anchor
        on_branch = state.ledger(self.rel_path)
        if anchor is None:
            if state.head is None and not self.dedicated:
                raise GitSyncError(
                    f"{self.remote.name} has no branch {self.branch}: push it first, or set "
                    "ledger.git.branch in reconcile.yaml to the branch that should hold the ledger"
                )
            if state.head is None:
                notes.append(
                    f"{self.where} does not exist yet: the first publish creates it with this ledger"
                )
            else:
                self._no_anchor_check(state.head, on_branch)
            if state.head is not None and any(on_branch.values()):
                notes.append(
                    f"{self.where}: no anchor ({ANCHOR_REF}) yet; this run's first push makes one, and "
                    "from then on the ledger may only grow"
                )
            return on_branch
        anchored = self._moved(anchor.ledger, anchor.ledger_path)
        if state.head is None and anchor.branch != self.branch and self._local() == anchored:
            # moved to a new branch, carrying its history
            notes.append(f"{self.where} does not exist yet: the first publish creates it with this ledger")
            return anchored
        if state.head is None or on_branch != anchored or state.file(self.lease_path) != anchor.lease:
            raise LedgerNotAnchored(self._not_anchored(state, anchor))
        if anchor.ledger_path != self.rel_path or anchor.branch != self.branch:
            notes.append(
                f"the ledger moved from {anchor.branch}:{anchor.ledger_path} to {self.branch}:{self.rel_path} "
                "with its history; the next push anchors it there"
            )
        return anchored

    def _no_anchor_check(self, head: str, on_branch: Files) -> None:
        """No anchor (never published, or the ref was deleted or not copied with the
        repository): the branch's ledger must extend every version reconcile published on
        it. Else records were cut while nothing guarded them, and the version to keep is
        named: always the same one, however often it is asked."""
        keep = self.version_to_keep(head)
        if keep is None or extends(on_branch, self._ledger_of(keep)):
            return
        raise LedgerNotAnchored(explain.no_anchor_cut(self._place, keep, self._ledger_of(keep)))

    def version_to_keep(self, head: str | None) -> Version | None:
        """The ledger to keep, by the branch's own history: the version reconcile published
        on the branch that extends every other version it published there (each of them was
        once what every apply read). None when the history read holds none. When none
        extends all (the history itself was cut and then appended to), a person must
        choose: `LedgerNotAnchored` names the two."""
        if head is None:
            return None
        published = [v for v in self.remote.ledger_versions(head, self.rel_path, HISTORY) if v.by_reconcile]
        if not published:
            return None
        # The one that extends all has the most records; the newest of those, if several.
        keep = max(reversed(published), key=lambda v: head_seq(self._ledger_of(v), self.rel_path))
        for v in published:
            if not extends(self._ledger_of(keep), self._ledger_of(v)):
                raise LedgerNotAnchored(explain.histories_diverge(self._place, keep.commit, v.commit))
        return keep

    def _ledger_of(self, v: Version) -> Files:
        return {p: d for p, d in v.files.items() if p != self.lease_path}

    def _moved(self, files: Files, ledger_path: str) -> Files:
        """`files` of a ledger at `ledger_path`, as they would be at this ledger's path."""
        if ledger_path == self.rel_path:
            return dict(files)
        return {self.rel_path + p[len(ledger_path) :]: d for p, d in files.items()}

    def _anchor_moved(self, state: RemoteState, anchor: Anchor) -> str | None:
        """When the anchor does not extend the ledger the branch's history says reconcile
        published: what happened, who made its commit and when, and the version to keep.
        The anchor is a ref branch protection does not cover: this is never a reason to cut."""
        try:
            keep = self.version_to_keep(state.head)
        except LedgerNotAnchored as exc:
            return str(exc)
        anchored = self._moved(anchor.ledger, anchor.ledger_path)
        if keep is None or extends(anchored, self._ledger_of(keep)):
            return None
        return explain.anchor_moved(self._place, anchor, anchored, keep, self._ledger_of(keep))

    def _not_anchored(self, state: RemoteState, anchor: Anchor) -> str:
        moved = self._anchor_moved(state, anchor)
        if moved is not None:
            return moved
        want = self._moved(anchor.ledger, anchor.ledger_path)
        culprit = self._culprit(state.head, anchor) if state.head else None
        return explain.not_anchored(
            self._place, state.head, state.ledger(self.rel_path), anchor, want, culprit
        )

    def _culprit(self, head: str, anchor: Anchor) -> str | None:
        """The newest commit after the anchor's that changed the ledger or its lease."""
        try:
            return (
                self.remote.changed_by(anchor, head, self.rel_path)
                or self.remote.changed_by(anchor, head, self._sidecar)  # a segment or an ID list
                or self.remote.changed_by(anchor, head, self.lease_path)
            )
        except GitSyncError:
            return None

    def check_lease(self, state: RemoteState) -> Lease | None:
        where = f"{self.where}:{self.lease_path} (commit {(state.head or '?')[:12]})"
        return Lease.parse(state.file(self.lease_path), where)

    # --- sync ----------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Bring the local ledger up to the remote branch's, before planning.

        The branch's ledger must be the anchored one. Equal to the local ledger: nothing
        to do. It extends the local ledger: the local one becomes it (fast-forward). The
        local ledger has records it lacks, or they differ: `LedgerBehind`, nothing changed.
        """
        state = self._read()
        notes: list[str] = []
        remote = self._verified(state, notes)
        lease = self.check_lease(state)
        self.watch.observe(None if lease is None or lease.run == self.run else lease)
        local = self._local()
        added = 0
        if local != remote and self._left_by_a_dead_run_here(local, remote, lease):
            first, last = head_seq(remote, self.rel_path) + 1, head_seq(local, self.rel_path)
            notes.append(
                f"{self.file}: records {first}..{last} are outcomes of calls a run on this host made "
                f"({lease.describe() if lease else ''}, no longer running) before it could push them; "
                f"this run publishes them to {self.where} with its first push"
            )
        elif local != remote and any(remote.values()):
            if ledger_io.extension_problem(remote, local) is not None:
                raise LedgerBehind(self._why_not_fast_forward(local, remote))
            added = head_seq(remote, self.rel_path) - head_seq(local, self.rel_path)
            self._write_local(remote)
            notes.append(
                f"{self.file}: fast-forwarded to {self.where} ({plural(added, 'record')} this checkout lacked)"
            )
        elif local != remote and any(local.values()):
            raise LedgerBehind(self._why_not_fast_forward(local, remote))
        self._seen, self._remote_files, self._base = state, remote, remote
        checkout = self.git.head() if self._rel is None else None
        if not self.dedicated and state.head and checkout and checkout != state.head:
            notes.append(
                f"this checkout ({checkout[:12]}) is not the head of {self.where} ({state.head[:12]}): "
                f"the ledger is {self.where}'s, manifests are this checkout's"
            )
        size = sum(len(d) for d in remote.values())
        return SyncResult(state.head, size, bool(added), added, checkout, tuple(notes))

    def _left_by_a_dead_run_here(self, local: Files, remote: Files, lease: Lease | None) -> bool:
        """The local ledger is the remote's plus records a run on this host wrote and died
        before pushing (kill -9, a lost laptop lid): those records are what that run would
        have pushed next, and dropping them would turn deletes that succeeded into in-doubt
        re-sends (DESIGN "never lose the record"). Only when all of it holds: the remote's
        lease is held by a process of this host that no longer runs (`on_this_host_and_dead`:
        nobody else appended since, or the lease would be theirs or gone), the local file
        extends the remote's exactly (same chain, whole records appended), and every record
        appended is an outcome (`delete`, `failed`, `resume`, `seal`...): a `pause`, `intent`
        or `start` the remote lacks announced a call that was never made (invariant 11), so
        such a ledger is refused as before."""
        if lease is None or lease.run == self.run or not lease.on_this_host_and_dead(self._here):
            return False
        base_seq = head_seq(remote, self.rel_path)
        if head_seq(local, self.rel_path) <= base_seq or ledger_io.extension_problem(local, remote):
            return False
        tail = [r for r in ledger_io.read(self.file).records if r.seq > base_seq]
        return bool(tail) and not any(r.kind in _ANNOUNCES for r in tail)

    def _why_not_fast_forward(self, local: Files, remote: Files) -> str:
        head = self.git.blob("HEAD", self.rel_path) if self._rel is None else None
        main = local.get(self.rel_path, b"")
        edited = head is not None and not main.startswith(head[: head.rfind(b"\n") + 1])
        paused = self._left_paused(remote)
        return explain.why_not_fast_forward(
            self._place, self.file, local, remote, edited=edited, paused=paused
        )

    def _left_paused(self, files: Files) -> list[str]:
        """Pipelines `files` (a ledger) says an interrupted run left paused, as
        `org/pipeline (since AT)`: read from a copy, for a refusal's message."""
        if not any(files.values()):
            return []
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / self.file.name
            ledger_io.write_files(copy, self._beside_main(files))
            try:
                records = ledger_io.read(copy).records
            except ReconcilerError:
                return []
        return [f"{r.pipeline[0]}/{r.pipeline[1]} (since {r.at})" for r in history.left_paused(records)]

    def read_ledger_files(self) -> dict[str, bytes]:
        """The anchored ledger as its branch holds it, for `plan`: its files by their paths
        beside the main file (what `ledger.write_files` takes). Changes nothing locally."""
        return self._beside_main(self._verified(self._read(), []))

    def _beside_main(self, files: Files) -> Files:
        """Repository paths -> paths beside the main file (what `ledger.write_files` takes)."""
        top = posixpath.dirname(self.rel_path) or "."
        return {posixpath.relpath(k, top): v for k, v in files.items()}

    def reset_to_remote(self) -> None:
        """Drop every local record the remote lacks (after `LedgerMoved`: unsent intents),
        so the caller can re-plan on the remote's ledger."""
        self._require_sync()
        self._write_local(self._remote_files)
        self._base = self._remote_files

    # --- the lease -----------------------------------------------------------------

    def live_lease(self) -> Lease | None:
        """Another run's lease on the branch as last read, unless this runner has seen it
        unrenewed for its whole length (or its holder is a dead process on this host)."""
        lease = self.check_lease(self._seen) if self._seen is not None else None
        if lease is None or lease.run == self.run or self.watch.expired():
            return None
        return lease

    def lease_left(self) -> float:
        return self.watch.left()

    # --- publish -------------------------------------------------------------------

    def publish(self, message: str) -> str | None:
        """Push the local ledger as one commit on the branch head last read, with this run's
        lease. The compare-and-swap: if the branch moved but not its ledger (a merge), commit
        again on the new head; if its ledger moved (another apply appended), `LedgerMoved`:
        send nothing, `reset_to_remote`, and re-plan. Published again while this run holds
        the lease, it renews it, pushing the records written since."""
        return self._publish(message, rechain=False, drop_from_seq=None, hold=True)

    def publish_final(self, message: str, *, drop_from_seq: int | None = None) -> str | None:
        """Like `publish`, but releasing the lease, and when another apply appended meanwhile,
        re-append this run's records after the remote's tail: records of calls already made
        are never lost. Records from local seq `drop_from_seq` on (intents never sent) are
        dropped instead."""
        return self._publish(message, rechain=True, drop_from_seq=drop_from_seq, hold=False)

    def restore(self) -> Restored:
        """Put back the ledger every apply must extend, for a person, after a cut, a
        force-push, a deleted branch, a planted lease, or a moved anchor. It never cuts: the
        anchored ledger is restored only if it extends every version reconcile published on
        the branch (`version_to_keep`); otherwise that version is, and anchored again."""
        state = self._read()
        keep = self.version_to_keep(state.head)
        anchor = state.anchor
        anchored = self._moved(anchor.ledger, anchor.ledger_path) if anchor else None
        if (
            anchor is not None
            and anchored is not None
            and (keep is None or extends(anchored, self._ledger_of(keep)))
        ):
            ledger, lease = anchored, anchor.lease
            note = "the ledger as reconcile last published it (the anchor)"
        elif keep is not None:
            ledger, lease = self._ledger_of(keep), keep.files.get(self.lease_path)
            why = f"{ANCHOR_REF} was moved and holds less" if anchor else f"{ANCHOR_REF} is missing"
            note = (
                f"the ledger reconcile published in commit {keep.commit[:12]}, the one every version it "
                f"published on {self.branch} is a part of ({why}); the anchor now holds it again"
            )
        else:
            raise GitSyncError(
                f"{self.remote.name} has no {ANCHOR_REF}, and {self.where}'s history holds no ledger reconcile "
                "published: there is nothing to restore from"
            )
        files: dict[str, bytes | None] = {**changes(state.ledger(self.rel_path), ledger)}
        files[self.lease_path] = lease
        after = self.remote.publish(
            self.branch,
            state,
            files,
            f"{PUBLISHED_SUBJECT}restore the ledger every apply must extend",
            self.rel_path,
        )
        if after is None:
            raise GitSyncError(f"{self.where} moved while restoring; run it again")
        self._write_local(ledger)
        return Restored(after.head, head_seq(ledger, self.rel_path), note)

    def follow(self, commit: str | None) -> str | None:
        """After a person's command published `commit` (restore, migrate): the checkout
        fast-forwarded to it when that is what `git pull` would do (`checkout.fast_forward`);
        a line for the user when it was left behind."""
        if commit is None or self._rel is not None:
            return None
        is_url = "://" in self.remote_target or ":" in self.remote_target
        tracking = None if is_url else f"refs/remotes/{self.remote_target}/{self.branch}"
        return fast_forward(self.git, commit, self.branch, self.rel_path, tracking)

    def publish_rewrite(self, message: str) -> str | None:
        """Publish a local ledger that rewrites the anchored one record for record (`ledger
        migrate`: same records, another format), moving the anchor to it. The caller has
        checked the rewrite keeps every record; the compare-and-swap still holds: a branch
        that moved but not its ledger (a merge) is committed on again, a ledger that moved
        (another apply appended) is `LedgerMoved`."""
        with self._publishing:
            self._require_sync()
            local = self._local()
            for _ in range(MAX_ATTEMPTS):
                seen = self._seen
                assert seen is not None
                lease = self.live_lease()
                if lease is not None:
                    raise GitSyncError(
                        f"another apply is sending from this ledger ({lease.describe()}); try later"
                    )
                commit = self._push_once(seen, local, message, hold=False)
                if commit is not None:
                    return commit
                self._reread()
                if self._remote_files != self._base:
                    raise LedgerMoved(f"{self.where} moved while publishing the rewritten ledger")
            raise GitSyncError(
                f"{self.where} kept moving: the rewritten ledger was not published after {MAX_ATTEMPTS} attempts"
            )

    def _require_sync(self) -> None:
        if self._seen is None:
            raise RuntimeError("internal: publish before sync")  # a bug (exit 3), not a user's error

    def _publish(self, message: str, *, rechain: bool, drop_from_seq: int | None, hold: bool) -> str | None:
        with self._publishing:
            return self._publish_locked(message, rechain=rechain, drop_from_seq=drop_from_seq, hold=hold)

    def _publish_locked(
        self, message: str, *, rechain: bool, drop_from_seq: int | None, hold: bool
    ) -> str | None:
        self._require_sync()
        if drop_from_seq is not None:
            self._rebuild(lambda r: r.seq < drop_from_seq)
        if rechain:
            self._drop_unannounced()
        local = self._local()
        if local != self._base and ledger_io.extension_problem(local, self._base) is not None:
            raise LedgerBehind(self._why_not_fast_forward(local, self._base))
        for _ in range(MAX_ATTEMPTS):
            seen = self._seen
            assert seen is not None
            if local == self._base and not hold and self._lease is None:
                return seen.head  # nothing of ours to push, and no lease of ours to remove
            if self._remote_files != self._base:
                if not rechain:
                    raise LedgerMoved(
                        f"{self.where} moved: another apply appended to the ledger since this run "
                        "read it. Nothing was sent."
                    )
                local = self._rebuild(onto=self._remote_files)  # re-chained after its tail
            if hold:
                self._refuse_a_live_lease()
            commit = self._push_once(seen, local, message, hold)
            if commit is not None:
                return commit
            self._reread()  # moved meanwhile; if only other files changed, commit again on it
        raise GitSyncError(
            f"{self.where} kept moving: the ledger was not pushed after {MAX_ATTEMPTS} attempts; "
            f"{self.file} keeps its records, run apply again to push them"
        )

    def _refuse_a_live_lease(self) -> None:
        """Taking or renewing the lease over another run's live one would let two runs send
        at once (invariant 9): the remote moved to a lease this runner has not seen run out."""
        assert self._seen is not None
        lease = self.check_lease(self._seen)
        if lease is None or lease.run == self.run:
            return
        self.watch.observe(lease)
        if not self.watch.expired():
            raise LedgerMoved(
                f"{self.where}: another apply holds the lease ({lease.describe()}). Nothing was sent."
            )

    def _reread(self) -> None:
        state = self._read()
        # a ledger cut or forged meanwhile is refused, not re-chained over
        self._remote_files = self._verified(state, [])
        self._seen = state

    def _push_once(self, seen: RemoteState, local: Files, message: str, hold: bool) -> str | None:
        lease: Lease | _Release
        if hold:
            lease = (
                self._lease.renewed()
                if self._lease
                else new_lease(self.run, local_user(), self._since, self.lease_seconds, self._here)
            )
        else:  # release ours; never remove a lease another run took over meanwhile
            lease = _Release.REMOVE if self._lease is not None and self._holds(seen) else _Release.KEEP
        files = changes(seen.ledger(self.rel_path), local)
        if not message.startswith(PUBLISHED_SUBJECT):  # how the branch's history tells its versions
            message = PUBLISHED_SUBJECT + message
        if lease is not _Release.KEEP:
            files[self.lease_path] = lease.to_bytes() if isinstance(lease, Lease) else None
        started = self.holding.attempt()
        remote = local  # the remote's ledger once the push landed
        try:
            after = self.remote.publish(self.branch, seen, files, message, self.rel_path)
        except GitTimeout:
            landed = self._landed_anyway(seen, local, files)
            if landed is None:
                raise
            after, remote = landed
        except PushRefused as exc:
            raise PushRefused(explain.push_refused(self._place, str(exc))) from exc
        if after is None:
            return None
        if isinstance(lease, Lease) and not self._holds(after):
            lease = _Release.KEEP  # renewed, then taken over meanwhile: nothing to count on
        self._seen, self._remote_files, self._base = after, remote, local
        self._hold(lease, started)
        return after.head

    def _holds(self, state: RemoteState) -> bool:
        try:
            lease = self.check_lease(state)
        except GitSyncError:
            return False
        return lease is not None and lease.run == self.run

    def _landed_anyway(
        self, seen: RemoteState, local: Files, files: dict[str, bytes | None]
    ) -> tuple[RemoteState, Files] | None:
        """A push that outlived its timeout may still have landed: look before calling it
        failed (else never-sent requests would be left "in doubt" for a person). The remote
        as it now is and its ledger when it did; None when that cannot be shown.

        It landed if the remote holds what it pushed, or, when it pushed records, if the
        remote's ledger extends them (nobody else can have written them): another run may
        have appended since, when this process was stopped mid-push and resumed past its
        lease. Those records count as published: counted as not, the final push would push
        them again, re-chained after the other run's (a `delete` after its start and
        resume, as if the cells were cleared once the pipeline ran again)."""
        try:
            state = self._read()
        except GitSyncError:
            return None
        if all(state.file(p) == d for p, d in files.items()):
            return state, local
        if seen.ledger(self.rel_path) == local:  # a lease alone: whether it landed is unknown
            return None
        try:
            remote = self._verified(state, [])
        except GitSyncError:
            return None
        return (state, remote) if extends(remote, local) else None

    def _hold(self, lease: Lease | _Release, started: float) -> None:
        match lease:
            case Lease():
                self._lease = lease
                self.holding.confirmed(started)
            case _Release.REMOVE:
                self._lease = None
                self.holding.released()
            case _Release.KEEP:
                pass
            case _:
                assert_never(lease)

    def _drop_unannounced(self) -> None:
        """A `start` record is pushed before its call (invariant 11): one the remote never got
        announced a call that was not made, and the `pause` that re-opened its pipeline
        after it says nothing the remote does not already say. Both go before the final
        push. Kept, they would tell the next apply a pipeline is ours to start after the
        run lost its lease and another run took the pipeline over (and started it, and a
        person may have paused it since)."""
        base_seq = head_seq(self._base, self.rel_path)
        ours = [r for r in ledger_io.read(self.file).records if r.seq > base_seq]
        dropped: set[int] = set()
        starting: set[tuple[str, str]] = set()
        for r in ours:
            if r.kind == "start":
                starting.add(r.pipeline)
                dropped.add(r.seq)
            elif r.kind == "pause" and r.pipeline in starting:
                dropped.add(r.seq)
        if dropped:
            self._rebuild(lambda r: r.seq not in dropped)

    def _rebuild(
        self, keep: Callable[[ledger_io.Record], bool] = lambda _r: True, onto: Files | None = None
    ) -> Files:
        """`onto` (default: the base this run extended), then this run's records (those past
        that base) that `keep` accepts, appended again after its tail with their times kept;
        an `intent` reference to one of them follows its new seq (`append_copies`). `onto`
        becomes the new base. The result must verify before it is pushed."""
        base_seq = head_seq(self._base, self.rel_path)
        ours = [r for r in ledger_io.read(self.file).records if r.seq > base_seq and keep(r)]
        if onto is not None:
            self._base = onto
        self._write_local(self._base)
        if not ours:  # the base alone: a remote ledger verified when read, or one this run pushed
            return self._local()
        with ledger_io.LedgerWriter(ledger_io.read(self.file)) as writer:
            writer.append_copies(ours)
        ledger_io.read(self.file)  # the re-chained records verify before they are pushed
        return self._local()
