"""The manifest format (`apiVersion: reconciler/v1`) as pydantic models.

These models are the single source of truth for what a manifest may say: the
loader validates with them and `schemas/` is generated from them, so editors,
`check-jsonschema` and `reconcile validate` agree (DESIGN "Manifest format").
Beside them: `text_problem`, the rule against IDs and names that look right and
are wrong (invisible characters, text not in NFC), which ID files share, and how
a pydantic error on a manifest reads to people (`error_message`).
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

API_VERSION = "reconciler/v1"
KIND = "StageStateDeletion"

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$"
# The API joins IDs with commas, so an ID may hold no comma, whitespace or control
# character (DESIGN "Manifest format"). Nor an invisible format character (Unicode
# category Cf: bidi overrides, zero-width spaces, soft hyphens): two IDs that look
# the same must be the same. `text_problem` checks the whole category; the pattern
# (what the JSON Schema says) lists its characters in the Basic Multilingual Plane,
# as of Unicode 14, which every regex dialect can write.
_CF_BMP = (
    r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
ID_PATTERN = rf"^[^,\s\x00-\x1f\x7f-\x9f{_CF_BMP}]+$"
ID_MAX = 256
NAME_MAX = 253

ID_RE = re.compile(ID_PATTERN)

# Unicode gives control characters no name, only aliases; these are the ones people meet.
_C0_NAMES = (
    "NULL",
    "START OF HEADING",
    "START OF TEXT",
    "END OF TEXT",
    "END OF TRANSMISSION",
    "ENQUIRY",
    "ACKNOWLEDGE",
    "ALERT",
    "BACKSPACE",
    "CHARACTER TABULATION",
    "LINE FEED",
    "LINE TABULATION",
    "FORM FEED",
    "CARRIAGE RETURN",
    "SHIFT OUT",
    "SHIFT IN",
    "DATA LINK ESCAPE",
    "DEVICE CONTROL ONE",
    "DEVICE CONTROL TWO",
    "DEVICE CONTROL THREE",
    "DEVICE CONTROL FOUR",
    "NEGATIVE ACKNOWLEDGE",
    "SYNCHRONOUS IDLE",
    "END OF TRANSMISSION BLOCK",
    "CANCEL",
    "END OF MEDIUM",
    "SUBSTITUTE",
    "ESCAPE",
    "INFORMATION SEPARATOR FOUR",
    "INFORMATION SEPARATOR THREE",
    "INFORMATION SEPARATOR TWO",
    "INFORMATION SEPARATOR ONE",
)
_OTHER_CONTROL_NAMES = {0x7F: "DELETE", 0x85: "NEXT LINE"}


def code_point(ch: str) -> str:
    """`U+200B ZERO WIDTH SPACE`: the code point and, where it has one, its name."""
    cp = ord(ch)
    name = _C0_NAMES[cp] if cp < 0x20 else _OTHER_CONTROL_NAMES.get(cp) or unicodedata.name(ch, "")
    return f"U+{cp:04X} {name}".rstrip()


# Characters that show as blank space though Unicode does not call them spaces: the
# Hangul fillers and the blank Braille pattern. Two IDs that differ by one look the same.
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE = {"Cf": "an invisible format character", "Cc": "a control character"}
_MARKS = {
    "Mn": "a combining mark: it changes how the character before it looks",
    "Me": "an enclosing mark: it changes how the character before it looks",
}


def _invisible(value: str, kinds: dict[str, str] = _INVISIBLE) -> tuple[int, str] | None:
    for i, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category in kinds:
            return i, f"contains {code_point(ch)} ({kinds[category]}); remove it"
    return None


def _marks(value: str) -> tuple[int, str] | None:
    """After NFC, a combining mark left is one no letter absorbs: it makes a look-alike."""
    for i, ch in enumerate(value):
        if ch in BLANKS:
            return i, f"contains {code_point(ch)} (shown as blank space); remove it"
    return _invisible(value, _MARKS)


def _look_alike(value: str) -> tuple[int, str] | None:
    """Text that NFKC folds into other text looks like that text (fullwidth letters,
    ligatures, superscripts, the micro sign): two such IDs must not both pass."""
    if unicodedata.is_normalized("NFKC", value):
        return None
    folded = unicodedata.normalize("NFKC", value)
    at = next((i for i, ch in enumerate(value) if unicodedata.normalize("NFKC", ch) != ch), 0)
    return at, (
        f"{value!r} holds {code_point(value[at])}, which looks like {unicodedata.normalize('NFKC', value[at])!r}; "
        f"write it as {folded!r} (Unicode NFKC), or check the ID at its source"
    )


def _not_nfc(value: str) -> tuple[int, str] | None:
    if unicodedata.is_normalized("NFC", value):
        return None
    nfc = unicodedata.normalize("NFC", value)
    shorter = min(len(value), len(nfc))
    start = next((i for i, (a, b) in enumerate(zip(value, nfc, strict=False)) if a != b), shorter)
    tail = 0
    while tail < shorter - start and value[-1 - tail] == nfc[-1 - tail]:
        tail += 1
    was = " ".join(f"U+{ord(c):04X}" for c in value[start : len(value) - tail])
    now = " ".join(f"U+{ord(c):04X}" for c in nfc[start : len(nfc) - tail])
    return start, f"{value!r} is not in Unicode NFC form; write it as {nfc!r} ({was} as {now})"


def text_problem(value: str) -> tuple[int, str] | None:
    """What makes `value` unfit as an ID or name though it may look right: the offset
    of the first offending character and a message, or None.

    Format and control characters (Unicode Cf, Cc) are invisible or mangle the line;
    combining marks (Mn, Me) and blank-looking letters (Hangul fillers, U+2800) make
    look-alikes; text not in NFC, or not in NFKC, can look the same as other text that is
    not equal to it.
    """
    if value.isascii():  # NFC, and no format characters; only controls to look for
        return _invisible(value) if not value.isprintable() else None
    return _invisible(value) or _not_nfc(value) or _marks(value) or _look_alike(value)


_BREAKS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Zl": "a line break",
    "Zp": "a line break",
}


def line_problem(value: str) -> tuple[int, str] | None:
    """What keeps `value` from being one line of plain text (a label, a file name): the
    offset of the first line break, control or invisible format character, and a message."""
    if value.isascii() and value.isprintable():
        return None
    return _invisible(value, _BREAKS)


class TextError(ValueError):
    """`text_problem` as a pydantic error, keeping the offset for the column."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


