"""The five holes of issue 29, each reproduced with real git, a bare origin and the emulator,
counting the deletes each cell got (DESIGN "The ledger in git (CI)"; invariants 9-14).

1. restore never cuts: an anchor moved by a third party is reported, never restored over
   the branch's history;
2. one writer whatever the host: a holder in another PID namespace is waited out;
3. the lease is checked right before each delete, after the snapshot read (SIGSTOP);
4. a bare `start` record on a PAUSED pipeline is never left behind exit 0;
5. one bound for `ledger.git.leaseSeconds`, and a lease outside it never bricks the repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    clone,
    gateway_env,
    git,
    manifest_yaml,
    person,
    pipeline,
    remote_bytes,
    remote_ledger,
    run_cli,
    spawn_cli,
    world_for,
)
from helpers.cli import cli_env
from test_apply_git import (
    CONFIG,
    RACE,
    RACE_STAGES,
    cells,
    clears,
    finish,
    make_origin,
    remote_kinds,
    wait_until,
)

from reconciler.config import LEASE_SECONDS_MAX
from reconciler.gitsync import LedgerRepo
from reconciler.gitsync.lease import Lease, this_host

LEASE_PATH = LEDGER + ".lease"


def remote_lease(origin: Path) -> dict[str, Any] | None:
    proc = subprocess.run(
        ["git", "--git-dir", str(origin), "cat-file", "blob", f"main:{LEASE_PATH}"],
        capture_output=True,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def plant_lease(origin: Path, where: Path, lease: dict[str, Any]) -> None:
    """A lease on the remote as a run of reconcile pushes it (branch and anchor moved together
    by the one compare-and-swap): what an older version, or a runner that died, leaves."""
    repo = LedgerRepo(clone(origin, where), LEDGER)
    state = repo._read()
    data = json.dumps(lease, sort_keys=True).encode() + b"\n"
    after = repo.remote.publish("main", state, {LEASE_PATH: data}, "reconcile: write-ahead", LEDGER)
    assert after is not None


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def old_lease(seconds: float, **kw: Any) -> dict[str, Any]:
    return {
        "run": "0" * 32,
        "user": "ci",
        "host": this_host()[0],
        "pid": dead_pid(),
        "since": "2026-12-01T00:00:00Z",
        "renewal": 3,
        "seconds": seconds,
        **kw,
    }


# --- 5. one bound per setting ------------------------------------------------------------------


def test_a_lease_longer_than_the_bound_is_refused_where_the_setting_is_read(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    config = CONFIG.replace("branch: main}", "branch: main, leaseSeconds: 100000}")
    origin = make_origin(tmp_path, config)
    em = make_emulator(world_for([pipeline()]))
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner"), gateway_env(em))
    assert res.code == 1, res.all
    assert "leaseSeconds" in res.err and f"{LEASE_SECONDS_MAX}" in res.err.replace(",", "")
    assert "reconcile.yaml" in res.err and "Traceback" not in res.all
    assert em.world.delete_log == [] and remote_lease(origin) is None  # nothing sent, nothing written


def test_a_lease_out_of_bounds_on_the_remote_never_bricks_the_repository(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """An older version wrote a 100000 s lease and its runner died. Reading it must not fail
    every later apply (nor restore): it is read as the bound. Its holder is provably dead
    here (same host, boot and PID namespace), so it is taken over at once; without that
    proof it is waited out, at most the bound."""
    origin = make_origin(tmp_path)
    em = make_emulator(world_for([pipeline()]))
    _host, boot, pidns = this_host()
    plant_lease(origin, tmp_path / "old", old_lease(100000, boot="", pidns=""))  # no proof of death
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(["apply", "--auto-approve", "--lock-timeout", "0"], runner, gateway_env(em))
    assert res.code == 1 and "another apply holds the ledger on the remote" in res.err, res.all
    assert "not one reconcile writes" not in res.all and em.world.delete_log == []
    assert run_cli(["plan"], runner).code == 0  # plan reads it too
    assert run_cli(["ledger", "restore", "--auto-approve"], runner).code == 0  # and restore

    plant_lease(origin, tmp_path / "old2", old_lease(100000, boot=boot, pidns=pidns))
    res = run_cli(["apply", "--auto-approve", "--lock-timeout", "0"], runner, gateway_env(em))
    assert res.code == 0, res.all
    assert set(clears(em.world).values()) == {1} and remote_lease(origin) is None
    assert remote_kinds(origin, tmp_path) == ["intent", "delete"]


# --- 2. one writer, whatever the host -------------------------------------------------------------


def free_pid() -> int:
    """The lowest pid above 2 that no process of this namespace has: the pid the holder gets
    in its new PID namespace, so that here it looks like a process that died."""
    pid = 3
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root")
def test_a_live_holder_in_another_pid_namespace_on_this_host_is_waited_out(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Docker --network host, a pod with hostNetwork, GitLab's docker executor with
    network_mode: host: two runners with one host name, each in its own PID namespace.
    The holder's pid names no process here, yet it runs: it is never taken over at once."""
    origin = make_origin(tmp_path, CONFIG + "apply: {concurrency: 1}\n", {"a": RACE})
    em = make_emulator(world_for([pipeline(stages=tuple(RACE_STAGES))]))
    hook = em.world.on_request("delete", hold=True)
    pid = free_pid()
    burn = f'i=2; while [ $i -lt {pid} ]; do /bin/true; i=$((i+1)); done; "$0" "$@"'
    unshare = ["unshare", "--pid", "--fork", "sh", "-c", burn]
    holder = subprocess.Popen(
        [*unshare, sys.executable, "-m", "reconciler", "apply", "--auto-approve"],
        cwd=clone(origin, tmp_path / "runner1"),
        env=cli_env(gateway_env(em)),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    runner2 = clone(origin, tmp_path / "runner2")
    try:
        em.world.wait_for(lambda e: e["route"] == "delete", timeout=60)
        lease = remote_lease(origin)
        assert lease is not None and lease["pid"] == pid and not Path(f"/proc/{pid}").exists()
        assert lease["host"] == this_host()[0] and lease["boot"] == this_host()[1]
        assert lease["pidns"] != this_host()[2]  # the one thing that tells them apart
        # judged at its first look: a holder taken for dead would be taken over there and then
        refused = run_cli(["apply", "--auto-approve", "--lock-timeout", "0"], runner2, gateway_env(em))
        assert refused.code == 1 and "another apply holds the ledger on the remote" in refused.err
        assert len(em.world.delete_log) == 0  # runner 2 sent nothing; runner 1's delete is held
    finally:
        hook.release()
    code, text = finish(holder)
    assert code == 0, text
    again = run_cli(["apply", "--auto-approve"], runner2, gateway_env(em))
    assert again.code == 0 and "Nothing to apply." in again.out, again.all
    counts = clears(em.world)
    assert set(counts) == cells("p1", RACE_STAGES, ["a1", "a2", "a3"], ["x", "y"])
    assert set(counts.values()) == {1}


def test_only_a_provably_dead_holder_is_taken_over_at_once() -> None:
    host, boot, pidns = this_host()
    dead = dead_pid()

    def lease(**kw: Any) -> Lease:
        fields = {"host": host, "boot": boot, "pidns": pidns, "pid": dead, **kw}
        return Lease("run", "ci", since="2026-12-05T00:00:00Z", renewal=0, seconds=30.0, **fields)

    assert lease().on_this_host_and_dead()
    assert not lease(pid=1).on_this_host_and_dead()  # pid 1 lives
    assert not lease(pidns="0:1").on_this_host_and_dead()  # another container with our name
    assert not lease(boot="another-boot").on_this_host_and_dead()  # the host rebooted, or another VM
    assert not lease(boot="", pidns="").on_this_host_and_dead()  # an older lease: no proof
    assert not lease(host="elsewhere").on_this_host_and_dead()


# --- 3. the lease checked right before each delete, after the read before it ----------------------

STOPPABLE = CONFIG.replace("branch: main}", "branch: main, leaseSeconds: 6}") + (
    "apply: {pausePipelines: true, concurrency: 1}\n"
)
STOP_STAGES = ["s1", "s2", "s3"]
STOP_MANIFEST = manifest_yaml("a", stages=STOP_STAGES, assets=["a1", "a2"], points=["x", "y"])


def stage_read(stage: str) -> Any:
    return lambda e: e["route"] == "get" and (e["body"] or {}).get("stageInstanceName") == stage


# Runner 1 is stopped while the renewal push carrying s1's delete has landed at the remote
# and is not yet answered (the push's client waits for this hook): once the test has written
# the runner's pid, when its read of s2 is held. The push is held until the gate opens.
STOP_MID_PUSH = """#!/bin/sh
if [ -e "{armed}" ] && git cat-file blob main:applied-ledger.jsonl | grep -q '"kind":"delete"'; then
  rm -f "{armed}"
  n=0; while [ ! -s "{pidfile}" ] && [ $n -lt 3000 ]; do sleep 0.02; n=$((n+1)); done
  kill -STOP "$(cat "{pidfile}")" && touch "{stopped}"
  n=0; while [ ! -e "{gate}" ] && [ $n -lt 6000 ]; do sleep 0.02; n=$((n+1)); done
fi
exit 0
"""


@pytest.mark.slow(10)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
@pytest.mark.parametrize("renewal", ["answered", "in flight"])
def test_a_runner_stopped_mid_read_past_its_lease_sends_nothing_when_it_continues(
    renewal: str, tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Runner 1 (`--snapshot`) is stopped (SIGSTOP) while reading s2's state before its delete,
    past its lease. Runner 2 takes over: it sends what was left and starts the pipeline; a
    person pauses it again. Runner 1 continues and gets its read's answer: the lease is
    checked right before the delete, so it sends nothing (the delete would land on a paused
    pipeline that ran meanwhile: s2 cleared twice), and starts nothing.

    "in flight": runner 1 is stopped while the renewal push that carries s1's delete has
    landed but not answered, so on resuming, its push has timed out and the remote holds
    runner 2's records after s1's delete. The delete is published once: pushed again by the
    final push, it would follow runner 2's start and resume, as if s1 were cleared after the
    pipeline ran again."""
    origin = make_origin(tmp_path, STOPPABLE, {"a": STOP_MANIFEST})
    pidfile, stopped_mark, gate = tmp_path / "runner1.pid", tmp_path / "stopped", tmp_path / "gate"
    if renewal == "in flight":
        (tmp_path / "armed").touch()
        hook = origin / "hooks" / "post-receive"
        hook.write_text(
            STOP_MID_PUSH.format(armed=tmp_path / "armed", pidfile=pidfile, stopped=stopped_mark, gate=gate)
        )
        hook.chmod(0o755)
    em = make_emulator(world_for([pipeline(status="RUNNING", stages=tuple(STOP_STAGES))]))
    read = em.world.on_request(stage_read("s2"), hold=True)
    first = spawn_cli(
        ["apply", "--auto-approve", "--snapshot", str(tmp_path / "evidence.jsonl")],
        clone(origin, tmp_path / "runner1"),
        gateway_env(em),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stopped = False
    try:
        em.world.wait_for(stage_read("s2"), timeout=60)
        if renewal == "in flight":
            pidfile.write_text(str(first.pid))
            wait_until(stopped_mark.exists)  # by the hook, its renewal push landed and unanswered
        else:
            wait_until(lambda: "delete" in remote_kinds(origin, tmp_path))  # s1's delete, pushed by a renewal
            os.kill(first.pid, signal.SIGSTOP)
        stopped = True
        second = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner2"), gateway_env(em))
        assert second.code == 0, second.all  # it waited the lease out by its own clock, then finished
        assert em.world.status("p1") == "RUNNING"
        sent = len([e for e in em.world.log if e["route"] in ("delete", "operate")])
        em.world.set_status("p1", "PAUSED")  # a person pauses it, after it ran
        gate.touch()  # the push ends, unanswered: runner 1 finds it timed out
        read.release()  # runner 1's read is answered...
        os.kill(first.pid, signal.SIGCONT)  # ... and it goes on
        stopped = False
        code, text = finish(first)
    finally:
        gate.touch()
        read.release()
        if stopped:
            os.kill(first.pid, signal.SIGCONT)
        if first.poll() is None:
            first.kill()
    assert [e for e in em.world.log if e["route"] in ("delete", "operate")][sent:] == []  # nothing more
    counts = clears(em.world)
    assert set(counts) == cells("p1", STOP_STAGES, ["a1", "a2"], ["x", "y"])
    assert set(counts.values()) == {1}, text
    assert em.world.status("p1") == "PAUSED"  # as the person left it
    assert code != 0 and "no longer holds the lease" in text, text
    # Its start was never announced: neither it nor the pause that re-opened the pipeline
    # reaches the remote, so the next apply does not start what the person paused.
    kinds = remote_kinds(origin, tmp_path)
    assert kinds[-4:] == ["start", "resume", "failed", "failed"], (kinds, text)
    facts = [
        {k: v for k, v in json.loads(line).items() if k not in ("seq", "prev", "hash")}
        for line in remote_bytes(origin).splitlines()
    ]
    assert all(facts.count(f) == 1 for f in facts), (kinds, text)  # no record published twice
    third = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert third.code == 0 and "Nothing to apply." in third.out, third.all
    assert em.world.status("p1") == "PAUSED"
    remote_ledger(origin, tmp_path)  # verifies
    assert em.world.violations == []


# --- 1. restore never cuts ---------------------------------------------------------------------

ANCHOR = "refs/reconcile/anchor"
TWO_PIPES = manifest_yaml("a", assets=["a1", "a2"], points=["x", "y"])
MORE = manifest_yaml("b", assets=["b1", "b2"], points=["x", "y"])


def add_manifest(origin: Path, tmp_path: Path, name: str, text: str) -> None:
    work = clone(origin, tmp_path / f"pr-{name}")
    (work / "manifests" / f"{name}.yaml").write_text(text)
    git(work, "add", ".", env=person())
    git(work, "commit", "-qm", f"add {name}", env=person())
    git(work, "push", "-q", "origin", "HEAD:main", env=person())


def applied(origin: Path, tmp_path: Path, em: Any, name: str) -> None:
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / name), gateway_env(em))
    assert res.code == 0, res.all


def forge_anchor(origin: Path, tmp_path: Path, ledger: bytes) -> str:
    """A third party with push rights makes an anchor commit of its own holding `ledger`
    and moves the ref to it (no branch protection covers refs/reconcile/anchor)."""
    from reconciler.gitsync.remote import anchor_message

    work = clone(origin, tmp_path / "forger")
    (work / LEDGER).write_bytes(ledger)
    blob = git(work, "hash-object", "-w", LEDGER)
    tree = subprocess.run(
        ["git", "mktree"], cwd=work, input=f"100644 blob {blob}\t{LEDGER}\n", capture_output=True, text=True
    ).stdout.strip()
    published = git(work, "rev-parse", "HEAD~1")
    commit = git(work, "commit-tree", tree, "-m", anchor_message(LEDGER, "main", published), env=person())
    git(work, "push", "-q", "-f", "origin", f"{commit}:{ANCHOR}", env=person())
    return commit


def anchor_of(origin: Path) -> str:
    return git(origin, "rev-parse", ANCHOR)


@pytest.mark.parametrize("how", ["moved back", "forged cut", "forged rewrite"])
def test_a_moved_anchor_is_reported_and_restore_never_cuts(
    how: str, tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """Two applies; then a third party moves refs/reconcile/anchor back to reconcile's own
    anchor of the first, or to a forged commit whose ledger is cut (a prefix: an earlier
    ledger by its content) or rewritten. Every apply is refused,
    always with the same advice; `ledger restore` keeps the branch's ledger (it re-anchors
    it) and nothing is ever cleared twice."""
    origin = make_origin(tmp_path, CONFIG, {"a": TWO_PIPES})
    em = make_emulator(world_for([pipeline()]))
    applied(origin, tmp_path, em, "job1")
    first_anchor = anchor_of(origin)
    add_manifest(origin, tmp_path, "b", MORE)
    applied(origin, tmp_path, em, "job2")
    before = remote_kinds(origin, tmp_path)
    assert before == ["intent", "delete"] * 2
    if how == "moved back":
        git(origin, "update-ref", ANCHOR, first_anchor)
    else:
        full = remote_bytes(origin)
        first = full[: full.index(b"\n") + 1]  # the first intent, not its delete
        forge_anchor(origin, tmp_path, first if how == "forged cut" else first.replace(b'"a1', b'"zz'))
    runner = clone(origin, tmp_path / "job3")
    advice = set()
    for args in (["apply", "--auto-approve"], ["plan"], ["apply", "--auto-approve"]):
        res = run_cli(args, runner, gateway_env(em))
        assert res.code == 1, res.all
        assert f"{ANCHOR} was moved" in res.err and "Nothing was planned or sent" in res.err
        expected = "never published" if how == "forged rewrite" else "backwards, to an earlier ledger"
        assert expected in res.err and "reconcile ledger restore" in res.err
        advice.add(res.err.strip().splitlines()[-1])
    assert len(advice) == 1, advice  # the same advice every time

    res = run_cli(["ledger", "restore", "--auto-approve"], runner)
    assert res.code == 0, res.all
    assert "anchor now holds it again" in res.out
    assert remote_kinds(origin, tmp_path) == before  # nothing cut
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "job4"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    counts = clears(em.world)
    assert set(counts) == cells("p1", ["s1"], ["a1", "a2"], ["x", "y"]) | cells(
        "p1", ["s1"], ["b1", "b2"], ["x", "y"]
    )
    assert set(counts.values()) == {1}


def test_with_the_anchor_gone_the_version_to_keep_is_always_the_same(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """An older reconcile restored a cut ledger on main (its commit says so), then the
    anchor was deleted. The advice names the one version every version reconcile published
    is part of, every time, and restore puts exactly that back."""
    origin = make_origin(tmp_path, CONFIG, {"a": TWO_PIPES})
    em = make_emulator(world_for([pipeline()]))
    applied(origin, tmp_path, em, "job1")
    add_manifest(origin, tmp_path, "b", MORE)
    applied(origin, tmp_path, em, "job2")
    full = remote_bytes(origin)
    work = clone(origin, tmp_path / "old-restore")
    (work / LEDGER).write_bytes(full[: full.index(b"\n") + 1])
    git(work, "commit", "-qam", "reconcile: restore the ledger as last published", env=person())
    git(work, "push", "-q", "origin", "HEAD:main", env=person())
    git(origin, "update-ref", "-d", ANCHOR)
    runner = clone(origin, tmp_path / "job3")
    advice = set()
    for _ in range(2):
        res = run_cli(["apply", "--auto-approve"], runner, gateway_env(em))
        assert res.code == 1 and "records were cut" in res.err, res.all
        advice.add(res.err)
    assert len(advice) == 1
    res = run_cli(["ledger", "restore", "--auto-approve"], runner)
    assert res.code == 0, res.all
    assert remote_bytes(origin) == full
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "job4"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert set(clears(em.world).values()) == {1}


# --- 4. no pipeline left paused behind exit 0 ------------------------------------------------------

KILL_AT_START = """#!/bin/sh
# The runner dies once its `start` record is on the remote, before the start call.
if git cat-file blob main:applied-ledger.jsonl 2>/dev/null | grep -q '"kind":"start"'; then
  if [ -f "{pidfile}" ]; then kill -9 "$(cat "{pidfile}")"; rm -f "{pidfile}"; fi
fi
exit 0
"""
PAUSING = CONFIG.replace("branch: main}", "branch: main, leaseSeconds: 30}") + (
    "apply: {pausePipelines: true, concurrency: 1}\n"
)


def test_a_bare_start_record_on_a_paused_pipeline_fails_every_apply_until_settled(
    tmp_path: Path, home: Path, make_emulator: Any
) -> None:
    """The runner is killed after its `start` record reached the remote and before the start
    call: the pipeline stays PAUSED. No later apply exits 0 while it is; none starts it (the
    ledger cannot show nobody paused it since); the comment and the summary name it with
    the one command that settles it, and after that command applies are green again."""
    origin = make_origin(tmp_path, PAUSING, {"a": TWO_PIPES})
    pidfile = tmp_path / "runner.pid"
    hook = origin / "hooks" / "post-receive"
    hook.write_text(KILL_AT_START.format(pidfile=pidfile))
    hook.chmod(0o755)
    em = make_emulator(world_for([pipeline(status="RUNNING")]))
    first = spawn_cli(
        ["apply", "--auto-approve"],
        clone(origin, tmp_path / "runner1"),
        gateway_env(em),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pidfile.write_text(str(first.pid))
    assert first.wait(timeout=120) == -signal.SIGKILL
    assert remote_kinds(origin, tmp_path)[-1] == "start"
    assert em.world.status("p1") == "PAUSED"
    assert not [e for e in em.world.log if e["query"].get("action") == "start"]  # never sent
    hook.unlink()

    runner = clone(origin, tmp_path / "runner2")
    settle = "reconcile ledger resolve --start o1/p1"
    for _ in range(2):
        res = run_cli(["apply", "--auto-approve", "--summary", "summary.md"], runner, gateway_env(em))
        assert res.code == 1, res.all
        assert "o1/p1" in res.err and settle in res.err and "reports PAUSED now" in res.err
        assert settle in (runner / "summary.md").read_text()
    comment = run_cli(["plan", "--format", "markdown"], runner)
    assert settle in comment.out and "o1/p1" in comment.out, comment.all
    assert em.world.status("p1") == "PAUSED"  # not started: a person decides
    assert not [e for e in em.world.log if e["query"].get("action") == "start"]

    em.world.set_status("p1", "RUNNING")  # the person starts it in the console...
    res = run_cli(["ledger", "resolve", "--start", "o1/p1", "--auto-approve"], runner)
    assert res.code == 0 and "settled" in res.out, res.all  # ... and settles it
    assert remote_kinds(origin, tmp_path)[-1] == "resume"
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner3"), gateway_env(em))
    assert res.code == 0 and "Nothing to apply." in res.out, res.all
    assert set(clears(em.world).values()) == {1}
