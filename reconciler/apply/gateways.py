"""The EnOS gateways of a run (one per org) and the one rule for writing to a pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from reconciler.errors import ApplyRefused
from reconciler.plan.values import MISSING, PipelineRef

if TYPE_CHECKING:  # httpx is imported only when a client is made: `plan` never needs it
    from reconciler.enos import EnosClient, Pipeline


class Gateways:
    """The EnOS client of each org (an application usually belongs to one OU)."""

    def __init__(self, clients: Mapping[str, EnosClient], default: EnosClient | None = None) -> None:
        self._clients = dict(clients)
        self._default = default

    @classmethod
    def single(cls, client: EnosClient) -> Gateways:
        return cls({}, client)

    def close(self) -> None:
        for c in {id(c): c for c in [*self._clients.values(), self._default] if c is not None}.values():
            c.close()

    def __enter__(self) -> Gateways:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, org_id: str) -> EnosClient:
        found = self._clients.get(org_id, self._default)
        if found is None:
            raise ApplyRefused(f"no gateway configured for org {org_id}; add it to reconcile.yaml `gateways`")
        return found

    def preflight(self, orgs: Iterable[str]) -> None:
        """A token from every gateway the run needs: credentials work before anything happens."""
        seen: set[int] = set()
        for org in sorted(set(orgs)):
            c = self.client(org)
            if id(c) not in seen:
                seen.add(id(c))
                c.token()

    def statuses(self, pipelines: Iterable[PipelineRef]) -> dict[PipelineRef, Pipeline]:
        by_org: dict[str, list[PipelineRef]] = {}
        for ref in pipelines:
            by_org.setdefault(ref.org_id, []).append(ref)
        found: dict[PipelineRef, Pipeline] = {}
        for org, refs in sorted(by_org.items()):
            got = self.client(org).pipeline_statuses(refs)
            found.update({PipelineRef(*k): v for k, v in got.items()})
        return found

    def status(self, ref: PipelineRef) -> str:
        return status_of(self.statuses([ref]), ref)

    def status_or_unknown(self, ref: PipelineRef) -> str:
        """The status, or why it cannot be told (unknown is never PAUSED nor RUNNING)."""
        from reconciler.errors import EnosError

        try:
            return self.status(ref)
        except EnosError as exc:
            return f"unknown (List Pipelines failed: {exc})"

    def wait_status(
        self,
        ref: PipelineRef,
        wanted: str,
        *,
        timeout: float,
        poll: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        stop: Callable[[], bool] = lambda: False,
    ) -> tuple[bool, str]:
        """Poll List Pipelines until `wanted`, for up to `timeout`: (reached, last status).

        Whether a pause or start is synchronous is not documented (REFERENCE 2.3): the
        first poll comes after FIRST_POLL, each next one twice as late, up to `poll`, so
        a change that lands at once is seen at once and a slow one is not polled hard.
        `stop()` ends the wait early (the run was stopped): (False, last status)."""
        deadline = clock() + timeout
        wait = min(FIRST_POLL, poll)
        while True:
            status = self.status(ref)
            if status == wanted:
                return True, status
            now = clock()
            if now >= deadline or stop():
                return False, status
            sleep(min(wait, deadline - now))
            wait = min(poll, wait * 2)


FIRST_POLL = 0.1  # seconds before the second status read of a pause or start (then doubled)


def status_of(statuses: Mapping[PipelineRef, Pipeline], ref: PipelineRef) -> str:
    """A pipeline's status; one List Pipelines does not return is MISSING."""
    return statuses[ref].status if ref in statuses else MISSING
