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
import math
import os
import posixpath
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from reconciler import windows as windows_mod
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

# Bounds of the numbers reconcile.yaml and the flags give, checked where each is read
# (the model here, `check_bound` for flags): one definition each.
MAX_CELLS_LIMIT = 10**12
MAX_START_TIMEOUT = 86_400.0  # EnOS keeps a pipeline paused for at most 24 h
MAX_INT32 = 2**31 - 1
MAX_PATH = 4096
# git remote helpers that run a command of the remote's choosing (`ext::sh -c ...`)
_COMMAND_TRANSPORTS = ("ext", "fd")
_URL_SECRET = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")


def check_bound(what: str, value: float | None, low: float, high: float) -> None:
    """A number given on the command line, held to the bound reconcile.yaml's is held to
    (NaN and infinities included): `ConfigError` naming the flag otherwise."""
    if value is None:
        return
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{what}: {value!r} is out of range ({low:g} to {high:g})")


def remote_problem(value: str) -> str | None:
    """Why `value` cannot be a git remote (name or URL), or None. A leading `-` would be an
    option to git (`--upload-pack=<command>` runs the command); `ext::`/`fd::` make git
    run a command too."""
    if value.startswith("-"):
        return "must not begin with '-' (git would read it as an option)"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain whitespace or control characters"
    transport, sep, _ = value.partition("::")
    if sep and transport.lower() in _COMMAND_TRANSPORTS:
        return f"the {transport}:: transport runs a command; name a remote or an https/ssh URL"
    if _URL_SECRET.match(value):
        # reconcile.yaml is committed and shown in plans and pull-request comments
        return (
            "must not carry a password or token (scheme://user:secret@host): name the remote, "
            "and give git its credentials from CI (a credential helper or the job's token)"
        )
    return None


def path_problem(value: str) -> str | None:
    """Why `value` cannot be a path setting (relative to reconcile.yaml's folder), or None:
    it stays inside the repository and out of git's own files."""
    norm = value.replace("\\", "/")
    path = PurePosixPath(norm)
    if path.is_absolute() or ".." in path.parts or norm[1:3] == ":/":  # C:/ too
        return "must be a relative path inside the repository (no '..')"
    if any(part.casefold() == ".git" for part in path.parts):
        return "must not name .git or anything in it"
    if any(part.startswith("-") for part in path.parts):
        return "must not have a part beginning with '-'"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain control characters"
    return None


SNAPSHOT_SUFFIXES = (".jsonl", ".jsonl.gz")


def snapshot_name_problem(value: str) -> str | None:
    """Why `value` cannot be the snapshot file, or None: apply appends JSON lines to it, so
    it must be a JSON Lines file of its own, never a manifest, reconcile.yaml, an ID file or
    any other file of the repository that apply would corrupt."""
    if not value.casefold().endswith(SNAPSHOT_SUFFIXES):
        return "must name a JSON Lines file of its own (.jsonl or .jsonl.gz), not a manifest or another file"
    return None


def ledger_files_problem(value: str, ledger: str) -> str | None:
    """Why the path `value` would write over the ledger's own files (the main file, its
    `.d/` folder, lock or lease), or None; both relative to reconcile.yaml's folder."""
    path = posixpath.normpath(value.replace("\\", "/")).casefold()
    main = posixpath.normpath(ledger.replace("\\", "/")).casefold()
    own = {main, main + ".lock", main + ".lease", main + ".d"}
    if path in own or path.startswith(main + ".d/"):
        return f"must not be one of the ledger's files ({ledger}, its .d/ folder, lock or lease)"
    return None


