"""One signed EnOS call: the httpx client, error translation, token renewal and retries.

The transport is the seam (STYLE "httpx"): tests pass `httpx.MockTransport` or
reach the emulator over loopback. Every httpx exception is translated here into
the project's tree with the right `definite` (DESIGN "Applied ledger"): a
connection refused, a DNS or TLS failure, or a connect timeout never sent a byte
and is definite; a read timeout or a connection lost after sending may have
acted and is not. Retries (DESIGN "Apply" step 5) are capped exponential
backoff with full jitter, Retry-After honoured up to the cap.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

import reconciler.enos.codes as codes
from reconciler import __version__, tls
from reconciler.enos.auth import Credentials, TokenSource, sign
from reconciler.errors import AuthError, EnosError, NotPausedError, TransientError

MAX_RENEWALS = 2  # DESIGN: a new token at most twice in a row for one request


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; Retry-After honoured up to `cap`."""

    attempts: int = 6
    initial: float = 0.2
    cap: float = 10.0


class Session:
    """Signed calls to one gateway; thread-safe. Holds the secret, never shows it."""

    def __init__(
        self,
        gateway: str,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self._http = httpx.Client(
            base_url=gateway,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            verify=tls.context(),
            headers={"User-Agent": f"reconciler/{__version__}"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._on_retry = on_retry
        self.tokens = TokenSource(credentials, self._post_token, clock)

    def __repr__(self) -> str:
        return f"Session(gateway={self.gateway!r})"

    def close(self) -> None:
        self._http.close()

    # --- retries ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any = None,
        *,
        expect_true: bool = False,
        delete: bool = False,
        may_retry: Callable[[], bool] | None = None,
    ) -> Any:
        """A call with retries for what may pass later; the last error if none passed.

        The error is definite only if every attempt was: one ambiguous attempt (a timeout,
        a lost answer) may have acted, whatever the later attempts met. `may_retry` is asked
        before every retry (apply: is the pipeline still PAUSED?); False ends the retries
        with `NotPausedError`, so no request reaches a pipeline that started meanwhile.
        """
        ambiguous = False
        tries = 0
        last: list[EnosError] = []

        def attempt() -> Any:
            nonlocal ambiguous, tries
            tries += 1
            if tries > 1 and may_retry is not None and last and not may_retry():
                raise NotPausedError(
                    f"{last[-1]}; not retried: the pipeline is no longer PAUSED", definite=False
                ) from last[-1]
            try:
                return self._once(method, path, query, body, expect_true=expect_true, delete=delete)
            except EnosError as exc:
                if not exc.definite:
                    ambiguous = True
                elif ambiguous:
                    exc.definite = False
                last.append(exc)
                raise

        return self._retrying()(attempt)

    def retrying(self, fn: Callable[[], Any]) -> Any:
        """`fn` with this session's retry policy (used for the pre-flight token)."""
        return self._retrying()(fn)

    def _retrying(self) -> Retrying:
        policy = self._retry
        backoff = wait_random_exponential(multiplier=policy.initial, max=policy.cap)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TransientError) and exc.retry_after is not None:
                return min(exc.retry_after, policy.cap)
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            if self._on_retry and state.outcome:
                self._on_retry(f"retrying: {state.outcome.exception()}")

        return Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    # --- one attempt, with token renewal ----------------------------------------------

    def _once(
        self, method: str, path: str, query: Mapping[str, str], body: Any, *, expect_true: bool, delete: bool
    ) -> Any:
        """One attempt: a token refused as expired is renewed at most twice in a row."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        where = f"{method} {path}"
        token = self.tokens.current()
        for renewals in range(MAX_RENEWALS + 1):
            ts = self.tokens.timestamp()
            headers = {
                "apim-accesstoken": token,
                "apim-timestamp": str(ts),
                "apim-signature": sign(token, query, raw, ts, self.tokens.secret),
            }
            response = self._send(method, path, query, raw, headers)
            payload = _json(response)
            if not codes.is_expiry(response.status_code, payload):
                data = _unwrap(where, response, payload, delete=delete)
                if expect_true and data is not True:
                    # Documented as "false = failed to delete data": it may have half-acted.
                    raise TransientError(f"{where} answered data: {json.dumps(data)}", code=0, definite=False)
                return data
            if renewals < MAX_RENEWALS:
                token = self.tokens.renew(token)
        raise AuthError(
            f"{where}: the gateway refused a fresh access token {MAX_RENEWALS + 1} times in a row "
            f"({_refusal(response, payload)}); check the application's AccessKey and SecretKey, "
            "that the app is authorised for this API and org, and that this machine's clock is right"
        )

    # --- the wire ---------------------------------------------------------------------

    def _post_token(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            response = self._send("POST", path, {}, json.dumps(body).encode(), {})
        except EnosError as exc:
            # The business request this token is for has not been sent.
            exc.definite = True
            raise
        return response.status_code, _json(response)

    def _send(
        self, method: str, path: str, query: Mapping[str, str], body: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        try:
            return self._http.request(
                method,
                path,
                params=dict(query),
                content=body if method != "GET" else None,
                headers={"Content-Type": "application/json;charset=UTF-8", **headers},
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, f"{method} {path}", self._http.base_url, self._timeout) from exc


def transport_error(exc: httpx.TransportError, where: str, url: httpx.URL, timeout: float) -> TransientError:
    """A connection problem as a one-line error naming host:port and what happened."""
    target = _host_port(url)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        why, hint = _connect_failure(exc, url)
        return TransientError(f"cannot connect to {target} ({why}): {hint}", definite=True)
    if isinstance(exc, httpx.PoolTimeout):
        return TransientError(f"{where}: no free connection to {target} in time", definite=True)
    if isinstance(exc, httpx.ReadTimeout):
        why = f"no answer from {target} within {timeout:g} s (read timeout)"
    elif isinstance(exc, (httpx.WriteTimeout, httpx.WriteError)):
        why = f"the connection to {target} failed while sending ({type(exc).__name__})"
    elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        why = f"the connection to {target} was lost before the answer ({type(exc).__name__})"
    else:
        why = f"connection to {target} failed ({type(exc).__name__}: {exc})"
    return TransientError(f"{where}: {why}; the request may have taken effect", definite=False)


def _connect_failure(exc: httpx.TransportError, url: httpx.URL) -> tuple[str, str]:
    """(what happened, what to check) for a connection that never carried the request."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting", "is the gateway reachable from here (firewall, VPN, proxy)?"
    causes = _causes(exc)
    text = " ".join(str(c) for c in causes).lower()
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return "TLS certificate not trusted", "is the host name right, and its certificate valid?"
    if any(isinstance(c, ssl.SSLError) for c in causes) or "ssl" in text or "tls" in text:
        if url.scheme == "https":
            return "TLS handshake failed", "does the server speak https? For a plain-http gateway use http://"
        return "TLS failure", "check the gateway URL's scheme"
    if any(isinstance(c, socket.gaierror) for c in causes) or _dns_words(text):
        return "DNS lookup failed", "is the host name in the gateway URL right?"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return "connection refused", "is the gateway running and the URL right?"
    return f"connection failed: {exc}", "is the gateway running and the URL right?"


def _dns_words(text: str) -> bool:
    return any(
        w in text
        for w in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution")
    )


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _host_port(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{host}:{port}"


def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _refusal(response: httpx.Response, payload: Mapping[str, Any]) -> str:
    """How the token was refused, without echoing anything the gateway sent back."""
    for name in codes.EXPIRY_FIELDS:
        if payload.get(name) in codes.EXPIRED_CODES:
            return f"{name} {payload[name]}"
    return f"HTTP {response.status_code}"


def _unwrap(where: str, response: httpx.Response, payload: Mapping[str, Any], *, delete: bool) -> Any:
    """The envelope's data, or the project's error for what went wrong."""
    status = response.status_code
    if status != 200:
        message = str(payload.get("message") or payload.get("msg") or "").strip()
        text = f"{where}: {codes.http_hint(status)}" + (f": {message}" if message else "")
        path = where.partition(" ")[2]
        raise codes.error_for_http(status, text, retry_after=_retry_after(response), path=path)
    raw_code = payload.get("code")
    if raw_code == codes.OK:
        return payload.get("data")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    msg = str(payload.get("msg", "")).strip()
    text = f"{where}: {codes.meaning(code)}" + (f": {msg}" if msg else "")
    raise codes.error_for_code(code, text, delete=delete)
