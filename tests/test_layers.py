"""The layout is the architecture: no import cycle, and no tier imports one above it.

The tiers, top to bottom (a module may import its own tier, acyclically, and any
tier below it): cli; the commands, their settings, operations, render, scaffold and notify;
apply, plan and the one door to the ledger (store); manifests, config and the ledger in
git (gitsync); ledger and enos; the leaves (errors, words, actor, gitcmd, yamlsource,
fastyaml, durations, install_source, windows, lazy, tls, the commands' arguments). The emulator
stands alone. Only cli knows typer.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

TIERS: tuple[tuple[str, ...], ...] = (
    ("reconciler.__main__", "reconciler.cli"),
    (
        "reconciler.commands",
        "reconciler.settings",
        "reconciler.operations",
        "reconciler.render",
        "reconciler.scaffold",
        "reconciler.notify",
    ),
    ("reconciler.apply", "reconciler.plan", "reconciler.store"),
    ("reconciler.manifests", "reconciler.config", "reconciler.gitsync"),
    ("reconciler.ledger", "reconciler.enos"),
    (
        "reconciler.errors",
        "reconciler.words",
        "reconciler.durations",
        "reconciler.lazy",
        "reconciler.actor",
        "reconciler.gitcmd",
        "reconciler.yamlsource",
        "reconciler.fastyaml",
        "reconciler.install_source",
        "reconciler.windows",
        "reconciler.tls",
        "reconciler.args",
    ),
)


def tier(module: str) -> int | None:
    for i, names in enumerate(TIERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, typing_too: bool = False) -> set[str]:
    """Modules of the package this file imports when it runs (not under TYPE_CHECKING,
    unless `typing_too`)."""
    tree = ast.parse(path.read_text())
    skipped = (
        set()
        if typing_too
        else {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reconciler"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("reconciler"))
    return found


@functools.cache  # every test reads the same files: parse them once a session
def graph(typing_too: bool = False) -> dict[str, set[str]]:
    mods = {module_name(p): runtime_imports(p, typing_too) for p in PACKAGE.rglob("*.py")}
    return {
        m: {d for d in deps if d in mods and d != m and not m.startswith(d + ".")} for m, deps in mods.items()
    }


def test_the_scanner_sees_imports_lazy_ones_included() -> None:
    g = graph()
    assert "reconciler.commands.apply" in g["reconciler.cli.apply"]  # imported inside the command
    assert "reconciler.apply" in g["reconciler.operations"]
    assert "reconciler.enos" not in g["reconciler.apply"]  # only under TYPE_CHECKING


def cycles_in(g: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append([*path[path.index(d) :], d])
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycle() -> None:
    assert cycles_in(graph()) == []


# Cycles only type annotations close: still two modules that cannot be read apart.
# apply/pipelines <-> apply/starts (Starter reads Pipelines as a service locator, review
# D-7) is being taken apart by the rollout restructure (issue 25); none other may appear.
KNOWN_TYPING_CYCLES = {frozenset({"reconciler.apply.pipelines", "reconciler.apply.starts"})}


def test_no_import_cycle_even_through_type_annotations() -> None:
    found = [c for c in cycles_in(graph(typing_too=True)) if frozenset(c) not in KNOWN_TYPING_CYCLES]
    assert found == []


def test_the_scanner_sees_imports_made_for_type_annotations() -> None:
    assert "reconciler.enos" in graph(typing_too=True)["reconciler.apply"]


def test_every_module_has_a_tier() -> None:
    untiered = sorted(
        m
        for m in graph()
        if m != "reconciler" and tier(m) is None and not m.startswith("reconciler.emulator")
    )
    assert untiered == []


def test_no_tier_imports_one_above_it() -> None:
    upward = []
    for m, deps in graph().items():
        here = tier(m)
        for d in deps:
            there = tier(d)
            if here is not None and there is not None and there < here:
                upward.append((m, d))
    assert upward == []


def test_ledger_and_enos_know_nothing_of_each_other() -> None:
    crossing = [
        (m, d)
        for m, deps in graph().items()
        for d in deps
        if {m.split(".")[1], d.split(".")[1]} == {"ledger", "enos"}
    ]
    assert crossing == []


def test_the_emulator_stands_alone() -> None:
    outside = [
        (m, d)
        for m, deps in graph().items()
        if m.startswith("reconciler.emulator")
        for d in deps
        if not d.startswith("reconciler.emulator")
    ]
    assert outside == []


def test_the_cli_reaches_the_ledger_in_git_only_through_the_store() -> None:
    """Review R1: "how does the ledger get to git" is answered by `store` and `gitsync/`;
    the commands run no git plumbing of their own, not even for a type annotation."""
    reaching = sorted(
        (m, d)
        for m, deps in graph(typing_too=True).items()
        if m.startswith("reconciler.cli")
        for d in deps
        if d.startswith("reconciler.gitsync")
    )
    assert reaching == []


def test_only_the_cli_knows_typer() -> None:
    """Review R2: the commands, render included, are functions of their arguments; the exit
    code comes from their outcome, never from a `typer.Exit` raised below the CLI."""
    knowing = sorted(
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if not module_name(p).startswith("reconciler.cli")
        and any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] in ("typer", "click") for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("typer", "click"))
            for n in ast.walk(ast.parse(p.read_text()))
        )
    )
    assert knowing == []


# The core: what a library caller would use. It says what went wrong and, as a `Hint`,
# which setting helps; how a command spells that setting is the CLI's (review L-1).
CORE = (
    "reconciler.operations",
    "reconciler.apply",
    "reconciler.ledger",
    "reconciler.gitsync",
    "reconciler.plan",
    "reconciler.store",
)
# Text the ledger stores is data, not a message: a record reads as the ledgers written so
# far have it, flag and all (module, constant). What a person is told about it is a `Hint`.
STORED_TEXT = {("reconciler.ledger._record", "SETTLED_START_NOTE")}


def cli_flags() -> set[str]:
    """Every long option of every `reconcile` command."""
    import typer

    from reconciler.cli import app

    found: set[str] = set()
    stack: list[Any] = [typer.main.get_command(app)]  # typer's own click: duck-typed
    while stack:
        command = stack.pop()
        found.update(o for p in command.params for o in p.opts + p.secondary_opts if o.startswith("--"))
        stack.extend(getattr(command, "commands", {}).values())
    return found


def flags_in_messages(path: Path, flags: set[str], stored: set[str] | None = None) -> set[str]:
    """Our flags named in the module's strings, docstrings and the constants named in
    `stored` aside (comments are not in the tree). An f-string is read whole, each `{...}`
    as written, so `f"--{name}"`, which may spell any flag, is named as `--{name}`. A
    string that is a flag alone, or `--flag=value`, is an argument to git, which shares some
    names with us (`--verify`, `--format`)."""
    import re

    tree = ast.parse(path.read_text())
    not_messages = {  # docstrings
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    not_messages |= {
        id(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id in (stored or set()) for t in n.targets)
    }
    not_messages |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    texts = [
        n.value if isinstance(n, ast.Constant) else _as_written(n)
        for n in ast.walk(tree)
        if ((isinstance(n, ast.Constant) and isinstance(n.value, str)) or isinstance(n, ast.JoinedStr))
        and id(n) not in not_messages
    ]
    part = r"(?:[a-z0-9-]|\{[^{}]*\})"  # a letter, digit or dash of a flag, or a `{...}`
    named = re.compile(rf"(?<![\w-])(--(?:[a-z]|\{{[^{{}}]*\}}){part}*)(?![\w=-])")
    return {
        written
        for text in texts
        if not named.fullmatch(text)
        for written in named.findall(text)
        if any(re.fullmatch(_spelling(written), flag) for flag in flags)
    }


def _as_written(node: ast.JoinedStr) -> str:
    """An f-string's text with each `{...}` as written (its expression, no conversion)."""
    return "".join(
        "{" + ast.unparse(v.value) + "}" if isinstance(v, ast.FormattedValue) else ast.literal_eval(v)
        for v in node.values
    )


