"""Loading manifests: discovery, validation, ID files, cross-file checks.

Returns `(manifests, diagnostics)`: every problem in every file in one run, each
naming `file:line:col` and the field (DESIGN "Manifest format"). Nothing here
talks to the network or the ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler import yamlsource
from reconciler.errors import Diagnostic, InputError, ReconcilerError
from reconciler.manifests._ids import IDS_MAX_BYTES, parse_ids, read_ids_file, read_ids_source
from reconciler.manifests.schema import (
    SOURCES,
    ManifestDoc,
    TextError,
    error_message,
    field_path,
    line_problem,
)
from reconciler.yamlsource import MAX_BYTES, Document, FileTooLarge, Loc, NotRegularFile

__all__ = [
    "IDS_MAX_BYTES",
    "IdSource",
    "IdsCache",
    "LoadResult",
    "Manifest",
    "discover",
    "load",
    "load_or_raise",
    "parse_ids",
    "read_ids_file",
]

SUFFIXES = (".yaml", ".yml")
# What each ID file gave, read once per (file, "assetId" or "pointId") in a run; one
# tuple per file, shared by every manifest naming it (the diff reuses work per tuple),
# with the sha256 of the file's bytes.
IdsCache = dict[tuple[Path, str], tuple[tuple[str, ...] | None, list[Diagnostic], str | None]]


@dataclass(frozen=True)
class IdSource:
    """Where a manifest's IDs came from when they are in a file: the plan names the file
    and its digest, so a reviewer can tell which 50,000 IDs were approved."""

    field: str  # "assetIdsFile" or "pointIdsFile"
    path: str  # as shown in diagnostics: the manifest's directory joined with the given path
    sha256: str
    ids: int

    @property
    def noun(self) -> str:
        return "asset" if self.field == "assetIdsFile" else "point"

    def to_json(self) -> dict[str, object]:
        return {"field": self.field, "path": self.path, "sha256": self.sha256, "ids": self.ids}


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
    reclear: str | None = None  # `metadata.reclear`: why it clears again what an old name cleared
    # (line, col) of each `renamed_from` name, for diagnostics that span manifests.
    renamed_from_at: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)
    # (line, col) of `metadata.name` (0, 0: not known, as for a manifest made in code).
    name_at: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)
    # The ID files its assets and points were read from (none for inline lists).
    id_sources: tuple[IdSource, ...] = field(default=(), compare=False)

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
    if (bad_name := _file_name_problem(path)) is not None:
        return [], [Diagnostic(ascii(path)[1:-1], 1, 1, bad_name)]
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
    sources: list[IdSource] = []
    from_files = {key: _ids_file(path, root, doc, key, ids_cache, diags, sources) for _, key in SOURCES}
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
    diags.extend(_check_labels(path, doc, meta.labels or {}))
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
            reclear=meta.reclear,
            renamed_from_at=tuple(at for _, at in renamed),
            name_at=yamlsource.position(doc, ("metadata", "name")),
            id_sources=tuple(sources),
        ),
        diags,
    )


def _check_labels(path: str, doc: Document, labels: dict[str, str]) -> list[Diagnostic]:
    """Label keys and values are one line of text: a line break or a control character in
    one could fake structure wherever it is shown (issue 27, "Text is text")."""
    diags = []
    for key, value in labels.items():
        for text, is_key in ((key, True), (value, False)):
            if (problem := line_problem(text)) is None:
                continue
            loc: Loc = ("metadata", "labels", key)
            if is_key:
                line, col = yamlsource.position(doc, loc, at_key=True)
            else:
                line, col = yamlsource.char_position(doc, loc, value, problem[0])
            what = "a label's key" if is_key else f"metadata.labels.{key!r}"
            diags.append(Diagnostic(path, line, col, f"{what}: {problem[1]}"))
    return diags


def _file_name_problem(path: str) -> str | None:
    """A manifest or ID file whose name holds a line break or a control character: its
    name is shown in plans and comments, and must be one line of text."""
    problem = line_problem(path)
    return None if problem is None else f"the file name {path!r} {problem[1]}; rename the file"


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
    sources: list[IdSource],
) -> tuple[str, ...] | None:
    spec = doc.data.get("spec")
    rel = spec.get(file_key) if isinstance(spec, dict) else None
    if not isinstance(rel, str) or not rel:
        return None
    line, col = yamlsource.position(doc, ("spec", file_key))
    where = f"spec.{file_key}"
    if (bad_name := _file_name_problem(rel)) is not None:
        diags.append(Diagnostic(path, line, col, f"{where}: {bad_name}"))
        return None
    target = _inside_root(Path(path).parent / rel, root)
    if target is None:
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' is outside the manifests root {root}"))
        return None
    noun = file_key.removesuffix("sFile")  # assetIdsFile -> assetId
    if (target, noun) not in ids_cache:
        read, read_diags, digest = read_ids_source(target, _display(path, rel), noun)
        ids_cache[target, noun] = (None if read is None else tuple(read)), read_diags, digest
    ids, file_diags, digest = ids_cache[target, noun]
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
    sources.append(IdSource(file_key, _display(path, rel), digest or "", len(ids)))
    return ids


def _display(manifest_path: str, rel: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(manifest_path), rel))


def _inside_root(candidate: Path, root: Path) -> Path | None:
    """The resolved path if it stays inside `root` (no `..` escape, no symlink out)."""
    resolved = candidate.resolve()
    if resolved == root or root in resolved.parents:
        return resolved
    return None


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
