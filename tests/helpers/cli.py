"""The real CLI: in this process (cheap enough to test every branch) or as a separate
process (for signals, kill -9 and the installed entry point), with the environment a user's
shell would give it minus credentials and CI identity."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.world import HANG


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


# Not passed on: credentials and CI identity (a test gives the ones it means), and
# PYTHONDONTWRITEBYTECODE (some shells set it), with which every CLI process a test starts
# would compile reconciler from source, as an installed package never does (~0.07 s each).
_DROPPED = ("ENOS_", "GITHUB_", "CI_", "PYTHONDONTWRITEBYTECODE")


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without credentials or CI identity, plus `env`: what the CLI sees."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    full_env.update({"NO_COLOR": "1", "CI": "1", "COLUMNS": "200"})
    full_env.update(env or {})
    return full_env


def spawn_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """The real CLI in the background, for tests that interrupt or kill it."""
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args], cwd=cwd, env=cli_env(env), text=True, **popen
    )


def signal_until_heard(proc: subprocess.Popen[str], sig: int, hook: Any) -> str:
    """Send `sig` to the runner `proc` (its stdout a pipe, stderr merged into it) while its
    requests are held by `hook`, and let them go once it says it heard it (the `stopping:`
    line) or ends: on a loaded machine its workers could otherwise send every request
    before its main thread runs the handler. Everything it printed, to its end."""
    assert proc.stdout is not None
    lines = []
    try:
        proc.send_signal(sig)
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("stopping:"):
                break
    finally:
        hook.release()
    return "".join(lines) + proc.communicate(timeout=HANG)[0]


def kill_at_held_call(
    proc: subprocess.Popen[str],
    world: Any,
    hook: Any,
    arrived: Callable[[dict[str, Any]], bool],
    before_kill: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """SIGKILL the runner `proc` once a call `arrived` at the emulator's `world` (held there
    by `hook`), then let the call go and wait until it took effect, as a call a dead runner
    sent would; the call's log entry. `before_kill` checks what must hold at that moment."""
    try:
        entry: dict[str, Any] = world.wait_for(arrived, timeout=60)
        before_kill()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        hook.release()
        if proc.poll() is None:
            proc.kill()
    world.wait_for(lambda e: e is entry and e["status"] is not None)
    return entry


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """The real CLI in this process: the same entry point, error handling and exit codes
    as `reconcile`, with its own working directory, environment and output streams.

    Cheap enough to test every branch this way; `run_cli_process` is for the few
    acceptance tests that need a real process (signals, kill -9, the installed entry point).
    It takes no timeout: a call in this process cannot be killed, so pytest-timeout
    (pyproject.toml) is what ends one that hangs; `run_cli_process` takes a timeout.
    """
    from reconciler.cli._app import run

    out, err = io.StringIO(), io.StringIO()
    old_env, old_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(cli_env(env))
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            debug = "--debug" in args
            code = run([a for a in args if a != "--debug"], debug=debug)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return Run(code, out.getvalue(), err.getvalue())


def run_cli_process(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """The real CLI, as a user runs it: a separate process, no terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def interrupt_main() -> None:
    """Ctrl-C as a real signal to the main thread, so it also wakes a blocking wait."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
