"""A verified ledger record as a value, and the constants of the record format (DESIGN
"Applied ledger"): versions, kinds, the fields that key a cell record and hold its lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 3  # what the writer writes
READ_VERSIONS = (1, 2, 3)
GENESIS = "0" * 64
# Kinds whose records name cells; `failed` closes an intent the gateway definitely refused.
CELL_KINDS = ("intent", "delete", "failed")
# Kinds that say where this tool left a pipeline; after the last two it may have run.
PIPELINE_KINDS = ("pause", "start", "resume")
RUN_KINDS = ("resume", "start")
KNOWN_KINDS = (*CELL_KINDS, *PIPELINE_KINDS, "seal")
KEY_FIELDS = ("manifest", "orgId", "pipelineId", "stageInstanceName")
LIST_FIELDS = ("assetIds", "pointIds")
CLOSING_KINDS = ("delete", "failed")  # may close an intent by reference (v2)
# The `note` of the `resume` record with `"resolved": true` that settles a start in doubt.
# Stored text, not a message: every such record says it the same way, as the ledgers
# written so far do (it names the command that writes it, flag included).
SETTLED_START_NOTE = "a person settled a start in doubt (reconcile ledger resolve --start)"

Ids = tuple[str, ...]


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

    @property
    def ids(self) -> tuple[Ids, Ids]:
        return self.asset_ids, self.point_ids

    @property
    def intent_seq(self) -> int | None:
        """The intent a v2 `delete`/`failed` closes exactly, by its seq (None: own lists)."""
        value = self.data.get("intent")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def as_json(self) -> dict[str, Any]:
        """The record as plain JSON for display, with its ID lists written out."""
        out = dict(self.data)
        if self.kind in CELL_KINDS:
            out["assetIds"], out["pointIds"] = list(self.asset_ids), list(self.point_ids)
        return out
