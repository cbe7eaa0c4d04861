"""The repository config file, `reconcile.yaml`: one reviewed file for what CI needs.

It holds the ledger's path and git branch, the gateway and credential variable names
per org, resume settings for gateways whose List Pipelines lacks them, and the apply
policy. Flags override it (`pick`), so CI commands stay one line. Errors name
`file:line:col` like manifests' (STYLE "Errors reach people once, well").

    config.bounds   the file's name and where it is found, the bounds of its numbers and
                    the flags', and `pick`: all a command needs when there is no file
    config.schema   the file as written: pydantic models, the JSON Schema
    config.value    the typed value the rest of the tool sees (RepoConfig)
    config.load     finding and reading the file, diagnostics with positions
    config.review   what a pull request's reconcile.yaml changes, for its reviewer

Importing the package imports `config.bounds` only; every other name is imported from
its module when it is first used (PEP 562 `__getattr__`), so a command run where there
is no reconcile.yaml (a first `reconcile plan`) builds none of the file's pydantic models
and windows (~10 ms of a plan's 0.4 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.config.bounds import (
    CONFIG_FILE,
    LEASE_SECONDS_MAX,
    LEASE_SECONDS_MIN,
    MAX_CELLS_LIMIT,
    MAX_INT32,
    MAX_PATH,
    MAX_START_TIMEOUT,
    check_bound,
    find_config,
    pick,
)
from reconciler.lazy import lazy_names

if TYPE_CHECKING:
    from reconciler.config.load import CONFIG_MAX_BYTES, load_config
    from reconciler.config.review import review_changes
    from reconciler.config.schema import (
        CONFIG_SCHEMA_FILE,
        SNAPSHOT_SUFFIXES,
        ApplySettings,
        ConfigDoc,
        config_json_schema,
        ledger_files_problem,
        path_problem,
        remote_problem,
        render_config_schema,
        snapshot_name_problem,
    )
    from reconciler.config.value import Gateway, GitSync, NotifyTarget, RepoConfig, ResumeSettings

# Where each name that is not `config.bounds`' lives: imported on first use.
_LAZY = {
    "load": ("CONFIG_MAX_BYTES", "load_config"),
    "review": ("review_changes",),
    "schema": (
        "CONFIG_SCHEMA_FILE",
        "SNAPSHOT_SUFFIXES",
        "ApplySettings",
        "ConfigDoc",
        "config_json_schema",
        "ledger_files_problem",
        "path_problem",
        "remote_problem",
        "render_config_schema",
        "snapshot_name_problem",
    ),
    "value": ("Gateway", "GitSync", "NotifyTarget", "RepoConfig", "ResumeSettings"),
}
if not TYPE_CHECKING:  # mypy reads the imports above: a misspelt name stays an error
    __getattr__ = lazy_names(__name__, _LAZY)


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
