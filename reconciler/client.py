"""The EnOS client: the only module that speaks HTTP, knows EnOS codes and holds secrets.

Implements the DESIGN "EnOS contract decisions": token fetch with a fresh,
strictly increasing millisecond timestamp; `apim-*` signatures over the sorted
decoded query, the exact body bytes, the timestamp and the secret; the
`{code, msg, data}` envelope. Foreign (httpx) exceptions are translated here into
the project's tree (`TransientError`, `TooManyPointsError`, `PermanentError`,
`AuthError`), so nothing above this module sees an httpx type (STYLE). Keeps
invariant 8: the secret and tokens appear in no repr, log line or message.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from reconciler import __version__
from reconciler.errors import (
    AuthError,
    EnosError,
    PermanentError,
    ReconcilerError,
    TooManyPointsError,
    TransientError,
)

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
PIPELINE_PATH = "/streaming/v2.0/streaming/pipeline/{id}"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"

# What each documented code means, and what the user can do (REFERENCE sections 1-3).
CODE_MEANINGS: dict[int, str] = {
    61102: "a parameter is missing or malformed (61102); check the manifest's IDs",
    61105: "too many points in one request (61105)",
    61106: "wrong pipelineId, or the org has no privilege on it (61106); check spec.orgId "
    "and spec.pipelineId, and that the app is authorised for the pipeline",
    61107: "the stage type does not support state operations (61107); check spec.stageInstanceNames",
    61108: "the pipeline does not exist (61108); check spec.pipelineId",
    61152: "the pipeline cannot change to that status now (61152)",
    61165: "the pipeline cannot be started from its current status (61165)",
    61199: "the gateway reported an error (61199)",
    99000: "internal server error (99000)",
    1001: "a token request was replayed (1001)",
    1002: "the app key does not exist (1002); check ENOS_APP_KEY",
    1003: "the token signature is invalid (1003); check ENOS_APP_SECRET",
    1203: "the access token expired (1203)",
}
TRANSIENT_CODES = frozenset({61199, 99000, 1001, 1005})
AUTH_CODES = frozenset({1002, 1003, 1004, 1202, 1204})


@dataclass(frozen=True)
class Credentials:
    """An EnOS application's key and secret; the secret never shows in a repr."""

    app_key: str
    app_secret: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials:
        key, secret = os.environ.get("ENOS_APP_KEY"), os.environ.get("ENOS_APP_SECRET")
        if not key or not secret:
            raise ReconcilerError(
                "set ENOS_APP_KEY and ENOS_APP_SECRET (the EnOS application's AccessKey and "
                "SecretKey); credentials are never taken as flags"
            )
        return cls(key, secret)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; Retry-After honoured up to `cap`."""

    attempts: int = 6
    initial: float = 0.2
    cap: float = 10.0


@dataclass(frozen=True)
class Pipeline:
    org_id: str
    pipeline_id: str
    status: str
    name: str = ""
    execution_mode: int | None = None
    kafka_rate: int | None = None


def check_gateway(url: str) -> str:
    """HTTPS required; plain http only to loopback (DESIGN "CLI")."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReconcilerError(f"gateway {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ReconcilerError(
            f"refusing plain http:// to {parts.hostname}: use https:// (http is allowed only to loopback)"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sign(token: str, query: Mapping[str, str], body: bytes, timestamp: int, secret: str) -> str:
    """apim-signature: sha256(token + sorted k+v + body + timestamp + secret), lowercase hex."""
    params = "".join(f"{k}{query[k]}" for k in sorted(query))
    return hashlib.sha256(
        token.encode() + params.encode() + body + str(timestamp).encode() + secret.encode()
    ).hexdigest()


def encryption(app_key: str, timestamp: int, secret: str) -> str:
    return hashlib.sha256(f"{app_key}{timestamp}{secret}".encode()).hexdigest()


class EnosClient:
    """Synchronous, thread-safe client for the calls reconcile makes."""

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
        self.gateway = check_gateway(gateway)
        self._creds = credentials
        self._http = httpx.Client(
            base_url=self.gateway,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            verify=True,
            headers={"User-Agent": f"reconciler/{__version__}"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._on_retry = on_retry
        self._token_lock = threading.Lock()
        self._ts_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lifetime = 0.0
        self._last_ts = 0
        self.token_fetches = 0

    @classmethod
    def from_env(cls, gateway: str | None, **kwargs: Any) -> EnosClient:
        url = gateway or os.environ.get("ENOS_API_GATEWAY")
        if not url:
            raise ReconcilerError("no gateway: pass --gateway URL or set ENOS_API_GATEWAY")
        return cls(url, Credentials.from_env(), **kwargs)

    def __repr__(self) -> str:
        return f"EnosClient(gateway={self.gateway!r}, app_key={self._creds.app_key!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EnosClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- tokens -------------------------------------------------------------------

    def _timestamp(self) -> int:
        """Milliseconds, strictly increasing: the gateway refuses a reused encryption (1001)."""
        with self._ts_lock:
            ts = max(int(self._clock() * 1000), self._last_ts + 1)
            self._last_ts = ts
            return ts

    def token(self, *, stale: str | None = None) -> str:
        """A valid token; a new one when under min(10 min, half its life) is left.

        `stale` is a token the gateway refused: replaced unless another thread already did.
        """
        with self._token_lock:
            left = self._token_expires - self._clock()
            margin = min(600.0, self._token_lifetime / 2)
            if self._token is None or left < margin or (stale is not None and stale == self._token):
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        ts = self._timestamp()
        creds = self._creds
        body = {
            "appKey": creds.app_key,
            "encryption": encryption(creds.app_key, ts, creds.app_secret),
            "timestamp": ts,
        }
        response = self._send("POST", TOKEN_PATH, {}, json.dumps(body).encode(), {})
        payload = _json(response)
        status = payload.get("status", payload.get("stauts", payload.get("code")))
        if response.status_code >= 500 or status in TRANSIENT_CODES:
            raise TransientError(
                f"token service unavailable (HTTP {response.status_code}, status {status})", code=status
            )
        if response.status_code != 200 or status != 0:
            meaning = CODE_MEANINGS.get(status, "") if isinstance(status, int) else ""
            meaning = meaning or f"status {status}: {payload.get('msg', '')}"
            raise AuthError(f"cannot get an access token: {meaning}", code=status)
        data = payload.get("data") or {}
        token, expire = data.get("accessToken"), data.get("expire")
        if not isinstance(token, str) or not isinstance(expire, (int, float)):
            raise PermanentError("token service answered without accessToken/expire")
        self._token = token
        self._token_lifetime = float(expire)
        self._token_expires = self._clock() + float(expire)
        self.token_fetches += 1

    # --- one signed call ----------------------------------------------------------

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
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {path}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {path}: connection failed ({type(exc).__name__})") from None

    def _once(self, method: str, path: str, query: Mapping[str, str], body: Any, expect_true: bool) -> Any:
        """One call with auth handling: a refused token is replaced, at most twice in a row."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        refused: str | None = None
        for _ in range(3):
            token = self.token(stale=refused)
            ts = self._timestamp()
            headers = {
                "apim-accesstoken": token,
                "apim-timestamp": str(ts),
                "apim-signature": sign(token, query, raw, ts, self._creds.app_secret),
            }
            response = self._send(method, path, query, raw, headers)
            payload = _json(response) if response.content else {}
            if response.status_code == 401 or payload.get("code") == 1203:
                refused = token
                continue
            data = _unwrap(method, path, response, payload)
            if expect_true and data is not True:
                # Documented as "false = failed to delete data": worth another try.
                raise TransientError(f"{method} {path} answered data: {json.dumps(data)}", code=0)
            return data
        raise AuthError(
            f"{method} {path}: the gateway refused a fresh access token (HTTP 401); check that "
            "ENOS_APP_KEY/ENOS_APP_SECRET are right and the app is authorised for this API"
        )

    def call(
        self, method: str, path: str, query: Mapping[str, str], body: Any = None, *, expect_true: bool = False
    ) -> Any:
        """A call with retries for what may pass later (DESIGN "Apply" step 5)."""
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

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._once, method, path, query, body, expect_true)

    # --- the calls reconcile makes ------------------------------------------------

    def list_pipelines(self, org_id: str, page_no: int, page_size: int) -> tuple[int, list[Pipeline]]:
        query = {"orgId": org_id, "ifReleased": "true", "pageNo": str(page_no), "pageSize": str(page_size)}
        data = self.call("GET", PIPELINES_PATH, query)
        if not isinstance(data, dict):
            raise PermanentError("List Pipelines answered without data.pipelines")
        items = data.get("pipelines") or []
        return int(data.get("count") or 0), [_pipeline(org_id, p) for p in items if isinstance(p, dict)]

    def pipeline_statuses(
        self, wanted: Iterable[tuple[str, str]], page_size: int = 100
    ) -> dict[tuple[str, str], Pipeline]:
        """Each wanted (org, pipeline) found by paging List Pipelines (ifReleased=true)."""
        found: dict[tuple[str, str], Pipeline] = {}
        by_org: dict[str, set[str]] = {}
        for org, pid in wanted:
            by_org.setdefault(org, set()).add(pid)
        for org, pids in sorted(by_org.items()):
            page = 1
            while True:
                count, items = self.list_pipelines(org, page, page_size)
                for p in items:
                    if p.pipeline_id in pids:
                        found[(org, p.pipeline_id)] = p
                if pids <= {pid for (o, pid) in found if o == org}:
                    break
                if len(items) < page_size or page * page_size >= count:
                    break
                page += 1
        return found

    def pause(self, org_id: str, pipeline_id: str) -> None:
        self.call("POST", PIPELINE_PATH.format(id=pipeline_id), {"action": "pause", "orgId": org_id})

    def start(self, org_id: str, pipeline_id: str, execution_mode: int, kafka_rate: int) -> None:
        body = {"executionMode": execution_mode, "kafkaRate": kafka_rate}
        self.call("POST", PIPELINE_PATH.format(id=pipeline_id), {"action": "start", "orgId": org_id}, body)

    def delete_stage_state(
        self, org_id: str, pipeline_id: str, stage: str, assets: Sequence[str], points: Sequence[str]
    ) -> None:
        """Delete Stage State; success is code 0 with data true, and nothing else."""
        self.call(
            "POST",
            STAGE_STATE_PATH,
            {"action": "delete", "orgId": org_id},
            _state_body(pipeline_id, stage, assets, points),
            expect_true=True,
        )

    def get_stage_state(
        self, org_id: str, pipeline_id: str, stage: str, assets: Sequence[str], points: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Get Stage State items; `data` may be a list or `{items: [...]}` (REFERENCE 1.1)."""
        data = self.call(
            "POST",
            STAGE_STATE_PATH,
            {"action": "get", "orgId": org_id},
            _state_body(pipeline_id, stage, assets, points),
        )
        if isinstance(data, dict):
            data = data.get("items", [])
        if not isinstance(data, list):
            raise PermanentError("Get Stage State answered with neither a list nor {items: [...]}")
        return [item for item in data if isinstance(item, dict)]


def _state_body(pipeline_id: str, stage: str, assets: Sequence[str], points: Sequence[str]) -> dict[str, str]:
    return {
        "pipelineId": pipeline_id,
        "stageInstanceName": stage,
        "assetIds": ",".join(assets),
        "pointIds": ",".join(points),
    }


def _pipeline(org_id: str, p: Mapping[str, Any]) -> Pipeline:
    def as_int(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return Pipeline(
        org_id=str(p.get("orgId") or org_id),
        pipeline_id=str(p.get("pipelineId", "")),
        status=str(p.get("status", "UNKNOWN")),
        name=str(p.get("pipelineName", "")),
        execution_mode=as_int(p.get("executionMode")),
        kafka_rate=as_int(p.get("kafkaRate")),
    )


def _json(response: httpx.Response) -> dict[str, Any]:
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


def _unwrap(method: str, path: str, response: httpx.Response, payload: Mapping[str, Any]) -> Any:
    """The envelope's data, or the project's error for what went wrong."""
    where = f"{method} {path}"
    status = response.status_code
    if status == 429:
        raise TransientError(f"{where}: rate limited (HTTP 429)", retry_after=_retry_after(response))
    if status >= 500:
        raise TransientError(f"{where}: gateway error HTTP {status}", retry_after=_retry_after(response))
    if status == 413:
        raise PermanentError(f"{where}: request too large (HTTP 413); lower --max-points or --max-assets")
    if status == 403:
        raise AuthError(f"{where}: forbidden (HTTP 403): {payload.get('message', 'IP not allowed?')}")
    if status != 200:
        raise PermanentError(f"{where}: HTTP {status}: {payload.get('message') or payload.get('msg', '')}")
    code = payload.get("code")
    if code == 0:
        return payload.get("data")
    msg = str(payload.get("msg", "")).strip()
    meaning = CODE_MEANINGS.get(code, f"code {code}") if isinstance(code, int) else "no code"
    text = f"{where}: {meaning}" + (f": {msg}" if msg else "")
    error: type[EnosError]
    if code == 61105:
        error = TooManyPointsError
    elif code in TRANSIENT_CODES or code is None:
        error = TransientError
    elif code in AUTH_CODES:
        error = AuthError
    else:
        error = PermanentError
    raise error(text, code=code if isinstance(code, int) else None)
