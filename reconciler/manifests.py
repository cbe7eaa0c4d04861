"""Loading manifests: discovery, validation, ID files, cross-file checks.

Returns `(manifests, diagnostics)`: every problem in every file in one run, each
naming `file:line:col` and the field (DESIGN "Manifest format"). Nothing here
talks to the network or the ledger.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler import yamlsource
from reconciler.errors import Diagnostic, InputError, ReconcilerError
from reconciler.models import (
    ID_MAX,
    ID_RE,
    SOURCES,
    ManifestDoc,
    TextError,
    error_message,
    field_path,
    text_problem,
)
from reconciler.yamlsource import MAX_BYTES, Document, FileTooLarge, Loc, NotRegularFile

SUFFIXES = (".yaml", ".yml")
# What each ID file gave, read once per (file, "assetId" or "pointId") in a run; one
# tuple per file, shared by every manifest naming it (the diff reuses work per tuple).
IdsCache = dict[tuple[Path, str], tuple[tuple[str, ...] | None, list[Diagnostic]]]
IDS_MAX_BYTES = 64 << 20  # some four million IDs: far more than a fleet, far less than memory


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: the cross product it declares, and where it came from.

    `path` and `line` are the file and the line its YAML document starts on;
    `renamed_from` holds the earlier names of `metadata.renamedFrom`, each in use
    by no current manifest and carried on by this one only.
    """

    name: str
    org_id: str
    pipeline_id: str
    stages: tuple[str, ...]
    asset_ids: tuple[str, ...]
    point_ids: tuple[str, ...]
    path: str
    line: int
    description: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    renamed_from: tuple[str, ...] = ()
    # (line, col) of each `renamed_from` name, for diagnostics that span manifests.
    renamed_from_at: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)
    # (line, col) of `metadata.name` (0, 0: not known, as for a manifest made in code).
    name_at: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)

    @property
    def name_position(self) -> tuple[int, int]:
        """Where `metadata.name` is, else where the document starts."""
        return self.name_at if self.name_at[0] else (self.line, 1)

    @property
    def cells(self) -> int:
        return len(self.stages) * len(self.asset_ids) * len(self.point_ids)


