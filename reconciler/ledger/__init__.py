"""The applied ledger: append-only, hash-chained JSON Lines files, and its lock.

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
    ledger.migrate(path) -> MigrateResult        rewrite in format v3, keep <name>.v<N>.bak

The files of one ledger (format v3: the main file, segments and ID lists under
`<name>.d/`), for the git code, which need not know the layout:

    ledger.ledger_files(path) -> {rel: bytes}          whole records only
    ledger.extension_problem(new, old) -> str | None   None: `new` only adds to `old`
    ledger.write_files(path, files)                    the local ledger becomes `files`
    ledger.whole_records(data) -> bytes                a main file's whole records
"""

from __future__ import annotations

from reconciler.ledger._files import extension_problem, ledger_files, whole_records, write_files
from reconciler.ledger._format import canonical, canonical_text, record_hash, utc_now
from reconciler.ledger._lists import sidecar_dir
from reconciler.ledger._lock import LedgerLock, lock_path
from reconciler.ledger._migrate import MigrateResult, migrate
from reconciler.ledger._read import Ledger, Skim, no_gc, read
from reconciler.ledger._record import (
    CELL_KINDS,
    FORMAT_VERSION,
    GENESIS,
    KEY_FIELDS,
    KNOWN_KINDS,
    PIPELINE_KINDS,
    RUN_KINDS,
    SETTLED_START_NOTE,
    Record,
)
from reconciler.ledger._select import SINCE_FORMS, parse_since, record_time, select
from reconciler.ledger._summary import SegmentSummary
from reconciler.ledger._write import RUN_SEGMENTS, SEGMENT_BYTES, LedgerWriter

__all__ = [
    "CELL_KINDS",
    "FORMAT_VERSION",
    "GENESIS",
    "KEY_FIELDS",
    "KNOWN_KINDS",
    "PIPELINE_KINDS",
    "RUN_KINDS",
    "RUN_SEGMENTS",
    "SEGMENT_BYTES",
    "SETTLED_START_NOTE",
    "SINCE_FORMS",
    "Ledger",
    "LedgerLock",
    "LedgerWriter",
    "MigrateResult",
    "Record",
    "SegmentSummary",
    "Skim",
    "canonical",
    "canonical_text",
    "extension_problem",
    "ledger_files",
    "lock_path",
    "migrate",
    "no_gc",
    "parse_since",
    "read",
    "record_hash",
    "record_time",
    "select",
    "sidecar_dir",
    "utc_now",
    "whole_records",
    "write_files",
]
