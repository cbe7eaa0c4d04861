"""The `reconcile` app: its options, error handling and exit codes (commands live beside it).

Each command hands its arguments value to its run (`reconciler.commands`), whose outcome
carries the exit code: 0 done or nothing to do, 1 error (usage errors included, so a
mistyped flag never reads as "changes pending"), 2 changes pending (`plan
--detailed-exitcode`), 3 a bug, 130 interrupted. Errors reach people once, as a short
message on stderr; `--debug` (anywhere on the line) shows tracebacks.

Imports of the core stay inside the commands: `reconcile --help` and `validate`
should not pay for httpx, the emulator or rich's progress (about 0.35 s).
"""

from __future__ import annotations

import copy
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any, Optional, TypeVar

import typer
import typer.core
import typer.main

from reconciler import __version__
from reconciler.args import DEFAULT_PATHS
from reconciler.commands import EXIT_CHANGES, CommandOutcome
from reconciler.errors import InputError, ReconcilerError
from reconciler.render.console import Consoles, make_consoles

EXIT_BUG = 3

# `reconcile --help` lists the commands in the order a newcomer uses them, the tools last.
_LISTED = ("init", "validate", "plan", "apply", "ledger", "demo", "emulator", "schema")


class _Listed(typer.core.TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:  # typer's own (vendored) click Context
        return sorted(self.commands, key=lambda n: _LISTED.index(n) if n in _LISTED else len(_LISTED))


app = typer.Typer(
    cls=_Listed,
    name="reconcile",
    help=(
        "GitOps for EnOS stream-processing stage state.\n\n"
        "Manifests declare which stage state to clear; `plan` shows exactly what is still "
        "to do against the applied ledger; `apply` does it, once, and records it.\n\n"
        "Example:  reconcile validate && reconcile plan && reconcile apply --auto-approve\n\n"
        "Exit codes: 0 done or nothing to do, 1 error (usage errors included), 2 changes "
        "pending (plan --detailed-exitcode), 3 a bug (please report), 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
ledger_app = typer.Typer(
    help="Inspect and settle the applied ledger.\n\nExample:  reconcile ledger verify",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")


# typer (pinned to 0.29 in pyproject) prints an argument's Python type after its metavar,
# `PATH <list[str]>`; the metavar (PATH, DIR, FILE) already says what it takes.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


def flag(*names: str, help: str) -> Any:
    """A boolean switch: no `<bool>` metavar in --help, since it takes no value."""
    return typer.Option(*names, help=help, metavar="")


Paths = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Argument(
        metavar="PATH", help="Manifest files or directories (default: manifests/).", show_default=False
    ),
]
LedgerOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--ledger",
        metavar="FILE",
        help="The applied ledger (JSON Lines; default: reconcile.yaml's, else applied-ledger.jsonl).",
        envvar="RECONCILE_LEDGER",
        show_default=False,
    ),
]
MaxPoints = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(metavar="N", help="Most point IDs in one request (default 100,000).", show_default=False),
]
MaxAssets = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(metavar="N", help="Most asset IDs in one request (default 1,000).", show_default=False),
]
Targets = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--target", metavar="NAME", help="Only this manifest (by metadata.name); repeatable."),
]
ConfigOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--config", metavar="FILE", help="The repository config (default: ./reconcile.yaml when it exists)."
    ),
]
LockTimeout = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option(
        metavar="SECONDS",
        min=0,
        help="Seconds to wait for the ledger lock (default: none for the local lock; with the "
        "ledger in git, as long as the lease of a runner that died lasts).",
        show_default=False,
    ),
]
MaxPaused = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--max-paused",
        metavar="N",
        help="Pipelines this run keeps paused at the same time, over all orgs; a pipeline "
        "waiting for its start counts (default: reconcile.yaml's apply.rollout.maxPaused, else 2). "
        "Each pipeline is paused just before its own first request and started again as soon as "
        "its own requests are answered; pipelines with fewer requests go first.",
        show_default=False,
    ),
]
MaxPause = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--max-pause",
        metavar="DURATION",
        help="The longest one pause, as 90s, 30m or 2h (at most 23h; default: "
        "apply.rollout.maxPause, else 1h). A pipeline whose pause reaches it gets nothing new, "
        "is started once its requests in flight are answered, and is paused again later for the rest.",
        show_default=False,
    ),
]
NoCanary = Annotated[
    bool,
    flag(
        "--no-canary",
        help="Do not check each stage's first request before the rest (default: "
        "apply.rollout.canary, else on). The canary reads the request's cells and the next "
        "request's, sends it alone, and reads both again: a gateway that answered true and kept "
        "the state, or cleared cells it was not asked to, stops the whole run (exit 1, every "
        "paused pipeline started again, the rest pending). It costs up to four reads per stage.",
    ),
]
Yes = Annotated[bool, flag("--auto-approve", "--yes", help="Do not ask; for CI.")]


