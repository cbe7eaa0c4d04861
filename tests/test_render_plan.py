"""Plan output as people and machines read it: golden text, markdown and JSON."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import manifest_yaml, run_cli, write

from reconciler.ledger import GENESIS, Ledger, canonical, record_hash
from reconciler.manifests import Manifest
from reconciler.plan import Options, PipelineRef, Plan, build_plan, diff
from reconciler.render.markdown import plan_markdown
from reconciler.render.plan import GITHUB_COMMENT_LIMIT, LiveStatus, status_text

GOLDEN = Path(__file__).parent / "golden"


def fixed_ledger(path: Path, records: list[dict[str, Any]]) -> None:
    """A ledger with fixed timestamps, so its head hash (and the golden files) never change."""
    prev, lines = GENESIS, []
    for seq, fields in enumerate(records, start=1):
        rec = {"v": 1, "seq": seq, "at": "2026-11-27T10:00:00.000Z", **fields, "prev": prev}
        rec["hash"] = prev = record_hash(rec)
        lines.append(canonical(rec))
    path.write_bytes(b"\n".join(lines) + b"\n")


def cells(
    manifest: str, stage: str, assets: list[str], points: list[str], pipeline: str = "p1"
) -> dict[str, Any]:
    return {
        "manifest": manifest,
        "orgId": "o1",
        "pipelineId": pipeline,
        "stageInstanceName": stage,
        "assetIds": assets,
        "pointIds": points,
        "actor": {"user": "ci"},
    }


TURBINES = """\
apiVersion: reconciler/v1
kind: StageStateDeletion
metadata:
  name: turbine-fix
  description: Clear 10-min averages after the formula fix (OPS-1234)
  labels: {ticket: OPS-1234, team: wind-ops}
  reclear: the old run cleared before the formula fix (OPS-1234)
spec:
  orgId: o1
  pipelineId: p1
  stageInstanceNames: [window_avg_1, last_value_2]
  assetIds: [WT01, WT02, WT03, WT04, WT05]
  pointIds: [GenActivePW, WindSpeed]
