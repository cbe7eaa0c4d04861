"""`store`: the one door to the ledger (review R1). Plan, show and report read the same
ledger, the one in git read in memory; after `ledger migrate` or `ledger restore`
publish, the checkout is left where `git pull` works. Real git with bare remotes, and
`MemoryRemote` where the test is about the reading alone."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    cell_fields,
    clone,
    git,
    manifest_yaml,
    person,
    run_cli,
)

from reconciler import ledger as L
from reconciler.errors import LedgerMoved
from reconciler.gitsync import LedgerRepo, MemoryRemote
from reconciler.store import LedgerStore

FLEET = [f"asset-{i:03d}" for i in range(60)]  # a list long enough to be stored in <ledger>.d/ids/


def ledger_files(tmp_path: Path, cleared: int) -> dict[str, bytes]:
    """A v3 ledger's files (beside the main file) holding `cleared` intent+delete pairs."""
    path = tmp_path / "scratch" / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    for i in range(cleared):
        fields = {**cell_fields(f"a{i}", manifest="m"), "assetIds": [*FLEET, f"a{i}"]}
        with L.LedgerWriter(L.read(path)) as writer:
            writer.append("intent", fields)
            writer.append("delete", fields)
    return L.ledger_files(path)


def test_the_remote_ledger_is_read_in_memory_never_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = MemoryRemote()
    files = ledger_files(tmp_path, 2)
    assert any(p.startswith(f"{LEDGER}.d/") for p in files)  # the sidecar travels too
    remote.commit("main", dict(files))
    work = tmp_path / "work"
    work.mkdir()
    watched = tmp_path / "tmp"
    watched.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    store = LedgerStore(str(work / LEDGER), LedgerRepo(work, LEDGER, transport=remote, rel_path=LEDGER))
    led = store.read()
    assert led.exists and led.path == work / LEDGER and led.head_seq == 4
    assert [r.kind for r in led.records] == ["intent", "delete"] * 2
    assert list(work.iterdir()) == [] and list(watched.iterdir()) == []  # no copy, no local file


def test_a_ledger_missing_from_the_branch_reads_as_missing(tmp_path: Path) -> None:
    remote = MemoryRemote()
    remote.commit("main", {"README": b"no ledger yet"})
    store = LedgerStore(
        str(tmp_path / LEDGER), LedgerRepo(tmp_path, LEDGER, transport=remote, rel_path=LEDGER)
    )
    led = store.read()
    assert not led.exists and led.records == []


def with_ledger_in_git(tmp_path: Path, files: dict[str, bytes]) -> Path:
    def seed(where: Path) -> None:
        (where / "reconcile.yaml").write_text(LEDGER_IN_GIT.format(branch="main"))
        (where / "manifests").mkdir()
        (where / "manifests/m.yaml").write_text(manifest_yaml("m", assets=["a0", "a1", "a2"], points=["x"]))
        for rel, data in files.items():
            (where / rel).parent.mkdir(parents=True, exist_ok=True)
            (where / rel).write_bytes(data)

    return bare_origin(tmp_path, seed)


@pytest.mark.parametrize("local", ["stale", "missing"])
def test_plan_show_and_report_read_the_same_ledger_in_git(local: str, tmp_path: Path, home: Path) -> None:
    """The checkout's ledger file is behind the branch (or gone): plan, show and report
    all read the branch's, and none of them touches the local file."""
    origin = with_ledger_in_git(tmp_path, ledger_files(tmp_path, 2))
    runner = clone(origin, tmp_path / "runner")
    if local == "stale":
        (runner / LEDGER).write_bytes(L.whole_records((runner / LEDGER).read_bytes()).split(b"\n")[0] + b"\n")
    else:
        (runner / LEDGER).unlink()
    before = (runner / LEDGER).read_bytes() if local == "stale" else None

    plan = run_cli(["plan", "--format", "json"], runner)
    assert plan.code == 0, plan.all
    assert json.loads(plan.out)["ledger"]["seq"] == 4
    assert "does not exist" not in plan.err
    show = run_cli(["ledger", "show", "--format", "json"], runner)
    assert show.code == 0, show.all
    assert [r["seq"] for r in json.loads(show.out)] == [1, 2, 3, 4]
    report = run_cli(["ledger", "report", "--out", str(tmp_path / "report.html")], runner)
    assert report.code == 0, report.all
    assert "4 records up to seq 4" in report.out
    assert ((runner / LEDGER).read_bytes() if (runner / LEDGER).exists() else None) == before


# --- after a person's command published: `git pull` works --------------------------------


def v1_ledger(assets: list[str]) -> bytes:
    """A format v1 ledger (what `ledger migrate` rewrites): an intent and its delete."""
    prev, lines = L.GENESIS, []
    key = {"manifest": "m", "orgId": "o1", "pipelineId": "p1", "stageInstanceName": "s1"}
    for seq, kind in enumerate(["intent", "delete"], start=1):
        full: dict[str, Any] = {
            "v": 1,
            "seq": seq,
            "at": "2026-11-27T10:00:00.000Z",
            "kind": kind,
            **key,
            "assetIds": assets,
            "pointIds": ["x"],
            "actor": {"user": "ci"},
            "prev": prev,
        }
        full["hash"] = prev = L.record_hash(full)
        lines.append(L.canonical(full) + b"\n")
    return b"".join(lines)


def tracked_changes(work: Path) -> list[str]:
    """`git status` lines for tracked files (untracked ones, the lock and backups, aside)."""
    return [line for line in git(work, "status", "--porcelain").splitlines() if not line.startswith("??")]


