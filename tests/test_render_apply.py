"""Apply's reporters and summary, drawn on a rich Console writing to a string."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from reconciler.apply import ApplyResult, Outcome
from reconciler.commands import CommandOutcome
from reconciler.commands.apply import outcome_of
from reconciler.errors import LedgerWriteError
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef
from reconciler.render.apply import BarReporter, LineReporter, done_line, summary_table


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200, highlight=False), out


def action(stage: str = "s1", assets: int = 2, points: int = 1) -> Action:
    return Action(
        "m", "o1", "p1", stage, tuple(f"a{i}" for i in range(assets)), tuple(f"x{i}" for i in range(points))
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_reporter_shows_requests_cells_failures_and_an_eta() -> None:
    c, out = console()
    clock = Clock()
    r = LineReporter(c, every=2, clock=clock)
    r.start(4, 7)
    clock.now += 10
    r.advance(action(), Outcome.DONE)
    r.advance(action(), Outcome.FAILED, "61102: stage not found")
    clock.now += 10
    r.advance(action(), Outcome.IN_DOUBT, "connection lost")
    r.advance(action(assets=1), Outcome.DONE)
    r.finish()
    r.finish()  # a second finish (Ctrl-C after the sends) prints nothing more
    lines = out.getvalue().splitlines()
    assert lines[0] == "sending 4 requests to clear 7 cells"
    assert lines[1] == "FAILED m p1/s1 (2 cells): 61102: stage not found"
    assert lines[2] == "  2/4 requests done (10.00s): 2 cells cleared, 1 failed, ETA 8s"
    assert lines[3] == "IN DOUBT m p1/s1 (2 cells): connection lost"
    assert lines[4] == "  4/4 requests done (20.00s): 3 cells cleared, 1 failed, 1 in doubt"
    assert len(lines) == 5  # the last progress line is not printed twice


def test_line_reporter_plurals() -> None:
    c, out = console()
    r = LineReporter(c, clock=Clock())
    r.start(1, 1)
    r.advance(action(assets=1), Outcome.DONE)
    r.finish()
    text = out.getvalue()
    assert "sending 1 request to clear 1 cell\n" in text
    assert "1/1 requests done (0.00s): 1 cell cleared, 0 failed\n" in text


@pytest.mark.parametrize("cls", [LineReporter, BarReporter])
def test_an_interrupted_run_ends_the_line_with_what_was_not_answered(cls: type[LineReporter]) -> None:
    c, out = console()
    r = cls(c, clock=Clock())
    r.start(5, 10)
    r.advance(action(), Outcome.DONE)
    r.advance(action(), Outcome.IN_DOUBT, "no answer")
    r.finish()  # apply calls it on Ctrl-C or SIGTERM, once the requests in flight are recorded
    last = out.getvalue().splitlines()[-1]
    assert last == (
        "stopped: 2/5 requests done (0.00s): 2 cells cleared, 0 failed, 1 in doubt; "
        "3 requests not sent (still pending)"
    )  # no ETA: a stopped run has no time left to estimate
    assert "ETA" not in last


def test_bar_reporter_prints_failures_above_the_bar_and_a_final_line() -> None:
    c, out = console()
    r = BarReporter(c, clock=Clock())
    r.start(2, 4)
    r.advance(action(), Outcome.FAILED, "61106: bad asset")
    r.advance(action(), Outcome.DONE)
    r.finish()
    text = out.getvalue()
    assert "FAILED m p1/s1 (2 cells): 61106: bad asset" in text
    assert text.splitlines()[-1] == "2/2 requests done (0.00s): 2 cells cleared, 1 failed"
    assert "\x1b" not in text  # no terminal: no control sequences


def test_bar_reporter_on_a_terminal_has_the_same_figures() -> None:
    out = io.StringIO()
    c = Console(file=out, force_terminal=True, width=200, no_color=True)
    r = BarReporter(c, clock=Clock())
    r.start(2, 4)
    r.advance(action(), Outcome.DONE)
    r._progress.refresh()
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "1/2 requests, 2 cells cleared, 0 failed" in drawn and "ETA" in drawn
    r.finish()


def render(result: ApplyResult) -> str:
    c, out = console()
    c.print(summary_table(result))
    return out.getvalue()


def test_summary_of_an_interrupted_run_shows_every_outcome() -> None:
    p1, p2 = PipelineRef("o1", "p1"), PipelineRef("o1", "p2")
    result = ApplyResult(
        deleted=[action("s1"), action("s2", assets=1)],
        failed=[(action("s3"), "61102: stage not found"), (action("s4"), "61106: bad asset")],
        in_doubt=[(action("s5", assets=3), "no answer recorded")],
        skipped_in_doubt=[action("s6")],
        not_sent=[action("s7"), action("s8"), action("s9", assets=1)],
        paused=[p1],
        resumed=[p1],
        resume_failed=[(p2, "start refused: 61150")],
        stopped_pipelines=[(p2, "p2 is RUNNING now (started outside reconcile?)")],
        interrupted=True,
    )
    text = render(result)
    assert "apply summary (interrupted)" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") == 5}
    assert re.search(r"│\s+2 │\s+3 │", rows["done"])
    assert re.search(r"│\s+2 │\s+4 │ 61102: stage not found \(\+1 other\)", rows["failed (still pending)"])
    assert re.search(r"│\s+1 │\s+3 │", rows["in doubt"])
    assert re.search(r"│\s+1 │\s+2 │", rows["in doubt, left to a person"])
    assert re.search(r"│\s+3 │\s+5 │ run interrupted", rows["not sent (still pending)"])
    assert "1 pipeline: o1/p1" in rows["paused by this run"] and "1 pipeline: o1/p1" in rows["started again"]
    assert "o1/p2: p2 is RUNNING now" in rows["no longer PAUSED mid-run"]
    assert "1 pipeline, start by hand: o1/p2: start refused: 61150" in rows["NOT started again"]


def test_summary_of_a_clean_run_has_only_done() -> None:
    text = render(ApplyResult(deleted=[action()]))
    assert "done" in text and "failed" not in text and "not sent" not in text and "pipeline" not in text


def test_summary_names_a_ledger_error_and_escapes_markup() -> None:
    err = LedgerWriteError("applied-ledger.jsonl: [Errno 28] No space left on device")
    result = ApplyResult(
        failed=[(action(), "[bold]not markup[/bold]")], not_sent=[action()], ledger_error=err
    )
    text = render(result)
    assert "ledger write failed" in text and "[Errno 28] No space left on device" in text
    assert "[bold]not markup[/bold]" in text and "run stopped" in text


def test_done_line_and_the_outcome_use_plurals() -> None:
    assert done_line(ApplyResult(deleted=[action(assets=1)])).endswith("1 cell cleared in 1 request.")
    assert done_line(ApplyResult(deleted=[action(), action()])).endswith("4 cells cleared in 2 requests.")
    stopped = outcome_of(ApplyResult(not_sent=[action()], ledger_error=LedgerWriteError("disk full")))
    assert stopped.code == 1 and "1 request not sent" in (stopped.error or "")
    assert outcome_of(ApplyResult(interrupted=True)) == CommandOutcome(130)  # said by the CLI: no error
    failed = outcome_of(ApplyResult(failed=[(action(), "x")]))
    assert failed.code == 1 and "stays pending" in (failed.error or "")
    assert outcome_of(ApplyResult(deleted=[action()])) == CommandOutcome(0)
