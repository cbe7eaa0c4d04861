"""The emulator's world: apps, tokens, pipelines, stage state, faults, hooks and a request log.

Plain, thread-safe state with no HTTP in it; `app.py` puts the documented routes
in front. Seeded from a YAML/JSON file (format in README "Emulator", checked by
`seed.py`) or the small default world the demo uses. Time comes from an
injectable clock (`FakeClock` in tests), so token expiry and slow pauses never
need a test to sleep. Imports nothing else of reconciler, so it stays an
independent stand-in for the gateway.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.emulator.hooks import EXPIRY_SHAPES, Hook, Match
from reconciler.emulator.items import seed_values
from reconciler.emulator.model import DELETE_ONLY, FAULT_KINDS, LIE_KINDS, FakeClock, Faults, Pipeline
from reconciler.emulator.seed import EmulatorError, check_seed

__all__ = ["FAULT_KINDS", "LIE_KINDS", "FakeClock", "Faults", "Pipeline", "World"]

GENERIC_TYPES = frozenset(
    {"LastRecordAppender", "LastChangedRecordAppender", "LatestRecordMerger", "RecordCapturer"}
)
STATUSES = ("PUBLISHED", "RUNNING", "PAUSED", "STOPPED")
DEFAULT_APP_KEY = "emulator-app-key"
DEFAULT_APP_SECRET = "emulator-app-secret"
TOKEN_LIFETIME = 7200.0
MAX_IDS = 100_000

DEFAULT_WORLD: dict[str, Any] = {
    "apps": [{"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}],
    "pipelines": [
        {
            "pipelineId": "4a0b6e9c7f1d4e2a",
            "orgId": "o15589291683811",
            "pipelineName": "wind-10min-averages",
            "status": "PAUSED",
            "executionMode": 1,
            "kafkaRate": 1000,
            "stages": {"window_avg_1": "LatestRecordMerger", "last_value_2": "LastRecordAppender"},
            "fillState": True,
        },
        {
            "pipelineId": "7c21d09e55b34f10",
            "orgId": "o15589291683811",
            "pipelineName": "solar-inverter-counters",
            "status": "RUNNING",
            "executionMode": 0,
            "kafkaRate": 2000,
            "stages": {"counter_agg_3": "RecordCapturer"},
            "fillState": True,
        },
    ],
}


class World:
    """Everything the emulated gateway knows; every method is thread-safe."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        source: str = "seed",
    ) -> None:
        seed = seed if seed is not None else DEFAULT_WORLD
        check_seed(seed, source)
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.apps: dict[str, str] = {
            a["appKey"]: a["appSecret"] for a in seed.get("apps", DEFAULT_WORLD["apps"])
        }
        self.token_lifetime = float(seed.get("tokenLifetime", TOKEN_LIFETIME))
        self.max_ids = int(seed.get("maxPoints", MAX_IDS))
        self.get_shape = str(seed.get("getShape", "items"))
        self.require_signature = bool(seed.get("requireSignature", True))
        # Delete/Get Stage State limit: the en page counts point IDs, the zh page assets x
        # points (REFERENCE section 8); 61105 above `max_ids` of the chosen reading.
        self.request_limit = str(seed.get("requestLimit", "points"))
        # One start at a time per org (61121, REFERENCE section 8): a start is refused while
        # another start in the org is less than `start_window` seconds old.
        self.start_window = float(seed.get("startWindow", 0.0))
        self.org_starts: dict[str, float] = {}
        self.no_resource: set[str] = set(seed.get("noResource", []))  # orgs answered 61128
        self.streaming_api = bool(seed.get("streamingApi", True))  # False: EnOS 3.x, HTTP 404
        self.pipelines: dict[str, Pipeline] = {}
        for p in seed.get("pipelines", []):
            self.add_pipeline(p)
        self.faults = faults or Faults()
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appKey, expires at)
        self.app_tokens: dict[str, str] = {}
        self.uses: dict[str, int] = {}
        self.seen_encryptions: set[str] = set()
        self.sticky_tokens = False  # token/get hands back the current token until a refresh
        self.token_calls: list[str] = []  # "get" / "refresh", in order
        self.hooks: list[Hook[World]] = []
        self.log: list[dict[str, Any]] = []
        self.delete_log: list[dict[str, Any]] = []
        self.journal: Path | None = None  # `reconcile emulator --journal FILE`: what happened
        self._journal_lock = threading.Lock()
        self.violations: list[str] = []

    @classmethod
    def from_file(
        cls, path: str | Path, faults: Faults | None = None, clock: Callable[[], float] = time.monotonic
    ) -> World:
        """A world seeded from a YAML or JSON file; `EmulatorError` names the file and the problem."""
        name = Path(path).name
        try:
            text = _read_state(Path(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise EmulatorError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
        return cls(_parse(name, text), faults, clock, source=name)

    def now(self) -> float:
        return self.clock()

    def add_pipeline(self, p: dict[str, Any]) -> Pipeline:
        status = p.get("status", "RUNNING")
        if status not in STATUSES:
            raise EmulatorError(
                f"pipeline {p.get('pipelineId')}: unknown status {status!r}; known: {', '.join(STATUSES)}"
            )
        pipe = Pipeline(
            pipeline_id=p["pipelineId"],
            org_id=p["orgId"],
            name=p.get("pipelineName", p["pipelineId"]),
            status=status,
            execution_mode=int(p.get("executionMode", 0)),
            kafka_rate=p.get("kafkaRate"),
            stages=dict(p.get("stages", {})),
            fill_state=bool(p.get("fillState", False)),
            released=bool(p.get("released", True)),
            pause_delay=float(p.get("pauseDelay", 0.0)),
            lag=int(p.get("lag", 0)),
        )
        for rect in p.get("state", []):
            by_asset = pipe.cells.setdefault(rect["stage"], {})
            for a in rect["assets"]:
                by_asset.setdefault(a, set()).update(rect["points"])
            if seed_values(rect):
                pipe.seeded.append(
                    (rect["stage"], frozenset(rect["assets"]), frozenset(rect["points"]), seed_values(rect))
                )
        with self.lock:
            self.pipelines[pipe.pipeline_id] = pipe
        return pipe

    # --- tokens -----------------------------------------------------------------------

    def issue_token(
        self, app_key: str, timestamp: Any, encryption: str, refresh: str | None = None
    ) -> tuple[int, str, dict[str, Any] | None]:
        """(status, msg, data) per the token service's envelope (REFERENCE 3.2, 3.3, 3.5).

        `refresh` is the token to replace (token/refresh): a new token always, the old one
        expired at once. token/get hands back the current token until it expires, or, with
        `sticky_tokens`, even after it expired, until a refresh.
        """
        with self.lock:
            self.token_calls.append("refresh" if refresh is not None else "get")
            if not app_key or not encryption or timestamp in (None, ""):
                return 1202, "parameter empty", None
            if app_key not in self.apps:
                return 1002, "appKey does not exist", None
            expected = hashlib.sha256(f"{app_key}{timestamp}{self.apps[app_key]}".encode()).hexdigest()
            if encryption != expected:
                return 1003, "encryption invalid", None
            if encryption in self.seen_encryptions:
                return 1001, "repeated request", None
            self.seen_encryptions.add(encryption)
            now = self.clock()
            token = self.app_tokens.get(app_key)
            if refresh is not None:
                if refresh != token and self.tokens.get(refresh, ("",))[0] != app_key:
                    return 1204, "refresh failed", None
                self.expire_tokens()
                token = None
            elif token is not None and self.sticky_tokens:
                pass
            elif token is None or self.tokens[token][1] <= now:
                token = None
            if token is None:
                token = secrets.token_hex(16)
                self.tokens[token] = (app_key, now + self.token_lifetime)
                self.app_tokens[app_key] = token
            left = max(0, int(self.tokens[token][1] - now))
            return 0, "SUCCESS", {"accessToken": token, "expire": left}

    def check_token(self, token: str | None) -> tuple[str | None, str]:
        """(app secret, '') for a valid token, else (None, why)."""
        with self.lock:
            if not token or token not in self.tokens:
                return None, "invalid"
            app_key, expires = self.tokens[token]
            if expires <= self.clock():
                return None, "expired"
            return self.apps[app_key], ""

    def used(self, token: str) -> None:
        with self.lock:
            self.uses[token] = self.uses.get(token, 0) + 1

    def token_uses(self, token: str | None) -> int:
        """How many requests this token has been accepted for."""
        with self.lock:
            return self.uses.get(token or "", 0)

    def expire_tokens(self) -> None:
        """Token expiry on demand: every issued token is expired from now on."""
        with self.lock:
            now = self.clock()
            self.tokens = {t: (k, min(e, now)) for t, (k, e) in self.tokens.items()}

    # --- starts -----------------------------------------------------------------------

    def start_in_org(self, org_id: str, busy_for: float | None = None) -> None:
        """Another user starts a job in `org_id` now: starts there get 61121 for the start
        window (or `busy_for` seconds, when given)."""
        with self.lock:
            window = self.start_window if busy_for is None else busy_for
            self.org_starts[org_id] = self.clock() - self.start_window + window

    def start_refusal(self, org_id: str) -> tuple[int, str] | None:
        """61128 for an org without resource, 61121 while another start there is recent;
        None when a start may go ahead (which then makes the org busy for the window)."""
        with self.lock:
            if org_id in self.no_resource:
                return 61128, "The organization has not requested the stream processing resource"
            now = self.clock()
            last = self.org_starts.get(org_id)
            if last is not None and now - last < self.start_window:
                return 61121, (
                    "Another user in the organization is starting a stream processing job. "
                    "Please try again later."
                )
            self.org_starts[org_id] = now
            return None

    def too_many(self, assets: int, points: int) -> bool:
        """61105 under the configured reading of the limit (REFERENCE section 8)."""
        if self.request_limit == "cells":
            return assets * points > self.max_ids
        return points > self.max_ids or assets > self.max_ids

    # --- faults -----------------------------------------------------------------------

    def draw_fault(self, route: str) -> str | None:
        """Whether this request fails (seeded draw) and how: the kinds take turns, so that a
        run with enough faults meets every kind, whatever order the requests come in. A kind
        only a delete can meet (data false, a lost answer, a lie) keeps its turn until a
        delete draws a fault: other routes take the next kind without using that turn up."""
        with self.lock:
            f = self.faults
            if f.rate <= 0 or f.rng.random() >= f.rate:
                return None
            for offset in range(len(f.kinds)):
                kind = f.kinds[(f.turn + offset) % len(f.kinds)]
                if route == "delete" or kind not in DELETE_ONLY:
                    if offset == 0:
                        f.turn += 1
                    return kind
            return None

    # --- hooks: what tests make happen at exact requests -------------------------------

    def on_request(
        self,
        match: Match,
        *,
        skip: int = 0,
        times: int | None = 1,
        before: Callable[[World, dict[str, Any]], None] | None = None,
        after: Callable[[World, dict[str, Any]], None] | None = None,
        lose_answer: bool = False,
        expire_token: str | None = None,
        hold: bool = False,
    ) -> Hook[World]:
        """Act at exact requests: `match` is a route ("delete", "operate:pause", ...) or a
        predicate on the log entry. The first `skip` matches pass untouched, then the hook
        fires `times` times (None: for ever). See `Hook` for what each option does."""
        if expire_token is not None and expire_token not in EXPIRY_SHAPES:
            raise EmulatorError(f"unknown expiry shape {expire_token!r}; known: {EXPIRY_SHAPES}")
        hook: Hook[World] = Hook(
            match, skip, times, before, after, lose_answer, expire_token, threading.Event() if hold else None
        )
        with self.lock:
            self.hooks.append(hook)
        return hook

    def lose_answers(self, match: Match, n: int = 1) -> Hook[World]:
        """The next `n` matching requests take effect, then the connection drops unanswered."""
        return self.on_request(match, times=n, lose_answer=True)

    def set_status_after(self, match: Match, k: int, pipeline_id: str, status: str) -> Hook[World]:
        """A person changes the pipeline's status right after the k-th matching request."""
        return self.on_request(match, skip=k - 1, after=lambda w, _e: w.set_status(pipeline_id, status))

    def expire_token_at(self, match: Match = None, shape: str = "http401", n: int = 1) -> Hook[World]:
        """The next `n` matching requests find their token expired, answered in `shape`."""
        return self.on_request(match, times=n, expire_token=shape)

    def firing(self, entry: dict[str, Any]) -> list[Hook[World]]:
        """The hooks that fire for this request (each counts it)."""
        with self.lock:
            return [h for h in self.hooks if h.take(entry)]

    def set_status(self, pipeline_id: str, status: str) -> None:
        with self.lock:
            p = self.pipelines[pipeline_id]
            p.status, p.pausing_since = status, None

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Block until a logged request matches (entries are logged on arrival; `status` is
        None until answered); the entry, or `TimeoutError`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for entry in self.log:
                    if predicate(entry):
                        return entry
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching request arrived in time")
                self.changed.wait(left)

    # --- what tests read --------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        """One line of the journal (JSON): a delete that took effect or was refused, a pause,
        a start; so users can count clears per cell from outside, as the tests do."""
        if self.journal is None:
            return
        line = json.dumps({"at": time.time(), "event": event, **fields}, sort_keys=True)
        with self._journal_lock, self.journal.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def record(self, entry: dict[str, Any]) -> None:
        """Log a request on arrival; `finish` fills in its answer."""
        with self.changed:
            self.log.append(entry)
            self.changed.notify_all()

    def finish(self, entry: dict[str, Any], status: int, code: Any) -> None:
        with self.changed:
            entry["status"], entry["code"] = status, code
            self.changed.notify_all()

    def deletes_while_not_paused(self) -> int:
        """Deletes that reached a pipeline that was not PAUSED (answered 61199)."""
        with self.lock:
            return len(self.violations)

    def deleted_cells(self) -> set[tuple[str, str, str, str, str]]:
        """Every (org, pipeline, stage, asset, point) a successful delete covered."""
        with self.lock:
            return {
                (d["orgId"], d["pipelineId"], d["stage"], a, p)
                for d in self.delete_log
                for a in d["assets"]
                for p in d["points"]
            }

    def status(self, pipeline_id: str) -> str:
        with self.lock:
            return self.pipelines[pipeline_id].current_status(self.clock())


STATE_MAX_BYTES = 64 << 20


def _read_state(path: Path) -> str:
    """A state file's text: a regular file of at most STATE_MAX_BYTES (/dev/zero is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO is refused, not waited on
    with os.fdopen(fd, "rb", buffering=0) as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {path}")
        raw = fh.read(STATE_MAX_BYTES + 1) or b""
    if len(raw) > STATE_MAX_BYTES:
        raise OSError(f"larger than {STATE_MAX_BYTES >> 20} MiB: {path}")
    return raw.decode("utf-8")


def _parse(name: str, text: str) -> Any:
    """YAML or JSON by the file's suffix; a one-line `EmulatorError` when malformed."""
    try:
        return _parse_text(name, text)
    except RecursionError:
        raise EmulatorError(f"{name}: nested too deeply to be a world state") from None


def _parse_text(name: str, text: str) -> Any:
    if name.endswith((".yaml", ".yml")):
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            return YAML(typ="safe").load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            raise EmulatorError(f"{name}{where}: not valid YAML: {exc.problem}") from exc
        except YAMLError as exc:
            raise EmulatorError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EmulatorError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
