"""What the ledger-in-git protocol tells a person when it refuses, as pure functions of
what `LedgerRepo` found (no git, no remote): each says what happened, that nothing was
planned or sent, and the one way to put it right (DESIGN "The ledger only grows",
invariant 13; "The ledger in git (CI)")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import ledger as ledger_io
from reconciler.gitsync.remote import ANCHOR_REF, Anchor, Version, extends, head_seq, restore_command
from reconciler.words import plural

Files = Mapping[str, bytes]
NOTHING = "Nothing was planned or sent."


@dataclass(frozen=True)
class Place:
    """Where the ledger is kept: `remote` (its name as shown), `branch`, and the ledger's
    path in the repository."""

    remote: str
    branch: str
    rel_path: str

    @property
    def where(self) -> str:
        return f"{self.remote}/{self.branch}"

    @property
    def lease_path(self) -> str:
        return self.rel_path + ".lease"


def no_anchor_cut(at: Place, keep: Version, kept: Files) -> str:
    """No anchor, and the branch's ledger does not extend the version to keep (`kept`)."""
    return (
        f"{at.where}:{at.rel_path} has no anchor ({ANCHOR_REF} is missing: deleted, or not copied "
        f"with the repository), and it is not an extension of the ledger reconcile published in commit "
        f"{keep.commit[:12]} ({plural(head_seq(kept, at.rel_path), 'record')}): records were cut while "
        f"nothing guarded them. {NOTHING} Put that version back with `reconcile ledger restore` (it "
        "commits it on the branch and anchors it again), or by hand (then commit and push): "
        + restore_command(keep.commit[:12], at.rel_path, kept)
    )


def histories_diverge(at: Place, keep: str, other: str) -> str:
    """Two versions reconcile published on the branch, neither extending the other."""
    return (
        f"{at.where}: the ledgers reconcile published in commits {keep[:12]} and "
        f"{other[:12]} do not extend one another: the branch's history was cut once and "
        f"appended to since. {NOTHING} A person must choose the ledger to "
        f"keep (`git show COMMIT:{at.rel_path}`), put it back on the branch by hand, and "
        "settle the cells cleared twice with `reconcile ledger show`"
    )


def anchor_moved(at: Place, anchor: Anchor, anchored: Files, keep: Version, kept: Files) -> str:
    """The anchor (`anchored`: its ledger at this path) does not extend the version the
    branch's history says reconcile published (`kept`): what happened, who made its
    commit and when, and the version to keep. Never a reason to cut."""
    n, m = head_seq(anchored, at.rel_path), head_seq(kept, at.rel_path)
    how = (
        f"backwards, to an earlier ledger ({plural(n, 'record')})"
        if extends(kept, anchored)
        else f"to a ledger reconcile never published on {at.branch} ({plural(n, 'record')})"
    )
    made = f", made by {anchor.made}" if anchor.made else ""
    return (
        f"{ANCHOR_REF} was moved {how}: it points at commit {anchor.commit[:12]}{made}, while "
        f"{at.where} holds the ledger reconcile published in commit {keep.commit[:12]} "
        f"({plural(m, 'record')}), which every later apply must extend. {NOTHING} "
        f"The version to keep is commit {keep.commit[:12]}'s: `reconcile ledger restore` anchors it "
        "again (restore never cuts a ledger the branch published). Who moved the ref is in the "
        "host's audit log (GitHub: the audit log's git.push events; GitLab: audit events). Hosts "
        "protect branches, not this ref: protect the branch (README: protect the ledger's branch)"
    )


def not_anchored(
    at: Place, head: str | None, have: Files, anchor: Anchor, want: Files, culprit: str | None
) -> str:
    """The branch (at `head`, its ledger `have`) is not the anchored ledger (`want`, at
    this path); `culprit`: the commit that changed it, when history tells."""
    n = head_seq(anchor.ledger, anchor.ledger_path)
    what = what_differs(at, head, have, anchor, want)
    why = "" if head is None else _culprit(head, culprit)
    return (
        f"{at.where}:{at.rel_path} is not the ledger reconcile last published "
        f"({anchor.branch}:{anchor.ledger_path}, {plural(n, 'record')}, anchored at {ANCHOR_REF} "
        f"{anchor.commit[:12]}): {what}{why}. Nothing was planned or sent: records that vanish would "
        "make cleared cells pending again, and records reconcile did not write would decide what is "
        "sent. Only `reconcile apply` writes the ledger and its lease. Put back the ledger reconcile "
        f"published with `reconcile ledger restore` (it commits the anchored ledger on {at.branch}), "
        "or by hand: "
        f"git fetch {at.remote} {ANCHOR_REF} && "
        + restore_command("FETCH_HEAD", anchor.ledger_path, anchor.ledger)
    )