@dataclass
class LoadResult:
    manifests: list[Manifest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def discover(paths: Sequence[str]) -> list[tuple[str, Path]]:
    """Every manifest file under `paths`, each with the root its ID files must stay in."""
    found: list[tuple[str, Path]] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            root = p.resolve()
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found.extend(
                    (os.path.join(dirpath, f), root) for f in sorted(filenames) if f.endswith(SUFFIXES)
                )
        elif p.exists():  # a FIFO or a device given by name is refused when read, not skipped
            found.append((given, p.resolve().parent))
        else:
            raise ReconcilerError(f"{given}: no such file or directory")
    return found


def load(paths: Sequence[str]) -> LoadResult:
    """Load and check every manifest under `paths`; never raises for bad content."""
    result = LoadResult()
    ids_cache: IdsCache = {}
    for path, root in discover(paths):
        result.files.append(path)
        manifests, diags = _load_file(path, root, ids_cache)
        result.manifests.extend(manifests)
        result.diagnostics.extend(diags)
    if not result.files:
        where = ", ".join(paths)
        result.diagnostics.append(
            Diagnostic(where, 0, 0, "no manifests (*.yaml, *.yml) found here", "warning")
        )
    result.diagnostics.extend(_check_unique_names(result.manifests))
    result.diagnostics.extend(_check_renames(result.manifests))
    result.diagnostics = sorted(set(result.diagnostics))
    return result


def load_or_raise(paths: Sequence[str]) -> LoadResult:
    """`load`, raising `InputError` with every diagnostic if any is an error."""
    result = load(paths)
    if result.errors:
        raise InputError(result.diagnostics)
    return result


def _load_file(path: str, root: Path, ids_cache: IdsCache) -> tuple[list[Manifest], list[Diagnostic]]:
    try:
        raw = yamlsource.read_regular(path, MAX_BYTES)
    except NotRegularFile as exc:
        return [], [Diagnostic(path, 0, 0, str(exc))]
    except FileTooLarge:
        msg = f"file is larger than {MAX_BYTES >> 10} KiB; put long ID lists in an *IdsFile"
        return [], [Diagnostic(path, 1, 1, msg)]
    except OSError as exc:
        return [], [Diagnostic(path, 1, 1, f"cannot read file: {exc.strerror}")]
    text, diags = yamlsource.decode(path, raw)
    if text is None:
        return [], diags
    docs, diags = yamlsource.load_documents(path, text)
    manifests: list[Manifest] = []
    for doc in docs:
        manifest, doc_diags = _load_document(path, root, doc, ids_cache)
        diags.extend(doc_diags)
        if manifest is not None:
            manifests.append(manifest)
    return manifests, diags


def _load_document(
    path: str, root: Path, doc: Document, ids_cache: IdsCache
) -> tuple[Manifest | None, list[Diagnostic]]:
    if not isinstance(doc.data, dict):
        return None, [Diagnostic(path, doc.line, doc.col, "a manifest must be a mapping")]
    diags = _check_sources(path, doc)
    # ID files are read even when other fields are wrong, so one run names every problem.
    from_files = {key: _ids_file(path, root, doc, key, ids_cache, diags) for _, key in SOURCES}
    try:
        model = ManifestDoc.model_validate(yamlsource.plain(doc.data))
    except ValidationError as exc:
        errs = exc.errors()
        if diags:  # the model's own exactly-one check would say it again
            errs = [e for e in errs if not (e["type"] == "value_error" and e["loc"] == ("spec",))]
        return None, diags + [_diagnostic(path, doc, err) for err in errs]
    spec = model.spec
    stages = _dedupe(path, doc, ("spec", "stageInstanceNames"), spec.stageInstanceNames, diags)
    assets, points = (
        _dedupe(path, doc, ("spec", key), inline, diags)
        if (inline := getattr(spec, key)) is not None
        else from_files[key + "File"]
        for key, _ in SOURCES
    )
    meta = model.metadata
    renamed = _renamed_from(path, doc, meta.name, meta.renamedFrom or [], diags)
    if assets is None or points is None or any(d.severity == "error" for d in diags):
        return None, diags
    return (
        Manifest(
            name=meta.name,
            org_id=spec.orgId,
            pipeline_id=spec.pipelineId,
            stages=stages,
            asset_ids=assets,
            point_ids=points,
            path=path,
            line=doc.line,
            description=meta.description,
            labels=tuple(sorted((meta.labels or {}).items())),
            renamed_from=tuple(old for old, _ in renamed),
            renamed_from_at=tuple(at for _, at in renamed),
            name_at=yamlsource.position(doc, ("metadata", "name")),
        ),
        diags,
    )


def _check_sources(path: str, doc: Document) -> list[Diagnostic]:
    """Exactly one of a list or its file, checked here so other fields are still checked."""
    spec = doc.data.get("spec")
    if not isinstance(spec, dict):
        return []
    diags = []
    for list_key, file_key in SOURCES:
        if list_key in spec and file_key in spec:
            line, col = yamlsource.position(doc, ("spec", file_key), at_key=True)
            msg = f"spec.{file_key}: give {list_key} or {file_key}, not both"
            diags.append(Diagnostic(path, line, col, msg))
        elif list_key not in spec and file_key not in spec:
            line, col = yamlsource.position(doc, ("spec",))
            diags.append(Diagnostic(path, line, col, f"spec: {list_key} or {file_key} is required"))
    return diags


def _ids_file(
    path: str,
    root: Path,
    doc: Document,
    file_key: str,
    ids_cache: IdsCache,
    diags: list[Diagnostic],
) -> tuple[str, ...] | None:
    spec = doc.data.get("spec")
    rel = spec.get(file_key) if isinstance(spec, dict) else None
    if not isinstance(rel, str) or not rel:
        return None
    line, col = yamlsource.position(doc, ("spec", file_key))
    where = f"spec.{file_key}"
    target = _inside_root(Path(path).parent / rel, root)
    if target is None:
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' is outside the manifests root {root}"))
        return None
    noun = file_key.removesuffix("sFile")  # assetIdsFile -> assetId
    if (target, noun) not in ids_cache:
        read, read_diags = read_ids_file(target, _display(path, rel), noun)
        ids_cache[target, noun] = (None if read is None else tuple(read)), read_diags
    ids, file_diags = ids_cache[target, noun]
    diags.extend(file_diags)  # a shared file's diagnostics are de-duplicated in load()
    if ids is None:
        why = f"see {_display(path, rel)}" if file_diags else "file not found"
        diags.append(Diagnostic(path, line, col, f"{where}: cannot read '{rel}': {why}"))
        return None
    if any(d.severity == "error" for d in file_diags):
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' holds bad IDs"))
        return None
    if not ids:
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' holds no IDs"))
        return None
    return ids


def _display(manifest_path: str, rel: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(manifest_path), rel))


