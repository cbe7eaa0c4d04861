"""The `reconcile` app: its options, error handling and exit codes (commands live beside it).

Each command parses, builds its collaborators, calls one core function and maps
the result to an exit code: 0 done or nothing to do, 1 error, 2 changes pending
(`plan --detailed-exitcode`). Errors reach people once, as a short message on
stderr; `--debug` shows the traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from reconciler import __version__
from reconciler.console import err, out
from reconciler.errors import InputError, ReconcilerError

DEFAULT_LEDGER = "applied-ledger.jsonl"
DEFAULT_PATHS = ["manifests"]

app = typer.Typer(
    name="reconcile",
    help=(
        "GitOps for EnOS stream-processing stage state.\n\n"
        "Manifests declare which stage state to clear; `plan` shows exactly what is still "
        "to do against the applied ledger; `apply` does it, once, and records it.\n\n"
        "Example:  reconcile validate && reconcile plan && reconcile apply --auto-approve"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
ledger_app = typer.Typer(
    help="Inspect and settle the applied ledger.\n\nExample:  reconcile ledger verify",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")

_state = {"debug": False}

Paths = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Argument(help="Manifest files or directories (default: manifests/).", show_default=False),
]
LedgerOpt = Annotated[
    str, typer.Option("--ledger", help="The applied ledger (JSON Lines).", envvar="RECONCILE_LEDGER")
]
MaxPoints = Annotated[int, typer.Option(min=1, help="Most point IDs in one request.")]
MaxAssets = Annotated[int, typer.Option(min=1, help="Most asset IDs in one request.")]
Targets = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--target", help="Only this manifest (by metadata.name); repeatable."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors: typer either vendors click (TyperException) or uses it."""
    found: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, Exception):
        found.append(vendored)
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def main() -> None:
    """Console-script entry point: run the app, mapping errors to messages and exit codes."""
    try:
        code = app(standalone_mode=False)
    except InputError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False, style="yellow" if d.severity == "warning" else "red")
        err.print(f"error: {exc}", markup=False)
        _exit(exc, 1)
    except ReconcilerError as exc:
        err.print(f"error: {exc}", markup=False, style="red")
        _exit(exc, exc.exit_code)
    except OSError as exc:  # a file we were asked to write or read: say which, no traceback
        err.print(f"error: {exc.strerror or exc}: {exc.filename or ''}", markup=False, style="red")
        _exit(exc, 1)
    except KeyboardInterrupt:
        err.print("interrupted", style="red")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", style="red")
        sys.exit(1)
    except _USAGE_ERRORS as exc:  # bad flags or arguments: click's own message, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def _exit(exc: BaseException, code: int) -> None:
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    sys.exit(code)


def _write(data: str) -> None:
    """Machine-readable data goes to stdout as is, not through rich."""
    sys.stdout.write(data)
    sys.stdout.flush()


def _paths(paths: list[str] | None) -> list[str]:
    return list(paths) if paths else list(DEFAULT_PATHS)
