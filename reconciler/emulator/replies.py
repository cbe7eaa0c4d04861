"""The gateway's replies: the business envelope, Kong-style gateway errors, JSON bodies.

The envelope is `{code, msg, requestId, data}` (REFERENCE section 0); gateway errors are
`{"message": ...}` with an HTTP status (REFERENCE 3.5).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


def ok(data: Any, msg: str = "OK") -> JSONResponse:
    return JSONResponse({"code": 0, "msg": msg, "requestId": str(uuid.uuid4()), "data": data})


def fail(code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "requestId": str(uuid.uuid4()), "data": None})


def gateway_error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    data = try_json(await request.body())
    return data if isinstance(data, dict) else {}


def try_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
