"""The scaffold's scheduled apply (issue 26, "a run that always happens"): GitHub's apply
workflow runs hourly on a schedule (actionlint checks it with every scaffolded workflow in
test_init); GitLab's schedule is run for real in test_gitlab_ci."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.scaffold import init


def test_the_github_apply_workflow_runs_hourly_on_a_schedule(tmp_path: Path) -> None:
    init(tmp_path, branch="main")
    flow = yaml.safe_load((tmp_path / ".github" / "workflows" / "reconcile-apply.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"] == [{"cron": "7 * * * *"}]
    assert "push" in triggers and "workflow_dispatch" in triggers
    job = flow["jobs"]["apply"]
    assert "if" not in job  # a scheduled run reaches the apply step
    steps = {s.get("name"): s for s in job["steps"]}
    assert "reconcile apply --auto-approve" in steps["Apply"]["run"]
    assert steps["Apply"]["env"]["RECONCILE_NOTIFY_URL"] == "${{ secrets.RECONCILE_NOTIFY_URL }}"
    script = steps["Tell the merged pull request what apply did"]["with"]["script"]
    assert 'context.eventName === "schedule"' in script
