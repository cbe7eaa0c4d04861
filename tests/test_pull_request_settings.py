"""Nothing from a pull request reaches outside the repository (issue 27, item 2), with real
git and bare remotes in temp dirs, the real CLI and the emulator over loopback.

- the plan job takes the ledger's remote (like gateways) from the base branch: a pull
  request's `--upload-pack=<command>` runs nothing, and a URL it names is never contacted;
- values git would read as options are refused at validation (file:line:col) and again
  where git is called;
- apply.snapshot stays inside the work tree and out of `.git` and the ledger's files, at
  validation and again where it is used (symlinks followed);
- every bound is checked where the value is read, flags included;
- the comment flags every change to reconcile.yaml that changes what the merge does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import (
    LEDGER,
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    gateway_env,
    git,
    manifest_yaml,
    person,
    pipeline,
    run_cli,
    world_for,
    write,
)

from reconciler.config import load_config, review_changes
from reconciler.errors import ConfigError, GitSyncError
from reconciler.gitsync import Git

REMOTE_LINE = "git: {enabled: true, remote: origin, branch: main}"


@pytest.fixture
def em(make_emulator: Any) -> Any:
    return make_emulator(world_for([pipeline()]))


def make_origin(tmp_path: Path, config: str = LEDGER_IN_GIT.format(branch="main")) -> Path:
    files = {
        "reconcile.yaml": config,
        "manifests/a.yaml": manifest_yaml("a", assets=["a1", "a2"], points=["x"]),
        LEDGER: "",
    }
    return bare_origin(tmp_path, files)


def applied_once(origin: Path, tmp_path: Path, em: Any) -> None:
    res = run_cli(["apply", "--auto-approve"], clone(origin, tmp_path / "runner"), gateway_env(em))
    assert res.code == 0, res.all


def pull_request(origin: Path, tmp_path: Path, config: str) -> tuple[Path, str]:
    """A pull request's checkout whose reconcile.yaml is `config`, and its base commit."""
    work = clone(origin, tmp_path / "pr")
    base = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "pr")
    write(work / "reconcile.yaml", config)
    write(work / "manifests/b.yaml", manifest_yaml("b", assets=["b1"], points=["x"]))
    git(work, "add", "-A", env=person())
    git(work, "commit", "-qm", "pr", env=person())
    return work, base


def with_remote(remote: str) -> str:
    config = LEDGER_IN_GIT.format(branch="main")
    assert "remote: origin" in config
    return config.replace("remote: origin", f"remote: {json.dumps(remote)}")  # a YAML string too


# --- the ledger's remote comes from the base ---------------------------------------------


def test_a_pull_requests_upload_pack_remote_runs_nothing(tmp_path: Path, home: Path, em: Any) -> None:
    """The issue's reproduction: `ledger.git.remote: "--upload-pack=<command>"` in a pull
    request was handed to `git ls-remote`/`git fetch` as an option, and git ran it."""
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    marker = tmp_path / "PWNED"
    evil = f"--upload-pack=touch {marker};:"  # with a ":", reconcile took it for a URL
    work, base = pull_request(origin, tmp_path, with_remote(evil))
    for args in (["plan", "--base", base], ["plan", "--format", "markdown", "--base", base], ["plan"]):
        res = run_cli(args, work, {"ENOS_APP_SECRET": "read-only-secret"})
        assert res.code == 1, res.all
        assert "reconcile.yaml:5:" in res.err and "ledger.git.remote: must not begin with '-'" in res.err
        assert "Traceback" not in res.all and "read-only-secret" not in res.all
    res = run_cli(["apply", "--auto-approve"], work, gateway_env(em))
    assert res.code == 1 and "ledger.git.remote: must not begin with '-'" in res.err, res.all
    assert not marker.exists()  # git ran no command
    assert len(em.world.delete_log) == 1


