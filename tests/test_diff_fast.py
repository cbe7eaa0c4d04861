"""The diff's fast paths give exactly what its general path gives.

`diff` compares deletes that are runs of the declared list as tuples (no sets), skips
the per-asset index when no two deletes of a key share an asset, reuses
set work per shared ID tuple, and skips the intents the ledger reader saw closed
exactly (`Ledger.closed_intents`). Here every ledger is written as real lines and read
back (so ID tuples are shared and closed intents known, as in a real run), sometimes
migrated to v2, and the diff is compared with the one the general path computes.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers.examples import examples, quick
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import ledger as L
from reconciler.manifests import Manifest
from reconciler.plan import Diff, diff
from reconciler.plan import _diff as diff_mod

NAMES = ["m1", "m2", "m3"]
ASSETS = [f"a{i}" for i in range(8)]
POINTS = [f"pt{i}" for i in range(4)]
# Manifests pick their lists from a few tuples, so that keys share tuples as ID files do.
ASSET_TUPLES = [tuple(ASSETS), tuple(ASSETS[:4]), tuple(ASSETS[2:7])]
POINT_TUPLES = [tuple(POINTS), tuple(POINTS[:2])]


def subset(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=len(items), unique=True)


manifests_st = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2"]),
        st.sampled_from(ASSET_TUPLES),
        st.sampled_from(POINT_TUPLES),
        st.sampled_from([(), ("old",)]),
    ),
    max_size=3,
).map(
    lambda specs: [
        Manifest(NAMES[i], "o", "p", (stage,), assets, points, f"{NAMES[i]}.yaml", 1, renamed_from=old)
        for i, (stage, assets, points, old) in enumerate(specs)
    ]
)

# Batches: most records take a disjoint slice of the assets, some overlap; intents are
# often followed by their delete (closed exactly), sometimes by a failed or nothing.
records_st = st.lists(
    st.tuples(
        st.sampled_from(["intent+delete", "intent+delete", "intent", "delete", "intent+failed", "resume"]),
        st.sampled_from([*NAMES, "old"]),
        st.sampled_from(["s1", "s2"]),
        st.one_of(
            st.integers(0, 3).map(lambda b: ASSETS[2 * b : 2 * b + 2]),
            st.tuples(st.integers(0, 7), st.integers(1, 8)).map(lambda t: ASSETS[t[0] : t[0] + t[1]]),
            subset(ASSETS),
            subset(ASSETS).map(lambda a: [*a, a[0]]),  # a v1 list may repeat an ID
        ),
        st.one_of(st.sampled_from([POINTS, POINTS[:2]]), subset(POINTS)),
    ),
    max_size=10,
)


def write_ledger(path: Path, steps: list[tuple[str, str, str, list[str], list[str]]]) -> None:
    bodies: list[dict[str, Any]] = []
    for kinds, name, stage, assets, points in steps:
        for kind in kinds.split("+"):
            body: dict[str, Any] = {"kind": kind, "at": "2026-11-27T10:00:00.000Z", "orgId": "o"}
            body["pipelineId"] = "p"
            if kind != "resume":
                body.update(manifest=name, stageInstanceName=stage, assetIds=assets, pointIds=points)
            if kind == "failed":
                body.update(code=61102, message="refused")
            bodies.append(body)
    prev = L.GENESIS
    with path.open("wb") as fh:
        for seq, body in enumerate(bodies, start=1):
            rec = {"v": 1, "seq": seq, **body, "prev": prev}
            rec["hash"] = prev = L.record_hash(rec)
            fh.write(L.canonical(rec) + b"\n")


def general_diff(ms: list[Manifest], led: L.Ledger) -> Diff:
    """The diff with every fast path off: no closed intents, no runs compared as tuples,
    every key indexed per asset, no set difference reused."""
    return diff(ms, led, strategy="general")


@pytest.mark.slow(2)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_fast_paths_equal_the_general_path() -> None:
    # What the fast paths served across the examples: each must serve some, or the
    # comparison proves nothing about it.
    served: Counter[str] = Counter()

    @settings(max_examples=examples(300), deadline=None, derandomize=quick())
    @given(manifests_st, records_st, st.booleans())
    def each(ms: list[Manifest], steps: list[Any], migrate: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ledger.jsonl"
            write_ledger(path, steps)
            if migrate:
                L.migrate(path)
            led = L.read(path)
            fast = diff(ms, led, paths=served)
            assert fast == general_diff(ms, led)
            for kd in fast.keys:  # what `render.plan.distinct_ids` relies on
                pending = [a for g in kd.pending for a in g.assets]
                assert len(set(pending)) == len(pending), kd  # no asset in two pending groups
                for g in (*kd.pending, *kd.in_doubt):
                    assert len(set(g.assets)) == len(g.assets), g
                    assert len(set(g.points)) == len(g.points), g

    each()
    keys = served["runs"] + served["sets"]
    assert keys > 0
    # Observed: about 60% of keys took runs, 80% disjoint, 0.3 closed intents per key.
    assert served["runs"] >= keys // 4 and served["disjoint"] >= keys // 4, served
    assert served["sets"] > 0 and served["indexed"] > 0 and served["closed"] > 0, served


def test_a_closed_intent_is_skipped_and_the_general_path_agrees(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    write_ledger(
        path, [("intent+delete", "m1", "s1", ["a0", "a1"], ["pt0"]), ("intent", "m1", "s1", ["a2"], ["pt0"])]
    )
    led = L.read(path)
    assert led.closed_intents == {1}
    ms = [Manifest("m1", "o", "p", ("s1",), ("a0", "a1", "a2"), ("pt0",), "m1.yaml", 1)]
    fast = diff(ms, led)
    assert fast == general_diff(ms, led)
    assert [g.assets for g in fast.keys[0].in_doubt] == [("a2",)]


def test_batches_in_any_order_are_runs_and_an_overlap_is_not() -> None:
    declared = tuple(f"a{i}" for i in range(10))

    def delete(seq: int, assets: tuple[str, ...]) -> L.Record:
        return L.Record(seq, "delete", "t", "h", {}, assets, ("pt0",))

    batches = [delete(1, declared[6:9]), delete(2, declared[0:3]), delete(3, declared[3:5])]
    assert diff_mod._untouched_runs(declared, batches) == ["a5", "a9"]
    assert diff_mod._untouched_runs(declared, []) == list(declared)
    # Overlapping runs, a run from the same asset twice, a list out of declared order, an
    # undeclared asset: each goes to the set path.
    assert diff_mod._untouched_runs(declared, [delete(1, declared[0:4]), delete(2, declared[2:6])]) is None
    assert diff_mod._untouched_runs(declared, [delete(1, declared[0:2]), delete(2, declared[0:3])]) is None
    assert diff_mod._untouched_runs(declared, [delete(1, ("a1", "a0"))]) is None
    assert diff_mod._untouched_runs(declared, [delete(1, ("a8", "a9", "zz"))]) is None
