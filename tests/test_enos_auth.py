"""Credentials, hashes and the token source: renewal once under concurrency, refresh, no leaks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers.emulators import running

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeClock, World
from reconciler.enos import (
    Credentials,
    EnosClient,
    RetryPolicy,
    Session,
    StateRequest,
    TokenSource,
    credentials_from_env,
)
from reconciler.enos.auth import TOKEN_GET_PATH, TOKEN_REFRESH_PATH
from reconciler.errors import AuthError, ReconcilerError, TransientError

CREDS = Credentials("key-1", "s3cr3t-value")


def test_credentials_from_env_names_the_variables_never_the_values() -> None:
    env = {"ORG_A_KEY": "k", "ORG_A_SECRET": "s3cr3t-value"}
    creds = credentials_from_env("ORG_A_KEY", "ORG_A_SECRET", env)
    assert creds == Credentials("k", "s3cr3t-value") and "s3cr3t" not in repr(creds)
    with pytest.raises(ReconcilerError, match=r"ORG_A_SECRET not set: set ORG_A_KEY and ORG_A_SECRET") as exc:
        credentials_from_env("ORG_A_KEY", "ORG_A_SECRET", {"ORG_A_KEY": "visible-key"})
    assert "visible-key" not in str(exc.value)
    with pytest.raises(ReconcilerError, match="ENOS_APP_KEY and ENOS_APP_SECRET not set"):
        credentials_from_env(environ={})


class FakeTokenService:
    """token/get hands back the current token until refreshed or told to issue a new one."""

    def __init__(self, same_until_refresh: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.n = 0
        self.same = same_until_refresh

    def __call__(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((path, body))
        if (path == TOKEN_GET_PATH and not (self.same and self.n)) or path == TOKEN_REFRESH_PATH:
            self.n += 1
        return 200, {"status": 0, "msg": "SUCCESS", "data": {"accessToken": f"t{self.n}", "expire": 1200}}


def test_renewal_before_expiry_uses_refresh_when_get_hands_back_the_same_token() -> None:
    clock = FakeClock(0)
    service = FakeTokenService(same_until_refresh=True)
    tokens = TokenSource(CREDS, service, clock)
    assert tokens.current() == "t1"
    clock.advance(500)  # 700 s left > min(600, 1200/2): kept
    assert tokens.current() == "t1" and len(service.calls) == 1
    clock.advance(200)  # 500 s left: renewed; get gives t1 again, so refresh
    assert tokens.current() == "t2"
    paths = [p for p, _ in service.calls]
    assert paths == [TOKEN_GET_PATH, TOKEN_GET_PATH, TOKEN_REFRESH_PATH]
    refresh_body = service.calls[-1][1]
    assert set(refresh_body) == {"appKey", "encryption", "timestamp", "accessToken"}
    assert refresh_body["accessToken"] == "t1"
    stamps = [b["timestamp"] for _, b in service.calls]
    assert stamps == sorted(set(stamps))  # strictly increasing
    assert tokens.fetches == 2 and tokens.refreshes == 1


def test_a_refused_token_is_replaced_only_if_still_current() -> None:
    service = FakeTokenService()
    tokens = TokenSource(CREDS, service, FakeClock(0))
    assert tokens.current() == "t1"
    assert tokens.renew("t1") == "t2"
    assert tokens.renew("t1") == "t2"  # another thread already replaced it
    assert len(service.calls) == 2


def test_token_service_errors_are_definite_and_quiet() -> None:
    def down(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 503, {"message": "Service unavailable"}

    def wrong(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"status": 1003, "msg": "encryption invalid"}

    with pytest.raises(TransientError) as transient:
        TokenSource(CREDS, down).current()
    assert transient.value.definite  # the business request was never sent
    with pytest.raises(AuthError, match=r"1003.*ENOS_APP_SECRET") as auth:
        TokenSource(CREDS, wrong).current()
    assert auth.value.definite and "s3cr3t" not in repr(TokenSource(CREDS, wrong))


def test_64_threads_meeting_an_expired_token_renew_it_once() -> None:
    clock = FakeClock()
    world = World(
        {
            "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
            "pipelines": [
                {
                    "pipelineId": "p1",
                    "orgId": "o1",
                    "status": "PAUSED",
                    "stages": {"s1": "LastRecordAppender"},
                    "fillState": True,
                }
            ],
        },
        clock=clock,
    )
    with (
        running(world) as em,
        EnosClient(
            Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), retry=RetryPolicy(attempts=1))
        ) as client,
    ):
        client.token()
        clock.advance(7300)  # the gateway's token expired; the client's clock does not know
        barrier = threading.Barrier(64)
        errors: list[BaseException] = []

        def one(i: int) -> None:
            barrier.wait()
            try:
                client.delete_stage_state(StateRequest("o1", "p1", "s1", [f"a{i}"], ["x"]))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert client.token_fetches == 2  # the first token, and exactly one renewal
    assert world.token_calls == ["get", "get"]
    assert len(world.delete_log) == 64
