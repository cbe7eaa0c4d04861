"""The record format: canonical JSON, the hash chain, and verifying one line.

Keeps DESIGN invariant 5 (integrity): a line is accepted only if it parses, its
`seq` and `prev` continue the chain and its `hash` is the sha256 of its canonical
JSON without `hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from reconciler.errors import LedgerError

FORMAT_VERSION = 1
GENESIS = "0" * 64
# Kinds whose records name cells; `failed` closes an intent the gateway definitely refused.
CELL_KINDS = ("intent", "delete", "failed")
KNOWN_KINDS = (*CELL_KINDS, "pause", "resume")
KEY_FIELDS = ("manifest", "orgId", "pipelineId", "stageInstanceName")
LIST_FIELDS = ("assetIds", "pointIds")

Ids = tuple[str, ...]


def canonical(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON as DESIGN fixes it: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its `hash` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Record:
    """One verified ledger record; `data` is the record as stored (ID lists as tuples)."""

    seq: int
    kind: str
    at: str
    hash: str
    data: Mapping[str, Any]
    asset_ids: Ids = ()
    point_ids: Ids = ()

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(manifest, org, pipeline, stage): the group a cell record belongs to."""
        d = self.data
        return (d["manifest"], d["orgId"], d["pipelineId"], d["stageInstanceName"])

    @property
    def pipeline(self) -> tuple[str, str]:
        return (self.data["orgId"], self.data["pipelineId"])

    @property
    def manifest(self) -> str | None:
        value = self.data.get("manifest")
        return value if isinstance(value, str) else None

    @property
    def pipeline_id(self) -> str | None:
        value = self.data.get("pipelineId")
        return value if isinstance(value, str) else None

    @property
    def actor(self) -> Mapping[str, Any]:
        value = self.data.get("actor")
        return value if isinstance(value, dict) else {}

    @property
    def resolved(self) -> bool:
        """A `delete` that `ledger resolve` recorded after a person checked the state."""
        return self.data.get("resolved") is True

    @property
    def code(self) -> int | None:
        """The API code of a `failed` record (None when the refusal had none)."""
        value = self.data.get("code")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def message(self) -> str:
        """Why a `failed` record's request was refused."""
        value = self.data.get("message")
        return value if isinstance(value, str) else ""

    def as_json(self) -> dict[str, Any]:
        """The record as plain JSON for display, with its ID lists written out."""
        out = dict(self.data)
        if self.kind in CELL_KINDS:
            out["assetIds"], out["pointIds"] = list(self.asset_ids), list(self.point_ids)
        return out


class Chain:
    """Verifies lines in order; holds the previous hash and shared ID tuples.

    `verify` changes no state when it raises, so a torn last line can be tried and
    dropped without disturbing the chain.
    """

    def __init__(self, path: object) -> None:
        self.path = path
        self.prev = GENESIS
        self.seq = 0
        self._interned: dict[Ids, Ids] = {}

    def verify(self, number: int, line: bytes) -> Record:
        where = f"{self.path}:{number}"
        data = _parse(where, line)
        self._check_link(where, number, data)
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind:
            raise LedgerError(f"{where}: record has no kind")
        if not isinstance(data.get("at"), str):
            raise LedgerError(f"{where}: record has no time (`at`)")
        assets: Ids = ()
        points: Ids = ()
        if kind in CELL_KINDS:
            _check_cell_fields(where, kind, data)
            assets, points = self._shared(data["assetIds"]), self._shared(data["pointIds"])
            data["assetIds"], data["pointIds"] = assets, points
        elif kind in ("pause", "resume") and not all(
            isinstance(data.get(k), str) for k in ("orgId", "pipelineId")
        ):
            raise LedgerError(f"{where}: {kind} record lacks orgId or pipelineId")
        self.prev, self.seq = data["hash"], number
        return Record(number, kind, data["at"], data["hash"], data, assets, points)

    def _check_link(self, where: str, number: int, data: dict[str, Any]) -> None:
        if data.get("v") != FORMAT_VERSION:
            raise LedgerError(f"{where}: unsupported record version {data.get('v')!r}")
        if data.get("seq") != number:
            raise LedgerError(
                f"{where}: seq is {data.get('seq')!r}, expected {number}; lines were removed or reordered"
            )
        if data.get("prev") != self.prev:
            raise LedgerError(
                f"{where}: prev does not match the hash of line {number - 1}; "
                "a line before it was changed, removed or reordered"
            )
        if data.get("hash") != record_hash(data):
            raise LedgerError(f"{where}: hash does not match the record; this line was edited")

    def _shared(self, ids: list[str]) -> Ids:
        # Batches of one manifest repeat the same lists; keep one shared copy of each.
        as_tuple = tuple(ids)
        return self._interned.setdefault(as_tuple, as_tuple)


def _parse(where: str, line: bytes) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        raise LedgerError(f"{where}: not valid JSON; the ledger was edited or damaged") from None
    if not isinstance(data, dict):
        raise LedgerError(f"{where}: a record must be a JSON object")
    return data


def _check_cell_fields(where: str, kind: str, data: dict[str, Any]) -> None:
    for name in KEY_FIELDS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise LedgerError(f"{where}: {kind} record has a missing or malformed {name}")
    for name in LIST_FIELDS:
        value = data.get(name)
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise LedgerError(f"{where}: {kind} record has a missing or malformed {name}")
    if kind == "failed":
        code = data.get("code", "missing")
        if not (code is None or (isinstance(code, int) and not isinstance(code, bool))):
            raise LedgerError(f"{where}: failed record has a missing or malformed code (an integer or null)")
        if not isinstance(data.get("message"), str):
            raise LedgerError(f"{where}: failed record has a missing or malformed message")
