"""The ledger in git, with real git: bare remotes in temp dirs, no global identity.

Each test's remote refuses non-fast-forward pushes (`receive.denyNonFastForwards`), so
a force push anywhere would fail the test: the branch only ever moves forward.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import LEDGER, bare_origin, cell_fields, git, person, remote_bytes
from helpers import clone as clone_at

from reconciler import ledger as ledger_io
from reconciler.errors import GitSyncError, LedgerBehind, LedgerMoved, PushRefused
from reconciler.gitsync import LedgerRepo, redact
from reconciler.gitsync.repo import RENEWED

pytestmark = pytest.mark.usefixtures("home")  # no global or system git config, no identity


@pytest.fixture()
def origin(tmp_path: Path) -> Path:
    """A bare remote whose main holds a manifest and an empty ledger."""
    return bare_origin(tmp_path, {"manifests/a.yaml": "# a manifest\n", LEDGER: ""})


def clone(origin: Path, name: str, *extra: str) -> Path:
    return clone_at(origin, origin.parent / name, *extra)


def append(work: Path, *records: tuple[str, dict[str, object]], ledger: str = LEDGER) -> None:
    path = work / ledger
    with ledger_io.LedgerWriter(ledger_io.read(path)) as writer:
        for kind, fields in records:
            writer.append(kind, fields)


def merge_manifest(origin: Path, name: str) -> str:
    """A pull request merged on the remote meanwhile (a --no-ff merge commit)."""
    work = clone(origin, f"pr-{name}")
    git(work, "checkout", "-q", "-b", name)
    (work / "manifests" / f"{name}.yaml").write_text(f"# {name}\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", f"add {name}", env=person())
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", name, "-m", f"Merge {name}", env=person())
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD")


def kinds(data: bytes) -> list[tuple[int, str, str]]:
    return [
        (
            r["seq"],
            r["kind"],
            r["assetIds"].split(",")[0] if isinstance(r["assetIds"], str) else r["assetIds"][0],
        )
        for r in map(json.loads, data.splitlines())
    ]


def test_sync_fast_forwards_a_checkout_behind(origin: Path) -> None:
    a, b = clone(origin, "a"), clone(origin, "b")
    repo_a = LedgerRepo(a, LEDGER)
    repo_a.sync()
    append(a, ("intent", cell_fields()), ("delete", cell_fields()))
    sha = repo_a.publish("reconcile: applied")
    assert sha == git(origin, "rev-parse", "main")

    result = LedgerRepo(b, LEDGER).sync()
    assert result.fast_forwarded and result.records_added == 2
    assert (b / LEDGER).read_bytes() == remote_bytes(origin) == (a / LEDGER).read_bytes()
    assert result.remote_head == sha and result.remote_bytes == len(remote_bytes(origin))
    assert any("not the head" in n for n in result.notes)  # b's HEAD is the old main: said so
    assert ledger_io.read(b / LEDGER).head_seq == 2


def test_sync_when_equal_changes_nothing(origin: Path) -> None:
    a = clone(origin, "a")
    result = LedgerRepo(a, LEDGER).sync()
    assert not result.fast_forwarded and result.notes == ()
    assert result.checkout_head == result.remote_head


def test_stale_checkout_gets_the_remote_ledger_not_its_own(origin: Path) -> None:
    """A job on an old trigger commit: two merges and an apply landed since it checked out."""
    stale = clone(origin, "stale")
    other = clone(origin, "other")
    repo = LedgerRepo(other, LEDGER)
    repo.sync()
    append(other, ("delete", cell_fields()))
    repo.publish("reconcile: applied m1")
    merge_manifest(origin, "m2")
    result = LedgerRepo(stale, LEDGER).sync()
    assert result.fast_forwarded
    assert kinds((stale / LEDGER).read_bytes()) == [(1, "delete", "a1")]
    assert result.checkout_head != result.remote_head


@pytest.mark.parametrize("how", ["ahead", "diverged", "edited"])
def test_a_ledger_that_cannot_fast_forward_is_refused(origin: Path, how: str) -> None:
    a, b = clone(origin, "a"), clone(origin, "b")
    repo_a = LedgerRepo(a, LEDGER)
    repo_a.sync()
    append(a, ("delete", cell_fields(asset="from-a")))
    repo_a.publish("reconcile: a")
    git(b, "pull", "-q", "origin", "main")
    if how == "ahead":
        append(b, ("delete", cell_fields(asset="only-b")))
    elif how == "diverged":
        git(b, "reset", "-q", "--hard", "HEAD~1")  # the old main, then its own record
        append(b, ("delete", cell_fields(asset="only-b")))
    else:
        data = (b / LEDGER).read_text().replace("from-a", "edited")
        (b / LEDGER).write_text(data)
    before = (b / LEDGER).read_bytes()
    with pytest.raises(LedgerBehind) as err:
        LedgerRepo(b, LEDGER).sync()
    message = str(err.value)
    assert "Nothing was planned or sent" in message and "git checkout FETCH_HEAD" in message
    expected = {
        "ahead": "record 2..2 that origin/main lacks",
        "diverged": "each holds records the other lacks",
        "edited": "uncommitted changes that are not appends",
    }[how]
    assert expected in message
    assert (b / LEDGER).read_bytes() == before  # a refusal changes nothing


def test_publish_on_a_branch_moved_by_a_merge_recommits_and_keeps_the_merge(origin: Path) -> None:
    a = clone(origin, "a")
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("intent", cell_fields()))
    merge = merge_manifest(origin, "m2")  # lands between sync and the write-ahead push
    sha = repo.publish("reconcile: write-ahead")
    assert sha == git(origin, "rev-parse", "main")
    assert git(origin, "rev-parse", f"{sha}^") == merge  # on top of the merge, which stays
    assert kinds(remote_bytes(origin)) == [(1, "intent", "a1")]
    assert git(origin, "cat-file", "-e", f"{sha}:manifests/m2.yaml") == ""


def test_publish_when_another_apply_appended_is_ledger_moved(origin: Path) -> None:
    a, b = clone(origin, "a"), clone(origin, "b")
    repo_a, repo_b = LedgerRepo(a, LEDGER), LedgerRepo(b, LEDGER)
    repo_a.sync()
    repo_b.sync()
    append(a, ("intent", cell_fields(asset="a")))
    append(b, ("intent", cell_fields(asset="b")))
    repo_a.publish("reconcile: write-ahead a")
    with pytest.raises(LedgerMoved, match="Nothing was sent"):
        repo_b.publish("reconcile: write-ahead b")
    assert kinds(remote_bytes(origin)) == [(1, "intent", "a")]  # the winner's, untouched
    repo_b.reset_to_remote()
    assert (b / LEDGER).read_bytes() == remote_bytes(origin)
    repo_a.publish_final("reconcile: a done")  # a's lease released: nobody else is sending
    repo_b.sync()  # the loser re-plans from here; its next publish succeeds
    append(b, ("intent", cell_fields(asset="b")))
    repo_b.publish("reconcile: write-ahead b, again")
    assert kinds(remote_bytes(origin)) == [(1, "intent", "a"), (2, "intent", "b")]


def test_final_publish_rechains_records_of_calls_already_made(origin: Path) -> None:
    a, b = clone(origin, "a"), clone(origin, "b")
    now = [0.0]
    repo_a, repo_b = LedgerRepo(a, LEDGER), LedgerRepo(b, LEDGER, clock=lambda: now[0])
    repo_a.sync()
    append(a, ("intent", cell_fields(asset="x")))
    repo_a.publish("reconcile: write-ahead a")
    repo_b.sync()
    now[0] += repo_b.lease_seconds  # a stalled: b saw its lease unrenewed for its whole length
    repo_b.sync()
    append(b, ("intent", cell_fields(asset="y")))
    repo_b.publish("reconcile: write-ahead b")
    # both sent; a finishes first
    append(a, ("delete", cell_fields(asset="x")))
    repo_a.publish_final("reconcile: applied a")
    append(b, ("delete", cell_fields(asset="y")), ("resume", {"orgId": "o1", "pipelineId": "p1"}))
    mine = [json.loads(line) for line in (b / LEDGER).read_bytes().splitlines()[-2:]]
    merge_manifest(origin, "m3")
    repo_b.publish_final("reconcile: applied b")
    final = remote_bytes(origin)
    assert final == (b / LEDGER).read_bytes()
    records = ledger_io.read(b / LEDGER).records
    assert [(r.seq, r.kind) for r in records] == [
        (1, "intent"),
        (2, "intent"),
        (3, "delete"),
        (4, "delete"),
        (5, "resume"),
    ]
    rechained = [json.loads(line) for line in (b / LEDGER).read_bytes().splitlines()[3:]]
    for old, new in zip(mine, rechained, strict=True):  # same facts and times, new chain
        assert {k: v for k, v in old.items() if k not in ("seq", "prev", "hash")} == {
            k: v for k, v in new.items() if k not in ("seq", "prev", "hash")
        }


def test_final_publish_drops_intents_that_were_never_sent(origin: Path) -> None:
    a, b = clone(origin, "a"), clone(origin, "b")
    now = [0.0]
    repo_a, repo_b = LedgerRepo(a, LEDGER, clock=lambda: now[0]), LedgerRepo(b, LEDGER)
    repo_a.sync()
    repo_b.sync()
    append(b, ("intent", cell_fields(asset="y")))
    repo_b.publish("reconcile: write-ahead b")
    append(b, ("delete", cell_fields(asset="y")), ("intent", cell_fields(asset="resend")))  # seq 2, 3
    repo_a.sync()
    now[0] += repo_a.lease_seconds  # b stalled: a saw its lease unrenewed for its whole length
    repo_a.sync()
    append(a, ("intent", cell_fields(asset="x")))
    repo_a.publish("reconcile: write-ahead a")
    with pytest.raises(LedgerMoved):
        repo_b.publish("reconcile: write-ahead of a re-send")
    repo_b.publish_final("reconcile: applied b", drop_from_seq=3)
    assert kinds(remote_bytes(origin)) == [(1, "intent", "y"), (2, "intent", "x"), (3, "delete", "y")]


def test_push_refused_by_a_hook_names_the_setting_that_fixes_it(origin: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GitLab: You are not allowed to push code to protected branches' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    a = clone(origin, "a")
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("intent", cell_fields()))
    with pytest.raises(PushRefused) as err:
        repo.publish("reconcile: write-ahead")
    message = str(err.value)
    assert "lack of permission" in message and "protected branches" in message
    assert "bypass the branch protection" in message and "reconcile/ledger" in message
    assert remote_bytes(origin) == b""


def test_other_push_failures_are_not_permission_errors_and_hide_credentials(origin: Path) -> None:
    a = clone(origin, "a")
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("intent", cell_fields()))
    git(a, "remote", "set-url", "origin", "https://bot:s3cr3t-token@127.0.0.1:9/nowhere.git")
    with pytest.raises(GitSyncError) as err:
        repo.publish("reconcile: write-ahead")
    assert not isinstance(err.value, PushRefused)
    assert "not a permission refusal" in str(err.value)
    assert "s3cr3t" not in str(err.value) and "127.0.0.1" in str(err.value)


def test_redact_hides_credentials_in_urls() -> None:
    text = "fatal: unable to access 'https://oauth2:glpat-XYZ@gitlab.example.com/g/p.git/': 500"
    assert redact(text) == "fatal: unable to access 'https://***@gitlab.example.com/g/p.git/': 500"


def test_fetch_failure_is_a_git_sync_error(origin: Path) -> None:
    a = clone(origin, "a")
    git(a, "remote", "set-url", "origin", str(origin.parent / "gone.git"))
    with pytest.raises(GitSyncError, match="cannot fetch main: cannot reach origin"):
        LedgerRepo(a, LEDGER).sync()


def test_no_repository_or_no_remote_says_what_asked_for_git_and_how_to_turn_it_off(
    origin: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(GitSyncError, match=r"not a git repository.*ledger\.git\.enabled: false"):
        LedgerRepo(plain, LEDGER).sync()
    a = clone(origin, "a")
    git(a, "remote", "remove", "origin")
    with pytest.raises(GitSyncError, match=r"no remote 'origin'.*git remote add origin URL"):
        LedgerRepo(a, LEDGER).sync()


def test_shallow_clone_syncs_and_publishes_and_stays_shallow(origin: Path) -> None:
    other = clone(origin, "other")
    first = LedgerRepo(other, LEDGER)  # an apply before: the anchor exists (without one, the
    first.sync()  # first sync reads the branch's history of the ledger, deepening the clone)
    append(other, ("intent", cell_fields(asset="x0")))
    first.publish_final("reconcile: an earlier apply")
    git(other, "checkout", "-q", "--", LEDGER)
    git(other, "pull", "-q", "origin", "main")
    for i in range(3):
        (other / "manifests" / f"n{i}.yaml").write_text(f"# {i}\n")
        git(other, "add", ".")
        git(other, "commit", "-q", "-m", f"n{i}", env=person())
    git(other, "push", "-q", "origin", "main")
    shallow = clone(origin, "shallow", "--depth", "1")
    merge_manifest(origin, "m2")
    repo = LedgerRepo(shallow, LEDGER)
    repo.sync()
    append(shallow, ("intent", cell_fields()))
    sha = repo.publish("reconcile: write-ahead")
    assert sha == git(origin, "rev-parse", "main")
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"
    assert kinds(remote_bytes(origin)) == [(1, "intent", "x0"), (2, "intent", "a1")]
    # init, the earlier apply, 3 commits, m2 and its merge, the ledger
    assert git(origin, "rev-list", "--count", "main") == "8"


def test_no_git_identity_anywhere_commits_as_the_bot(origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = clone(origin, "a")
    assert subprocess.run(["git", "config", "user.name"], cwd=a, check=False).returncode != 0
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("intent", cell_fields()))
    sha = repo.publish("reconcile: write-ahead")
    assert git(origin, "log", "-1", "--format=%an <%ae>|%cn|%B", sha).startswith(
        "reconcile-bot <reconcile-bot@users.noreply.github.com>|reconcile-bot|reconcile: write-ahead"
    )
    assert "[skip ci]" in git(origin, "log", "-1", "--format=%B", sha)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ops Bot")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ops@example.invalid")
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("delete", cell_fields()))
    sha = repo.publish_final("reconcile: applied")
    assert sha is not None
    assert git(origin, "log", "-1", "--format=%an <%ae>", sha) == "Ops Bot <ops@example.invalid>"


def test_push_options_reach_a_server_that_takes_them(origin: Path) -> None:
    git(origin, "config", "receive.advertisePushOptions", "true")
    seen = origin.parent / "push-options"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(f'#!/bin/sh\necho "$GIT_PUSH_OPTION_COUNT $GIT_PUSH_OPTION_0" > {seen}\n')
    hook.chmod(0o755)
    a = clone(origin, "a")
    repo = LedgerRepo(a, LEDGER)
    repo.sync()
    append(a, ("intent", cell_fields()))
    repo.publish("reconcile: write-ahead")
    assert seen.read_text().split() == ["1", "ci.skip"]  # GitLab starts no pipeline for it


def test_dedicated_ledger_branch_is_created_and_main_is_left_alone(origin: Path) -> None:
    branch = "reconcile/ledger"
    main_before = git(origin, "rev-parse", "main")
    a = clone(origin, "a")
    repo = LedgerRepo(a, LEDGER, branch=branch)
    assert repo.dedicated
    result = repo.sync()
    assert result.remote_head is None and "does not exist yet" in result.notes[0]
    assert repo.read_ledger_files() == {}
    append(a, ("intent", cell_fields()))
    sha = repo.publish("reconcile: write-ahead")
    assert git(origin, "rev-parse", branch) == sha
    # only the ledger lives there, and the lease of the run sending from it
    assert git(origin, "ls-tree", "--name-only", sha).split() == [LEDGER, f"{LEDGER}.lease"]
    assert git(origin, "rev-parse", "main") == main_before
    assert repo.read_ledger_files() == {LEDGER: (a / LEDGER).read_bytes()}
    assert (a / LEDGER).read_bytes() == remote_bytes(origin, branch)

    b = clone(origin, "b")  # main's empty ledger: fast-forwarded from the dedicated branch
    other = LedgerRepo(b, LEDGER, branch=branch)
    assert other.sync().fast_forwarded
    assert not any("not the head" in n for n in other.sync().notes)
    append(b, ("delete", cell_fields()))
    second = other.publish_final("reconcile: applied")
    assert git(origin, "rev-parse", f"{second}^") == sha
    assert kinds(remote_bytes(origin, branch)) == [(1, "intent", "a1"), (2, "delete", "a1")]


def test_main_keeps_every_merge_through_racing_applies(origin: Path) -> None:
    merges = []
    for i in range(3):
        a, b = clone(origin, f"a{i}"), clone(origin, f"b{i}")
        repo_a, repo_b = LedgerRepo(a, LEDGER), LedgerRepo(b, LEDGER)
        repo_a.sync()
        repo_b.sync()
        append(a, ("intent", cell_fields(asset=f"a{i}")))
        append(b, ("intent", cell_fields(asset=f"b{i}")))
        merges.append(merge_manifest(origin, f"pr{i}"))
        repo_a.publish(f"reconcile: a{i}")
        with pytest.raises(LedgerMoved):
            repo_b.publish(f"reconcile: b{i}")
        repo_a.publish_final(f"reconcile: a{i} done")
    history = git(origin, "rev-list", "main").split()
    assert all(m in history for m in merges)
    ledger_io.read(_write(origin.parent / "final.jsonl", remote_bytes(origin)))
    assert [k[2] for k in kinds(remote_bytes(origin))] == ["a0", "a1", "a2"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_ledger_outside_the_repository_is_an_error(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, "a")
    with pytest.raises(GitSyncError, match="not inside the git repository"):
        LedgerRepo(a, tmp_path / "elsewhere.jsonl").sync()


def test_environment_leaks_no_identity() -> None:
    assert not any(k.startswith(("GIT_AUTHOR", "GIT_COMMITTER")) for k in os.environ)


def test_the_lease_is_seen_by_others_renewed_and_removed_by_the_final_push(origin: Path) -> None:
    now = [1000.0]
    a, b = clone(origin, "a"), clone(origin, "b")
    repo_a = LedgerRepo(a, LEDGER, lease_seconds=30, clock=lambda: now[0])
    repo_b = LedgerRepo(b, LEDGER, lease_seconds=30, clock=lambda: now[0])
    repo_a.sync()
    append(a, ("intent", cell_fields(asset="x")))
    repo_a.publish("reconcile: write-ahead a")
    repo_b.sync()
    lease = repo_b.live_lease()
    assert lease is not None and lease.run == repo_a.run and (lease.renewal, lease.seconds) == (0, 30.0)
    assert repo_a.live_lease() is None  # its own lease binds nobody
    now[0] += 25
    repo_a.publish(RENEWED)  # renewed while it sends
    now[0] += 10
    repo_b.sync()
    assert repo_b.live_lease() is not None  # b saw it renewed at 1035: live until 1065 by b's clock
    now[0] += 30
    assert repo_b.live_lease() is None  # a runner that died lets it expire
    append(a, ("delete", cell_fields(asset="x")))
    final = repo_a.publish_final("reconcile: applied a")
    assert f"{LEDGER}.lease" not in git(origin, "ls-tree", "--name-only", final).split()  # released


def test_blobs_are_taken_from_the_work_tree_only_when_they_are_the_blob(origin: Path) -> None:
    """A fresh clone holds the remote's files: they are read from disk, not through
    `cat-file`, but only a file whose git blob id is the one asked for is taken."""
    from reconciler.gitsync import Git, GitRemote

    work = clone(origin, "w")
    head = git(work, "rev-parse", "HEAD")
    (work / "manifests" / "a.yaml").write_text("# edited, not committed\n")
    remote = GitRemote(Git(work))
    asked: list[list[str]] = []
    objects = remote.git.objects
    remote.git.objects = lambda shas: asked.append(list(shas)) or objects(shas)  # type: ignore[method-assign]
    files = remote._files(head, ["manifests", LEDGER])
    assert files == {"manifests/a.yaml": b"# a manifest\n", LEDGER: b""}  # the commit's, not the edit
    edited = git(work, "rev-parse", "HEAD:manifests/a.yaml")
    assert asked == [[edited]]  # only the edited file's blob was read through git


def test_the_restore_command_works_over_a_segment_an_apply_appended_to(tmp_path: Path, home: Path) -> None:
    """The printed "take the remote's" line, pasted into a shell, where a run appended to a
    committed segment since (the user's report: `git rm` refused the modified file and the
    `&&` chain stopped), and left a segment the source lacks: the ledger is the source's."""
    from reconciler.gitsync.remote import restore_command

    origin = bare_origin(
        tmp_path,
        {LEDGER: '{"seq":1}\n', f"{LEDGER}.d/segments/000001.jsonl": '{"seq":0}\n', "keep.txt": "x\n"},
    )
    work = clone_at(origin, tmp_path / "work")
    segment = work / f"{LEDGER}.d/segments/000001.jsonl"
    segment.write_text('{"seq":0}\n{"seq":9}\n')  # appended since the commit
    (work / f"{LEDGER}.d/segments/000002.jsonl").write_text('{"seq":10}\n')  # not in the source
    (work / LEDGER).write_text('{"seq":1}\n{"seq":11}\n')
    files = {LEDGER: b"", f"{LEDGER}.d/segments/000001.jsonl": b""}
    line = "git fetch -q origin main && " + restore_command("FETCH_HEAD", LEDGER, files)
    proc = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert segment.read_text() == '{"seq":0}\n' and (work / LEDGER).read_text() == '{"seq":1}\n'
    assert sorted(p.name for p in segment.parent.iterdir()) == ["000001.jsonl"]
    assert (work / "keep.txt").read_text() == "x\n"