@pytest.mark.parametrize("remote", ["ext::sh -c touch% /tmp/x", "EXT::sh", "fd::3", "origin\nx", "a b"])
def test_remotes_that_run_commands_or_hide_text_are_refused_at_validation(
    tmp_path: Path, remote: str
) -> None:
    write(tmp_path / "reconcile.yaml", with_remote(remote))
    with pytest.raises(ConfigError, match=r"reconcile.yaml:5:\d+: ledger.git.remote: "):
        load_config(tmp_path / "reconcile.yaml")


@pytest.mark.parametrize(
    "remote",
    ["https://user:s3cr3t@git.example.com/x.git", "HTTPS://oauth2:glpat-s3cr3t@h/x", "ssh://u:s3cr3t@h/x"],
)
def test_a_remote_with_a_password_is_refused_without_showing_it(tmp_path: Path, remote: str) -> None:
    """Found by a new user's trial: a base branch's `https://user:token@host` remote was
    printed in the PR comment. reconcile.yaml is committed: a secret has no place in it."""
    write(tmp_path / "reconcile.yaml", with_remote(remote))
    with pytest.raises(
        ConfigError, match=r"reconcile.yaml:5:\d+: ledger.git.remote: must not carry a password"
    ) as err:
        load_config(tmp_path / "reconcile.yaml")
    assert "s3cr3t" not in str(err.value)


@pytest.mark.parametrize(
    "remote", ["git@github.com:org/repo.git", "https://git.example.com/x.git", "upstream"]
)
def test_remotes_without_secrets_are_kept(tmp_path: Path, remote: str) -> None:
    write(tmp_path / "reconcile.yaml", with_remote(remote))
    cfg = load_config(tmp_path / "reconcile.yaml")
    assert cfg is not None and cfg.git is not None and cfg.git.remote == remote


def test_git_never_reads_a_remote_as_an_option(tmp_path: Path, home: Path) -> None:
    """Checked again where git is called, whatever reached it."""
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "work")
    marker = tmp_path / "PWNED"
    g = Git(work)
    evil = f"--upload-pack=touch {marker}"
    for call in (lambda: g.ls_remote(evil, "refs/heads/main"), lambda: g.fetch(evil, "main")):
        with pytest.raises(GitSyncError, match="is not a git remote"):
            call()
    assert not marker.exists()
    assert g.ls_remote("origin", "refs/heads/main")  # a name still works (after --end-of-options)


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def rogue_host() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/team/manifests.git"
    finally:
        server.shutdown()


def test_a_pull_requests_url_remote_is_never_contacted(
    tmp_path: Path, home: Path, em: Any, rogue_host: str
) -> None:
    """A URL as the remote made the plan job fetch from a host the pull request chose; the
    plan job reads the ledger from the base's remote instead, and the comment says so."""
    origin = make_origin(tmp_path)
    applied_once(origin, tmp_path, em)
    work, base = pull_request(origin, tmp_path, with_remote(rogue_host))
    res = run_cli(["plan", "--format", "markdown", "--detailed-exitcode", "--base", base], work)
    assert res.code == 2, res.all  # b is pending
    assert Recorder.seen == []  # the pull request's host got nothing
    assert "1 manifest up to date: `a`" in res.out  # a's records: read from origin, the base's
    assert "where the ledger is kept: applied-ledger.jsonl on origin/main (lease 120s) -> " in res.out
    assert "127.0.0.1" in res.out.split("> [!CAUTION]")[1].split("\n\n")[0]


def test_a_pull_request_that_turns_a_url_remote_back_to_origin_reads_the_base_url(
    tmp_path: Path, home: Path, em: Any, rogue_host: str
) -> None:
    """The base is what decides: its remote is the one contacted, even when the pull request
    names the checkout's own."""
    origin = make_origin(tmp_path, with_remote(rogue_host))
    work, base = pull_request(origin, tmp_path, LEDGER_IN_GIT.format(branch="main"))
    res = run_cli(["plan", "--base", base], work)
    assert Recorder.seen, res.all  # the base's (reviewed) remote was asked
    assert "cannot reach" in res.all and "127.0.0.1" in res.all


