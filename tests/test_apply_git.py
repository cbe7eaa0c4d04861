"""The whole `reconcile apply` with the ledger in git: real git, bare remotes, isolated HOME.

The outcomes of the CI issue: a stale checkout never re-clears; a merge that lands while
an apply runs keeps main's history and the ledger; a protected branch is a clear error;
and every cell is cleared exactly once.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    cell_fields,
    clone,
    gateway_env,
    git,
    kill_at_held_call,
    manifest_yaml,
    person,
    pipeline,
    remote_ledger,
    run_cli,
    spawn_cli,
    world_for,
    write,
)

from reconciler import ledger as L

CONFIG = LEDGER_IN_GIT.format(branch="main")


def make_origin(
    tmp_path: Path,
    config: str = CONFIG,
    manifests: dict[str, str] | None = None,
    *,
    ledger: bool = True,
) -> Path:
    """A bare `origin` whose main holds `manifests`, reconcile.yaml and (unless `ledger` is
    False) an empty ledger. Every update of its branches is logged (`branch_updates`)."""
    manifests = manifests or {"a": manifest_yaml("a", assets=["a1", "a2", "a3"], points=["x", "y"])}
    files = {"reconcile.yaml": config, **{f"manifests/{n}.yaml": t for n, t in manifests.items()}}
    if ledger:
        files[LEDGER] = ""
    return bare_origin(tmp_path, files, config={"core.logAllRefUpdates": "always"})


@pytest.fixture
def origin(tmp_path: Path, home: Path) -> Path:
    """A bare `origin` whose main holds a manifest, reconcile.yaml and an empty ledger."""
    return make_origin(tmp_path)


def test_a_stale_checkout_never_clears_again(origin: Path, tmp_path: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    first = clone(origin, tmp_path / "runner1")
    stale = clone(origin, tmp_path / "runner2", "--depth", "1")  # shallow, checked out before job 1 ran
    res = run_cli(["apply", "--auto-approve"], first, gateway_env(em))
    assert res.code == 0, res.all
    assert len(em.world.delete_log) == 1
    res = run_cli(["apply", "--auto-approve"], stale, gateway_env(em))
    assert res.code == 0, res.all
    assert "Nothing to apply." in res.out
    assert len(em.world.delete_log) == 1  # the second runner fast-forwarded its ledger first
    assert clears(em.world) == dict.fromkeys(cells("p1", ["s1"], ["a1", "a2", "a3"], ["x", "y"]), 1)
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"]
    assert run_cli(["plan", "--detailed-exitcode"], stale).code == 0


def test_a_merge_landing_during_apply_keeps_history_and_ledger(
    origin: Path, tmp_path: Path, make_emulator: Any
) -> None:
    em = make_emulator(world_for([pipeline()]))
    runner = clone(origin, tmp_path / "runner")
    dev = clone(origin, tmp_path / "dev")

    def merge(_world: Any, _entry: Any) -> None:  # PR 2 lands while job 1 is between its two pushes
        git(dev, "pull", "-q", "--rebase", "origin", "main", env=person())
        write(dev / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))
        git(dev, "add", ".", env=person())
        git(dev, "commit", "-qm", "PR 2", env=person())
        git(dev, "push", "-q", "origin", "HEAD:main", env=person())

    em.world.on_request("delete", before=merge)
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 0, res.all
    log = git(tmp_path, "--git-dir", str(origin), "log", "--format=%s", "main")
    assert "PR 2" in log and "seed" in log  # main's history keeps every merge
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"]
    # The next job applies PR 2's manifest only: each cell is cleared exactly once.
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0, res.all
    counts = clears(em.world)
    assert counts and set(counts.values()) == {1}


def test_a_protected_branch_is_a_clear_error_with_nothing_sent(
    origin: Path, tmp_path: Path, make_emulator: Any
) -> None:
    hook = origin / "hooks/pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GitLab: You are not allowed to push code to protected branches' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    em = make_emulator(world_for([pipeline()]))
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
    assert res.code == 1
    assert "protected" in res.err or "refused" in res.err
    assert "reconcile/ledger" in res.err  # the setting that fixes it
    assert em.world.delete_log == []  # the write-ahead push failed: nothing was sent
    # ... so its intents are gone from the local ledger too: the next run is not refused
    # for "records the remote lacks" that describe calls never made.
    assert (runner / "applied-ledger.jsonl").read_bytes() == b""


# --- helpers for the outcomes of issue 8 ----------------------------------------------------


def clears(world: Any) -> Counter[tuple[str, str, str, str]]:
    """How many times each cell (pipeline, stage, asset, point) was cleared."""
    return Counter(
        (e["pipelineId"], e["stage"], a, p)
        for e in world.delete_log
        for a in e["assets"]
        for p in e["points"]
    )


def cells(
    pid: str, stages: list[str], assets: list[str], points: list[str]
) -> set[tuple[str, str, str, str]]:
    return {(pid, s, a, p) for s, a, p in product(stages, assets, points)}


def branch_updates(origin: Path, branch: str = "main") -> list[str]:
    """Every value `branch` took on the remote, oldest first (its reflog)."""
    out = git(origin, "reflog", "show", "--format=%H", f"refs/heads/{branch}")
    return list(reversed(out.split()))


def assert_history_kept(origin: Path, branch: str = "main") -> None:
    """Every update of `branch` was a fast-forward: no commit was ever dropped (no force push)."""
    heads = branch_updates(origin, branch)
    assert heads
    for old, new in pairwise(heads):
        ok = subprocess.run(["git", "--git-dir", str(origin), "merge-base", "--is-ancestor", old, new])
        assert ok.returncode == 0, f"{branch} moved from {old[:12]} to {new[:12]}, not a fast-forward"


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def remote_kinds(origin: Path, tmp_path: Path, branch: str = "main") -> list[str]:
    return [r.kind for r in remote_ledger(origin, tmp_path, branch).records]


def plans_nothing(runner: Path) -> bool:
    return run_cli(["plan", "--detailed-exitcode"], runner).code == 0


# The runner killed below dies on this host: its lease is taken over at once (no wait).
PAUSING = CONFIG.replace("branch: main}", "branch: main, leaseSeconds: 30}") + (
    "apply: {pausePipelines: true, concurrency: 1}\n"
)
TWO_STAGES = manifest_yaml("a", stages=["s1", "s2"], assets=["a1", "a2", "a3"], points=["x", "y"])


# --- 1. kill -9 right after the write-ahead push, then a new runner -------------------------


def kill_while_held(origin: Path, tmp_path: Path, em: Any, held: str, remote_then: list[str]) -> None:
    """Runner 1 applies until the `held` call ("route:action") reaches the gateway, the
    remote's ledger then holds records `remote_then`, and it is killed with SIGKILL; the
    held call is let go and takes effect (as a call a dead runner sent would)."""
    hook = em.world.on_request(held, hold=True)
    route, _, action = held.partition(":")

    def is_held(e: dict[str, Any]) -> bool:
        return e["route"] == route and (not action or e["query"].get("action") == action)

    proc = spawn_cli(
        ["apply", "--auto-approve"],
        clone(origin, tmp_path / "runner1"),
        gateway_env(em),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def pushed_first() -> None:
        assert remote_kinds(origin, tmp_path) == remote_then

    kill_at_held_call(proc, em.world, hook, is_held, pushed_first)


@pytest.mark.slow(1.5)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
@pytest.mark.parametrize("held", ["operate:pause", "delete"])
def test_a_runner_killed_after_the_write_ahead_push_is_finished_by_a_new_runner(
    held: str, tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """The runner dies with its call in flight (the pause, or the first delete); its pause and
    intents are on the remote. A fresh clone finishes the job: the pipeline is started again,
    and no cell is cleared after it started (a re-sent in-doubt delete lands while paused)."""
    origin = make_origin(tmp_path, PAUSING, {"a": TWO_STAGES})
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    deletes_at_start: list[int] = []
    em.world.on_request(
        "operate:start", times=None, after=lambda w, _e: deletes_at_start.append(len(w.delete_log))
    )
    # The write-ahead is on the remote before the call it announces (invariant 11).
    kill_while_held(origin, tmp_path, em, held, ["pause", "intent", "intent"])
    assert em.world.status("p1") == "PAUSED"  # left paused by the dead runner
    first_run = clears(em.world)

    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert res.code == 0, res.all
    assert em.world.status("p1") == "RUNNING"  # started again
    assert deletes_at_start == [len(em.world.delete_log)]  # one start, and no delete after it
    counts = clears(em.world)
    assert set(counts) == cells("p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "y"])
    # Only the delete in flight when the runner died may be sent twice, both while paused.
    again = {c for c, n in counts.items() if n > 1}
    assert again == set(first_run) and max(counts.values()) <= 2
    assert em.world.violations == []
    kinds = remote_kinds(origin, tmp_path)  # verifies
    assert kinds[0] == "pause" and kinds[-1] == "resume"
    assert plans_nothing(clone(origin, tmp_path / "runner3"))
    assert_history_kept(origin)


def test_a_runner_killed_while_starting_never_re_clears_nor_starts_what_a_person_paused(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """The runner dies with its start call in flight, before its final push: the remote holds
    its `start` (pushed before the call, invariant 11). The start lands, a person pauses the
    pipeline, and the re-run neither re-sends the cleared cells nor starts the pipeline."""
    origin = make_origin(tmp_path, PAUSING, {"a": TWO_STAGES})
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    kinds = ["pause", "intent", "intent", "delete", "delete", "start"]  # `start` before the call
    kill_while_held(origin, tmp_path, em, "operate:start", kinds)
    first = clears(em.world)
    em.world.set_status("p1", "PAUSED")  # a person pauses it after the start landed
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
    assert clears(em.world) == first  # nothing cleared again: the pipeline may have run since
    assert em.world.status("p1") == "PAUSED"  # and not started: a person paused it
    assert "announced its start" in res.all and "start it in the EnOS console" in res.all
    assert em.world.violations == []


# --- 2. two applies racing for the same branch ----------------------------------------------

RACE_STAGES = ["s1", "s2", "s3", "s4"]
RACE = manifest_yaml("a", stages=RACE_STAGES, assets=["a1", "a2", "a3"], points=["x", "y"])
RACE_CONFIG = CONFIG + "apply: {concurrency: 1}\n"


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def assert_race_outcome(origin: Path, tmp_path: Path, em: Any, runs: list[tuple[int, str]]) -> None:
    for code, text in runs:
        assert code == 0, text
    counts = clears(em.world)
    assert set(counts) == cells("p1", RACE_STAGES, ["a1", "a2", "a3"], ["x", "y"])
    assert set(counts.values()) == {1}, (
        f"cleared more than once: {sorted(c for c, n in counts.items() if n > 1)}"
    )
    remote_ledger(origin, tmp_path)  # verifies
    assert plans_nothing(clone(origin, tmp_path / "after"))
    assert_history_kept(origin)


def hold_each_status_read(em: Any) -> list[Any]:
    """Hold the first and the second List Pipelines the emulator gets: two applies that have
    both synced and planned, stopped before their write-ahead."""
    return [em.world.on_request("list", hold=True), em.world.on_request("list", hold=True, skip=1)]


def lists(em: Any) -> int:
    return sum(1 for e in em.world.log if e["route"] == "list")


def spawn_apply(runner: Path, em: Any) -> subprocess.Popen[str]:
    return spawn_cli(
        ["apply", "--auto-approve"], runner, gateway_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_racing_applies_the_loser_replans_and_finds_nothing(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Two runners plan on the same ledger; the first finishes; the second's write-ahead push
    loses the compare-and-swap, so it re-plans on the new ledger and sends nothing."""
    origin = make_origin(tmp_path, RACE_CONFIG, {"a": RACE})
    em = make_emulator(world_for([pipeline(stages=tuple(RACE_STAGES))]))
    first, second = hold_each_status_read(em)
    procs = [spawn_apply(clone(origin, tmp_path / f"runner{i}"), em) for i in (1, 2)]
    try:
        em.world.wait_for(lambda _e: lists(em) >= 2, timeout=60)  # both planned from seq 0
        first.release()
        wait_until(lambda: "delete" in remote_kinds(origin, tmp_path))  # the winner is done
        assert len(em.world.delete_log) == len(RACE_STAGES)
    finally:
        first.release()
        second.release()
    runs = [finish(p) for p in procs]
    assert_race_outcome(origin, tmp_path, em, runs)
    assert any("Re-planning" in text for _code, text in runs), runs  # the loser said why it re-planned
    assert remote_kinds(origin, tmp_path) == ["intent"] * 4 + ["delete"] * 4  # the loser added nothing


