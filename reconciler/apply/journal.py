"""The run's journal: every record apply writes, in the order invariant 4 needs.

An `intent` before each request and a `delete` or `failed` after it (one per manifest a
shared request serves; ledger format v2 refers to the intent instead of repeating its
lists); a `pause` before the pause call, so a crash never leaves a pipeline paused without
a record; a `start` before each start call, published like the write-ahead, so every
later apply knows the pipeline may have run since (invariant 11); a `resume` once a start
is confirmed. With `write_ahead`, each pause's `pause` record and the intents of the
requests it will send are recorded (and, with the ledger in git, published) before its
pause call, and no intent is written for a request that pause will not send (invariant 11).
Thread-safe: the ledger writer serialises appends, and each request's intents are written
and read by the one worker that sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.apply.values import Resume
from reconciler.ledger import LedgerWriter, Record
from reconciler.plan import Action
from reconciler.plan.values import PipelineRef


class Journal:
    """Appends this run's records, each with the run's actor."""

    def __init__(
        self, writer: LedgerWriter, actor: dict[str, Any], publish: Callable[[str], None] | None = None
    ) -> None:
        self.writer = writer
        self.actor = actor
        self.intents: dict[Action, list[Record]] = {}  # announced, and not closed since
        self.publish = publish  # the ledger in git: pushes what is recorded so far
        self.published = False  # a publish went through: this run holds the lease

    def announced(self, action: Action) -> bool:
        """Its intent is on record: what it comes to must be recorded too."""
        return action in self.intents

    def record(self, kind: str, fields: dict[str, Any]) -> Record:
        return self.writer.append(kind, {**fields, "actor": self.actor})

    def intent(self, action: Action) -> None:
        """One `intent` per manifest the request serves (a shared physical cell is sent once)."""
        self.intents[action] = [self.record("intent", f) for f in action.ledger_fields()]

    def outcome(
        self,
        kind: str,
        action: Action,
        code: int | None = None,
        message: str = "",
        evidence: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """`delete` or `failed` for a request, per manifest it serves: one that is exactly its
        intent's refers to it (ledger format v2, no repeated ID lists); a split half lists
        its own cells. `evidence`: each record's `snapshot` digest (apply --snapshot)."""
        actor = {"actor": self.actor}

        def proof(i: int) -> dict[str, Any]:
            return {"snapshot": evidence[i]} if evidence else {}

        intents = self.intents.get(action)
        if intents is None:
            extra = {"code": code, "message": message} if kind == "failed" else {}
            for i, fields in enumerate(action.ledger_fields()):
                self.record(kind, {**fields, **extra, **proof(i)})
            return
        if kind == "failed":
            del self.intents[action]  # closed: pending again, and never closed twice
        for i, intent in enumerate(intents):
            if kind == "delete":
                self.writer.append_delete(intent, {**actor, **proof(i)})
            else:
                self.writer.append_failed(intent, code=code, message=message, fields=actor)

    def pause(self, r: Resume) -> None:
        """Before the pause call: a crash right after pausing must still leave a record that
        makes the next apply start the pipeline again."""
        self.record(
            "pause",
            {
                "orgId": r.ref.org_id,
                "pipelineId": r.ref.pipeline_id,
                "executionMode": r.execution_mode,
                "kafkaRate": r.kafka_rate,
            },
        )

    def start(self, ref: PipelineRef) -> None:
        """Before a start call: recorded, and with the ledger in git pushed, so that a runner
        that dies after the call leaves a record that the pipeline may have run (a later
        apply then never takes this run's intents for re-sendable, and never starts a
        pipeline a person may have paused since). Raises if it cannot be pushed: then the
        start is not sent."""
        self.record("start", {"orgId": ref.org_id, "pipelineId": ref.pipeline_id})
        self.push(f"reconcile: starting {ref.pipeline_id} again")

    def reopen(self, r: Resume) -> None:
        """A start announced and then definitely not made (refused, or never sent): the
        pipeline is still paused by us, and the next apply starts it."""
        self.pause(r)

    def resume(self, ref: PipelineRef, note: str | None = None) -> None:
        fields: dict[str, Any] = {"orgId": ref.org_id, "pipelineId": ref.pipeline_id}
        if note is not None:
            fields["note"] = note
        self.record("resume", fields)

    def push(self, message: str) -> None:
        if self.publish is not None:
            self.publish(message)
            self.published = True