# --- paths ---------------------------------------------------------------------------


SNAPSHOT_CONFIG = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {enabled: false}
apply:
  pausePipelines: true
  snapshot: SNAPSHOT
"""


@pytest.mark.parametrize(
    ("snapshot", "why"),
    [
        (".git/config", "must not name .git"),
        ("evidence/.GIT/hooks/pre-commit", "must not name .git"),
        ("applied-ledger.jsonl", "the ledger's files"),
        ("./applied-ledger.jsonl.d/segment-000001.jsonl", "the ledger's files"),
        ("applied-ledger.jsonl.lock", "the ledger's files"),
        ("applied-ledger.jsonl.lease", "the ledger's files"),
        ("../outside.jsonl", "inside the repository"),
        ("/tmp/outside.jsonl", "inside the repository"),
        ("-evidence.jsonl", "beginning with '-'"),
        ("manifests/a.yaml", "a JSON Lines file of its own"),
        ("reconcile.yaml", "a JSON Lines file of its own"),
        ("manifests/ids/assets.txt", "a JSON Lines file of its own"),
    ],
)
def test_apply_snapshot_is_refused_at_validation(tmp_path: Path, snapshot: str, why: str) -> None:
    write(tmp_path / "reconcile.yaml", SNAPSHOT_CONFIG.replace("SNAPSHOT", f"'{snapshot}'"))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "reconcile.yaml")
    assert "reconcile.yaml:8:13: apply.snapshot: " in str(err.value) and why in str(err.value)


def _snapshot_repo(repo: Path, snapshot: str) -> None:
    write(repo / "reconcile.yaml", SNAPSHOT_CONFIG.replace("SNAPSHOT", snapshot))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    write(repo / LEDGER, "")


@pytest.mark.parametrize("where", ["git", "outside"])
def test_apply_snapshot_through_a_symlink_is_refused_where_it_is_used(
    tmp_path: Path, make_emulator: Any, where: str
) -> None:
    """A committed symlink passes validation; apply follows it before anything is sent: no
    pause (the issue: `.git/config` left the pipeline PAUSED on every apply), no delete."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "evidence").symlink_to(repo / ".git" if where == "git" else elsewhere)
    _snapshot_repo(repo, "evidence/config.jsonl")
    before = (repo / ".git" / "config").read_bytes()
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    res = run_cli(["apply", "--auto-approve", "--summary", "s.md"], repo, gateway_env(em))
    assert res.code == 1, res.all
    why = "inside a .git folder" if where == "git" else "outside the repository"
    assert f"apply.snapshot in reconcile.yaml (evidence/config.jsonl): it is {why}" in res.err
    assert "nothing was sent" in res.err and "Traceback" not in res.all
    assert em.world.log == [] and em.world.status("p1") == "RUNNING"
    assert (repo / ".git" / "config").read_bytes() == before
    assert not (elsewhere / "config").exists()
    assert "it is " + why in (repo / "s.md").read_text()