def _spelling(written: str) -> str:
    """What a flag written with `{...}` in it may spell, as a regular expression."""
    import re

    return "".join(
        "[a-z0-9-]+" if piece.startswith("{") else re.escape(piece)
        for piece in re.split(r"(\{[^{}]*\})", written)
        if piece
    )


def test_the_core_names_no_cli_flag() -> None:
    flags = cli_flags()
    assert {"--pause-pipelines", "--ledger", "--snapshot"} <= flags  # the scanner sees the CLI
    named = {
        (module_name(p), flag)
        for p in PACKAGE.rglob("*.py")
        if tier(module_name(p)) is not None and module_name(p).startswith(CORE)
        for flag in flags_in_messages(p, flags, stored={n for m, n in STORED_TEXT if m == module_name(p)})
    }
    assert named == set()
    assert ("reconciler.apply.preflight", "--pause-pipelines") not in named  # a Hint now


def test_the_scanner_sees_flags_in_literals_and_f_strings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '''"""Module docstring: --ledger."""
NOTE = "stored: --tail N"
a = "pass --snapshot FILE"
b = f"--{name} {value!r}: no record"
c = f"{what}; --start-{kind} is {t}"
d = f"check --ledger {path}"
e = ["--verify", f"--push-option={o}", f"--{option}", "--no-such-flag here"]
'''
    )
    flags = {"--ledger", "--snapshot", "--start-timeout", "--verify", "--tail"}
    found = {"--snapshot", "--{name}", "--start-{kind}", "--ledger"}
    assert flags_in_messages(module, flags, stored={"NOTE"}) == found
    assert flags_in_messages(module, flags) == found | {"--tail"}  # stored text only when named
    assert flags_in_messages(module, {"--verify"}) == {"--{name}"}  # `{name}` may spell any flag


