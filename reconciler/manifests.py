"""Loading manifests: discovery, validation, ID files, cross-file checks.

Returns `(manifests, diagnostics)`: every problem in every file in one run, each
naming `file:line:col` and the field (DESIGN "Manifest format"). Nothing here
talks to the network or the ledger.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler import yamlsource
from reconciler.errors import Diagnostic, InputError, ReconcilerError
from reconciler.models import ID_MAX, ID_RE, SOURCES, ManifestDoc, Spec
from reconciler.yamlsource import Document, Loc

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: the cross product it declares, and where it came from."""

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
        elif p.is_file():
            found.append((given, p.resolve().parent))
        else:
            raise ReconcilerError(f"{given}: no such file or directory")
    return found


def load(paths: Sequence[str]) -> LoadResult:
    """Load and check every manifest under `paths`; never raises for bad content."""
    result = LoadResult()
    ids_cache: dict[Path, tuple[tuple[str, ...], list[Diagnostic]]] = {}
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
    result.diagnostics = sorted(set(result.diagnostics))
    return result


def load_or_raise(paths: Sequence[str]) -> LoadResult:
    """`load`, raising `InputError` with every diagnostic if any is an error."""
    result = load(paths)
    if result.errors:
        raise InputError(result.diagnostics)
    return result


def _load_file(path: str, root: Path, ids_cache: dict[Path, Any]) -> tuple[list[Manifest], list[Diagnostic]]:
    try:
        raw = Path(path).read_bytes()
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
    path: str, root: Path, doc: Document, ids_cache: dict[Path, Any]
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
    if assets is None or points is None or any(d.severity == "error" for d in diags):
        return None, diags
    meta = model.metadata
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
    ids_cache: dict[Path, Any],
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
    if target not in ids_cache:
        ids_cache[target] = read_ids_file(target, _display(path, rel))
    ids, file_diags = ids_cache[target]
    diags.extend(file_diags)  # a shared file's diagnostics are de-duplicated in load()
    if ids is None:
        diags.append(Diagnostic(path, line, col, f"{where}: cannot read '{rel}': file not found"))
        return None
    if any(d.severity == "error" for d in file_diags):
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' holds bad IDs"))
        return None
    if not ids:
        diags.append(Diagnostic(path, line, col, f"{where}: '{rel}' holds no IDs"))
        return None
    return tuple(ids)


def _display(manifest_path: str, rel: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(manifest_path), rel))


def _inside_root(candidate: Path, root: Path) -> Path | None:
    """The resolved path if it stays inside `root` (no `..` escape, no symlink out)."""
    resolved = candidate.resolve()
    if resolved == root or root in resolved.parents:
        return resolved
    return None


def read_ids_file(target: Path, shown: str) -> tuple[list[str] | None, list[Diagnostic]]:
    """One ID per line; blank lines and `#` comments skipped; every bad line named."""
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return [], [Diagnostic(shown, 1, 1, f"cannot read ID file: {exc.strerror}")]
    text, diags = yamlsource.decode(shown, raw)
    if text is None:
        return [], diags
    values = [v for v in (line.strip() for line in text.split("\n")) if v and v[0] != "#"]
    if _all_good(values):
        return values, diags
    return _ids_slow(text, shown)


_BAD_IN_LINES = re.compile(r"[^\S\n]|[,\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _all_good(values: list[str]) -> bool:
    """The fast path for large files: one regex scan, one set, no per-line Python."""
    return (
        not _BAD_IN_LINES.search("\n".join(values))
        and max(map(len, values), default=0) <= ID_MAX
        and len(set(values)) == len(values)
    )


def _ids_slow(text: str, shown: str) -> tuple[list[str], list[Diagnostic]]:
    """Line by line, naming every bad or repeated ID."""
    ids: list[str] = []
    diags: list[Diagnostic] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if len(value) > ID_MAX or not ID_RE.match(value):
            diags.append(Diagnostic(shown, lineno, line.find(value) + 1, _bad_id(value)))
        elif value in seen:
            diags.append(
                Diagnostic(
                    shown,
                    lineno,
                    line.find(value) + 1,
                    f"duplicate ID '{value}' (counted once)",
                    "warning",
                )
            )
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


def _check_unique_names(manifests: list[Manifest]) -> list[Diagnostic]:
    first: dict[str, Manifest] = {}
    diags: list[Diagnostic] = []
    for m in manifests:
        if m.name in first:
            other = first[m.name]
            diags.append(
                Diagnostic(
                    m.path,
                    m.line,
                    1,
                    f"metadata.name '{m.name}' is also used at {other.path}:{other.line}",
                )
            )
            diags.append(
                Diagnostic(
                    other.path,
                    other.line,
                    1,
                    f"metadata.name '{m.name}' is also used at {m.path}:{m.line}",
                )
            )
        else:
            first[m.name] = m
    return diags


# --- pydantic errors as diagnostics -------------------------------------------------


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _diagnostic(path: str, doc: Document, err: Any) -> Diagnostic:
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind: str = err["type"]
    line, col = yamlsource.position(doc, loc, at_key=kind == "extra_forbidden")
    return Diagnostic(path, line, col, f"{_field(loc)}: {_message(kind, loc, err)}")


_KNOWN_FIELDS = {
    "": ["apiVersion", "kind", "metadata", "spec"],
    "metadata": ["name", "description", "labels"],
    "spec": list(Spec.model_fields),
}


def _message(kind: str, loc: Loc, err: Any) -> str:
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
        if last == "name":
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
