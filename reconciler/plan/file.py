"""The plan's JSON document: what `plan --format json` prints and `plan --out` saves.

The one home of that format (DESIGN "Plan"): `dumps(plan)` lays it out,
`write(plan, path)` saves it, and `read(path)` gives back a frozen `SavedPlan`
that has checked its own hash. The hash covers every field a saved plan is
re-derived from (actions, ledger, manifest paths, options), so a hand-edited plan
file is refused with one line, never a traceback (invariant 6).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import yamlsource
from reconciler.errors import Hint, PlanError
from reconciler.ledger import canonical
from reconciler.plan._build import Plan, encode_action_parts, plan_hash
from reconciler.plan.values import LedgerHead, Options

FORMAT_VERSION = 1
_MAX_BYTES = 512 * 1024 * 1024
_ACTIONS = object()  # where `dumps` puts the action lines
_CHUNK = 1 << 20  # action lines are given out joined in pieces of about this many bytes
# Read now from the gateway (`plan --refresh`), not derived from manifests and ledger: the
# plan hash does not cover them, so a saved plan that carries them still reads back.
LIVE_FIELDS = ("liveStateCells",)


def _document(plan: Plan, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    head = plan.ledger
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "ledger": {"path": head.path, "seq": head.seq, "hash": head.hash},
        "manifests": list(plan.manifest_paths),
        "options": plan.options.to_json(),
        "planHash": plan.plan_hash,
        "actions": _ACTIONS,
        "pendingResumes": [
            {"orgId": r.pipeline.org_id, "pipelineId": r.pipeline.pipeline_id, "pausedAt": r.paused_at}
            for r in plan.pending_resumes
        ],
        "summary": plan.summary.to_json(),
    }
    # What a reviewer needs besides the plan (policy, live pipelines, ID sources,
    # warnings): shown and saved, but not hashed, since none of it changes the requests.
    doc.update(extra or {})
    if plan.renames:  # pending cells already cleared under a name no manifest declares now
        doc["renameWarnings"] = [
            {"manifest": r.manifest, "clearedAs": r.old_name, "cells": r.cells, "reclear": r.reclear}
            for r in plan.renames
        ]
    return doc


def dumps(plan: Plan, extra: Mapping[str, Any] | None = None, live: Mapping[str, Any] | None = None) -> str:
    """Indented at the top, one canonical line per action: the lines the plan hash was
    computed from, encoded once (a fleet-wide plan lists some 300,000 IDs).

    `extra` adds top-level fields that the hash does not cover (`policy`, `pipelines`, ...).
    `live` (plan --refresh): `{"actions": [fields per action], "summary": {...}, key: value}`,
    merged into the action lines, the summary and the top level; only `LIVE_FIELDS` in
    actions, which the hash does not cover."""
    return b"".join(encoded(plan, extra, live)).decode()


def pieces(
    plan: Plan, extra: Mapping[str, Any] | None = None, live: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """`dumps` in pieces, for writing as they come (`encoded`'s, decoded)."""
    for piece in encoded(plan, extra, live):
        yield piece.decode()


def encoded(
    plan: Plan, extra: Mapping[str, Any] | None = None, live: Mapping[str, Any] | None = None
) -> Iterator[bytes]:
    """`dumps` in pieces of UTF-8, for writing as they come. A plan too big to hold its
    JSON (`Plan.streams`: 10^11 cells lists a gigabyte of IDs) is encoded an action at a
    time and never held whole: memory stays bounded by the input, not by what is printed."""
    for parts in encoded_parts(plan, extra, live):
        yield b"".join(parts)


def encoded_parts(
    plan: Plan, extra: Mapping[str, Any] | None = None, live: Mapping[str, Any] | None = None
) -> Iterator[list[bytes]]:
    """`encoded`, each piece as the parts it joins: a writer that takes them as they are
    (`Consoles.write_parts`: one `os.writev` a piece) never copies a fleet plan's 60 MB of
    action lines only to join them."""
    streamed = plan.streams
    rows = () if streamed else plan.action_parts  # before the hash, which then reuses them
    doc = _document(plan, extra)
    if live:
        doc["summary"] = {**doc["summary"], **live.get("summary", {})}
        doc.update({k: v for k, v in live.items() if k not in ("actions", "summary")})
    for n, (key, value) in enumerate(doc.items()):
        yield [(("{\n" if n == 0 else ",\n") + f"  {json.dumps(key)}: ").encode()]
        if value is not _ACTIONS:
            yield [json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ").encode()]
        elif not plan.actions:
            yield [b"[]"]
        else:
            yield from _chunks(_action_lines(plan, rows, streamed, live))
            yield [b"\n  ]"]
    yield [b"\n}\n"]


def _chunks(lines: Iterator[tuple[bytes, ...]]) -> Iterator[list[bytes]]:
    """The action lines, one to an indented line, in pieces of about `_CHUNK` bytes: a few
    dozen writes for a fleet plan."""
    chunk: list[bytes] = []
    size = 0
    for i, parts in enumerate(lines):
        chunk.append(b"[\n    " if i == 0 else b",\n    ")
        chunk.extend(parts)
        size += sum(map(len, parts))
        if size >= _CHUNK:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _action_lines(
    plan: Plan, rows: tuple[tuple[bytes, ...], ...], streamed: bool, live: Mapping[str, Any] | None
) -> Iterator[tuple[bytes, ...]]:
    lines = encode_action_parts(plan.actions) if streamed else iter(rows)
    if not live:
        yield from lines
        return
    for parts, fields in zip(lines, live["actions"], strict=True):
        yield (_annotated(b"".join(parts), fields),)


def _annotated(line: bytes, extra: Mapping[str, Any]) -> bytes:
    if set(extra) - set(LIVE_FIELDS):
        raise ValueError(f"only {LIVE_FIELDS} may annotate an action, not {sorted(extra)}")
    return canonical({**json.loads(line), **extra})


def write(plan: Plan, path: Path, extra: Mapping[str, Any] | None = None) -> None:
    try:
        with path.open("wb") as fh:
            for piece in encoded(plan, extra):
                fh.write(piece)
    except OSError as exc:
        raise PlanError(f"{path}: cannot write the plan: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan as read back: consistent with its own hash, not yet with the world."""

    path: Path
    ledger: LedgerHead
    manifests: tuple[str, ...]
    options: Options
    plan_hash: str
    actions: int


def is_plan_file(path: str) -> bool:
    """A saved plan is a regular file that is not a manifest (`*.yaml`/`*.yml`)."""
    p = Path(path)
    return p.suffix.lower() not in (".yaml", ".yml") and p.is_file()


def read(path: Path) -> SavedPlan:
    """Parse a saved plan and check it against its own hash (not hand-edited)."""
    data = _load(path)
    try:
        fields = _fields(data)
        stated = _typed(data, "planHash", str)
    except _Malformed as exc:
        raise PlanError(
            f"{path}: plan file is malformed ({exc}); make it again", hint=Hint.SAVED_PLAN
        ) from exc
    if plan_hash(fields) != stated:
        raise PlanError(
            f"{path}: plan file does not match its own plan hash; it was edited. Make it again",
            hint=Hint.SAVED_PLAN,
        )
    led, opts = fields["ledger"], fields["options"]
    return SavedPlan(
        path=path,
        ledger=LedgerHead(led["path"], led["seq"], led["hash"]),
        manifests=tuple(fields["manifests"]),
        options=Options(opts["maxPoints"], opts["maxAssets"], tuple(opts["targets"])),
        plan_hash=stated,
        actions=len(fields["actions"]),
    )


def check_head(saved: SavedPlan, head: LedgerHead) -> None:
    """Refuse a plan made against another ledger state (Terraform's "Saved plan is stale")."""
    if (saved.ledger.seq, saved.ledger.hash) != (head.seq, head.hash):
        raise PlanError(
            f"saved plan is stale: it was made against ledger seq {saved.ledger.seq}, "
            f"the ledger is now at seq {head.seq}. Make it again",
            hint=Hint.SAVED_PLAN,
        )


def check_same(saved: SavedPlan, plan: Plan) -> None:
    """Refuse unless the manifests give exactly the saved plan now."""
    if plan.plan_hash != saved.plan_hash:
        raise PlanError(
            f"saved plan does not match what its manifests give now (plan hash "
            f"{saved.plan_hash[:12]} vs {plan.plan_hash[:12]}); the manifests changed since "
            "it was made. Make it again",
            hint=Hint.SAVED_PLAN,
        )


class _Malformed(ValueError):
    pass


def _load(path: Path) -> dict[str, Any]:
    try:
        with yamlsource.open_regular(path) as fh:  # /dev/zero or a FIFO: refused, never read
            raw = fh.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise PlanError(f"{path}: cannot read plan: {exc.strerror or exc}") from exc
    if len(raw) > _MAX_BYTES:
        raise PlanError(f"{path}: not a plan file (larger than {_MAX_BYTES // 2**20} MiB)")
    try:
        data = yamlsource.loads_json(raw)
    except ValueError as exc:
        raise PlanError(f"{path}: not a plan file (invalid JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("formatVersion") != FORMAT_VERSION:
        raise PlanError(f"{path}: not a reconcile plan (formatVersion {FORMAT_VERSION} expected)")
    return data


def _typed(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Malformed(f"{name} must be a {kind.__name__}")
    return value


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The hashed fields, each checked for shape before anything trusts it."""
    led = _typed(data, "ledger", dict)
    _typed(led, "path", str), _typed(led, "seq", int), _typed(led, "hash", str)
    manifests = _typed(data, "manifests", list)
    if not all(isinstance(m, str) for m in manifests):
        raise _Malformed("manifests must be a list of paths")
    opts = _typed(data, "options", dict)
    for name in ("maxPoints", "maxAssets"):
        if _typed(opts, name, int) < 1:
            raise _Malformed(f"options.{name} must be at least 1")
    targets = _typed(opts, "targets", list)
    if not all(isinstance(t, str) for t in targets):
        raise _Malformed("options.targets must be a list of names")
    actions = [
        {k: v for k, v in a.items() if k not in LIVE_FIELDS} if isinstance(a, dict) else a
        for a in _typed(data, "actions", list)
    ]
    return {
        "actions": actions,
        "ledger": {"path": led["path"], "seq": led["seq"], "hash": led["hash"]},
        "manifests": manifests,
        "options": {"maxPoints": opts["maxPoints"], "maxAssets": opts["maxAssets"], "targets": targets},
    }