def _version(value: bool) -> None:
    if value:
        make_consoles().out.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, flag("--debug", help="Show tracebacks for errors (accepted anywhere on the line).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version.", metavar=""),
    ] = False,
) -> None:
    """`--debug` is taken out of the arguments by `main` before typer sees them."""


def consoles() -> Consoles:
    return make_consoles()


def paths_or_default(paths: list[str] | None) -> list[str]:
    return list(paths) if paths else list(DEFAULT_PATHS)


E = TypeVar("E", bound=Enum)


def one_of(kind: type[E], flag: str = "--format") -> Callable[[str | E], E]:
    """An `--option` taking one of an Enum's values; any other is refused naming them all
    (`--format must be text or json, not 'yaml'`), exit 1."""
    words = [str(k.value) for k in kind]
    allowed = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]

    def parse(value: str | E) -> E:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            raise ReconcilerError(f"{flag} must be {allowed}, not {value!r}") from None

    return parse


def ask(question: str) -> str:
    """A command's question to the person at the terminal (`commands.Ask`)."""
    try:
        return str(typer.prompt(question))
    except typer.Abort:
        raise KeyboardInterrupt from None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, mapping errors to messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: args.index("--") if "--" in args else len(args)]
    if debug:
        args.remove("--debug")
    # SIGTERM (a cancelled CI job) is handled like Ctrl-C: KeyboardInterrupt before and after
    # apply's run; during it, apply defers both (`apply.interrupts`: in-flight requests finish
    # and are recorded, queued ones are not sent, paused pipelines are started again). Python's
    # own handler, so that apply knows it for one that raises KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # A command makes few reference cycles but, planning, millions of ID strings in
    # lists, tuples and sets: collecting young objects every 100,000 allocations instead
    # of 700 keeps the collector from walking them again and again (~40 ms of a fleet
    # plan), and at exit the shutdown collections need not walk what is freed anyway.
    gc.set_threshold(100_000, 10, 10)
    # pydantic validates our own manifests and flags; a pydantic plugin installed beside
    # reconcile (one that observes validation) has no business in it, and looking for
    # plugins reads every installed package's entry points (~5 ms of each run). The
    # variable is pydantic's documented switch; set (even empty), it is left as given.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _without_httpx_cli()
    code = run(args, debug=debug)
    if argv is None and args[:1] == ["plan"] and code in (0, EXIT_CHANGES):
        _end_now(code)  # the process's own entry point only: a caller's argv gets a normal exit
    gc.freeze()
    sys.exit(code)


