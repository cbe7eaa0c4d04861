"""Manifest inputs: YAML text as a person writes it, `Manifest` values for the planner, and
the hypothesis strategies the plan properties draw from."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hypothesis import strategies as st

from helpers.world import FAULT_ORG, ORG
from reconciler.manifests import Manifest

NAMES = ["m1", "m2", "m3"]
PIPES = ["p1", "p2"]
STAGES = ["s1", "s2"]
ASSETS = [f"a{i}" for i in range(6)]
POINTS = [f"pt{i}" for i in range(5)]


def manifest_yaml(
    name: str,
    *,
    pipeline: str = "p1",
    stages: list[str] | None = None,
    assets: list[str] | None = None,
    points: list[str] | None = None,
    org: str = ORG,
    extra: str = "",
) -> str:
    stages = stages or ["s1"]
    assets = assets or ["a1", "a2"]
    points = points or ["pt1"]
    return (
        textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: StageStateDeletion
        metadata:
          name: {name}
        spec:
          orgId: {org}
          pipelineId: {pipeline}
          stageInstanceNames: [{", ".join(stages)}]
          assetIds: [{", ".join(assets)}]
          pointIds: [{", ".join(points)}]
        """)
        + extra
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def subset(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=len(items), unique=True)


def manifest(name: str, pipeline: str, stages: list[str], assets: list[str], points: list[str]) -> Manifest:
    return Manifest(name, "o", pipeline, tuple(stages), tuple(assets), tuple(points), f"{name}.yaml", 1)


def numbered_manifest(
    name: str, pipeline: str = "p1", stages: tuple[str, ...] = ("s1",), assets: int = 1
) -> Manifest:
    """A manifest of `assets` numbered assets (a000, a001, ...) and one point, in FAULT_ORG."""
    ids = tuple(f"a{i:03d}" for i in range(assets))
    return Manifest(name, FAULT_ORG, pipeline, stages, ids, ("x",), f"{name}.yaml", 1)
