"""Loading reconcile.yaml: found from the working directory up to its git work tree,
read within bounds, parsed with positions, and every problem a `file:line:col`
diagnostic (STYLE "Errors reach people once, well")."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from reconciler import windows as windows_mod
from reconciler import yamlsource
from reconciler.config.bounds import CONFIG_FILE, find_config
from reconciler.config.schema import (
    ConfigDoc,
    GatewaySettings,
    RolloutSettings,
    WindowSettings,
    ledger_files_problem,
    snapshot_name_problem,
)
from reconciler.config.value import Gateway, GitSync, NotifyTarget, RepoConfig, ResumeSettings
from reconciler.errors import ConfigError, Diagnostic
from reconciler.manifests.schema import error_message, field_path

CONFIG_MAX_BYTES = yamlsource.MAX_BYTES  # a reconcile.yaml is a page or two


def load_config(path: str | Path | None = None) -> RepoConfig | None:
    """Load `path`, or the `reconcile.yaml` that `find_config` finds.

    None when no path is given and there is no such file; a given path that does not
    exist, and any invalid content, is `ConfigError` naming every `file:line:col`.
    """
    if path is None:
        path = find_config()
        if path is None:
            return None
    shown = str(path)
    try:
        raw = yamlsource.read_regular(path, CONFIG_MAX_BYTES)  # /dev/zero: refused, never read
    except (yamlsource.NotRegularFile, yamlsource.FileTooLarge) as exc:
        raise ConfigError(f"{shown}: cannot read the config file: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file: {exc.strerror}") from exc
    doc, diags = _parse(shown, raw)
    if doc is None:
        raise ConfigError("\n".join(map(str, sorted(diags))))
    return _value(Path(path), doc)


def _parse(shown: str, raw: bytes) -> tuple[ConfigDoc | None, list[Diagnostic]]:
    text, diags = yamlsource.decode(shown, raw)
    if text is None:
        return None, diags
    docs, diags = yamlsource.load_documents(shown, text)
    if diags:
        return None, diags
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        line, col = (docs[1].line, docs[1].col) if len(docs) > 1 else (1, 1)
        return None, [Diagnostic(shown, line, col, f"{CONFIG_FILE} must be one YAML mapping")]
    doc = docs[0]
    try:
        model = ConfigDoc.model_validate(yamlsource.plain(doc.data))
    except ValidationError as exc:
        return None, [_diagnostic(shown, doc, err) for err in exc.errors()]
    diags = _duplicates(shown, doc, "gateways", [(g.orgId,) for g in model.gateways])
    diags += _secret_as_key(shown, doc, model.gateways)
    diags += _duplicates(shown, doc, "pipelines", [(p.orgId, p.pipelineId) for p in model.pipelines])
    diags += _not_the_ledger(shown, doc, model)
    return (None if diags else model), diags


def _not_the_ledger(shown: str, doc: yamlsource.Document, model: ConfigDoc) -> list[Diagnostic]:
    """apply.snapshot must never write over the ledger's own files."""
    snapshot = model.apply.snapshot
    problem = (
        None
        if snapshot is None
        else ledger_files_problem(snapshot, model.ledger.path) or snapshot_name_problem(snapshot)
    )
    if problem is None:
        return []
    line, col = yamlsource.position(doc, ("apply", "snapshot"))
    return [Diagnostic(shown, line, col, f"apply.snapshot: {problem}")]


def _duplicates(
    shown: str, doc: yamlsource.Document, key: str, ids: list[tuple[str | None, ...]]
) -> list[Diagnostic]:
    """One gateway per org (one default), one resume setting per pipeline."""
    diags = []
    for i, value in enumerate(ids):
        if value in ids[:i]:
            line, col = yamlsource.position(doc, (key, i))
            what = "/".join(v or "(default)" for v in value)
            first = ids.index(value)
            diags.append(
                Diagnostic(shown, line, col, f"{key}[{i}]: {what} is already given in {key}[{first}]")
            )
    return diags


_SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "PRIVATE")


