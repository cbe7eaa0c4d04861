"""What tests share: one home for the helpers every test file used to copy or import from
conftest (pre-commit's `testing/` package plays this part there).

- `helpers.cli`: the real CLI, in process or as a process, and the environment it sees;
- `helpers.world`: emulator worlds (pipelines, apps) and the gateway environment;
- `helpers.manifests`: manifest YAML and `Manifest` values, and the plan-input strategies;
- `helpers.records`: ledger records and the cell fields of one-cell records;
- `helpers.git`: real git in temp dirs: an isolated HOME, a bare origin, clones, the
  remote's ledger, committing as a person;
- `helpers.node`: the npm tools the scaffold's CI files are checked with;
- `helpers.browser`: a real headless Chromium over the DevTools protocol (the HTML report);
- `helpers.report_ledger`: a ledger with a history worth an audit report.

Fixtures stay in `conftest.py`; everything here is a plain function or constant, imported
as `from helpers import name` (or `from helpers.git import name`).
"""

from __future__ import annotations

from helpers.cli import (
    Run,
    cli_env,
    interrupt_main,
    kill_at_held_call,
    run_cli,
    run_cli_process,
    signal_until_heard,
    spawn_cli,
)
from helpers.git import (
    IDENTITY,
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    commit_all,
    committed_repo,
    git,
    isolate_git,
    person,
    remote_bytes,
    remote_ledger,
    remote_records,
)
from helpers.manifests import (
    ASSETS,
    NAMES,
    PIPES,
    POINTS,
    STAGES,
    manifest,
    manifest_yaml,
    numbered_manifest,
    subset,
    write,
)
from helpers.records import LEDGER_CELLS, cell_fields, ledger_of, record
from helpers.world import FAULT_ORG, HANG, ORG, fault_pipeline, gateway_env, pipeline, world_for

__all__ = [
    "ASSETS",
    "FAULT_ORG",
    "HANG",
    "IDENTITY",
    "LEDGER",
    "LEDGER_CELLS",
    "LEDGER_IN_GIT",
    "NAMES",
    "ORG",
    "PIPES",
    "POINTS",
    "STAGES",
    "Run",
    "bare_origin",
    "cell_fields",
    "cli_env",
    "clone",
    "commit_all",
    "committed_repo",
    "fault_pipeline",
    "gateway_env",
    "git",
    "interrupt_main",
    "isolate_git",
    "kill_at_held_call",
    "ledger_of",
    "manifest",
    "manifest_yaml",
    "numbered_manifest",
    "person",
    "pipeline",
    "record",
    "remote_bytes",
    "remote_ledger",
    "remote_records",
    "run_cli",
    "run_cli_process",
    "signal_until_heard",
    "spawn_cli",
    "subset",
    "world_for",
    "write",
]