@pytest.mark.parametrize("flag", [".git/config", LEDGER, f"{LEDGER}.d/x.jsonl", f"./{LEDGER}.lease"])
def test_the_snapshot_flag_never_names_git_or_the_ledger(
    tmp_path: Path, make_emulator: Any, flag: str
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    _snapshot_repo(repo, "evidence/state.jsonl")
    em = make_emulator(world_for([pipeline("p1")]))
    res = run_cli(["apply", "--auto-approve", "--snapshot", flag], repo, gateway_env(em))
    assert res.code == 1 and f"--snapshot {flag}: it is " in res.err, res.all
    assert em.world.log == [] and (repo / LEDGER).read_text() == ""


def test_a_snapshot_inside_the_repository_is_still_kept(tmp_path: Path, make_emulator: Any) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    _snapshot_repo(repo, "evidence/state.jsonl")
    em = make_emulator(world_for([pipeline("p1")]))
    res = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert res.code == 0, res.all
    assert (repo / "evidence/state.jsonl").is_file() and len(em.world.delete_log) == 1


# --- bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("apply: {startTimeout: .inf}", "apply.startTimeout"),
        ("apply: {startTimeout: .nan}", "apply.startTimeout"),
        ("apply: {startTimeout: 100000}", "apply.startTimeout: must be at most 86400"),
        ("apply: {maxCells: 10000000000000}", "apply.maxCells: must be at most 1000000000000"),
        ("apply: {concurrency: 65}", "apply.concurrency: must be at most 64"),
        ("ledger: {path: '.git/applied-ledger.jsonl'}", "ledger.path: must not name .git"),
        ("ledger: {path: '-ledger.jsonl'}", "ledger.path: must not have a part beginning with '-'"),
        (
            "pipelines: [{orgId: o1, pipelineId: p1, executionMode: 1, kafkaRate: 2147483648}]",
            "pipelines[0].kafkaRate: must be at most 2147483647",
        ),
        (
            "pipelines: [{orgId: o1, pipelineId: p1, executionMode: 1, kafkaRate: 1, resourceConfig: 0}]",
            "must be at least 1",
        ),
    ],
)
def test_bounds_are_checked_where_reconcile_yaml_is_read(tmp_path: Path, setting: str, message: str) -> None:
    write(tmp_path / "reconcile.yaml", f"apiVersion: reconciler/v1\nkind: ReconcileConfig\n{setting}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "reconcile.yaml")
    assert "reconcile.yaml:3:" in str(err.value) and message in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "flag",
    [
        ["--start-timeout", "nan"],
        ["--start-timeout", "inf"],
        ["--start-timeout", "90000"],
        ["--max-cells", "10000000000000"],
    ],
)
def test_bounds_are_checked_for_flags_too(tmp_path: Path, make_emulator: Any, flag: list[str]) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    _snapshot_repo(repo, "evidence/state.jsonl")
    em = make_emulator(world_for([pipeline("p1")]))
    res = run_cli(["apply", "--auto-approve", *flag], repo, gateway_env(em))
    assert res.code == 1 and flag[0] in res.err, res.all  # typer's own bound, or ours: "out of range"
    assert em.world.log == []


# --- the comment flags every change that changes what the merge does ---------------------

BASE = """\
apiVersion: reconciler/v1
kind: ReconcileConfig
ledger:
  path: applied-ledger.jsonl
  git: {enabled: true, remote: origin, branch: main, leaseSeconds: 120}
apply:
  maxCells: 1000
  concurrency: 4
  pausePipelines: true
  startTimeout: 600
  snapshot: reconcile-evidence/state.jsonl.gz
pipelines:
  - {orgId: o1, pipelineId: p1, executionMode: 1, kafkaRate: 1000}
"""


def _config(tmp_path: Path, name: str, text: str) -> Any:
    (tmp_path / name).mkdir()
    return load_config(write(tmp_path / name / "reconcile.yaml", text))


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("snapshot: reconcile-evidence/state.jsonl.gz", "snapshot: other/evidence.jsonl", "apply.snapshot"),
        ("startTimeout: 600", "startTimeout: 60", "apply.startTimeout 600.0 -> 60.0"),
        ("concurrency: 4", "concurrency: 8", "apply.concurrency 4 -> 8"),
        ("pausePipelines: true", "pausePipelines: false", "apply.pausePipelines true -> false"),
        ("leaseSeconds: 120", "leaseSeconds: 300", "ledger.git.leaseSeconds 120 -> 300"),
        ("kafkaRate: 1000}", "kafkaRate: 1000, resourceConfig: 4}", "pipelines[0].resourceConfig unset -> 4"),
        # a new section with one key set is that one key, not its other keys' nulls
        (
            "  concurrency: 4\n",
            "  concurrency: 4\n  rollout: {canary: false}\n",
            "apply.rollout.canary unset -> false",
        ),
        ("  snapshot: reconcile-evidence/state.jsonl.gz\n", "", 'apply.snapshot "reconcile-evidence'),
    ],
)
def test_every_setting_change_is_flagged(tmp_path: Path, old: str, new: str, said: str) -> None:
    assert old in BASE
    base, head = _config(tmp_path, "base", BASE), _config(tmp_path, "head", BASE.replace(old, new))
    lines = review_changes(base, head)
    assert len(lines) == 1 and said in lines[0], lines
    assert review_changes(base, _config(tmp_path, "same", BASE)) == []