def _without_httpx_cli() -> None:
    """httpx's own command-line client (the `httpx` command: click, pygments, rich's syntax
    highlighting; ~30 ms of every apply, plan --refresh and notify) is never used by
    reconcile. Blocked the way Python blocks an import (None in sys.modules),
    httpx leaves it out as when its `cli` extra is not installed: its __init__ catches the
    ImportError. A process that has imported it already keeps it."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _end_now(code: int) -> None:
    """End a plan's process once it has done and said everything, without tearing the
    interpreter down: freeing a fleet plan's 560,000 IDs and the module graph, ~20 ms the
    kernel does at once by taking the memory back (mypy's `util.hard_exit` does the same).

    What an ordinary exit does that anyone can see happens first: stdout and stderr are
    flushed and the `atexit` functions run. Returns, and the ordinary exit follows, when
    that cannot be promised: a thread besides this one still runs (an ordinary exit waits
    for it), a tracer or profiler is attached (coverage, cProfile: they write at exit), or
    a flush fails (an ordinary exit reports it). Plan writes `--out` in a `with` block, so
    no file of its own is left open; only read-only commands come here."""
    import atexit
    import threading

    if threading.active_count() > 1 or sys.gettrace() is not None or sys.getprofile() is not None:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()  # runs each once and forgets them: an ordinary exit would not again
    try:
        sys.stdout.flush()  # what an atexit function printed
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def _shown(message: str) -> str:
    """An error as the terminal shows it: its own lines kept, any control character or
    escape sequence inside a line (a file name, a value quoted back) made visible."""
    from reconciler.render.text import term

    return "\n".join(term(line) for line in message.split("\n"))


_commands: dict[str | None, Callable[..., Any]] = {}


def command(args: Sequence[str] = ()) -> Callable[..., Any]:
    """The app as a command, built once per name and process (the tests and the demo run
    many command lines). typer builds each command from its signature, ~20 ms for them all
    (mostly evaluating annotations), so a line that starts with a command's name (the root
    takes no option with a value: `reconcile plan ...`) builds the root and that command
    only, with the same parameters, help and errors it has in the whole app. Anything else
    (`--help`, no command, a misspelt one whose message suggests names) builds the whole
    app. Commands are registered on importing reconciler.cli, which importing this module
    does first."""
    name = args[0] if args and args[0] in _names() else None
    built = _commands.get(name)
    if built is None:
        built = _commands[name] = typer.main.get_command(app if name is None else _only(name))
    return built


def _names() -> set[str]:
    """The names a command line may start with: the commands' and the groups' (`ledger`)."""
    return {_name(c) for c in app.registered_commands} | {
        g.name for g in app.registered_groups if isinstance(g.name, str)
    }


def _name(info: typer.models.CommandInfo) -> str:
    """A command's name as typer gives it (`get_command_from_info`)."""
    if info.name:
        return info.name
    assert info.callback is not None
    return typer.main.get_command_name(info.callback.__name__)


def _only(name: str) -> typer.Typer:
    """The app with its callback and options, and the one command or group called `name`."""
    lean = copy.copy(app)
    lean.registered_commands = [c for c in app.registered_commands if _name(c) == name]
    lean.registered_groups = [g for g in app.registered_groups if g.name == name]
    return lean


def run(args: list[str], *, debug: bool = False) -> int:
    """Run one command line and return its exit code (the demo and tests call this too)."""
    streams = make_consoles()  # rich is imported on first use: only when there is an error to show
    try:
        code = command(args)(args, prog_name="reconcile", standalone_mode=False)
    except InputError as exc:
        for d in exc.diagnostics:
            streams.err.print(
                _shown(str(d)), markup=False, style="yellow" if d.severity == "warning" else "red"
            )
        streams.err.print(_shown(f"error: {exc}"), markup=False)
        return _failed(exc, 1, debug)
    except ReconcilerError as exc:
        from reconciler.settings import advice

        streams.err.print(_shown(f"error: {advice(exc)}"), markup=False, style="red")
        return _failed(exc, exc.exit_code, debug)
    except OSError as exc:  # a file we were asked to write or read: say which, no traceback
        streams.err.print(
            _shown(f"error: {exc.strerror or exc}: {exc.filename or ''}"), markup=False, style="red"
        )
        return _failed(exc, 1, debug)
    except KeyboardInterrupt:
        streams.err.print("interrupted", style="red")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        streams.err.print("interrupted", style="red")
        return 130
    except typer.TyperException as exc:  # bad flags or arguments: click's own message, exit 1
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            streams.err.print(f"error: {exc}", markup=False)
        return 1
    except Exception as exc:  # a bug: say so once, traceback only on request
        streams.err.print(
            f"unexpected error ({type(exc).__name__}: {exc}); please report it with the output of "
            "the same command run with --debug",
            markup=False,
            style="red",
        )
        return _failed(exc, EXIT_BUG, debug)
    if isinstance(code, CommandOutcome):  # what the command returned
        if code.error is not None:
            streams.err.print(_shown(f"error: {code.error}"), markup=False, style="red")
        code = code.code
    if code == 130:  # interrupted (typer also turns Ctrl-C inside a command into exit 130, silently)
        streams.err.print("interrupted", style="red")
    return code if isinstance(code, int) else 0


def _failed(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc)
    return code
