"""What the reviewer reads is what the merge does (issue 16): apply's policy, the pause
consequence, a failed refresh, request shapes, ID sources and cells cleared before, in
text, markdown and JSON, through the real CLI; goldens for the new plan text and comment."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write
from test_render_plan import GOLDEN, cells, fixed_ledger

FLEET_IDS = "".join(f"PV{i:03d}\n" for i in range(40))
POINTS = "".join(f"pt{i:02d}\n" for i in range(20))
CONFIG = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {enabled: false}
apply:
  maxCells: 500
  pausePipelines: true
"""


def fleet_yaml(name: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: StageStateDeletion
metadata:
  name: {name}
spec:
  orgId: o1
  pipelineId: p1
  stageInstanceNames: [s1]
  assetIdsFile: ids/fleet.txt
  pointIdsFile: ids/points.txt
"""


@pytest.fixture
def review_repo(repo: Path) -> Path:
    """A fleet reset cleared on 2026-12-03, its copy-paste under a new name (800 cells
    again), and a 12-cell fix merged with it: over reconcile.yaml's maxCells 500."""
    write(repo / "reconcile.yaml", CONFIG)
    write(repo / "manifests/ids/fleet.txt", FLEET_IDS)
    write(repo / "manifests/ids/points.txt", POINTS)
    write(repo / "manifests/fleet.yaml", fleet_yaml("pv-fleet-2026-12"))
    write(repo / "manifests/fleet-again.yaml", fleet_yaml("pv-fleet-again"))
    write(
        repo / "manifests/small-fix.yaml",
        manifest_yaml(
            "small-fix", pipeline="p2", stages=["s1", "s2"], assets=["a1", "a2", "a3"], points=["x", "y"]
        ),
    )
    fleet = cells("pv-fleet-2026-12", "s1", FLEET_IDS.split(), POINTS.split())
    _dated_ledger(repo / "applied-ledger.jsonl", [{"kind": "delete", **fleet}], "2026-12-03T10:00:00.000Z")
    return repo


def _dated_ledger(path: Path, records: list[dict[str, Any]], at: str) -> None:
    from reconciler.ledger import GENESIS, canonical, record_hash

    prev, out = GENESIS, []
    for seq, fields in enumerate(records, start=1):
        rec = {"v": 1, "seq": seq, "at": at, **fields, "prev": prev}
        rec["hash"] = prev = record_hash(rec)
        out.append(canonical(rec))
    path.write_bytes(b"\n".join(out) + b"\n")


GOLDENS = {"text": "plan-review.txt", "markdown": "plan-review.md", "json": "plan-review.json"}
CI_ENV = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/pv-manifests",
    "RECONCILE_HEAD_SHA": "4f9c2e1d0b7a6c5e4d3c2b1a0f9e8d7c6b5a4f3e",
}


@pytest.mark.parametrize("fmt", list(GOLDENS))
def test_review_output_matches_golden(review_repo: Path, fmt: str) -> None:
    res = run_cli(["plan", "--format", fmt, "--detailed-exitcode"], review_repo, CI_ENV)
    assert res.code == 2, res.all
    target = GOLDEN / GOLDENS[fmt]
    if os.environ.get("UPDATE_GOLDEN"):
        target.write_text(res.out)
    assert res.out == target.read_text()


def test_max_cells_from_reconcile_yaml_in_every_format(review_repo: Path) -> None:
    data = json.loads(run_cli(["plan", "--format", "json"], review_repo).out)
    assert data["policy"] == {
        "maxCells": 500,
        "exceedsMaxCells": True,
        "pausePipelines": True,
        "largeManifests": [{"manifest": "pv-fleet-again", "cells": 800}],
        "heldBack": [{"manifest": "small-fix", "cells": 12}],
    }
    text = run_cli(["plan"], review_repo).out
    assert (
        "Apply will refuse this whole plan: 812 cells to clear, more than apply.maxCells (500, in reconcile.yaml)"
        in text
    )
    assert "What makes it large: pv-fleet-again (800 cells)." in text
    assert "Also refused with it: small-fix (12 cells)." in text
    assert "raise apply.maxCells in reconcile.yaml to at least 812" in text
    md = run_cli(["plan", "--format", "markdown"], review_repo).out
    assert "- **Apply will refuse this whole plan:** 812 cells to clear" in md
    assert "Also refused with it: `small-fix` (12 cells)." in md


