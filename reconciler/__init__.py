"""reconciler: GitOps for clearing EnOS stream-processing stage state.

Manifests declare cells to clear; `plan` diffs them against the applied ledger;
`apply` performs exactly the pending deletions and records each one.
"""

from __future__ import annotations

__version__ = "0.1.0"
