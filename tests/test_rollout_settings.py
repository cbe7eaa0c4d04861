"""The rollout's budget as a user sets it: `apply.rollout` in reconcile.yaml and the
`--max-paused` / `--max-pause` flags reach the run (the real CLI, the emulator over
loopback), and bad values are refused naming the file, line and field, or the flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

HEAD = "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\n"


def paused_at_once(em: Any) -> int:
    """The most pipelines the gateway saw paused at the same time."""
    paused: set[str] = set()
    most = 0
    for e in em.world.log:
        if e["route"] == "operate" and e["code"] == 0:
            pid = e["path"].rsplit("/", 1)[-1]
            if e["query"]["action"] == "pause":
                paused.add(pid)
            else:
                paused.discard(pid)
        most = max(most, len(paused))
    return most


def three_running(repo: Path, make_emulator: Any) -> Any:
    em = make_emulator(world_for([pipeline(p, status="RUNNING") for p in ("p1", "p2", "p3")]))
    for p in ("p1", "p2", "p3"):
        write(repo / f"manifests/{p}.yaml", manifest_yaml(f"m-{p}", pipeline=p, assets=["a1"], points=["x"]))
    return em


def test_apply_rollout_max_paused_in_reconcile_yaml_is_kept(repo: Path, make_emulator: Any) -> None:
    em = three_running(repo, make_emulator)
    write(
        repo / "reconcile.yaml",
        HEAD + "apply:\n  pausePipelines: true\n  rollout: {maxPaused: 1, maxPause: 30m}\n",
    )
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 0, res.all
    assert paused_at_once(em) == 1
    assert {em.world.status(p) for p in ("p1", "p2", "p3")} == {"RUNNING"}


def test_the_flag_wins_over_reconcile_yaml(repo: Path, make_emulator: Any) -> None:
    em = three_running(repo, make_emulator)
    write(repo / "reconcile.yaml", HEAD + "apply:\n  pausePipelines: true\n  rollout: {maxPaused: 1}\n")
    res = run_cli(
        ["apply", "--auto-approve", "--max-paused", "3", "--concurrency", "1"], repo, gateway_env(em)
    )
    assert res.code == 0, res.all
    assert paused_at_once(em) > 1  # the budget of 3 lets a second pipeline in while one is paused


def test_bad_rollout_settings_are_refused_before_any_call(repo: Path, make_emulator: Any) -> None:
    em = three_running(repo, make_emulator)
    write(repo / "reconcile.yaml", HEAD + "apply:\n  rollout:\n    maxPause: 25h\n")
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 1
    assert "reconcile.yaml:6:15" in res.err and "23h" in res.err, res.err
    write(repo / "reconcile.yaml", HEAD + "apply:\n  rollout: {maxPaused: 0}\n")
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 1 and "reconcile.yaml:5" in res.err and "maxPaused" in res.err, res.err
    write(repo / "reconcile.yaml", HEAD + "apply:\n  pausePipelines: true\n")
    res = run_cli(["apply", "--auto-approve", "--max-pause", "soon"], repo, gateway_env(em))
    assert res.code == 1 and "--max-pause" in res.err and "Traceback" not in res.all, res.all
    assert em.world.log == []  # nothing was asked of the gateway


def test_plan_previews_the_rollout_flags_apply_takes(repo: Path, make_emulator: Any) -> None:
    """The trial: `plan --max-pause 1s` was 'No such option', so an apply run with those
    flags could not be previewed. The plan takes them and says the settings in force;
    reconcile.yaml's when no flag is given; bad values refused as apply refuses them."""
    three_running(repo, make_emulator)
    write(repo / "reconcile.yaml", HEAD + "apply:\n  pausePipelines: true\n  rollout: {maxPaused: 3}\n")
    res = run_cli(["plan"], repo)
    assert res.code == 0 and "at most 3 paused at once, no pause longer than 1h; canary on." in res.out, (
        res.all
    )
    assert "1. o1 / p1: 1 request, 1 pause" in res.out
    res = run_cli(["plan", "--max-paused", "1", "--max-pause", "90s", "--no-canary"], repo)
    assert res.code == 0 and "at most 1 paused at once, no pause longer than 1m30s; canary off." in res.out, (
        res.all
    )
    for bad, said in (
        (["--max-paused", "0"], "--max-paused: 0 is out of range"),
        (["--max-pause", "x"], "--max-pause"),
    ):
        res = run_cli(["plan", *bad], repo)
        assert res.code == 1 and said in res.err, res.all


def test_a_bad_max_pause_suggests_only_values_it_takes(repo: Path) -> None:
    """The trial: the error suggested `1d`, which is always refused (over 23h)."""
    for where in ("flag", "reconcile.yaml"):
        if where == "flag":
            res = run_cli(["plan", "--max-pause", "soon"], repo)
        else:
            write(repo / "reconcile.yaml", HEAD + "apply:\n  rollout: {maxPause: soon}\n")
            res = run_cli(["plan"], repo)
        assert res.code == 1 and "'soon' is not a duration" in res.err, res.all
        suggested = res.err.split("write it as ", 1)[1].split()
        examples = [w.strip(",") for w in suggested if w[0].isdigit()]
        assert examples and "1d" not in examples, res.err
        for example in examples:  # every one is taken
            (repo / "reconcile.yaml").unlink(missing_ok=True)
            res = run_cli(["plan", "--max-pause", example], repo)
            assert res.code == 0, (example, res.all)
