"""The apply peer: what a plain one-off script spends on the same deletes, as a whole process.

    ENOS_APP_KEY=… ENOS_APP_SECRET=… python tests/bench/peer_apply.py GATEWAY MANIFESTS_DIR CONCURRENCY [--canary]

One token call, one List Pipelines call (all must be PAUSED), then the 400 signed
Delete Stage State calls from CONCURRENCY threads over one pooled httpx client. No
ledger, no retries, no plan: the bare cost of the calls `reconcile apply` makes.

With --canary, the calls of apply's canary too (DESIGN "Gentle on production"), as
plainly as they can be made: one thread takes the stages in order; for each it reads the
first request's cells and the next request's (two reads at once, while other stages'
deletes go on), sends the first request once no delete is in flight and holds every
other delete meanwhile, reads both again (at once), checks that the first's cells hold
nothing and the next's hold what they held, then lets the stage's other requests go to
the pool and moves on to the next stage.
Signing follows DESIGN "EnOS contract decisions", re-implemented here in a few lines
so that the peer imports nothing of reconciler. The requests are the benchmark's
plan (see `apply.py`): per manifest `bench-M` (pipeline `pipeM`), per stage, the
assets of `ids/assets-M.txt` in batches of 1,000, one point `P.value`.
"""

import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

ORG, STAGES, BATCH, POINT = "o1", 10, 1000, "P.value"
TOKEN_PATH = "/apim-token-service/v2.0/token/get"
PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"

_last_ts = 0
_ts_lock = threading.Lock()


def timestamp():
    """Epoch ms, strictly increasing (a reused token `encryption` is refused)."""
    global _last_ts
    with _ts_lock:
        _last_ts = max(_last_ts + 1, int(time.time() * 1000))
        return _last_ts


def token(http, key, secret):
    ts = timestamp()
    enc = hashlib.sha256(f"{key}{ts}{secret}".encode()).hexdigest()
    r = http.post(TOKEN_PATH, json={"appKey": key, "encryption": enc, "timestamp": ts})
    return r.json()["data"]["accessToken"]


def call(http, tok, secret, method, path, query, body=b""):
    ts = timestamp()
    params = "".join(f"{k}{query[k]}" for k in sorted(query))
    sig = hashlib.sha256(tok.encode() + params.encode() + body + str(ts).encode() + secret.encode())
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "apim-accesstoken": tok,
        "apim-timestamp": str(ts),
        "apim-signature": sig.hexdigest(),
    }
    r = http.request(method, path, params=query, content=body or None, headers=headers)
    payload = r.json()
    if r.status_code != 200 or payload.get("code") != 0:
        raise SystemExit(f"{method} {path}: HTTP {r.status_code} {payload}")
    return payload["data"]


def requests(manifests_dir):
    out = []
    m = 0
    while os.path.exists(f"{manifests_dir}/ids/assets-{m}.txt"):
        with open(f"{manifests_dir}/ids/assets-{m}.txt", encoding="utf-8") as fh:
            assets = [s for s in (line.strip() for line in fh) if s and s[0] != "#"]
        for s in range(STAGES):
            for b in range(0, len(assets), BATCH):
                out.append((f"pipe{m}", f"stage_{s}", assets[b : b + BATCH]))
        m += 1
    return out


class Gate:
    """Deletes go together; a canary's delete and read-back go alone, ahead of any waiting."""

    def __init__(self):
        self.cond = threading.Condition()
        self.sending = self.waiting = 0
        self.checking = False

    def send(self, fn):
        with self.cond:
            self.cond.wait_for(lambda: not self.checking and not self.waiting)
            self.sending += 1
        try:
            return fn()
        finally:
            with self.cond:
                self.sending -= 1
                self.cond.notify_all()

    def check(self, fn):
        with self.cond:
            self.waiting += 1
            self.cond.wait_for(lambda: not self.checking and not self.sending)
            self.waiting -= 1
            self.checking = True
        try:
            return fn()
        finally:
            with self.cond:
                self.checking = False
                self.cond.notify_all()


def holding(items, assets):
    if isinstance(items, dict):
        items = items.get("items", [])
    wanted = set(assets)
    return {
        (i["assetId"], i["pointId"])
        for i in items
        if i.get("assetId") in wanted and i.get("pointId") == POINT
    }


def main(argv):
    gateway, manifests_dir, concurrency = argv[0], argv[1], int(argv[2])
    canary = "--canary" in argv[3:]
    key, secret = os.environ["ENOS_APP_KEY"], os.environ["ENOS_APP_SECRET"]
    todo = requests(manifests_dir)
    connections = concurrency + (2 if canary else 0)  # the canary's two reads go alongside the deletes
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    with httpx.Client(base_url=gateway, limits=limits, timeout=30.0) as http:
        tok = token(http, key, secret)
        query = {"orgId": ORG, "ifReleased": "true", "pageNo": "1", "pageSize": "100"}
        listed = call(http, tok, secret, "GET", PIPELINES_PATH, query)["pipelines"]
        status = {p["pipelineId"]: p["status"] for p in listed}
        if any(status.get(pipe) != "PAUSED" for pipe, _, _ in todo):
            raise SystemExit(f"not all pipelines paused: {status}")

        def state(action, req):
            pipe, stage, assets = req
            body = {
                "pipelineId": pipe,
                "stageInstanceName": stage,
                "assetIds": ",".join(assets),
                "pointIds": POINT,
            }
            q = {"action": action, "orgId": ORG}
            return call(http, tok, secret, "POST", STAGE_STATE_PATH, q, json.dumps(body).encode())

        def delete(req):
            if state("delete", req) is not True:
                raise SystemExit(f"delete not confirmed: {req[0]} {req[1]}")

        with ThreadPoolExecutor(concurrency) as pool:
            if not canary:
                done = sum(1 for _ in pool.map(delete, todo))
            else:
                done = canaried(pool, todo, state, delete)
    print(f"{done} deletes")


def canaried(pool, todo, state, delete):
    """Each stage's first request checked by reading back, before its others go to `pool`."""
    gate = Gate()
    stages = {}
    for req in todo:
        stages.setdefault((req[0], req[1]), []).append(req)
    futures = []
    with ThreadPoolExecutor(1) as reader:  # the next request's reads, alongside the first's
        for reqs in stages.values():
            first, following = reqs[0], (reqs[1] if len(reqs) > 1 else None)

            def read_following(following=following):
                return holding(state("get", following), following[2]) if following else set()

            theirs = reader.submit(read_following)
            state("get", first)  # apply's canary reads its cells first too
            before = theirs.result()

            def check(first=first, read_following=read_following):
                delete(first)
                after = reader.submit(read_following)
                return holding(state("get", first), first[2]), after.result()

            still, after = gate.check(check)
            if still or before - after:
                raise SystemExit(f"canary: {first[0]} {first[1]}: the gateway did not do what it answered")
            futures += [pool.submit(gate.send, lambda r=r: delete(r)) for r in reqs[1:]]
    return len(stages) + sum(1 for f in futures if f.result() is None)


if __name__ == "__main__":
    main(sys.argv[1:])