def test_the_loser_of_a_race_sends_what_is_left_on_the_gateway_session_it_has(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Runner 1 applies manifest a alone, runner 2 both: runner 2 loses the compare-and-swap,
    re-plans on the ledger runner 1 pushed and sends b alone, through the gateway session it
    already had (review R2: a session per attempt fetched a second token)."""
    b = manifest_yaml("b", stages=["s1"], assets=["b1"], points=["x"])
    origin = make_origin(tmp_path, RACE_CONFIG, {"a": RACE, "b": b})
    em = make_emulator(world_for([pipeline(stages=tuple(RACE_STAGES))]))
    first, second = hold_each_status_read(em)
    one = spawn_cli(
        ["apply", "--auto-approve", "--target", "a"],
        clone(origin, tmp_path / "runner1"),
        gateway_env(em),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    procs = [one]
    try:
        em.world.wait_for(lambda _e: lists(em) >= 1, timeout=60)  # runner 1's read is the first held
        procs.append(spawn_apply(clone(origin, tmp_path / "runner2"), em))
        em.world.wait_for(lambda _e: lists(em) >= 2, timeout=60)  # both planned from seq 0
        first.release()
        wait_until(lambda: "delete" in remote_kinds(origin, tmp_path))  # runner 1 is done
    finally:
        first.release()
        second.release()
    (code1, text1), (code2, text2) = [finish(p) for p in procs]
    assert code1 == 0 and code2 == 0, text1 + text2
    assert "Re-planning" in text2 and "1 cell cleared" in text2, text2
    counts = clears(em.world)
    assert set(counts) == cells("p1", RACE_STAGES, ["a1", "a2", "a3"], ["x", "y"]) | cells(
        "p1", ["s1"], ["b1"], ["x"]
    )
    assert set(counts.values()) == {1}
    assert em.world.token_calls == ["get", "get"]  # one token per apply


GATE = """#!/bin/sh
# Every push waits here until the test opens the gate: two pushes meet at the remote.
touch "{marks}/push.$$"
while [ ! -e "{gate}" ]; do sleep 0.02; done
exit 0
"""


@pytest.mark.slow(3)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_racing_write_ahead_pushes_that_meet_at_the_remote(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Both runners push their write-ahead at the same moment: the remote takes one; the other
    is the loser of the compare-and-swap, not a protected branch."""
    origin = make_origin(tmp_path, RACE_CONFIG, {"a": RACE})
    marks, gate = tmp_path / "marks", tmp_path / "gate"
    marks.mkdir()
    hook = origin / "hooks/pre-receive"
    hook.write_text(GATE.format(marks=marks, gate=gate))
    hook.chmod(0o755)
    em = make_emulator(world_for([pipeline(stages=tuple(RACE_STAGES))]))
    held = hold_each_status_read(em)
    # The loser's re-plan reads statuses once more: held until the winner is done, so that it
    # meets a ledger that moved again (this test is about the push, not about live intents).
    replan = em.world.on_request("list", hold=True, skip=2)
    procs = [spawn_apply(clone(origin, tmp_path / f"runner{i}"), em) for i in (1, 2)]
    try:
        em.world.wait_for(lambda _e: lists(em) >= 2, timeout=60)  # both planned from seq 0
        for h in held:
            h.release()
        wait_until(lambda: len(list(marks.iterdir())) >= 2)  # both write-aheads at the remote
        gate.touch()
        wait_until(lambda: "delete" in remote_kinds(origin, tmp_path))  # the winner is done
    finally:
        gate.touch()
        for h in [*held, replan]:
            h.release()
    runs = [finish(p) for p in procs]
    assert_race_outcome(origin, tmp_path, em, runs)
    assert any("Re-planning" in text for _code, text in runs), runs
    assert remote_kinds(origin, tmp_path) == ["intent"] * 4 + ["delete"] * 4


def test_an_apply_started_while_another_holds_a_delete_sends_only_what_is_left(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Job 2 starts while job 1's first delete is in flight: job 1's intents are on the remote
    with no delete after them, yet job 1 is alive. Job 2 must not send them too."""
    origin = make_origin(tmp_path, RACE_CONFIG, {"a": RACE})
    em = make_emulator(world_for([pipeline(stages=tuple(RACE_STAGES))]))
    hook = em.world.on_request("delete", hold=True)
    first = spawn_apply(clone(origin, tmp_path / "runner1"), em)
    runner2 = clone(origin, tmp_path / "runner2")
    try:
        em.world.wait_for(lambda e: e["route"] == "delete", timeout=60)
        # Job 1's lease is live: job 2 does not take its announced requests for in doubt.
        refused = run_cli(["apply", "--auto-approve", "--lock-timeout", "0"], runner2, gateway_env(em))
        assert refused.code == 1 and "another apply holds the ledger on the remote" in refused.err
        assert len(em.world.delete_log) == 0  # job 2 sent nothing; job 1's first delete is held
    finally:
        hook.release()
    first_run = finish(first)
    second = run_cli(["apply", "--auto-approve"], runner2, gateway_env(em))  # after job 1
    assert_race_outcome(origin, tmp_path, em, [first_run, (second.code, second.all)])


# --- 3. the dedicated ledger branch -------------------------------------------------------

DEDICATED = CONFIG.replace("branch: main", "branch: reconcile/ledger")


def remote_head(origin: Path, branch: str = "main") -> str:
    return git(origin, "rev-parse", f"refs/heads/{branch}")


def test_the_dedicated_ledger_branch_leaves_main_alone_and_plan_reads_it(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    origin = make_origin(tmp_path, DEDICATED)
    main = remote_head(origin)
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner1"), gateway_env(em))
    assert res.code == 0, res.all
    assert remote_head(origin) == main  # main untouched: no bot commit on a protected branch
    assert remote_kinds(origin, tmp_path, "reconcile/ledger") == ["intent", "delete"]  # created, verifies
    # A fresh clone of main has main's (empty) ledger; plan reads the ledger's branch.
    fresh = clone(origin, tmp_path / "runner2")
    assert (fresh / "applied-ledger.jsonl").read_text() == ""
    assert plans_nothing(fresh)
    # A second apply from main sends nothing and updates only the ledger's branch.
    res = run_cli(["apply", "--auto-approve"], fresh, gateway_env(em))
    assert res.code == 0, res.all
    assert "Nothing to apply." in res.out
    # A new manifest merged to main is applied once; the ledger's branch grows.
    dev = clone(origin, tmp_path / "dev")
    write(dev / "manifests/b.yaml", manifest_yaml("b", assets=["b1"]))
    git(dev, "add", ".", env=person())
    git(dev, "commit", "-qm", "PR 2", env=person())
    git(dev, "push", "-q", "origin", "HEAD:main", env=person())
    main = remote_head(origin)
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0, res.all
    assert remote_head(origin) == main
    assert remote_kinds(origin, tmp_path, "reconcile/ledger") == ["intent", "delete"] * 2
    counts = clears(em.world)
    assert set(counts) == cells("p1", ["s1"], ["a1", "a2", "a3"], ["x", "y"]) | cells(
        "p1", ["s1"], ["b1"], ["pt1"]
    )
    assert set(counts.values()) == {1}
    assert plans_nothing(clone(origin, tmp_path / "runner4"))
    assert_history_kept(origin, "reconcile/ledger")
    assert_history_kept(origin)


# --- 4. a missing ledger with git sync --------------------------------------------------------


@pytest.mark.parametrize("how", ["not in the repository", "mistyped --ledger"])
def test_a_missing_ledger_with_git_sync_is_refused_with_nothing_sent(
    how: str, tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    origin = make_origin(tmp_path, ledger=how != "not in the repository")
    main = remote_head(origin)
    em = make_emulator(world_for([pipeline()]))
    args = ["apply", "--auto-approve"] + (
        ["--ledger", "applied_ledger.jsonl"] if how.startswith("mis") else []
    )
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(args, runner, gateway_env(em))
    assert res.code == 1, res.all
    expected = "is not the ledger reconcile.yaml keeps in git" if how.startswith("mis") else "does not exist"
    assert expected in res.err and "nothing was sent" in res.err
    assert ("Drop --ledger (or pass that file)" in res.err) == how.startswith("mis")  # the hint, in CLI words
    assert em.world.delete_log == []
    assert [e for e in em.world.log if e["route"] in ("delete", "operate")] == []
    assert remote_head(origin) == main  # nothing pushed either
    ledger = args[-1] if how.startswith("mis") else "applied-ledger.jsonl"
    assert not (runner / ledger).exists()  # and no ledger file conjured up


# --- 5. two merges close together -------------------------------------------------------------


@pytest.mark.parametrize("job2_checkout", ["latest main", "its trigger commit"])
def test_two_merges_close_together_clear_each_cell_once(
    job2_checkout: str, tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Job 1 applies PR 1 while PR 2 lands; job 2 then runs (on main's head once job 1 is
    done, or on PR 2's merge commit, checked out while job 1 was still running)."""
    origin = make_origin(tmp_path, CONFIG, {"a": TWO_STAGES})
    em = make_emulator(world_for([pipeline()]))
    dev = clone(origin, tmp_path / "dev")
    job1 = clone(origin, tmp_path / "job1")
    job2 = tmp_path / "job2"

    def pr2_lands(_world: Any, _entry: Any) -> None:
        git(dev, "pull", "-q", "--rebase", "origin", "main", env=person())
        write(dev / "manifests/b.yaml", manifest_yaml("b", stages=["s1", "s2"], assets=["b1", "b2"]))
        git(dev, "add", ".", env=person())
        git(dev, "commit", "-qm", "PR 2", env=person())
        git(dev, "push", "-q", "origin", "HEAD:main", env=person())
        if job2_checkout == "its trigger commit":
            clone(origin, job2)

    em.world.on_request("delete", before=pr2_lands)
    res = run_cli(["apply", "--auto-approve"], job1, gateway_env(em))
    assert res.code == 0, res.all
    job1_clears = clears(em.world)
    assert set(job1_clears) == cells("p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "y"])
    if job2_checkout == "latest main":
        clone(origin, job2)
    res = run_cli(["apply", "--auto-approve"], job2, gateway_env(em))
    assert res.code == 0, res.all
    counts = clears(em.world)
    want = cells("p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "y"]) | cells(
        "p1", ["s1", "s2"], ["b1", "b2"], ["pt1"]
    )
    assert set(counts) == want
    assert set(counts.values()) == {1}  # PR 1's cells once, PR 2's once
    log = git(origin, "log", "--format=%s", "main")
    assert "PR 2" in log and "seed" in log
    assert remote_kinds(origin, tmp_path) == ["intent", "intent", "delete", "delete"] * 2
    assert plans_nothing(clone(origin, tmp_path / "after"))
    assert_history_kept(origin)


def test_ledger_resolve_pushes_its_records(origin: Path, tmp_path: Path) -> None:
    seed = clone(origin, tmp_path / "seed2")
    with L.LedgerWriter(L.read(seed / "applied-ledger.jsonl")) as w:  # a request left in doubt
        w.append("intent", cell_fields())
    git(seed, "commit", "-qam", "in doubt", env=person())
    git(seed, "push", "-q", "origin", "HEAD:main", env=person())
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(["ledger", "resolve", "--auto-approve"], runner)
    assert res.code == 0 and "Recorded 1 in-doubt request as done." in res.out, res.all
    led = remote_ledger(origin, tmp_path)
    assert [r.kind for r in led.records] == ["intent", "delete"] and led.records[-1].data["resolved"] is True


def test_ledger_verify_refuses_a_missing_file(tmp_path: Path) -> None:
    res = run_cli(["ledger", "verify", "--ledger", "nope.jsonl"], tmp_path)
    assert res.code == 1 and "nope.jsonl does not exist: nothing to verify\nCheck --ledger," in res.err


def test_ledger_resolve_waits_for_a_live_apply(origin: Path, tmp_path: Path) -> None:
    from reconciler.gitsync import LedgerRepo

    live = clone(origin, tmp_path / "live")
    repo = LedgerRepo(live, "applied-ledger.jsonl")
    repo.sync()
    with L.LedgerWriter(L.read(live / "applied-ledger.jsonl")) as w:  # its request is in flight
        w.append("intent", cell_fields())
    repo.publish("reconcile: write-ahead")  # with its lease
    res = run_cli(["ledger", "resolve", "--auto-approve"], clone(origin, tmp_path / "person"))
    assert res.code == 1 and "another apply is sending from this ledger" in res.err
    assert [r.kind for r in remote_ledger(origin, tmp_path).records] == ["intent"]


# --- 1b. kill -9 on a workstation, then apply again in the same clone ------------------------

SIX_REQUESTS = ["apply", "--auto-approve", "--max-assets", "1"]  # 2 stages x 3 assets


def nth_delete(em: Any, n: int) -> dict[str, Any] | None:
    """The log entry of the gateway's `n`th delete request (from 0), once it arrived."""
    found = [e for e in em.world.log if e["route"] == "delete"]
    return found[n] if len(found) > n else None


def kill_at_delete(runner: Path, em: Any, skip: int) -> None:
    """Apply in `runner` until delete `skip + 1` reaches the gateway, then SIGKILL it; the
    held delete takes effect (as a call a dead runner sent would)."""
    hook = em.world.on_request("delete", hold=True, skip=skip)
    proc = spawn_cli(
        SIX_REQUESTS, runner, gateway_env(em), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_at_held_call(proc, em.world, hook, lambda e: nth_delete(em, skip) is e)


def test_a_workstation_killed_mid_apply_publishes_its_deletes_and_starts_the_pipeline(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """The user's report: apply killed (SIGKILL) on a workstation after some deletes succeeded,
    their `delete` records written locally but not yet pushed. The next apply in the same
    clone publishes them (they extend the remote's ledger, and the lease's holder is a dead
    process on this host: the records are that run's), re-sends only the delete in flight,
    starts the pipeline and says how long it had been paused."""
    origin = make_origin(tmp_path, PAUSING, {"a": TWO_STAGES})
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    ws = clone(origin, tmp_path / "ws")
    kill_at_delete(ws, em, skip=2)
    assert em.world.status("p1") == "PAUSED"
    local = [r.kind for r in L.read(ws / LEDGER).records]
    assert local.count("delete") == 2 and remote_kinds(origin, tmp_path).count("delete") < 2
    first = clears(em.world)

    res = run_cli(SIX_REQUESTS, ws, gateway_env(em))
    assert res.code == 0, res.all
    assert em.world.status("p1") == "RUNNING"
    counts = clears(em.world)
    assert set(counts) == cells("p1", ["s1", "s2"], ["a1", "a2", "a3"], ["x", "y"])
    again = {c for c, n in counts.items() if n > 1}
    assert len(again) <= 2 and again <= set(first)  # only the delete in flight (its two points)
    assert remote_kinds(origin, tmp_path).count("delete") == 6
    pause_at = next(r.at for r in L.read(ws / LEDGER).records if r.kind == "pause")
    assert f"since {pause_at}" in res.out and "(by an earlier" in res.out, res.out  # how long it was paused
    assert em.world.violations == []
    assert plans_nothing(clone(origin, tmp_path / "check"))
    assert_history_kept(origin)


def test_the_printed_fix_works_when_pasted_and_names_what_is_still_paused(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """A workstation killed mid-apply, then a person settled its requests from another clone
    (`ledger resolve`): the workstation's ledger and the remote's each hold records the other
    lacks, which is refused, naming the pipeline still paused. The command the refusal
    prints, pasted into a shell in that clone, lets the next apply run, and it starts it."""
    origin = make_origin(tmp_path, PAUSING, {"a": TWO_STAGES})
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    ws = clone(origin, tmp_path / "ws")
    kill_at_delete(ws, em, skip=2)
    settled = run_cli(["ledger", "resolve", "--auto-approve"], clone(origin, tmp_path / "person"))
    assert settled.code == 0, settled.all
    refused = run_cli(SIX_REQUESTS, ws, gateway_env(em))
    assert refused.code == 1 and "Take the remote's ledger" in refused.err, refused.all
    pause_at = next(r.at for r in L.read(ws / LEDGER).records if r.kind == "pause")
    assert (
        f"Still PAUSED by an earlier run, and on record on the remote: o1/p1 (since {pause_at})"
        in refused.err
    )
    assert em.world.status("p1") == "PAUSED"
    command = refused.err.split("Take the remote's ledger (", 1)[1].split(");", 1)[0]
    pasted = subprocess.run(["bash", "-c", command], cwd=ws, capture_output=True, text=True)
    assert pasted.returncode == 0, pasted.stderr
    sent = len(em.world.delete_log)
    res = run_cli(SIX_REQUESTS, ws, gateway_env(em))
    assert res.code == 0, res.all
    assert len(em.world.delete_log) == sent  # the person recorded the rest as done
    assert em.world.status("p1") == "RUNNING"
