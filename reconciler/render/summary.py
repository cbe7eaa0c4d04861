"""What an apply came to, for the merged pull request, the job summary and dashboards.

`reconcile apply --summary FILE` writes it: JSON (`*.json`, or any other name) or a
markdown comment (`*.md`). It is written whatever the outcome: applied, nothing to do,
refused before anything was sent, or stopped part-way, so the reviewer who approved the
merge hears what it did (issue 16, "After merge, the PR hears nothing"). Pure functions
from values to text, like the other renderers; the CLI writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import durations
from reconciler.apply import ApplyResult
from reconciler.plan import Action, Plan
from reconciler.plan.values import PipelineRef
from reconciler.words import plural

SUMMARY_VERSION = 1
MAX_FAILURES = 20  # failures listed one by one; the rest are counted


# What an interrupted run's summary says in "error" (never null: the run did not finish).
INTERRUPTED = "interrupted (Ctrl-C or SIGTERM): requests in flight were answered, then the run stopped"


@dataclass(frozen=True)
class ApplyReport:
    """One apply, as reported after it: the plan it ran (if it got that far), its result
    (None: nothing to apply, or refused), why it was refused, and who ran it."""

    ledger: str
    plan: Plan | None = None
    result: ApplyResult | None = None
    error: str | None = None
    actor: Mapping[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """applied | nothing to apply | deferred | refused | interrupted | incomplete"""
        if self.error is not None:
            return "refused" if self.result is None else "incomplete"
        if self.result is None:
            return "nothing to apply"
        if self.result.interrupted:
            return "interrupted"
        if not self.result.ok:
            return "incomplete"
        return "deferred" if self.result.outside_window is not None else "applied"


def _cells(actions: Sequence[Action]) -> int:
    return sum(a.cells for a in actions)


def summary_json(report: ApplyReport) -> dict[str, Any]:
    r = report.result
    doc: dict[str, Any] = {
        "summaryVersion": SUMMARY_VERSION,
        "outcome": report.outcome,
        "ok": report.outcome in ("applied", "nothing to apply", "deferred"),
        "error": report.error if report.outcome != "interrupted" else (report.error or INTERRUPTED),
        "planHash": report.plan.plan_hash if report.plan is not None and report.plan.has_changes else None,
        "commit": report.actor.get("gitCommit"),
        "runUrl": report.actor.get("runUrl"),
        "ledger": _ledger_json(report),
    }
    if r is None:
        return doc
    if r.outside_window is not None:  # outside apply.windows: nothing paused or sent
        doc["deferred"] = r.outside_window.to_json()
    doc["cells"] = {
        "cleared": r.cells_deleted,
        "inDoubt": _cells([a for a, _ in r.in_doubt]) + _cells(r.skipped_in_doubt),
        "failed": _cells([a for a, _ in r.failed]),
        "notSent": _cells(r.not_sent),
    }
    doc["requests"] = {
        "done": len(r.deleted),
        "failed": len(r.failed),
        "inDoubt": len(r.in_doubt),
        "inDoubtLeftToAPerson": len(r.skipped_in_doubt),
        "notSent": len(r.not_sent),
    }
    doc["pipelines"] = [_pipeline_json(r, ref) for ref in _pipelines(r)]
    doc["failures"] = [
        {
            "manifest": a.manifest,
            "orgId": a.org_id,
            "pipelineId": a.pipeline_id,
            "stageInstanceName": a.stage,
            "cells": a.cells,
            "message": message,
        }
        for a, message in r.failed[:MAX_FAILURES]
    ]
    if r.ledger_error is not None:
        doc["ledgerError"] = str(r.ledger_error)
    if r.canary is not None:  # the gateway did not do what it answered: the run stopped there
        doc["canary"] = r.canary
    if r.canary_off:
        doc["canaryOff"] = True
    if r.kept_only:
        doc["canaryKeptOnly"] = [f"{p}/{s}" for _, p, s in r.kept_only]
    return doc


def _ledger_json(report: ApplyReport) -> dict[str, Any]:
    out: dict[str, Any] = {"path": report.ledger}
    seqs = report.result.ledger_seqs if report.result is not None else None
    if seqs is None and report.plan is not None:
        seqs = (report.plan.ledger.seq, report.plan.ledger.seq)
    if seqs is not None:
        out["fromSeq"], out["toSeq"] = seqs  # records fromSeq+1 .. toSeq are this run's
    return out


def _pipelines(r: ApplyResult) -> list[PipelineRef]:
    refs = {
        *r.paused,
        *r.resumed,
        *(ref for ref, _ in r.resume_failed),
        *(ref for ref, _ in r.stopped_pipelines),
    }
    return sorted(refs)


def _pipeline_json(r: ApplyResult, ref: PipelineRef) -> dict[str, Any]:
    from reconciler.settings import advice  # a reason with a hint, in the CLI's words

    failed = {pipe: advice(why) for pipe, why in r.resume_failed}
    stopped = dict(r.stopped_pipelines)
    seconds = r.paused_seconds.get(ref)
    longest = r.longest(ref)
    return {
        "orgId": ref.org_id,
        "pipelineId": ref.pipeline_id,
        "name": r.names.get(ref, ""),
        "pausedByThisRun": ref in r.paused,
        "startedAgain": ref in r.resumed,
        "pausedSeconds": round(seconds, 3) if seconds is not None else None,
        "pauses": sum(1 for s in r.spans if s.ref == ref),
        "longestPauseSeconds": round(longest.seconds, 3) if longest is not None else None,
        "longestPauseEstimate": (
            round(longest.estimate, 3) if longest is not None and longest.estimate is not None else None
        ),
        "overranEstimate": any(s.overran for s in r.spans if s.ref == ref),
        "pauseWords": r.pause_words(ref),
        "notStartedAgain": failed.get(ref),
        "stoppedMidRun": stopped.get(ref),
    }


def dumps(report: ApplyReport) -> str:
    return json.dumps(summary_json(report), indent=2, ensure_ascii=False) + "\n"


# --- markdown: the comment on the merged pull request -----------------------------------

_HEADLINES = {
    "applied": "Applied",
    "nothing to apply": "Nothing to apply",
    "deferred": "Deferred: outside the apply window, nothing was paused or sent",
    "refused": "Apply refused; nothing was sent",
    "interrupted": "Apply was interrupted",
    "incomplete": "Apply did not finish",
}


def summary_markdown(report: ApplyReport) -> str:
    from reconciler.render.markdown import code, text

    doc = summary_json(report)
    out = ["## reconcile apply", "", f"**{_HEADLINES[report.outcome]}.**" + _headline_figures(doc)]
    if report.error is not None:
        out += ["", "```", report.error.replace("```", "'''"), "```"]
    out.append("")
    if "deferred" in doc:
        until = doc["deferred"]["until"] or "no window within a year"
        out.append(f"- Why: {text(doc['deferred']['reason'])}; applied when the window opens: {until}")
    if doc["commit"]:
        out.append(f"- Commit: {code(str(doc['commit']))}")
    if doc["runUrl"]:
        out.append(f"- Run: {doc['runUrl']}")
    if doc["planHash"]:
        out.append(f"- Plan hash: `{doc['planHash']}`")
    led = doc["ledger"]
    if "toSeq" in led:
        records = led["toSeq"] - led["fromSeq"]
        span = f"seq {led['fromSeq'] + 1:,} to {led['toSeq']:,}" if records else "no new record"
        out.append(f"- Ledger: {code(led['path'])}, {plural(records, 'record')} appended ({span})")
    if "cells" in doc:
        out += ["", "| outcome | requests | cells |", "|---|--:|--:|"]
        req, cells = doc["requests"], doc["cells"]
        rows = [
            ("cleared", req["done"], cells["cleared"]),
            ("failed (still pending)", req["failed"], cells["failed"]),
            ("in doubt", req["inDoubt"] + req["inDoubtLeftToAPerson"], cells["inDoubt"]),
            ("not sent (still pending)", req["notSent"], cells["notSent"]),
        ]
        out += [f"| {label} | {n:,} | {c:,} |" for label, n, c in rows if n or label == "cleared"]
    pipes = doc.get("pipelines", [])
    if pipes:
        out += ["", "Pipelines:", ""]
    for p in pipes:
        name = f" ({text(p['name'])})" if p["name"] and p["name"] != p["pipelineId"] else ""
        out.append(f"- {code(p['pipelineId'])}{name}: {_pipeline_words(p)}")
    failures = doc.get("failures", [])
    if failures:
        out += ["", "Failures:", ""]
    for f in failures:
        where = f"{code(f['manifest'])} {code(f['pipelineId'])} / {code(f['stageInstanceName'])}"
        out.append(f"- {where} ({plural(f['cells'], 'cell')}): {text(f['message'])}")
    more = len(report.result.failed) - MAX_FAILURES if report.result is not None else 0
    if more > 0:
        out.append(f"- … {plural(more, 'more failure')}: see the run's log")
    if "ledgerError" in doc:
        out += ["", f"**Ledger write failed:** {text(doc['ledgerError'])}"]
    if "canary" in doc:
        out += ["", f"**The canary stopped the run:** {text(doc['canary'])}"]
    if doc.get("canaryOff"):
        out += [
            "",
            "Canary: off (`--no-canary` or `apply.rollout.canary: false`): no stage's first request was read back.",
        ]
    kept = doc.get("canaryKeptOnly", [])
    if kept:
        names = ": " + ", ".join(code(k) for k in kept) if len(kept) <= 5 else ""
        out += [
            "",
            f"Canary: {plural(len(kept), 'stage')} of one request checked only for state kept "
            f"(no next request to read){names}.",
        ]
    return "\n".join(out) + "\n"


def _headline_figures(doc: Mapping[str, Any]) -> str:
    if "cells" not in doc:
        return ""
    c = doc["cells"]
    return (
        f" {plural(c['cleared'], 'cell')} cleared, {c['inDoubt']:,} in doubt, {c['failed']:,} failed, "
        f"{c['notSent']:,} not sent."
    )


def _pipeline_words(p: Mapping[str, Any]) -> str:
    parts = []
    if p["pausedByThisRun"]:
        held = f" for {durations.compact(p['pausedSeconds'])}" if p["pausedSeconds"] is not None else ""
        parts.append(p.get("pauseWords") or f"paused{held}")
    if p["startedAgain"]:
        earlier = p["pauseWords"] if not p["pausedByThisRun"] else None  # an earlier run's pause
        parts.append("started again" + (f" ({earlier})" if earlier else ""))
    if p["notStartedAgain"]:
        parts.append(f"**NOT started again** ({p['notStartedAgain']}): start it in the EnOS console")
    if p["stoppedMidRun"]:
        parts.append(f"no longer PAUSED mid-run ({p['stoppedMidRun']}): sent nothing more")
    return ", ".join(parts)
