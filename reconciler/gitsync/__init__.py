"""The applied ledger kept in git: its one home (DESIGN "The ledger in git (CI)",
"The ledger only grows", "Reviewed is what gets applied"; invariants 9, 11, 12, 13).

    gitsync._git      Git: the ledger's runner of `git` (plumbing, timeouts, redaction)
    gitsync.remote    Remote: the typed seam (GitRemote, MemoryRemote) and the anchor
    gitsync.lease     Lease, LeaseWatch, Holding: who sends, judged by one's own clock
    gitsync.repo      LedgerRepo: sync, publish (the compare-and-swap), restore
    gitsync.explain   what a refusal tells a person, as pure functions of what repo found
    gitsync.session   Session: what apply does when (before plan, announce, renew, finish);
                      LeaseStop: apply's stop event, which reads the lease when asked
    gitsync.review    what may be applied or planned: reviewed commits, PR checks
    gitsync.checkout  after a person's publish, the checkout fast-forwarded (`git pull` works)

The commands reach it through `reconciler.store`, the one door to the ledger.
"""

from __future__ import annotations

from reconciler.gitsync._git import Git, Identity, redact
from reconciler.gitsync.lease import Lease, LeaseUnreadable, LeaseWatch
from reconciler.gitsync.remote import ANCHOR_REF, Anchor, GitRemote, MemoryRemote, Remote, RemoteState
from reconciler.gitsync.repo import LedgerRepo, SyncResult
from reconciler.gitsync.session import LeaseStop, Session

__all__ = [
    "ANCHOR_REF",
    "Anchor",
    "Git",
    "GitRemote",
    "Identity",
    "Lease",
    "LeaseStop",
    "LeaseUnreadable",
    "LeaseWatch",
    "LedgerRepo",
    "MemoryRemote",
    "Remote",
    "RemoteState",
    "Session",
    "SyncResult",
    "redact",
]