def _visible(value: Any) -> Any:
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise TextError(*problem)
    return value


# BeforeValidator last: it runs first, so an invisible character is named as such
# rather than reported as a pattern mismatch.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=NAME_MAX), BeforeValidator(_visible)]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=ID_MAX), BeforeValidator(_visible)]
IdList = Annotated[list[Id], Field(min_length=1)]
RelPath = Annotated[str, StringConstraints(min_length=1)]


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must say why (a reason, not blank)")
    return value


REASON_MAX = 500
# A reason is one line of text: it goes into ledger records, the plan and the comment.
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=REASON_MAX, pattern=r"\S"),
    BeforeValidator(_not_blank),
    BeforeValidator(_visible),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Metadata(_Strict):
    """Who the manifest is: its unique name, and optional notes for reviewers."""

    name: Name = Field(description="Unique across all manifests; part of every cell it declares.")
    description: str | None = Field(default=None, description="Why this state is cleared.")
    labels: dict[str, str] | None = Field(default=None, description="Free-form string labels.")
    renamedFrom: Annotated[list[Name], Field(min_length=1)] | None = Field(
        default=None,
        description=(
            "Earlier names of this manifest (it was renamed): what was applied under them "
            "counts as applied under this name. Never its own name, nor a current manifest's."
        ),
    )
    reclear: Reason | None = Field(
        default=None,
        description=(
            "Why this manifest clears again, on purpose, cells that were cleared under a name no "
            "manifest declares any more (without it, or renamedFrom, plan and apply refuse). "
            "Recorded in every intent and delete record of this manifest."
        ),
    )


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


# --- pydantic errors as messages -----------------------------------------------------

Loc = tuple[str | int, ...]


def field_path(loc: Loc) -> str:
    """`spec.assetIds[2]`: a pydantic error location as the manifest spells it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


_KNOWN_FIELDS = {
    "": ["apiVersion", "kind", "metadata", "spec"],
    "metadata": list(Metadata.model_fields),
    "spec": list(Spec.model_fields),
}


def error_message(kind: str, loc: Loc, err: Any) -> str:
    """A pydantic error on a manifest as a short message for people (no field path)."""
    value = err.get("input")
    last = loc[-1] if loc else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        close = difflib.get_close_matches(str(last), _KNOWN_FIELDS.get(parent, []), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown field{hint}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be {expected}, got {value!r}"
    if kind == "string_pattern_mismatch":
        if last == "name" or (len(loc) > 1 and loc[-2] == "renamedFrom"):
            return (
                f"{value!r} is not a valid name: lowercase letters, digits, '-', '.' and '_', "
                "starting and ending with a letter or digit"
            )
        return f"{value!r}: IDs may not contain commas, whitespace or control characters"
    if kind == "string_too_long":
        return f"longer than {err.get('ctx', {}).get('max_length')} characters"
    if kind == "too_short":
        return "must not be empty"
    if kind == "list_type":
        if isinstance(value, str) and "," in value:
            return "expected a list, got a comma-separated string; write a YAML list: [a, b]"
        return f"expected a list, got {type(value).__name__}"
    if kind == "string_type":
        hint = " (quote it)" if isinstance(value, (int, float, bool)) or value is None else ""
        return f"expected a string, got {value!r}{hint}"
    if kind == "dict_type":
        return f"expected a mapping, got {type(value).__name__}"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return str(err["msg"])


# --- the committed JSON Schema ---------------------------------------------------------

SCHEMA_FILE = "manifest-v1.schema.json"


def render_schema() -> str:
    """The JSON Schema of manifests as committed under `schemas/`."""
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"
