"""The emulator and client for issue 17: starts that collide in an org (61121), an org
without processing resource (61128), resourceConfig, Get Pipeline Details' stage names and
Get Pipeline Offset and Lag; the new state-file keys are checked like the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import pipeline, world_for
from helpers.emulators import running

from reconciler.emulator import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    EmulatorError,
    FakeClock,
    World,
)
from reconciler.enos import Credentials, EnosClient, Session
from reconciler.errors import OrgBusyError, PermanentError, TransientError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def served(world: World) -> Iterator[EnosClient]:
    with (
        running(world) as em,
        EnosClient(
            Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), sleep=lambda s: None)
        ) as client,
    ):
        yield client


def test_a_start_within_the_window_of_another_start_in_the_org_gets_61121(clock: FakeClock) -> None:
    seed = world_for(
        [pipeline("p1"), pipeline("p2"), pipeline("p3"), {**pipeline("q1"), "orgId": "o2"}],
        startWindow=10,
    )
    world = World(seed, clock=clock)
    for client in served(world):
        client.start("o1", "p1", 1, 1000)
        with pytest.raises(OrgBusyError) as caught:
            client.start("o1", "p2", 1, 1000)
        assert caught.value.code == 61121 and caught.value.definite
        assert "Another user in the organization is starting a stream processing job" in str(caught.value)
        client.start("o2", "q1", 1, 1000)  # another org is not busy
        clock.advance(10)
        client.start("o1", "p2", 1, 1000)
        world.start_in_org("o1", busy_for=3)  # a colleague
        clock.advance(2.9)
        with pytest.raises(OrgBusyError):
            client.start("o1", "p3", 1, 1000)
        clock.advance(0.1)
        client.start("o1", "p3", 1, 1000)
    assert {world.status(p) for p in ("p1", "p2", "p3")} == {"RUNNING"}


def test_61128_by_configuration_and_resource_config_on_the_wire(clock: FakeClock) -> None:
    world = World(world_for([pipeline("p1")], noResource=["o1"]), clock=clock)
    for client in served(world):
        with pytest.raises(PermanentError) as caught:
            client.start("o1", "p1", 0, 500, "2")
        assert caught.value.code == 61128 and caught.value.definite
        assert "an EnOS administrator must request or assign that resource" in str(caught.value)
        world.no_resource.clear()
        client.start("o1", "p1", 0, 500, '{"server":"x"}')
    bodies = [e["body"] for e in world.log if e["route"] == "operate"]
    assert bodies == [
        {"executionMode": 0, "kafkaRate": 500, "resourceConfig": 2},
        {"executionMode": 0, "kafkaRate": 500, "resourceConfig": {"server": "x"}},
    ]


def test_pipeline_details_reveal_stage_names_and_offset_lag_needs_running(clock: FakeClock) -> None:
    world = World(world_for([pipeline("p1", status="RUNNING", stages=("s1", "s2"), lag=7)]), clock=clock)
    for client in served(world):
        details = client.pipeline_details("o1", "p1")
        assert details.stage_names == frozenset({"s1", "s2"}) and details.lacks("s3")
        lag = client.offset_lag("o1", "p1")
        assert lag is not None and (lag.lag, lag.partitions, lag.topic) == (7, 1, "stream-p1")
        client.pause("o1", "p1")
        with pytest.raises(TransientError):  # 61199: not RUNNING
            client.offset_lag("o1", "p1")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"requestLimit": "assets"}, "requestLimit: 'assets' is not one of points, cells"),
        ({"noResource": [1]}, "noResource: expected a list of orgId strings"),
        ({"startWindow": "5"}, "startWindow: wrong type str"),
        ({"streamingapi": False}, "unknown key 'streamingapi' (did you mean 'streamingApi'?)"),
    ],
)
def test_new_state_file_keys_are_checked(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(EmulatorError) as caught:
        World(world_for([pipeline()], **extra), source="state.yaml")
    assert str(caught.value) == f"state.yaml: {message}"


# --- the client, over MockTransport ----------------------------------------------------------

TOKEN = {"status": 0, "msg": "SUCCESS", "data": {"accessToken": "t", "expire": 7200}}


def mock(data: Any) -> tuple[EnosClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/apim-token-service/"):
            return httpx.Response(200, json=TOKEN)
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "msg": "OK", "data": data})

    client = EnosClient(
        Session("https://gw.example", Credentials("k", "s"), transport=httpx.MockTransport(handler))
    )
    return client, seen


def test_offset_lag_reads_string_numbers_and_sums_partitions() -> None:
    client, seen = mock(
        {
            "pipelineId": "p1",
            "topicName": "t",
            "lagAndOffset": [{"lag": "10", "offset": "5", "ts": 1}, {"lag": 5.0, "ts": "9"}],
        }
    )
    lag = client.offset_lag("o1", "p1")
    assert lag is not None and (lag.lag, lag.partitions, lag.ts) == (15, 2, 9)
    assert seen[0].url.path == "/streaming/v2.0/streaming/pipeline/p1/offset-lag"
    assert dict(seen[0].url.params) == {"orgId": "o1"}


@pytest.mark.parametrize("data", [None, {}, {"lagAndOffset": "x"}, {"lagAndOffset": [{"lag": "n/a"}]}])
def test_offset_lag_without_figures_is_none(data: Any) -> None:
    client, _ = mock(data)
    assert client.offset_lag("o1", "p1") is None


def test_pipeline_details_as_a_list_and_without_a_readable_configuration() -> None:
    client, seen = mock([{"pipelineId": "p1", "pipelineName": "n", "pipelineJson": "{not json"}])
    details = client.pipeline_details("o1", "p1")
    assert details.name == "n" and details.stage_names is None and not details.lacks("s1")
    assert dict(seen[0].url.params) == {"orgId": "o1", "ifReleased": "true"}


def test_start_sends_resource_config_only_when_given() -> None:
    client, seen = mock("")
    client.start("o1", "p1", 1, 1000)
    client.start("o1", "p1", 1, 1000, json.dumps({"yarn": {"workerCount": 2}}))
    assert [json.loads(r.content) for r in seen] == [
        {"executionMode": 1, "kafkaRate": 1000},
        {"executionMode": 1, "kafkaRate": 1000, "resourceConfig": {"yarn": {"workerCount": 2}}},
    ]