# ledger.git.leaseSeconds: the one bound, checked here (the setting) and by the lease
# itself (gitsync.lease: writing one, and reading one another run wrote).
LEASE_SECONDS_MIN = 1
LEASE_SECONDS_MAX = 86_400  # a day: EnOS keeps a job paused for at most 24 h


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class GitSettings(_Strict):
    """Keep the ledger on a remote branch; apply fetches it first and pushes its records."""

    enabled: bool = Field(default=True, description="Sync the ledger with the remote branch.")
    remote: str = Field(
        default="origin",
        min_length=1,
        max_length=2048,
        description="The git remote: a remote's name or a URL. In a pull request's plan job it is "
        "read from the base branch, never from the pull request.",
    )
    branch: Branch = Field(
        default="main",
        description="The ledger's branch: main, or a dedicated one such as reconcile/ledger "
        "when main is protected.",
    )

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        problem = remote_problem(value)
        if problem:
            raise ValueError(problem)
        return value

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
        max_length=MAX_PATH,
        description="The ledger file, relative to this file; inside the repository.",
    )
    git: GitSettings = Field(default_factory=GitSettings)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        problem = path_problem(value)
        if problem:
            raise ValueError(problem)
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
    executionMode: int = Field(
        ge=-MAX_INT32 - 1, le=MAX_INT32, description="executionMode of the start (resume) call."
    )
    kafkaRate: int = Field(ge=1, le=MAX_INT32, description="kafkaRate of the start (resume) call.")
    resourceConfig: Annotated[int, Field(ge=1, le=MAX_INT32)] | dict[str, Any] | None = Field(
        default=None,
        description="resourceConfig sent with the start call: a CU count in standalone mode, "
        "or an object such as {server, yarn: {workerCount, master, slave}, advanced} in "
        "cluster mode (Operate Pipeline, start).",
    )


class RolloutSettings(_Strict):
    """DESIGN "Gentle on production (the rollout)": each pipeline is paused only for its own
    work, at most `maxPaused` at once, never longer than `maxPause` at a time; each stage's
    first request checked alone (`canary`)."""

    maxPaused: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Pipelines paused by one run at the same time, over all orgs (default 2).",
    )
    maxPause: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="The longest one pause: 90s, 30m or 2h (default 1h, at most 23h). A pipeline "
        "whose pause reaches it is started again, and paused later for the rest.",
    )

    canary: bool | None = Field(
        default=None,
        description="Check each stage's first request before the rest (default true): read its cells "
        "and the next request's, send it alone, read both again; a gateway that answered true and "
        "kept the state, or cleared other cells, stops the whole run. Costs up to four reads per stage.",
    )

    @field_validator("maxPause")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            windows_mod.pause_duration(value)
        return value


