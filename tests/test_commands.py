"""The commands without typer (review R2): each is a function of its arguments object, its
consoles and how it asks, and returns an outcome with the exit code. The emulator over
loopback, real git."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    committed_repo,
    gateway_env,
    pipeline,
    world_for,
)

from reconciler.args import ApplyArgs
from reconciler.commands import CommandOutcome
from reconciler.commands import apply as commands
from reconciler.render.console import Consoles


@pytest.fixture
def repo(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed manifest and an empty ledger, the working directory."""
    repo = committed_repo(tmp_path)
    monkeypatch.chdir(repo)
    for k in ("CI", "GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(k, raising=False)
    return repo


def _env(monkeypatch: pytest.MonkeyPatch, em: Any) -> None:
    for k, v in gateway_env(em).items():
        monkeypatch.setenv(k, v)


def test_apply_is_a_function_of_its_arguments(
    repo: Path, make_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    em = make_emulator(world_for([pipeline()]))
    _env(monkeypatch, em)
    out, err = io.StringIO(), io.StringIO()
    args = ApplyArgs(auto_approve=True, summary=[repo / "s.json"])
    assert commands.apply(args, Consoles(out, err)) == CommandOutcome(0)
    assert "Apply complete." in out.getvalue() and len(em.world.delete_log) == 1
    assert em.world.token_calls == ["get"]  # one gateway session for the whole run
    assert json.loads((repo / "s.json").read_text())["outcome"] == "applied"
    # the same arguments again: nothing left to do, and no credentials asked for
    monkeypatch.delenv("ENOS_APP_KEY")
    assert commands.apply(args, Consoles(out, err)) == CommandOutcome(0)
    assert out.getvalue().endswith("Nothing to apply.\n")


def test_without_approval_apply_asks_and_sends_nothing_unless_told_yes(
    repo: Path, make_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    em = make_emulator(world_for([pipeline()]))
    _env(monkeypatch, em)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return "no"

    with pytest.raises(Exception, match="cancelled; nothing was sent"):
        commands.apply(ApplyArgs(), Consoles(io.StringIO(), io.StringIO()), ask)
    assert asked == ["Clear this state? It cannot be undone. Only 'yes' will be accepted"]
    assert em.world.delete_log == []


def test_a_run_that_breaks_on_an_unexpected_error_is_never_summarised_as_done(
    repo: Path, make_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout gone while the plan is shown (here closed; `reconcile apply | head` makes rich
    exit 1 the same way). Before, the summary said "nothing to apply", ok, for a run that
    sent nothing because it broke."""
    em = make_emulator(world_for([pipeline()]))
    _env(monkeypatch, em)
    args = ApplyArgs(auto_approve=True, summary=[repo / "s.json", repo / "s.md"])
    closed = io.StringIO()
    closed.close()
    with pytest.raises(ValueError, match="closed file"):
        commands.apply(args, Consoles(closed, io.StringIO()))
    doc = json.loads((repo / "s.json").read_text())
    assert doc["outcome"] == "refused" and not doc["ok"] and "closed file" in doc["error"]
    assert "closed file" in (repo / "s.md").read_text() and em.world.delete_log == []


def test_plan_is_a_function_of_its_arguments(repo: Path, make_emulator: Any) -> None:
    """JSON on stdout and, with `detailed_exitcode`, 2 for changes pending: the exit code is
    the outcome's. `refresh` reads the pipelines and the cells through one gateway session:
    one token (review R2: it used to fetch two)."""
    from reconciler.args import PlanArgs, PlanFormat
    from reconciler.commands import plan as commands_plan

    em = make_emulator(world_for([pipeline()]))
    out = io.StringIO()
    args = PlanArgs(fmt=PlanFormat.JSON, detailed_exitcode=True, refresh=True, gateway=em.url)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in gateway_env(em).items():
            mp.setenv(k, v)
        assert commands_plan.plan(args, Consoles(out, io.StringIO())) == CommandOutcome(2)
    doc = json.loads(out.getvalue())
    assert doc["summary"]["requests"] == 1
    assert {"list", "get"} <= {e["route"] for e in em.world.log}  # the statuses and the cells
    assert em.world.token_calls == ["get"]
    assert commands_plan.plan(PlanArgs(), Consoles(io.StringIO(), io.StringIO())) == CommandOutcome(0)


def _action(stage: str) -> Any:
    from reconciler.plan import Action

    return Action("m", "o1", "p1", stage, ("a1", "a2"), ("x",))


def test_resolves_read_back_refusal_is_the_cores() -> None:
    """`ledger resolve --verify` records nothing while a cell holds state or could not be
    read: the refusal is `operations`', the command only says the read-back."""
    from reconciler import operations
    from reconciler.apply.live import LiveState
    from reconciler.errors import ReconcilerError

    empty = LiveState(holding={_action("s1"): 0, _action("s2"): 0})
    operations.refuse_unread(empty)
    operations.refuse_held(empty)
    with pytest.raises(ReconcilerError, match=r"^1 in-doubt cell still holds state") as held:
        operations.refuse_held(LiveState(holding={_action("s1"): 0, _action("s2"): 1}))
    from reconciler.settings import advice

    assert advice(held.value).endswith(
        "nothing was recorded. To send them again: `reconcile apply --resend-in-doubt`"
    )
    with pytest.raises(ReconcilerError, match=r"^3 in-doubt cells still hold state"):
        operations.refuse_held(LiveState(holding={_action("s1"): 2, _action("s2"): 1}))
    with pytest.raises(
        ReconcilerError, match=r"could not read m / p1 / s2 back: 61100; nothing was recorded"
    ):
        operations.refuse_unread(LiveState(failed=[(_action("s2"), "61100")]))


def test_ledger_show_is_a_function_of_its_arguments(
    repo: Path, make_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.args import LedgerShowArgs, ShowFormat
    from reconciler.commands import ledger as commands_ledger

    em = make_emulator(world_for([pipeline()]))
    _env(monkeypatch, em)
    assert commands.apply(ApplyArgs(auto_approve=True), Consoles(io.StringIO(), io.StringIO())).code == 0
    out = io.StringIO()
    args = LedgerShowArgs(fmt=ShowFormat.JSON, kind=["delete"])
    assert commands_ledger.show(args, Consoles(out, io.StringIO())) == CommandOutcome(0)
    assert [r["kind"] for r in json.loads(out.getvalue())] == ["delete"]


@pytest.mark.parametrize(
    ("command", "allowed"), [(["plan"], "text, json or markdown"), (["ledger", "show"], "text or json")]
)
def test_a_format_outside_the_enum_is_refused_by_name(repo: Path, command: list[str], allowed: str) -> None:
    from helpers import run_cli

    bad = run_cli([*command, "--format", "yaml"], repo)
    assert bad.code == 1 and bad.out == "" and f"error: --format must be {allowed}, not 'yaml'" in bad.err


def test_schema_is_a_function_of_its_arguments(tmp_path: Path) -> None:
    from reconciler.args import SchemaArgs
    from reconciler.commands import tools
    from reconciler.errors import ReconcilerError

    out = io.StringIO()
    with pytest.raises(ReconcilerError, match="out of date; run `reconcile schema`"):
        tools.schema(SchemaArgs(out_dir=tmp_path, check=True), Consoles(out, io.StringIO()))
    assert tools.schema(SchemaArgs(out_dir=tmp_path), Consoles(out, io.StringIO())) == CommandOutcome(0)
    assert tools.schema(SchemaArgs(out_dir=tmp_path, check=True), Consoles(out, io.StringIO())).code == 0
    assert out.getvalue().endswith(f"{tmp_path}: up to date with the models\n")
