"""The repository config file, `reconcile.yaml`: one reviewed file for what CI needs.

It holds the ledger's path and git branch, the gateway and credential variable names
per org, resume settings for gateways whose List Pipelines lacks them, and the apply
policy. Flags override it (`pick`), so CI commands stay one line. Errors name
`file:line:col` like manifests' (STYLE "Errors reach people once, well"); the JSON
Schema in `schemas/` is generated from these models.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from reconciler import yamlsource
from reconciler.errors import ConfigError, Diagnostic
from reconciler.manifests.schema import Id, error_message, field_path

CONFIG_FILE = "reconcile.yaml"
CONFIG_SCHEMA_FILE = "reconcile-config-v1.schema.json"
KIND = "ReconcileConfig"

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2048)]
Branch = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_/.-]*[A-Za-z0-9_]$", max_length=255)
]


# ledger.git.leaseSeconds: the one bound, checked here (the setting) and by the lease
# itself (gitsync.lease: writing one, and reading one another run wrote).
LEASE_SECONDS_MIN = 1
LEASE_SECONDS_MAX = 86_400  # a day: EnOS keeps a job paused for at most 24 h


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class GitSettings(_Strict):
    """Keep the ledger on a remote branch; apply fetches it first and pushes its records."""

    enabled: bool = Field(default=True, description="Sync the ledger with the remote branch.")
    remote: str = Field(default="origin", min_length=1, description="The git remote.")
    branch: Branch = Field(
        default="main",
        description="The ledger's branch: main, or a dedicated one such as reconcile/ledger "
        "when main is protected.",
    )
    leaseSeconds: int = Field(
        default=120,
        ge=LEASE_SECONDS_MIN,
        le=LEASE_SECONDS_MAX,
        description="How long the lease of a sending apply lasts unless renewed (it is renewed "
        "every third of it); another apply waits for it or refuses, and a runner that died "
        "lets it run out. At most a day: EnOS keeps a job paused for at most 24 h.",
    )


class LedgerSettings(_Strict):
    path: str = Field(
        default="applied-ledger.jsonl",
        min_length=1,
        description="The ledger file, relative to this file; inside the repository.",
    )
    git: GitSettings = Field(default_factory=GitSettings)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative path inside the repository (no '..')")
        return value


class GatewaySettings(_Strict):
    """The gateway of one org (or, without orgId, of every other org) and where its
    credentials are: names of environment variables, never the secrets themselves."""

    orgId: Id | None = Field(default=None, description="The org; omit for the default gateway.")
    url: Url = Field(description="https:// (http only to loopback).")
    appKeyEnv: EnvName = Field(default="ENOS_APP_KEY", description="Variable holding the app key.")
    appSecretEnv: EnvName = Field(default="ENOS_APP_SECRET", description="Variable holding the secret.")


class PipelineSettings(_Strict):
    """How to start a pipeline again, for gateways whose List Pipelines does not say."""

    orgId: Id
    pipelineId: Id
    executionMode: int = Field(description="executionMode of the start (resume) call.")
    kafkaRate: int = Field(ge=1, description="kafkaRate of the start (resume) call.")
    resourceConfig: int | dict[str, Any] | None = Field(
        default=None,
        description="resourceConfig sent with the start call: a CU count in standalone mode, "
        "or an object such as {server, yarn: {workerCount, master, slave}, advanced} in "
        "cluster mode (Operate Pipeline, start).",
    )


class ApplySettings(_Strict):
    maxCells: int | None = Field(default=None, ge=1, description="Refuse a plan larger than this.")
    concurrency: int | None = Field(default=None, ge=1, le=64, description="Requests at a time.")
    pausePipelines: bool | None = Field(
        default=None, description="Pause RUNNING pipelines for the deletes, then start them again."
    )
    startTimeout: float | None = Field(
        default=None,
        ge=0,
        description="Seconds to keep trying a start that EnOS refuses because another job of the "
        "org is starting (61121); default 600.",
    )
    snapshot: str | None = Field(
        default=None,
        min_length=1,
        description="Keep the state read just before each delete in this file (JSON Lines, gzip for .gz), "
        "relative to this file; costs one read per request.",
    )


class ConfigDoc(_Strict):
    """The repository config file, reconcile.yaml."""

    model_config = ConfigDict(title="reconciler ReconcileConfig")

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["ReconcileConfig"]
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    gateways: list[GatewaySettings] = Field(default_factory=list)
    pipelines: list[PipelineSettings] = Field(default_factory=list)
    apply: ApplySettings = Field(default_factory=ApplySettings)


# --- the typed value the rest of the tool sees ----------------------------------------


@dataclass(frozen=True)
class Gateway:
    org_id: str | None
    url: str
    app_key_env: str
    app_secret_env: str


@dataclass(frozen=True)
class ResumeSettings:
    org_id: str
    pipeline_id: str
    execution_mode: int
    kafka_rate: int
    resource_config: str | None  # canonical JSON of the object, so the value stays hashable


@dataclass(frozen=True)
class GitSync:
    remote: str
    branch: str
    lease_seconds: int = 120


@dataclass(frozen=True)
class RepoConfig:
    """reconcile.yaml, checked. `git` is None when git sync is off."""

    path: Path
    ledger_path: Path  # relative to the working directory when the file is
    git: GitSync | None
    gateways: tuple[Gateway, ...] = ()
    pipelines: tuple[ResumeSettings, ...] = ()
    max_cells: int | None = None
    concurrency: int | None = None
    pause_pipelines: bool | None = None
    start_timeout: float | None = None
    snapshot: Path | None = None  # apply.snapshot, relative to the working directory like ledger_path

    def gateway_for(self, org_id: str) -> Gateway | None:
        """The org's own gateway, else the default entry (no orgId), else None."""
        by_org = {g.org_id: g for g in self.gateways}
        return by_org.get(org_id) or by_org.get(None)

    def resume_for(self, org_id: str, pipeline_id: str) -> ResumeSettings | None:
        return next((p for p in self.pipelines if (p.org_id, p.pipeline_id) == (org_id, pipeline_id)), None)


