"""The emulated EnOS gateway's HTTP routes (starlette), in front of a `World`: the token
service, stage state, auth, faults and hooks here; the pipeline routes in `pipelines`.

Validation order and codes follow REFERENCE section 5; the envelope is
`{code, msg, requestId, data}`; gateway errors are Kong-style `{"message": ...}`.
A delete on a pipeline that is not PAUSED answers 61199 (DESIGN decision). The lying
faults (`kept`, `cleared_others`) answer a delete true and do something else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.emulator import items as state_items
from reconciler.emulator.hooks import Hook, expiry_reply
from reconciler.emulator.pipelines import list_pipelines, offset_lag, operate_pipeline, pipeline_details
from reconciler.emulator.replies import fail, gateway_error, ok
from reconciler.emulator.replies import json_body as _json_body
from reconciler.emulator.replies import try_json as _try_json
from reconciler.emulator.world import LIE_KINDS, World

Handler = Callable[[Request, World], Awaitable[Response]]
HOLD_TIMEOUT = 30.0  # a held request goes on by itself after this, so a test cannot hang


class DropConnection(Exception):
    """Raised after the response has started: the server closes the connection mid-answer."""


class DroppedResponse(Response):
    """Starts an answer and abandons it: the client sees the connection drop mid-response."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"code":', "more_body": True})
        raise DropConnection("connection dropped by fault injection")


# --- token service ----------------------------------------------------------------


async def token_get(request: Request, world: World) -> Response:
    return await _token(request, world, refresh=False)


async def token_refresh(request: Request, world: World) -> Response:
    """REFERENCE 3.3: the token/get body plus the `accessToken` to replace."""
    return await _token(request, world, refresh=True)


async def _token(request: Request, world: World, *, refresh: bool) -> Response:
    body = await _json_body(request)
    old = str(body.get("accessToken", "")) if refresh else None
    status, msg, data = world.issue_token(
        str(body.get("appKey", "")), body.get("timestamp"), str(body.get("encryption", "")), refresh=old
    )
    return JSONResponse({"status": status, "msg": msg, "business": "apim-token-service", "data": data})


# --- business routes ----------------------------------------------------------------


async def stage_state(request: Request, world: World) -> Response:
    q = request.query_params
    action = q.get("action")
    body = await _json_body(request)
    problem = _validate_state_request(q.get("orgId"), body, world, action)
    if problem is not None:
        return problem
    assets = body["assetIds"].split(",")
    points = body["pointIds"].split(",")
    stage = body["stageInstanceName"]
    with world.lock:
        p = world.pipelines[body["pipelineId"]]
        if action == "get":
            return _get_items(world, p, stage, assets, points)
        if action != "delete":
            return fail(61102, "Missing param action")
        status = p.current_status(world.now())
        if status != "PAUSED":
            world.violations.append(f"delete on {p.pipeline_id} while {status}")
            world.emit("delete-refused", pipelineId=p.pipeline_id, stage=stage, status=status)
            return fail(61199, f"pipeline {p.pipeline_id} is {status}; pause it before deleting state")
        lie = getattr(request.state, "lie", None)
        if lie == "kept":  # answers true, clears nothing
            world.emit("delete-kept", orgId=p.org_id, pipelineId=p.pipeline_id, stage=stage)
            return ok(True)
        p.delete(stage, assets, points)
        world.emit(
            "delete", orgId=p.org_id, pipelineId=p.pipeline_id, stage=stage, assets=assets, points=points
        )
        world.delete_log.append(
            {
                "orgId": p.org_id,
                "pipelineId": p.pipeline_id,
                "stage": stage,
                "assets": assets,
                "points": points,
                "status": status,
            }
        )
        if lie == "cleared_others":  # and every other cell of the stage with them
            p.wipe(stage)
            world.emit("stage-wiped", orgId=p.org_id, pipelineId=p.pipeline_id, stage=stage)
    return ok(True)


