"""`reconcile demo`: the whole loop, offline, against an in-process emulator in a temp dir.

validate -> plan -> apply -> plan (nothing to do) -> apply (sends nothing) -> ledger.
Runs the real CLI commands and the real client over loopback HTTP; the repository
and the user's environment are left untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from reconciler.errors import ReconcilerError
from reconciler.render.console import Consoles
from reconciler.words import plural


@contextmanager
def _scoped_env(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    old_cwd, old_env = Path.cwd(), {k: os.environ.get(k) for k in env}
    os.chdir(cwd)
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(c: Consoles, args: list[str], why: str) -> int:
    """One real command line, through the CLI's own error handling and exit codes."""
    from reconciler.cli._app import run

    c.out.print(f"\n[bold cyan]==> reconcile {' '.join(args)}[/bold cyan]   [dim]# {why}[/dim]")
    return run(args)


def copy_examples(dest: Path) -> None:
    """The example manifests shipped in the package (the same as the repository's manifests/)."""
    src = resources.files("reconciler") / "templates" / "manifests"
    with resources.as_file(src) as path:
        shutil.copytree(path, dest)


def run_demo(c: Consoles, keep: bool = False) -> None:
    from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RunningEmulator, World

    tmp = Path(tempfile.mkdtemp(prefix="reconcile-demo-"))
    copy_examples(tmp / "manifests")
    (tmp / "applied-ledger.jsonl").touch()  # as `reconcile init` leaves it
    world = World()
    with RunningEmulator(world) as emulator:
        env = {
            "ENOS_API_GATEWAY": emulator.url,
            "ENOS_APP_KEY": DEFAULT_APP_KEY,
            "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
            "CI": "1",
        }
        c.out.print(
            f"[bold]reconcile demo[/bold]: example manifests in {tmp}, "
            f"EnOS emulator on {emulator.url} (in this process)."
        )
        c.out.print(
            "One pipeline is PAUSED, the other RUNNING: apply pauses it for the run "
            "(--pause-pipelines) and starts it again after."
        )
        with _scoped_env(tmp, env):
            codes = [
                _run(c, ["validate"], "check the manifests: every problem as file:line:col"),
                _run(
                    c,
                    ["plan", "--detailed-exitcode", "--pause-pipelines", "--refresh"],
                    "what would be cleared, and what apply pauses (exit 2: changes pending)",
                ),
                _run(
                    c,
                    ["apply", "--auto-approve", "--pause-pipelines", "--verify"],
                    "clear it, journalling each request in the ledger",
                ),
            ]
            deletes_after_first = len(world.delete_log)
            codes += [
                _run(c, ["plan", "--detailed-exitcode"], "again: nothing left to do (exit 0)"),
                _run(c, ["apply", "--auto-approve"], "again: idempotent, sends nothing"),
                _run(c, ["ledger", "verify"], "the hash chain is intact"),
                _run(c, ["ledger", "show", "--kind", "delete"], "the audit trail"),
            ]
    sent_again = len(world.delete_log) - deletes_after_first
    c.out.print(
        f"\n[bold]Done.[/bold] The emulator received {plural(deletes_after_first, 'delete request')} on the first "
        f"apply and {sent_again} on the second; deletes on a pipeline that was not paused: "
        f"{len(world.violations)}."
    )
    expected = [0, 2, 0, 0, 0, 0, 0]
    if keep:
        c.out.print(f"Kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if codes != expected or sent_again or world.violations:
        raise ReconcilerError(f"the demo did not go as expected (exit codes {codes})")
