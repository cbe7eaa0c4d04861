"""The applied ledger: an append-only, hash-chained JSON Lines file, and its lock.

The only package that touches the ledger file. It keeps DESIGN invariants 4
(durability: every record is written and fsynced before `append` returns; a
failed append leaves the file ending at its last whole record), 5 (integrity:
any change to an existing line breaks the chain and is named by line number)
and 9 (one writer: the lock sits on the ledger's resolved path).

    ledger.read(path) -> Ledger                  verify the chain; `exists`, warnings
    ledger.select(led, manifest=, pipeline=, since=, kinds=) -> [Record]
    with ledger.LedgerLock(path): ...            one writer per ledger
    ledger.LedgerWriter(led).append(kind, fields) -> Record
    ledger.LedgerWriter(led).append_delete(intent) / append_failed(intent, code=, message=)
    ledger.migrate(path) -> MigrateResult        rewrite v1 records as v2, keep <name>.v1.bak
"""

from __future__ import annotations

from reconciler.ledger._format import (
    CELL_KINDS,
    FORMAT_VERSION,
    GENESIS,
    KEY_FIELDS,
    KNOWN_KINDS,
    Record,
    canonical,
    canonical_text,
    record_hash,
    utc_now,
)
from reconciler.ledger._lock import LedgerLock, lock_path
from reconciler.ledger._migrate import MigrateResult, migrate
from reconciler.ledger._read import Ledger, read
from reconciler.ledger._replace import replace_contents
from reconciler.ledger._select import SINCE_FORMS, parse_since, record_time, select
from reconciler.ledger._write import LedgerWriter

__all__ = [
    "CELL_KINDS",
    "FORMAT_VERSION",
    "GENESIS",
    "KEY_FIELDS",
    "KNOWN_KINDS",
    "SINCE_FORMS",
    "Ledger",
    "LedgerLock",
    "LedgerWriter",
    "MigrateResult",
    "Record",
    "canonical",
    "canonical_text",
    "lock_path",
    "migrate",
    "parse_since",
    "read",
    "record_hash",
    "record_time",
    "replace_contents",
    "select",
    "utc_now",
]
