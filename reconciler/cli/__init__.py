"""The `reconcile` command line: thin commands over the core functions.

Each command parses, builds its collaborators, calls one core function and maps
the result to an exit code: 0 done or nothing to do, 1 error, 2 changes pending
(`plan --detailed-exitcode`), 130 interrupted.
"""

# isort: skip_file
# Commands are registered on import; this order is the order `reconcile --help` lists.
from __future__ import annotations

from reconciler.cli import plan
from reconciler.cli import apply
from reconciler.cli import ledger
from reconciler.cli import tools
from reconciler.cli._app import app, main

__all__ = ["app", "apply", "ledger", "main", "plan", "tools"]