def _inside_root(candidate: Path, root: Path) -> Path | None:
    """The resolved path if it stays inside `root` (no `..` escape, no symlink out)."""
    resolved = candidate.resolve()
    if resolved == root or root in resolved.parents:
        return resolved
    return None


def read_ids_file(target: Path, shown: str, noun: str = "ID") -> tuple[list[str] | None, list[Diagnostic]]:
    """One ID per line; blank lines and `#` comments skipped; every bad line named.

    None when the file cannot be read (with no diagnostic when it does not exist).
    `noun` ("assetId") starts the messages about invisible or unnormalised characters.
    """
    try:
        raw = yamlsource.read_regular(target, IDS_MAX_BYTES)
    except FileNotFoundError:
        return None, []
    except NotRegularFile as exc:
        return None, [Diagnostic(shown, 0, 0, str(exc))]
    except FileTooLarge as exc:
        return None, [Diagnostic(shown, 0, 0, f"{exc}; split the IDs over several files")]
    except OSError as exc:
        return None, [Diagnostic(shown, 0, 0, f"cannot read ID file: {exc.strerror}")]
    text, diags = yamlsource.decode(shown, raw)
    if text is None:
        return [], diags
    return parse_ids(text, shown, noun)


def parse_ids(text: str, shown: str, noun: str = "ID") -> tuple[list[str], list[Diagnostic]]:
    """The IDs of an ID file's text: C-speed scans over the whole text when all is well
    (the usual case, and 400,000 IDs must load fast), else `_ids_slow` names each problem.
    Either way the result is the one `_ids_slow` gives."""
    if "\r" in text:  # CRLF line ends; a CR anywhere else is named by _ids_slow
        text = text.replace("\r\n", "\n")
    values = _plain_lines(text)
    if values is None:
        values = [v for v in (line.strip(_TRIM) for line in text.split("\n")) if v and v[0] != "#"]
        if _BAD_IN_LINES.search("\n".join(values)):
            return _ids_slow(text, shown, noun)
    if _all_good(values, text.isascii()):
        return values, []
    return _ids_slow(text, shown, noun)


# Trimmed around an ID: spaces, tabs and other blanks, but not the control characters
# that str.strip() would also drop silently (form feed, U+001C-U+001F, U+0085).
_TRIM = " \t\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# One character class (a fast scan in `re`): every character that is not part of a
# plain ID, or starts a comment. A file without any is one ID per line as it stands.
_UNUSUAL = re.compile(f"[\\x00-\\x09\\x0b-\\x20,#\\x7f-\\x9f{_TRIM}]")
_BAD_IN_LINES = re.compile(r"[^\S\n]|[,\x00-\x09\x0b-\x1f\x7f-\x9f]")
# The same test for ASCII text, where it is a C byte scan (3x faster than the regex):
# deleting these bytes leaves nothing exactly when `_UNUSUAL` finds nothing.
_PLAIN_ASCII = bytes(c for c in range(0x21, 0x7F) if chr(c) not in ",#") + b"\n"


def _plain_lines(text: str) -> list[str] | None:
    """The lines, if the file is nothing but one ID per line (the usual export)."""
    body = text.removesuffix("\n")
    if not body or body[0] == "\n" or body[-1] == "\n" or "\n\n" in body:
        return None
    unusual = body.encode().translate(None, _PLAIN_ASCII) if body.isascii() else _UNUSUAL.search(body)
    return None if unusual else body.split("\n")


def _all_good(values: list[str], ascii_text: bool) -> bool:
    """The fast path for large files: C-speed scans over all values, no per-line Python."""
    if max(map(len, values), default=0) > ID_MAX or len(set(values)) != len(values):
        return False
    if ascii_text:  # controls were ruled out by the caller; nothing else to see
        return True
    joined = "\n".join(values)
    return unicodedata.is_normalized("NFC", joined) and not any(
        unicodedata.category(ch) in ("Cf", "Cc") for ch in set(joined) - {"\n"}
    )


