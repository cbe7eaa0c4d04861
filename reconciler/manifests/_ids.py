"""ID files: one ID per line, read at C speed in the usual shape, every bad line named otherwise.

A fleet reset lists hundreds of thousands of IDs, so the usual file (one plain ID per
line) is checked by whole-text scans; anything else goes line by line (`_ids_slow`),
which names each problem as `file:line:col`. Both give the same result
(tests/test_manifests_ids.py proves it). Surrounding spaces are trimmed, blank lines
and `#` comments skipped (DESIGN "Manifest format").
"""

from __future__ import annotations

import hashlib
import operator
import re
import unicodedata
from itertools import islice
from pathlib import Path

from reconciler import yamlsource
from reconciler.errors import Diagnostic
from reconciler.manifests.schema import BLANKS, ID_MAX, ID_RE, text_problem
from reconciler.yamlsource import FileTooLarge, NotRegularFile

IDS_MAX_BYTES = 64 << 20  # some four million IDs: far more than a fleet, far less than memory


def read_ids_file(target: Path, shown: str, noun: str = "ID") -> tuple[list[str] | None, list[Diagnostic]]:
    """One ID per line; blank lines and `#` comments skipped; every bad line named.

    None when the file cannot be read (with no diagnostic when it does not exist).
    `noun` ("assetId") starts the messages about invisible or unnormalised characters.
    """
    ids, diags, _ = read_ids_source(target, shown, noun)
    return ids, diags


def read_ids_source(
    target: Path, shown: str, noun: str = "ID"
) -> tuple[list[str] | None, list[Diagnostic], str | None]:
    """`read_ids_file`, plus the sha256 of the file's bytes: what a reviewer checks the
    file against, since a plan names the file but cannot list 50,000 IDs."""
    try:
        raw = yamlsource.read_regular(target, IDS_MAX_BYTES)
    except FileNotFoundError:
        return None, [], None
    except NotRegularFile as exc:
        return None, [Diagnostic(shown, 0, 0, str(exc))], None
    except FileTooLarge as exc:
        return None, [Diagnostic(shown, 0, 0, f"{exc}; split the IDs over several files")], None
    except OSError as exc:
        return None, [Diagnostic(shown, 0, 0, f"cannot read ID file: {exc.strerror}")], None
    digest = hashlib.sha256(raw).hexdigest()
    text, diags = yamlsource.decode(shown, raw)
    if text is None:
        return [], diags, digest
    ids, diags = parse_ids(text, shown, noun)
    return ids, diags, digest


def parse_ids(text: str, shown: str, noun: str = "ID") -> tuple[list[str], list[Diagnostic]]:
    """The IDs of an ID file's text: `fast_ids` when all is well (the usual case, and
    400,000 IDs must load fast), else `_ids_slow` names each problem. Either way the
    result is the one `_ids_slow` gives (tests/test_manifests_ids.py)."""
    if "\r" in text:  # CRLF line ends; a CR anywhere else is named by _ids_slow
        text = text.replace("\r\n", "\n")
    ids = fast_ids(text)
    return (ids, []) if ids is not None else _ids_slow(text, shown, noun)


def fast_ids(text: str) -> list[str] | None:
    """The IDs of a text (LF line ends) that C-speed scans over the whole of it find
    nothing to say about; None when a line needs a closer look."""
    values = _plain_lines(text)
    if values is None:
        values = [v for v in (line.strip(_TRIM) for line in text.split("\n")) if v and v[0] != "#"]
        if _BAD_IN_LINES.search("\n".join(values)):
            return None
    return values if _all_good(values, text.isascii()) else None


# Trimmed around an ID: spaces, tabs and other blanks, but not the control characters
# that str.strip() would also drop silently (form feed, U+001C-U+001F, U+0085).
_TRIM = " \t\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# One character class (a fast scan in `re`): every character that is not part of a
# plain ID, or starts a comment. A file without any is one ID per line as it stands.
_UNUSUAL = re.compile(f"[\\x00-\\x09\\x0b-\\x20,#\\x7f-\\x9f{_TRIM}]")
_BAD_IN_LINES = re.compile(r"[^\S\n]|[,\x00-\x09\x0b-\x1f\x7f-\x9f]")
# The same test for ASCII text, where it is a C byte scan (3x faster than the regex):
# deleting these bytes leaves nothing exactly when `_UNUSUAL` finds nothing.
_PLAIN_ASCII = bytes(c for c in range(0x21, 0x7F) if chr(c) not in ",#") + b"\n"


def _plain_lines(text: str) -> list[str] | None:
    """The lines, if the file is nothing but one ID per line (the usual export). Read in
    place up to `end`, before a last line end: no copy of a fleet's text without it."""
    end = len(text) - (text[-1:] == "\n")
    if end <= 0 or text[0] == "\n" or text[end - 1] == "\n" or text.find("\n\n", 0, end) >= 0:
        return None
    unusual = text.encode().translate(None, _PLAIN_ASCII) if text.isascii() else _UNUSUAL.search(text, 0, end)
    if unusual:
        return None
    lines = text.split("\n")
    if end < len(text):
        lines.pop()  # the empty string after the last line end
    return lines


def _all_good(values: list[str], ascii_text: bool) -> bool:
    """The fast path for large files: C-speed scans over all values, no per-line Python."""
    if max(map(len, values), default=0) > ID_MAX or not distinct(values):
        return False
    if ascii_text:  # controls were ruled out by the caller; nothing else to see
        return True
    joined = "\n".join(values)
    return unicodedata.is_normalized("NFKC", joined) and not any(
        unicodedata.category(ch) in ("Cf", "Cc", "Mn", "Me") or ch in BLANKS for ch in set(joined) - {"\n"}
    )


def distinct(values: list[str]) -> bool:
    """No ID twice. A file in ascending order (as `LC_ALL=C sort -u` writes it, and many
    exports) shows it by each ID being less than the next, compared at C speed with nothing
    hashed: a set of a fleet's 200,000 IDs costs ~15 ms and 8 MB more. In any other order the
    comparing stops at the first ID that is not less than the next, and a set decides."""
    return all(map(operator.lt, values, islice(values, 1, None))) or len(set(values)) == len(values)


def _ids_slow(text: str, shown: str, noun: str) -> tuple[list[str], list[Diagnostic]]:
    """Line by line, naming every bad or repeated ID."""
    ids: list[str] = []
    diags: list[Diagnostic] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        value = line.strip(_TRIM)
        if not value or value.startswith("#"):
            continue
        col = line.find(value) + 1
        if (problem := text_problem(value)) is not None:
            offset, message = problem
            diags.append(Diagnostic(shown, lineno, col + offset, f"{noun} {message}"))
        elif len(value) > ID_MAX or not ID_RE.match(value):
            diags.append(Diagnostic(shown, lineno, col, _bad_id(value)))
        elif value in seen:
            diags.append(Diagnostic(shown, lineno, col, f"duplicate ID '{value}' (counted once)", "warning"))
        else:
            seen.add(value)
            ids.append(value)
    return ids, diags


def _bad_id(value: str) -> str:
    if len(value) > ID_MAX:
        return f"ID is longer than {ID_MAX} characters"
    return f"bad ID {value!r}: IDs may not contain commas, whitespace or control characters"
