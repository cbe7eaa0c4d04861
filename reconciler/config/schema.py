"""reconcile.yaml's schema: the pydantic models of the file as written (camelCase, as
the YAML spells it), each setting held to its bound (`config.bounds`), and its JSON Schema
(`schemas/`, generated from these models)."""

from __future__ import annotations

import json
import posixpath
import re
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from reconciler import windows as windows_mod
from reconciler.config.bounds import (
    LEASE_SECONDS_MAX,
    LEASE_SECONDS_MIN,
    MAX_CELLS_LIMIT,
    MAX_INT32,
    MAX_PATH,
    MAX_START_TIMEOUT,
)
from reconciler.manifests.schema import Id

CONFIG_SCHEMA_FILE = "reconcile-config-v1.schema.json"
KIND = "ReconcileConfig"

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2048)]
Branch = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_/.-]*[A-Za-z0-9_]$", max_length=255)
]

# git remote helpers that run a command of the remote's choosing (`ext::sh -c ...`)
_COMMAND_TRANSPORTS = ("ext", "fd")
_URL_SECRET = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")


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


# --- the JSON Schema -----------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of reconcile.yaml, as committed under `schemas/`."""
    schema = ConfigDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://reconciler.dev/schemas/reconcile-config-v1.json"
    return schema


def render_config_schema() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
