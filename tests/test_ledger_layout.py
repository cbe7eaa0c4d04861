"""Ledger format v3: segments sealed by a record that chains them, ID lists stored once by
content, and the files interface the git code uses (ledger_files, extension_problem,
write_files)."""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import manifest_yaml, run_cli, write

from reconciler import ledger as L
from reconciler.errors import LedgerError, LedgerWriteError

KEY = {"manifest": "m", "orgId": "o", "pipelineId": "p", "stageInstanceName": "s"}
FLEET = [f"asset-{i:05d}" for i in range(300)]  # ~3.6 KB joined: stored by content
POINTS = ["pt1", "pt2"]  # short: inline


def batch(n: int, size: int = 100) -> dict[str, Any]:
    return {**KEY, "assetIds": FLEET[n * size : (n + 1) * size], "pointIds": POINTS}


def build(path: Path, runs: int = 3, segment_bytes: int = 2_000) -> L.Ledger:
    """`runs` applies of the same 3 batches: intent, delete by reference, each."""
    for _ in range(runs):
        led = L.read(path)
        with L.LedgerWriter(led, segment_bytes=segment_bytes) as w:
            w.append("pause", {"orgId": "o", "pipelineId": "p"})
            for n in range(3):
                w.append_delete(w.append("intent", {**batch(n), "actor": {"user": "ci"}}))
            w.append("resume", {"orgId": "o", "pipelineId": "p"})
    return L.read(path)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def segments(path: Path) -> list[Path]:
    return sorted((L.sidecar_dir(path) / "segments").glob("*.jsonl"))


# --- the layout -----------------------------------------------------------------------


def test_segments_are_sealed_and_the_chain_runs_across_them(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    led = build(path)
    assert [r.seq for r in led.records] == list(range(1, 25)) and not led.warnings
    segs = segments(path)
    assert len(segs) >= 2 and led.tail == segs[-1]
    files = [path, *segs]
    for sealed, following in itertools.pairwise(files):
        seal = lines(sealed)[-1]
        assert seal["kind"] == "seal" and "seq" not in seal and seal["v"] == 3
        assert seal["next"] == following.relative_to(L.sidecar_dir(path)).as_posix()
        first = lines(following)[0]
        assert first["prev"] == seal["hash"] and first["seq"] == seal["after"] + 1
    assert "seal" not in {r.kind for r in led.records}
    for f in files:
        # sealed at the start of the first run after it passed segment_bytes: a run's records
        # (8 here, about 2.5 KB) stay in one segment, so each segment starts with a run's pause
        assert lines(f)[0]["kind"] == "pause"
        assert f.stat().st_size < 2_000 + 4_000


def test_a_run_longer_than_several_segments_is_sealed_within_it(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path), segment_bytes=1_000) as w:
        for n in range(40):
            w.append_delete(w.append("intent", {**batch(n % 3), "actor": {"user": "ci"}}))
    assert len(segments(path)) >= 2
    for f in [path, *segments(path)[:-1]]:
        assert f.stat().st_size < 1_000 * L.RUN_SEGMENTS + 1_000


