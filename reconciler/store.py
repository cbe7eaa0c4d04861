"""One door to the applied ledger, in a file or kept in git (Terraform's `Backend.StateMgr()`).

`open_store(cfg, flag)` decides, once, which ledger a command uses and whether it lives
in git (reconcile.yaml's `ledger.git`): plan, apply, show, report, resolve, migrate and
restore all go through it, so no two of them can read different ledgers.

    store.read(skim=, pr_base=) -> Ledger    plan, ledger show, report and verify: with the ledger
                                             in git, the anchored ledger as its branch holds
                                             it, read in memory (invariant 13), plus the
                                             pull request's checks; else the local file
    with store.open_write(note, missing) as w:
                                             apply, ledger resolve: the lock (a missing local
                                             ledger is `missing(path)`, before it); apply's
                                             `w.session()` syncs and publishes (`gitsync.Session`),
                                             resolve's `w.refuse_if_leased()` and
                                             `w.publish_final()`
    store.rewrite(note) -> MigrateResult     ledger migrate: sync, rewrite, publish, one lock
    store.restore(note) -> Restored          ledger restore

What the commands need of git around the ledger lives here too, so the CLI runs none:
`check_git_not_turned_off`, `base_config` (reconcile.yaml as a pull request's base has
it) and `base_from_env`. How the ledger gets to git is `gitsync/`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import ledger as ledger_mod
from reconciler.errors import (
    ApplyRefused,
    ConfigError,
    GitSyncError,
    Hint,
    LedgerMoved,
    LedgerNotAnchored,
    ReconcilerError,
)

if TYPE_CHECKING:
    from reconciler.config import RepoConfig
    from reconciler.gitsync import LedgerRepo, Session
    from reconciler.gitsync.repo import Restored

DEFAULT_LEDGER = "applied-ledger.jsonl"
# The remote a pull request's base commit is fetched from when the clone lacks it: the
# checkout's own, which CI set up; never one the pull request's reconcile.yaml names.
CHECKOUT_REMOTE = "origin"

NOTHING_TO_RESTORE = (
    "reconcile.yaml does not keep the ledger in git (ledger.git): there is no anchor to restore from"
)

Note = Callable[[str], None]


def ledger_path(flag: str | None, cfg: RepoConfig | None) -> str:
    """`--ledger` (or RECONCILE_LEDGER, or a saved plan's), else reconcile.yaml's, else the default."""
    if flag:
        return flag
    return str(cfg.ledger_path) if cfg is not None else DEFAULT_LEDGER


def open_store(cfg: RepoConfig | None, flag: str | None) -> LedgerStore:
    """The ledger a command uses, built once from reconcile.yaml and the ledger it was given.

    With the ledger in git, the ledger given must be reconcile.yaml's, however it is
    spelled and wherever the command runs: a ledger kept in git is never skipped."""
    path = ledger_path(flag, cfg)
    if cfg is None or cfg.git is None:
        return LedgerStore(path)
    from reconciler.gitsync import LedgerRepo

    if Path(path).resolve() != cfg.ledger_path.resolve():
        raise ConfigError(
            f"{path} is not the ledger {cfg.path} keeps in git ({cfg.ledger_path}); nothing was sent.",
            hint=Hint.LEDGER_IN_GIT,
        )
    repo = LedgerRepo(
        Path.cwd(),
        cfg.ledger_path,
        remote=cfg.git.remote,
        branch=cfg.git.branch,
        lease_seconds=cfg.git.lease_seconds,
    )
    return LedgerStore(path, repo)


class LedgerStore:
    """The applied ledger of one command: the file at `path`, kept on a branch when `repo`."""

    def __init__(self, path: str, repo: LedgerRepo | None = None) -> None:
        self.path = path
        self._repo = repo

    @property
    def in_git(self) -> bool:
        return self._repo is not None

    @property
    def where(self) -> str:
        """Where the ledger lives: `origin/main`, or the file."""
        return self._repo.where if self._repo is not None else self.path

    # --- reading ---------------------------------------------------------------------------

    def read(
        self, *, skim: ledger_mod.Skim | None = None, pr_base: str | None = None, check_seals: bool = False
    ) -> ledger_mod.Ledger:
        """The ledger to plan from, show, report or verify: with the ledger in git, as its
        branch holds it, checked against reconcile's anchor (a checkout may be behind, and a
        cut or forged ledger is refused: invariant 13), read in memory; else the local file.
        In a pull request (`pr_base`), a change to the ledger or its lease fails.
        `check_seals`: each sealed file's summary is checked too (`ledger verify`)."""
        files, warnings = self._published(pr_base)
        led = ledger_mod.read(self.path, skim=skim, check_seals=check_seals, files=files)
        led.warnings[:0] = warnings
        return led

    def _published(self, pr_base: str | None) -> tuple[dict[str, bytes] | None, list[str]]:
        """The anchored ledger's files by paths beside the main file (None: read the local
        file), and what to warn of."""
        repo = self._repo
        if repo is None:
            return None, []
        from reconciler.gitsync import review

        warnings = []
        data: dict[str, bytes] | None
        try:
            data = repo.read_ledger_files()
        except LedgerNotAnchored:
            raise
        except GitSyncError as exc:
            if pr_base is not None:
                raise
            warnings.append(
                f"cannot read the ledger from {repo.where} ({exc}); planning from {self.path}, which may be behind"
            )
            data = None
        if pr_base is not None:
            review.check_pull_request(repo.git, repo.remote_target, pr_base, repo.rel_path, data)
        if data is None:
            return None, warnings
        return _named(data, Path(repo.rel_path).name, Path(self.path).name), warnings

    # --- writing ---------------------------------------------------------------------------

    @contextmanager
    def open_write(
        self,
        note: Note,
        missing: Callable[[str], ReconcilerError],
        *,
        lock_timeout: float | None = None,
        wait: float | None = None,
    ) -> Iterator[Writer]:
        """The ledger held for writing (the `LedgerLock`; `lock_timeout` None: refuse a held
        lock at once). With the ledger in git, `Writer.session()` syncs and publishes;
        `wait`: how long a session waits out another run's live lease (None: as long as a
        runner that died would hold it). A local ledger that does not exist is refused with
        `missing(path)` before its lock, so a mistyped path is left as it was (no folder, no
        lock file); with the ledger in git the file may come with the sync: the caller asks."""
        if self._repo is None and not Path(self.path).exists():
            raise missing(self.path)
        with ledger_mod.LedgerLock(self.path, timeout=lock_timeout or 0):
            yield Writer(self.path, self._repo, note, wait)

    def rewrite(self, note: Note, *, lock_timeout: float | None = None) -> ledger_mod.MigrateResult:
        """`ledger migrate` under one lock: sync with the branch (the remote's ledger is the
        one migrated), rewrite in format v3, publish the rewrite (the anchor moves with it),
        and leave the checkout where `git pull` works."""
        with ledger_mod.LedgerLock(self.path, timeout=lock_timeout or 0):
            repo = self._repo
            if repo is not None:
                for line in repo.sync().notes:
                    note(line)
            result = ledger_mod.migrate(self.path, locked=True)
            if repo is None or result.backup is None:
                return result
            try:
                commit = repo.publish_rewrite(f"reconcile: ledger migrated ({result.records:,} records)")
            except LedgerMoved as exc:
                repo.reset_to_remote()
                raise LedgerMoved(
                    f"{exc}: {self.path} is now as {repo.where} holds it, and the original is kept as "
                    f"{result.backup}; move that away, then run `reconcile ledger migrate` again"
                ) from exc
            self._follow(commit, note)
        return result

    def restore(self, note: Note) -> Restored:
        """`ledger restore`: the ledger every apply must extend, put back on its branch
        (`LedgerRepo.restore`), and the checkout left where `git pull` works."""
        repo = self._repo
        if repo is None:
            raise ReconcilerError(NOTHING_TO_RESTORE)
        with ledger_mod.LedgerLock(self.path):
            done = repo.restore()
            self._follow(done.head, note)
        return done

    def _follow(self, commit: str | None, note: Note) -> None:
        assert self._repo is not None
        left = self._repo.follow(commit)
        if left is not None:
            note(left)