def pulls_cleanly(work: Path, origin: Path) -> None:
    res = run_cli(["plan"], work)  # the ledger the checkout now holds is the branch's
    assert res.code == 0, res.all
    git(work, "pull", "-q", "--ff-only", env=person())
    assert git(work, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
    assert tracked_changes(work) == []


def test_after_migrate_publishes_git_pull_works(tmp_path: Path, home: Path) -> None:
    origin = with_ledger_in_git(tmp_path, {LEDGER: v1_ledger(FLEET)})
    laptop = clone(origin, tmp_path / "laptop")
    res = run_cli(["ledger", "migrate"], laptop)
    assert res.code == 0 and "Published to origin/main" in res.out, res.all
    assert git(laptop, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")  # fast-forwarded
    assert git(laptop, "status", "-sb").splitlines()[0] == "## main...origin/main"  # not "ahead"
    untracked = sorted(line[3:] for line in git(laptop, "status", "--porcelain").splitlines())
    assert untracked == [f"{LEDGER}.lock", f"{LEDGER}.v1.bak"]  # the .d/ files are committed ones now
    pulls_cleanly(laptop, origin)


def test_after_restore_publishes_git_pull_works(tmp_path: Path, home: Path) -> None:
    origin = with_ledger_in_git(tmp_path, {LEDGER: v1_ledger(FLEET)})
    assert run_cli(["ledger", "migrate"], clone(origin, tmp_path / "laptop")).code == 0  # anchored
    cut = clone(origin, tmp_path / "cut")
    (cut / LEDGER).write_bytes((cut / LEDGER).read_bytes().splitlines(keepends=True)[0])
    git(cut, "commit", "-qam", "a person cuts the ledger", env=person())
    git(cut, "push", "-q", "origin", "HEAD:main", env=person())
    runner = clone(origin, tmp_path / "runner")
    res = run_cli(["ledger", "restore", "--auto-approve"], runner)
    assert res.code == 0 and "restored 2 records" in res.out, res.all
    assert git(runner, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
    pulls_cleanly(runner, origin)


def test_a_checkout_of_another_branch_is_left_where_it_is(tmp_path: Path, home: Path) -> None:
    origin = with_ledger_in_git(tmp_path, {LEDGER: v1_ledger(FLEET)})
    laptop = clone(origin, tmp_path / "laptop")
    git(laptop, "checkout", "-q", "-b", "topic")
    head = git(laptop, "rev-parse", "HEAD")
    res = run_cli(["ledger", "migrate"], laptop)
    assert res.code == 0, res.all
    assert git(laptop, "rev-parse", "HEAD") == head and git(laptop, "rev-parse", "main") == head
    assert git(origin, "rev-parse", "main") != head  # published all the same


# --- ledger migrate with the ledger in git: one lock, and a remote that moves meanwhile ----


class MovingRemote(MemoryRemote):
    """A remote on which `change` lands once, right before the first publish: a merge, or
    another apply, racing the migration."""

    def __init__(self, change: dict[str, bytes | None]) -> None:
        super().__init__()
        self.change: dict[str, bytes | None] | None = change

    def publish(self, branch: str, seen: Any, files: Any, message: str, ledger_path: str) -> Any:
        if self.change is not None:
            self.commit(branch, self.change)
            self.change = None
        return super().publish(branch, seen, files, message, ledger_path)


def migrating(tmp_path: Path, change: dict[str, bytes | None]) -> tuple[MovingRemote, LedgerStore]:
    remote = MovingRemote(change)
    remote.commit("main", {LEDGER: v1_ledger(["a1"])})
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / LEDGER).write_bytes(v1_ledger(["a1"]))
    return remote, LedgerStore(
        str(work / LEDGER), LedgerRepo(work, LEDGER, transport=remote, rel_path=LEDGER)
    )


def remote_ledger_of(remote: MemoryRemote, tmp_path: Path) -> L.Ledger:
    return L.read(tmp_path / "seen" / LEDGER, files=remote.read("main", [LEDGER]).ledger(LEDGER))


def test_a_merge_while_migrating_is_committed_on(tmp_path: Path) -> None:
    remote, store = migrating(tmp_path, {"manifests/b.yaml": b"merged meanwhile"})
    result = store.rewrite(lambda _line: None)
    assert result.backup is not None
    led = remote_ledger_of(remote, tmp_path)
    assert [r.data["v"] for r in led.records] == [3, 3]
    assert remote.read("main", ["manifests/b.yaml"]).file("manifests/b.yaml") == b"merged meanwhile"


def test_another_apply_while_migrating_leaves_a_rerun_that_works(tmp_path: Path) -> None:
    """Review L-5: the remote's ledger moved between the sync and the publish. Nothing is
    published, the local ledger is the remote's again (not a v3 file the next sync would
    refuse), and doing what the message says migrates the ledger with the new record."""
    appended = tmp_path / "other" / LEDGER
    appended.parent.mkdir()
    appended.write_bytes(v1_ledger(["a1"]))
    with L.LedgerWriter(L.read(appended)) as writer:
        writer.append("intent", cell_fields("a2", manifest="m"))
    remote, store = migrating(tmp_path, {LEDGER: appended.read_bytes()})
    with pytest.raises(LedgerMoved) as caught:
        store.rewrite(lambda _line: None)
    work = tmp_path / "work"
    assert (work / LEDGER).read_bytes() == appended.read_bytes()
    assert "move that away, then run `reconcile ledger migrate` again" in str(caught.value)
    assert [r.data["v"] for r in remote_ledger_of(remote, tmp_path).records] == [1, 1, 3]  # untouched
    (work / f"{LEDGER}.v1.bak").rename(tmp_path / "kept.bak")  # as the message says
    result = store.rewrite(lambda _line: None)
    assert result.backup is not None and result.records == 3
    assert [r.data["v"] for r in remote_ledger_of(remote, tmp_path).records] == [3, 3, 3]
