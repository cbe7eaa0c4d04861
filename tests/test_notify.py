"""Notifications against a local HTTP sink: each event, a target answering 500 or hanging
(bounded and warned, never a failed run), and the secret URL kept out of every output."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    LEDGER_IN_GIT,
    bare_origin,
    clone,
    gateway_env,
    git,
    manifest_yaml,
    pipeline,
    remote_bytes,
    run_cli,
    world_for,
)

from reconciler import notify
from reconciler.apply import ApplyResult
from reconciler.config import NotifyTarget
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef
from reconciler.windows import Deferred

TOKEN = "s3cr3t-T0KEN-4242"  # in the sink's path and query: must never be printed or recorded


class Sink:
    """A local HTTP server that records what it is sent and answers `status`, or hangs."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        self.hang = threading.Event()  # set: answer; clear: hold the request until teardown
        self.hang.set()
        self.released = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.paths.append(self.path)
                sink.posts.append(json.loads(body))
                if not sink.hang.is_set():
                    sink.released.wait(30)
                    return
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll: shutdown() waits for the next one (0.5 s by default, in every test)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/{TOKEN}?key={TOKEN}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        return [p["event"] for p in self.posts]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


P1 = PipelineRef("o1", "p1")


def a_run(result: ApplyResult | None, error: str | None = None) -> notify.Run:
    return notify.Run(
        plan=None,
        result=result,
        error=error,
        actor={"gitCommit": "abc123", "runUrl": "https://ci.example/run/7"},
        commit_url="https://git.example/r/-/commit/abc123",
    )


def test_each_event_is_told_once_with_what_settles_it(sink: Sink) -> None:
    warnings: list[str] = []
    target = NotifyTarget("HOOK", tuple(notify.EVENTS), 5)
    env = {"HOOK": sink.url}
    left = ApplyResult(resume_failed=[(P1, "61121 for 600s")], names={P1: "Wind avg"})
    left.paused.append(P1)
    cases: list[tuple[notify.Run, list[str], str]] = [
        (
            a_run(ApplyResult(outside_window=Deferred("Spring Festival freeze", "2027-02-06T01:00+08:00"))),
            ["deferred"],
            "--ignore-window",
        ),
        (a_run(left), ["left-paused"], "start them in the EnOS console"),
        (a_run(None, error="another apply holds the lease"), ["failed"], "reconcile plan"),
    ]
    for run, expected, command in cases:
        sink.posts.clear()
        assert notify.send([target], run, env, warnings.append) == len(expected)
        assert sink.events() == expected
        post = sink.posts[0]
        assert command in post["settle"] and command in post["text"]
        assert post["commitUrl"] == "https://git.example/r/-/commit/abc123"
        assert (
            post["runUrl"] == "https://ci.example/run/7" and "Run: https://ci.example/run/7" in post["text"]
        )
    assert warnings == []
    # A target that wants only some events hears only those; a scheduled run does not tell
    # a deferral again (the merge's run did), so an hourly schedule does not repeat it.
    sink.posts.clear()
    deferred = a_run(ApplyResult(outside_window=Deferred("freeze", None)))
    notify.send([NotifyTarget("HOOK", ("failed",), 5)], deferred, env, warnings.append)
    notify.send([target], deferred, env, warnings.append, scheduled=True)
    assert sink.posts == []


def test_a_reason_with_a_hint_is_told_in_the_clis_words() -> None:
    """The core gives why a pipeline was left paused as a `Hinted` reason: the message names
    the flag that would have helped, as the console does."""
    from reconciler.errors import Hint, Hinted

    why = Hinted("EnOS refused the start with 61121 for 10m", Hint.START_TIMEOUT, "10m")
    msg = notify.message("left-paused", a_run(ApplyResult(resume_failed=[(P1, why)])))
    assert msg.data["pipelines"][0]["leftPaused"] == f"{why}; --start-timeout is 10m"
    assert "--start-timeout is 10m" in msg.text


def test_a_run_that_cleared_some_and_left_some_in_doubt_tells_both_once(sink: Sink) -> None:
    done = Action("wind-fix", "o1", "p1", "s1", ("a1", "a2"), ("x",))
    doubt = Action("wind-fix", "o1", "p1", "s2", ("a1",), ("x",))
    result = ApplyResult(
        deleted=[done], in_doubt=[(doubt, "the answer was lost")], names={P1: "Wind [avg](x)"}
    )
    result.paused.append(P1)
    result.resumed.append(P1)
    warnings: list[str] = []
    target = NotifyTarget("HOOK", tuple(notify.EVENTS), 5)
    assert notify.send([target], a_run(result), {"HOOK": sink.url}, warnings.append) == 2
    assert sink.events() == ["applied", "in-doubt"] and warnings == []
    applied, in_doubt = sink.posts
    assert applied["cells"] == {"cleared": 2, "failed": 0, "notSent": 0, "inDoubt": 1}
    assert applied["pipelines"][0]["startedAgain"] is True
    assert "started again" in applied["text"]
    assert "[avg](x)" not in applied["text"]  # a pipeline's name is text, never a link
    assert "reconcile ledger resolve --verify" in in_doubt["settle"]
    assert "To settle: reconcile ledger resolve --verify" in in_doubt["text"]


