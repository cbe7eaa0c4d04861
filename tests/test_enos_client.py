"""The EnOS client: unit tests over MockTransport, then the real client against the emulator."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from helpers import ORG, pipeline, world_for

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FAULT_KINDS, Faults
from reconciler.enos import Credentials, EnosClient, RetryPolicy, Session, StateRequest, check_gateway, sign
from reconciler.errors import (
    AuthError,
    NotPausedError,
    PermanentError,
    ReconcilerError,
    TooManyPointsError,
    TransientError,
)

SECRET = "s3cr3t-value"
CREDS = Credentials("key-1", SECRET)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def envelope(data: Any = True, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def token_reply(token: str = "tok-1", expire: int = 7200) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": token, "expire": expire},
        },
    )


def mock_client(handler: Any, **kw: Any) -> tuple[EnosClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[no-any-return]

    client = EnosClient(
        Session(
            "https://gw.example",
            CREDS,
            transport=httpx.MockTransport(record),
            sleep=kw.pop("sleep", lambda s: None),
            **kw,
        )
    )
    return client, seen


def test_token_and_signature_are_exactly_as_documented() -> None:
    clock = Clock()

    def handler(req: httpx.Request) -> httpx.Response:
        return (
            token_reply() if req.url.path.endswith("token/get") else httpx.Response(200, json=envelope(True))
        )

    client, seen = mock_client(handler, clock=clock)
    client.delete_stage_state(StateRequest(ORG, "pipe", "stage", ["a1", "a2"], ["p1"]))
    token_req, delete_req = seen
    body = json.loads(token_req.content)
    ts = body["timestamp"]
    assert ts == int(clock.now * 1000)
    assert body["encryption"] == hashlib.sha256(f"key-1{ts}{SECRET}".encode()).hexdigest()
    assert delete_req.url.params["action"] == "delete" and delete_req.url.params["orgId"] == ORG
    assert json.loads(delete_req.content) == {
        "pipelineId": "pipe",
        "stageInstanceName": "stage",
        "assetIds": "a1,a2",
        "pointIds": "p1",
    }
    h = delete_req.headers
    expected = hashlib.sha256(
        ("tok-1" + f"actiondeleteorgId{ORG}").encode()
        + delete_req.content
        + h["apim-timestamp"].encode()
        + SECRET.encode()
    ).hexdigest()
    assert h["apim-accesstoken"] == "tok-1" and h["apim-signature"] == expected
    assert int(h["apim-timestamp"]) > ts  # strictly increasing timestamps


def test_sign_sorts_query_by_key_and_uses_decoded_values() -> None:
    a = sign("t", {"b": "2", "a": "x y"}, b"{}", 5, "s")
    assert a == hashlib.sha256(b"tax yb2{}5s").hexdigest()


def test_token_renewed_before_expiry_and_on_401() -> None:
    clock = Clock()
    tokens = iter(["t1", "t2", "t3", "t4"])
    state = {"reject": None}

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("token/get"):
            return token_reply(next(tokens), expire=1200)
        if req.headers["apim-accesstoken"] == state["reject"]:
            return httpx.Response(401, json={"message": "access token expired", "code": 1203})
        return httpx.Response(200, json=envelope(True))

    client, seen = mock_client(handler, clock=clock)
    client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    clock.now += 500  # 700 s left > min(600, 600): same token
    client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert client.token_fetches == 1
    clock.now += 200  # 500 s left < 600: renewed before use
    client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert client.token_fetches == 2
    state["reject"] = "t2"
    client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))  # 401 -> new token -> retried
    assert client.token_fetches == 3
    assert seen[-3].headers["apim-accesstoken"] == "t2"  # refused, then a token fetch
    assert seen[-1].headers["apim-accesstoken"] == "t3"


def test_a_401_that_survives_fresh_tokens_is_an_auth_error() -> None:
    fresh = iter(range(100))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("token/get"):
            return token_reply(f"t{next(fresh)}")
        return httpx.Response(401, json={"message": "Invalid authentication credentials"})

    client, seen = mock_client(handler)
    with pytest.raises(AuthError, match="refused a fresh access token"):
        client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert sum(1 for r in seen if not r.url.path.endswith("token/get")) == 3  # retried at most twice


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (61102, PermanentError, "parameter is missing or malformed"),
        (61105, TooManyPointsError, "too many points"),
        (61106, PermanentError, "wrong pipelineId"),
        (61107, PermanentError, "stage type"),
        (61108, PermanentError, "does not exist"),
        (61152, PermanentError, "cannot change"),
        (61165, PermanentError, "cannot be started"),
        (61199, NotPausedError, "gateway reported an error"),
        (1002, AuthError, "ENOS_APP_KEY"),
        (70000, PermanentError, "code 70000"),
    ],
)
def test_codes_map_to_the_error_tree(code: int, error: type[Exception], text: str) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("token/get"):
            return token_reply()
        return httpx.Response(200, json=envelope(None, code=code, msg="server says"))

    client, _ = mock_client(handler, retry=RetryPolicy(attempts=1))
    with pytest.raises(error, match=text) as exc:
        client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert "server says" in str(exc.value)


def test_retries_back_off_with_jitter_and_honour_retry_after() -> None:
    sleeps: list[float] = []
    replies = iter(
        [
            httpx.Response(503, json={"message": "Service unavailable"}),
            httpx.Response(429, json={"message": "API rate limit exceeded"}, headers={"Retry-After": "3"}),
            httpx.Response(200, json=envelope(False)),
            httpx.Response(200, json=envelope(None, code=99000)),
            httpx.Response(200, json=envelope(True)),
        ]
    )

    def handler(req: httpx.Request) -> httpx.Response:
        return token_reply() if req.url.path.endswith("token/get") else next(replies)

    client, _ = mock_client(handler, sleep=sleeps.append, retry=RetryPolicy(attempts=6, initial=0.5, cap=4))
    client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert len(sleeps) == 4
    assert sleeps[1] == 3.0  # Retry-After
    assert all(0 <= s <= 4 for s in sleeps)  # capped


def test_connection_errors_are_transient_and_give_up_after_the_budget() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("token/get"):
            return token_reply()
        raise httpx.ConnectError("refused", request=req)

    client, seen = mock_client(handler, retry=RetryPolicy(attempts=3))
    with pytest.raises(TransientError, match=r"cannot connect to gw.example:443 \(connection refused\)"):
        client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    assert len(seen) == 4  # one token + three attempts


def test_secrets_never_appear_in_repr_or_errors() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("token/get"):
            return token_reply("tok-SECRET-123")
        return httpx.Response(500, json={"message": "boom"})

    client, _ = mock_client(handler, retry=RetryPolicy(attempts=2))
    with pytest.raises(TransientError) as exc:
        client.delete_stage_state(StateRequest(ORG, "p", "s", ["a"], ["b"]))
    text = f"{exc.value!r} {exc.value} {client!r} {CREDS!r}"
    assert SECRET not in text and "tok-SECRET-123" not in text


def test_http_refused_except_to_loopback() -> None:
    assert check_gateway("http://127.0.0.1:8910/") == "http://127.0.0.1:8910"
    assert check_gateway("http://localhost:1") == "http://localhost:1"
    assert check_gateway("https://apim.example.com") == "https://apim.example.com"
    with pytest.raises(ReconcilerError, match="refusing plain http"):
        check_gateway("http://apim.example.com")
    with pytest.raises(ReconcilerError, match="not an http"):
        check_gateway("ftp://x")


# --- against the emulator over real loopback HTTP ---------------------------------------


def live(em: Any, secret: str = DEFAULT_APP_SECRET, **kw: Any) -> EnosClient:
    return EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, secret), sleep=lambda s: None, **kw))


def test_live_paging_finds_every_wanted_pipeline(make_emulator: Any) -> None:
    em = make_emulator(
        world_for([pipeline(f"p{i:02d}", status="RUNNING" if i % 2 else "PAUSED") for i in range(25)])
    )
    with live(em) as c:
        found = c.pipeline_statuses([(ORG, "p03"), (ORG, "p24"), (ORG, "nope")], page_size=10)
    assert {k[1]: p.status for k, p in found.items()} == {"p03": "RUNNING", "p24": "PAUSED"}
    pages = [e["query"]["pageNo"] for e in em.world.log if e["route"] == "list"]
    assert pages == ["1", "2", "3"]
    assert all(e["query"]["ifReleased"] == "true" for e in em.world.log)


def test_live_codes_from_the_emulator(make_emulator: Any) -> None:
    em = make_emulator(
        world_for(
            [
                pipeline("p1"),
                pipeline("run", status="RUNNING"),
                {**pipeline("gen"), "stages": {"w": "WindowAggregator"}},
            ],
            maxPoints=3,
        )
    )
    with live(em, retry=RetryPolicy(attempts=1)) as c:
        with pytest.raises(TooManyPointsError):
            c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["1", "2", "3", "4"]))
        with pytest.raises(PermanentError, match="61106"):
            c.delete_stage_state(StateRequest(ORG, "ghost", "s1", ["a"], ["1"]))
        with pytest.raises(PermanentError, match="61106"):
            c.delete_stage_state(StateRequest("other-org", "p1", "s1", ["a"], ["1"]))
        with pytest.raises(PermanentError, match="61107"):
            c.delete_stage_state(StateRequest(ORG, "gen", "w", ["a"], ["1"]))
        with pytest.raises(NotPausedError, match=r"61199.*RUNNING"):
            c.delete_stage_state(StateRequest(ORG, "run", "s1", ["a"], ["1"]))
        with pytest.raises(PermanentError, match="61152"):
            c.pause(ORG, "p1")
        with pytest.raises(PermanentError, match="61165"):
            c.start(ORG, "run", 1, 10)
        with pytest.raises(PermanentError, match="61108"):
            c.pause(ORG, "ghost")
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a", "b"], ["1"]))
        left = c.get_stage_state(StateRequest(ORG, "p1", "s1", ["a", "b", "c"], ["1"]))
        assert [(i["assetId"], i["pointId"]) for i in left] == [("c", "1")]


def test_live_wrong_secret_is_a_clear_auth_error(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    with live(em, secret="wrong") as c, pytest.raises(AuthError, match=r"1003.*ENOS_APP_SECRET"):
        c.pipeline_statuses([(ORG, "p1")])


def test_live_token_expiring_mid_run_is_renewed(make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    with live(em) as c:
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["a"], ["1"]))
        em.world.expire_tokens()
        c.delete_stage_state(StateRequest(ORG, "p1", "s1", ["b"], ["1"]))
        assert c.token_fetches == 2
    statuses = [e["status"] for e in em.world.log]
    assert statuses == [200, 401, 200]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_live_retries_through_each_fault_kind(make_emulator: Any, kind: str) -> None:
    em = make_emulator(world_for([pipeline()]), Faults(rate=0.5, kinds=(kind,), seed=1, extra_latency_ms=10))
    with live(em, retry=RetryPolicy(attempts=30)) as c:
        for i in range(6):
            for _ in range(30):  # 61199 is not retried by the client: the caller re-sends
                try:
                    c.delete_stage_state(StateRequest(ORG, "p1", "s1", [f"a{i}"], ["1"]))
                    break
                except NotPausedError:
                    assert kind == "61199" and em.world.status("p1") == "PAUSED"
    faults = [e["fault"] for e in em.world.log]
    assert kind in faults  # the fault really happened
    deleted = {cell[3] for cell in em.world.deleted_cells()}
    assert deleted == {f"a{i}" for i in range(6)}
