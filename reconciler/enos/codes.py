"""Every EnOS answer the client understands, what it means, and what it becomes.

The one module that owns EnOS codes (REFERENCE sections 1-3) and the
classification of answers into the project's error tree. `definite` on each
error says whether the gateway certainly did not act (DESIGN "Applied ledger":
a `failed` record) or may have (the request stays in doubt).
"""

from __future__ import annotations

from reconciler.errors import (
    ApiNotAvailable,
    AuthError,
    EnosError,
    NotPausedError,
    OrgBusyError,
    PermanentError,
    TooManyPointsError,
    TransientError,
)

OK = 0
NOT_PAUSED = 61199
TOO_MANY_POINTS = 61105
ORG_BUSY = 61121
STREAMING_PREFIX = "/streaming/"
# The EnOS releases whose Stream Processing API has the calls reconcile makes (REFERENCE,
# "Main sources" and section 8: documented 2.1.0 to 2.4.4, removed from 3.0.0 on).
SUPPORTED_ENOS = "EnOS 2.1 to 2.4 (Stream Processing API 2.1.0 to 2.4.4)"

# What each documented code means, and what the user can do (REFERENCE sections 1-3).
CODE_MEANINGS: dict[int, str] = {
    61100: "the pipeline configuration or start parameters are invalid (61100)",
    61102: "a parameter is missing or malformed (61102); check the manifest's IDs",
    61105: "too many points in one request (61105)",
    61106: "wrong pipelineId, or the org has no privilege on it (61106); check spec.orgId "
    "and spec.pipelineId, and that the app is authorised for the pipeline",
    61107: "the stage type does not support state operations (61107); check spec.stageInstanceNames",
    61108: "the pipeline does not exist (61108); check spec.pipelineId",
    61152: "the pipeline cannot change to that status now (61152)",
    61121: "another user in the organization is starting a stream processing job (61121): "
    "EnOS starts one job at a time per organization; try again later",
    61128: "the organization has no stream-processing resource of the kind this pipeline needs "
    "(61128): an EnOS administrator must request or assign that resource (standalone or cluster, "
    "as the pipeline's executionMode) to the organization, or set the pipeline's resourceConfig "
    "under `pipelines` in reconcile.yaml",
    61165: "the pipeline cannot be started from its current status (61165)",
    61199: "the gateway reported an error (61199)",
    99000: "internal server error (99000)",
    1001: "a token request was replayed (1001)",
    1002: "the app key does not exist (1002); check the app key variable (ENOS_APP_KEY)",
    1003: "the token signature is invalid (1003); check the app secret variable (ENOS_APP_SECRET)",
    1004: "the token request has an invalid parameter (1004)",
    1005: "the token service had an internal error (1005)",
    1202: "a token request parameter is empty (1202)",
    1203: "the access token expired (1203)",
    1204: "the token refresh failed (1204)",
    4011: "the access token expired (4011)",
    4012: "the access and refresh tokens expired (4012)",
}

# Business refusals: the gateway validated the request and did nothing (REFERENCE 1.1, 2.3).
REFUSAL_CODES = frozenset({61100, 61102, 61105, 61106, 61107, 61108, 61128, 61152, 61165})
# May pass on a later try; the request may or may not have been acted on.
TRANSIENT_CODES = frozenset({99000, 1001, 1005})
# Wrong credentials: a new token will not help.
AUTH_CODES = frozenset({1002, 1003, 1004, 1202, 1204})
# The token was refused as expired, in any of the shapes a reply can carry it: `code`
# 1203 (REFERENCE 3.5), or the SDK's `apim_status` 4011/4012 (REFERENCE 4.2).
EXPIRED_CODES = frozenset({1203, 4011, 4012})
EXPIRY_FIELDS = ("code", "status", "apim_status")


def meaning(code: int | None) -> str:
    if code is None:
        return "no code"
    return CODE_MEANINGS.get(code, f"code {code}")


def is_expiry(http_status: int, payload: dict[str, object]) -> bool:
    """HTTP 401, or an expiry code in `code`, `status` or `apim_status` of any reply."""
    return http_status == 401 or any(payload.get(f) in EXPIRED_CODES for f in EXPIRY_FIELDS)


def error_for_code(code: int | None, text: str, *, delete: bool = False) -> EnosError:
    """The error for a non-zero business `code` (HTTP 200).

    61199 on a delete is `NotPausedError`: never retried here; apply re-reads the pipeline's
    status (DESIGN "Apply" step 5). Elsewhere it is the docs' "any other error": transient.
    A code nobody documented may have been acted on, so it is not definite.
    """
    if code == TOO_MANY_POINTS:
        return TooManyPointsError(text, code=code)
    if code == ORG_BUSY:
        return OrgBusyError(text, code=code)
    if code == NOT_PAUSED and delete:
        return NotPausedError(text, code=code, definite=False)
    if code is None or code == NOT_PAUSED or code in TRANSIENT_CODES:
        return TransientError(text, code=code, definite=False)
    if code in AUTH_CODES or code in EXPIRED_CODES:
        return AuthError(text, code=code)
    return PermanentError(text, code=code, definite=code in REFUSAL_CODES)


def error_for_http(status: int, text: str, *, retry_after: float | None = None, path: str = "") -> EnosError:
    """The error for a gateway answer that is not HTTP 200 (Kong-style, REFERENCE 3.5).

    4xx other than 408 and 429 are definite refusals; 408, 429 and 5xx may have acted.
    A 404 on a streaming route means the gateway has no Stream Processing API (EnOS 3.x).
    """
    if status == 404 and path.startswith(STREAMING_PREFIX):
        return ApiNotAvailable(not_available(text))
    if status in (408, 429) or status >= 500:
        return TransientError(text, retry_after=retry_after, definite=False)
    if status in (401, 403):
        return AuthError(text)
    if 400 <= status < 500:
        return PermanentError(text, definite=True)
    # 1xx/3xx: nothing we asked for; whether it acted is unknown.
    return PermanentError(text, definite=False)


def not_available(text: str) -> str:
    """What a 404 on a streaming route means, and what to check (REFERENCE section 8)."""
    return (
        f"{text}: the Stream Processing API is not available on this EnOS gateway. EnOS 3.0 "
        "lists the Stream Processing Service as deprecated or removed (3.0.0 release notes); "
        f"reconcile supports {SUPPORTED_ENOS}. Check that the gateway URL is the API gateway "
        "(apim-...) of an EnOS 2.x environment, or ask the EnOS administrator which release "
        "it runs"
    )


def http_hint(status: int) -> str:
    hints = {
        403: "forbidden (HTTP 403): is this machine's IP address allowed by the gateway?",
        408: "the gateway timed out reading the request (HTTP 408)",
        413: "request too large (HTTP 413); send fewer points or assets per request",
        429: "rate limited (HTTP 429)",
    }
    if status in hints:
        return hints[status]
    return f"gateway error HTTP {status}" if status >= 500 else f"HTTP {status}"
