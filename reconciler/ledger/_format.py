"""The record format: canonical JSON, the hash chain, and verifying one line.

Keeps DESIGN invariant 5 (integrity): a line is accepted only if it parses, its
`seq` and `prev` continue the chain and its `hash` is the sha256 of its canonical
JSON without `hash`.

Format v2 (v1 records keep verifying, in any mix):
- a cell record's `assetIds` and `pointIds` are comma-joined strings, as the API
  body carries them ("a1,a2"; IDs never hold commas, DESIGN "Manifest format");
- a `delete` or `failed` that closes its intent exactly holds `"intent": <seq>`
  and the intent's manifest/org/pipeline/stage instead of the lists; the reader
  gives it the intent's ID tuples (shared), so every cell's history reads the same.

Format v3 (what the writer writes; v1 and v2 records keep verifying, in any mix):
- a list longer than `INLINE_MAX` bytes is `{"sha256": <hex>, "count": n}`, the list
  itself stored once by content beside the ledger (`_lists`);
- a `seal` record ends a segment and names the next (`"next": "segments/000002.jsonl"`):
  the chain (`seq`, `prev`) runs on in that file (`_read`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from itertools import repeat
from typing import Any

import orjson

from reconciler.errors import LedgerError
from reconciler.ledger import _lists
from reconciler.ledger._record import (
    CELL_KINDS,
    CLOSING_KINDS,
    GENESIS,
    KEY_FIELDS,
    LIST_FIELDS,
    PIPELINE_KINDS,
    READ_VERSIONS,
    Ids,
    Record,
)

_BIG = 128  # values longer than this are spliced into the canonical form, not re-encoded
# Equal IDs in different lists share one string once a ledger has read this many IDs of
# distinct lists: it saves memory only in big ledgers (weekly fleet resets whose batches
# shift: 52 x 200,000 copies would be ~600 MB) and costs ~0.25 us an ID, half of reading
# a small ledger. Values are the same either way; only memory differs.
SHARE_IDS_AFTER = 1_000_000
# Likewise the short values that repeat record after record (names, kinds, times), from this
# many records on: below it they hold a few MB (7 MB in a year of issue 18's workload), and
# sharing them costs a tenth of reading the ledger.
SHARE_VALUES_AFTER = 100_000


def canonical(record: object) -> bytes:
    """Canonical JSON as DESIGN fixes it: sorted keys, no spaces, UTF-8 as is.

    The bytes of `json.dumps(record, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()`, made by orjson (~8x faster) whenever orjson provably
    makes the same ones (`_orjson_safe`), else by that very call (a property test holds
    the two equal over hostile records: tests/test_canonical.py).
    """
    if _orjson_safe(record):
        try:
            return orjson.dumps(record, option=_ORJSON)
        except TypeError:  # an int beyond 64 bits: the standard library encodes it
            pass
    return _stdlib(record).encode()


def canonical_text(record: object) -> str:
    """`canonical`, before it is encoded."""
    if _orjson_safe(record):
        try:
            return orjson.dumps(record, option=_ORJSON).decode()
        except TypeError:
            pass
    return _stdlib(record)


def _stdlib(record: object) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Sorted keys (by code point, as `sorted` orders str: UTF-8 byte order is code point
# order). Subclasses, dataclasses and datetimes are not encoded but refused (orjson raises,
# and the standard library decides): `_orjson_safe` already sends them there.
_ORJSON = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
_SCALARS = frozenset({str, int, bool, type(None)})
_DEPTH = 64  # deeper than any record: the standard library takes it (orjson stops at 255)


def _orjson_safe(value: object, depth: int = 0) -> bool:
    """Only str keys, and values of exactly str, int, bool, None, list, tuple or dict.

    Where orjson and `json.dumps(..., ensure_ascii=False)` agree byte for byte: both escape
    only `"`, `\\` and the C0 controls, alike (U+2028, U+007F and the rest as is). Not
    floats (`1e-05` against `0.00001`, `NaN` against `null`), enums, UUIDs or other types
    orjson encodes and the standard library refuses or spells otherwise; those, and ints
    past 64 bits, which orjson refuses, take the standard library. A lone surrogate makes
    orjson raise too, and the standard library then gives the text it always gave.
    """
    t = type(value)
    if t is dict:
        if depth > _DEPTH:
            return False
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str or (type(v) not in _SCALARS and not _orjson_safe(v, depth + 1)):
                return False
        return True
    if t is list or t is tuple:
        try:
            "".join(value)  # type: ignore[arg-type]  # all strings (the ID lists): at C speed
        except TypeError:
            return depth <= _DEPTH and all(_orjson_safe(v, depth + 1) for v in value)  # type: ignore[attr-defined]
        return True
    return t in _SCALARS


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its `hash` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def content_hash(data: Mapping[str, Any], line: bytes) -> str:
    """`record_hash(data)` for `data = json.loads(line)`, without re-encoding the big ID values."""
    return _content_hash(data, line)[0]


def _content_hash(data: Mapping[str, Any], line: bytes) -> tuple[str, dict[str, str]]:
    """`content_hash`, and the big ID lists it spliced, each as its IDs joined by `","`.

    Sound because it computes the same bytes: when `line` holds no backslash, no string
    in it has a quote, a backslash or a control character (strict JSON has no raw
    control characters), so each string's canonical form is itself in quotes and a
    list of strings is `["a","b"]`. Those values are spliced into the canonical form
    of the rest, where placeholders holding U+0000 mark them: nothing else there can
    produce a backslash. A line with any backslash takes the plain path. A list it
    joined holds only strings, none with a quote: its joined text names it exactly.
    """
    if b"\\" in line:
        return record_hash(data), {}
    small: dict[str, Any] = {}
    big: list[tuple[str, bytes]] = []
    joined: dict[str, str] = {}
    for k, v in data.items():
        if k == "hash":
            continue
        if type(v) is str and len(v) > _BIG:
            big.append((k, b'"' + v.encode() + b'"'))
        elif type(v) is list and len(v) > 8:
            try:
                text = joined[k] = '","'.join(v)
            except TypeError:  # not all strings: the plain path encodes it
                return record_hash(data), {}
            big.append((k, ('["' + text + '"]').encode()))
        else:
            small[k] = v
            continue
        small[k] = "\0" + k
    out = canonical(small)
    for k, encoded in big:
        out = out.replace(b'"\\u0000' + k.encode() + b'"', encoded, 1)
    return hashlib.sha256(out).hexdigest(), joined


def _hashes_as_written(stored: object, line: bytes) -> bool:
    """The line's own bytes, its `hash` member cut out, hash to `stored`.

    Writers put records down in canonical form, so this is the usual case, and it costs
    a sha256 of the line instead of re-encoding the record. Sound: those bytes hash to
    `stored` only if they are the canonical bytes the record's hash was made from (no
    sha256 collisions), and canonical JSON parses back to the same record. A line that
    is not canonical (reformatted by hand, say) takes the canonical path instead.
    """
    if type(stored) is not str or len(stored) != 64:
        return False
    at = line.find(b'"hash":"')
    if at <= 0:
        return False
    end = at + 73  # '"hash":"' and 64 hex digits and '"'
    stop = len(line) - 1 if line.endswith(b"\n") else len(line)
    body = (
        line[:at] + line[end + 1 : stop] if line[end : end + 1] == b"," else line[: at - 1] + line[end:stop]
    )
    return hashlib.sha256(body).hexdigest() == stored


def join_ids(where: str, name: str, ids: Sequence[str]) -> str:
    """The v2 form of an ID list; refuses what would not split back into the same list.

    Checked with C-speed whole-list operations (every request's intent is encoded while
    other requests are in flight): `join` refuses a non-string, the comma count finds an
    ID holding one, and `in` an empty ID.
    """
    text = None
    if not isinstance(ids, str) and ids:
        with contextlib.suppress(TypeError):  # a non-string ID
            text = ",".join(ids)
    if text is None or text.count(",") != len(ids) - 1 or "" in ids:
        raise LedgerError(f"{where}: {name} must be a non-empty list of IDs without commas")
    return text


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Chain:
    """Verifies lines in order; holds the previous hash, the intents, and shared ID tuples.

    `verify` changes no state when it raises, so a torn last line can be tried and
    dropped without disturbing the chain.
    """

    def __init__(self, path: object, load_list: Callable[[str], bytes | None] | None = None) -> None:
        self.path = path
        # The bytes of the list file of a digest (None: no such file); v3 lists by content.
        self.load_list = load_list or (lambda digest: None)
        self.refs: dict[str, Ids] = {}  # v3 lists by digest, each read and checked once
        self.prev = GENESIS
        self.seq = 0
        self.intents: dict[int, Record] = {}
        self.closed: set[int] = set()
        # Intents not yet closed, by (key, id of the shared ID tuples): equal lists share one
        # tuple, so a v1 delete repeating its intent's lists finds it without comparing them.
        self._unclosed: dict[tuple[Any, ...], list[int]] = {}
        self._tuples: dict[Ids, Ids] = {}
        self._lists: dict[str, Ids] = {}  # v1 lists by their joined text
        self._texts: dict[str, Ids] = {}
        self._ids: dict[str, str] = {}
        self._unshared = 0  # IDs read into tuples before sharing started
        self._values: dict[object, Any] = {}  # repeated small values, one object each
        self._records = 0

    def verify(self, number: int, line: bytes, where: str | None = None) -> Record:
        """Verify the record expected to have seq `number`; errors name `where`
        (default `<path>:<number>`: in the main file, the line is the seq)."""
        where = where or f"{self.path}:{number}"
        data = _parse(where, line)
        kind = data.get("kind")
        if kind == "seal":
            return self._seal(where, data)
        joined = self._check_link(where, number, data, line)
        if type(kind) is not str or not kind:
            raise LedgerError(f"{where}: record has no kind")
        at = data.get("at")
        if type(at) is not str:
            raise LedgerError(f"{where}: record has no time (`at`)")
        cells = kind in CELL_KINDS
        if cells:
            assets, points = self._cells(where, kind, data, joined)
        else:
            assets = points = ()
            if kind in PIPELINE_KINDS and not (
                type(data.get("orgId")) is str and type(data.get("pipelineId")) is str
            ):
                raise LedgerError(f"{where}: {kind} record lacks orgId or pipelineId")
        self._share_values(data)
        digest = data["hash"]
        record = Record(number, kind, data["at"], digest, data, assets, points)
        self.prev, self.seq = digest, number
        if cells:
            self._track_closing(record)
        return record

    def _seal(self, where: str, data: dict[str, Any]) -> Record:
        """A v3 `seal`: chained by `prev`/`hash` like a record, but it takes no `seq` (it
        holds `after`, the seq it follows), so sealing never renumbers the history."""
        if data.get("v") != 3 or isinstance(data.get("v"), bool):
            raise LedgerError(f"{where}: unsupported seal version {data.get('v')!r}")
        if data.get("after") != self.seq:
            raise LedgerError(
                f"{where}: seal follows seq {data.get('after')!r}, expected {self.seq}; "
                "lines were removed or reordered"
            )
        if data.get("prev") != self.prev:
            raise LedgerError(
                f"{where}: prev does not match the hash of the record before; "
                "a line before it was changed, removed or reordered"
            )
        if data.get("hash") != record_hash(data):
            raise LedgerError(f"{where}: hash does not match the record; this line was edited")
        if not isinstance(data.get("next"), str) or not isinstance(data.get("at"), str):
            raise LedgerError(f"{where}: seal record lacks the next segment or its time")
        self.prev = data["hash"]
        return Record(self.seq, "seal", data["at"], data["hash"], data)

    def _share_values(self, data: dict[str, Any]) -> None:
        """One object for values that repeat record after record (a run's actor; in a big
        ledger also the org, pipeline, stage, manifest, kind and time): a year's ledger holds
        them once, not 22,000 times. Values are the same either way; only memory differs."""
        values = self._values
        self._records += 1
        if self._records > SHARE_VALUES_AFTER:
            for name in _SHARED:
                value = data.get(name)
                if type(value) is str:
                    data[name] = values.setdefault(value, value)
        actor = data.get("actor")
        if type(actor) is dict:
            # Only all-string actors are kept: a tuple equal to one of them is all strings too
            # (no other value equals a str), so equal tuples mean equal JSON (1 == True do not).
            key = (*actor.items(),)
            shared = values.get(key)
            if shared is not None:
                data["actor"] = shared
            elif all(type(v) is str for v in actor.values()):
                values[key] = actor

    def _track_closing(self, record: Record) -> None:
        d = record.data
        key = (d["manifest"], d["orgId"], d["pipelineId"], d["stageInstanceName"])
        same = (key, id(record.asset_ids), id(record.point_ids))
        if record.kind == "intent":
            self.intents[record.seq] = record
            self._unclosed.setdefault(same, []).append(record.seq)
        elif "intent" in d:  # checked by `_closed_intent`: an earlier intent's seq
            closes = d["intent"]
            self.closed.add(closes)
            waiting = self._unclosed.get(same)
            if waiting and closes in waiting:
                waiting.remove(closes)
        elif self._unclosed.get(same):
            self.closed.add(self._unclosed[same].pop())

    def _check_link(self, where: str, number: int, data: dict[str, Any], line: bytes) -> dict[str, str]:
        """Check the record continues the chain; give the ID lists `_content_hash` joined."""
        version = data.get("v")
        if type(version) is not int or version not in READ_VERSIONS:
            raise LedgerError(f"{where}: unsupported record version {version!r}")
        if data.get("seq") != number:
            raise LedgerError(
                f"{where}: seq is {data.get('seq')!r}, expected {number}; lines were removed or reordered"
            )
        if data.get("prev") != self.prev:
            raise LedgerError(
                f"{where}: prev does not match the hash of line {number - 1}; "
                "a line before it was changed, removed or reordered"
            )
        if version != 1 and _hashes_as_written(data.get("hash"), line):
            return {}
        digest, joined = _content_hash(data, line)
        if data.get("hash") != digest:
            raise LedgerError(f"{where}: hash does not match the record; this line was edited")
        return joined

    def _cells(self, where: str, kind: str, data: dict[str, Any], joined: dict[str, str]) -> tuple[Ids, Ids]:
        _check_key_fields(where, kind, data)
        if kind == "failed":
            _check_failed_fields(where, data)
        if data["v"] == 1:
            for name in LIST_FIELDS:
                data[name] = self._from_list(where, kind, name, data.get(name), joined.get(name))
            return data["assetIds"], data["pointIds"]
        if "intent" in data:
            return self._closed_intent(where, kind, data).ids
        for name in LIST_FIELDS:
            data[name] = self._from_text(where, kind, name, data.get(name), data["v"])
        return data["assetIds"], data["pointIds"]

    def _closed_intent(self, where: str, kind: str, data: dict[str, Any]) -> Record:
        seq = data["intent"]
        intent = self.intents.get(seq) if isinstance(seq, int) and not isinstance(seq, bool) else None
        if kind not in CLOSING_KINDS or intent is None:
            raise LedgerError(f"{where}: {kind} record refers to intent {seq!r}, which is no earlier intent")
        if "assetIds" in data or "pointIds" in data:
            raise LedgerError(f"{where}: {kind} record has both an intent and its own ID lists")
        d = intent.data  # the key fields of both are checked strings: compared without a tuple each
        if (
            data["manifest"] != d["manifest"]
            or data["stageInstanceName"] != d["stageInstanceName"]
            or data["pipelineId"] != d["pipelineId"]
            or data["orgId"] != d["orgId"]
        ):
            raise LedgerError(f"{where}: {kind} record names another manifest or stage than intent {seq}")
        return intent

    def _from_list(self, where: str, kind: str, name: str, value: object, joined: str | None) -> Ids:
        """A v1 list as a tuple, one shared tuple per distinct list (batches of one manifest
        repeat the same lists). `joined` is the list's text when the hash check joined it:
        then it is known to be strings, and is the cheaper key (no ID hashed one by one)."""
        if joined is not None and isinstance(value, list):
            shared = self._lists.get(joined)
            if shared is None:
                shared = self._lists[joined] = self._share(value)
            return shared
        if not (isinstance(value, list) and value and all(map(isinstance, value, repeat(str)))):
            raise LedgerError(f"{where}: {kind} record has a missing or malformed {name}")
        ids = tuple(value)
        shared = self._tuples.get(ids)
        if shared is None:
            shared = self._tuples[ids] = self._share(ids)
        return shared

    def _from_text(self, where: str, kind: str, name: str, value: object, version: int) -> Ids:
        if type(value) is dict and version == 3:
            known = self.refs.get(value.get("sha256"))  # type: ignore[arg-type]
            count = value.get("count")
            if known is not None and len(value) == 2 and type(count) is int and count == len(known):
                return known  # a list read before: its digest and count were checked then
            if _lists.is_ref(value):
                return self._from_ref(where, value["sha256"], value["count"])
        if not isinstance(value, str):
            raise LedgerError(f"{where}: {kind} record has a missing or malformed {name}")
        shared = self._texts.get(value)
        if shared is None:
            ids = value.split(",")
            if "" in ids:
                raise LedgerError(
                    f"{where}: {kind} record has a malformed {name} (comma-separated IDs, none empty)"
                )
            shared = self._texts[value] = self._share(ids)
        return shared

    def _from_ref(self, where: str, digest: str, count: int) -> Ids:
        shared = self.refs.get(digest)
        if shared is None:
            data = self.load_list(digest)
            if data is None:
                raise LedgerError(f"{where}: its ID list {_lists.list_name(digest)} is missing")
            shared = self.refs[digest] = self._share(_lists.decode(where, digest, count, data))
        elif len(shared) != count:
            raise LedgerError(f"{where}: its ID list {_lists.list_name(digest)} does not hold {count} IDs")
        return shared

    def _share(self, ids: Sequence[str]) -> Ids:
        if self._unshared < SHARE_IDS_AFTER:
            self._unshared += len(ids)
            return tuple(ids)
        known = self._ids
        return tuple(map(known.setdefault, ids, ids))


_SHARED = ("kind", "at", "manifest", "orgId", "pipelineId", "stageInstanceName")
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner, without `json.loads`'s Python wrapper


def _parse(where: str, line: bytes) -> dict[str, Any]:
    try:
        text = line.decode()  # strict UTF-8, as DESIGN fixes it
        try:
            data, end = _SCAN(text, 0)  # a record line starts with its `{`: the usual case
        except StopIteration:
            end = -1
        if end < 0 or text[end:].strip(" \t\r\n"):  # leading or trailing text: as json.loads decides
            data = json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"{where}: not valid JSON; the ledger was edited or damaged") from exc
    except RecursionError as exc:  # a line of thousands of nested brackets: no record nests so
        raise LedgerError(f"{where}: JSON nested too deeply to be a record; the ledger was damaged") from exc
    if not isinstance(data, dict):
        raise LedgerError(f"{where}: a record must be a JSON object")
    return data


def _check_key_fields(where: str, kind: str, data: dict[str, Any]) -> None:
    g = data.get
    if (
        (
            type(g("manifest"))
            is type(g("orgId"))
            is type(g("pipelineId"))
            is type(g("stageInstanceName"))
            is str
        )
        and data["manifest"]
        and data["orgId"]
        and data["pipelineId"]
        and data["stageInstanceName"]
    ):
        return  # the usual case, without a loop
    for name in KEY_FIELDS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise LedgerError(f"{where}: {kind} record has a missing or malformed {name}")


def _check_failed_fields(where: str, data: dict[str, Any]) -> None:
    code = data.get("code", "missing")
    if not (code is None or (isinstance(code, int) and not isinstance(code, bool))):
        raise LedgerError(f"{where}: failed record has a missing or malformed code (an integer or null)")
    if not isinstance(data.get("message"), str):
        raise LedgerError(f"{where}: failed record has a missing or malformed message")