def test_a_setting_added_to_the_model_later_is_flagged_without_a_change_here(tmp_path: Path) -> None:
    """The comparison is over the whole file: a section this module does not name (the
    notify section of issue 26, say) is still compared."""
    from dataclasses import replace

    from pydantic import Field

    from reconciler.config import ConfigDoc

    class WithNotify(ConfigDoc):
        notify: list[dict[str, str]] = Field(default_factory=list)

    base = _config(tmp_path, "base", BASE)
    head = replace(
        base, doc=WithNotify.model_validate({**base.doc.model_dump(), "notify": [{"urlEnv": "HOOK"}]})
    )
    assert review_changes(base, head) == ['who is notified: notify[0].urlEnv unset -> "HOOK"']
    windows = {**base.doc.apply.model_dump(), "windows": {"timeZone": "UTC"}}
    assert any(
        "apply.windows" in line
        for line in review_changes(base, replace(base, doc=_with_apply(base, windows)))
    )


def _with_apply(cfg: Any, apply: dict[str, Any]) -> Any:
    from reconciler.config import ApplySettings, ConfigDoc

    class WithWindows(ApplySettings):
        windows: dict[str, str] | None = None

    class Doc(ConfigDoc):
        apply: WithWindows  # type: ignore[assignment]

    return Doc.model_validate({**cfg.doc.model_dump(), "apply": apply})


def test_the_comment_flags_a_changed_snapshot(tmp_path: Path, home: Path, em: Any) -> None:
    """The issue: the comment did not mention a changed apply.snapshot."""
    config = LEDGER_IN_GIT.format(branch="main") + "apply:\n  snapshot: evidence/a.jsonl\n"
    origin = make_origin(tmp_path, config)
    work, base = pull_request(origin, tmp_path, config.replace("evidence/a.jsonl", "evidence/b.jsonl"))
    res = run_cli(["plan", "--format", "markdown", "--base", base], work)
    assert res.code == 0, res.all
    caution = res.out.split("> [!CAUTION]")[1].split("\n\n")[0]
    assert 'apply.snapshot "evidence/a.jsonl" -> "evidence/b.jsonl"' in caution.replace("\\", "")


def test_a_base_that_reads_as_an_option_is_refused(tmp_path: Path, home: Path) -> None:
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "work")
    marker = tmp_path / "PWNED"
    res = run_cli(["plan", f"--base=--upload-pack=touch {marker};:"], work)
    assert res.code == 1 and "is not a commit" in res.err, res.all
    assert not marker.exists()


def test_apply_snapshot_flag_naming_a_manifest_is_refused_and_the_manifest_kept(
    tmp_path: Path, make_emulator: Any
) -> None:
    """Found by a new user's trial: apply appended JSON lines to a manifest it was told to
    keep the evidence in, and the next `validate` failed. It is refused before any call."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    _snapshot_repo(repo, "evidence/state.jsonl")
    before = (repo / "manifests/a.yaml").read_bytes()
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    res = run_cli(["apply", "--auto-approve", "--snapshot", "manifests/a.yaml"], repo, gateway_env(em))
    assert res.code == 1, res.all
    assert "--snapshot manifests/a.yaml: it" in res.err and "JSON Lines file of its own" in res.err
    assert "nothing was sent" in res.err and "Traceback" not in res.all
    assert em.world.log == [] and (repo / "manifests/a.yaml").read_bytes() == before
