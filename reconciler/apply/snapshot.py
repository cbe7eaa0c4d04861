"""Evidence of what was destroyed: `apply --snapshot FILE` (DESIGN "Apply" step 9).

Just before each delete, while its pipeline is paused, the request's cells are read
with Get Stage State (the same body), and every item is appended to FILE as one JSON
line, exactly as returned, beside the request's org, pipeline, stage, manifest and the
seq of the ledger `intent` that announced it. FILE is JSON Lines, gzip when it ends in
`.gz` (one gzip member per append, which any gzip reader reads as one stream).

Each `delete` record then carries `snapshot: {items, sha256}`: the count of that
record's lines and the sha256 of their bytes (uncompressed, newline-terminated), so the
ledger's hash chain vouches for the evidence; `check` compares a file with the digests.

No evidence, no delete: a read that fails sends nothing for that request (it is
recorded `failed`, its cells pending again). The cost is one extra read per request.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reconciler import yamlsource
from reconciler.errors import EnosError, ReconcilerError, TooManyPointsError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.enos import EnosClient
    from reconciler.ledger import Ledger, Record
    from reconciler.plan import Action


class SnapshotError(ReconcilerError):
    """The state of a request's cells could not be read or kept: its delete is not sent."""


def digest(lines: Sequence[bytes]) -> dict[str, Any]:
    """The `snapshot` field of a delete record for these lines."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
    return {"items": len(lines), "sha256": h.hexdigest()}


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
            raise SnapshotError(f"--snapshot {self.path}: cannot write: {exc.strerror or exc}") from exc

    def _open(self) -> IO[bytes]:
        return self.path.open("ab")

    def _open_checked(self) -> IO[bytes]:
        """The file, refused unless it is a regular one: evidence written to /dev/null or a
        device would be gone (opened non-blocking, so a FIFO with no reader is refused)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SnapshotError(
                f"--snapshot {self.path}: not a regular file; evidence written there would be lost"
            )
        return os.fdopen(fd, "ab")

    def take(
        self, client: EnosClient, action: Action, intents: Sequence[Record] | None
    ) -> list[dict[str, Any]]:
        """Read `action`'s cells and append them; one `snapshot` digest per record that the
        request's outcome writes (aligned with `action.ledger_fields()`).

        Raises `TooManyPointsError` when the gateway refuses the read as too large (the
        caller splits the request, as it would for the delete) and `SnapshotError` for any
        other failure to read or to write.
        """
        seqs = {r.manifest or "": r.seq for r in intents} if intents else self._inherit.get(action, {})
        try:
            items = client.get_stage_state(action)
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


# --- checking a file against the ledger ---------------------------------------------


@dataclass
class CheckReport:
    """What `ledger show --snapshot FILE` found."""

    path: Path
    vouched: int = 0  # delete records whose lines are in the file, digest equal
    items: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        head = (
            f"{self.path}: {plural(self.items, 'item')} {'matches' if self.items == 1 else 'match'} the digests of {plural(self.vouched, 'delete record')}"
            if self.ok
            else f"{self.path}: does NOT match the ledger ({plural(len(self.problems), 'problem')})"
        )
        lines = [head, *(f"  {p}" for p in self.problems[:20]), *(f"  note: {n}" for n in self.notes[:20])]
        return "\n".join(lines) + "\n"


def check(path: str | os.PathLike[str], ledger: Ledger) -> CheckReport:
    """Compare a snapshot file with the `snapshot` digests of the ledger's delete records:
    every digest must be found, and every line must belong to a digest."""
    report = CheckReport(Path(path))
    groups = _groups(report.path)
    by_digest: dict[tuple[int, str], list[tuple[Any, Any]]] = {}
    for key, lines in groups.items():
        d = digest(lines)
        by_digest.setdefault((d["items"], d["sha256"]), []).append(key)
    used: set[tuple[Any, Any]] = set()
    for r in ledger.records:
        snap = r.data.get("snapshot") if r.kind == "delete" else None
        if not isinstance(snap, dict):
            continue
        keys = by_digest.get((snap.get("items"), snap.get("sha256")), [])  # type: ignore[arg-type]
        if not keys and snap.get("items") == 0:
            report.vouched += 1  # nothing held state: no lines to find
            continue
        if not keys:
            report.problems.append(
                f"record #{r.seq} ({r.manifest}): its snapshot ({plural(int(snap.get('items') or 0), 'item')}) is not in the file, or differs"
            )
            continue
        used.add(keys.pop())
        report.vouched += 1
        report.items += int(snap.get("items") or 0)
    intents = {r.seq for r in ledger.records if r.kind == "intent"}
    for key in sorted(set(groups) - used, key=str):
        if key[0] in intents:  # read, then the delete failed or ended in doubt: evidence, not a clear
            report.notes.append(
                f"{plural(len(groups[key]), 'item')} read for intent #{key[0]} before a delete that is not recorded as done"
            )
        else:
            report.problems.append(
                f"{plural(len(groups[key]), 'line')} of intent #{key[0]} that no record of this ledger announced"
            )
    return report


def _groups(path: Path) -> dict[tuple[Any, Any], list[bytes]]:
    """The file's lines grouped as apply wrote them: by intent, manifest and read."""
    groups: dict[tuple[Any, Any], list[bytes]] = {}
    for number, line in _read_lines(path):
        try:
            data = yamlsource.loads_json(line)
        except ValueError as exc:
            raise ReconcilerError(f"{path}:{number}: not a JSON line: {exc}") from exc
        if not isinstance(data, dict):
            raise ReconcilerError(f"{path}:{number}: not a snapshot line")
        key = (data.get("intent"), (data.get("manifest"), data.get("read"), data.get("readAt")))
        groups.setdefault(key, []).append(line)
    return groups


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MAX_LINE = 256 << 20  # one read's items; far more than a request of 100,000 points returns


def _read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's lines, from a regular file only (/dev/zero is refused, never read), none
    longer than MAX_LINE."""
    try:
        with (
            yamlsource.open_regular(path) as raw,
            gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw as fh,
        ):
            for number in itertools.count(1):
                line = fh.readline(MAX_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_LINE:
                    raise ReconcilerError(
                        f"{path}:{number}: a line longer than {MAX_LINE >> 20} MiB; not a snapshot"
                    )
                yield number, line
    except (OSError, EOFError) as exc:
        raise ReconcilerError(
            f"{path}: cannot read the snapshot: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
