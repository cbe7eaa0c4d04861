"""Format v2: joined ID lists, deletes that refer to their intent, v1 compatibility, and
the fast content hash (it must compute exactly the canonical hash, for any line)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import ledger as L
from reconciler.errors import LedgerError
from reconciler.ledger._format import content_hash

KEY = {"manifest": "m", "orgId": "o", "pipelineId": "p", "stageInstanceName": "s"}
CELLS = {**KEY, "assetIds": ["a1", "a2"], "pointIds": ["pt"]}
STORED = {**KEY, "assetIds": "a1,a2", "pointIds": "pt"}  # CELLS as a v2 line holds them
AT = "2026-11-27T10:00:00.000Z"


def write_raw(path: Path, records: list[dict[str, Any]]) -> None:
    """Chain hand-made records (any version, any fields) the way the format fixes it."""
    prev, out = L.GENESIS, []
    for seq, rec in enumerate(records, start=1):
        full = {"v": 2, "seq": seq, "at": AT, **rec, "prev": prev}
        full["hash"] = prev = L.record_hash(full)
        out.append(L.canonical(full) + b"\n")
    path.write_bytes(b"".join(out))


def test_a_delete_confirming_its_intent_refers_to_it_and_reads_as_its_cells(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        intent = w.append("intent", {**CELLS, "actor": {"user": "ci"}})
        done = w.append_delete(intent, {"actor": {"user": "ci"}})
        refused = w.append("intent", CELLS)
        w.append_failed(refused, code=61102, message="stage not found", fields={"actor": {"user": "ci"}})
    stored = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert stored[1]["intent"] == 1 and "assetIds" not in stored[1] and stored[1]["manifest"] == "m"
    assert stored[3]["intent"] == 3 and (stored[3]["code"], stored[3]["message"]) == (
        61102,
        "stage not found",
    )
    led = L.read(path)
    i, d, _, f = led.records
    assert d.asset_ids is i.asset_ids and d.point_ids is i.point_ids  # shared, not copied
    assert (d.kind, d.key, d.asset_ids, d.intent_seq) == ("delete", i.key, ("a1", "a2"), 1)
    assert (f.kind, f.code, f.point_ids) == ("failed", 61102, ("pt",))
    assert done.asset_ids == d.asset_ids and done.hash == d.hash
    assert d.as_json()["assetIds"] == ["a1", "a2"] and d.as_json()["intent"] == 1


def test_a_v1_ledger_keeps_verifying_and_new_records_are_v3(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_raw(
        path,
        [
            {"v": 1, "kind": "intent", **CELLS},
            {"v": 1, "kind": "delete", **CELLS},
            {"v": 1, "kind": "pause", "orgId": "o", "pipelineId": "p"},
        ],
    )
    led = L.read(path)
    with L.LedgerWriter(led) as w:
        w.append_delete(led.records[0])  # a v3 delete may close a v1 intent
        w.append("intent", {**CELLS, "assetIds": ["a3"]})
    again = L.read(path)
    assert [r.data["v"] for r in again.records] == [1, 1, 1, 3, 3]
    assert [r.asset_ids for r in again.records] == [("a1", "a2"), ("a1", "a2"), (), ("a1", "a2"), ("a3",)]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [{"kind": "pause", "orgId": "o", "pipelineId": "p"}, {"kind": "delete", **KEY, "intent": 1}],
            "no earlier intent",
        ),
        ([{"kind": "delete", **KEY, "intent": 2}, {"kind": "intent", **STORED}], "no earlier intent"),
        ([{"kind": "intent", **STORED}, {"kind": "delete", **KEY, "intent": True}], "no earlier intent"),
        ([{"kind": "intent", **STORED}, {"kind": "intent", **KEY, "intent": 1}], "no earlier intent"),
        (
            [{"kind": "intent", **STORED}, {"kind": "delete", **KEY, "manifest": "x", "intent": 1}],
            "another manifest",
        ),
        ([{"kind": "intent", **STORED}, {"kind": "delete", **STORED, "intent": 1}], "both an intent and"),
        ([{"kind": "intent", **KEY, "assetIds": "a,,b", "pointIds": "p"}], "malformed assetIds"),
        ([{"kind": "intent", **KEY, "assetIds": "a", "pointIds": ""}], "malformed pointIds"),
        ([{"kind": "intent", **KEY, "assetIds": ["a"], "pointIds": "p"}], "malformed assetIds"),
        ([{"v": 1, "kind": "intent", **KEY, "assetIds": "a", "pointIds": ["p"]}], "malformed assetIds"),
    ],
    ids=[
        "ref-to-pause",
        "ref-forward",
        "ref-bool",
        "intent-with-ref",
        "ref-other-key",
        "ref-and-lists",
        "empty-id",
        "empty-points",
        "v2-list",
        "v1-text",
    ],
)
def test_malformed_v2_records_are_errors_naming_the_line(
    tmp_path: Path, records: list[dict[str, Any]], message: str
) -> None:
    path = tmp_path / "l.jsonl"
    write_raw(path, records)
    with pytest.raises(LedgerError, match=rf"l.jsonl:\d: .*{message}"):
        L.read(path)


def test_the_writer_refuses_ids_that_would_not_split_back(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with L.LedgerWriter(L.read(path)) as w:
        for bad in (["a,b"], [], [""], "a1,a2"):
            with pytest.raises(LedgerError, match="non-empty list of IDs without commas"):
                w.append("intent", {**CELLS, "assetIds": bad})
        other = L.Record(1, "intent", AT, "h", {}, ("a",), ("p",))
        with pytest.raises(LedgerError, match="not an intent of this ledger"):
            w.append_delete(other)
    assert not path.exists()


def test_copies_follow_the_new_seqs_of_their_intents(tmp_path: Path) -> None:
    """A git rebase re-chains local records after the remote ones: references move along."""
    base, local = tmp_path / "base.jsonl", tmp_path / "local.jsonl"
    with L.LedgerWriter(L.read(local)) as w:
        w.append("intent", {**CELLS, "manifest": "old"})
        i = w.append("intent", CELLS)
        w.append_delete(i)
    with L.LedgerWriter(L.read(base)) as w:
        w.append("pause", {"orgId": "o", "pipelineId": "p"})
        w.append("intent", {**CELLS, "manifest": "other"})
        copies = w.append_copies(L.read(local).records[1:])
    assert [c.seq for c in copies] == [3, 4] and copies[1].intent_seq == 3
    led, originals = L.read(base), L.read(local).records[1:]
    assert led.records[-1].asset_ids == ("a1", "a2")
    assert [r.at for r in led.records[2:]] == [r.at for r in originals]


# --- the fast content hash is the canonical hash ---------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
_big_text = st.lists(_text, min_size=1, max_size=40).map(",".join)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text | _big_text,
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=60,
)
_records = st.dictionaries(
    st.sampled_from(["assetIds", "pointIds", "actor", "note", "hash", "a", "zz", "\x00assetIds"]),
    _json | st.lists(_text, min_size=9, max_size=60) | st.text(min_size=129, max_size=300),
)


@settings(max_examples=examples(150), deadline=None)
@given(_records, st.sampled_from(["canonical", "ascii", "spaced"]))
def test_content_hash_equals_the_canonical_hash_for_any_line(record: dict[str, Any], style: str) -> None:
    if style == "canonical":
        line = L.canonical(record)
    elif style == "ascii":  # escapes the writer never makes: still the same content
        line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    else:
        line = json.dumps(record, indent=1, ensure_ascii=False).encode()
    data = json.loads(line.decode())
    assert content_hash(data, line) == L.record_hash(data)


def test_a_line_hashing_its_own_non_canonical_bytes_is_refused(tmp_path: Path) -> None:
    """The shortcut never trusts stored bytes: a line must hash as its canonical form."""
    path = tmp_path / "l.jsonl"
    body = {"v": 2, "seq": 1, "kind": "intent", "at": AT, **KEY, "assetIds": "a" * 200, "pointIds": "p"}
    body["prev"] = L.GENESIS
    spaced = json.dumps(body, ensure_ascii=False)  # keys in insertion order, with spaces
    body["hash"] = hashlib.sha256(spaced.encode()).hexdigest()
    path.write_bytes(json.dumps(body, ensure_ascii=False).encode() + b"\n")
    with pytest.raises(LedgerError, match=":1: hash does not match the record"):
        L.read(path)


def test_closed_intents_are_those_a_later_delete_or_failed_covers_exactly(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write_raw(
        path,
        [
            {"v": 1, "kind": "intent", **CELLS},  # 1: closed by the v1 delete repeating its lists
            {"v": 1, "kind": "intent", **CELLS, "pointIds": ["p1", "p2"]},  # 2: split, halves below
            {"v": 1, "kind": "delete", **CELLS},
            {"v": 1, "kind": "delete", **CELLS, "pointIds": ["p1"]},
            {"v": 1, "kind": "delete", **CELLS, "pointIds": ["p2"]},
            {"kind": "intent", **STORED},  # 6: closed by reference
            {"kind": "intent", **STORED, "manifest": "n"},  # 7: closed by a failed reference
            {"kind": "intent", **STORED, "stageInstanceName": "t"},  # 8: in flight, in doubt
            {"kind": "delete", **KEY, "intent": 6},
            {"kind": "failed", **KEY, "manifest": "n", "intent": 7, "code": None, "message": "HTTP 403"},
        ],
    )
    assert L.read(path).closed_intents == {1, 6, 7}


def test_join_ids_refuses_what_would_not_split_back_into_the_same_list() -> None:
    from reconciler.ledger._format import join_ids

    assert join_ids("w", "assetIds", ("a1", "a2")) == "a1,a2"
    assert join_ids("w", "assetIds", ["ü"]) == "ü"
    for bad in ("a1,a2", (), ["a1", "a,b"], ["a1", ""], ["a1", 7], [None]):
        with pytest.raises(LedgerError, match="assetIds must be a non-empty list of IDs without commas"):
            join_ids("w", "assetIds", bad)  # type: ignore[arg-type]
