"""The manifest format (`apiVersion: reconciler/v1`) as pydantic models.

These models are the single source of truth for what a manifest may say: the
loader validates with them and `schemas/` is generated from them, so editors,
`check-jsonschema` and `reconcile validate` agree (DESIGN "Manifest format").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

API_VERSION = "reconciler/v1"
KIND = "StageStateDeletion"

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$"
# The API joins IDs with commas, so an ID may hold no comma, whitespace or control
# character (DESIGN "Manifest format").
ID_PATTERN = r"^[^,\s\x00-\x1f\x7f-\x9f]+$"
ID_MAX = 256
NAME_MAX = 253

ID_RE = re.compile(ID_PATTERN)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=NAME_MAX)]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=ID_MAX)]
IdList = Annotated[list[Id], Field(min_length=1)]
RelPath = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Metadata(_Strict):
    """Who the manifest is: its unique name, and optional notes for reviewers."""

    name: Name = Field(description="Unique across all manifests; part of every cell it declares.")
    description: str | None = Field(default=None, description="Why this state is cleared.")
    labels: dict[str, str] | None = Field(default=None, description="Free-form string labels.")


SOURCES = (("assetIds", "assetIdsFile"), ("pointIds", "pointIdsFile"))


_ONE_OF: list[Any] = [
    {"oneOf": [{"required": ["assetIds"]}, {"required": ["assetIdsFile"]}]},
    {"oneOf": [{"required": ["pointIds"]}, {"required": ["pointIdsFile"]}]},
]


class Spec(_Strict):
    """What to clear: the cross product of stages x assets x points of one pipeline."""

    model_config = ConfigDict(json_schema_extra={"allOf": _ONE_OF})

    orgId: Id = Field(description="EnOS organization ID.")
    pipelineId: Id = Field(description="Stream-processing pipeline (job) ID.")
    stageInstanceNames: IdList = Field(description="Stage instance names to clear.")
    assetIds: IdList | None = Field(default=None, description="Asset IDs.")
    assetIdsFile: RelPath | None = Field(
        default=None, description="File of asset IDs, one per line, relative to this manifest."
    )
    pointIds: IdList | None = Field(default=None, description="Measurement point IDs.")
    pointIdsFile: RelPath | None = Field(
        default=None, description="File of point IDs, one per line, relative to this manifest."
    )

    @field_validator("assetIds", "assetIdsFile", "pointIds", "pointIdsFile", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Absent is allowed (the other source is given); an explicit null is a mistake.
        if value is None:
            raise ValueError("must not be null; remove the key or give a value")
        return value

    @model_validator(mode="after")
    def _one_source_each(self) -> Spec:
        for list_key, file_key in SOURCES:
            if (getattr(self, list_key) is None) == (getattr(self, file_key) is None):
                raise ValueError(f"exactly one of {list_key} or {file_key} is required")
        return self


class ManifestDoc(_Strict):
    """One YAML document of kind StageStateDeletion."""

    model_config = ConfigDict(title="reconciler StageStateDeletion manifest")

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["StageStateDeletion"]
    metadata: Metadata
    spec: Spec


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document, as committed under `schemas/`."""
    schema = ManifestDoc.model_json_schema()
    for prop in schema["$defs"]["Spec"]["properties"].values():
        # Optional in Python only so that exactly one of a pair is given; never null in YAML.
        if "anyOf" in prop:
            prop.update(next(s for s in prop.pop("anyOf") if s.get("type") != "null"))
            prop.pop("default", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://reconciler.dev/schemas/manifest-v1.json"
    return schema
