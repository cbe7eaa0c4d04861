"""Credentials, the token-service hashes, request signatures and the access token.

Keeps the DESIGN "EnOS contract decisions" on tokens: `encryption` over a fresh,
strictly increasing millisecond timestamp; a new token when less than
min(10 minutes, half its lifetime) is left or when the gateway refused the
current one; fetches serialised, so that concurrent requests that meet an
expired token renew it once. Invariant 8: the secret and tokens appear in no
repr or message. Speaks no HTTP: the session hands it a `TokenPost`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import reconciler.enos.codes as codes
from reconciler.errors import AuthError, PermanentError, ReconcilerError, TransientError

TOKEN_GET_PATH = "/apim-token-service/v2.0/token/get"
TOKEN_REFRESH_PATH = "/apim-token-service/v2.0/token/refresh"

# POST a JSON body to a token-service path: (HTTP status, JSON object or {}).
TokenPost = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Credentials:
    """An EnOS application's key and secret; the secret never shows in a repr."""

    app_key: str
    app_secret: str = field(repr=False)


def credentials_from_env(
    key_var: str = "ENOS_APP_KEY",
    secret_var: str = "ENOS_APP_SECRET",
    environ: Mapping[str, str] = os.environ,
) -> Credentials:
    """Credentials from two environment variables; the error names them, never their values."""
    missing = [name for name in (key_var, secret_var) if not environ.get(name)]
    if missing:
        raise ReconcilerError(
            f"{' and '.join(missing)} not set: set {key_var} and {secret_var} to the EnOS "
            "application's AccessKey and SecretKey (credentials are never taken as flags)"
        )
    return Credentials(environ[key_var], environ[secret_var])


def encryption(app_key: str, timestamp: int, secret: str) -> str:
    """Token-service `encryption`: sha256(appKey + timestamp + appSecret), lowercase hex."""
    return hashlib.sha256(f"{app_key}{timestamp}{secret}".encode()).hexdigest()


def sign(token: str, query: Mapping[str, str], body: bytes, timestamp: int, secret: str) -> str:
    """apim-signature: sha256(token + sorted k+v + body + timestamp + secret), lowercase hex."""
    params = "".join(f"{k}{query[k]}" for k in sorted(query))
    return hashlib.sha256(
        token.encode() + params.encode() + body + str(timestamp).encode() + secret.encode()
    ).hexdigest()


class TokenSource:
    """The current access token, renewed once however many threads find it refused."""

    def __init__(
        self, credentials: Credentials, post: TokenPost, clock: Callable[[], float] = time.time
    ) -> None:
        self._creds = credentials
        self._post = post
        self._clock = clock
        self._lock = threading.Lock()
        self._ts_lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._lifetime = 0.0
        self._last_ts = 0
        self.fetches = 0  # token/get and token/refresh calls that gave a token
        self.refreshes = 0  # of which token/refresh

    def __repr__(self) -> str:
        return f"TokenSource(app_key={self._creds.app_key!r}, fetches={self.fetches})"

    @property
    def secret(self) -> str:
        return self._creds.app_secret

    @property
    def app_key(self) -> str:
        return self._creds.app_key

    def timestamp(self) -> int:
        """Milliseconds, strictly increasing: the gateway refuses a reused encryption (1001)."""
        with self._ts_lock:
            ts = max(int(self._clock() * 1000), self._last_ts + 1)
            self._last_ts = ts
            return ts

    def current(self) -> str:
        """A valid token; a new one when under min(10 min, half its life) is left."""
        with self._lock:
            left = self._expires - self._clock()
            if self._token is None or left < min(600.0, self._lifetime / 2):
                self._renew()
            assert self._token is not None
            return self._token

    def renew(self, refused: str) -> str:
        """Replace a token the gateway refused, unless another thread already did.

        Threads that meet the same refusal wait on the lock and then find the new token.
        """
        with self._lock:
            if self._token is None or self._token == refused:
                self._renew()
            assert self._token is not None
            return self._token

    def _renew(self) -> None:
        old = self._token
        token, expire = self._call(path=TOKEN_GET_PATH)
        if old is not None and token == old:
            # A repeat token/get before expiry hands back the same token (REFERENCE 3.2):
            # token/refresh replaces it (REFERENCE 3.3: the get body plus accessToken).
            token, expire = self._call(path=TOKEN_REFRESH_PATH, access_token=old)
            self.refreshes += 1
        self._token, self._lifetime = token, expire
        self._expires = self._clock() + expire
        self.fetches += 1

    def _call(self, *, path: str, access_token: str | None = None) -> tuple[str, float]:
        ts = self.timestamp()
        creds = self._creds
        body: dict[str, Any] = {
            "appKey": creds.app_key,
            "encryption": encryption(creds.app_key, ts, creds.app_secret),
            "timestamp": ts,
        }
        if access_token is not None:
            body["accessToken"] = access_token
        http_status, payload = self._post(path, body)
        return _token_from(path, http_status, payload)


def _token_from(path: str, http_status: int, payload: Mapping[str, Any]) -> tuple[str, float]:
    """The token service's `{status, msg, data: {accessToken, expire}}` (REFERENCE 3.2).

    Every error is definite: the business request it was for has not been sent.
    """
    status = payload.get("status", payload.get("stauts", payload.get("code")))
    where = "token/refresh" if path == TOKEN_REFRESH_PATH else "token/get"
    if http_status >= 500 or http_status in (408, 429) or status in codes.TRANSIENT_CODES:
        raise TransientError(
            f"{where}: token service unavailable (HTTP {http_status}, status {status})",
            code=status if isinstance(status, int) else None,
            definite=True,
        )
    if http_status != 200 or status != codes.OK:
        why = codes.meaning(status) if isinstance(status, int) else f"HTTP {http_status}"
        msg = str(payload.get("msg") or payload.get("message") or "").strip()
        raise AuthError(
            f"cannot get an access token ({where}): {why}" + (f": {msg}" if msg else ""),
            code=status if isinstance(status, int) else None,
        )
    data = payload.get("data") or {}
    token, expire = data.get("accessToken"), data.get("expire")
    if not isinstance(token, str) or not token or not isinstance(expire, (int, float)):
        raise PermanentError(f"{where} answered without accessToken/expire", definite=True)
    return token, float(expire)
