"""Inputs that look right and are wrong: BOMs, CRLF, invisible characters, unnormalised text."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import manifest_yaml, write

from reconciler.manifests import load
from reconciler.manifests.schema import text_problem

ZWSP = "assetId contains U+200B ZERO WIDTH SPACE (an invisible format character); remove it"


def loaded(root: Path) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    result = load([str(root / "manifests")])
    return [str(d) for d in result.diagnostics], {m.name: m.asset_ids for m in result.manifests}


def files_manifest(name: str, ids_file: str) -> str:
    return manifest_yaml(name).replace("assetIds: [a1, a2]", f"assetIdsFile: {ids_file}")


def test_bom_and_crlf_ids_file_give_clean_ids(repo: Path) -> None:
    (repo / "manifests/ids").mkdir()
    (repo / "manifests/ids/a.txt").write_bytes(b"\xef\xbb\xbfWTG0001\r\nWTG0002\r\n# c\r\n\r\n  WTG0003 \r\n")
    (repo / "manifests/ids/b.txt").write_bytes(b"\xef\xbb\xbfWTG0001\r\nWTG0002\r\n")
    write(repo / "manifests/a.yaml", files_manifest("a", "ids/a.txt"))
    write(repo / "manifests/b.yaml", files_manifest("b", "ids/b.txt"))
    got, ids = loaded(repo)
    assert got == []
    assert ids == {"a": ("WTG0001", "WTG0002", "WTG0003"), "b": ("WTG0001", "WTG0002")}


def test_bom_and_crlf_manifest(repo: Path) -> None:
    text = manifest_yaml("crlf", assets=["x1", "x1"]).replace("\n", "\r\n")
    (repo / "manifests/m.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = load([str(repo / "manifests")])
    assert [m.name for m in result.manifests] == ["crlf"]
    # Positions are as an editor shows them: the BOM takes no column.
    assert [str(w) for w in result.warnings] == [
        f"{repo / 'manifests/m.yaml'}:9:18: warning: spec.assetIds[1]: duplicate 'x1' (counted once)"
    ]


@pytest.mark.parametrize(
    ("line", "col", "message"),
    [
        ("WTG0\u200b001", 5, ZWSP.removeprefix("assetId contains ")),
        ("\u202eWTG0001", 1, "U+202E RIGHT-TO-LEFT OVERRIDE (an invisible format character)"),
        ("  WTG\u2066001", 6, "U+2066 LEFT-TO-RIGHT ISOLATE (an invisible format character)"),
        ("WTG\u200d001", 4, "U+200D ZERO WIDTH JOINER"),
        ("WTG0001\ufeff", 8, "U+FEFF ZERO WIDTH NO-BREAK SPACE (an invisible format character)"),
        ("WTG\x00001", 4, "U+0000 NULL (a control character)"),
        ("WTG\x1b001", 4, "U+001B ESCAPE (a control character)"),
        ("WTG0001\x1f", 8, "U+001F INFORMATION SEPARATOR ONE (a control character)"),
        ("WTG\x85001", 4, "U+0085 NEXT LINE (a control character)"),
        ("WTG\U000e0041", 4, "U+E0041 TAG LATIN CAPITAL LETTER A (an invisible format character)"),
    ],
)
def test_invisible_characters_in_ids_files_are_named_where_they_are(
    repo: Path, line: str, col: int, message: str
) -> None:
    write(repo / "manifests/ids/a.txt", f"WTG0100\n# header\n{line}\nWTG0200\n")
    write(repo / "manifests/a.yaml", files_manifest("a", "ids/a.txt"))
    got, ids = loaded(repo)
    ids_file = str(repo / "manifests/ids/a.txt")
    assert any(g.startswith(f"{ids_file}:3:{col}: assetId contains {message}") for g in got), got
    assert any(g.endswith("spec.assetIdsFile: 'ids/a.txt' holds bad IDs") for g in got)
    assert ids == {}


def test_point_ids_file_names_point_ids(repo: Path) -> None:
    write(repo / "manifests/ids/p.txt", "P1\nP\u200b2\n")
    write(repo / "manifests/a.yaml", manifest_yaml("a").replace("pointIds: [pt1]", "pointIdsFile: ids/p.txt"))
    got, _ = loaded(repo)
    assert f"{repo / 'manifests/ids/p.txt'}:2:2: {ZWSP.replace('assetId', 'pointId')}" in got


def test_nfd_id_in_file_is_refused_with_its_nfc_form(repo: Path) -> None:
    write(repo / "manifests/ids/a.txt", "Caf\u00e9-1\nCafe\u0301-2\n")
    write(repo / "manifests/a.yaml", files_manifest("a", "ids/a.txt"))
    got, ids = loaded(repo)
    assert (
        f"{repo / 'manifests/ids/a.txt'}:2:4: assetId 'Cafe\u0301-2' is not in Unicode NFC form; "
        "write it as 'Caf\u00e9-2' (U+0065 U+0301 as U+00E9)"
    ) in got
    assert ids == {}


def test_nfc_non_ascii_ids_are_fine(repo: Path) -> None:
    write(repo / "manifests/ids/a.txt", "Caf\u00e9-1\n\u98ce\u673a-2\n")
    write(repo / "manifests/a.yaml", files_manifest("a", "ids/a.txt"))
    got, ids = loaded(repo)
    assert got == []
    assert ids == {"a": ("Caf\u00e9-1", "\u98ce\u673a-2")}


def test_inline_ids_point_at_the_character(repo: Path) -> None:
    write(
        repo / "manifests/a.yaml",
        manifest_yaml("a", assets=["a1", "a\u200b2"], points=["'p\u202e1'", '"p\\x002"', '"Cafe\u0301"'])
        .replace("[s1]", "[s\u200d1]")
        .replace("orgId: o1", "orgId: o\u00ad1"),
    )
    got, ids = loaded(repo)
    f = str(repo / "manifests/a.yaml")
    fmt = "an invisible format character"
    assert f"{f}:9:19: spec.assetIds[1]: contains U+200B ZERO WIDTH SPACE ({fmt}); remove it" in got
    assert f"{f}:10:16: spec.pointIds[0]: contains U+202E RIGHT-TO-LEFT OVERRIDE ({fmt}); remove it" in got
    # Written as an escape: the column is where the escape starts.
    assert f"{f}:10:23: spec.pointIds[1]: contains U+0000 NULL (a control character); remove it" in got
    assert (
        f"{f}:10:35: spec.pointIds[2]: 'Cafe\u0301' is not in Unicode NFC form; "
        "write it as 'Caf\u00e9' (U+0065 U+0301 as U+00E9)"
    ) in got
    assert (
        f"{f}:8:25: spec.stageInstanceNames[0]: contains U+200D ZERO WIDTH JOINER ({fmt}); remove it" in got
    )
    assert f"{f}:6:11: spec.orgId: contains U+00AD SOFT HYPHEN ({fmt}); remove it" in got
    assert ids == {}


def test_invisible_character_in_metadata_name(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("fix\u200b-a"))
    got, _ = loaded(repo)
    fmt = "an invisible format character"
    assert got == [
        f"{repo / 'manifests/a.yaml'}:4:12: metadata.name: contains U+200B ZERO WIDTH SPACE ({fmt}); remove it"
    ]


def test_text_problem() -> None:
    assert text_problem("INV.GenActivePW") is None
    assert text_problem("\u98ce\u673a") is None
    assert text_problem("a\tb") == (
        1,
        "contains U+0009 CHARACTER TABULATION (a control character); remove it",
    )
    assert text_problem("\x80") == (0, "contains U+0080 (a control character); remove it")
    assert text_problem("A\u030a") == (
        0,
        "'A\u030a' is not in Unicode NFC form; write it as '\u00c5' (U+0041 U+030A as U+00C5)",
    )
