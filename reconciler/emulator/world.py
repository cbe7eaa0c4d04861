"""The emulator's world: apps, tokens, pipelines, stage state, faults and a request log.

Plain, thread-safe state with no HTTP in it; `app.py` puts the documented routes
in front. Seeded from a YAML/JSON file (format in README "Emulator") or the small
default world the demo uses. Imports nothing else of reconciler, so it stays an
independent stand-in for the gateway.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENERIC_TYPES = frozenset(
    {"LastRecordAppender", "LastChangedRecordAppender", "LatestRecordMerger", "RecordCapturer"}
)
STATUSES = ("PUBLISHED", "RUNNING", "PAUSED", "STOPPED")
FAULT_KINDS = (
    "latency",
    "http500",
    "http503",
    "http429",
    "drop",
    "61199",
    "data_false",
    "lost_answer",
    "token_expiry",
)
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


@dataclass
class Faults:
    """Fault injection, seeded so runs repeat. `rate` is per business request."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    latency_ms: float = 0.0
    extra_latency_ms: float = 200.0
    retry_after: float = 0.05
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)
    turn: int = 0

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}; known: {FAULT_KINDS}")


@dataclass
class Pipeline:
    pipeline_id: str
    org_id: str
    name: str
    status: str
    execution_mode: int
    kafka_rate: int | None
    stages: dict[str, str]
    fill_state: bool = False
    released: bool = True
    pause_delay: float = 0.0
    pausing_since: float | None = None
    # explicit state: stage -> asset -> points
    cells: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # fill-state mode: every cell has state unless a delete rectangle covers it
    deleted: dict[str, list[tuple[frozenset[str], frozenset[str]]]] = field(default_factory=dict)

    def current_status(self, now: float) -> str:
        if self.pausing_since is not None and now >= self.pausing_since + self.pause_delay:
            self.status, self.pausing_since = "PAUSED", None
        return self.status

    def has_state(self, stage: str, asset: str, point: str) -> bool:
        if self.fill_state:
            return not any(asset in a and point in p for a, p in self.deleted.get(stage, ()))
        return point in self.cells.get(stage, {}).get(asset, ())

    def delete(self, stage: str, assets: list[str], points: list[str]) -> None:
        if self.fill_state:
            self.deleted.setdefault(stage, []).append((frozenset(assets), frozenset(points)))
        by_asset = self.cells.get(stage, {})
        for a in assets:
            if a in by_asset:
                by_asset[a].difference_update(points)


class World:
    """Everything the emulated gateway knows; every method is thread-safe."""

    def __init__(self, seed: dict[str, Any] | None = None, faults: Faults | None = None) -> None:
        seed = seed if seed is not None else DEFAULT_WORLD
        self.lock = threading.RLock()
        self.apps: dict[str, str] = {
            a["appKey"]: a["appSecret"] for a in seed.get("apps", DEFAULT_WORLD["apps"])
        }
        self.token_lifetime = float(seed.get("tokenLifetime", TOKEN_LIFETIME))
        self.max_ids = int(seed.get("maxPoints", MAX_IDS))
        self.get_shape = str(seed.get("getShape", "items"))
        self.require_signature = bool(seed.get("requireSignature", True))
        self.pipelines: dict[str, Pipeline] = {}
        for p in seed.get("pipelines", []):
            self.add_pipeline(p)
        self.faults = faults or Faults()
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appKey, expires at)
        self.app_tokens: dict[str, str] = {}
        self.uses: dict[str, int] = {}
        self.seen_encryptions: set[str] = set()
        self.log: list[dict[str, Any]] = []
        self.delete_log: list[dict[str, Any]] = []
        self.violations: list[str] = []

    @classmethod
    def from_file(cls, path: str | Path, faults: Faults | None = None) -> World:
        text = Path(path).read_text()
        if str(path).endswith((".yaml", ".yml")):
            from ruamel.yaml import YAML

            data = YAML(typ="safe").load(text)
        else:
            data = json.loads(text)
        return cls(data, faults)

    def add_pipeline(self, p: dict[str, Any]) -> Pipeline:
        status = p.get("status", "RUNNING")
        if status not in STATUSES:
            raise ValueError(f"pipeline {p.get('pipelineId')}: unknown status {status!r}")
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
        )
        for rect in p.get("state", []):
            by_asset = pipe.cells.setdefault(rect["stage"], {})
            for a in rect["assets"]:
                by_asset.setdefault(a, set()).update(rect["points"])
        with self.lock:
            self.pipelines[pipe.pipeline_id] = pipe
        return pipe

    # --- tokens -----------------------------------------------------------------------

    def issue_token(
        self, app_key: str, timestamp: Any, encryption: str
    ) -> tuple[int, str, dict[str, Any] | None]:
        """(status, msg, data) per the token service's envelope (REFERENCE 3.2, 3.5)."""
        with self.lock:
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
            now = time.monotonic()
            token = self.app_tokens.get(app_key)
            if token is None or self.tokens[token][1] <= now:
                token = secrets.token_hex(16)
                self.tokens[token] = (app_key, now + self.token_lifetime)
                self.app_tokens[app_key] = token
            left = int(self.tokens[token][1] - now)
            return 0, "SUCCESS", {"accessToken": token, "expire": left}

    def check_token(self, token: str | None) -> tuple[str | None, str]:
        """(app secret, '') for a valid token, else (None, why)."""
        with self.lock:
            if not token or token not in self.tokens:
                return None, "invalid"
            app_key, expires = self.tokens[token]
            if expires <= time.monotonic():
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
            now = time.monotonic()
            self.tokens = {t: (k, min(e, now)) for t, (k, e) in self.tokens.items()}

    # --- faults -----------------------------------------------------------------------

    def draw_fault(self, route: str) -> str | None:
        """Whether this request fails (seeded draw) and how: the kinds take turns, so that a
        run with enough faults meets every kind, whatever order the requests come in."""
        with self.lock:
            f = self.faults
            if f.rate <= 0 or f.rng.random() >= f.rate:
                return None
            for _ in range(len(f.kinds)):
                kind = f.kinds[f.turn % len(f.kinds)]
                f.turn += 1
                if route == "delete" or kind not in ("data_false", "lost_answer"):
                    return kind
            return None

    # --- what tests read --------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)

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
            return self.pipelines[pipeline_id].current_status(time.monotonic())