def review_changes(base: RepoConfig | None, head: RepoConfig | None) -> list[str]:
    """What a pull request changes in reconcile.yaml that a reviewer must see first: where
    credentials are sent (gateways, credential variable names), the ledger's settings,
    and the apply policy. Empty when none of those change."""
    out: list[str] = []
    b_gw = {g.org_id: g for g in base.gateways} if base else {}
    h_gw = {g.org_id: g for g in head.gateways} if head else {}
    for org in sorted(set(b_gw) | set(h_gw), key=lambda o: o or ""):
        who = f"org {org}" if org else "the default gateway"
        old, new = b_gw.get(org), h_gw.get(org)
        if old != new:
            unset = "none in reconcile.yaml ($ENOS_API_GATEWAY with $ENOS_APP_KEY/$ENOS_APP_SECRET)"
            was = f"{old.url} with ${old.app_key_env}/${old.app_secret_env}" if old else unset
            now = f"{new.url} with ${new.app_key_env}/${new.app_secret_env}" if new else unset
            out.append(f"where credentials are sent for {who}: {was} -> {now}")
    if _ledger_settings(base) != _ledger_settings(head):
        line = f"where the ledger is kept: {_ledger_text(base)} -> {_ledger_text(head)}"
        if base is not None and base.git is not None and (head is None or head.git is None):
            line += " (once merged, every apply is refused: the ledger is anchored in git)"
        out.append(line)
    if _policy(base) != _policy(head):
        names = ("maxCells", "concurrency", "pausePipelines")
        changed = [
            f"{n} {b} -> {h}" for n, b, h in zip(names, _policy(base), _policy(head), strict=True) if b != h
        ]
        out.append("the apply policy: " + ", ".join(changed))
    return out


def _ledger_settings(c: RepoConfig | None) -> tuple[object, ...]:
    if c is None:
        return (None,)
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    return (where, c.git.remote, c.git.branch, c.git.lease_seconds) if c.git else (where, "git off")


def _ledger_text(c: RepoConfig | None) -> str:
    if c is None:
        return "no reconcile.yaml"
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    if c.git is None:
        return f"{where}, not in git"
    return f"{where} on {c.git.remote}/{c.git.branch} (lease {c.git.lease_seconds}s)"


def _policy(c: RepoConfig | None) -> tuple[object, ...]:
    return (c.max_cells, c.concurrency, c.pause_pipelines) if c else (None, None, None)


T = TypeVar("T")


def pick(flag: T | None, configured: T | None, default: T) -> T:
    """A flag given on the command line wins, then reconcile.yaml, then the default.

    Flags that merge with the config must default to None in the CLI, so that "not
    given" can be told from "given as the default".
    """
    if flag is not None:
        return flag
    return configured if configured is not None else default


# --- loading -------------------------------------------------------------------------


def find_config(start: Path | None = None) -> Path | None:
    """`reconcile.yaml` in the working directory or the nearest directory above it, up to
    the top of its git work tree: run from `manifests/`, a command still finds the
    repository's config and ledger (a ledger kept in git is never skipped for a `cd`)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / CONFIG_FILE).is_file():
            found = directory / CONFIG_FILE
            return Path(os.path.relpath(found)) if directory != here else Path(CONFIG_FILE)
        if (directory / ".git").exists():
            return None
    return None


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
        raw = Path(path).read_bytes()
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
    return (None if diags else model), diags


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
    )


# --- the JSON Schema -----------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of reconcile.yaml, as committed under `schemas/`."""
    schema = ConfigDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://reconciler.dev/schemas/reconcile-config-v1.json"
    return schema


def render_config_schema() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
