"""A bench for issue 17's tests: the real client and `apply` in-process against the
emulator over loopback, with one `FakeClock` for both, so that backoff and the
emulator's start window pass without a real wait."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.emulators import stop_later

from reconciler import ledger as L
from reconciler.apply import ApplyOptions, ApplyResult, Gateways, NullReporter, apply
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeClock, RunningEmulator, World
from reconciler.enos import Credentials, EnosClient, Session
from reconciler.manifests import Manifest
from reconciler.plan import Options, Plan, build_plan, diff

ORG = "o"


def pipe(pid: str = "p1", status: str = "RUNNING", org: str = ORG, **kw: Any) -> dict[str, Any]:
    return {
        "pipelineId": pid,
        "orgId": org,
        "status": status,
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": {"s1": "LastRecordAppender", "s2": "LastRecordAppender", "bad": "WindowAggregator"},
        "fillState": True,
        **kw,
    }


def manifest(
    name: str,
    pipeline: str = "p1",
    stages: tuple[str, ...] = ("s1",),
    assets: int = 1,
    points: int = 1,
    org: str = ORG,
) -> Manifest:
    ids = tuple(f"a{i:04d}" for i in range(assets))
    pts = tuple(f"x{i:03d}" for i in range(points))
    return Manifest(name, org, pipeline, stages, ids, pts, f"{name}.yaml", 1)


@dataclass
class Bench:
    em: RunningEmulator
    client: EnosClient
    ledger: Path
    manifests: list[Manifest]
    clock: FakeClock
    options: Options

    @property
    def world(self) -> World:
        return self.em.world

    def plan(self) -> Plan:
        return build_plan(diff(self.manifests, L.read(self.ledger)), self.options)

    def apply(
        self,
        reporter: NullReporter | None = None,
        *,
        publish: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> tuple[ApplyResult, NullReporter]:
        reporter = reporter or NullReporter()
        opts = ApplyOptions(**{"poll_interval": 1.0, "pause_timeout": 60.0, **options})
        with L.LedgerWriter(L.read(self.ledger)) as w:
            result = apply(
                self.plan(),
                Gateways.single(self.client),
                w,
                reporter,
                opts,
                sleep=self.clock.advance,
                clock=self.clock,
                publish=publish,
                stop=stop,
            )
        return result, reporter

    def kinds(self, *kinds: str) -> list[str]:
        return [r.kind for r in L.read(self.ledger).records if not kinds or r.kind in kinds]

    def log(self, route: str, action: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.world.log
            if e["route"] == route and (action is None or e["query"].get("action") == action)
        ]


def bench_factory(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    made: list[Bench] = []

    def make(
        pipelines: list[dict[str, Any]],
        manifests: list[Manifest],
        options: Options | None = None,
        **seed: Any,
    ) -> Bench:
        clock = FakeClock()
        world = World(
            {
                "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
                "pipelines": pipelines,
                **seed,
            },
            clock=clock,
        )
        em = RunningEmulator(world).start()
        client = EnosClient(
            Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), sleep=lambda s: None)
        )
        ledger = tmp_path / f"ledger{len(made)}.jsonl"
        ledger.touch()
        made.append(Bench(em, client, ledger, manifests, clock, options or Options(max_assets=1)))
        return made[-1]

    yield make
    for b in made:
        b.client.close()
        stop_later(b.em)  # in the background (helpers/emulators.py)