class Writer:
    """What a command holding the ledger's lock may do with it (`LedgerStore.open_write`)."""

    def __init__(self, path: str, repo: LedgerRepo | None, note: Note, wait: float | None) -> None:
        self.path = path
        self._repo = repo
        self._note = note
        self._wait = wait

    def session(self) -> Session | None:
        """With the ledger in git, one apply attempt's choreography (`gitsync.Session`:
        sync before planning, announce, renew, finish, abort); else None."""
        if self._repo is None:
            return None
        from reconciler.gitsync import Session

        return Session(self._repo, self._note, wait=self._wait)

    def refuse_if_leased(self) -> None:
        """`ledger resolve`: synced with the branch, and refused while another run sends."""
        session = self.session()
        if session is not None:
            session.refuse_if_leased()

    def publish_final(self, message: str) -> None:
        """Every record on the remote before returning (nothing to do off git)."""
        if self._repo is not None:
            self._repo.publish_final(message)


def lease_stop(session: Session | None) -> threading.Event | None:
    """apply's `stop` event; with the ledger in git, one that also reads as set once the
    run's lease may have been taken over (`gitsync.LeaseStop`: asked right before each
    irreversible call, after the read before it; invariant 9)."""
    if session is None:
        return None
    from reconciler.gitsync import LeaseStop

    return LeaseStop(session)


