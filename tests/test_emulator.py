"""The emulator behaves as the documentation says: validation order, transitions, tokens."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import ORG, pipeline, run_cli, world_for, write

from reconciler.emulator import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    EXPIRY_SHAPES,
    EmulatorError,
    FakeClock,
    RunningEmulator,
    World,
    serve_forever,
)
from reconciler.enos import Credentials, EnosClient, RetryPolicy, Session, StateRequest, sign
from reconciler.errors import NotPausedError, PermanentError, TransientError
from reconciler.tls import context as tls_context


def plain(method: str, url: str, **kw: Any) -> httpx.Response:
    """One unsigned HTTP call, like `httpx.post`, without loading the CA bundle for each
    (the shared context of every session: reconciler/enos/session.py)."""
    with httpx.Client(verify=tls_context()) as client:
        return client.request(method, url, **kw)


def token(url: str, ts: int | None = None, secret: str = DEFAULT_APP_SECRET) -> dict[str, Any]:
    ts = ts or int(time.time() * 1000)
    enc = hashlib.sha256(f"{DEFAULT_APP_KEY}{ts}{secret}".encode()).hexdigest()
    return plain(
        "POST",
        f"{url}/apim-token-service/v2.0/token/get",
        json={"appKey": DEFAULT_APP_KEY, "timestamp": ts, "encryption": enc},
    ).json()  # type: ignore[no-any-return]


def signed_post(url: str, tok: str, path: str, query: dict[str, str], raw: bytes) -> dict[str, Any]:
    ts = int(time.time() * 1000)
    headers = {
        "apim-accesstoken": tok,
        "apim-timestamp": str(ts),
        "Content-Type": "application/json",
        "apim-signature": sign(tok, query, raw, ts, DEFAULT_APP_SECRET),
    }
    return plain("POST", f"{url}{path}", params=query, content=raw, headers=headers).json()  # type: ignore[no-any-return]


def test_token_service_codes(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    ts = int(time.time() * 1000)
    first = token(em.url, ts)
    assert first["status"] == 0 and first["business"] == "apim-token-service"
    assert first["data"]["expire"] <= 7200
    assert token(em.url, ts)["status"] == 1001  # the same encryption again: replay
    assert token(em.url, ts + 1)["data"]["accessToken"] == first["data"]["accessToken"]  # same until expiry
    assert token(em.url, ts + 2, secret="bad")["status"] == 1003


def test_the_documented_request_sample_is_accepted_as_written(make_emulator: Any) -> None:
    em = make_emulator(
        world_for(
            [
                {
                    **pipeline("yourPipelineId"),
                    "orgId": "yourOrgId",
                    "stages": {"yourStageInstanceName": "LastRecordAppender"},
                }
            ]
        )
    )
    tok = token(em.url)["data"]["accessToken"]
    raw = b'{\n\t"pipelineId":"yourPipelineId",\n\t"stageInstanceName":"yourStageInstanceName",\n\t"assetIds":"yourAssetIds",\n\t"pointIds":"yourPointIds"\n}'
    reply = signed_post(
        em.url, tok, "/streaming/v2.0/stage-state", {"action": "delete", "orgId": "yourOrgId"}, raw
    )
    assert reply["code"] == 0 and reply["data"] is True and "requestId" in reply


def test_signature_is_checked(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    tok = token(em.url)["data"]["accessToken"]
    raw = json.dumps({"pipelineId": "p1"}).encode()
    r = plain(
        "POST",
        f"{em.url}/streaming/v2.0/stage-state",
        params={"action": "delete", "orgId": ORG},
        content=raw,
        headers={"apim-accesstoken": tok, "apim-timestamp": "1", "apim-signature": "0" * 64},
    )
    assert r.status_code == 401 and "signature" in r.json()["message"]
    r = plain("GET", f"{em.url}/streaming/v2.0/streaming/pipelines", params={"orgId": ORG})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "org", "code"),
    [
        ({"pipelineId": "p1", "stageInstanceName": "s1", "assetIds": "a"}, ORG, 61102),
        ({"pipelineId": "ghost", "stageInstanceName": "s1", "assetIds": "", "pointIds": "x"}, ORG, 61102),
        (
            {"pipelineId": "ghost", "stageInstanceName": "s1", "assetIds": "a", "pointIds": "1,2,3"},
            ORG,
            61105,
        ),
        ({"pipelineId": "ghost", "stageInstanceName": "zz", "assetIds": "a", "pointIds": "1"}, ORG, 61106),
        ({"pipelineId": "p1", "stageInstanceName": "s1", "assetIds": "a", "pointIds": "1"}, "o2", 61106),
        ({"pipelineId": "p1", "stageInstanceName": "zz", "assetIds": "a", "pointIds": "1"}, ORG, 61107),
        ({"pipelineId": "run", "stageInstanceName": "s1", "assetIds": "a", "pointIds": "1"}, ORG, 61199),
    ],
    ids=[
        "missing",
        "empty-before-pipeline",
        "too-many-before-pipeline",
        "pipeline",
        "org",
        "stage",
        "not-paused",
    ],
)
def test_stage_state_validation_order(make_emulator: Any, body: dict[str, str], org: str, code: int) -> None:
    em = make_emulator(world_for([pipeline(), pipeline("run", status="RUNNING")], maxPoints=2))
    tok = token(em.url)["data"]["accessToken"]
    reply = signed_post(
        em.url,
        tok,
        "/streaming/v2.0/stage-state",
        {"action": "delete", "orgId": org},
        json.dumps(body).encode(),
    )
    assert reply["code"] == code
    assert em.world.delete_log == []


def test_pipeline_transitions_and_slow_pause() -> None:
    clock = FakeClock()
    world = World(
        world_for([pipeline("p1", status="RUNNING", pauseDelay=30), pipeline("pub", status="PUBLISHED")]),
        clock=clock,
    )
    with (
        RunningEmulator(world) as em,
        EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c,
    ):
        c.pause(ORG, "p1")
        assert em.world.status("p1") == "RUNNING"  # slow pause: not yet
        c.pause(ORG, "p1")  # still pausing: accepted again
        clock.advance(30)
        assert c.pipeline_statuses([(ORG, "p1")])[(ORG, "p1")].status == "PAUSED"
        with pytest.raises(PermanentError, match="61152") as paused:
            c.pause(ORG, "p1")  # already PAUSED
        c.start(ORG, "p1", 0, 500)
        assert em.world.status("p1") == "RUNNING" and em.world.pipelines["p1"].kafka_rate == 500
        with pytest.raises(PermanentError, match="61165") as running:
            c.start(ORG, "p1", 0, 500)  # already RUNNING
        assert paused.value.definite and running.value.definite
        with pytest.raises(PermanentError, match="61152"):
            c.pause(ORG, "pub")
        c.call("POST", "/streaming/v2.0/streaming/pipeline/p1", {"action": "stop", "orgId": ORG})
        assert em.world.status("p1") == "STOPPED"
        with pytest.raises(PermanentError, match=r"61100|start"):
            c.call("POST", "/streaming/v2.0/streaming/pipeline/pub", {"action": "start", "orgId": ORG}, {})
        details = c.call("GET", "/streaming/v2.0/streaming/pipeline/p1", {"orgId": ORG})
        assert details["pipelineId"] == "p1" and "status" not in details


def test_get_shape_list_or_items(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()], getShape="list"))
    with EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c:
        raw = c.call(
            "POST",
            "/streaming/v2.0/stage-state",
            {"action": "get", "orgId": ORG},
            {"pipelineId": "p1", "stageInstanceName": "s1", "assetIds": "a", "pointIds": "x"},
        )
        assert isinstance(raw, list) and raw[0]["assetId"] == "a"
        assert len(c.get_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["x"]))) == 1


def test_seed_file_with_explicit_state(tmp_path: Path) -> None:
    seed = write(
        tmp_path / "world.yaml",
        """\