"""

CI_ENV = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/wind-manifests",
    "GITHUB_HEAD_REF": "fix/turbines",
    "GITHUB_SHA": "4f9c2e1d0b7a6c5e4d3c2b1a0f9e8d7c6b5a4f3e",
}


@pytest.fixture
def scenario(repo: Path) -> Path:
    """Pending, applied, in-doubt, renamed, up-to-date, history and a left-over pause."""
    write(repo / "manifests/turbines.yaml", TURBINES)
    write(
        repo / "manifests/inverters.yaml",
        manifest_yaml("inverter-reset", pipeline="p2", assets=["INV1", "INV2"], points=["DayEnergy"]),
    )
    write(repo / "manifests/gearbox.yaml", manifest_yaml("gearbox-2025"))
    fixed_ledger(
        repo / "applied-ledger.jsonl",
        [
            {
                "kind": "delete",
                **cells("turbine-fix", "window_avg_1", ["WT01", "WT02"], ["GenActivePW", "WindSpeed"]),
            },
            {"kind": "delete", **cells("turbine-fix", "last_value_2", ["WT01"], ["GenActivePW"])},
            {"kind": "delete", **cells("old-manifest", "counter", ["X1", "X2"], ["P"], pipeline="p9")},
            {"kind": "intent", **cells("inverter-reset", "s1", ["INV2"], ["DayEnergy"], pipeline="p2")},
            {"kind": "pause", "orgId": "o1", "pipelineId": "p2", "executionMode": 1, "kafkaRate": 1000},
            {"kind": "delete", **cells("turbine-fx", "last_value_2", ["WT03", "WT04"], ["WindSpeed"])},
            {"kind": "delete", **cells("gearbox-2025", "s1", ["a1", "a2"], ["pt1"])},
        ],
    )
    return repo


GOLDEN_RUNS = {
    "text": ("plan.txt", [], {}),
    "json": ("plan.json", [], {}),
    "markdown": ("plan.md", ["--max-cells", "10"], CI_ENV),
}


@pytest.mark.parametrize("fmt", list(GOLDEN_RUNS))
def test_plan_output_matches_golden(scenario: Path, fmt: str) -> None:
    golden, args, env = GOLDEN_RUNS[fmt]
    res = run_cli(["plan", "--format", fmt, "--detailed-exitcode", *args], scenario, env)
    assert res.code == 2, res.all
    target = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN"):
        target.write_text(res.out)
    assert res.out == target.read_text()


def test_json_plan_has_the_documented_fields(scenario: Path) -> None:
    data = json.loads(run_cli(["plan", "--format", "json"], scenario).out)
    assert data["formatVersion"] == 1
    assert set(data["ledger"]) == {"path", "seq", "hash"} and data["ledger"]["seq"] == 7
    assert data["summary"] == {
        "pendingCells": 17,
        "requests": 5,
        "appliedCells": 7,
        "undeclaredCells": 4,
        "inDoubtCells": 1,
    }
    assert {"manifest", "orgId", "pipelineId", "stageInstanceName", "assetIds", "pointIds", "cells"} <= set(
        data["actions"][0]
    )
    assert next(a for a in data["actions"] if a.get("inDoubt"))["assetIds"] == ["INV2"]


def test_rename_warning_in_text_and_markdown(scenario: Path) -> None:
    warning = (
        "2 pending cells of turbine-fix were already cleared under turbine-fx, which no manifest "
        "declares now; it clears them again on purpose: the old run cleared before the formula fix (OPS-1234)"
    )
    assert warning in run_cli(["plan"], scenario).out
    md = run_cli(["plan", "--format", "markdown"], scenario).out
    assert (
        warning.replace("turbine-fix", "`turbine-fix`")
        .replace("under turbine-fx", "under `turbine-fx`")
        .replace(
            "purpose: the old run cleared before the formula fix (OPS-1234)",
            "purpose: `the old run cleared before the formula fix (OPS-1234)`",
        )
        in md
    )


def test_markdown_reviewer_essentials(scenario: Path) -> None:
    md = run_cli(["plan", "--format", "markdown", "--max-cells", "100"], scenario).out
    lines = md.splitlines()
    assert lines[2].startswith("> **Irreversible.**")
    assert "- Apply policy: within maxCells 100 (17 cells to clear)" in md and "refuse" not in md
    assert "| orgId |" in md and "| `o1` |" in md
    assert "> Clear 10-min averages after the formula fix (OPS-1234)" in md
    assert "Labels: `team: wind-ops`, `ticket: OPS-1234`" in md
    assert "· `manifests/turbines.yaml`" in md and "](manifests/" not in md  # no CI: no relative link
    assert "- File paths are relative to the repository root (no CI server known, so not linked)." in md
    assert "1 manifest up to date: `gearbox-2025`" in md and "`gearbox-2025` |" not in md
    assert "<details>" in md and "\nWT05\n" in md  # every ID, one per line
    assert "request(s)" not in md and "cell(s)" not in md and "stage(s)" not in md
    refused = run_cli(["plan", "--format", "markdown", "--max-cells", "16"], scenario).out
    assert "**Apply will refuse this whole plan:** 17 cells to clear, more than `--max-cells 16`" in refused


def test_markdown_links_to_the_file_in_gitlab(scenario: Path) -> None:
    env = {"CI_PROJECT_URL": "https://gitlab.example/wind/manifests", "CI_COMMIT_SHA": "abc123"}
    md = run_cli(["plan", "--format", "markdown"], scenario, env).out
    assert "(https://gitlab.example/wind/manifests/-/blob/abc123/manifests/turbines.yaml)" in md
    assert "- Base commit: `abc123`" in md


def _big_plan(manifests: int, stages: int, assets: int, *, distinct: bool = False) -> Plan:
    ms = [
        Manifest(
            f"m{i:04d}",
            "o",
            "p",
            tuple(f"stage_{j}" for j in range(stages)),
            tuple(f"asset-{i}-{k}" if distinct else f"asset-{k}" for k in range(assets)),
            ("x",),
            "f.yaml",
            1,
        )
        for i in range(manifests)
    ]
    return build_plan(diff(ms, Ledger(Path("l.jsonl"))), Options())


def test_markdown_fits_a_github_comment() -> None:
    plan = _big_plan(300, 10, 50)
    text = plan_markdown(plan)
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / "plan-truncated.md").write_text(text)
    assert text == (GOLDEN / "plan-truncated.md").read_text()
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "more manifests with" in text and "not shown** (comment size limit)" in text
    assert plan.plan_hash in text
    small = plan_markdown(_big_plan(2, 10, 50))
    assert "not shown" not in small and small.count("| `o` | `p` |") == 20
    assert small.count("<details>") == 2 and "\nasset-49\n" in small


@pytest.mark.parametrize("limit", [GITHUB_COMMENT_LIMIT, 20_000, 5_000])
def test_markdown_lists_ids_as_far_as_the_budget_allows(limit: int) -> None:
    plan = _big_plan(3, 2, 5_000, distinct=True)
    text = plan_markdown(plan, limit=limit)
    assert len(text) <= limit
    assert "# 5,000 assets\n" in text and "not shown (comment size limit)" in text
    assert "IDs from here on are counted, not listed" in text
    assert text.count("| `o` | `p` |") == 6  # every row, whatever the IDs took


def test_each_id_list_is_printed_once_however_many_manifests_share_it() -> None:
    # Issue 27: a fleet reset's comment printed the same 1,417 IDs four times.
    plan = _big_plan(4, 2, 1_417)
    text = plan_markdown(plan)
    assert text.count("\nasset-1416\n") == 1 and text.count("# 1,417 assets\n") == 1
    assert text.count("# 1,417 assets: the same list as `o` / `p` / `stage_0`") == 0  # plain, in a code block
    assert text.count("# 1,417 assets: the same list as o / p / stage_0, printed above") == 7
    assert len(text) < 30_000


def test_a_list_cut_short_is_never_referred_to_as_printed() -> None:
    text = plan_markdown(_big_plan(4, 2, 6_000), limit=40_000)
    assert len(text) <= 40_000 and "\nasset-0\n" in text
    assert "\nasset-5999\n" not in text  # cut short everywhere, so never "the same list as"
    assert "the same list as" not in text and text.count("not shown (comment size limit)") == 4


def test_markdown_shows_hostile_ids_verbatim() -> None:
    m = Manifest("m", "o", "p|x", ("s`1",), ("</details>", "a``b", "`x"), ("*p*",), "f.yaml", 1)
    text = plan_markdown(build_plan(diff([m], Ledger(Path("l.jsonl"))), Options()))
    assert "| `o` | `p\\|x` | ``s`1`` |" in text
    assert "\n</details>\n" in text.split("```\n", 1)[1]  # inside the code block, as sent
    assert text.count("<details>") == 1 and text.rstrip().endswith("</details>")


def test_text_plan_has_no_rename_section_without_renames(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    out = run_cli(["plan"], repo).out
    assert "Warning" not in out and "1 manifest" not in out


def test_refresh_shows_live_statuses(scenario: Path, make_emulator: Any) -> None:
    from helpers import gateway_env, pipeline, world_for

    em = make_emulator(
        world_for(
            [pipeline("p1", status="RUNNING", pipelineName="Wind averages"), pipeline("p9", status="RUNNING")]
        )
    )
    res = run_cli(["plan", "--refresh", "--format", "markdown"], scenario, gateway_env(em))
    assert res.code == 0, res.all
    assert "`p1` (Wind averages) | `window_avg_1` |" in res.out
    assert "**RUNNING** (blocks apply)" in res.out and "**MISSING** (blocks apply)" in res.out
    assert "**Would block apply** (requests to send, not PAUSED): `p1` (Wind averages) **RUNNING**" in res.out
    text = run_cli(["plan", "--refresh"], scenario, gateway_env(em)).out
    assert "o1 / p1 (Wind averages): RUNNING (blocks apply)" in text
    assert "o1 / p2: MISSING (blocks apply)" in text
    assert {e["route"] for e in em.world.log} <= {"list", "details", "get"}  # read-only calls


def test_running_pipeline_with_nothing_to_send_does_not_block(repo: Path) -> None:
    from reconciler.ledger import read

    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(repo / "manifests/b.yaml", manifest_yaml("b", pipeline="p2"))
    fixed_ledger(
        repo / "applied-ledger.jsonl", [{"kind": "delete", **cells("b", "s1", ["a1", "a2"], ["pt1"], "p2")}]
    )
    from reconciler.manifests import load

    plan = build_plan(
        diff(load([str(repo / "manifests")]).manifests, read(str(repo / "applied-ledger.jsonl")))
    )
    statuses = {PipelineRef("o1", "p1"): LiveStatus("PAUSED"), PipelineRef("o1", "p2"): LiveStatus("RUNNING")}
    md = plan_markdown(plan, statuses)
    assert "blocks apply" not in md and "Would block" not in md
    assert "o1 / p2: RUNNING (nothing to send)" in status_text(statuses, plan)


def test_markdown_with_nothing_to_do_collapses_every_manifest(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(repo / "manifests/b.yaml", manifest_yaml("b"))
    fixed_ledger(
        repo / "applied-ledger.jsonl",
        [{"kind": "delete", **cells(name, "s1", ["a1", "a2"], ["pt1"])} for name in ("a", "b")],
    )
    md = run_cli(["plan", "--format", "markdown", "--max-cells", "0"], repo).out
    assert "**No changes.** Every declared cell is already in the ledger (4 cells applied)." in md
    assert "2 manifests up to date: `a`, `b`" in md and "| orgId |" not in md
    assert "- Apply policy: within maxCells 0 (0 cells to clear)" in md and "Plan hash" not in md


def test_many_rename_warnings_are_counted_not_listed() -> None:
    from dataclasses import replace

    from reconciler.plan.values import RenameHint

    plan = _big_plan(1, 1, 1)
    hints = tuple(RenameHint("m0000", f"old-{i}", 2) for i in range(25))
    plan = replace(plan, diff=replace(plan.diff, renames=hints))
    md = plan_markdown(plan)
    assert md.count("**Rename?**") == 20 and "**5 more rename warnings** (10 cells)" in md


def test_years_of_retired_manifests_take_a_few_lines_of_a_text_plan() -> None:
    from reconciler.plan import StageKey
    from reconciler.render.plan import HISTORY_LINES, plan_text
    from reconciler.render.review import Review

    history = tuple((StageKey(f"fix-{n:03d}", "o1", "p1", "s1"), 2) for n in range(HISTORY_LINES + 30))
    plan = build_plan(replace(diff([], Ledger(Path("l.jsonl"))), undeclared=history), Options())
    text = plan_text(plan, {}, Review())
    assert "fix-000: o1 / p1 / s1: 2 cells" in text and f"fix-{HISTORY_LINES - 1:03d}" in text
    assert f"fix-{HISTORY_LINES:03d}" not in text
    assert "and 30 more stages (60 cells)" in text


def test_rounds_of_reclears_are_one_warning_per_manifest() -> None:
    """The trial: three rounds of `metadata.reclear` gave a warning per old name (15 lines
    for 5 manifests). Names a re-clear acknowledges are said once per manifest; a rename
    nobody acknowledged keeps its own line (each needs its own `renamedFrom`)."""
    from dataclasses import replace

    from reconciler.plan.values import RenameHint
    from reconciler.render.plan import plan_text

    plan = _big_plan(1, 1, 1)
    hints = (
        *(RenameHint("m0000", old, 60, "round r4") for old in ("m", "m-r2", "m-r3")),
        RenameHint("m0000", "n-old", 2),
    )
    plan = replace(plan, diff=replace(plan.diff, renames=hints))
    text = plan_text(plan)
    assert text.count("Warning:") == 2, text
    assert "60 pending cells of m0000 were already cleared under m, m-r2, m-r3, which no manifest" in text
    assert "it clears them again on purpose: round r4" in text
    md = plan_markdown(plan)
    assert md.count("**Cleared again on purpose:**") == 1 and md.count("**Rename?**") == 1
    assert "under `m`, `m-r2`, `m-r3`, which" in md
