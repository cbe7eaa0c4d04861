"""What a command needs of reconcile.yaml before, or without, reading it: the file's name
and where it is found (`find_config`), the bounds every number it and the flags give is
held to (`check_bound`), and `pick`, by which a flag wins over it. No pydantic: a command
run without a reconcile.yaml builds none of the file's models."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TypeVar

from reconciler.errors import ConfigError

CONFIG_FILE = "reconcile.yaml"

# Bounds of the numbers reconcile.yaml and the flags give, checked where each is read
# (the model in `config.schema`, `check_bound` for flags): one definition each.
MAX_CELLS_LIMIT = 10**12
MAX_START_TIMEOUT = 86_400.0  # EnOS keeps a pipeline paused for at most 24 h
MAX_INT32 = 2**31 - 1
MAX_PATH = 4096

# ledger.git.leaseSeconds: the one bound, checked by the setting (`config.schema`) and by
# the lease itself (gitsync.lease: writing one, and reading one another run wrote).
LEASE_SECONDS_MIN = 1
LEASE_SECONDS_MAX = 86_400  # a day: EnOS keeps a job paused for at most 24 h


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


def check_bound(what: str, value: float | None, low: float, high: float) -> None:
    """A number given on the command line, held to the bound reconcile.yaml's is held to
    (NaN and infinities included): `ConfigError` naming the flag otherwise."""
    if value is None:
        return
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{what}: {value!r} is out of range ({_number(low)} to {_number(high)})")


def _number(x: float) -> str:
    """A bound as people write it: 2,147,483,647 and 86,400, not 2.14748e+09."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


T = TypeVar("T")


def pick(flag: T | None, configured: T | None, default: T) -> T:
    """A flag given on the command line wins, then reconcile.yaml, then the default.

    Flags that merge with the config must default to None in the CLI, so that "not
    given" can be told from "given as the default".
    """
    if flag is not None:
        return flag
    return configured if configured is not None else default
