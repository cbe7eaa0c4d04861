"""Evidence of what was destroyed: `apply --snapshot FILE` (DESIGN "Apply" step 9).

Just before each delete, while its pipeline is paused, the request's cells are read
with Get Stage State (the same body), and every item is appended to FILE as one JSON
line, exactly as returned, beside the request's org, pipeline, stage, manifest and the
seq of the ledger `intent` that announced it. FILE is JSON Lines, gzip when it ends in
`.gz` (one gzip member per append, which any gzip reader reads as one stream).

Each `delete` record then carries `snapshot: {items, sha256}`: the count of that
record's lines and the sha256 of their bytes (uncompressed, newline-terminated), so the
ledger's hash chain vouches for the evidence; `ledger.evidence.check` compares a file
with the digests of the runs it covers.

No evidence, no delete: a read that fails sends nothing for that request (it is
recorded `failed`, its cells pending again). The cost is one extra read per request.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reconciler.errors import EnosError, Hint, ReconcilerError, TooManyPointsError
from reconciler.ledger.evidence import digest

if TYPE_CHECKING:
    from reconciler.enos import EnosClient
    from reconciler.ledger import Record
    from reconciler.plan import Action


class SnapshotError(ReconcilerError):
    """The state of a request's cells could not be read or kept: its delete is not sent."""


class Snapshot:
    """Appends evidence to one file for a whole apply; thread-safe (requests run in a pool)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._inherit: dict[Action, dict[str, int]] = {}  # 61105 halves: the parent's intents
        self.items = 0
        self._reads = itertools.count(1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open_checked().close()  # a file that cannot be written is refused before any call
        except OSError as exc:
            raise SnapshotError(
                f"{self.path}: cannot write: {exc.strerror or exc}", hint=Hint.SNAPSHOT
            ) from exc

    def _open(self) -> IO[bytes]:
        return self.path.open("ab")

    def _open_checked(self) -> IO[bytes]:
        """The file, refused unless it is a regular one: evidence written to /dev/null or a
        device would be gone (opened non-blocking, so a FIFO with no reader is refused)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SnapshotError(
                f"{self.path}: not a regular file; evidence written there would be lost", hint=Hint.SNAPSHOT
            )
        return os.fdopen(fd, "ab")

    def take(
        self,
        client: EnosClient,
        action: Action,
        intents: Sequence[Record] | None,
        items: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Read `action`'s cells and append them; one `snapshot` digest per record that the
        request's outcome writes (aligned with `action.ledger_fields()`).

        Raises `TooManyPointsError` when the gateway refuses the read as too large (the
        caller splits the request, as it would for the delete) and `SnapshotError` for any
        other failure to read or to write. `items`: the cells as just read (the canary's
        first read), so they are not read twice.
        """
        seqs = {r.manifest or "": r.seq for r in intents} if intents else self._inherit.get(action, {})
        try:
            items = items if items is not None else client.get_stage_state(action)
        except TooManyPointsError:
            for half in action.halves():
                self._inherit[half] = seqs
            raise
        except EnosError as exc:
            raise SnapshotError(f"could not read its state for the snapshot: {exc}") from exc
        read = {"readAt": _now(), "read": next(self._reads)}  # `read` tells apart two reads of one intent
        groups = [
            self._lines(action, f, seqs.get(f["manifest"]), items, read) for f in action.ledger_fields()
        ]
        self._append([line for g in groups for line in g])
        return [digest(g) for g in groups]

    def _lines(
        self,
        action: Action,
        fields: Mapping[str, Any],
        seq: int | None,
        items: list[dict[str, Any]],
        read: Mapping[str, Any],
    ) -> list[bytes]:
        assets, points = set(fields["assetIds"]), set(fields["pointIds"])
        head = {
            "intent": seq,
            "manifest": fields["manifest"],
            "orgId": action.org_id,
            "pipelineId": action.pipeline_id,
            "stageInstanceName": action.stage,
            **read,
        }
        # `{"item": <as returned>, <the request's fields>}`: the head is encoded once per
        # request, each item once, in the order the gateway gave its keys (a 1,000-item
        # request costs about 6 ms here, not 14 with a dict per line).
        tail = "," + json.dumps(head, sort_keys=True, separators=(",", ":"), ensure_ascii=False)[1:] + "\n"
        return [
            ('{"item":' + json.dumps(i, separators=(",", ":"), ensure_ascii=False) + tail).encode()
            for i in items
            if i.get("assetId") in assets and i.get("pointId") in points
        ]

    def _append(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        if self.path.suffix == ".gz" and data:
            # One member per append (still one gzip stream to readers); level 6, as gzip(1)
            # does: level 9 costs four times the CPU for a few per cent.
            data = gzip.compress(data, compresslevel=6)
        try:
            with self._open() as fh:
                with self._lock:  # whole appends, one after another (O_APPEND, one write each)
                    fh.write(data)
                    fh.flush()
                    self.items += len(lines)
                # Kept before the delete it precedes is sent; outside the lock, so that the
                # requests in flight wait for their own fsync only, not for one another's.
                os.fsync(fh.fileno())
        except OSError as exc:
            raise SnapshotError(
                f"could not write the snapshot to {self.path}: {exc.strerror or exc}"
            ) from exc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
