"""The wire: error translation with the right `definite`, expiry shapes, connection messages."""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
from helpers import manifest_yaml, run_cli_process, write
from helpers.emulators import running

from reconciler import tls
from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, World
from reconciler.enos import Credentials, EnosClient, RetryPolicy, Session, StateRequest, check_gateway
from reconciler.enos.codes import EXPIRED_CODES
from reconciler.errors import (
    AuthError,
    EnosError,
    NotPausedError,
    PermanentError,
    ReconcilerError,
    TooManyPointsError,
    TransientError,
)
from reconciler.tls import context as tls_context

CREDS = Credentials("key-1", "s3cr3t-value")
TOKEN = {"status": 0, "msg": "SUCCESS", "data": {"accessToken": "tok-1", "expire": 7200}}


def client_for(reply: Any, attempts: int = 1) -> tuple[EnosClient, list[httpx.Request]]:
    """A client whose business calls are answered by `reply(request)`; tokens t1, t2, ..."""
    seen: list[httpx.Request] = []
    fetched = iter(range(1, 100))

    def handler(request: httpx.Request) -> httpx.Response:
        if "/apim-token-service/" in request.url.path:
            data = {"accessToken": f"t{next(fetched)}", "expire": 7200}
            return httpx.Response(200, json={"status": 0, "msg": "SUCCESS", "data": data})
        seen.append(request)
        result = reply(request)
        return result if isinstance(result, httpx.Response) else httpx.Response(200, json=result)

    client = EnosClient(
        Session(
            "https://gw.example",
            CREDS,
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(attempts=attempts),
            sleep=lambda s: None,
        )
    )
    return client, seen


def delete(client: EnosClient) -> None:
    client.delete_stage_state(StateRequest("o1", "p1", "s1", ["a"], ["x"]))


def raised(reply: Any, attempts: int = 1) -> EnosError:
    client, _ = client_for(reply, attempts)
    with pytest.raises(EnosError) as exc:
        delete(client)
    return exc.value


def raise_(exc: Exception) -> Any:
    def reply(request: httpx.Request) -> Any:
        raise exc

    return reply


@pytest.mark.parametrize(
    ("reply", "kind", "definite"),
    [
        ({"code": 61102, "msg": "Missing param"}, PermanentError, True),
        ({"code": 61105, "msg": "Too many points"}, TooManyPointsError, True),
        ({"code": 61106, "msg": ""}, PermanentError, True),
        ({"code": 61107, "msg": ""}, PermanentError, True),
        ({"code": 61108, "msg": ""}, PermanentError, True),
        ({"code": 61152, "msg": ""}, PermanentError, True),
        ({"code": 61165, "msg": ""}, PermanentError, True),
        ({"code": 61199, "msg": "not paused"}, NotPausedError, False),
        ({"code": 99000, "msg": ""}, TransientError, False),
        ({"code": 1002, "msg": ""}, AuthError, True),
        ({"code": 70000, "msg": "undocumented"}, PermanentError, False),
        ({"code": 0, "msg": "OK", "data": False}, TransientError, False),
        (httpx.Response(400, json={"message": "Cannot process request body"}), PermanentError, True),
        (httpx.Response(403, json={"message": "Your IP address is not allowed"}), AuthError, True),
        (httpx.Response(413, json={"message": "Request size limit exceeded"}), PermanentError, True),
        (httpx.Response(408, json={"message": "timeout"}), TransientError, False),
        (httpx.Response(429, json={"message": "API rate limit exceeded"}), TransientError, False),
        (httpx.Response(500, json={"message": "An unexpected error occurred"}), TransientError, False),
        (httpx.Response(503, text="<html>down</html>"), TransientError, False),
        (httpx.Response(200, text="not json"), TransientError, False),
    ],
)
def test_each_answer_carries_the_right_definite(reply: Any, kind: type[EnosError], definite: bool) -> None:
    exc = raised(lambda request: reply)
    assert type(exc) is kind and exc.definite is definite


