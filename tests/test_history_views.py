"""Plan, `ledger show` and the HTML report say the same about what is in doubt (issue 27
"The audit views disagree with plan"), after a kill -9 and a re-run, and across a rename:
the real CLI as a process, killed while a request is in flight (as tests/test_crash.py
does), then the views compared."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from helpers import ORG, gateway_env, pipeline, run_cli, spawn_cli, world_for, write
from test_crash import signal_at_delete

from reconciler import ledger as L
from reconciler.ledger import history

ARGS = ["apply", "--auto-approve", "--pause-pipelines", "--max-assets", "1", "--concurrency", "1"]
ASSETS = [f"a{i:02d}" for i in range(6)]


def manifest(name: str, renamed_from: str | None = None) -> str:
    old = f"\n  renamedFrom: [{renamed_from}]" if renamed_from else ""
    return (
        f"apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata:\n  name: {name}{old}\n"
        f"spec:\n  orgId: {ORG}\n  pipelineId: p1\n  stageInstanceNames: [s1]\n"
        f"  assetIds: [{', '.join(ASSETS)}]\n  pointIds: [x, y]\n"
    )


def views(repo: Path) -> tuple[int, int, dict[str, bool]]:
    """Cells in doubt as plan counts them and as the report counts them, and for every
    asset whether `ledger show --asset` says it has a request in doubt."""
    plan = run_cli(["plan", "--format", "json"], repo)
    assert plan.code == 0, plan.all
    report = run_cli(["ledger", "report", "--out", "-"], repo)
    assert report.code == 0, report.all
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', report.out, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    shown = {}
    for a in ASSETS:
        show = run_cli(["ledger", "show", "--asset", a], repo)
        if show.code == 1 and "no record of" in show.err:  # never sent: nothing to say
            shown[a] = False
            continue
        assert show.code == 0, show.all
        shown[a] = "in doubt since" in show.out
    return json.loads(plan.out)["summary"]["inDoubtCells"], sum(r["cells"] for r in data["inDoubt"]), shown


def doubtful_assets(repo: Path) -> dict[str, bool]:
    records = L.read(repo / "applied-ledger.jsonl").records
    open_ = history.open_intents(records, aliases=history.recorded_aliases(records))
    return {a: any(a == cell[0] for _, cells in open_ for cell in cells) for a in ASSETS}


def kill_at_second_delete(repo: Path, em: Any) -> None:
    proc = spawn_cli(ARGS, repo, gateway_env(em), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signal_at_delete(em, proc, 2, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_kill_9_then_a_rerun_every_view_says_nothing_is_in_doubt(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest("a"))
    kill_at_second_delete(repo, em)
    # Killed with its second request in flight: plan, report and show agree it is in doubt.
    plan_doubt, report_doubt, shown = views(repo)
    assert plan_doubt == report_doubt == 2  # one asset x two points
    assert shown == doubtful_assets(repo) and sum(shown.values()) == 1
    # The re-run (the pipeline stayed paused) re-sends it and records it done.
    final = run_cli(ARGS, repo, gateway_env(em))
    assert final.code == 0, final.all
    # The issue: the report and `show --asset` still said "in doubt" here, pointing to a
    # `ledger resolve` that answered "nothing to resolve".
    assert views(repo) == (0, 0, dict.fromkeys(ASSETS, False))
    resolve = run_cli(["ledger", "resolve", "--auto-approve"], repo)
    assert resolve.code == 0 and "No in-doubt requests to resolve." in resolve.out


def test_after_a_rename_every_view_merges_the_old_name(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest("a"))
    kill_at_second_delete(repo, em)
    (repo / "manifests/a.yaml").unlink()
    write(repo / "manifests/b.yaml", manifest("b", renamed_from="a"))
    plan_doubt, report_doubt, shown = views(repo)
    assert plan_doubt == report_doubt == 2 and sum(shown.values()) == 1
    final = run_cli(ARGS, repo, gateway_env(em))
    assert final.code == 0, final.all
    records = L.read(repo / "applied-ledger.jsonl").records
    # b's records say which name they carry on, so the ledger alone merges the two.
    assert {
        r.data.get("renamedFrom") == ["a"] for r in records if r.kind == "intent" and r.manifest == "b"
    } == {True}
    assert views(repo) == (0, 0, dict.fromkeys(ASSETS, False))


def test_in_doubt_under_a_manifest_no_longer_declared_is_shown_and_resolve_settles_it(
    repo: Path, make_emulator: Any
) -> None:
    """The report and `show` list what the ledger holds in doubt, declared or not; their
    advice (`ledger resolve`) must then settle it, not answer "nothing to resolve"."""
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest("a"))
    kill_at_second_delete(repo, em)
    (repo / "manifests/a.yaml").unlink()
    write(repo / "manifests/z.yaml", manifest("z").replace("[s1]", "[s9]"))
    plan_doubt, report_doubt, shown = views(repo)
    assert (plan_doubt, report_doubt, sum(shown.values())) == (0, 2, 1)  # plan acts on declared cells only
    resolve = run_cli(["ledger", "resolve", "--auto-approve"], repo)
    assert resolve.code == 0 and "a / p1 / s1: 2 cells" in resolve.out, resolve.all
    assert "Recorded 1 in-doubt request as done." in resolve.out
    assert views(repo) == (0, 0, dict.fromkeys(ASSETS, False))
    (last,) = [r for r in L.read(repo / "applied-ledger.jsonl").records if r.resolved]
    assert last.manifest == "a"