def test_the_flag_overrides_the_config_and_within_the_limit_says_so(review_repo: Path) -> None:
    data = json.loads(run_cli(["plan", "--format", "json", "--max-cells", "1000"], review_repo).out)
    assert data["policy"] == {"maxCells": 1000, "exceedsMaxCells": False, "pausePipelines": True}
    md = run_cli(
        ["plan", "--format", "markdown", "--max-cells", "1000", "--no-pause-pipelines"], review_repo
    ).out
    assert "- Apply policy: within maxCells 1,000 (812 cells to clear); a pipeline that is not PAUSED" in md
    assert "refuse" not in md
    (review_repo / "reconcile.yaml").unlink()
    data = json.loads(run_cli(["plan", "--format", "json"], review_repo).out)
    assert data["policy"] == {"maxCells": None, "exceedsMaxCells": False, "pausePipelines": False}


def test_apply_refuses_exactly_what_plan_said(review_repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2")]))
    res = run_cli(["apply", "--auto-approve"], review_repo, gateway_env(em))
    assert res.code == 1
    assert "812 cells, more than apply.maxCells in reconcile.yaml (500); nothing was sent" in res.err
    assert not [e for e in em.world.log if e["route"] == "delete"]


def test_a_running_pipeline_is_one_the_merge_pauses(review_repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for(
            [pipeline("p1", status="RUNNING", pipelineName="PV averages"), pipeline("p2", status="STOPPED")]
        )
    )
    env = gateway_env(em)
    data = json.loads(run_cli(["plan", "--refresh", "--format", "json"], review_repo, env).out)
    assert data["pipelines"] == [
        {"orgId": "o1", "pipelineId": "p1", "name": "PV averages", "status": "RUNNING",
         "willPause": True, "blocks": False, "requests": 1},
        {"orgId": "o1", "pipelineId": "p2", "name": "p2", "status": "STOPPED",
         "willPause": False, "blocks": True, "requests": 2},
    ]  # fmt: skip
    md = run_cli(["plan", "--refresh", "--format", "markdown"], review_repo, env).out
    assert (
        "- **The merge pauses production:** `p1` (PV averages) is RUNNING; apply pauses it for its 1 request"
        in md
    )
    assert "**RUNNING** (the merge pauses it)" in md and "**STOPPED** (blocks apply)" in md
    assert "Would block apply** (requests to send, not PAUSED): `p2` **STOPPED**" in md
    text = run_cli(["plan", "--refresh"], review_repo, env).out
    assert "o1 / p1 (PV averages): RUNNING (apply pauses it for its 1 request, about" in text
    off = json.loads(
        run_cli(["plan", "--refresh", "--format", "json", "--no-pause-pipelines"], review_repo, env).out
    )
    assert off["pipelines"][0]["willPause"] is False and off["pipelines"][0]["blocks"] is True
    assert {e["route"] for e in em.world.log} <= {"list", "details", "get"}  # read-only calls only


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize("cause", ["rotated secret", "gateway down"])
def test_a_failed_refresh_prints_the_offline_plan(
    review_repo: Path, make_emulator: Any, fmt: str, cause: str
) -> None:
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2")]))
    env = gateway_env(em)
    if cause == "rotated secret":
        env["ENOS_APP_SECRET"] = "rotated-long-ago"
    else:
        env["ENOS_API_GATEWAY"] = _closed_port()
    offline = run_cli(["plan", "--format", fmt, "--detailed-exitcode"], review_repo)
    res = run_cli(["plan", "--refresh", "--format", fmt, "--detailed-exitcode"], review_repo, env)
    assert res.code == offline.code == 2, res.all
    assert "--refresh failed, showing the offline plan" in res.err
    assert "rotated-long-ago" not in res.all
    if fmt == "json":
        data = json.loads(res.out)
        assert "pipelines" not in data and data["actions"] == json.loads(offline.out)["actions"]
        assert data["warnings"][0].startswith("live pipeline status is missing: --refresh failed (")
    else:
        assert "live pipeline status is missing: --refresh failed (" in res.out
        assert "pv-fleet-again" in res.out and "small-fix" in res.out  # the whole plan


def test_refresh_takes_the_gateways_of_the_config_file_given(review_repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2")]))
    other = review_repo / "other.yaml"
    write(other, CONFIG + f"gateways:\n  - url: {em.url}\n")
    (review_repo / "reconcile.yaml").unlink()
    env = {k: v for k, v in gateway_env(em).items() if k != "ENOS_API_GATEWAY"}
    res = run_cli(["plan", "--refresh", "--config", str(other), "--format", "json"], review_repo, env)
    assert res.code == 0, res.all
    assert [p["status"] for p in json.loads(res.out)["pipelines"]] == ["PAUSED", "PAUSED"]


def test_id_sources_in_every_format(review_repo: Path) -> None:
    digest = hashlib.sha256(FLEET_IDS.encode()).hexdigest()
    data = json.loads(run_cli(["plan", "--format", "json"], review_repo).out)
    assert data["idSources"]["pv-fleet-again"][0] == {
        "field": "assetIdsFile",
        "path": "manifests/ids/fleet.txt",
        "sha256": digest,
        "ids": 40,
    }
    assert (
        f"40 asset IDs from manifests/ids/fleet.txt (sha256 {digest})" in run_cli(["plan"], review_repo).out
    )
    md = run_cli(["plan", "--format", "markdown"], review_repo, CI_ENV).out
    assert (
        f"- 40 asset IDs from [`manifests/ids/fleet.txt`](https://github.com/acme/pv-manifests/blob/{CI_ENV['RECONCILE_HEAD_SHA']}/manifests/ids/fleet.txt) (sha256 `{digest}`)"
        in md
    )


def test_cells_cleared_by_another_manifest_in_every_format(review_repo: Path) -> None:
    line = (
        "`pv-fleet-again`: these 800 cells were cleared by `pv-fleet-2026-12` on 2026-12-03; "
        "a new name clears them again, with the state rebuilt since"
    )
    assert line.replace("`", "") in run_cli(["plan"], review_repo).out
    assert f"- **Cleared before:** {line}." in run_cli(["plan", "--format", "markdown"], review_repo).out
    data = json.loads(run_cli(["plan", "--format", "json"], review_repo).out)
    assert data["recleared"] == [
        {"manifest": "pv-fleet-again", "clearedBy": "pv-fleet-2026-12", "cells": 800,
         "firstAt": "2026-12-03", "lastAt": "2026-12-03"}
    ]  # fmt: skip


def test_request_shapes_are_the_real_requests(repo: Path) -> None:
    write(
        repo / "manifests/m.yaml",
        manifest_yaml("m", assets=["a1", "a2", "a3", "a4", "a5"], points=["p", "q", "r"]),
    )
    # a1, a2 cleared for p and q: they still need r (2 x 1); a3-a5 need all 3 points (3 x 3)
    fixed_ledger(
        repo / "applied-ledger.jsonl", [{"kind": "delete", **cells("m", "s1", ["a1", "a2"], ["p", "q"])}]
    )
    text = run_cli(["plan"], repo).out
    assert "clear 11 cells in 2 requests: 3 assets x 3 points, 2 assets x 1 point;" in text
    md = run_cli(["plan", "--format", "markdown"], repo).out
    assert "| 11 | 2 requests: 3 assets x 3 points, 2 assets x 1 point |" in md


def test_repeated_request_shapes_read_as_requests_not_a_fraction(repo: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["a1", "a2", "a3", "a4"], points=["p"]))
    text = run_cli(["plan", "--max-assets", "2"], repo).out
    # not "2 of 2 assets x 1 point", which reads like "2 out of 2"
    assert "in 2 requests: 2 requests of 2 assets x 1 point;" in text, text


def test_an_in_doubt_row_shows_its_ids(repo: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    fixed_ledger(
        repo / "applied-ledger.jsonl", [{"kind": "intent", **cells("m", "s1", ["a1", "a2"], ["pt1"])}]
    )
    md = run_cli(["plan", "--format", "markdown"], repo).out
    row = next(line for line in md.splitlines() if line.startswith("| `o1` |"))
    assert "| 2 (`a1`, `a2`) | 1 (`pt1`) |" in row and "| 0 | 0 |" not in row
    assert "1 request: in doubt: 2 assets x 1 point" in row


def test_the_markdown_id_budget_is_shared(repo: Path) -> None:
    from helpers import manifest_yaml as my

    write(repo / "manifests/ids/big.txt", "".join(f"FLEET-ASSET-{i:05d}\n" for i in range(6_900)))
    big = fleet_yaml("a-fleet-reset").replace("assetIdsFile: ids/fleet.txt", "assetIdsFile: ids/big.txt")
    write(repo / "manifests/a.yaml", big.replace("pointIdsFile: ids/points.txt", "pointIds: [x]"))
    write(repo / "manifests/b.yaml", my("b-small-fix", assets=[f"WT{i}" for i in range(8)]))
    md = run_cli(["plan", "--format", "markdown"], repo).out
    assert len(md) <= 65_536
    assert all(f"\nWT{i}\n" in md for i in range(8))  # the small fix after the fleet: every ID
    assert "\nFLEET-ASSET-00000\n" in md and "not shown (comment size limit)" in md


def test_plan_of_one_file_does_not_call_other_manifests_history(repo: Path) -> None:
    write(repo / "manifests/one.yaml", manifest_yaml("one"))
    write(repo / "manifests/two.yaml", manifest_yaml("two"))
    fixed_ledger(repo / "applied-ledger.jsonl", [{"kind": "delete", **cells("two", "s1", ["a1"], ["pt1"])}])
    out = run_cli(["plan", "manifests/one.yaml"], repo).out
    assert "two" not in out and "History: not shown: only the given files were read" in out
    assert (
        json.loads(run_cli(["plan", "manifests/one.yaml", "--format", "json"], repo).out)["summary"][
            "undeclaredCells"
        ]
        == 0
    )
    assert "History" not in run_cli(["plan", "manifests"], repo).out  # the whole set: two declares it


def test_plan_from_inside_manifests_finds_the_config_and_ledger(review_repo: Path) -> None:
    (review_repo / ".git").mkdir()  # the repository root the search stops at
    inside = review_repo / "manifests"
    top = run_cli(["plan", "--format", "json"], review_repo).out
    res = run_cli(["plan", "--format", "json"], inside)
    assert res.code == 0, res.all
    assert json.loads(res.out)["planHash"] == json.loads(top)["planHash"]
    assert "using " in res.err and "reconcile.yaml" in res.err
    one = json.loads(run_cli(["plan", "small-fix.yaml", "--format", "json"], inside).out)
    assert one["manifests"] == ["manifests/small-fix.yaml"] and one["summary"]["pendingCells"] == 12


def test_target_typo_gets_a_did_you_mean(review_repo: Path) -> None:
    res = run_cli(["plan", "--target", "smal-fix"], review_repo)
    assert res.code == 1 and "did you mean small-fix?" in res.err


def test_a_diagnostic_warning_has_one_prefix(repo: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["a1", "a1"]))
    err = run_cli(["plan"], repo).err
    assert "duplicate 'a1'" in err and "warning: manifests/m.yaml" not in err
    assert err.count("warning:") == 1


@pytest.mark.parametrize(
    "command", ["plan", "apply", "init", "validate", "schema", "emulator", "ledger show", "ledger resolve"]
)
def test_help_shows_no_python_types(tmp_path: Path, command: str) -> None:
    import re

    res = run_cli([*command.split(), "--help"], tmp_path)
    assert res.code == 0
    assert not re.search(r"<(list|path|str|int|float|bool)\b", res.out), res.out


def test_base_commit_wording_is_outside_the_code_span(repo: Path) -> None:
    from helpers import commit_all

    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    commit_all(repo)
    write(repo / "manifests/m.yaml", manifest_yaml("m", assets=["a9"]))
    md = run_cli(["plan", "--format", "markdown"], repo).out
    line = next(x for x in md.splitlines() if x.startswith("- Base commit:"))
    assert line.endswith("` with uncommitted changes") and line.count("`") == 2


def test_plan_level_warnings_head_every_format(repo: Path) -> None:
    from reconciler.ledger import read
    from reconciler.manifests import load
    from reconciler.plan import build_plan, diff
    from reconciler.plan import file as planfile
    from reconciler.render.markdown import plan_markdown
    from reconciler.render.plan import Review, plan_text, review_json

    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    plan = build_plan(
        diff(load([str(repo / "manifests")]).manifests, read(str(repo / "applied-ledger.jsonl")))
    )
    review = Review(warnings=("this pull request changes where credentials are sent",))
    text = plan_text(plan, None, review)
    assert (
        text.splitlines()[2]
        == "[yellow]Warning:[/yellow] this pull request changes where credentials are sent"
    )
    md = plan_markdown(plan, review=review)
    first = md.split("**Check before approving:**\n\n", 1)[1].splitlines()[0]
    assert first == "- **Warning:** this pull request changes where credentials are sent"
    doc = json.loads(planfile.dumps(plan, review_json(plan, review)))
    assert doc["warnings"] == ["this pull request changes where credentials are sent"]
    assert doc["planHash"] == plan.plan_hash  # extra fields are not hashed


def test_cells_cleared_under_an_old_name_are_named_by_their_owner_now() -> None:
    from dataclasses import replace

    from helpers import ledger_of, manifest, record

    from reconciler.plan import build_plan, diff, recleared

    owner = replace(manifest("fleet-2026", "p1", ["s1"], ["a1", "a2"], ["x"]), renamed_from=("fleet-old",))
    copy = manifest("fleet-copy", "p1", ["s1"], ["a1", "a2", "a3"], ["x"])
    ledger = ledger_of([record(1, "delete", "fleet-old", "p1", "s1", ["a1", "a2"], ["x"])])
    plan = build_plan(diff([owner, copy], ledger))
    [found] = recleared(plan, ledger, [owner, copy])
    assert (found.manifest, found.cleared_by, found.cells) == ("fleet-copy", "fleet-2026", 2)


def test_a_manifest_on_the_same_stage_counts_only_the_assets_it_shares() -> None:
    """Weekly fixes of one stage, each its own farm: the others' clears are not news; a fix
    that takes in one asset of another farm is told for that asset's cells only."""
    from helpers import ledger_of, manifest, record

    from reconciler.plan import build_plan, diff, recleared

    farm_a = manifest("fix-a", "p1", ["s1"], ["a1", "a2"], ["x", "y"])
    farm_b = manifest("fix-b", "p1", ["s1"], ["b1", "b2", "a2"], ["x", "y"])
    ledger = ledger_of([record(1, "delete", "fix-a", "p1", "s1", ["a1", "a2"], ["x"])])
    plan = build_plan(diff([farm_a, farm_b], ledger))
    [found] = recleared(plan, ledger, [farm_a, farm_b])
    assert (found.manifest, found.cleared_by, found.cells) == ("fix-b", "fix-a", 1)
    farm_b = manifest("fix-b", "p1", ["s1"], ["b1", "b2"], ["x", "y"])
    assert recleared(build_plan(diff([farm_a, farm_b], ledger)), ledger, [farm_a, farm_b]) == ()


def test_live_review_matches_golden(review_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comment and text with live statuses: one pipeline the merge pauses (with a rough
    time from a fixed latency), one that blocks; rendered directly, so no clock is in it."""
    from reconciler.ledger import read
    from reconciler.manifests import load
    from reconciler.plan import PipelineRef, build_plan, diff, recleared
    from reconciler.render.markdown import plan_markdown
    from reconciler.render.plan import LiveStatus, Review, plan_text, review_json, status_text

    monkeypatch.chdir(review_repo)  # relative paths: the plan hash covers the ledger's path
    loaded = load(["manifests"])
    ledger = read("applied-ledger.jsonl")
    plan = build_plan(diff(loaded.manifests, ledger))
    statuses = {
        PipelineRef("o1", "p1"): LiveStatus("RUNNING", "PV averages"),
        PipelineRef("o1", "p2"): LiveStatus("STOPPED", "Inverter counters"),
    }
    review = Review(
        policy=plan.policy(500, True),
        statuses=statuses,
        latency=2.5,
        concurrency=4,
        sources={m.name: m.id_sources for m in loaded.manifests},
        recleared=recleared(plan, ledger, loaded.manifests),
    )
    text = plan_text(plan, {m.name: m.path for m in loaded.manifests}, review) + status_text(
        statuses, plan, review
    )
    md = plan_markdown(plan, manifests=loaded, review=review, link_base="https://example.invalid/blob/abc")
    for name, out in (("plan-review-live.txt", text), ("plan-review-live.md", md)):
        if os.environ.get("UPDATE_GOLDEN"):
            (GOLDEN / name).write_text(out)
        assert out == (GOLDEN / name).read_text()
    # Honest (issue 25): the request, plus the pause, the start and their status reads, and the
    # canary's read before and after (the request is its own canary): 7 calls at 2.5 s each
    assert (
        "RUNNING ([yellow]apply pauses it[/yellow] for its 1 request, about 18s at the latency seen now"
        in text
    )
    order = review_json(plan, review)["rollout"]
    assert order == [
        {"orgId": "o1", "pipelineId": "p1", "requests": 1, "pauses": 1, "estimatedPauseSeconds": 17.5},
        {"orgId": "o1", "pipelineId": "p2", "requests": 2, "pauses": 0, "estimatedPauseSeconds": None},
    ]  # fewer requests first; p2 is STOPPED: apply never pauses it
    assert "**STOPPED** (blocks apply)" in md and "**RUNNING** (the merge pauses it)" in md


def test_config_changes_in_every_format(repo: Path) -> None:
    from reconciler.ledger import read
    from reconciler.manifests import load
    from reconciler.plan import build_plan, diff
    from reconciler.render.markdown import plan_markdown
    from reconciler.render.plan import Review, plan_text, review_json

    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    plan = build_plan(
        diff(load([str(repo / "manifests")]).manifests, read(str(repo / "applied-ledger.jsonl")))
    )
    line = "where credentials are sent for org o1: https://a with $K/$S -> https://<evil>/x with $K/$S"
    review = Review(config_changes=(line,))
    assert f"[red]Warning:[/red] this pull request changes {line}" in plan_text(plan, None, review)
    md = plan_markdown(plan, review=review)
    assert (
        md.startswith("> [!CAUTION]\n") and "https://\\<evil>/x with \\$K/\\$S" in md and "//<evil>" not in md
    )
    assert review_json(plan, review)["configChanges"] == [line]


def test_many_earlier_clears_are_one_line_per_manifest() -> None:
    from reconciler.plan.values import Recleared
    from reconciler.render.review import recleared_lines

    weekly = tuple(
        Recleared(
            "reset-w52",
            f"reset-w{i:02d}",
            800,
            f"2026-{1 + i // 5:02d}-0{1 + i % 5}",
            f"2026-{1 + i // 5:02d}-0{1 + i % 5}",
        )
        for i in range(52)
    )
    [line] = recleared_lines(weekly, "`")
    assert line.startswith(
        "`reset-w52`: these 800 cells were cleared by `reset-w51` on 2026-11-02 (and by 51 other"
    )
    assert "since 2026-01-01)" in line


@pytest.mark.parametrize(
    ("sizes", "limit", "advice"),
    [
        ([600, 600], 1000, "take it out of this change and merge it on its own"),
        ([100, 100, 100, 100], 250, "take them out of this change and merge them on their own"),
        ([900, 900, 900], 1000, "take them out of this change and merge them one at a time"),
        ([5000, 10], 1000, "split it into manifests of at most 1,000 cells, merged one at a time"),
    ],
)
def test_what_to_change_fits_the_sizes(sizes: list[int], limit: int, advice: str) -> None:
    from reconciler.plan.values import Policy
    from reconciler.render.review import policy_lines

    by = tuple((f"m{i}", n) for i, n in enumerate(sizes))
    lines = policy_lines(Policy(limit, False, sum(sizes), by))
    assert advice in lines[-1]
    assert lines[1].startswith("What makes it large: m0")


def test_the_comment_states_the_rollout_order(review_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: the reviewer sees the order apply pauses pipelines in (fewer requests first)
    and an estimate for each that counts the pause and the start, in markdown and JSON."""
    from reconciler.ledger import read
    from reconciler.manifests import load
    from reconciler.plan import PipelineRef, build_plan, diff
    from reconciler.render.markdown import plan_markdown
    from reconciler.render.plan import LiveStatus, Review, review_json

    monkeypatch.chdir(review_repo)
    loaded = load(["manifests"])
    plan = build_plan(diff(loaded.manifests, read("applied-ledger.jsonl")))
    statuses = {PipelineRef("o1", p): LiveStatus("RUNNING", "") for p in ("p1", "p2")}
    review = Review(policy=plan.policy(None, True), statuses=statuses, latency=0.5, concurrency=4)
    md = plan_markdown(plan, manifests=loaded, review=review)
    assert "- **In this order**, each paused just before its own first request" in md
    assert "`p1`, then `p2` (fewer requests first)." in md
    order = review_json(plan, dataclasses.replace(review, canary=False))["rollout"]
    assert [(r["pipelineId"], r["pauses"], r["estimatedPauseSeconds"]) for r in order] == [
        ("p1", 1, 2.5),  # 1 request + pause, start and their status reads: 5 calls at 0.5 s
        ("p2", 1, 2.5),
    ]
    order = review_json(plan, review)["rollout"]  # the canary on (the default): its reads count
    assert [(r["pipelineId"], r["estimatedPauseSeconds"]) for r in order] == [
        ("p1", 3.5),  # + its one request read, sent alone, read again: 7 calls
        ("p2", 5.0),  # two stages of one request each, a canary each: 10 calls
    ]


def test_every_format_says_the_pauses_json_counts(review_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trial: with maxPause splitting a pipeline, JSON said 11 pauses while text and
    markdown said one ("pauses it for its 300 requests ... then starts it again"), and the
    text plan never said the order. Every format now says each pipeline's pauses, in order,
    with the settings in force."""
    from reconciler.ledger import read
    from reconciler.manifests import load
    from reconciler.plan import PipelineRef, build_plan, diff
    from reconciler.render.markdown import plan_markdown
    from reconciler.render.plan import LiveStatus, Review, plan_text, review_json, status_text

    monkeypatch.chdir(review_repo)
    loaded = load(["manifests"])
    plan = build_plan(diff(loaded.manifests, read("applied-ledger.jsonl")))
    statuses = {PipelineRef("o1", p): LiveStatus("RUNNING", "") for p in ("p1", "p2")}
    review = Review(
        policy=plan.policy(None, True),
        statuses=statuses,
        latency=0.5,
        max_pause=0.2,
        max_paused=1,
        canary=False,
    )
    order = review_json(plan, review)["rollout"]
    assert [(r["pipelineId"], r["pauses"]) for r in order] == [("p1", 1), ("p2", 2)]
    text = plan_text(plan, review=review) + status_text(statuses, plan, review)
    assert "at most 1 paused at once, no pause longer than 0.2s; canary off." in text
    assert "1. o1 / p1: 1 request, 1 pause, about 2s" in text
    assert "2. o1 / p2: 2 requests, 2 pauses, about 2s each" in text
    assert "for its 2 requests in 2 pauses (maxPause), each about 2s" in text
    md = plan_markdown(plan, manifests=loaded, review=review)
    assert "apply pauses it for its 2 requests in 2 pauses (maxPause)" in md
    assert "  - 2\\. o1 / p2: 2 requests, 2 pauses, about 2s each" in md
    block = text[text.index("Rollout:") :].split("\n\n")[0].splitlines()
    assert len(block) == 4 and all(len(line) <= 120 for line in block), block