apps: [{appKey: k, appSecret: s}]
pipelines:
  - pipelineId: p9
    orgId: o9
    status: PAUSED
    stages: {s: RecordCapturer}
    state:
      - {stage: s, assets: [a, b], points: [x]}
""",
    )
    world = World.from_file(seed)
    assert world.pipelines["p9"].has_state("s", "a", "x") and not world.pipelines["p9"].has_state(
        "s", "c", "x"
    )
    world.pipelines["p9"].delete("s", ["a"], ["x"])
    assert not world.pipelines["p9"].has_state("s", "a", "x") and world.pipelines["p9"].has_state(
        "s", "b", "x"
    )


def test_emulator_command_refuses_bad_fault_kinds(tmp_path: Path) -> None:
    res = run_cli(["emulator", "--fault-kind", "meteor"], tmp_path)
    assert res.code == 1 and "unknown fault kinds" in res.err and "Traceback" not in res.all


def test_token_refresh_issues_a_new_token(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    old = token(em.url)["data"]["accessToken"]
    ts = int(time.time() * 1000) + 5
    enc = hashlib.sha256(f"{DEFAULT_APP_KEY}{ts}{DEFAULT_APP_SECRET}".encode()).hexdigest()
    reply = plain(
        "POST",
        f"{em.url}/apim-token-service/v2.0/token/refresh",
        json={"appKey": DEFAULT_APP_KEY, "timestamp": ts, "encryption": enc, "accessToken": old},
    ).json()
    assert reply["status"] == 0 and reply["data"]["accessToken"] != old
    assert em.world.check_token(old) == (None, "expired")


def test_the_emulator_imports_nothing_else_of_reconciler() -> None:
    import ast

    root = Path(__file__).resolve().parent.parent / "reconciler" / "emulator"
    for module in root.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("reconciler"):
                    assert name.startswith("reconciler.emulator"), f"{module.name} imports {name}"


# --- the clock, hooks and strict state files -----------------------------------------------


def client(em: Any, attempts: int = 1) -> EnosClient:
    creds = Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET)
    return EnosClient(Session(em.url, creds, retry=RetryPolicy(attempts=attempts), sleep=lambda s: None))


def test_tokens_expire_by_the_injected_clock() -> None:
    clock = FakeClock()
    world = World(world_for([pipeline()], tokenLifetime=100), clock=clock)
    with RunningEmulator(world) as em, client(em) as c:
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["x"]))
        clock.advance(100)
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["b"], ["x"]))
    assert [e["status"] for e in world.log] == [200, 401, 200] and c.token_fetches == 2


def test_lost_answers_act_then_drop_the_connection(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline(), pipeline("run", status="RUNNING")]))
    hook = em.world.lose_answers("delete", n=1)
    with client(em) as c:
        with pytest.raises(TransientError) as exc:
            c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["x"]))
        assert exc.value.definite is False  # it did take effect
        assert em.world.deleted_cells() == {(ORG, "p1", "s1", "a", "x")}
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["b"], ["x"]))  # n=1: the next one is answered
        em.world.lose_answers("operate:pause")
        with pytest.raises(TransientError):
            c.pause(ORG, "run")
    assert hook.fired == 1 and em.world.status("run") == "PAUSED"


def test_a_person_starts_the_pipeline_after_the_kth_delete(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    em.world.set_status_after("delete", 2, "p1", "RUNNING")
    with client(em) as c:
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a1"], ["x"]))
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a2"], ["x"]))
        with pytest.raises(NotPausedError):
            c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a3"], ["x"]))
    assert [e["code"] for e in em.world.log] == [0, 0, 61199]
    assert em.world.deletes_while_not_paused() == 1


@pytest.mark.parametrize("shape", EXPIRY_SHAPES)
def test_token_expired_in_each_shape_is_renewed(make_emulator: Any, shape: str) -> None:
    em = make_emulator(world_for([pipeline()]))
    with client(em) as c:
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["x"]))
        em.world.expire_token_at("delete", shape)
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["b"], ["x"]))
        assert c.token_fetches == 2
    assert em.world.token_calls == ["get", "get"]
    assert [e["status"] for e in em.world.log] == [200, 401 if shape == "http401" else 200, 200]


def test_sticky_tokens_make_the_client_call_refresh(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    em.world.sticky_tokens = True
    with client(em) as c:
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["x"]))
        em.world.expire_tokens()  # token/get keeps handing back this expired token
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["b"], ["x"]))
        assert c.token_refreshes == 1
    assert em.world.token_calls == ["get", "get", "refresh"]


def test_hold_and_wait_for_let_a_test_act_at_an_exact_request(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    hook = em.world.on_request("delete", skip=1, hold=True)
    done: list[int] = []

    def send() -> None:
        with client(em) as c, contextlib.suppress(NotPausedError):
            for i in range(3):
                c.delete_stage_state(StateRequest(ORG, "p1", "s1", [f"a{i}"], ["x"]))
                done.append(i)

    worker = threading.Thread(target=send)
    worker.start()
    held = em.world.wait_for(lambda e: e["route"] == "delete" and e["body"]["assetIds"] == "a1")
    assert held["status"] is None and done == [0]  # arrived, not answered
    em.world.set_status("p1", "RUNNING")  # a person starts it while the delete is in flight
    hook.release()
    worker.join(timeout=10)
    assert done == [0] and [e["code"] for e in em.world.log] == [0, 61199]


def test_wait_for_times_out() -> None:
    with pytest.raises(TimeoutError):
        World(world_for([pipeline()])).wait_for(lambda e: True, timeout=0.05)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pipelines: [{pipelinename: x}]",
            "state.yaml: pipelines[0]: unknown key 'pipelinename' (did you mean 'pipelineName'?)",
        ),
        ("pipeline: []", "state.yaml: unknown key 'pipeline' (did you mean 'pipelines'?)"),
        (
            "apps: [{appKey: k, appSecert: s}]",
            "state.yaml: apps[0]: unknown key 'appSecert' (did you mean 'appSecret'?)",
        ),
        (
            "pipelines: [{pipelineId: p, orgId: o, state: [{stage: s, asset: [a], points: [x]}]}]",
            "state.yaml: pipelines[0].state[0]: unknown key 'asset' (did you mean 'assets'?)",
        ),
        ("pipelines: [{orgId: o}]", "state.yaml: pipelines[0]: missing key 'pipelineId'"),
        (
            "pipelines: [{pipelineId: p, orgId: o, executionMode: x}]",
            "state.yaml: pipelines[0]: executionMode: wrong type str",
        ),
        ("pipelines: [{pipelineId: p, orgId: o, status: PAUSING}]", "unknown status 'PAUSING'"),
        ("pipelines: [", "state.yaml:2:1: not valid YAML"),
        ("- 1", "state.yaml: expected a mapping, got list"),
    ],
)
def test_state_files_are_checked_strictly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EmulatorError) as exc:
        World.from_file(write(tmp_path / "state.yaml", text + "\n"))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_malformed_json_and_missing_state_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match=r"^state.json:1:\d+: not valid JSON"):
        World.from_file(write(tmp_path / "state.json", "{"))
    with pytest.raises(EmulatorError, match="cannot read"):
        World.from_file(tmp_path / "nope.yaml")


def test_a_port_in_use_is_a_clear_error() -> None:
    with RunningEmulator(World()) as em, pytest.raises(EmulatorError) as exc:
        serve_forever(World(), "127.0.0.1", em.port)
    assert str(exc.value) == f"port {em.port} on 127.0.0.1 is in use; pass --port"
    assert isinstance(exc.value, ValueError)


def test_the_journal_counts_clears_per_cell_from_outside(tmp_path: Path) -> None:
    seed = {
        "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
        "pipelines": [
            {
                "pipelineId": "p1",
                "orgId": "o1",
                "status": "RUNNING",
                "executionMode": 1,
                "kafkaRate": 9,
                "stages": {"s1": "LastRecordAppender"},
                "fillState": True,
            }
        ],
    }
    world = World(seed)
    world.journal = tmp_path / "journal.jsonl"
    with (
        RunningEmulator(world) as em,
        EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET))) as c,
    ):
        c.pause("o1", "p1")
        c.delete_stage_state(StateRequest("o1", "p1", "s1", ["a1", "a2"], ["x"]))
        c.start("o1", "p1", 1, 9)
    events = [json.loads(line) for line in world.journal.read_text().splitlines()]
    assert [e["event"] for e in events] == ["pause", "delete", "start"]
    assert events[1]["assets"] == ["a1", "a2"] and events[1]["points"] == ["x"] and events[1]["stage"] == "s1"
