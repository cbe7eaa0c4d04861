"""apply.scope: what a run sends, narrowed from the plan; here, after losing the
compare-and-swap to another apply."""

from __future__ import annotations

from helpers import ledger_of, manifest, record

from reconciler.apply import NullReporter, scope
from reconciler.plan import Options, Plan, build_plan, diff


def planned(records: list) -> Plan:  # type: ignore[type-arg]
    led = ledger_of(records)
    m = manifest("m", "p1", ["s1"], ["a1", "a2", "a3", "a4"], ["x"])
    return build_plan(diff([m], led), Options(max_assets=1))


def test_what_the_winner_announced_is_left_to_it_and_the_summary_says_so() -> None:
    mine = planned([record(1, "intent", "m", "p1", "s1", ["a1"], ["x"])])  # in doubt before
    # The winner announced a2 and a3 meanwhile: they look in doubt now, but are in flight.
    now = planned(
        [
            record(1, "intent", "m", "p1", "s1", ["a1"], ["x"]),
            record(2, "intent", "m", "p1", "s1", ["a2"], ["x"]),
            record(3, "intent", "m", "p1", "s1", ["a3"], ["x"]),
        ]
    )
    reporter = NullReporter()
    left = scope.without_concurrent(now, mine, reporter)
    sent = sorted(a.asset_ids for a in left.actions)
    assert sent == [("a1",), ("a4",)]  # ours in doubt, and the pending one; not the winner's
    s = left.summary
    assert (s.requests, s.pending_cells, s.in_doubt_cells) == (2, 2, 1)
    assert any("left to the apply that pushed first: 2 requests" in n for n in reporter.notes)
