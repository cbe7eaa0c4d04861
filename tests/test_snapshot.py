"""Evidence of what was destroyed: apply --snapshot, the delete record's digest, the check,
and `ledger resolve --verify` settling an in-doubt request from what the cells hold."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import ORG, gateway_env, manifest_yaml, pipeline, run_cli, world_for, write

from reconciler import ledger as L
from reconciler.ledger.evidence import check, digest


def apply(repo: Path, em: Any, *args: str) -> Any:
    return run_cli(["apply", "--auto-approve", *args], repo, gateway_env(em))


def lines_of(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).splitlines(keepends=True)


@pytest.mark.parametrize("name", ["evidence.jsonl", "evidence.jsonl.gz"])
def test_snapshot_keeps_the_items_and_the_ledger_vouches(repo: Path, make_emulator: Any, name: str) -> None:
    seeded = {
        **pipeline(),
        "fillState": False,
        "state": [{"stage": "s1", "assets": ["a1"], "points": ["x", "y"], "value": "7.5"}],
    }
    em = make_emulator(world_for([seeded]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=["x", "y"]))
    res = apply(repo, em, "--snapshot", name)
    assert res.code == 0, res.all
    lines = lines_of(repo / name)
    rows = [json.loads(b) for b in lines]
    assert len(rows) == 2  # a2 held no state: nothing to keep
    led = L.read(repo / "applied-ledger.jsonl")
    (intent,) = [r for r in led.records if r.kind == "intent"]
    (delete,) = [r for r in led.records if r.kind == "delete"]
    assert {(r["item"]["assetId"], r["item"]["pointId"]) for r in rows} == {("a1", "x"), ("a1", "y")}
    assert all(
        r["intent"] == intent.seq
        and r["orgId"] == ORG
        and r["pipelineId"] == "p1"
        and r["stageInstanceName"] == "s1"
        for r in rows
    )
    assert rows[0]["item"]["value"] == "7.5" and "modelId" in rows[0]["item"]  # as returned
    assert delete.data["snapshot"] == digest(lines)
    # read before the delete, on the same body (one read: the canary's first is the snapshot's;
    # the canary reads it back after)
    routes = [(e["route"], e["body"]) for e in em.world.log if e["route"] in ("get", "delete")]
    assert [r for r, _ in routes] == ["get", "delete", "get"] and routes[0][1] == routes[1][1]
    shown = run_cli(["ledger", "show", "--snapshot", name], repo)
    assert shown.code == 0 and "2 items match the digests of 1 delete record" in shown.out


def test_a_tampered_snapshot_is_named(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2"], points=["x"]))
    assert apply(repo, em, "--snapshot", "ev.jsonl").code == 0
    path = repo / "ev.jsonl"
    path.write_text(path.read_text().replace('"a2"', '"a9"'))
    res = run_cli(["ledger", "show", "--snapshot", "ev.jsonl"], repo)
    assert res.code == 1 and "does NOT match the ledger" in res.out and "items) is not in the file" in res.out
    report = check(path, L.read(repo / "applied-ledger.jsonl").records)
    assert not report.ok and report.vouched == 0


def test_snapshot_from_reconcile_yaml_and_one_read_per_request(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(
        repo / "reconcile.yaml",
        "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\napply:\n  snapshot: out/ev.jsonl.gz\n",
    )
    write(repo / "manifests/a.yaml", manifest_yaml("a", stages=["s1", "s2"], assets=["a1"], points=["x"]))
    assert apply(repo, em).code == 0
    gets = [e for e in em.world.log if e["route"] == "get"]
    deletes = [e for e in em.world.log if e["route"] == "delete"]
    # one before each delete (each stage's canary reads first for the snapshot), one after
    assert len(deletes) == 2 and len(gets) == 4
    assert len(lines_of(repo / "out/ev.jsonl.gz")) == 2
    assert check(repo / "out/ev.jsonl.gz", L.read(repo / "applied-ledger.jsonl").records).ok


def test_no_evidence_no_delete(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x"]))
    em.world.on_request("get", times=None, before=lambda w, e: w.pipelines.pop("p1"), after=None)
    res = apply(repo, em, "--snapshot", "ev.jsonl", "--no-canary")  # the snapshot's own read
    assert res.code == 1 and "snapshot" in res.all
    assert [e for e in em.world.log if e["route"] == "delete"] == []
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records if r.kind in L.CELL_KINDS] == ["intent", "failed"]


def test_snapshot_survives_a_61105_split(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()], maxPoints=2))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x", "y", "z", "w"]))
    res = apply(repo, em, "--snapshot", "ev.jsonl", "--max-points", "4")
    assert res.code == 0, res.all
    led = L.read(repo / "applied-ledger.jsonl")
    (intent,) = [r for r in led.records if r.kind == "intent"]
    rows = [json.loads(b) for b in lines_of(repo / "ev.jsonl")]
    assert len(rows) == 4 and {r["intent"] for r in rows} == {intent.seq}
    assert check(repo / "ev.jsonl", led.records).ok and check(repo / "ev.jsonl", led.records).vouched == 2


def test_resolve_verify_settles_from_evidence(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x"]))
    path = repo / "applied-ledger.jsonl"
    fields = {
        "manifest": "a",
        "orgId": ORG,
        "pipelineId": "p1",
        "stageInstanceName": "s1",
        "assetIds": ["a1"],
        "pointIds": ["x"],
    }
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", fields)
        w.append("resume", {"orgId": ORG, "pipelineId": "p1"})
    still = run_cli(["ledger", "resolve", "--verify", "--yes"], repo, gateway_env(em))
    assert still.code == 1 and "1 cell still holds state" in still.all and "--resend-in-doubt" in still.err
    assert [r.kind for r in L.read(path).records][-1] == "resume"  # nothing recorded
    em.world.pipelines["p1"].delete("s1", ["a1"], ["x"])  # the lost delete had landed after all
    done = run_cli(["ledger", "resolve", "--verify", "--yes"], repo, gateway_env(em))
    assert done.code == 0 and "no state left" in done.out and "Recorded 1 in-doubt request" in done.out
    assert L.read(path).records[-1].data["resolved"] is True


def test_evidence_of_a_refused_delete_is_a_note_not_a_mismatch(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(
        world_for([{**pipeline(), "stages": {"s1": "WindowAggregator"}}])
    )  # get ok, delete 61107
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1"], points=["x"]))
    res = apply(repo, em, "--snapshot", "ev.jsonl")
    assert res.code == 1 and "Evidence of the state cleared" not in res.out, res.all  # the trial
    assert "Nothing was cleared; the state read before each delete not done: ev.jsonl" in res.out
    led = L.read(repo / "applied-ledger.jsonl")
    assert [r.kind for r in led.records if r.kind in L.CELL_KINDS] == ["intent", "failed"]
    report = check(repo / "ev.jsonl", led.records)
    assert report.ok and report.notes and "not recorded as done" in report.notes[0]
    forged = repo / "forged.jsonl"
    forged.write_text((repo / "ev.jsonl").read_text().replace('"intent":1', '"intent":99'))
    assert not check(forged, led.records).ok
    verify = run_cli(["ledger", "verify", "--snapshot", "forged.jsonl"], repo)
    assert verify.code == 1 and "no record of this ledger announced" in verify.out


def test_an_unwritable_snapshot_file_is_refused_before_any_call(repo: Path, make_emulator: Any) -> None:
    em = make_emulator(world_for([pipeline()]))
    write(repo / "manifests/a.yaml", manifest_yaml("a"))
    (repo / "taken").write_text("a file, not a folder")
    res = apply(repo, em, "--snapshot", "taken/ev.jsonl")
    assert (
        res.code == 1 and "--snapshot taken/ev.jsonl: cannot write" in res.err and "Traceback" not in res.all
    )
    assert [e for e in em.world.log if e["route"] in ("delete", "get", "operate")] == []
    assert L.read(repo / "applied-ledger.jsonl").records == []
