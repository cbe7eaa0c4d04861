"""EnOS 3.x (issue 17 item 4): a gateway that answers the streaming routes with HTTP 404
has no Stream Processing API (REFERENCE section 8). Users read that, and which EnOS
releases the tool supports, never a bare "HTTP 404"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write
from helpers.emulators import running

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, World
from reconciler.enos import Credentials, EnosClient, Session, StateRequest
from reconciler.enos.codes import SUPPORTED_ENOS
from reconciler.errors import ApiNotAvailable, PermanentError

TOKEN = {"status": 0, "msg": "SUCCESS", "data": {"accessToken": "t", "expire": 7200}}


def client_over(handler: Any) -> EnosClient:
    return EnosClient(
        Session(
            "https://gw.example",
            Credentials("k", "s"),
            transport=httpx.MockTransport(handler),
            sleep=lambda s: None,
        )
    )


def test_a_404_on_a_streaming_route_says_the_api_is_not_available() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/apim-token-service/"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(404, json={"message": "no Route matched with those values"})

    with client_over(handler) as client, pytest.raises(ApiNotAvailable) as caught:
        client.list_pipelines("o1", 1, 10)
    text = str(caught.value)
    assert "the Stream Processing API is not available on this EnOS gateway" in text
    assert "EnOS 3.0" in text and SUPPORTED_ENOS in text and caught.value.definite
    assert SUPPORTED_ENOS == "EnOS 2.1 to 2.4 (Stream Processing API 2.1.0 to 2.4.4)"


def test_a_404_elsewhere_stays_a_plain_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/apim-token-service/"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(404, json={"message": "not found"})

    with client_over(handler) as client, pytest.raises(PermanentError) as caught:
        client.call("GET", "/other/v1/thing", {})
    assert not isinstance(caught.value, ApiNotAvailable) and "HTTP 404" in str(caught.value)


def test_the_emulator_can_be_an_enos_3_gateway() -> None:
    world = World(world_for([pipeline("p1")], streamingApi=False))
    with (
        running(world) as em,
        EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c,
    ):
        c.token()  # the token service is still there
        for call in (
            lambda: c.list_pipelines("o1", 1, 10),
            lambda: c.delete_stage_state(StateRequest("o1", "p1", "s1", ["a"], ["x"])),
            lambda: c.start("o1", "p1", 1, 1000),
        ):
            with pytest.raises(ApiNotAvailable):
                call()
    assert {e["status"] for e in world.log} == {404} and world.deleted_cells() == set()


def test_cli_apply_against_enos_3_says_so_and_touches_nothing(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")], streamingApi=False))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    res = run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em))
    assert res.code == 1
    assert "the Stream Processing API is not available on this EnOS gateway" in res.err
    assert "reconcile supports EnOS 2.1 to 2.4" in res.err and "Traceback" not in res.all
    routes = [e["route"] for e in em.world.log]
    # refused at the first calls, nothing paused: List Pipelines and the stage names' read beside it
    assert routes.count("list") == 1 and set(routes) <= {"list", "details"}
    assert [line for line in Path(repo / "applied-ledger.jsonl").read_text().splitlines()] == []
