"""ID files: the fast path over the whole text gives exactly what the line-by-line path gives."""

from __future__ import annotations

from helpers.examples import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.manifests._ids import _ids_slow, parse_ids

# Characters that each take some path: plain ID characters, line ends, blanks, comments,
# commas, controls, format characters, a combining mark (NFC), a CJK letter.
ALPHABET = "aB1._-\n\r \t#,\x00\x0b\x1f\x85\xa0\u200b\u202e\ufeff\u0301e\u00e9\u98ce\u3000"


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=8), max_size=8).map("\n".join))
@example("a1\n\n")
@example("\ufeffa1\r\n")
def test_fast_path_equals_line_by_line(text: str) -> None:
    slow = _ids_slow(text.replace("\r\n", "\n"), "ids.txt", "assetId")
    assert parse_ids(text, "ids.txt", "assetId") == slow


def test_blank_lines_at_either_end_are_not_ids() -> None:
    for text in ("a1\n\n", "\na1\n", "a1\n\n\n", "\n", "", "\n\n", "a1\na2", "a1\r\n\r\n"):
        ids, diags = parse_ids(text, "ids.txt")
        assert "" not in ids and diags == [], text


def test_long_ids_and_duplicates_take_the_careful_path() -> None:
    ids, diags = parse_ids("a\n" + "x" * 257 + "\na\n", "ids.txt")
    assert ids == ["a"]
    assert [str(d) for d in diags] == [
        "ids.txt:2:1: ID is longer than 256 characters",
        "ids.txt:3:1: warning: duplicate ID 'a' (counted once)",
    ]


def test_the_ascii_byte_scan_and_the_regex_agree_on_every_ascii_character() -> None:
    from reconciler.manifests._ids import _PLAIN_ASCII, _UNUSUAL

    for code in range(128):
        ch = chr(code)
        by_regex = ch != "\n" and _UNUSUAL.search(ch) is not None
        by_bytes = bool(ch.encode().translate(None, _PLAIN_ASCII))
        assert by_regex == by_bytes, repr(ch)
