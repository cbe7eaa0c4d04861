"""Canonical JSON is made by orjson where it provably gives the standard library's bytes:
for any value, `canonical` gives exactly `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` encoded, or raises what that call raises. The ledger's hashes (and
the plan hash) depend on it byte for byte."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import uuid
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers.examples import examples
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reconciler.ledger import canonical, canonical_text, record_hash
from reconciler.ledger._format import _orjson_safe
from reconciler.plan import Action
from reconciler.plan._build import encode_actions
from reconciler.plan.values import Marks


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def outcome(f: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", f(value)
    except Exception as exc:  # the reference's refusal must be the same kind of error
        return "raised", type(exc)


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 7


class Tag(str):
    pass


class Count(int):
    pass


@dataclasses.dataclass
class Point:
    x: int


# Every code point, lone surrogates included, with the ones that matter drawn often.
_TRICKY = st.sampled_from(
    [
        '"',
        "\\",
        "\n",
        "\r",
        "\t",
        "\b",
        "\f",
        "\x00",
        "\x1f",
        "\x7f",
        "\u2028",
        "\u2029",
        "\ud800",
        "\udfff",
        "\ufeff",
        "\U0001f600",
        "é",
        "/",
        "<",
    ]
)
TEXT = st.text(st.one_of(st.characters(codec=None, categories=None), _TRICKY), max_size=12)
KEYS = st.one_of(TEXT, st.sampled_from(["v", "seq", "kind", "a", "A", "é", "\U0001f600", "\uff5a"]))
INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e16, 1e-5, -0.0, 0.1, 1.0])
)
ODD = st.sampled_from(
    [
        Colour.RED,
        Size.BIG,
        Tag("t"),
        Count(3),
        Point(1),
        uuid.UUID(int=5),
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        b"x",
        {1, 2},
    ]
)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, TEXT, FLOATS, ODD)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    odd_keys = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.just(1.5), st.just(Tag("k")))
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(KEYS, children, max_size=5),
        st.dictionaries(KEYS, children, max_size=3).map(OrderedDict),
        st.dictionaries(st.one_of(KEYS, odd_keys), children, max_size=3),
    )


HOSTILE = st.recursive(SCALARS, _containers, max_leaves=25)

ID = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:", min_size=1, max_size=12)
ACTOR = st.dictionaries(st.sampled_from(["user", "ci", "host", "email", "run"]), TEXT, max_size=4)
RECORD = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 2, 3]),
        "seq": st.integers(1, 10**9),
        "kind": st.sampled_from(["intent", "delete", "failed", "pause", "start", "seal"]),
        "at": st.just("2026-12-07T10:00:00.000Z"),
        "manifest": TEXT,
        "orgId": ID,
        "pipelineId": ID,
        "stageInstanceName": TEXT,
        "assetIds": st.one_of(st.lists(ID, min_size=1, max_size=40), ID),
        "pointIds": st.one_of(
            st.lists(ID, min_size=1, max_size=40), st.fixed_dictionaries({"sha256": ID, "count": INTS})
        ),
        "actor": ACTOR,
        "prev": st.just("0" * 64),
    },
    optional={
        "code": st.one_of(st.none(), INTS),
        "message": TEXT,
        "intent": INTS,
        "reason": TEXT,
        "seconds": FLOATS,
    },
)


@settings(max_examples=examples(300))
@given(st.one_of(RECORD, HOSTILE))
def test_canonical_is_the_standard_librarys_bytes_for_any_value(value: Any) -> None:
    event("orjson" if _orjson_safe(value) else "standard library")
    want = outcome(lambda v: reference(v).encode(), value)
    assert outcome(canonical, value) == want
    assert outcome(canonical_text, value) == outcome(reference, value)


@settings(max_examples=examples(100))
@given(RECORD)
def test_a_realistic_record_hashes_as_before(record: dict[str, Any]) -> None:
    body = {k: v for k, v in record.items() if k != "hash"}
    try:
        want = reference(body).encode()
    except UnicodeEncodeError:  # a lone surrogate: no record can be written with one
        with pytest.raises(UnicodeEncodeError):
            record_hash(record)
        return
    assert record_hash(record) == hashlib.sha256(want).hexdigest()


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ({"assetIds": ["a", "b"], "n": 2**64, "x": None, "ok": True}, True),  # orjson refuses 2**64 itself
        ({"a": [{"b": ("c", 1)}]}, True),
        ({"f": 1.0}, False),
        ({"f": [1, 2.5]}, False),
        ({1: "a"}, False),
        ({"e": Colour.RED}, False),
        ({"e": Size.BIG}, False),
        (OrderedDict(a=1), False),
        ({"t": [Tag("x")]}, True),  # joined as strings; orjson then refuses the subclass
        ({"u": uuid.UUID(int=1)}, False),
        ({"d": Point(1)}, False),
    ],
)
def test_what_orjson_is_trusted_with(value: Any, safe: bool) -> None:
    assert _orjson_safe(value) is safe
    assert outcome(canonical, value) == outcome(lambda v: reference(v).encode(), value)


def test_deep_nesting_is_left_to_the_standard_library() -> None:
    deep: Any = "x"
    for _ in range(300):  # orjson stops at 255 levels; json.dumps goes on
        deep = {"k": [deep]}
    assert not _orjson_safe(deep)
    assert canonical(deep) == reference(deep).encode()


POINTS = st.lists(TEXT, min_size=1, max_size=6).map(tuple)
ACTIONS = st.lists(
    st.builds(
        Action,
        manifest=TEXT,
        org_id=TEXT,
        pipeline_id=TEXT,
        stage=TEXT,
        asset_ids=st.lists(TEXT, min_size=1, max_size=6).map(tuple),
        point_ids=POINTS,
        in_doubt=st.booleans(),
        resumed_since=st.booleans(),
        shares=st.lists(st.tuples(TEXT, POINTS), max_size=2).map(tuple),
        marks=st.lists(
            st.tuples(
                TEXT, st.builds(Marks, st.one_of(st.none(), TEXT), st.lists(TEXT, max_size=2).map(tuple))
            ),
            max_size=1,
        ).map(tuple),
    ),
    max_size=4,
).map(lambda xs: [*xs, *(replace(a, asset_ids=a.asset_ids[:1]) for a in xs)])  # shared point tuples


@settings(max_examples=examples(300))
@given(ACTIONS)
def test_the_plans_action_lines_are_canonical(actions: list[Action]) -> None:
    try:
        want = [reference(a.to_json()).encode() for a in actions]
    except UnicodeEncodeError:  # a lone surrogate: no manifest or ledger can hold one
        with pytest.raises(UnicodeEncodeError):
            list(encode_actions(actions))
        return
    assert list(encode_actions(actions)) == want