def test_long_lists_are_stored_once_by_content(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    led = build(path, runs=3)
    ids = sorted((L.sidecar_dir(path) / "ids").iterdir())
    assert len(ids) == 3  # 3 batches, 3 runs: each list once
    intent = next(r for r in led.records if r.kind == "intent")
    raw = next(x for f in [path, *segments(path)] for x in lines(f) if x.get("seq") == intent.seq)
    ref = raw["assetIds"]
    assert set(ref) == {"sha256", "count"} and ref["count"] == 100
    assert f"{ref['sha256']}.txt" in {p.name for p in ids}  # the list file it names, stored once
    assert raw["pointIds"] == "pt1,pt2"  # short lists stay inline
    assert intent.asset_ids == tuple(FLEET[:100])
    shown = run_cli(["ledger", "show", "--ledger", str(path), "--format", "json"], tmp_path)
    assert shown.code == 0 and FLEET[99] in shown.out


def _in_ids(path: Path, target: object) -> bool:
    return Path(str(target)).parent == L.sidecar_dir(path) / "ids"


def test_a_new_list_is_stored_while_other_records_are_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new list's file and directory are made durable outside the writer's mutex: another
    thread's record does not wait for them, and the record naming the list comes only once
    the list is in place (invariant 4)."""
    path = tmp_path / "l.jsonl"
    placing, release = threading.Event(), threading.Event()
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if _in_ids(path, dst):
            placing.set()
            assert release.wait(30)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with L.LedgerWriter(L.read(path)) as w:
        listed: list[L.Record] = []
        t = threading.Thread(target=lambda: listed.append(w.append("intent", {**batch(0), "actor": {}})))
        t.start()
        assert placing.wait(30)
        other = w.append("pause", {"orgId": "o", "pipelineId": "p"})  # not held by the list
        assert other.seq == 1 and not listed
        assert [r.seq for r in L.read(path).records] == [1]  # durable, alone
        release.set()
        t.join()
    led = L.read(path)
    assert [(r.seq, r.kind) for r in led.records] == [(1, "pause"), (2, "intent")] and listed[0].seq == 2
    assert led.records[1].asset_ids == tuple(FLEET[:100])


def test_a_list_appended_by_several_threads_at_once_is_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l.jsonl"
    stores: list[object] = []
    gate = threading.Barrier(6)
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if _in_ids(path, dst):
            stores.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with L.LedgerWriter(L.read(path)) as w:

        def worker(n: int) -> None:
            gate.wait(30)
            w.append_delete(w.append("intent", {**batch(0), "actor": {"user": f"t{n}"}}))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    led = L.read(path)
    assert len(stores) == 1 and len(list((L.sidecar_dir(path) / "ids").iterdir())) == 1
    assert [r.kind for r in led.records].count("intent") == 6 and not led.warnings
    assert all(r.asset_ids == tuple(FLEET[:100]) for r in led.records)


def test_a_list_that_cannot_be_stored_fails_its_append_and_every_later_one(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    L.sidecar_dir(path).mkdir()
    (L.sidecar_dir(path) / "ids").write_text("in the way")  # a file where the lists' folder goes
    with L.LedgerWriter(L.read(path)) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p"})
        with pytest.raises(LedgerWriteError, match=r"ids/[0-9a-f]{64}\.txt: cannot read an ID list"):
            w.append("intent", {**batch(0), "actor": {}})
        with pytest.raises(LedgerWriteError, match="earlier append failed"):
            w.append("resume", {"orgId": "o", "pipelineId": "p"})
    assert [r.kind for r in L.read(path).records] == ["pause"]


def test_an_edited_list_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path, runs=1)
    target = sorted((L.sidecar_dir(path) / "ids").iterdir())[1]
    target.write_bytes(target.read_bytes().replace(b"asset-00150", b"asset-99999"))
    with pytest.raises(LedgerError, match=rf"its ID list ids/{target.name} does not match its sha256"):
        L.read(path)
    target.unlink()
    with pytest.raises(LedgerError, match=rf"its ID list ids/{target.name} is missing"):
        L.read(path)


def test_an_edited_line_in_a_later_segment_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    seg = segments(path)[0]
    body = seg.read_bytes().splitlines(keepends=True)
    body[1] = body[1].replace(b'"at":"2', b'"at":"1')
    seg.write_bytes(b"".join(body))
    with pytest.raises(LedgerError, match=rf"{seg.name}:2: hash does not match"):
        L.read(path)
    result = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert result.code == 1 and f"{seg.name}:2" in result.err
    result = run_cli(["ledger", "verify", "--ledger", "l.jsonl"], tmp_path)  # spelt as given
    assert f"error: l.jsonl.d/segments/{seg.name}:2: hash does not match" in result.err, result.err


def test_a_record_after_a_seal_and_a_missing_segment_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    first = segments(path)[0]
    text = path.read_bytes()
    path.write_bytes(text + text.splitlines(keepends=True)[0])
    with pytest.raises(LedgerError, match=r"l\.jsonl:\d+: a record after the seal"):
        L.read(path)
    path.write_bytes(text)
    first.rename(first.with_suffix(".gone"))
    with pytest.raises(LedgerError, match=r"names the next segment .*000002\.jsonl, which is missing"):
        L.read(path)


def test_a_torn_tail_in_the_last_segment_is_a_warning_and_cut_by_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    tail = segments(path)[-1]
    whole = tail.read_bytes()
    tail.write_bytes(whole + b'{"v":3,"seq":25,"ki')
    led = L.read(path)
    assert len(led.warnings) == 1 and f"{tail.name}:" in led.warnings[0] and led.head_seq == 24
    assert L.ledger_files(path)[f"l.jsonl.d/segments/{tail.name}"] == whole
    with L.LedgerWriter(led, segment_bytes=10**6) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p"})
    again = L.read(path)
    assert again.warnings == [] and again.head_seq == 25


def test_a_seal_as_the_last_line_makes_the_head(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    led = L.read(path)
    with L.LedgerWriter(led, segment_bytes=1) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p"})
        w.append("resume", {"orgId": "o", "pipelineId": "p"})  # seals the main file first
        head = w.head
    again = L.read(path)
    assert (again.head_seq, again.head_hash) == head
    assert lines(path)[-1]["kind"] == "seal" and again.records[-1].kind == "resume"


# --- item 5: a deeply nested line, a missing final newline ----------------------------


def test_a_deeply_nested_line_is_an_error_and_as_a_torn_tail_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path, runs=1, segment_bytes=10**6)
    whole = path.read_bytes()
    path.write_bytes(whole + b"[" * 200_000 + b"\n")
    result = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert result.code == 1 and "nested too deeply" in result.err and "Traceback" not in result.err
    write(tmp_path / "m" / "a.yaml", manifest_yaml("a"))
    planned = run_cli(["plan", str(tmp_path / "m"), "--ledger", str(path)], tmp_path)
    assert planned.code == 1 and "nested too deeply" in planned.err and "Traceback" not in planned.err
    path.write_bytes(whole + b"[" * 200_000)
    result = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert result.code == 0 and "last line is incomplete" in result.err
    assert L.ledger_files(path)["l.jsonl"] == whole


def test_a_whole_last_record_without_its_newline_is_kept_and_extends_the_published_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.jsonl"
    build(path, runs=1, segment_bytes=10**6)
    path.write_bytes(path.read_bytes()[:-1])  # verifies: a whole record without its newline
    published = L.ledger_files(path)
    assert published["l.jsonl"] == path.read_bytes()  # not cut: it is a record
    assert L.extension_problem(L.ledger_files(path), published) is None  # a no-change apply
    assert L.whole_records(path.read_bytes()) == path.read_bytes()
    torn = path.read_bytes() + b'\n{"v":3,"se'
    assert L.whole_records(torn) == path.read_bytes() + b"\n"  # a torn line after it: cut
    with L.LedgerWriter(L.read(path)) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p"})
    assert L.extension_problem(L.ledger_files(path), published) is None


# --- the files interface --------------------------------------------------------------


def test_ledger_files_lists_main_segments_and_lists_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    side = L.sidecar_dir(path)
    (side / "ids" / ".tmpjunk.txt.tmp").write_bytes(b"half")  # an interrupted list write
    (side / "segments" / "000099.jsonl").write_bytes(b"")  # no seal names it
    files = L.ledger_files(path)
    assert next(iter(files)) == "l.jsonl"
    names = set(files)
    sealed = [p for p in segments(path) if p.name != "000099.jsonl"]
    expected = {p.relative_to(tmp_path).as_posix() for p in [path, *sealed, *side.glob("ids/*.txt")]}
    assert names == expected and len(sealed) >= 2
    assert all(files[k] == (tmp_path / k).read_bytes() for k in names)
    assert L.ledger_files(tmp_path / "missing.jsonl") == {}


def test_ledger_files_of_a_v2_file_is_the_file(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        w.append("intent", {**KEY, "assetIds": ["a"], "pointIds": ["p"]})
    assert L.ledger_files(path) == {"l.jsonl": path.read_bytes()}


def test_extension_problem_names_what_was_changed_cut_or_lost(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path, runs=1)
    old = L.ledger_files(path)
    build(path, runs=1)
    new = L.ledger_files(path)
    assert L.extension_problem(new, old) is None and L.extension_problem(old, old) is None
    assert "cut at line" in str(L.extension_problem(old, new))
    lost = next(k for k in new if "/segments/" in k)
    assert str(L.extension_problem({k: v for k, v in new.items() if k != lost}, new)) == (
        f"{lost}: in the last published ledger, but gone now"
    )
    seg = "l.jsonl.d/segments/000002.jsonl"
    edited = {**new, seg: new[seg].replace(b'"at":"2', b'"at":"1', 1)}
    assert str(L.extension_problem(edited, new)).startswith(f"{seg}:")
    stray = "l.jsonl.d/ids/" + "0" * 64 + ".txt"  # a list a run wrote before it died
    assert L.extension_problem(new, {**old, stray: b"x\n"}) is None
    named = next(k for k in old if "/ids/" in k)
    assert "gone now" in str(L.extension_problem({k: v for k, v in new.items() if k != named}, new))
    lst = next(k for k in new if "/ids/" in k)
    assert "ID list file changed" in str(L.extension_problem({**new, lst: b"x\n"}, new))
    cut = {**new, "l.jsonl": new["l.jsonl"][: new["l.jsonl"].index(b"\n") + 1]}
    assert "l.jsonl: cut at line 2" in str(L.extension_problem(cut, new))


def test_a_migration_is_an_extension_and_a_rewrite_that_drops_a_record_is_not(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    lines_v2 = []
    prev = L.GENESIS
    for seq in range(1, 41):
        rec = {
            "v": 2,
            "seq": seq,
            "kind": "intent",
            "at": "2026-01-01T00:00:00.000Z",
            **KEY,
            "assetIds": ",".join(FLEET[:60]),
            "pointIds": "p",
            "actor": {"runUrl": f"run-{seq // 5}"},  # runs of 5: migrate seals where one begins
            "prev": prev,
        }
        rec["hash"] = prev = L.record_hash(rec)
        lines_v2.append(L.canonical(rec) + b"\n")
    path.write_bytes(b"".join(lines_v2))
    old = L.ledger_files(path)
    result = L.migrate(path, segment_bytes=3_000)
    assert result.backup == tmp_path / "l.jsonl.v2.bak" and result.files_after > 2
    new = L.ledger_files(path)
    assert L.extension_problem(new, old) is None
    assert [r.seq for r in L.read(path).records] == list(range(1, 41))
    short = dict(old)
    short["l.jsonl"] = b"".join(lines_v2[:-1])
    assert L.extension_problem(short, old) is not None  # one record less: not a migration


def test_write_files_makes_the_ledger_exactly_the_mapping(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "l.jsonl", tmp_path / "b" / "l.jsonl"
    build(a, runs=2)
    b.parent.mkdir()
    build(b, runs=1, segment_bytes=1_000)
    (L.sidecar_dir(b) / "stray.txt").write_bytes(b"left over")
    L.write_files(b, L.ledger_files(a))
    assert L.ledger_files(b) == L.ledger_files(a)
    assert not (L.sidecar_dir(b) / "stray.txt").exists()
    assert [r.hash for r in L.read(b).records] == [r.hash for r in L.read(a).records]
    with pytest.raises(LedgerError, match="not a file of the ledger"):
        L.write_files(b, {**L.ledger_files(a), "../evil": b""})
    single = tmp_path / "c" / "l.jsonl"
    single.parent.mkdir()
    L.write_files(single, {"l.jsonl": b""})
    assert single.read_bytes() == b"" and not L.sidecar_dir(single).exists()


def test_append_copies_rechains_records_with_lists_by_content(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    build(ours, runs=1)
    build(theirs, runs=2)
    mine = L.read(ours).records
    with L.LedgerWriter(L.read(theirs), segment_bytes=2_000) as w:
        copies = w.append_copies(mine)
    after = L.read(theirs)
    assert [(r.kind, r.at, r.asset_ids) for r in after.records[-len(mine) :]] == [
        (r.kind, r.at, r.asset_ids) for r in mine
    ]
    assert [c.seq for c in copies] == list(range(17, 17 + len(mine)))


def test_concurrent_appends_across_seals_keep_every_record(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    returned: list[int] = []
    lock = threading.Lock()
    with L.LedgerWriter(L.read(path), segment_bytes=1_500, seal_within_runs=True) as w:

        def worker(n: int) -> None:
            for i in range(25):
                seq = w.append("intent", {**batch(i % 3), "actor": {"user": f"t{n}"}}).seq
                with lock:
                    returned.append(seq)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    led = L.read(path, check_seals=True)  # each seal's summary is what its segment holds
    assert sorted(returned) == [r.seq for r in led.records] == list(range(1, 151))
    assert len(segments(path)) > 10 and not led.warnings


def test_a_segment_that_cannot_be_made_stops_the_writer_and_keeps_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path, runs=1, segment_bytes=10**6)
    before = L.ledger_files(path)
    L.sidecar_dir(path).joinpath("segments").write_text("in the way")
    with L.LedgerWriter(L.read(path), segment_bytes=100) as w:
        with pytest.raises(
            LedgerWriteError, match=r"segments/000002\.jsonl: cannot create the next ledger segment"
        ):
            w.append("pause", {"orgId": "o", "pipelineId": "p"})
        with pytest.raises(LedgerWriteError, match="earlier append failed"):
            w.append("pause", {"orgId": "o", "pipelineId": "p"})
    assert L.ledger_files(path) == before and L.read(path).head_seq == 8


# --- what a user reads ------------------------------------------------------------------


def test_verify_says_how_many_files_and_seals_it_checked(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    n = len(segments(path)) + 1
    res = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert res.code == 0 and f"in {n} files ({n - 1} seals and their summaries checked)" in res.out, res.all


def test_line_100_is_named_as_a_number_never_an_emoji(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path), segment_bytes=10**7) as w:
        for n in range(120):
            w.append("pause", {"orgId": "o", "pipelineId": f"p{n}"})
    body = path.read_bytes().splitlines(keepends=True)
    body[99] = body[99].replace(b'"pipelineId":"p99"', b'"pipelineId":"p98"')
    path.write_bytes(b"".join(body))
    res = run_cli(["ledger", "verify", "--ledger", str(path)], tmp_path)
    assert res.code == 1 and "l.jsonl:100: hash does not match" in res.err and "\U0001f4af" not in res.err


def test_show_explains_that_seals_are_not_history(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    res = run_cli(["ledger", "show", "--ledger", str(path), "--kind", "seal"], tmp_path)
    assert res.code == 1 and "not history" in res.err and "ledger verify" in res.err, res.all
    res = run_cli(["ledger", "show", "--ledger", str(path), "--kind", "pauses"], tmp_path)
    assert res.code == 1 and "did you mean 'pause'" in res.err and "seal" not in res.err, res.all


def test_a_segment_given_as_the_ledger_names_the_main_file(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    build(path)
    res = run_cli(["ledger", "verify", "--ledger", str(segments(path)[0])], tmp_path)
    assert res.code == 1 and "is a segment of the ledger" in res.err and f"--ledger {path}" in res.err, (
        res.all
    )


def test_ledger_files_never_gives_a_file_as_it_was(tmp_path: Path) -> None:
    """Files are not re-read while unchanged (a publish reads them again and again), but any
    write, even of as many bytes in place, is seen."""
    path = tmp_path / "l.jsonl"
    build(path)
    seg = segments(path)[0]
    before = L.ledger_files(path)
    assert L.ledger_files(path) == before
    data = seg.read_bytes()
    with seg.open("r+b") as fh:  # same size, same inode
        fh.write(data[:10].replace(b"{", b"["))
    after = L.ledger_files(path)
    key = f"l.jsonl.d/segments/{seg.name}"
    assert after[key] != before[key] and after[key].startswith(b'["')
