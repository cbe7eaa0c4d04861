"""ID files: the fast path over the whole text gives exactly what the line-by-line path gives."""

from __future__ import annotations

from helpers.examples import examples, quick
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.manifests._ids import _ids_slow, distinct, fast_ids, parse_ids

# Characters that each take some path: plain ID characters, line ends, blanks, comments,
# commas, controls, format characters, a combining mark (NFC), a CJK letter.
ALPHABET = "aB1._-\n\r \t#,\x00\x0b\x1f\x85\xa0\u200b\u202e\ufeff\u0301e\u00e9\u98ce\u3000"
TEXTS = st.lists(st.text(alphabet=ALPHABET, max_size=8), max_size=8).map("\n".join)
# Files as exports write them: one plain ID a line, now and then a CRLF or a last newline.
USUAL = st.tuples(
    st.lists(st.text(alphabet="aB1._-\u00e9\u98ce", min_size=1, max_size=8), min_size=1, max_size=8),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from(["", "\n"]),
).map(lambda t: t[1].join(t[0]) + t[2])
# The same, in ascending order as `sort -u` leaves a file (or `sort`, repeats kept).
SORTED = st.tuples(
    st.lists(st.text(alphabet="aB1._-\u00e9\u98ce", min_size=1, max_size=3), min_size=1), st.booleans()
).map(lambda t: "\n".join(sorted(set(t[0]) if t[1] else t[0])) + "\n")


def test_fast_path_equals_line_by_line() -> None:
    accepted: list[bool] = []

    @settings(max_examples=examples(400), deadline=None, derandomize=quick())
    @given(st.one_of(TEXTS, USUAL, SORTED))
    @example("a1\n\n")
    @example("\ufeffa1\r\n")
    def each(text: str) -> None:
        slow = _ids_slow(text.replace("\r\n", "\n"), "ids.txt", "assetId")
        assert parse_ids(text, "ids.txt", "assetId") == slow
        fast = fast_ids(text.replace("\r\n", "\n"))
        accepted.append(fast is not None)
        if fast is not None:
            assert (fast, []) == slow

    each()
    # Observed: the fast path takes about a fifth of these texts. It must take some.
    assert sum(accepted) >= max(1, len(accepted) // 10), f"{sum(accepted)} of {len(accepted)}"


@settings(max_examples=examples(400), deadline=None, derandomize=quick())
@given(st.lists(st.text(alphabet="ab\u00e9", max_size=3)), st.booleans())
def test_distinct_is_no_id_twice_in_any_order(values: list[str], ascending: bool) -> None:
    values = sorted(values) if ascending else values
    assert distinct(values) == (len(set(values)) == len(values))


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
