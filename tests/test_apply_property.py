"""Invariants 1-3 as a property: for random manifests and ledgers, apply deletes exactly the
pending cells (over real loopback HTTP to the emulator), and afterwards nothing is pending."""

from __future__ import annotations

import tempfile
from itertools import product
from pathlib import Path

from helpers import ASSETS, NAMES, PIPES, POINTS, STAGES, manifest, subset
from helpers.emulators import running
from helpers.examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import ledger as L
from reconciler.apply import ApplyOptions, Gateways, NullReporter, apply
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, World
from reconciler.enos import Credentials, EnosClient, Session
from reconciler.manifests import Manifest
from reconciler.plan import Options, build_plan, diff

WORLD = {
    "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
    "pipelines": [
        {
            "pipelineId": p,
            "orgId": "o",
            "status": "PAUSED",
            "executionMode": 1,
            "kafkaRate": 10,
            "stages": dict.fromkeys(STAGES, "RecordCapturer"),
            "fillState": True,
        }
        for p in PIPES
    ],
}

scenario = st.tuples(
    st.lists(st.tuples(st.sampled_from(PIPES), subset(STAGES), subset(ASSETS), subset(POINTS)), max_size=3),
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(STAGES), subset(ASSETS), subset(POINTS)), max_size=5
    ),
    st.integers(1, 4),
    st.integers(1, 3),
)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_apply_deletes_exactly_the_pending_cells(case: tuple[list, list, int, int]) -> None:  # type: ignore[type-arg]
    specs, history, max_points, concurrency = case
    ms: list[Manifest] = [manifest(NAMES[i], *spec) for i, spec in enumerate(specs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.jsonl"
        with L.LedgerWriter(L.read(path)) as w:  # some cells were applied before
            for m_index, stage, assets, points in history:
                if m_index < len(ms):
                    m = ms[m_index]
                    w.append(
                        "delete",
                        {
                            "manifest": m.name,
                            "orgId": "o",
                            "pipelineId": m.pipeline_id,
                            "stageInstanceName": stage,
                            "assetIds": assets,
                            "pointIds": points,
                        },
                    )
        led = L.read(path)
        plan = build_plan(diff(ms, led), Options(max_points=max_points, max_assets=2))
        pending = {
            (a.pipeline_id, a.stage, x, p) for a in plan.actions for x in a.asset_ids for p in a.point_ids
        }
        declared = {
            (m.pipeline_id, s, a, p) for m in ms for s, a, p in product(m.stages, m.asset_ids, m.point_ids)
        }
        with (
            running(World(WORLD)) as em,
            EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c,
            L.LedgerWriter(led) as w,
        ):
            result = apply(plan, Gateways.single(c), w, NullReporter(), ApplyOptions(concurrency=concurrency))
            sent = {cell[1:] for cell in em.world.deleted_cells()}
        assert result.ok
        assert sent == pending and sent <= declared  # invariant 1: nothing outside the plan
        again = build_plan(diff(ms, L.read(path)), Options(max_points=max_points, max_assets=2))
        assert again.actions == ()  # invariants 2 and 3
