"""Emulator worlds: pipelines and apps to seed `World` with, and the environment that
points the CLI at a running emulator."""

from __future__ import annotations

from typing import Any

from reconciler.emulator import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RunningEmulator

ORG = "o1"
FAULT_ORG = "o"  # the org of `fault_pipeline` and `numbered_manifest` (test_apply_faults)


def world_for(pipelines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
        "pipelines": pipelines,
        **kw,
    }


def pipeline(
    pid: str = "p1", status: str = "PAUSED", stages: tuple[str, ...] = ("s1", "s2"), **kw: Any
) -> dict[str, Any]:
    return {
        "pipelineId": pid,
        "orgId": ORG,
        "status": status,
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": dict.fromkeys(stages, "LastRecordAppender"),
        "fillState": True,
        **kw,
    }


def fault_pipeline(pid: str = "p1", status: str = "PAUSED", **kw: Any) -> dict[str, Any]:
    """A pipeline with two clearable stages and one (`bad`) whose type has no state."""
    return {
        "pipelineId": pid,
        "orgId": FAULT_ORG,
        "status": status,
        "executionMode": 1,
        "kafkaRate": 1000,
        "stages": {"s1": "LastRecordAppender", "s2": "LastRecordAppender", "bad": "WindowAggregator"},
        "fillState": True,
        **kw,
    }


def gateway_env(em: RunningEmulator) -> dict[str, str]:
    return {
        "ENOS_API_GATEWAY": em.url,
        "ENOS_APP_KEY": DEFAULT_APP_KEY,
        "ENOS_APP_SECRET": DEFAULT_APP_SECRET,
    }


# How long a test waits for an event it is sure will come (a request arriving, a note):
# no deadline of its own. pytest-timeout (300 s) ends a test that hangs long before this.
HANG = 3600.0