def _named(files: Mapping[str, bytes], name: str, as_name: str) -> dict[str, bytes]:
    """`files` (paths beside the main file `name`) as if the main file were `as_name` (a
    `--ledger` symlink to reconcile.yaml's ledger is spelt its own way)."""
    if name == as_name:
        return dict(files)
    return {(as_name + p[len(name) :] if p.startswith(name) else p): d for p, d in files.items()}


# --- git around the ledger, for the commands -----------------------------------------------


def check_git_not_turned_off(cfg: RepoConfig | None, note: Note) -> None:
    """A ledger not kept in git, in a repository whose ledger is (its remote has reconcile's
    anchor), is refused everywhere: in CI its records would stay on a disposable runner, and
    on a workstation the checks of what was reviewed would be skipped. In CI without an
    anchor, it is loud."""
    if cfg is not None and cfg.git is not None:
        return
    from reconciler.gitsync import ANCHOR_REF, Git

    git = Git(Path.cwd())
    anchored = False
    if git.succeeds("rev-parse", "--git-dir") and git.succeeds("remote", "get-url", "origin"):
        try:
            anchored = bool(git.ls_remote("origin", ANCHOR_REF))
        except GitSyncError:  # an unreachable origin proves nothing either way
            anchored = False
    where = f"{cfg.path} turns ledger.git off" if cfg is not None else "there is no reconcile.yaml"
    if anchored:
        raise ApplyRefused(
            f"{where}, but this repository's ledger is kept in git (origin has {ANCHOR_REF}); "
            "nothing was sent. Off git, the records would stay in this directory (on a CI runner: "
            "lost with it, and the next run clears everything again) and nothing would check that "
            "the manifests were reviewed. Keep ledger.git on"
        )
    if os.environ.get("CI") != "true":
        return
    note(
        f"{where}: in CI the ledger's records stay on this runner and are lost with it; "
        "keep the ledger in git (ledger.git in reconcile.yaml, what `reconcile init` writes)"
    )


def base_config(cfg: RepoConfig | None, base: str) -> RepoConfig | None:
    """reconcile.yaml as the pull request's base commit has it (DESIGN "Reviewed is what
    gets applied"). The base is fetched, when the clone lacks it, from the checkout's own
    remote: nothing the pull request wrote decides where git connects."""
    import tempfile
    from dataclasses import replace

    from reconciler.config import CONFIG_FILE, load_config
    from reconciler.gitsync import Git
    from reconciler.gitsync.review import base_file

    git = Git(Path.cwd())
    top = git.toplevel()
    where = cfg.path.resolve() if cfg is not None else top / CONFIG_FILE
    rel = where.relative_to(top).as_posix()
    data = base_file(git, CHECKOUT_REMOTE, base, rel)
    if data is None:
        return None
    with tempfile.TemporaryDirectory(prefix="reconcile-base-") as tmp:
        path = Path(tmp) / CONFIG_FILE
        path.write_bytes(data)
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            raise ConfigError(
                f"{rel} as the pull request's base {base[:12]} has it: {str(exc).replace(str(path), rel)}"
            ) from exc
    if loaded is None:
        return None
    return replace(loaded, path=where, ledger_path=where.parent / loaded.ledger_path.relative_to(path.parent))


def base_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The commit a pull request's changes are relative to: GitLab's merge-request diff
    base, or the base of a GitHub `pull_request` event (the merge commit's first parent).
    CI's own variables only, no git: a plan outside CI imports nothing of `gitsync`."""
    env = os.environ if env is None else env
    if env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA"):
        return env["CI_MERGE_REQUEST_DIFF_BASE_SHA"]
    if env.get("GITHUB_EVENT_NAME", "").startswith("pull_request") and env.get("GITHUB_EVENT_PATH"):
        return _event_base(env["GITHUB_EVENT_PATH"])
    return None


EVENT_MAX_BYTES = 25 << 20  # GitHub's event payloads are at most 25 MB


def _event_base(path: str) -> str | None:
    """The base commit of a pull-request event file. A file that cannot be read as one
    (a device, nesting past the decoder, not JSON) is an error: taken as "no pull request",
    it would let the pull request's own settings apply."""
    from reconciler import yamlsource

    try:
        event = yamlsource.loads_json(yamlsource.read_regular(path, EVENT_MAX_BYTES))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReconcilerError(
            f"GITHUB_EVENT_PATH {path}: cannot read the event: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:
        raise ReconcilerError(f"GITHUB_EVENT_PATH {path}: not a JSON event ({exc})") from exc
    pr = event.get("pull_request") if isinstance(event, dict) else None
    base = pr.get("base") if isinstance(pr, dict) else None
    sha = base.get("sha") if isinstance(base, dict) else None
    return sha if isinstance(sha, str) else None
