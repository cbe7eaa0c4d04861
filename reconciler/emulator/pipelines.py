"""The emulated pipeline routes: List Pipelines, Get Pipeline Details, Operate Pipeline
and Get Pipeline Offset and Lag (REFERENCE 2.1-2.4 and section 8).

Start follows the documented order of refusals: a bad body (61100), a status that
cannot start (61165), an org without processing resource (61128), another start in the
org still in progress (61121). An unknown pipeline on these routes is 61108.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reconciler.emulator.replies import fail, json_body, ok
from reconciler.emulator.world import World


async def list_pipelines(request: Request, world: World) -> Response:
    q = request.query_params
    org = q.get("orgId")
    if not org:
        return fail(61102, "Missing param orgId")
    released = q.get("ifReleased", "false").lower() == "true"
    try:
        page_no, page_size = int(q.get("pageNo", "1")), int(q.get("pageSize", "10"))
    except ValueError:
        return fail(61102, "pageNo and pageSize must be integers")
    now = world.now()
    with world.lock:
        items = [
            _pipeline_json(p, now)
            for p in world.pipelines.values()
            if p.org_id == org and p.released == released
        ]
    start = max(page_no - 1, 0) * page_size
    return ok({"count": len(items), "pipelines": items[start : start + page_size]})


async def pipeline_details(request: Request, world: World) -> Response:
    pid = request.path_params["pipeline_id"]
    org = request.query_params.get("orgId")
    with world.lock:
        p = world.pipelines.get(pid)
        if p is None or p.org_id != org:
            return fail(61108, "Pipeline does not exit")
        return ok(
            {
                "pipelineId": p.pipeline_id,
                "pipelineName": p.name,
                "desc": "",
                "version": 1,
                "templateType": 1,
                "templateName": "native",
                "messageChannel": 0,
                "pipelineJson": _pipeline_config(p),
            }
        )


async def operate_pipeline(request: Request, world: World) -> Response:
    pid = request.path_params["pipeline_id"]
    q = request.query_params
    action, org = q.get("action"), q.get("orgId")
    body = await json_body(request)
    now = world.now()
    with world.lock:
        p = world.pipelines.get(pid)
        if p is None or p.org_id != org:
            return fail(61108, "Pipeline does not exit")
        status = p.current_status(now)
        if action == "pause":
            if p.pausing_since is not None:
                return ok("")
            if status != "RUNNING":
                return fail(61152, f"status cannot be changed from [{status}] to Paused")
            if p.pause_delay > 0:
                p.pausing_since = now
            else:
                p.status = "PAUSED"
            world.emit("pause", pipelineId=pid)
            return ok("")
        if action == "start":
            return _start(world, p, status, body)
        if action == "stop":
            if status not in ("RUNNING", "PAUSED"):
                return fail(61152, f"status cannot be changed from [{status}] to Stopped")
            p.status, p.pausing_since = "STOPPED", None
            p.cells.clear()
            return ok("")
        return fail(61102, f"Missing param action (save/release are not emulated): {action!r}")


def _start(world: World, p: Any, status: str, body: dict[str, Any]) -> Response:
    """Start (resume): body checked (61100), status (61165), then the org's resource (61128)
    and whether another start in the org is in progress (61121), REFERENCE 2.3 and 8."""
    mode, rate = body.get("executionMode"), body.get("kafkaRate")
    if not isinstance(mode, int) or not isinstance(rate, int) or mode not in (0, 1):
        return fail(61100, "executionMode (0 or 1) and kafkaRate (integer) are required")
    resource = body.get("resourceConfig")
    if resource is not None and not isinstance(resource, (int, float, dict)):
        return fail(61100, "resourceConfig must be a CU count or a JSON object")
    if status == "RUNNING" or p.pausing_since is not None:
        return fail(61165, f"job with status [{status}] cannot be started")
    refusal = world.start_refusal(p.org_id)
    if refusal is not None:
        world.emit("start-refused", pipelineId=p.pipeline_id, code=refusal[0])
        return fail(*refusal)
    p.status, p.execution_mode, p.kafka_rate = "RUNNING", mode, rate
    world.emit("start", pipelineId=p.pipeline_id, executionMode=mode, kafkaRate=rate, resourceConfig=resource)
    return ok("")


async def offset_lag(request: Request, world: World) -> Response:
    """Get Pipeline Offset and Lag (REFERENCE section 8): only while RUNNING."""
    pid = request.path_params["pipeline_id"]
    with world.lock:
        p = world.pipelines.get(pid)
        if p is None or p.org_id != request.query_params.get("orgId"):
            return fail(61108, "Pipeline does not exit")
        status = p.current_status(world.now())
        if status != "RUNNING":
            return fail(61199, f"pipeline {pid} is {status}; offset and lag are read from a RUNNING job")
        entry = {"lag": str(p.lag), "offset": "1024", "ts": int(time.time() * 1000)}
        return ok({"pipelineId": pid, "topicName": f"stream-{pid}", "lagAndOffset": [entry]})


def _pipeline_config(p: Any) -> str:
    """`pipelineJson` as a StreamSets pipeline configuration: stages with an instanceName
    (the format is undocumented; the client reads it defensively)."""
    stages = [{"instanceName": n, "stageName": t, "library": "enos-streaming"} for n, t in p.stages.items()]
    return json.dumps({"pipelineId": p.pipeline_id, "title": p.name, "stages": stages})


def _pipeline_json(p: Any, now: float) -> dict[str, Any]:
    out = {
        "pipelineId": p.pipeline_id,
        "pipelineName": p.name,
        "orgId": p.org_id,
        "status": p.current_status(now),
        "version": 1,
        "templateType": 1,
        "executionMode": p.execution_mode,
        "updateTime": "2026-11-27 10:00:00",
        "alarmConfig": "{}",
    }
    if p.kafka_rate is not None:
        out["kafkaRate"] = p.kafka_rate
    return out