class ApplySettings(_Strict):
    maxCells: int | None = Field(
        default=None, ge=1, le=MAX_CELLS_LIMIT, description="Refuse a plan larger than this."
    )
    concurrency: int | None = Field(default=None, ge=1, le=64, description="Requests at a time.")
    pausePipelines: bool | None = Field(
        default=None, description="Pause RUNNING pipelines for the deletes, then start them again."
    )
    startTimeout: float | None = Field(
        default=None,
        ge=0,
        le=MAX_START_TIMEOUT,
        allow_inf_nan=False,
        description="Seconds to keep trying a start that EnOS refuses because another job of the "
        "org is starting (61121); default 600.",
    )
    snapshot: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATH,
        description="Keep the state read just before each delete in this file (JSON Lines, gzip for .gz), "
        "relative to this file, inside the repository (never in .git, never the ledger's files); "
        "costs one read per request.",
    )
    windows: WindowSettings | None = Field(
        default=None, description="Change windows and freezes: when apply may pause production."
    )
    rollout: RolloutSettings | None = Field(
        default=None,
        description="How gently apply pauses production: pipelines paused at once, the longest pause, "
        "the canary.",
    )

    @field_validator("snapshot")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        problem = None if value is None else path_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class AllowWindow(_Strict):
    """A window in which apply may pause production: it opens at each time `cron` names
    and stays open for `duration`."""

    cron: str = Field(description="When it opens: minute hour day-of-month month day-of-week.")
    duration: str = Field(description="How long it stays open: 90s, 30m, 4h, 1d or 1h30m.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return windows_mod.check_cron(value)

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _duration_text(value)


class DenyWindow(_Strict):
    """A freeze: no pause inside it, whatever `allow` says. Either dates (`from`, `to`,
    whole days, or local times as 2027-01-25T18:00) or `cron` with a `duration`."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(default=None, alias="from", description="First day (or local time) frozen.")
    to: str | None = Field(
        default=None, description="Last day frozen (the whole day), or the local time it ends."
    )
    cron: str | None = Field(default=None, description="When a recurring freeze begins.")
    duration: str | None = Field(default=None, description="How long a recurring freeze lasts.")
    reason: str = Field(min_length=1, max_length=500, description="Why: apply and plan say it.")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        if isinstance(value, (date, datetime)):  # YAML's unquoted 2027-01-25
            value = value.isoformat()
        if isinstance(value, str):
            windows_mod.parse_when(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else windows_mod.check_cron(value)

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else _duration_text(value)

    @model_validator(mode="after")
    def _shape(self) -> DenyWindow:
        dated = self.from_ is not None or self.to is not None
        recurring = self.cron is not None or self.duration is not None
        if dated and recurring:
            raise ValueError("give either from/to or cron/duration, not both")
        if dated:
            if self.from_ is None or self.to is None:
                raise ValueError("a dated freeze needs both from and to")
            start, end = windows_mod.parse_when(self.from_), windows_mod.parse_when(self.to)
            if _as_datetime(end, True) <= _as_datetime(start, False):
                raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        elif self.cron is None or self.duration is None:
            raise ValueError("a freeze needs from and to (dates), or cron and duration")
        return self


def _duration_text(value: str) -> str:
    windows_mod.parse_duration(value)
    return value


def _as_datetime(value: date | datetime, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1) if end else value, datetime.min.time())


class WindowSettings(_Strict):
    """When apply may pause production (DESIGN "Windows"). Outside a window apply pauses
    and sends nothing, says it deferred and until when, and still starts pipelines an
    earlier run left paused."""

    timeZone: str = Field(default="UTC", description="IANA time zone of the crons and dates.")
    allow: list[AllowWindow] = Field(
        default_factory=list, description="Pause production only inside one of these (none: any time)."
    )
    deny: list[DenyWindow] = Field(default_factory=list, description="Freezes; they win over allow.")

    @field_validator("timeZone")
    @classmethod
    def _zone(cls, value: str) -> str:
        windows_mod.zone(value)
        return value


Event = Literal["applied", "failed", "deferred", "left-paused", "in-doubt"]
EVENTS: tuple[Event, ...] = ("applied", "failed", "deferred", "left-paused", "in-doubt")


class NotifySettings(_Strict):
    """A target told what apply did: an http(s) URL receiving a JSON POST, or, with the
    `notify` extra, any Apprise URL (DingTalk, WeCom, Feishu, Teams, Slack, mail). The
    URL is a secret: reconcile.yaml names the environment variable holding it."""

    urlEnv: EnvName = Field(description="The environment variable (a CI secret) holding the target URL.")
    on: list[Event] = Field(
        default_factory=lambda: list(EVENTS),
        min_length=1,
        description="The events sent to it (default: all).",
    )

    timeoutSeconds: float = Field(
        default=10,
        gt=0,
        le=120,
        description="How long one post may take (connect, and the answer); a target that fails or "
        "hangs is a warning, never a failed run.",
    )

    @field_validator("urlEnv", mode="before")
    @classmethod
    def _not_a_url(cls, value: object) -> object:
        # Never echo it: a URL here is a secret that was about to be published.
        if isinstance(value, str) and ("://" in value or "@" in value or "/" in value):
            raise ValueError(
                "is a URL (not shown: it may hold a token), not the name of an environment "
                "variable: put the URL in a CI secret and name its variable here, e.g. RECONCILE_NOTIFY_URL"
            )
        return value


class ConfigDoc(_Strict):
    """The repository config file, reconcile.yaml."""

    model_config = ConfigDict(title="reconciler ReconcileConfig")

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["ReconcileConfig"]
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    gateways: list[GatewaySettings] = Field(default_factory=list)
    pipelines: list[PipelineSettings] = Field(default_factory=list)
    apply: ApplySettings = Field(default_factory=ApplySettings)
    notify: list[NotifySettings] = Field(default_factory=list)


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
class NotifyTarget:
    url_env: str  # the variable holding the URL: the URL itself is a secret, never kept here
    on: tuple[str, ...]
    timeout: float = 10.0


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
    windows: windows_mod.Windows | None = None  # apply.windows; None: any time
    max_paused: int | None = None  # apply.rollout.maxPaused
    max_pause: float | None = None  # apply.rollout.maxPause, in seconds
    canary: bool | None = None  # apply.rollout.canary
    notify: tuple[NotifyTarget, ...] = ()
    # the file as checked, for comparing two versions setting by setting (`review_changes`)
    doc: ConfigDoc | None = field(default=None, compare=False, repr=False)


def review_changes(base: RepoConfig | None, head: RepoConfig | None) -> list[str]:
    """What a pull request changes in reconcile.yaml that changes what the merge does, for
    a reviewer to see first: where credentials are sent (gateways, credential variable
    names), where the ledger is kept, and every other setting, compared field by field over
    the whole file (apply, ledger, notify, pipelines and any section added later), so no
    new setting can change the merge unseen. Empty when nothing in them changes."""
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
    before, after = _leaves(base), _leaves(head)
    changed: dict[str, list[str]] = {}
    for key in sorted(set(before) | set(after), key=_leaf_order):
        if key in _SAID_ABOVE or before.get(key, _UNSET) == after.get(key, _UNSET):
            continue
        was, now = _shown(before.get(key, _UNSET)), _shown(after.get(key, _UNSET))
        changed.setdefault(key.split(".")[0].split("[")[0], []).append(f"{key} {was} -> {now}")
    for section, lines in changed.items():
        out.append(f"{_SECTIONS.get(section, f'the {section} settings')}: " + ", ".join(lines))
    return out


_UNSET = object()
# Said by the lines above (gateways; the ledger's place), so not repeated field by field.
_SAID_ABOVE = {"ledger.path", "ledger.git.enabled", "ledger.git.remote", "ledger.git.branch"}
_SECTIONS = {
    "apply": "what apply does",
    "ledger": "the ledger's settings",
    "notify": "who is notified",
    "pipelines": "how pipelines are started again",
}
_TOP_ORDER = ("ledger", "apply", "notify", "pipelines")


def _leaves(c: RepoConfig | None) -> dict[str, object]:
    """Every setting of the file as `dotted.path[i]` -> value, defaults filled in, the
    gateways left out (said by their own line). No file: every default, git off."""
    if c is None:
        tree: dict[str, Any] = ConfigDoc.model_construct().model_dump(mode="json")
        tree["ledger"] = {"path": None, "git": {"enabled": False}}
    elif c.doc is not None:
        tree = c.doc.model_dump(mode="json", by_alias=True)  # as written: `from`, not `from_`
    else:
        return {}
    for key in ("apiVersion", "kind", "gateways"):
        tree.pop(key, None)
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and (value or not prefix):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif value == [] and prefix:  # no entries: as unset, so a first entry is one line
            return
        else:
            out[prefix] = value

    walk("", tree)
    return out


def _leaf_order(key: str) -> tuple[int, str]:
    top = key.split(".")[0].split("[")[0]
    return (_TOP_ORDER.index(top) if top in _TOP_ORDER else len(_TOP_ORDER), key)


def _shown(value: object) -> str:
    if value is _UNSET:
        return "unset"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _ledger_settings(c: RepoConfig | None) -> tuple[object, ...]:
    if c is None:
        return (None,)
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    return (where, c.git.remote, c.git.branch) if c.git else (where, "git off")


def _ledger_text(c: RepoConfig | None) -> str:
    if c is None:
        return "no reconcile.yaml"
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    if c.git is None:
        return f"{where}, not in git"
    return f"{where} on {c.git.remote}/{c.git.branch} (lease {c.git.lease_seconds}s)"


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


# --- the JSON Schema -----------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of reconcile.yaml, as committed under `schemas/`."""
    schema = ConfigDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://reconciler.dev/schemas/reconcile-config-v1.json"
    return schema


def render_config_schema() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
