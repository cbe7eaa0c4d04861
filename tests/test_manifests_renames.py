"""metadata.renamedFrom: a manifest's earlier names, checked within and across manifests."""

from __future__ import annotations

from pathlib import Path

from helpers import manifest_yaml, write

from reconciler.manifests import load


def renamed(name: str, *olds: str, pipeline: str = "p1") -> str:
    return manifest_yaml(name, pipeline=pipeline).replace(
        f"  name: {name}\n", f"  name: {name}\n  renamedFrom: [{', '.join(olds)}]\n"
    )


def diagnostics(repo: Path) -> list[str]:
    return [str(d) for d in load([str(repo / "manifests")]).diagnostics]


def test_renamed_from_is_exposed_on_the_manifest(repo: Path) -> None:
    write(repo / "manifests/a.yaml", renamed("fix-b", "fix-a", "fix-a0", "fix-a"))
    result = load([str(repo / "manifests")])
    assert [str(w) for w in result.warnings] == [
        f"{repo / 'manifests/a.yaml'}:5:32: warning: metadata.renamedFrom[2]: duplicate 'fix-a' (counted once)"
    ]
    (m,) = result.manifests
    assert m.renamed_from == ("fix-a", "fix-a0")
    assert (m.path, m.line, m.description, m.labels) == (str(repo / "manifests/a.yaml"), 1, None, ())


def test_absent_renamed_from_is_empty(repo: Path) -> None:
    write(repo / "manifests/a.yaml", manifest_yaml("fix-a"))
    assert load([str(repo / "manifests")]).manifests[0].renamed_from == ()


def test_renamed_from_names_follow_the_name_rules(repo: Path) -> None:
    write(repo / "manifests/a.yaml", renamed("fix-b", "Fix_A", "ok-\u200bname"))
    write(repo / "manifests/e.yaml", renamed("fix-e").replace("renamedFrom: []", "renamedFrom: []"))
    write(repo / "manifests/s.yaml", renamed("fix-s").replace("renamedFrom: []", "renamedFrom: fix-a"))
    got = diagnostics(repo)
    a, e, s = (str(repo / f"manifests/{n}.yaml") for n in "aes")
    assert any(g.startswith(f"{a}:5:17: metadata.renamedFrom[0]: 'Fix_A' is not a valid name") for g in got)
    fmt = "an invisible format character"
    assert f"{a}:5:27: metadata.renamedFrom[1]: contains U+200B ZERO WIDTH SPACE ({fmt}); remove it" in got
    assert f"{e}:5:16: metadata.renamedFrom: must not be empty" in got
    assert f"{s}:5:16: metadata.renamedFrom: expected a list, got str" in got


def test_a_manifest_cannot_be_renamed_from_itself(repo: Path) -> None:
    write(repo / "manifests/a.yaml", renamed("fix-a", "fix-0", "fix-a"))
    result = load([str(repo / "manifests")])
    assert [str(d) for d in result.diagnostics] == [
        f"{repo / 'manifests/a.yaml'}:5:24: metadata.renamedFrom[1]: 'fix-a' is this manifest's own name; "
        "list only earlier names"
    ]
    assert result.manifests == []


def test_an_old_name_still_in_use_is_an_error_in_both_places(repo: Path) -> None:
    write(repo / "manifests/new.yaml", renamed("fix-b", "fix-a"))
    write(repo / "manifests/old.yaml", manifest_yaml("other") + "---\n" + manifest_yaml("fix-a"))
    got = diagnostics(repo)
    new, old = str(repo / "manifests/new.yaml"), str(repo / "manifests/old.yaml")
    assert got == [
        f"{new}:5:17: metadata.renamedFrom: 'fix-a' is the name of the manifest at {old}:12; "
        "an old name must not be in use",
        f"{old}:12:1: metadata.name 'fix-a' is listed as an old name (renamedFrom) at {new}:5:17",
    ]


def test_two_manifests_claiming_one_old_name(repo: Path) -> None:
    write(repo / "manifests/b.yaml", renamed("fix-b", "fix-a"))
    write(repo / "manifests/c.yaml", renamed("fix-c", "fix-x", "fix-a", pipeline="p2"))
    got = diagnostics(repo)
    b, c = str(repo / "manifests/b.yaml"), str(repo / "manifests/c.yaml")
    assert got == [
        f"{b}:5:17: metadata.renamedFrom: 'fix-a' is also claimed by 'fix-c' at {c}:5:24",
        f"{c}:5:24: metadata.renamedFrom: 'fix-a' is also claimed by 'fix-b' at {b}:5:17",
    ]


def test_a_chain_of_renames_is_fine(repo: Path) -> None:
    write(repo / "manifests/c.yaml", renamed("fix-c", "fix-b", "fix-a"))
    assert diagnostics(repo) == []
