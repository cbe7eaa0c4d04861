"""The applied ledger kept in git: its one home (DESIGN "The ledger in git (CI)").

gitsync.repo     LedgerRepo: sync, publish (the compare-and-swap), lease, plumbing
"""

from __future__ import annotations

from reconciler.gitsync.repo import Identity, Lease, LedgerRepo, SyncResult, redact

__all__ = ["Identity", "Lease", "LedgerRepo", "SyncResult", "redact"]
