"""The repository config file, `reconcile.yaml`: one reviewed file for what CI needs.

It holds the ledger's path and git branch, the gateway and credential variable names
per org, resume settings for gateways whose List Pipelines lacks them, and the apply
policy. Flags override it (`pick`), so CI commands stay one line. Errors name
`file:line:col` like manifests' (STYLE "Errors reach people once, well").

    config.schema   the file as written: pydantic models, bounds, the JSON Schema
    config.value    the typed value the rest of the tool sees (RepoConfig), and `pick`
    config.load     finding and reading the file, diagnostics with positions
    config.review   what a pull request's reconcile.yaml changes, for its reviewer
"""

from reconciler.config.load import CONFIG_MAX_BYTES, find_config, load_config
from reconciler.config.review import review_changes
from reconciler.config.schema import (
    CONFIG_FILE,
    CONFIG_SCHEMA_FILE,
    LEASE_SECONDS_MAX,
    LEASE_SECONDS_MIN,
    MAX_CELLS_LIMIT,
    MAX_INT32,
    MAX_PATH,
    MAX_START_TIMEOUT,
    SNAPSHOT_SUFFIXES,
    ApplySettings,
    ConfigDoc,
    check_bound,
    config_json_schema,
    ledger_files_problem,
    path_problem,
    remote_problem,
    render_config_schema,
    snapshot_name_problem,
)
from reconciler.config.value import Gateway, GitSync, NotifyTarget, RepoConfig, ResumeSettings, pick

__all__ = [
    "CONFIG_FILE",
    "CONFIG_MAX_BYTES",
    "CONFIG_SCHEMA_FILE",
    "LEASE_SECONDS_MAX",
    "LEASE_SECONDS_MIN",
    "MAX_CELLS_LIMIT",
    "MAX_INT32",
    "MAX_PATH",
    "MAX_START_TIMEOUT",
    "SNAPSHOT_SUFFIXES",
    "ApplySettings",
    "ConfigDoc",
    "Gateway",
    "GitSync",
    "NotifyTarget",
    "RepoConfig",
    "ResumeSettings",
    "check_bound",
    "config_json_schema",
    "find_config",
    "ledger_files_problem",
    "load_config",
    "path_problem",
    "pick",
    "remote_problem",
    "render_config_schema",
    "review_changes",
    "snapshot_name_problem",
]
