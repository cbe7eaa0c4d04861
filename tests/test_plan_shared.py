"""Shared stages (several manifests on one pipeline and stage): the cheap grouping gives
exactly the requests of the per-asset signature model, in the same order."""

from __future__ import annotations

from dataclasses import replace
from itertools import chain

from helpers import ASSETS, NAMES, POINTS, ledger_of, manifest, record, subset
from helpers.examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.ledger import Ledger
from reconciler.manifests import Manifest
from reconciler.plan import Action, Options, Plan, build_plan, diff, recleared
from reconciler.plan import _build as build_mod
from reconciler.plan._diff import _diff_key, _Sets
from reconciler.plan.values import KeyDiff, PendingGroup, Recleared, StageKey


def model_shared_actions(
    stage: tuple[str, str, str], kds: list[KeyDiff], options: Options, doubt: bool
) -> list[Action]:
    """The per-asset model: every asset's (manifest -> points) signature, compared by value."""
    per_asset: dict[str, dict[str, tuple[str, ...]]] = {}
    for kd in kds:
        for g in kd.in_doubt if doubt else kd.pending:
            for a in g.assets:
                per_asset.setdefault(a, {})[kd.key.manifest] = g.points
    resumed = doubt and any(kd.resumed_since_intent for kd in kds)
    by_sig: dict[tuple[tuple[str, tuple[str, ...]], ...], list[str]] = {}
    for asset, per in per_asset.items():
        by_sig.setdefault(tuple(per.items()), []).append(asset)
    out = []
    for sig, assets in by_sig.items():
        union = tuple(dict.fromkeys(p for _, points in sig for p in points))
        group = PendingGroup(union, tuple(assets))
        for action in build_mod._split(
            StageKey(sig[0][0], *stage), group, options, in_doubt=doubt, resumed=resumed
        ):
            out.append(replace(action, shares=sig) if len(sig) > 1 else action)
    return out


specs_st = st.lists(
    st.tuples(st.sampled_from(["s1", "s2"]), subset(ASSETS), subset(POINTS)), min_size=2, max_size=3
)
done_st = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["s1", "s2"]), subset(ASSETS), subset(POINTS)), max_size=4
)
options_st = st.builds(Options, max_points=st.integers(1, 6), max_assets=st.integers(1, 7))


@settings(max_examples=examples(300), deadline=None)
@given(specs_st, done_st, options_st, st.booleans())
def test_shared_actions_equal_the_per_asset_model(
    specs: list[tuple[str, list[str], list[str]]],
    done: list[tuple[int, str, list[str], list[str]]],
    options: Options,
    as_intents: bool,
) -> None:
    ms = [
        manifest(NAMES[i], "p1", [stage], assets, points) for i, (stage, assets, points) in enumerate(specs)
    ]
    kind = "intent" if as_intents else "delete"
    records = [
        record(n + 1, kind, NAMES[i % len(ms)], "p1", stage, assets, points)
        for n, (i, stage, assets, points) in enumerate(done)
    ]
    d = diff(ms, ledger_of(records))
    plan = build_plan(d, options)
    expected: list[Action] = []
    for doubt in (False, True):
        shared = build_mod._shared_stages(d.keys, doubt)
        for stage, kds in shared.items():
            got = list(build_mod._shared_actions(stage, kds, options, doubt))
            assert got == model_shared_actions(stage, kds, options, doubt)
            expected.extend(got)
    assert set(expected) <= set(plan.actions)


def test_manifests_sharing_a_stage_but_no_asset_keep_their_own_groups() -> None:
    farms = [[f"F{m}A{i}" for i in range(4)] for m in range(3)]
    ms = [manifest(f"m{m}", "p1", ["s1"], farms[m], POINTS[: m + 1]) for m in range(3)]
    plan = build_plan(diff(ms, ledger_of([])), Options())
    assert [(a.manifest, a.asset_ids, a.point_ids, a.shares) for a in plan.actions] == [
        (f"m{m}", tuple(farms[m]), tuple(POINTS[: m + 1]), ()) for m in range(3)
    ]
    assert (
        build_mod._assets_in_several([(k.key.manifest, g) for k in plan.keys for g in k.pending])
        == frozenset()
    )