@pytest.mark.parametrize(
    ("error", "definite", "text"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            True,
            r"gw.example:443 \(connection refused\)",
        ),
        (httpx.ConnectTimeout("timed out"), True, r"gw.example:443 \(timed out connecting\)"),
        (httpx.PoolTimeout("pool"), True, "no free connection"),
        (
            httpx.ReadTimeout("timed out"),
            False,
            r"no answer from gw.example:443 within 30 s \(read timeout\)",
        ),
        (httpx.WriteError("broken pipe"), False, "failed while sending"),
        (httpx.RemoteProtocolError("Server disconnected"), False, "lost before the answer"),
        (httpx.ReadError("reset"), False, "lost before the answer"),
    ],
)
def test_transport_errors_say_what_happened_and_whether_it_may_have_acted(
    error: Exception, definite: bool, text: str
) -> None:
    exc = raised(raise_(error))
    assert isinstance(exc, TransientError) and exc.definite is definite
    assert exc.__cause__ is error  # re-raised `from exc`
    assert len(str(exc).splitlines()) == 1
    assert re.search(text, str(exc)), str(exc)


def chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


def test_dns_and_tls_failures_are_named() -> None:
    dns = chained(httpx.ConnectError("boom"), socket.gaierror(-2, "Name or service not known"))
    assert "(DNS lookup failed): is the host name" in str(raised(raise_(dns)))
    tls = chained(
        httpx.ConnectError("boom"), ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    )
    text = str(raised(raise_(tls)))
    assert "cannot connect to gw.example:443 (TLS handshake failed)" in text and "http://" in text
    cert = chained(httpx.ConnectError("boom"), ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert "TLS certificate not trusted" in str(raised(raise_(cert)))


def test_one_ambiguous_attempt_makes_the_final_error_not_definite() -> None:
    replies = iter([httpx.ReadTimeout("t"), httpx.ConnectError("[Errno 111] Connection refused")])

    def reply(request: httpx.Request) -> Any:
        raise next(replies)

    exc = raised(reply, attempts=2)
    assert "connection refused" in str(exc) and exc.definite is False  # the first may have acted


def test_61199_on_a_delete_sends_exactly_one_request() -> None:
    client, seen = client_for(lambda r: {"code": 61199, "msg": "pipeline is RUNNING"}, attempts=6)
    with pytest.raises(NotPausedError, match="RUNNING"):
        delete(client)
    assert len(seen) == 1


@pytest.mark.parametrize("field", ["code", "status", "apim_status"])
@pytest.mark.parametrize("code", sorted(EXPIRED_CODES))
def test_every_expiry_shape_renews_the_token_and_retries(field: str, code: int) -> None:
    def reply(request: httpx.Request) -> Any:
        if request.headers["apim-accesstoken"] == "t1":
            return {field: code, "msg": "access token expired"}
        return {"code": 0, "msg": "OK", "data": True}

    client, seen = client_for(reply)
    delete(client)
    assert [r.headers["apim-accesstoken"] for r in seen] == ["t1", "t2"]
    assert client.token_fetches == 2


def test_two_renewals_in_a_row_then_an_auth_error_that_says_what_to_check() -> None:
    client, seen = client_for(
        lambda r: httpx.Response(401, json={"message": "Invalid credentials"}), attempts=5
    )
    with pytest.raises(AuthError) as exc:
        delete(client)
    assert len(seen) == 3 and client.token_fetches == 3
    text = str(exc.value)
    assert "3 times in a row (HTTP 401)" in text and "AccessKey and SecretKey" in text
    assert exc.value.definite and "t1" not in text and "s3cr3t" not in text


def test_check_gateway_errors_are_one_line() -> None:
    for bad in ("http://[::1", "http://127.0.0.1:99999", "ftp://x", "nonsense"):
        with pytest.raises(ReconcilerError) as exc:
            check_gateway(bad)
        assert "\n" not in str(exc.value)
    assert check_gateway("http://[::1]:8910/") == "http://[::1]:8910"


# --- real sockets -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_names_host_and_port() -> None:
    port = free_port()
    client = EnosClient(Session(f"http://127.0.0.1:{port}", CREDS, retry=RetryPolicy(attempts=1)))
    with client, pytest.raises(TransientError) as exc:
        client.token()
    assert str(exc.value) == (
        f"cannot connect to 127.0.0.1:{port} (connection refused): is the gateway running and the URL right?"
    )
    assert exc.value.definite


def test_https_to_a_plain_http_gateway_says_tls() -> None:
    with running(World()) as em:
        url = em.url.replace("http://", "https://")
        with (
            EnosClient(Session(url, CREDS, retry=RetryPolicy(attempts=1))) as client,
            pytest.raises(TransientError) as exc,
        ):
            client.token()
    assert f"cannot connect to 127.0.0.1:{em.port} (TLS handshake failed)" in str(exc.value)
    assert exc.value.definite and em.world.token_calls == []


def test_sessions_share_one_verifying_tls_context_per_ca_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA bundle is loaded once per process, not per session, and is the one httpx
    would load: certifi's, or SSL_CERT_FILE's when set."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    shared = tls_context()
    assert shared is tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.get_ca_certs() == httpx.create_ssl_context().get_ca_certs() != []
    one_ca = tmp_path / "one.pem"
    bundle = Path(certifi.where()).read_text(encoding="ascii")
    one_ca.write_text(bundle[bundle.index("-----BEGIN") : bundle.index("-----END CERTIFICATE-----") + 25])
    monkeypatch.setenv("SSL_CERT_FILE", str(one_ca))
    own = tls_context()
    assert own is not shared and len(own.get_ca_certs()) == 1 and own.verify_mode == ssl.CERT_REQUIRED


def test_a_warmed_context_is_the_one_sessions_get_and_a_bad_ca_file_is_said_then_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply starts loading the CA bundle on a thread of its own (`tls.warm`); sessions made
    later get that context. A CA file that cannot be loaded is an error for whoever
    waits for it, and is tried again on the next call, not remembered."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bad))
    tls.warm()
    with pytest.raises(ssl.SSLError):
        tls_context()
    bundle = Path(certifi.where()).read_text(encoding="ascii")
    bad.write_text(bundle[bundle.index("-----BEGIN") : bundle.index("-----END CERTIFICATE-----") + 25])
    tls.warm()
    warmed = tls_context()
    assert len(warmed.get_ca_certs()) == 1 and warmed.verify_mode == ssl.CERT_REQUIRED
    assert tls_context() is warmed


def test_a_warm_that_gets_no_thread_leaves_the_load_to_the_first_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading early is a head start, never a failure: with no thread to be had, apply goes
    on and the first session loads the bundle itself."""
    one_ca = tmp_path / "one.pem"
    bundle = Path(certifi.where()).read_text(encoding="ascii")
    one_ca.write_text(bundle[bundle.index("-----BEGIN") : bundle.index("-----END CERTIFICATE-----") + 25])
    monkeypatch.setenv("SSL_CERT_FILE", str(one_ca))

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    tls.warm()
    monkeypatch.undo()
    monkeypatch.setenv("SSL_CERT_FILE", str(one_ca))
    assert len(tls_context().get_ca_certs()) == 1


def test_a_ca_file_that_never_loads_does_not_hold_a_refused_apply(tmp_path: Path) -> None:
    """apply begins loading the CA bundle once it has planned work (`tls.warm`). A run
    refused before it makes a gateway session (here: no gateway configured) ends, and says
    why, even though the load never does (a hung mount; here a FIFO no one writes): its exit
    waits `tls.EXIT_WAIT`, not for ever."""
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    write(tmp_path / "manifests/a.yaml", manifest_yaml("a"))
    write(tmp_path / "applied-ledger.jsonl", "")
    res = run_cli_process(["apply", "--auto-approve"], tmp_path, {"SSL_CERT_FILE": str(fifo)}, timeout=60)
    assert res.code == 1, res.all
    assert "Plan: " in res.out and "error: no gateway" in res.err


def test_live_61199_is_one_request_and_a_violation(make_emulator: Any) -> None:
    em = make_emulator(
        {
            "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
            "pipelines": [
                {"pipelineId": "p1", "orgId": "o1", "status": "RUNNING", "stages": {"s1": "RecordCapturer"}}
            ],
        }
    )
    c = EnosClient(Session(em.url, Credentials(DEFAULT_APP_KEY, DEFAULT_APP_SECRET), sleep=lambda s: None))
    with c, pytest.raises(NotPausedError) as exc:
        c.delete_stage_state(StateRequest("o1", "p1", "s1", ["a"], ["x"]))
    assert exc.value.definite is False
    assert [e["code"] for e in em.world.log if e["route"] == "delete"] == [61199]
    assert em.world.deletes_while_not_paused() == 1
