"""`EnosClient`: the calls reconcile makes, on top of a signed, retrying `Session`.

Endpoints and bodies follow the DESIGN "EnOS contract decisions": List
Pipelines paged with `ifReleased=true`, Operate Pipeline (pause, start), and
Delete/Get Stage State. Nothing above this package sees an httpx type.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from reconciler.enos import pipelinejson
from reconciler.enos.session import Session
from reconciler.errors import PermanentError, ReconcilerError

PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
PIPELINE_PATH = "/streaming/v2.0/streaming/pipeline/{id}"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"
OFFSET_LAG_PATH = "/streaming/v2.0/streaming/pipeline/{id}/offset-lag"


@dataclass(frozen=True)
class Pipeline:
    """One pipeline as List Pipelines reports it (REFERENCE 2.1)."""

    org_id: str
    pipeline_id: str
    status: str
    name: str = ""
    execution_mode: int | None = None
    kafka_rate: int | None = None


@dataclass(frozen=True)
class PipelineDetails:
    """Get Pipeline Details (REFERENCE 2.2): the stage names its `pipelineJson` reveals,
    None when that undocumented document lists none that can be read."""

    pipeline_id: str
    name: str
    stage_names: frozenset[str] | None
    pipeline_json: Any = None

    def lacks(self, stage: str) -> bool:
        """Whether the configuration plainly has no stage of that instance name."""
        if self.stage_names is None or stage in self.stage_names:
            return False
        return not pipelinejson.mentions(self.pipeline_json, stage)


@dataclass(frozen=True)
class OffsetLag:
    """Get Pipeline Offset and Lag (REFERENCE section 8): records not yet consumed, summed
    over the partitions listed, and the latest `ts` (ms) among them."""

    pipeline_id: str
    topic: str
    lag: int
    partitions: int
    ts: int | None


class StageRequest(Protocol):
    """What a Delete or Get Stage State request is about: every asset x every point of
    one stage (apply passes its plan `Action`)."""

    @property
    def org_id(self) -> str: ...
    @property
    def pipeline_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def asset_ids(self) -> Sequence[str]: ...
    @property
    def point_ids(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class StateRequest:
    """A `StageRequest` for callers without a plan (tests, scripts)."""

    org_id: str
    pipeline_id: str
    stage: str
    asset_ids: Sequence[str]
    point_ids: Sequence[str]


def check_gateway(url: str) -> str:
    """HTTPS required; plain http only to loopback (DESIGN "CLI"). One-line errors only."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises on a bad port number
    except ValueError as exc:
        raise ReconcilerError(f"gateway {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ReconcilerError(f"gateway {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ReconcilerError(
            f"refusing plain http:// to {host}: use https:// (http is allowed only to loopback)"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EnosClient:
    """Synchronous, thread-safe client for the calls reconcile makes, over one `Session`
    (`EnosClient(Session(gateway, credentials, ...))`: the session takes the options)."""

    def __init__(self, session: Session) -> None:
        self.gateway = check_gateway(session.gateway)
        self._session = session

    def __repr__(self) -> str:
        return f"EnosClient(gateway={self.gateway!r}, app_key={self._session.tokens.app_key!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> EnosClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def token_fetches(self) -> int:
        """How many tokens were fetched (get or refresh) so far."""
        return self._session.tokens.fetches

    @property
    def token_refreshes(self) -> int:
        """How many of those came from token/refresh."""
        return self._session.tokens.refreshes

    def token(self) -> str:
        """A valid access token (the pre-flight check that the credentials work)."""
        return str(self._session.retrying(self._session.tokens.current))

    def call(
        self, method: str, path: str, query: Mapping[str, str], body: Any = None, *, expect_true: bool = False
    ) -> Any:
        """Any signed call, with retries; the envelope's `data`."""
        return self._session.call(method, path, query, body, expect_true=expect_true)

    # --- the calls reconcile makes ----------------------------------------------------

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
        """Operate Pipeline `pause`; 61152 (not RUNNING) is a definite `PermanentError`."""
        self.call("POST", PIPELINE_PATH.format(id=pipeline_id), {"action": "pause", "orgId": org_id})

    def start(
        self,
        org_id: str,
        pipeline_id: str,
        execution_mode: int,
        kafka_rate: int,
        resource_config: str | None = None,
    ) -> None:
        """Operate Pipeline `start` (resume), with `resourceConfig` (JSON text) when given.

        61165 (already RUNNING) and 61128 (no processing resource) are definite
        `PermanentError`s; 61121 (another start in the org) is `OrgBusyError`.
        """
        body: dict[str, Any] = {"executionMode": execution_mode, "kafkaRate": kafka_rate}
        if resource_config is not None:
            body["resourceConfig"] = json.loads(resource_config)
        self.call("POST", PIPELINE_PATH.format(id=pipeline_id), {"action": "start", "orgId": org_id}, body)

    def pipeline_details(self, org_id: str, pipeline_id: str) -> PipelineDetails:
        """Get Pipeline Details of the released version; `data` may be an object or a list."""
        data = self.call("GET", PIPELINE_PATH.format(id=pipeline_id), {"orgId": org_id, "ifReleased": "true"})
        if isinstance(data, list):
            data = next((d for d in data if isinstance(d, dict)), None)
        if not isinstance(data, dict):
            raise PermanentError("Get Pipeline Details answered without an object")
        raw = data.get("pipelineJson")
        return PipelineDetails(
            pipeline_id=str(data.get("pipelineId") or pipeline_id),
            name=str(data.get("pipelineName") or ""),
            stage_names=pipelinejson.stage_names(raw),
            pipeline_json=raw,
        )

    def offset_lag(self, org_id: str, pipeline_id: str) -> OffsetLag | None:
        """Get Pipeline Offset and Lag (needs RUNNING); None when the answer has no lag figures."""
        data = self.call("GET", OFFSET_LAG_PATH.format(id=pipeline_id), {"orgId": org_id})
        return _offset_lag(pipeline_id, data)

    def delete_stage_state(
        self, request: StageRequest, *, may_retry: Callable[[], bool] | None = None
    ) -> None:
        """Delete Stage State for every asset x point of `request`; success is code 0 with
        data true, and nothing else.

        61199 raises `NotPausedError` at once, never retried: the caller re-reads the status.
        `may_retry` is asked before every retry of an ambiguous failure (see `Session.call`).
        """
        self._session.call(
            "POST",
            STAGE_STATE_PATH,
            {"action": "delete", "orgId": request.org_id},
            _state_body(request),
            expect_true=True,
            delete=True,
            may_retry=may_retry,
        )

    def get_stage_state(self, request: StageRequest) -> list[dict[str, Any]]:
        """Get Stage State items; `data` may be a list or `{items: [...]}` (REFERENCE 1.1)."""
        data = self.call(
            "POST", STAGE_STATE_PATH, {"action": "get", "orgId": request.org_id}, _state_body(request)
        )
        if isinstance(data, dict):
            data = data.get("items", [])
        if not isinstance(data, list):
            raise PermanentError("Get Stage State answered with neither a list nor {items: [...]}")
        return [item for item in data if isinstance(item, dict)]


def _state_body(request: StageRequest) -> dict[str, str]:
    return {
        "pipelineId": request.pipeline_id,
        "stageInstanceName": request.stage,
        "assetIds": ",".join(request.asset_ids),
        "pointIds": ",".join(request.point_ids),
    }


def _offset_lag(pipeline_id: str, data: Any) -> OffsetLag | None:
    """`lag`/`offset` are typed String but numeric in the sample (REFERENCE 2.4): read both."""
    if not isinstance(data, dict) or not isinstance(data.get("lagAndOffset"), list):
        return None
    lags: list[int] = []
    stamps: list[int] = []
    for entry in data["lagAndOffset"]:
        if not isinstance(entry, dict):
            continue
        lag, ts = _number(entry.get("lag")), _number(entry.get("ts"))
        if lag is not None:
            lags.append(lag)
        if ts is not None:
            stamps.append(ts)
    if not lags:
        return None
    return OffsetLag(
        str(data.get("pipelineId") or pipeline_id),
        str(data.get("topicName") or ""),
        sum(lags),
        len(lags),
        max(stamps) if stamps else None,
    )


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return None
    return None


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
