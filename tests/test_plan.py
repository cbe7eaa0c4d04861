"""The planner: exact cover of pending cells, proven against a brute-force model."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product

from helpers import ASSETS, NAMES, PIPES, POINTS, STAGES, ledger_of, manifest, record, subset
from helpers.examples import examples, quick
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reconciler.ledger import Record
from reconciler.manifests import Manifest
from reconciler.plan import Action, Options, build_plan, diff

Cell = tuple[str, str, str, str, str, str]


def cells_of_manifests(ms: list[Manifest]) -> set[Cell]:
    return {
        (m.name, m.org_id, m.pipeline_id, s, a, p)
        for m in ms
        for s, a, p in product(m.stages, m.asset_ids, m.point_ids)
    }


def cells_of_records(rs: list[Record], kind: str) -> set[Cell]:
    return {(*r.key, a, p) for r in rs if r.kind == kind for a in r.asset_ids for p in r.point_ids}


def action_cells(plan_actions: Iterable[Action]) -> list[Cell]:
    """The cells the ledger records for these requests: per manifest each one serves."""
    return [
        (f["manifest"], f["orgId"], f["pipelineId"], f["stageInstanceName"], x, p)
        for a in plan_actions
        for f in a.ledger_fields()
        for x in f["assetIds"]
        for p in f["pointIds"]
    ]


manifests_st = st.lists(
    st.tuples(st.sampled_from(PIPES), subset(STAGES), subset(ASSETS), subset(POINTS)),
    min_size=0,
    max_size=3,
).map(lambda specs: [manifest(NAMES[i], *spec) for i, spec in enumerate(specs)])

records_st = st.lists(
    st.tuples(
        st.sampled_from(["delete", "delete", "intent"]),
        st.sampled_from(NAMES),
        st.sampled_from(PIPES),
        st.sampled_from(STAGES),
        subset(ASSETS),
        subset(POINTS),
    ),
    max_size=8,
).map(lambda rs: [record(i + 1, *r) for i, r in enumerate(rs)])

options_st = st.builds(Options, max_points=st.integers(1, 6), max_assets=st.integers(1, 7))


@settings(max_examples=examples(300), deadline=None)
@given(manifests_st, records_st, options_st)
def test_plan_covers_exactly_the_pending_cells(ms: list[Manifest], rs: list[Record], opts: Options) -> None:
    declared = cells_of_manifests(ms)
    deleted = cells_of_records(rs, "delete")
    intended = cells_of_records(rs, "intent")
    plan = build_plan(diff(ms, ledger_of(rs)), opts)
    sent = action_cells(plan.actions)
    pending = declared - deleted
    assert set(sent) == pending  # exact cover: nothing applied or undeclared
    assert len(sent) == len(pending)  # no overlap between requests
    physical = [
        (a.pipeline_id, a.stage, x, p)
        for a in plan.actions
        if not a.in_doubt
        for x in a.asset_ids
        for p in a.point_ids
    ]
    assert len(physical) == len(set(physical))  # a physical cell is sent once per run
    for a in plan.actions:
        assert 1 <= len(a.point_ids) <= opts.max_points and 1 <= len(a.asset_ids) <= opts.max_assets
        assert len(set(a.asset_ids)) == len(a.asset_ids) and len(set(a.point_ids)) == len(a.point_ids)
    doubt = set(action_cells([a for a in plan.actions if a.in_doubt]))
    assert doubt == pending & intended
    s = plan.summary
    assert s.pending_cells == len(pending)
    assert s.applied_cells == len(declared & deleted)
    assert s.undeclared_cells == len(deleted - declared)
    assert s.in_doubt_cells == len(doubt)
    assert s.requests == len(plan.actions)


@settings(max_examples=examples(150), deadline=None)
@given(manifests_st, records_st, options_st)
def test_recording_the_plan_leaves_nothing_to_do(ms: list[Manifest], rs: list[Record], opts: Options) -> None:
    plan = build_plan(diff(ms, ledger_of(rs)), opts)
    fields = [f for a in plan.actions for f in a.ledger_fields()]
    done = [
        record(
            len(rs) + i + 1,
            "delete",
            f["manifest"],
            f["pipelineId"],
            f["stageInstanceName"],
            f["assetIds"],
            f["pointIds"],
        )
        for i, f in enumerate(fields)
    ]
    again = build_plan(diff(ms, ledger_of(rs + done)), opts)
    assert again.actions == () and again.summary.pending_cells == 0


one_key_history = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["intent", "intent", "delete"]), subset(ASSETS[:3]), subset(POINTS[:2])),
        st.just(("resume", [], [])),
    ),
    max_size=8,
)


def test_in_doubt_is_resent_only_if_no_resume_followed() -> None:
    checked: list[bool] = []  # per example: whether it re-sent an in-doubt request to check

    @settings(max_examples=examples(300), deadline=None, derandomize=quick())
    @given(one_key_history)
    def each(history: list[tuple[str, list[str], list[str]]]) -> None:
        m = manifest("m1", "p1", ["s1"], ASSETS[:3], POINTS[:2])
        records = [
            Record(i + 1, "resume", "t", f"h{i + 1}", {"orgId": "o", "pipelineId": "p1"})
            if kind == "resume"
            else record(i + 1, kind, "m1", "p1", "s1", assets, points)
            for i, (kind, assets, points) in enumerate(history)
        ]
        plan = build_plan(diff([m], ledger_of(records)), Options())
        checked.append(False)
        for a in plan.actions:
            if not a.in_doubt or a.resumed_since:
                continue
            cells = {(x, p) for x in a.asset_ids for p in a.point_ids}
            for r in records:
                if r.kind == "intent" and cells & {(x, p) for x in r.asset_ids for p in r.point_ids}:
                    # re-sending is safe only if the pipeline stayed paused since every such intent
                    assert not any(q.kind == "resume" and q.seq > r.seq for q in records)
                    checked[-1] = True
        event("re-sent in doubt" if checked[-1] else "nothing in doubt re-sent")

    each()
    # not vacuous: about a fifth of the histories re-send an in-doubt request
    assert sum(checked) >= max(1, len(checked) // 10), f"{sum(checked)} of {len(checked)} checked"


def test_assets_with_equal_pending_points_share_a_request() -> None:
    m = manifest("m1", "p1", ["s1"], ["a1", "a2", "a3"], ["x", "y"])
    rs = [record(1, "delete", "m1", "p1", "s1", ["a3"], ["x"])]
    plan = build_plan(diff([m], ledger_of(rs)), Options())
    assert [(a.asset_ids, a.point_ids) for a in plan.actions] == [
        (("a1", "a2"), ("x", "y")),
        (("a3",), ("y",)),
    ]


def test_a_new_manifest_clears_again_an_edited_one_only_adds() -> None:
    rs = [record(1, "delete", "m1", "p1", "s1", ["a1"], ["x"])]
    widened = manifest("m1", "p1", ["s1"], ["a1", "a2"], ["x"])
    plan = build_plan(diff([widened], ledger_of(rs)), Options())
    assert [(a.asset_ids, a.point_ids) for a in plan.actions] == [(("a2",), ("x",))]
    renamed = manifest("m2", "p1", ["s1"], ["a1"], ["x"])
    plan = build_plan(diff([renamed], ledger_of(rs)), Options())
    assert [(a.manifest, a.asset_ids) for a in plan.actions] == [("m2", ("a1",))]
    assert plan.summary.undeclared_cells == 1


def test_split_limits_and_targets() -> None:
    ms = [
        manifest("m1", "p1", ["s1"], [f"a{i}" for i in range(5)], [f"x{i}" for i in range(7)]),
        manifest("m2", "p1", ["s1"], ["b"], ["y"]),
    ]
    plan = build_plan(diff(ms, ledger_of([])), Options(max_points=3, max_assets=2, targets=("m1",)))
    assert {a.manifest for a in plan.actions} == {"m1"}
    assert len(plan.actions) == 3 * 3  # ceil(5/2) asset chunks x ceil(7/3) point chunks
    assert plan.summary.pending_cells == 35


def test_in_doubt_knows_whether_a_resume_followed() -> None:
    m = manifest("m1", "p1", ["s1"], ["a1"], ["x"])
    intent = record(1, "intent", "m1", "p1", "s1", ["a1"], ["x"])
    plan = build_plan(diff([m], ledger_of([intent])), Options())
    assert plan.actions[0].in_doubt and not plan.actions[0].resumed_since
    resume = Record(2, "resume", "t", "h2", {"orgId": "o", "pipelineId": "p1"})
    plan = build_plan(diff([m], ledger_of([intent, resume])), Options())
    assert plan.actions[0].in_doubt and plan.actions[0].resumed_since


def test_only_intents_still_in_doubt_decide_whether_a_resume_followed() -> None:
    m = manifest("m1", "p1", ["s1"], ["a1", "a2"], ["x"])
    old_intent = record(1, "intent", "m1", "p1", "s1", ["a1"], ["x"])
    old_delete = record(2, "delete", "m1", "p1", "s1", ["a1"], ["x"])
    resume = Record(3, "resume", "t", "h3", {"orgId": "o", "pipelineId": "p1"})
    new_intent = record(4, "intent", "m1", "p1", "s1", ["a2"], ["x"])
    plan = build_plan(diff([m], ledger_of([old_intent, old_delete, resume, new_intent])), Options())
    assert [(a.asset_ids, a.in_doubt, a.resumed_since) for a in plan.actions] == [(("a2",), True, False)]


def test_pause_without_resume_is_left_over() -> None:
    pause = Record(
        1, "pause", "t", "h1", {"orgId": "o", "pipelineId": "p1", "executionMode": 1, "kafkaRate": 9}
    )
    plan = build_plan(diff([], ledger_of([pause])), Options())
    assert [r.pipeline for r in plan.pending_resumes] == [("o", "p1")] and plan.has_changes
    resume = Record(2, "resume", "t", "h2", {"orgId": "o", "pipelineId": "p1"})
    assert build_plan(diff([], ledger_of([pause, resume])), Options()).pending_resumes == ()


def test_plan_hash_changes_with_actions_and_ledger_head() -> None:
    m = manifest("m1", "p1", ["s1"], ["a1"], ["x"])
    a = build_plan(diff([m], ledger_of([])), Options())
    b = build_plan(diff([manifest("m1", "p1", ["s1"], ["a2"], ["x"])], ledger_of([])), Options())
    c = build_plan(diff([m], ledger_of([record(1, "delete", "zz", "p1", "s1", ["q"], ["x"])])), Options())
    assert len({a.plan_hash, b.plan_hash, c.plan_hash}) == 3


def test_plan_hash_from_the_encoded_lines_is_the_hash_of_the_canonical_fields() -> None:
    from reconciler.plan import plan_hash

    m = manifest("m1", "p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "ü"])
    intent = record(1, "intent", "m1", "p1", "s1", ["a1"], ["x"])
    for ledger in (ledger_of([]), ledger_of([intent])):
        p = build_plan(diff([m], ledger), Options(max_assets=2), manifest_paths=["manifests"])
        assert p.actions and p.plan_hash == plan_hash(p.hashed_fields())
    empty = build_plan(diff([], ledger_of([])), Options())
    assert empty.plan_hash == plan_hash(empty.hashed_fields())


def test_a_cell_several_manifests_declare_is_sent_once_and_recorded_for_each() -> None:
    shared = ["WT001", "WT002"]
    ms = [manifest(f"m{i}", "p1", ["s1"], shared, ["x", "y"] if i else ["x"]) for i in range(3)]
    plan = build_plan(diff(ms, ledger_of([])), Options())
    assert len(plan.actions) == 1  # was one request per manifest
    (a,) = plan.actions
    assert set(a.asset_ids) == set(shared) and set(a.point_ids) == {"x", "y"}
    recorded = {(f["manifest"], tuple(f["pointIds"])) for f in a.ledger_fields()}
    assert recorded == {("m0", ("x",)), ("m1", ("x", "y")), ("m2", ("x", "y"))}
    assert plan.summary.pending_cells == 2 + 4 + 4 and plan.summary.requests == 1
    half = a.halves()[0]  # a 61105 split keeps the shares, each for the points it carried
    assert {f["manifest"] for f in half.ledger_fields()} == (
        {"m0", "m1", "m2"} if "x" in half.point_ids else {"m1", "m2"}
    )


def test_a_left_over_pause_waits_for_manifests_target_leaves_out() -> None:
    pause = Record(
        1, "pause", "t", "h1", {"orgId": "o", "pipelineId": "p1", "executionMode": 1, "kafkaRate": 9}
    )
    ms = [manifest("m1", "p1", ["s"], ["a"], ["x"]), manifest("m2", "p1", ["s"], ["b"], ["x"])]
    led = ledger_of([pause])
    assert [r.pipeline for r in build_plan(diff(ms, led), Options()).pending_resumes] == [("o", "p1")]
    targeted = build_plan(diff(ms, led), Options(targets=("m1",)))
    assert targeted.pending_resumes == ()  # m2's work on p1 is not done: p1 stays paused
    done = record(2, "delete", "m2", "p1", "s", ["b"], ["x"])
    assert build_plan(diff(ms, ledger_of([pause, done])), Options(targets=("m1",))).pending_resumes != ()


def test_a_shared_cell_left_in_doubt_is_resent_once_for_all_its_manifests() -> None:
    ms = [manifest(f"m{i}", "p1", ["s1"], ["WT1", "WT2"], ["x"]) for i in range(3)]
    intents = [record(i + 1, "intent", f"m{i}", "p1", "s1", ["WT1", "WT2"], ["x"]) for i in range(3)]
    plan = build_plan(diff(ms, ledger_of(intents)), Options())
    assert len(plan.actions) == 1 and plan.actions[0].in_doubt  # was one request per manifest
    assert {f["manifest"] for f in plan.actions[0].ledger_fields()} == {"m0", "m1", "m2"}
    assert plan.summary.in_doubt_cells == 6
