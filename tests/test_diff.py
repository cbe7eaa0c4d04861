"""The diff: what `failed` records, renames and `metadata.renamedFrom` do to pending cells."""

from __future__ import annotations

from dataclasses import replace

from helpers import ledger_of, manifest, record

from reconciler.plan import Options, RenameHint, build_plan, diff


def test_failed_closes_an_intent_its_cells_pending_not_in_doubt() -> None:
    m = manifest("m1", "p1", ["s"], ["a1", "a2"], ["x"])
    intent = record(1, "intent", "m1", "p1", "s", ["a1", "a2"], ["x"])
    failed = record(2, "failed", "m1", "p1", "s", ["a1", "a2"], ["x"])
    kd = diff([m], ledger_of([intent, failed])).keys[0]
    assert kd.in_doubt == () and kd.pending_cells == 2
    # Without the failed record the same intent is in doubt.
    assert diff([m], ledger_of([intent])).keys[0].in_doubt_cells == 2


def test_an_intent_after_a_failed_one_is_in_doubt_again() -> None:
    m = manifest("m1", "p1", ["s"], ["a1"], ["x", "y"])
    rs = [
        record(1, "intent", "m1", "p1", "s", ["a1"], ["x", "y"]),
        record(2, "failed", "m1", "p1", "s", ["a1"], ["x", "y"]),
        record(3, "intent", "m1", "p1", "s", ["a1"], ["x", "y"]),
    ]
    assert diff([m], ledger_of(rs)).keys[0].in_doubt_cells == 2


def test_a_failed_half_of_a_split_leaves_only_the_other_half_in_doubt() -> None:
    m = manifest("m1", "p1", ["s"], ["a1"], ["x", "y"])
    rs = [
        record(1, "intent", "m1", "p1", "s", ["a1"], ["x", "y"]),
        record(2, "failed", "m1", "p1", "s", ["a1"], ["x"]),
    ]
    kd = diff([m], ledger_of(rs)).keys[0]
    assert [(g.points, g.assets) for g in kd.in_doubt] == [(("y",), ("a1",))]
    assert kd.pending_cells == 2


def test_a_rename_is_warned_with_the_old_name_and_count() -> None:
    old = record(1, "delete", "wind-fx", "p1", "s", ["a1", "a2", "a3"], ["x"])
    renamed = manifest("wind-fix", "p1", ["s"], ["a1", "a2", "a3", "a4"], ["x"])
    d = diff([renamed], ledger_of([old]))
    assert d.renames == (RenameHint("wind-fix", "wind-fx", 3),)
    plan = build_plan(d, Options())
    assert plan.summary.pending_cells == 4 and plan.renames == d.renames


def test_renamed_from_carries_the_history_over() -> None:
    old = record(1, "delete", "wind-fx", "p1", "s", ["a1", "a2", "a3"], ["x"])
    renamed = replace(
        manifest("wind-fix", "p1", ["s"], ["a1", "a2", "a3", "a4"], ["x"]), renamed_from=("wind-fx",)
    )
    d = diff([renamed], ledger_of([old]))
    plan = build_plan(d, Options())
    assert d.renames == ()
    assert [a.asset_ids for a in plan.actions] == [("a4",)]
    assert plan.summary.applied_cells == 3 and plan.summary.undeclared_cells == 0


def test_no_rename_warning_for_a_deliberately_new_manifest_elsewhere() -> None:
    old = record(1, "delete", "old", "p1", "s", ["a1"], ["x"])
    other_stage = manifest("new", "p1", ["t"], ["a1"], ["x"])
    assert diff([other_stage], ledger_of([old])).renames == ()
