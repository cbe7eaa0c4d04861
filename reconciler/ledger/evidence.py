"""Evidence files (`apply --snapshot FILE`) checked against the ledger's digests.

Each `delete` record of a run made with `--snapshot` carries `snapshot: {items, sha256}`
over the lines that run appended to its file for that request. A run writes its own
file (a CI artifact per run), so a file holds the items of the runs that wrote it, not
of the whole ledger. `check(path, records)` says which runs a file covers (the runs
whose intents its lines name), and checks it against exactly the digests that cover
it: every line belongs to a digest of this ledger, and every digest of a covered run
is in the file. Digests of other runs are theirs to show, not this file's.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import Hint, Hinted, ReconcilerError
from reconciler.ledger._record import Record
from reconciler.ledger.history import Run, run_of, runs
from reconciler.words import plural

Group = tuple[Any, Any]  # (intent seq, (manifest, read, readAt)): the lines of one read


def digest(lines: Sequence[bytes]) -> dict[str, Any]:
    """The `snapshot` field of a delete record for these lines (each newline-terminated)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
    return {"items": len(lines), "sha256": h.hexdigest()}


@dataclass
class Covered:
    """One run the file covers: how many of its delete records with evidence it vouches for."""

    run: Run
    vouched: int = 0
    expected: int = 0


@dataclass
class CheckReport:
    """What `ledger verify --snapshot FILE` (and `ledger show --snapshot`) found."""

    path: Path
    vouched: int = 0  # delete records whose lines are in the file, digest equal
    items: int = 0
    covered: list[Covered] = field(default_factory=list)
    elsewhere: int = 0  # delete records with evidence, of runs this file does not cover
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as lines to print; a line about a setting is a `Hinted` one, which the
        CLI says in its own words (`settings.advice`)."""
        if self.ok:
            matches = "matches" if self.items == 1 else "match"
            head = f"{self.path}: {plural(self.items, 'item')} {matches} the digests of {plural(self.vouched, 'delete record')}"
        else:
            head = f"{self.path}: does NOT match the ledger ({plural(len(self.problems), 'problem')})"
        lines = [head]
        if self.covered:
            lines.append(f"  covers {plural(len(self.covered), 'run')}:")
            lines += [
                f"    {c.run.name}: records #{c.run.first} to #{c.run.last} ({c.run.first_at} to "
                f"{c.run.last_at}), {c.vouched} of {plural(c.expected, 'delete record')} with evidence"
                for c in self.covered
            ]
        else:
            lines.append("  covers no run of this ledger")
        if self.elsewhere:
            are = "is" if self.elsewhere == 1 else "are"
            lines.append(
                Hinted(
                    f"  {plural(self.elsewhere, 'delete record')} of other runs {are} not checked: "
                    "each run's evidence is in the file that run wrote",
                    Hint.SNAPSHOT_PER_RUN,
                )
            )
        lines += [f"  {p}" for p in self.problems[:20]]
        lines += [f"  note: {n}" for n in self.notes[:20]]
        return lines


def check(path: str | os.PathLike[str], records: Sequence[Record]) -> CheckReport:
    """Compare an evidence file with the `snapshot` digests of the runs it covers."""
    report = CheckReport(Path(path))
    groups = _groups(report.path)
    found = runs(records)
    intents = {r.seq: r for r in records if r.kind == "intent"}
    covered: dict[int, Covered] = {}  # by the run's first seq
    for key in sorted(groups, key=str):
        seq = key[0]
        run = run_of(found, seq) if isinstance(seq, int) and seq in intents else None
        if run is None:
            report.problems.append(
                f"{plural(len(groups[key]), 'line')} of intent #{seq} that no record of this ledger announced"
            )
        else:
            covered.setdefault(run.first, Covered(run))
    by_digest: dict[tuple[int, str], list[Group]] = {}
    for key, lines in groups.items():
        d = digest(lines)
        by_digest.setdefault((d["items"], d["sha256"]), []).append(key)
    used: set[Group] = set()
    for r in records:
        snap = r.data.get("snapshot") if r.kind == "delete" else None
        if not isinstance(snap, dict):
            continue
        run = run_of(found, r.seq)
        mine = covered.get(run.first) if run is not None else None
        if mine is None:
            report.elsewhere += 1
            continue
        mine.expected += 1
        items, sha = snap.get("items"), snap.get("sha256")
        keys = by_digest.get((items, sha), []) if isinstance(items, int) and isinstance(sha, str) else []
        if not keys and items != 0:
            report.problems.append(
                f"record #{r.seq} ({r.manifest}): its snapshot ({plural(int(snap.get('items') or 0), 'item')}) "
                "is not in the file, or differs"
            )
            continue
        if keys:  # none: nothing held state, no lines to find
            used.add(keys.pop())
        mine.vouched += 1
        report.vouched += 1
        report.items += int(snap.get("items") or 0)
    for key in sorted(set(groups) - used, key=str):
        if key[0] in intents:  # read, then the delete failed or ended in doubt: evidence, not a clear
            report.notes.append(
                f"{plural(len(groups[key]), 'item')} read for intent #{key[0]} before a delete that is not "
                "recorded as done"
            )
    report.covered = sorted(covered.values(), key=lambda c: c.run.first)
    return report


def _groups(path: Path) -> dict[Group, list[bytes]]:
    """The file's lines grouped as apply wrote them: by intent, manifest and read."""
    groups: dict[Group, list[bytes]] = {}
    for number, line in _read_lines(path):
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ReconcilerError(f"{path}:{number}: not a JSON line: {exc}") from exc
        if not isinstance(data, dict):
            raise ReconcilerError(f"{path}:{number}: not a snapshot line")
        key = (data.get("intent"), (data.get("manifest"), data.get("read"), data.get("readAt")))
        groups.setdefault(key, []).append(line)
    return groups


_MAX_LINE = 16 * 1024 * 1024  # one item of stage state; a longer line is not a snapshot's


def _read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        if not path.is_file():  # a device (/dev/zero) or a folder: never read without end
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise ReconcilerError(f"{path}: cannot read the snapshot: it {what}")
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as fh:
            number = 0
            while line := fh.readline(_MAX_LINE + 1):
                number += 1
                if len(line) > _MAX_LINE:
                    raise ReconcilerError(
                        f"{path}:{number}: a line longer than {_MAX_LINE:,} bytes: not a snapshot"
                    )
                yield number, line
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ReconcilerError(
            f"{path}: cannot read the snapshot: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
