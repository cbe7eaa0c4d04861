"""Notifications: who is told what an apply did (DESIGN "Notifications").

`notify` in reconcile.yaml lists targets, each an environment variable (a CI secret)
holding its URL, and the events it wants: applied, failed, deferred, left-paused,
in-doubt (default: all). One message per run and event, sent once the run's records are
on the remote (the CLI calls `send` after apply returns or fails).

- An `http://` or `https://` URL receives a JSON POST (built in, httpx, bounded timeout):
  `event`, `title`, `text` (markdown), and the facts as fields.
- Any other scheme is an Apprise URL (`dingtalk://`, `wecombot://`, `feishu://`,
  `msteams://`, `slack://`, `mailto://`, ...), sent with the optional `notify` extra
  (`pip install 'enos-reconciler[notify]'`).

A message says what a person needs without opening the log: the manifests with their
descriptions and cells, the pipelines paused and for how long, what is pending, in doubt
or left paused with the one command that settles it, and links to the commit and the run.

A post that fails (an error status, a hang: bounded by `TIMEOUT`) is a warning, never a
failed run, and is not retried (a retry could tell the same thing twice). The URL, and
any token in it, appears nowhere: targets are named by their variable only, and
warnings never carry an exception's text (httpx's and Apprise's name the URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult
    from reconciler.config import NotifyTarget
    from reconciler.plan import Action, Plan
    from reconciler.plan.values import PipelineRef

EVENTS = ("applied", "failed", "deferred", "left-paused", "in-doubt")
TIMEOUT = 10.0  # seconds for one post, connect and answer each: a hanging target costs this much
MAX_LISTED = 20  # manifests, pipelines listed one by one; the rest are counted


@dataclass(frozen=True)
class Run:
    """What the run came to, as the CLI knows it when apply returns or fails."""

    plan: Plan | None
    result: ApplyResult | None
    error: str | None = None
    actor: Mapping[str, Any] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)  # manifest -> description
    commit_url: str | None = None
    repo: str | None = None  # owner/name (GitHub) or group/project (GitLab), for the title


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    text: str  # markdown: what chat tools and mail show
    data: dict[str, Any]  # the JSON POST's body


def events(run: Run) -> list[str]:
    """The events this run had, each told once: a run can both clear cells and leave a
    request in doubt."""
    r = run.result
    if r is None:
        return ["failed"] if run.error is not None else []
    out = []
    if r.outside_window is not None:
        out.append("deferred")
    elif r.deleted or r.resumed:
        out.append("applied")
    if run.error is not None or r.failed or r.not_sent or r.verify_failed or r.ledger_error or r.interrupted:
        out.append("failed")
    if r.resume_failed:
        out.append("left-paused")
    if r.in_doubt or r.skipped_in_doubt:
        out.append("in-doubt")
    return out


def _t(s: object) -> str:
    """Free text (names, descriptions, reasons) in a message's markdown body: text, never
    structure (a description cannot make a link or a heading in the team's chat)."""
    from reconciler.render.text import md_text

    return md_text(str(s))


def _plain(s: object) -> str:
    """Free text in a title (one plain line, control characters shown)."""
    from reconciler.render.text import term

    return term(str(s))


def _title(event: str, run: Run) -> str:
    r = run.result
    where = _repo(run)
    if event == "deferred" and r is not None and r.outside_window is not None:
        return f"reconcile{where}: deferred ({_plain(r.outside_window.reason)})"
    if event == "applied" and r is not None:
        return f"reconcile{where}: applied, {plural(r.cells_deleted, 'cell')} cleared"
    if event == "failed":
        return f"reconcile{where}: apply FAILED"
    if event == "left-paused" and r is not None:
        return f"reconcile{where}: {plural(len(r.resume_failed), 'pipeline')} LEFT PAUSED"
    return f"reconcile{where}: requests in doubt"


def _repo(run: Run) -> str:
    return f" {_plain(run.repo)}" if run.repo else ""


def _manifests(run: Run) -> list[dict[str, Any]]:
    if run.plan is None:
        return []
    cells: dict[str, int] = {}
    for a in run.plan.actions:
        cells[a.manifest] = cells.get(a.manifest, 0) + a.cells
    return [
        {"name": name, "description": run.descriptions.get(name), "cells": n}
        for name, n in sorted(cells.items())
    ]


def _name(r: ApplyResult, ref: PipelineRef) -> str:
    name = r.names.get(ref, "")
    return f" ({_t(name)})" if name and name != ref.pipeline_id else ""


def _refs(r: ApplyResult) -> list[PipelineRef]:
    return sorted({*r.paused, *r.resumed, *(ref for ref, _ in r.resume_failed)})


def _pipelines(r: ApplyResult) -> list[dict[str, Any]]:
    from reconciler.settings import advice  # a reason with a hint, in the CLI's words

    failed = {ref: advice(why) for ref, why in r.resume_failed}
    return [
        {
            "orgId": ref.org_id,
            "pipelineId": ref.pipeline_id,
            "name": r.names.get(ref, ""),
            "pausedSeconds": round(r.paused_seconds[ref], 1) if ref in r.paused_seconds else None,
            "startedAgain": ref in r.resumed,
            "leftPaused": failed.get(ref),
        }
        for ref in _refs(r)
    ]


def _cells(actions: Sequence[Action]) -> int:
    return sum(a.cells for a in actions)


def settle(event: str, run: Run) -> str:
    """The one command (or step) that settles what the event reports."""
    r = run.result
    if event == "deferred":
        until = r.outside_window.until if r is not None and r.outside_window is not None else None
        when = f"at {until}" if until else "when a window opens"
        return (
            f"nothing to do: the scheduled apply runs it {when}. To apply now: "
            "reconcile apply --ignore-window --reason TEXT"
        )
    if event == "left-paused":
        return "reconcile apply (the next apply starts them), or start them in the EnOS console"
    if event == "in-doubt":
        return (
            "reconcile ledger resolve --verify (after checking the cells), or "
            "reconcile apply --resend-in-doubt while the pipeline is still paused"
        )
    if event == "failed":
        return "reconcile plan (what is still pending), fix the cause, then reconcile apply"
    return "nothing: every cleared cell is in the ledger"


def message(event: str, run: Run) -> Message:
    r = run.result
    data: dict[str, Any] = {
        "event": event,
        "commit": run.actor.get("gitCommit"),
        "commitUrl": run.commit_url,
        "runUrl": run.actor.get("runUrl"),
        "manifests": _manifests(run),
        "settle": settle(event, run),
    }
    lines: list[str] = []
    if run.error is not None:
        data["error"] = run.error
        lines.append(f"Error: {_t(run.error)}")
    if r is not None:
        if r.outside_window is not None:
            data["deferred"] = r.outside_window.to_json()
            lines.append(
                f"Deferred: {_t(r.outside_window.reason)}; applied when the window opens: {r.outside_window.until or 'no window within a year'}."
            )
        data["cells"] = {
            "cleared": r.cells_deleted,
            "failed": _cells([a for a, _ in r.failed]),
            "notSent": _cells(r.not_sent),
            "inDoubt": _cells([a for a, _ in r.in_doubt]) + _cells(r.skipped_in_doubt),
        }
        data["pipelines"] = _pipelines(r)
        c = data["cells"]
        lines.append(
            f"Cells: {c['cleared']:,} cleared, {c['failed'] + c['notSent']:,} still pending, {c['inDoubt']:,} in doubt."
        )
    manifests = data["manifests"]
    if manifests and (r is None or r.outside_window is None):
        lines.append("Manifests:" if r is None or not r.deleted else "Manifests applied:")
    elif manifests:
        lines.append("Manifests waiting for the window:")
    for m in manifests[:MAX_LISTED]:
        desc = f": {_t(m['description'])}" if m["description"] else ""
        lines.append(f"- {_t(m['name'])} ({plural(m['cells'], 'cell')}){desc}")
    if len(manifests) > MAX_LISTED:
        lines.append(f"- and {plural(len(manifests) - MAX_LISTED, 'more manifest')}")
    if r is not None and data["pipelines"]:
        lines.append("Pipelines:")
        for p, ref in zip(data["pipelines"], _refs(r), strict=True):
            lines.append(f"- {_t(ref.org_id)}/{_t(ref.pipeline_id)}{_name(r, ref)}: {_pipeline_words(p)}")
    lines.append(f"To settle: {settle(event, run)}")
    if data["commit"]:
        lines.append(f"Commit: {data['commitUrl'] or data['commit']}")
    if data["runUrl"]:
        lines.append(f"Run: {data['runUrl']}")
    title = _title(event, run)
    data["title"] = title
    data["text"] = "\n".join(lines)
    return Message(event, title, data["text"], data)


def scheduled(env: Mapping[str, str]) -> bool:
    """A run CI started on its schedule (not a merge, not a person)."""
    return env.get("GITHUB_EVENT_NAME") == "schedule" or env.get("CI_PIPELINE_SOURCE") == "schedule"


def commit_url(env: Mapping[str, str], commit: object) -> str | None:
    """A link to the applied commit on GitHub or GitLab, from CI's own variables."""
    if not isinstance(commit, str) or not commit:
        return None
    if env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/commit/{commit}"
    if env.get("CI_PROJECT_URL"):
        return f"{env['CI_PROJECT_URL']}/-/commit/{commit}"
    return None


def _pipeline_words(p: Mapping[str, Any]) -> str:
    parts = []
    if p["pausedSeconds"] is not None:
        parts.append(f"paused {p['pausedSeconds']:.0f}s")
    if p["startedAgain"]:
        parts.append("started again")
    if p["leftPaused"]:
        parts.append(f"LEFT PAUSED ({_t(p['leftPaused'])})")
    return ", ".join(parts) or "untouched"


def send(
    targets: Sequence[NotifyTarget],
    run: Run,
    env: Mapping[str, str],
    warn: Callable[[str], None],
    *,
    scheduled: bool = False,
) -> int:
    """Send each target the messages of the events it wants; failures are warnings.
    Returns how many posts succeeded.

    A scheduled run does not tell "deferred" again: the run the merge started told it,
    and a schedule that runs hourly through a freeze would say it every hour."""
    happened = [e for e in events(run) if not (scheduled and e == "deferred")]
    sent = 0
    for target in targets:
        wanted = [e for e in happened if e in target.on]
        if not wanted:
            continue
        url = env.get(target.url_env, "").strip()
        name = f"notify ${target.url_env}"
        if not url:
            warn(f"{name}: the variable is not set or empty; nobody was told ({', '.join(wanted)})")
            continue
        for event in wanted:
            problem = _post(url, message(event, run), target.timeout)
            if problem is None:
                sent += 1
            else:
                warn(f"{name} ({event}): not delivered: {problem}; the run's outcome is unchanged")
    return sent


def _post(url: str, msg: Message, timeout: float) -> str | None:
    """None when delivered, else why not, in words that never hold the URL."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        return _post_json(url, msg, timeout)
    if not scheme:
        return "the value is not a URL"
    return _post_apprise(url, msg, timeout)


def _post_json(url: str, msg: Message, timeout: float) -> str | None:
    import httpx

    try:
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
            resp = client.post(url, json=msg.data, headers={"User-Agent": "reconcile-notify"})
    except httpx.TimeoutException:
        return f"no answer within {timeout:g}s"
    except httpx.HTTPError as exc:  # its text names the URL: only the kind is said
        return f"{type(exc).__name__}"
    if resp.status_code >= 300:
        return f"HTTP {resp.status_code}"
    return None


def _post_apprise(url: str, msg: Message, timeout: float) -> str | None:
    try:
        import apprise
    except ImportError:
        return (
            "an Apprise URL needs the notify extra: pip install 'enos-reconciler[notify]' "
            "(plain http(s) URLs need nothing)"
        )
    log = logging.getLogger("apprise")  # its log lines name the URL: kept out of every output
    before = (log.disabled, log.propagate)
    log.disabled, log.propagate = True, False
    try:
        asset = apprise.AppriseAsset()
        a = apprise.Apprise(asset=asset)
        if not a.add(url, tag=None):
            return "Apprise does not recognize this URL's scheme or shape"
        for server in a:
            for attr in ("socket_connect_timeout", "socket_read_timeout"):
                if hasattr(server, attr):
                    setattr(server, attr, timeout)
        ok = a.notify(title=msg.title, body=msg.text, body_format=apprise.NotifyFormat.MARKDOWN)
    except Exception as exc:  # a plugin's failure must never fail the run
        return type(exc).__name__
    finally:
        log.disabled, log.propagate = before
    return None if ok else "the service refused it or did not answer"