def test_stored_text_is_what_ledgers_hold() -> None:
    """Each `STORED_TEXT` entry names a string constant of its module (a stale entry
    exempts nothing), and the note reads as every ledger written so far has it."""
    import importlib

    from reconciler.ledger import SETTLED_START_NOTE

    for module, name in STORED_TEXT:
        assert isinstance(getattr(importlib.import_module(module), name), str)
    assert SETTLED_START_NOTE == "a person settled a start in doubt (reconcile ledger resolve --start)"


def test_the_cli_adds_the_flag_a_core_hint_asks_for(tmp_path: Path) -> None:
    from reconciler.errors import ApplyRefused, Hint, Hinted, LedgerError
    from reconciler.settings import ADVICE, advice

    assert set(ADVICE) == set(Hint)  # every hint has its words
    assert "--pause-pipelines" in advice(ApplyRefused("x", hint=Hint.PAUSE_PIPELINES))
    assert advice(ApplyRefused("x")) == "x"
    note = Hinted("warning: x", Hint.IGNORE_WINDOW)  # a note, not an error, carries one too
    assert note == "warning: x" and advice(note) == "warning: x (--ignore-window)"
    segment = LedgerError("x", hint=Hint.LEDGER_SEGMENT, hint_value="l.jsonl")  # with the setting's value
    assert advice(segment) == "x (--ledger l.jsonl)"
    # An error about several things: each detail line is said with its own hint's words.
    settle = Hinted("o/p: settle it", Hint.SETTLE_START, "o/p")
    several = ApplyRefused("two left:", hint=Hint.PAUSE_PIPELINES, details=[settle, "o/q: plain"])
    assert str(several) == "two left:\n  o/p: settle it\n  o/q: plain"  # a library caller's words
    assert advice(several) == (
        advice(ApplyRefused("two left:", hint=Hint.PAUSE_PIPELINES))
        + "\n  o/p: settle it: `reconcile ledger resolve --start o/p`\n  o/q: plain"
    )
