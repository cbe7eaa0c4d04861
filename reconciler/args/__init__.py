"""Each command's arguments, parsed: one frozen value per command, its fields the flags' names.

Terraform's `command/arguments` (one struct per command, handed down whole) and Alembic's
"the command function's parameters are the flags": `cli/` declares each flag once, as a
typer parameter, and builds the value from them (`ApplyArgs(**locals())`); the commands
(`reconciler.commands`) and the settings (`reconciler.settings`) read it by the same
names. A new flag is its typer parameter and its field here. No typer: a test builds one
of these and calls the command.

    args            the default manifest paths and the `--format` choices
    args.plan       PlanArgs, SchemaArgs
    args.apply      ApplyArgs
    args.ledger     the ledger's commands' (LedgerShowArgs, ...)
    args.tools      InitArgs, EmulatorArgs

Importing the package builds none of the values' classes: each is imported from its module
when it is first used (PEP 562 `__getattr__`), so a command line builds its own command's
only (a frozen dataclass takes ~0.5 ms to build, these eleven ~6 ms of every start).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from reconciler.lazy import lazy_names

DEFAULT_PATHS = ["manifests"]  # the manifest paths a command reads when given none


class PlanFormat(str, Enum):
    """`plan --format`."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


class ShowFormat(str, Enum):
    """`ledger show --format`."""

    TEXT = "text"
    JSON = "json"


if TYPE_CHECKING:
    from reconciler.args.apply import ApplyArgs
    from reconciler.args.ledger import (
        LedgerMigrateArgs,
        LedgerReportArgs,
        LedgerResolveArgs,
        LedgerRestoreArgs,
        LedgerShowArgs,
        LedgerVerifyArgs,
    )
    from reconciler.args.plan import PlanArgs, SchemaArgs
    from reconciler.args.tools import EmulatorArgs, InitArgs

# Where each command's arguments live: imported on first use.
_LAZY = {
    "apply": ("ApplyArgs",),
    "ledger": (
        "LedgerMigrateArgs",
        "LedgerReportArgs",
        "LedgerResolveArgs",
        "LedgerRestoreArgs",
        "LedgerShowArgs",
        "LedgerVerifyArgs",
    ),
    "plan": ("PlanArgs", "SchemaArgs"),
    "tools": ("EmulatorArgs", "InitArgs"),
}
if not TYPE_CHECKING:  # mypy reads the imports above: a misspelt name stays an error
    __getattr__ = lazy_names(__name__, _LAZY)


__all__ = [
    "DEFAULT_PATHS",
    "ApplyArgs",
    "EmulatorArgs",
    "InitArgs",
    "LedgerMigrateArgs",
    "LedgerReportArgs",
    "LedgerResolveArgs",
    "LedgerRestoreArgs",
    "LedgerShowArgs",
    "LedgerVerifyArgs",
    "PlanArgs",
    "PlanFormat",
    "SchemaArgs",
    "ShowFormat",
]
