"""The EnOS client: the only package that calls EnOS, knows its codes and holds its secrets.

`auth` owns credentials, hashes and the access token; `codes` every EnOS code
and what it becomes in the error tree; `session` the wire, error translation
and retries; `client` the endpoint calls. Keeps invariant 8: the secret and
tokens appear in no repr, log line or message.
"""

from __future__ import annotations

from reconciler.enos.auth import Credentials, TokenSource, credentials_from_env, encryption, sign
from reconciler.enos.client import (
    EnosClient,
    OffsetLag,
    Pipeline,
    PipelineDetails,
    StageRequest,
    StateRequest,
    check_gateway,
)
from reconciler.enos.session import RetryPolicy, Session

__all__ = [
    "Credentials",
    "EnosClient",
    "OffsetLag",
    "Pipeline",
    "PipelineDetails",
    "RetryPolicy",
    "Session",
    "StageRequest",
    "StateRequest",
    "TokenSource",
    "check_gateway",
    "credentials_from_env",
    "encryption",
    "sign",
]