def _secret_as_key(shown: str, doc: yamlsource.Document, gateways: list[GatewaySettings]) -> list[Diagnostic]:
    """An `appKeyEnv` naming a secret variable would send the secret in plain text, as the
    app key, in the token request (DESIGN "Reviewed is what gets applied")."""
    secrets = {g.appSecretEnv for g in gateways} | {"ENOS_APP_SECRET", "ENOS_READONLY_APP_SECRET"}
    diags = []
    for i, g in enumerate(gateways):
        name = g.appKeyEnv
        if name in secrets or any(word in name.upper() for word in _SECRET_WORDS):
            line, col = yamlsource.position(doc, ("gateways", i, "appKeyEnv"))
            diags.append(
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"gateways[{i}].appKeyEnv: {name} names a secret; the app key is sent in plain "
                    "text in every token request, so it must name the variable of the app key "
                    "(e.g. ENOS_APP_KEY), never a secret's",
                )
            )
    return diags


def _diagnostic(path: str, doc: yamlsource.Document, err: Any) -> Diagnostic:
    loc: yamlsource.Loc = tuple(err["loc"])
    kind: str = err["type"]
    line, col = yamlsource.position(doc, loc, at_key=kind == "extra_forbidden")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known(loc[:-1]), n=1)
        message = "unknown field" + (f"; did you mean '{close[0]}'?" if close else "")
    elif kind == "string_pattern_mismatch":
        message = f"{err.get('input')!r} is not a valid {_what(loc)}"
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {err.get('input')!r}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = err.get("ctx", {}).get("ge", err.get("ctx", {}).get("le"))
        message = f"must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound}"
    else:
        message = error_message(kind, loc, err)
    return Diagnostic(path, line, col, f"{field_path(loc)}: {message}")


_EXPECTED = {"int_type": "an integer", "bool_type": "true or false"}


def _what(loc: yamlsource.Loc) -> str:
    last = str(loc[-1]) if loc else ""
    if last.endswith("Env"):
        return "environment variable name"
    return {"url": "URL (https://host/...)", "branch": "branch name"}.get(last, "ID")


def _known(parent: yamlsource.Loc) -> list[str]:
    """The fields allowed at `parent`, for did-you-mean."""
    model: type[BaseModel] = ConfigDoc
    for part in parent:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        inner = _model_of(info.annotation if info else None)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _value(path: Path, doc: ConfigDoc) -> RepoConfig:
    git = doc.ledger.git
    return RepoConfig(
        path=path,
        ledger_path=path.parent / doc.ledger.path,
        git=GitSync(git.remote, git.branch, git.leaseSeconds) if git.enabled else None,
        gateways=tuple(Gateway(g.orgId, g.url, g.appKeyEnv, g.appSecretEnv) for g in doc.gateways),
        pipelines=tuple(
            ResumeSettings(
                p.orgId,
                p.pipelineId,
                p.executionMode,
                p.kafkaRate,
                None if p.resourceConfig is None else json.dumps(p.resourceConfig, sort_keys=True),
            )
            for p in doc.pipelines
        ),
        max_cells=doc.apply.maxCells,
        concurrency=doc.apply.concurrency,
        pause_pipelines=doc.apply.pausePipelines,
        start_timeout=doc.apply.startTimeout,
        snapshot=None if doc.apply.snapshot is None else path.parent / doc.apply.snapshot,
        doc=doc,
        windows=_windows(doc.apply.windows),
        max_paused=doc.apply.rollout.maxPaused if doc.apply.rollout else None,
        max_pause=_max_pause(doc.apply.rollout),
        canary=doc.apply.rollout.canary if doc.apply.rollout else None,
        notify=tuple(NotifyTarget(n.urlEnv, tuple(n.on), n.timeoutSeconds) for n in doc.notify),
    )


def _max_pause(r: RolloutSettings | None) -> float | None:
    return None if r is None or r.maxPause is None else windows_mod.pause_duration(r.maxPause)


def _windows(w: WindowSettings | None) -> windows_mod.Windows | None:
    if w is None:
        return None
    deny: list[windows_mod.Rule] = []
    for d in w.deny:
        if d.cron is not None and d.duration is not None:
            deny.append(windows_mod.Recurring(d.cron, windows_mod.parse_duration(d.duration), d.reason))
        elif d.from_ is not None and d.to is not None:
            deny.append(
                windows_mod.Dates(windows_mod.parse_when(d.from_), windows_mod.parse_when(d.to), d.reason)
            )
    return windows_mod.Windows(
        windows_mod.zone(w.timeZone),
        tuple(windows_mod.Recurring(a.cron, windows_mod.parse_duration(a.duration)) for a in w.allow),
        tuple(deny),
    )