def test_only_the_assets_several_manifests_declare_are_grouped_by_signature() -> None:
    ms = [
        manifest("m0", "p1", ["s1"], ["a", "b", "c"], ["x"]),
        manifest("m1", "p1", ["s1"], ["c", "d"], ["y"]),
    ]
    plan = build_plan(diff(ms, ledger_of([])), Options())
    got = [(a.manifest, a.asset_ids, a.point_ids, tuple(m for m, _ in a.shares)) for a in plan.actions]
    assert got == [
        ("m0", ("a", "b"), ("x",), ()),
        ("m0", ("c",), ("x", "y"), ("m0", "m1")),
        ("m1", ("d",), ("y",), ()),
    ]
    assert sorted(chain.from_iterable(a.asset_ids for a in plan.actions)) == ["a", "b", "c", "d"]


def model_recleared(plan: Plan, ledger: Ledger, manifests: list[Manifest]) -> tuple[Recleared, ...]:
    """`recleared` without its shortcuts: every pending group diffed against every other
    manifest's deletes on its stage, whether or not they share an asset."""
    owner = {m.name: m.name for m in manifests} | {old: m.name for m in manifests for old in m.renamed_from}
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for kd in plan.keys:
        if not kd.pending_cells:
            continue
        per_other: dict[str, tuple[int, list[str]]] = {}
        for name in dict.fromkeys(r.manifest for r in ledger.records):
            deletes = [r for r in ledger.records if r.kind == "delete" and r.key == (name, *kd.key[1:])]
            if not deletes or name not in owner or owner[name] == kd.key.manifest:
                continue
            cells = sum(
                _diff_key(kd.key, g.points, g.assets, deletes, {}, _Sets())[0].applied_cells
                for g in (*kd.pending, *kd.in_doubt)
            )
            if cells:
                n, dates = per_other.get(owner[name], (0, []))
                per_other[owner[name]] = (n + cells, dates + [r.at[:10] for r in deletes])
        for other, (cells, dates) in per_other.items():
            n, first, last = found.get((kd.key.manifest, other), (0, "9999", ""))
            found[kd.key.manifest, other] = (
                n + min(cells, kd.pending_cells),
                min(first, *dates),
                max(last, *dates),
            )
    return tuple(Recleared(m, other, *entry) for (m, other), entry in sorted(found.items()))


twins_st = st.lists(st.tuples(subset(ASSETS), subset(POINTS)), min_size=2, max_size=3)


@settings(max_examples=examples(300), deadline=None)
@given(twins_st, done_st, options_st, st.booleans())
def test_twin_stages_plan_and_recleared_as_the_models_do(
    specs: list[tuple[list[str], list[str]]],
    done: list[tuple[int, str, list[str], list[str]]],
    options: Options,
    as_intents: bool,
) -> None:
    """Manifests on both stages of one pipeline (what the plan and recleared reuse from the
    first stage for the second): the requests of the per-asset model, stage by stage, and
    recleared's counts as diffing every group against every other manifest."""
    ms = [manifest(NAMES[i], "p1", ["s1", "s2"], assets, points) for i, (assets, points) in enumerate(specs)]
    kind = "intent" if as_intents else "delete"
    records = [
        record(n + 1, kind, NAMES[i % len(ms)], "p1", stage, assets, points)
        for n, (i, stage, assets, points) in enumerate(done)
    ]
    led = ledger_of(records)
    plan = build_plan(diff(ms, led), options)
    shared = {doubt: build_mod._shared_stages(plan.keys, doubt) for doubt in (False, True)}
    expected: list[Action] = []
    sent: set[tuple[tuple[str, ...], bool]] = set()
    for kd in plan.keys:  # build_plan's order: a shared stage's requests where its first manifest stands
        for doubt in (False, True):
            stage = kd.key[1:]
            if stage in shared[doubt]:
                if (stage, doubt) not in sent:
                    sent.add((stage, doubt))
                    expected.extend(model_shared_actions(stage, shared[doubt][stage], options, doubt))
                continue
            for g in kd.in_doubt if doubt else kd.pending:
                resumed = doubt and kd.resumed_since_intent
                expected.extend(build_mod._split(kd.key, g, options, in_doubt=doubt, resumed=resumed))
    assert list(plan.actions) == expected
    assert recleared(plan, led, ms) == model_recleared(plan, led, ms)
