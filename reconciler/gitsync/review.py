"""Reviewed is what gets applied (DESIGN, invariant 12), and a pull request cannot change
what only `reconcile apply` writes.

- `check_reviewed`: with the ledger in git, apply clears only what the manifests of a
  commit on the remote's branch declare. Uncommitted changes (untracked files too),
  local commits the remote lacks, and another branch's checkout are refused before
  any call, on a workstation as in CI.
- `check_pull_request`: the PR plan job fails when the pull request changes the ledger
  or its lease file (unless it puts back exactly the anchored ledger), and reads
  reconcile.yaml from the base: gateways and credential names never come from the
  pull request (`base_file`). Which commit is the base, CI's variables say
  (`store.base_from_env`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.errors import GitSyncError, ReconcilerError, Unreviewed
from reconciler.gitsync._git import Git, end_of_options, redact
from reconciler.gitsync.remote import ANCHOR_REF, restore_command

_SHOWN = 8


def default_branch(git: Git, remote: str) -> str | None:
    """The remote's default branch (what its HEAD points at), if it says."""
    proc = git.run("ls-remote", "--symref", *end_of_options(remote), "HEAD")
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    return None


def check_reviewed(
    git: Git, remote: str, branch: str, paths: Sequence[str], *, exclude: Sequence[str] = ()
) -> str:
    """The commit whose manifests (`paths`, reconcile.yaml among them) are applied: HEAD,
    clean under `paths` and contained in `remote`/`branch`. `Unreviewed` otherwise."""
    head = git.head()
    if head is None:
        raise Unreviewed("this checkout has no commit: nothing it holds was reviewed. Nothing was sent.")
    top = git.toplevel()
    rel = [_rel(top, p) for p in paths]
    changed = [line for line in git.status(*rel) if _path_of(line) not in set(exclude)]
    if changed:
        listed = "\n".join(f"  {line}" for line in changed[:_SHOWN])
        more = f"\n  ... and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
        which = f"{_path_of(changed[0])} has" if len(changed) == 1 else f"{len(changed):,} files have"
        raise Unreviewed(
            f"{which} changes no commit holds, so nobody reviewed them; nothing was sent:\n"
            f"{listed}{more}\nCommit them, open a pull request, and let CI apply the merge."
        )
    tip = git.ls_remote(remote, f"refs/heads/{branch}").get(f"refs/heads/{branch}")
    if tip is None:
        raise Unreviewed(
            f"{redact(remote)} has no branch {branch}: nothing on it was reviewed. Nothing was sent."
        )
    if tip != head and not _contains(git, remote, branch, tip, head):
        raise Unreviewed(
            f"this checkout's commit {head[:12]} is not on {redact(remote)}/{branch} (a local commit not pushed, "
            "or another branch): only what was merged there was reviewed. Nothing was sent. Apply from "
            f"a checkout of {redact(remote)}/{branch}, or merge this change through a pull request first."
        )
    return head


def _contains(git: Git, remote: str, branch: str, tip: str, commit: str) -> bool:
    """Is `commit` in `tip`'s history? A shallow clone's history ends early, so a "no"
    counts only once the clone is deepened to the whole history."""
    if not git.has_object(tip):
        git.fetch(remote, f"refs/heads/{branch}")
    for deepen in (None, "--deepen=200", "--unshallow"):
        shallow = git.ok("rev-parse", "--is-shallow-repository") == "true"
        if deepen is not None:
            if not shallow:
                return False
            git.run("fetch", "--quiet", "--no-tags", deepen, *end_of_options(remote), f"refs/heads/{branch}")
        if git.is_ancestor(commit, tip):
            return True
        if not shallow and deepen is None:
            return False
    return False


def _rel(top: Path, path: str) -> str:
    """`path` relative to the checkout's top. Outside it, git would refuse with its own
    words ("outside repository"); what is applied must be a commit's, so say which file."""
    where = Path(path)
    try:
        return where.resolve().relative_to(top).as_posix()
    except ValueError:
        pass
    if not where.exists():
        raise ReconcilerError(f"{path}: no such file or directory; nothing was sent")
    raise Unreviewed(
        f"{path} is outside this repository ({top}): with the ledger in git, apply clears only what "
        "a commit of this repository declares, so nothing was sent. Move the manifests into it, "
        "commit them, and let CI apply the merge (a saved plan file may be kept anywhere)."
    )


def _path_of(status_line: str) -> str:
    """The path of a porcelain line: after its status (`XY`, whose leading space the first
    line loses to `Git.ok`'s strip), the new name of a rename."""
    return status_line.split(maxsplit=1)[-1].split(" -> ")[-1].strip().strip('"')


def base_file(git: Git, remote: str, base: str, path: str) -> bytes | None:
    """`path` as the base commit has it (fetched if this clone lacks it)."""
    _have(git, remote, base)
    return git.blob(base, path)


def _have(git: Git, remote: str, base: str) -> None:
    if base.startswith("-"):  # never an option to git, whoever gave it (--base, CI's variables)
        raise GitSyncError(f"{base!r} is not a commit: a pull request's base is a commit id or a ref")
    if not git.has_object(base):
        try:
            git.fetch(remote, base)
        except GitSyncError as exc:
            raise GitSyncError(f"cannot read the pull request's base {base[:12]}: {exc}") from exc


def check_pull_request(
    git: Git, remote: str, base: str, ledger_rel: str, anchored: Mapping[str, bytes] | None
) -> None:
    """Refuse a pull request that changes the ledger (its main file, segments or ID lists)
    or its lease: only `reconcile apply` writes them. Putting back exactly the anchored
    ledger (a restore; `anchored` by paths beside the main file) is allowed."""
    _have(git, remote, base)
    lease = ledger_rel + ".lease"
    before = git.files(base, [ledger_rel, lease, ledger_rel + ".d"])
    now = _worktree_files(git.toplevel(), ledger_rel)
    top = posixpath.dirname(ledger_rel)
    restored = {posixpath.join(top, k): v for k, v in (anchored or {}).items()}
    ledger_now = {p: d for p, d in now.items() if p != lease}
    ledger_before = {p: d for p, d in before.items() if p != lease}
    changed = []
    if ledger_now != ledger_before and not (anchored is not None and ledger_now == restored):
        changed.append(("the ledger", ledger_rel))
    if now.get(lease) != before.get(lease):
        changed.append(("its lease file", lease))
    if changed:
        what, path = changed[0]
        raise Unreviewed(
            f"this pull request changes {what} ({path}) against its base {base[:12]}: only "
            f"`reconcile apply` writes it, and a merged edit would be refused by every apply (the "
            f"ledger only grows; reconcile keeps its own anchor at {ANCHOR_REF}). Drop the change: "
            + (
                restore_command(base[:12], ledger_rel, before)
                if path == ledger_rel
                else f"git checkout {base[:12]} -- {path}"
            )
        )


def _worktree_files(top: Path, ledger_rel: str) -> dict[str, bytes]:
    """The ledger's main file, lease and sidecar files as the work tree has them."""
    out: dict[str, bytes] = {}
    side = top / (ledger_rel + ".d")
    candidates = [top / ledger_rel, top / (ledger_rel + ".lease")]
    candidates += sorted(p for p in side.rglob("*") if p.is_file()) if side.is_dir() else []
    for path in candidates:
        try:
            out[path.relative_to(top).as_posix()] = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise GitSyncError(f"{path}: cannot read it: {exc.strerror}") from exc
    return out
