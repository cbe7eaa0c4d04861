"""render/text.py: free text stays text in markdown, HTML and the terminal (issue 27).

Each helper is checked against a real parser: markdown-it-py (CommonMark with GFM tables
and raw HTML on, as a pull-request comment is rendered) and the standard library's HTML
parser, over hostile strings hypothesis builds from the characters that make structure.
"""

from __future__ import annotations

import unicodedata
from html.parser import HTMLParser

import pytest
from helpers.examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.render.text import clip, html_text, md_code, md_text, term, visible

# Characters that open, close or break markdown and HTML structure, and invisible ones.
HOSTILE = "`\n\r\t |<>!-*_#[]()&;\\\"'=~:/.1 \x00\x1b\x7f\x85\u2028\u2029\u202e\u200b\ufeff\u00a0aZ"
hostile = st.text(alphabet=st.sampled_from(HOSTILE) | st.characters(), max_size=60)
REPRODUCTIONS = [
    "x\n\n| pTEST | 30 |\n|---|--:|\n<!--",
    "```\n\n# heading",
    "a` <b>bold</b> `b",
    "<!--",
    "</code><script>alert(1)</script>",
    "\x1b[2J\x1b[H fake",
    " `` ",
    "`",
    "|",
    "&lt;&#96;",
    "\u202etxt.exe",
]


def md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def inline_children(source: str) -> list[Token]:
    """The inline tokens of a document that must be exactly one paragraph."""
    tokens = md().parse(source)
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], source
    return tokens[1].children or []


HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def shows_nothing_hidden(s: str) -> bool:
    return all(ch in "\u200c\u200d" or unicodedata.category(ch) not in HIDDEN for ch in s)


@given(hostile)
@settings(max_examples=examples(300))
def test_visible_leaves_nothing_hidden_and_keeps_printable_text(s: str) -> None:
    out = visible(s)
    assert shows_nothing_hidden(out)
    assert "\n" not in out and "\x1b" not in out
    if s.isprintable():
        assert out == s


@pytest.mark.parametrize("s", REPRODUCTIONS)
def test_md_code_reproductions(s: str) -> None:
    check_code_span(s)


@given(hostile)
@settings(max_examples=examples(400))
def test_md_code_is_one_span_showing_the_value(s: str) -> None:
    check_code_span(s)


def check_code_span(s: str) -> None:
    children = inline_children(f"before {md_code(s)} after")
    assert [t.type for t in children] == ["text", "code_inline", "text"]
    assert children[0].content == "before " and children[2].content == " after"
    assert children[1].content == (visible(s) or " ")
    # At the start of a line, too: no fence, heading or HTML block can open.
    alone = inline_children(md_code(s))
    assert [t.type for t in alone] == ["code_inline"]


@given(st.lists(hostile, min_size=1, max_size=4))
@settings(max_examples=examples(200))
def test_md_code_in_a_table_keeps_its_cell(values: list[str]) -> None:
    row = "| " + " | ".join(md_code(v, table=True) for v in values) + " |"
    header = "| " + " | ".join(f"h{i}" for i in range(len(values))) + " |"
    rule = "|" + "---|" * len(values)
    tokens = md().parse("\n".join([header, rule, row, "", "after"]))
    body = tokens[[t.type for t in tokens].index("tbody_open") :]
    cells = [t for t in body if t.type == "inline"]
    assert len(cells) == len(values) + 1  # the cells, then the paragraph after the table
    for cell, v in zip(cells, values, strict=False):
        assert [c.type for c in cell.children or []] == ["code_inline"]
        assert (cell.children or [])[0].content == (visible(v) or " ")
    assert cells[-1].content == "after"


@pytest.mark.parametrize("s", REPRODUCTIONS)
def test_md_text_reproductions(s: str) -> None:
    check_text(s)


@given(hostile)
@settings(max_examples=examples(400))
def test_md_text_is_literal_text(s: str) -> None:
    check_text(s)


def check_text(s: str) -> None:
    expected = visible(" ".join(s.split()))
    children = inline_children(f"A {md_text(s)} B")
    assert {t.type for t in children} == {"text"}, children
    assert "".join(t.content for t in children) == f"A {expected} B"
    if expected:  # alone on a line: no heading, list, quote, rule, fence or HTML block
        children = inline_children(md_text(s))
        assert {t.type for t in children} == {"text"}
        assert "".join(t.content for t in children) == expected


@given(st.lists(hostile, min_size=1, max_size=4))
@settings(max_examples=examples(200))
def test_md_text_in_a_table_keeps_its_cell(values: list[str]) -> None:
    row = "| " + " | ".join(md_text(v) for v in values) + " |"
    header = "| " + " | ".join(f"h{i}" for i in range(len(values))) + " |"
    tokens = md().parse("\n".join([header, "|" + "---|" * len(values), row]))
    body = tokens[[t.type for t in tokens].index("tbody_open") :]
    cells = [t for t in body if t.type == "inline"]
    assert len(cells) == len(values)
    for cell, v in zip(cells, values, strict=True):
        assert {c.type for c in cell.children or []} <= {"text"}
        assert "".join(c.content for c in cell.children or []) == visible(" ".join(v.split()))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"a comment opened: {data!r}")


@given(hostile)
@settings(max_examples=examples(300))
def test_html_text_stays_text_and_attribute(s: str) -> None:
    p = _Collect()
    p.feed(f'<p title="{html_text(s)}">{html_text(s)}</p><i>end</i>')
    p.close()
    assert p.tags == [("p", [("title", visible(s))]), ("i", [])]
    assert "".join(p.data) == visible(s) + "end"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("line\nfake line", "line\\nfake line"),
        ("cr\roverwrite", "cr\\roverwrite"),
        ("\u202etxt", "\\u202etxt"),
        ("plain ünïcode 风电", "plain ünïcode 风电"),
    ],
)
def test_term_shows_control_characters(raw: str, shown: str) -> None:
    assert term(raw) == shown


def test_clip_bounds_length() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 4) == "abc…"
    assert len(clip("x" * 10_000, 500)) == 500
