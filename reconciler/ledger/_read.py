"""Reading a ledger: the whole chain verified, the torn-line rule, and what a writer needs.

DESIGN "Applied ledger": a last line with no final newline that does not parse or
verify is torn (a warning, cut by the next append); one that verifies is a whole
record. Every newline-terminated line must verify, or reading fails naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import LedgerError
from reconciler.ledger._format import GENESIS, Chain, Record


@dataclass
class Ledger:
    """A verified ledger as read: its records, head, and anything worth a warning.

    `exists` is False when the file was missing (apply refuses that, plan warns).
    `size`, `good_bytes`, `unterminated` and `end_bytes` let a writer check that the
    file is still exactly what was read before it appends.
    """

    path: Path
    records: list[Record] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    good_bytes: int = 0  # the whole records; anything after them is a torn tail
    exists: bool = True
    size: int = 0  # the file's size when read
    unterminated: bool = False  # the last record has no final newline
    end_offset: int = 0  # where the last line (whole or torn) starts ...
    end_bytes: bytes = b""  # ... and its bytes up to the end of the file, as read
    # Intents that a later delete or failed record closes exactly (same cells): never in doubt.
    closed_intents: set[int] = field(default_factory=set)

    @property
    def head_seq(self) -> int:
        return self.records[-1].seq if self.records else 0

    @property
    def head_hash(self) -> str:
        return self.records[-1].hash if self.records else GENESIS


def read(path: str | os.PathLike[str]) -> Ledger:
    """Read and verify the whole chain; raise `LedgerError` naming the first bad line.

    Streams the file line by line: memory holds the records, not the file.
    """
    ledger = Ledger(Path(path))
    try:
        fh = ledger.path.open("rb")
    except FileNotFoundError:
        ledger.exists = False
        return ledger
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read ledger: {exc.strerror or exc}") from exc
    chain = Chain(path)
    offset = 0
    line = b""
    with fh:
        try:
            for number, line in enumerate(fh, start=1):
                if line.endswith(b"\n"):
                    ledger.records.append(chain.verify(number, line))
                else:
                    _read_tail(ledger, chain, number, line)
                offset += len(line)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot read ledger: {exc.strerror or exc}") from exc
    ledger.size = offset
    torn = not line.endswith(b"\n") and not ledger.unterminated
    ledger.good_bytes = offset - len(line) if torn else offset
    ledger.end_offset, ledger.end_bytes = offset - len(line), line
    ledger.closed_intents = chain.closed
    return ledger


def _read_tail(ledger: Ledger, chain: Chain, number: int, tail: bytes) -> None:
    try:
        record = chain.verify(number, tail)
    except LedgerError as exc:
        reason = str(exc).split(": ", 1)[-1]
        ledger.warnings.append(
            f"{ledger.path}:{number}: last line is incomplete and does not verify ({reason}): "
            "a write was interrupted; ignored, and cut off by the next append"
        )
        return
    ledger.records.append(record)
    ledger.unterminated = True