def what_differs(at: Place, head: str | None, have: Files, anchor: Anchor, want: Files) -> str:
    if head is None:
        return f"the branch {at.branch} does not exist (deleted, or reconcile.yaml names another branch)"
    if anchor.branch != at.branch or anchor.ledger_path != at.rel_path:
        moved = "reconcile.yaml moved the ledger (ledger.path, ledger.git.branch) without its history"
        return moved if have != want else "the lease file differs from the one reconcile wrote"
    if not have:
        return f"the file is missing on {at.branch}"
    if have == want:
        return f"the lease file {at.lease_path} is not the one reconcile wrote (a lease is never written by hand)"
    n, m = head_seq(want, at.rel_path), head_seq(have, at.rel_path)
    if ledger_io.extension_problem(want, have) is None and m < n:
        return f"records {m + 1}..{n} were cut from its end"
    if ledger_io.extension_problem(have, want) is None and m > n:
        return f"records {n + 1}..{m} were appended by someone other than reconcile"
    problem = ledger_io.extension_problem(have, want) or "its files differ"
    return f"it was rewritten ({problem})"


def _culprit(head: str, commit: str | None) -> str:
    if commit:
        return f", in commit {commit[:12]}"
    return f" (the branch's head {head[:12]} may have been force-pushed)"


def why_not_fast_forward(
    at: Place, file: Path, local: Files, remote: Files, *, edited: bool, paused: Sequence[str] = ()
) -> str:
    """The local ledger (`file`) is not the remote's plus nothing: what each holds, and how
    to take the remote's. `edited`: the main file has uncommitted changes that are not appends.
    `paused`: pipelines the remote's ledger says an earlier run left paused (`org/pipeline
    (since ...)`), which stay paused until an apply runs."""
    take = f"git fetch {at.remote} {at.branch} && " + restore_command("FETCH_HEAD", at.rel_path, remote)
    first, last = head_seq(remote, at.rel_path) + 1, head_seq(local, at.rel_path)
    if ledger_io.extension_problem(local, remote) is None and last >= first:
        return (
            f"{file} has {'record' if first == last else 'records'} {first}..{last} that "
            f"{at.where} lacks, and nothing shows they are a run's of this host that died before "
            f"pushing them (that run's lease on {at.where}), or some announce calls (pause, intent, "
            f"start) that were never made. {NOTHING} Keep the evidence first: copy the local ledger "
            f"(`cp -r {file} {file}.d ~/`, whichever exist) and read it with `reconcile ledger show`: a "
            "delete recorded only there did happen, and taking the remote's turns it into a request "
            "in doubt (re-sent while its pipeline stays paused, or left to a person). Then take the "
            f"remote's: {take}" + _still_paused(paused)
        )
    why = (
        "the file has uncommitted changes that are not appends (the ledger is append-only)"
        if edited
        else "each holds records the other lacks"
    )
    where = ledger_io.extension_problem(remote, local) or "they differ"
    return (
        f"{file} and {at.where} differ ({where}): {why}. {NOTHING} Take the remote's ledger "
        f"({take}); records only in the local file describe calls the remote does not know of: check "
        "them with `reconcile ledger show` and settle them with `reconcile ledger resolve` after the "
        "remote's." + _still_paused(paused)
    )


def _still_paused(paused: Sequence[str]) -> str:
    if not paused:
        return ""
    return (
        f" Still PAUSED by an earlier run, and on record on the remote: {', '.join(paused)}. Once the "
        "ledger is the remote's, `reconcile apply` starts "
        + ("it" if len(paused) == 1 else "them")
        + " again (invariant 14); EnOS keeps a job paused for at most 24 h."
    )


def push_refused(at: Place, text: str) -> str:
    """A push refused for lack of permission: the host's own words, and the ways to allow it."""
    return (
        f"{at.remote} refused the ledger push to {at.branch} for lack of permission "
        f"(a protected branch or a server hook):\n  {text}\n"
        "Fix one of: GitHub: give the workflow `permissions: contents: write` and let "
        "github-actions (or the bot's token) bypass the branch protection rule of "
        f"{at.branch}; GitLab: allow the push token's role (Maintainer) to push to the "
        f"protected branch {at.branch}. Or keep the ledger on a dedicated, unprotected "
        "branch: `ledger: {git: {branch: reconcile/ledger}}` in reconcile.yaml. The push also "
        f"moves {ANCHOR_REF}: allow it too."
    )