def test_a_target_answering_500_or_hanging_is_a_bounded_warning_without_the_secret(sink: Sink) -> None:
    warnings: list[str] = []
    target = NotifyTarget("HOOK", tuple(notify.EVENTS), 0.5)
    run = a_run(None, error="refused")
    sink.status = 500
    assert notify.send([target], run, {"HOOK": sink.url}, warnings.append) == 0
    sink.hang.clear()
    assert notify.send([target], run, {"HOOK": sink.url}, warnings.append) == 0
    assert notify.send([target], run, {}, warnings.append) == 0  # variable not set
    assert notify.send([target], run, {"HOOK": f"http://127.0.0.1:9/{TOKEN}"}, warnings.append) == 0
    assert len(warnings) == 4
    assert "notify $HOOK (failed): not delivered: HTTP 500" in warnings[0]
    assert "no answer within 0.5s" in warnings[1]
    assert "not set" in warnings[2]
    assert "ConnectError" in warnings[3]
    assert not any(TOKEN in w or "127.0.0.1" in w for w in warnings)


def test_an_apprise_url_is_sent_through_apprise(sink: Sink) -> None:
    pytest.importorskip("apprise")
    warnings: list[str] = []
    url = sink.url.replace("http://", "json://")
    run = a_run(ApplyResult(outside_window=Deferred("month-end settlement", "2027-04-01T01:00+08:00")))
    assert notify.send([NotifyTarget("HOOK", ("deferred",), 5)], run, {"HOOK": url}, warnings.append) == 1
    assert warnings == []
    [post] = sink.posts
    assert "month-end settlement" in post["title"] and "2027-04-01T01:00+08:00" in post["message"]
    sink.status = 500
    assert notify.send([NotifyTarget("HOOK", ("deferred",), 5)], run, {"HOOK": url}, warnings.append) == 0
    assert len(warnings) == 1 and TOKEN not in warnings[0] and "refused it" in warnings[0]


# --- the real CLI: apply tells the sink; the URL is nowhere ----------------------------------

CONFIG = LEDGER_IN_GIT.format(branch="main") + "apply: {pausePipelines: true, concurrency: 1}\n"
NOTIFY = "notify:\n  - {urlEnv: RECONCILE_NOTIFY_URL, timeoutSeconds: 1}\n"
DESCRIBED = manifest_yaml("a", stages=["s1"], assets=["a1"], points=["x"]).replace(
    "name: a\n", "name: a\n  description: Wind farm A averages were double counted\n", 1
)


def _origin(tmp_path: Path, config: str) -> Path:
    files = {"reconcile.yaml": config, "manifests/a.yaml": DESCRIBED, "applied-ledger.jsonl": ""}
    return bare_origin(tmp_path, files)


def test_apply_tells_what_it_did_and_the_secret_appears_in_no_output_or_ledger(
    tmp_path: Path, home: Path, make_emulator: Any, sink: Sink
) -> None:
    assert "description: Wind farm A" in DESCRIBED
    origin = _origin(tmp_path, CONFIG + NOTIFY)
    em = make_emulator(world_for([pipeline(status="RUNNING", stages=("s1",))]))
    runner = clone(origin, tmp_path / "runner")
    env = {**gateway_env(em), "RECONCILE_NOTIFY_URL": sink.url}
    res = run_cli(["apply", "--auto-approve", "--summary", "s.json", "--summary", "s.md"], runner, env)
    assert res.code == 0, res.all
    assert sink.events() == ["applied"]
    post = sink.posts[0]
    assert post["manifests"] == [
        {"name": "a", "description": "Wind farm A averages were double counted", "cells": 1}
    ]
    assert post["pipelines"][0]["pipelineId"] == "p1" and post["pipelines"][0]["startedAgain"] is True
    assert post["pipelines"][0]["pausedSeconds"] is not None
    assert post["commit"] == git(runner, "rev-parse", "HEAD").strip()
    assert "Wind farm A averages were double counted" in post["text"]
    # The secret is in no output, summary, plan or ledger.
    plan = run_cli(["plan", "--format", "json"], runner, env)
    for text in (
        res.out,
        res.err,
        plan.out,
        plan.err,
        (runner / "s.json").read_text(),
        (runner / "s.md").read_text(),
    ):
        assert TOKEN not in text
    assert TOKEN.encode() not in remote_bytes(origin)


def test_a_failing_target_never_fails_the_run_and_a_deferral_is_told(
    tmp_path: Path, home: Path, make_emulator: Any, sink: Sink
) -> None:
    today = date.today()
    freeze = (
        CONFIG.replace(
            "concurrency: 1}",
            "concurrency: 1, windows: {deny: [{from: "
            f'"{today - timedelta(days=1)}", to: "{today + timedelta(days=1)}", reason: "release freeze"}}]}}}}',
        )
        + NOTIFY
    )
    origin = _origin(tmp_path, freeze)
    em = make_emulator(world_for([pipeline(status="RUNNING", stages=("s1",))]))
    runner = clone(origin, tmp_path / "runner")
    env = {**gateway_env(em), "RECONCILE_NOTIFY_URL": sink.url}
    res = run_cli(["apply", "--auto-approve"], runner, env)
    assert res.code == 0, res.all
    assert sink.events() == ["deferred"]
    assert "release freeze" in sink.posts[0]["title"]
    assert sink.posts[0]["manifests"][0]["description"] == "Wind farm A averages were double counted"
    # Hanging, then 500: warned, bounded by timeoutSeconds, exit 0.
    sink.posts.clear()
    sink.hang.clear()
    res = run_cli(["apply", "--auto-approve"], runner, env)
    assert res.code == 0, res.all
    assert "notify $RECONCILE_NOTIFY_URL (deferred): not delivered: no answer within 1s" in res.err
    sink.hang.set()
    sink.status = 500
    res = run_cli(["apply", "--auto-approve"], runner, env)
    assert res.code == 0 and "not delivered: HTTP 500" in res.err
    assert TOKEN not in res.all
    # A scheduled run does not repeat the deferral.
    sink.posts.clear()
    run_cli(["apply", "--auto-approve"], runner, {**env, "CI_PIPELINE_SOURCE": "schedule"})
    assert sink.posts == []