def _ids_slow(text: str, shown: str, noun: str) -> tuple[list[str], list[Diagnostic]]:
    """Line by line, naming every bad or repeated ID."""
    ids: list[str] = []
    diags: list[Diagnostic] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        value = line.strip(_TRIM)
        if not value or value.startswith("#"):
            continue
        col = line.find(value) + 1
        if (problem := text_problem(value)) is not None:
            offset, message = problem
            diags.append(Diagnostic(shown, lineno, col + offset, f"{noun} {message}"))
        elif len(value) > ID_MAX or not ID_RE.match(value):
            diags.append(Diagnostic(shown, lineno, col, _bad_id(value)))
        elif value in seen:
            diags.append(Diagnostic(shown, lineno, col, f"duplicate ID '{value}' (counted once)", "warning"))
        else:
            seen.add(value)
            ids.append(value)
    return ids, diags


def _bad_id(value: str) -> str:
    if len(value) > ID_MAX:
        return f"ID is longer than {ID_MAX} characters"
    return f"bad ID {value!r}: IDs may not contain commas, whitespace or control characters"


def _dedupe(
    path: str, doc: Document, loc: Loc, values: Iterable[str], diags: list[Diagnostic]
) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for i, value in enumerate(values):
        if value in seen:
            line, col = yamlsource.position(doc, (*loc, i))
            field_name = ".".join(str(p) for p in loc)
            diags.append(
                Diagnostic(
                    path, line, col, f"{field_name}[{i}]: duplicate '{value}' (counted once)", "warning"
                )
            )
        seen[value] = None
    return tuple(seen)


def _renamed_from(
    path: str, doc: Document, name: str, olds: list[str], diags: list[Diagnostic]
) -> list[tuple[str, tuple[int, int]]]:
    """The earlier names with their positions; a manifest cannot have been renamed from itself."""
    loc: Loc = ("metadata", "renamedFrom")
    renamed = []
    for old in _dedupe(path, doc, loc, olds, diags):
        i = olds.index(old)
        at = yamlsource.position(doc, (*loc, i))
        if old == name:
            msg = f"metadata.renamedFrom[{i}]: '{old}' is this manifest's own name; list only earlier names"
            diags.append(Diagnostic(path, *at, msg))
        renamed.append((old, at))
    return renamed


def _check_renames(manifests: list[Manifest]) -> list[Diagnostic]:
    """An old name is not in use any more, and only one manifest carries it on."""
    current = {m.name: m for m in reversed(manifests)}  # the first one, as _check_unique_names
    claimed: dict[str, tuple[Manifest, int, int]] = {}
    diags: list[Diagnostic] = []
    for m in manifests:
        for old, (line, col) in zip(m.renamed_from, m.renamed_from_at, strict=True):
            here = f"{m.path}:{line}:{col}"
            if old != m.name and (other := current.get(old)) is not None:
                msg = (
                    f"metadata.renamedFrom: '{old}' is the name of the manifest at {other.path}:{other.line}"
                )
                diags.append(Diagnostic(m.path, line, col, f"{msg}; an old name must not be in use"))
                msg = f"metadata.name '{old}' is listed as an old name (renamedFrom) at {here}"
                diags.append(Diagnostic(other.path, other.line, 1, msg))
            if old in claimed:
                first, first_line, first_col = claimed[old]
                there = f"{first.path}:{first_line}:{first_col}"
                msg = "metadata.renamedFrom: '{}' is also claimed by '{}' at {}"
                diags.append(Diagnostic(m.path, line, col, msg.format(old, first.name, there)))
                diags.append(Diagnostic(first.path, first_line, first_col, msg.format(old, m.name, here)))
            else:
                claimed[old] = (m, line, col)
    return diags


def _check_unique_names(manifests: list[Manifest]) -> list[Diagnostic]:
    first: dict[str, Manifest] = {}
    diags: list[Diagnostic] = []
    for m in manifests:
        if m.name not in first:
            first[m.name] = m
            continue
        for here, there in ((m, first[m.name]), (first[m.name], m)):
            line, col = here.name_position
            at = ":".join(map(str, (there.path, *there.name_position)))
            diags.append(Diagnostic(here.path, line, col, f"metadata.name '{m.name}' is also used at {at}"))
    return diags


# --- pydantic errors as diagnostics -------------------------------------------------


def _diagnostic(path: str, doc: Document, err: Any) -> Diagnostic:
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind: str = err["type"]
    line, col = yamlsource.position(doc, loc, at_key=kind == "extra_forbidden")
    error = err.get("ctx", {}).get("error")
    if isinstance(error, TextError) and isinstance(err.get("input"), str):
        line, col = yamlsource.char_position(doc, loc, err["input"], error.offset)
    return Diagnostic(path, line, col, f"{field_path(loc)}: {error_message(kind, loc, err)}")
