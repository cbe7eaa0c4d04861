"""fastyaml, the plain-shape reader, against ruamel: same values, types and positions on
every text it accepts, and the same manifests and diagnostics when files are loaded.

Each property also counts what the fast path accepted and fails below a floor: a fast
path that accepts nothing would otherwise pass every comparison."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from helpers.examples import examples, quick
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reconciler import fastyaml, manifests, yamlsource


def ruamel_documents(text: str) -> tuple[list[Any], list[Any]]:
    return yamlsource._ruamel_documents("f.yaml", text)


def assert_same_node(fast: Any, rt: Any, where: str = "") -> None:
    assert type(fast) is not type(rt) or isinstance(fast, str), where
    if isinstance(fast, str):
        assert type(rt) is str and rt == fast, where
        return
    assert isinstance(fast, dict) == isinstance(rt, dict) and isinstance(fast, list) == isinstance(rt, list)
    assert (fast.lc.line, fast.lc.col) == (rt.lc.line, rt.lc.col), where
    assert fast.lc.data == (rt.lc.data or {}), where
    if isinstance(fast, dict):
        assert list(fast) == list(rt), where
        assert all(type(k) is str for k in rt), where
        for k in fast:
            assert_same_node(fast[k], rt[k], f"{where}.{k}")
    else:
        assert len(fast) == len(rt), where
        for i, (a, b) in enumerate(zip(fast, rt, strict=True)):
            assert_same_node(a, b, f"{where}[{i}]")


def check_text(text: str) -> bool:
    """True when fastyaml accepted the text (and then agrees with ruamel exactly)."""
    fast = fastyaml.documents(text)
    if fast is None:
        return False
    docs, diags = ruamel_documents(text)
    assert diags == [], text
    assert len(docs) == len(fast), text
    for f, d in zip(fast, docs, strict=True):
        assert_same_node(f, d.data, text)
    mine, no_diags = yamlsource.load_documents("f.yaml", text)
    assert no_diags == [] and [(d.line, d.col) for d in mine] == [(d.line, d.col) for d in docs]
    return True


# --- generated texts: manifest-like, with the odd thing that must fall back -----------

SCALAR_CHARS = "0123456789eExXoObBtTzZ:._+-aAyYnNlL /()'~=,#&*!|>%@`\"\\[]{}?\té\u2013ü✓"
scalars = st.one_of(
    st.sampled_from(
        [
            "o15589291683811",
            "4a0b6e9c7f1d4e2a",
            "ids/farm-a.txt",
            "WTUR.GenActivePW",
            "reconciler/v1",
            "StageStateDeletion",
            "Reset counters (INC-5521), again",
            "don't",
            "yes",
            "No",
            "null",
            "true",
            "~",
            "1e3",
            "0x1f",
            "2026-11-27",
            "12:30",
            ".inf",
            "1_000",
            "0o17",
            "_x",
            "/abs",
            "a #not",
            "",
            "Ströme \u2013 Lösung",
            "a\tb",
        ]
    ),
    st.text(SCALAR_CHARS, min_size=1, max_size=10),
)


def quoted(s: str) -> st.SearchStrategy[str]:
    single = "'" + s.replace("'", "''") + "'"  # '' is a quote inside single quotes
    return st.sampled_from([s, f'"{s}"', f"'{s}'", single, f"{s}  # note", f'"{s}" # note'])


keys = st.sampled_from(
    ["apiVersion", "kind", "metadata", "spec", "name", "orgId", "assetIds", "labels", "a-b", "k_1", "_k"]
)


@st.composite
def values(draw: Any, indent: int, depth: int) -> list[str]:
    """The lines of a value after `key:` (the first line's text, then whole lines)."""
    kind = draw(st.sampled_from(["scalar", "scalar", "flow", "block", "indentless", "map", "map", "empty"]))
    pad = " " * indent
    if kind == "scalar":
        return [" " + draw(scalars.flatmap(quoted))]
    if kind == "flow":
        items = draw(
            st.lists(scalars.flatmap(lambda s: st.sampled_from([s, f'"{s}"', f"'{s}'"])), max_size=4)
        )
        sep = draw(st.sampled_from([", ", ",", " , "]))
        trailing = draw(st.sampled_from(["", ",", ", "])) if items else ""
        return [" [" + sep.join(items) + trailing + "]" + draw(st.sampled_from(["", " # c", "  "]))]
    if kind in ("block", "indentless"):
        step = 0 if kind == "indentless" else draw(st.integers(1, 3))
        items = draw(st.lists(scalars.flatmap(quoted), min_size=1, max_size=3))
        gap = draw(st.sampled_from([" ", "  "]))
        return ["", *(f"{pad}{' ' * step}-{gap}{item}" for item in items)]
    if kind == "map" and depth < 3:
        return ["", *draw(mapping(indent + draw(st.integers(1, 3)), depth + 1))]
    return [""]


@st.composite
def mapping(draw: Any, indent: int, depth: int) -> list[str]:
    lines: list[str] = []
    for key in draw(st.lists(keys, min_size=1, max_size=4, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", "# comment", "   # indented comment", "  "])))
        first, *rest = draw(values(indent, depth))
        lines.append(" " * indent + key + ":" + first)
        lines.extend(rest)
    return lines


@st.composite
def shifted(draw: Any, lines: list[str]) -> list[str]:
    """Sometimes one line indented more or less than its neighbours: mostly bad YAML."""
    if not lines or draw(st.integers(0, 2)):
        return lines
    i = draw(st.integers(0, len(lines) - 1))
    lines[i] = " " * draw(st.integers(1, 2)) + lines[i] if draw(st.booleans()) else lines[i][1:]
    return lines


@st.composite
def texts(draw: Any) -> str:
    docs = ["\n".join(draw(shifted(draw(mapping(0, 1))))) for _ in range(draw(st.integers(1, 3)))]
    head = draw(st.sampled_from(["", "# header\n", "---\n", "# header\n---\n"]))
    text = head + "---\n".join(d + "\n" for d in docs) + draw(st.sampled_from(["", "", "...\n"]))
    return text.replace("\n", "\r\n") if draw(st.integers(0, 4)) == 0 else text  # CRLF, as on Windows


def accepted_at_least(share: float, run: Callable[[Callable[[str], None]], None]) -> None:
    """Run a property whose examples each pass one text to `check`; fail unless the fast
    path accepted at least `share` of them (and at least one)."""
    seen: list[bool] = []

    def check(text: str) -> None:
        seen.append(check_text(text))
        event("fast path" if seen[-1] else "ruamel")  # in --hypothesis-show-statistics

    run(check)
    assert sum(seen) >= max(1, int(share * len(seen))), f"fast path took {sum(seen)} of {len(seen)}"


@pytest.mark.slow(2)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
def test_what_fastyaml_accepts_ruamel_reads_the_same() -> None:
    @settings(max_examples=examples(200), deadline=None, derandomize=quick())
    @given(texts())
    def each(check: Callable[[str], None], text: str) -> None:
        check(text)

    accepted_at_least(0.05, each)  # about 14% are accepted


def test_scalars_are_read_as_ruamel_reads_them() -> None:
    @settings(max_examples=examples(200), deadline=None, derandomize=quick())
    @given(scalars, st.sampled_from(["k: {}\n", "k: [{}]\n", "k:\n  - {}\n", "k: [a, {}]\n"]))
    def each(check: Callable[[str], None], scalar: str, template: str) -> None:
        check(template.format(scalar))

    accepted_at_least(0.2, each)  # about 43% are accepted


MANIFEST = """\
# yaml-language-server: $schema=../schemas/manifest-v1.schema.json
apiVersion: reconciler/v1
kind: StageStateDeletion
metadata:
  name: wind-avg-power-fix-2026-11
  description: Clear 10-min averages after the formula fix (OPS-1234)   # optional
  labels:
    team: wind-ops
spec:
  orgId: o15589291683811
  pipelineId: 4a0b6e9c7f1d4e2a
  stageInstanceNames: [window_avg_1, "last_value_2"]
  assetIds:
    - Nj1gF1iZ
    - 'Xk29aQ0c'
  pointIdsFile: ids/points.txt
---
apiVersion: reconciler/v1
kind: StageStateDeletion
metadata:
  name: fix-2
spec:
  orgId: o1
  pipelineId: p1
  stageInstanceNames:
  - s1
  assetIds: ["a1", "a2"]
  pointIds: [p1]
"""


def test_the_common_shapes_are_accepted() -> None:
    assert check_text(MANIFEST)
    for name in ("fleet-reset.yaml", "wind-avg-power-fix.yaml"):
        text = (Path(manifests.__file__).parent.parent / "templates" / "manifests" / name).read_text()
        assert check_text(text), name


def test_what_the_hand_written_reader_left_to_ruamel_is_now_fast_and_the_same() -> None:
    for text in (
        "a: ü\nb: Ströme \u2013 Lösung # é\n",  # non-ASCII text and comments
        "a: b\r\nc: [d, e]\r\n",  # CRLF line ends
        "a: 'don''t'\n",  # '' inside single quotes
        'a: "x\\ty \\u00e9"\n',  # escapes
        "a: [b, c,]\n",  # a trailing comma
        "a: b\n...\n",  # a document end
    ):
        assert check_text(text), text


def test_anything_unusual_falls_back() -> None:
    for text in (
        "a: &x 1\nb: *x\n",  # anchors and aliases: ruamel's diagnostic
        "a: &x 1\n",  # an anchor alone
        "a: !!str 1\n",  # a tag
        "a: 1\na: 2\n",  # a duplicate key: ruamel's diagnostic
        "y: a\n",  # a key that YAML 1.1 reads as a bool
        "a: b\n  c\n",  # a multi-line plain scalar
        'a: "b\n  c"\n',  # a multi-line quoted scalar
        "a: |\n  b\n",  # a block scalar
        "a: b\n  c: d\n",  # a key deeper than its mapping
        "a:\n    - b\n  c: d\n",  # a key between a list and its parent
        "a: yes\n",  # a bool in YAML 1.1
        "a: 2026-11-27\n",  # a date
        "a: 0x1f\n",  # a number in one YAML version or the other
        "a:\n",  # null
        "a: {b: c}\n",  # a flow mapping
        "a: [[b]]\n",  # a list in a list
        "a:\n- b: c\n",  # a mapping in a list
        "a:\tb\n",  # a tab: YAML 1.1 and 1.2 read tabs differently
        "- a\n",  # not a mapping
        "---\n---\na: b\n",  # an empty document
        "%YAML 1.1\n---\na: b\n",  # a directive
        "a: b\u2028c\n",  # a line break only YAML 1.1 knows
        "a: \ud800\n",  # a lone surrogate (not from a file, which is strict UTF-8)
        "a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g: h\n",  # deeper than 6 levels
    ):
        assert fastyaml.documents(text) is None, text


# --- whole loads: the same manifests and diagnostics with and without the fast path ---

NAMES = st.sampled_from(["fix-1", "fix-2", "Bad Name", "fix-1", "yes", "x" * 254])
IDS = st.sampled_from(["a1", "a2", "a1", "4a0b6e9c", "12", "a,b", '"q"', "'s'", "1e3", "x y"])


@st.composite
def manifest_text(draw: Any) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append("apiVersion: " + draw(st.sampled_from(["reconciler/v1", "reconciler/v2", "v1"])))
    lines.append("kind: " + draw(st.sampled_from(["StageStateDeletion", "Other"])))
    lines.append("metadata:")
    lines.append("  name: " + draw(NAMES))
    if draw(st.booleans()):
        lines.append("  renamedFrom: [" + ", ".join(draw(st.lists(NAMES, min_size=1, max_size=2))) + "]")
    if draw(st.booleans()):
        lines.append("  labels:\n    team: " + draw(st.sampled_from(["ops", "12", "yes"])))
    lines.append("spec:")
    for key in draw(st.lists(st.sampled_from(["orgId", "pipelineId", "colour"]), max_size=3, unique=True)):
        lines.append(f"  {key}: " + draw(IDS))
    lines.append("  stageInstanceNames: [" + ", ".join(draw(st.lists(IDS, max_size=3))) + "]")
    for list_key, file_key in (("assetIds", "assetIdsFile"), ("pointIds", "pointIdsFile")):
        for choice in draw(st.lists(st.sampled_from(["list", "block", "file", "missing"]), max_size=2)):
            if choice == "list":
                lines.append(f"  {list_key}: [" + ", ".join(draw(st.lists(IDS, max_size=3))) + "]")
            elif choice == "block":
                lines.append(f"  {list_key}:")
                lines.extend("    - " + i for i in draw(st.lists(IDS, min_size=1, max_size=3)))
            elif choice == "file":
                lines.append(f"  {file_key}: " + draw(st.sampled_from(["ids.txt", "../out.txt", "none.txt"])))
    return "\n".join(lines) + "\n"


def load_both(texts: list[str]) -> tuple[manifests.LoadResult, manifests.LoadResult]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "m"
        root.mkdir()
        (root / "ids.txt").write_text("a1\na2\na1\n")
        for i, text in enumerate(texts):
            (root / f"f{i}.yaml").write_text(text)
        fast = manifests.load([str(root)])
        ruamel_only = functools.partial(yamlsource.load_documents, fast=False)
        with mock.patch.object(yamlsource, "load_documents", ruamel_only):  # the public seam's keyword
            slow = manifests.load([str(root)])
    return fast, slow


@pytest.mark.slow(2)  # seconds of wall, about: run first, longest first (helpers/kinds.py)
@settings(max_examples=examples(80), deadline=None)
@given(st.lists(st.lists(manifest_text(), min_size=1, max_size=2).map("---\n".join), min_size=1, max_size=3))
def test_loading_gives_the_same_manifests_and_diagnostics(texts: list[str]) -> None:
    fast, slow = load_both(texts)
    assert fast.manifests == slow.manifests
    assert [m.renamed_from_at for m in fast.manifests] == [m.renamed_from_at for m in slow.manifests]
    assert fast.diagnostics == slow.diagnostics