def _validate_state_request(
    org: str | None, body: dict[str, Any], world: World, action: str | None = None
) -> Response | None:
    """REFERENCE 5: missing (61102), too many (61105), pipeline (61106), stage type (61107)."""
    if not org:
        return fail(61102, "Missing param orgId")
    for name in ("pipelineId", "stageInstanceName", "assetIds", "pointIds"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return fail(61102, f"Missing param {name}")
    if world.too_many(body["assetIds"].count(",") + 1, body["pointIds"].count(",") + 1):
        return fail(61105, "Too many points")
    with world.lock:
        p = world.pipelines.get(body["pipelineId"])
        if p is None or p.org_id != org:
            return fail(61106, "Wrong pipelineId or OU has no privilege")
        if not state_items.supported(p.stages.get(body["stageInstanceName"]), action):
            return fail(61107, "Not supported Stage Type")
    return None


def _get_items(world: World, p: Any, stage: str, assets: list[str], points: list[str]) -> Response:
    """Items in the stage's operator type's shape (items.py); `{items}` or a list, per the seed."""
    kind = p.stages[stage]
    items = [
        state_items.item(kind, a, pt, p.seeded_for(stage, a, pt))
        for a in assets
        for pt in points
        if p.has_state(stage, a, pt)
    ]
    return ok({"items": items} if world.get_shape == "items" else items)


# --- auth, faults, logging ---------------------------------------------------------


def _signature_ok(request: Request, body: bytes, token: str, secret: str) -> bool:
    ts = request.headers.get("apim-timestamp", "")
    given = request.headers.get("apim-signature", "")
    params = "".join(f"{k}{v}" for k, v in sorted(request.query_params.items()))
    expected = hashlib.sha256(
        token.encode() + params.encode() + body + ts.encode() + secret.encode()
    ).hexdigest()
    return bool(ts) and given == expected


def _authenticate(request: Request, body: bytes, world: World) -> Response | None:
    token = request.headers.get("apim-accesstoken")
    auth = request.headers.get("authorization", "")
    if not token and auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    secret, why = world.check_token(token)
    if why == "expired":
        return gateway_error(401, "access token expired", code=1203)
    if secret is None:
        return gateway_error(401, "Invalid authentication credentials")
    if world.require_signature and not _signature_ok(request, body, str(token), secret):
        return gateway_error(401, "Invalid authentication credentials (bad apim-signature)")
    world.used(str(token))
    return None


def business(route: str, handler: Handler, world: World) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        entry: dict[str, Any] = {
            "route": route,
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "body": _try_json(body),
            "at": time.time(),
            "fault": None,
            "status": None,
            "code": None,
        }
        world.record(entry)  # on arrival, so that tests can wait for it
        if not world.streaming_api:  # EnOS 3.x: the gateway has no such route (Kong's answer)
            world.finish(entry, 404, None)
            return gateway_error(404, "no Route matched with those values")
        hooks = world.firing(entry)
        for hook in hooks:
            if hook.hold is not None:
                await asyncio.to_thread(hook.hold.wait, HOLD_TIMEOUT)
        response = await _answer(request, body, entry, hooks, handler, world)
        world.finish(entry, response.status_code, _code(response))
        if entry["fault"] in ("drop", "lost_answer") or any(h.lose_answer for h in hooks):
            return DroppedResponse()
        return response

    return endpoint


async def _answer(
    request: Request,
    body: bytes,
    entry: dict[str, Any],
    hooks: list[Hook[World]],
    handler: Handler,
    world: World,
) -> Response:
    """Latency, faults, auth, then the route itself with the hooks around it."""
    if world.faults.latency_ms:
        await asyncio.sleep(world.faults.latency_ms / 1000)
    expiry = next((h.expire_token for h in hooks if h.expire_token), None)
    if expiry is not None:
        world.expire_tokens()
        status, reply = expiry_reply(expiry)
        return JSONResponse(reply, status_code=status)
    fault = entry["fault"] = world.draw_fault(entry["route"])
    if fault == "token_expiry":
        # A token expires after it has served; a fresh one never does, so a client that
        # renews on 1203 is not refused forever by back-to-back draws.
        if world.token_uses(request.headers.get("apim-accesstoken")) > 0:
            world.expire_tokens()
        else:
            fault = entry["fault"] = None
    denied = _authenticate(request, body, world)
    if denied is not None:
        return denied
    for hook in hooks:
        if hook.before is not None:
            with world.lock:
                hook.before(world, entry)
    response = await _faulty(fault, handler, request, world)
    for hook in hooks:
        if hook.after is not None:
            with world.lock:
                hook.after(world, entry)
    return response


def _code(response: Response) -> Any:
    try:
        return json.loads(bytes(response.body)).get("code") if response.body else None
    except (ValueError, AttributeError):
        return None


async def _faulty(fault: str | None, handler: Handler, request: Request, world: World) -> Response:
    if fault == "latency":
        await asyncio.sleep(world.faults.extra_latency_ms / 1000)
    if fault in ("http500", "http503"):
        return gateway_error(
            int(fault[4:]), "An unexpected error occurred" if fault == "http500" else "Service unavailable"
        )
    if fault == "http429":
        limited = gateway_error(429, "API rate limit exceeded")
        limited.headers["Retry-After"] = f"{world.faults.retry_after:g}"
        return limited
    if fault == "61199":
        return fail(61199, "internal error, try again")
    if fault == "drop":
        return fail(0, "dropped")  # never sent: the connection is closed instead
    request.state.lie = fault if fault in LIE_KINDS else None  # the delete route acts on it
    response = await handler(request, world)
    if fault == "data_false" and json.loads(bytes(response.body)).get("code") == 0:
        return JSONResponse({"code": 0, "msg": " OK", "requestId": str(uuid.uuid4()), "data": False})
    return response


def create_app(world: World) -> Starlette:
    """The gateway as an ASGI app over `world`."""

    def plain(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, world)

        return endpoint

    routes = [
        Route("/apim-token-service/v2.0/token/get", plain(token_get), methods=["POST"]),
        Route("/apim-token-service/v2.0/token/refresh", plain(token_refresh), methods=["POST"]),
        Route(
            "/streaming/v2.0/streaming/pipelines", business("list", list_pipelines, world), methods=["GET"]
        ),
        Route(
            "/streaming/v2.0/streaming/pipeline/{pipeline_id}",
            business("details", pipeline_details, world),
            methods=["GET"],
        ),
        Route(
            "/streaming/v2.0/streaming/pipeline/{pipeline_id}",
            business("operate", operate_pipeline, world),
            methods=["POST"],
        ),
        Route(
            "/streaming/v2.0/streaming/pipeline/{pipeline_id}/offset-lag",
            business("offset-lag", offset_lag, world),
            methods=["GET"],
        ),
        Route("/streaming/v2.0/stage-state", business_stage(world), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def business_stage(world: World) -> Callable[[Request], Awaitable[Response]]:
    """Stage-state calls, logged as route 'delete' or 'get' by their action."""
    delete = business("delete", stage_state, world)
    get = business("get", stage_state, world)

    async def endpoint(request: Request) -> Response:
        return await (delete if request.query_params.get("action") == "delete" else get)(request)

    return endpoint
