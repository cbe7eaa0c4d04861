"""Manifest loading: every problem in every file, as file:line:col, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import manifest_yaml, run_cli, write

from reconciler.manifests import load


def messages(root: Path) -> list[str]:
    return [str(d) for d in load([str(root / "manifests")]).diagnostics]


def test_repository_examples_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    result = load([str(root / "manifests")])
    assert result.errors == []
    names = {m.name for m in result.manifests}
    assert names == {"wind-avg-power-fix-2026-11", "farm-a-counter-reset-2026-11"}
    fleet = next(m for m in result.manifests if m.name.startswith("farm-a"))
    assert len(fleet.asset_ids) == 40 and fleet.asset_ids[0] == "INVA0001"


def test_packaged_examples_equal_the_repository_examples() -> None:
    root = Path(__file__).resolve().parent.parent
    repo_files = {
        p.relative_to(root / "manifests"): p.read_bytes()
        for p in (root / "manifests").rglob("*")
        if p.is_file()
    }
    pkg = root / "reconciler" / "templates" / "manifests"
    pkg_files = {p.relative_to(pkg): p.read_bytes() for p in pkg.rglob("*") if p.is_file()}
    assert repo_files == pkg_files


def test_every_problem_in_every_file_in_one_run(repo: Path) -> None:
    write(
        repo / "manifests/a.yaml",
        """\
apiVersion: reconciler/v1
kind: StageStateDeletion
metadata:
  name: fix-a
  descripton: typo
spec:
  orgId: o1
  pipelineId: p1
  stageInstanceNames: []
  assetIds: "a1,a2"
  pointIds: [ok, "has space", "x,y", 12]
""",
    )
    write(
        repo / "manifests/b.yml",
        """\
apiVersion: reconciler/v2
kind: Other
metadata:
  name: Bad_Name
spec:
  orgId: o1
  pipelineId: p1
  stageInstanceNames: [s]
  assetIds: [a]
  assetIdsFile: ids.txt
""",
    )
    got = messages(repo)
    a, b = str(repo / "manifests/a.yaml"), str(repo / "manifests/b.yml")
    assert f"{a}:5:3: metadata.descripton: unknown field; did you mean 'description'?" in got
    assert f"{a}:9:23: spec.stageInstanceNames: must not be empty" in got
    assert any(
        m.startswith(f"{a}:10:13: spec.assetIds: expected a list, got a comma-separated string") for m in got
    )
    assert any(m.startswith(f"{a}:11:18: spec.pointIds[1]: 'has space'") for m in got)
    assert any(m.startswith(f"{a}:11:31: spec.pointIds[2]: 'x,y'") for m in got)
    assert f"{a}:11:38: spec.pointIds[3]: expected a string, got 12 (quote it)" in got
    assert f"{b}:1:13: apiVersion: must be 'reconciler/v1', got 'reconciler/v2'" in got
    assert any(m.startswith(f"{b}:2:7: kind: must be 'StageStateDeletion'") for m in got)
    assert any(m.startswith(f"{b}:4:9: metadata.name: 'Bad_Name' is not a valid name") for m in got)
    assert f"{b}:10:3: spec.assetIdsFile: give assetIds or assetIdsFile, not both" in got
    assert f"{b}:6:3: spec: pointIds or pointIdsFile is required" in got


def test_missing_fields_and_not_a_mapping(repo: Path) -> None:
    write(
        repo / "manifests/m.yaml",
        "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata: {}\n---\n- a list\n",
    )
    got = messages(repo)
    f = str(repo / "manifests/m.yaml")
    assert f"{f}:1:1: spec: required field is missing" in got
    assert f"{f}:3:11: metadata.name: required field is missing" in got
    assert f"{f}:5:1: a manifest must be a mapping" in got


def test_duplicate_keys_and_names_are_reported(repo: Path) -> None:
    write(repo / "manifests/one.yaml", manifest_yaml("same") + "  pointIds: [again]\n")
    write(repo / "manifests/two.yaml", manifest_yaml("same"))
    write(repo / "manifests/three.yaml", manifest_yaml("other") + "---\n" + manifest_yaml("same"))
    got = messages(repo)
    one, two = str(repo / "manifests/one.yaml"), str(repo / "manifests/two.yaml")
    assert f"{one}:11:3: duplicate key 'pointIds'" in got
    three = str(repo / "manifests/three.yaml")
    # Both ends name the `name:` value's line and column, the document's own line included.
    assert f"{two}:4:9: metadata.name 'same' is also used at {one}:4:9" in got
    assert f"{three}:15:9: metadata.name 'same' is also used at {one}:4:9" in got
    assert f"{one}:4:9: metadata.name 'same' is also used at {two}:4:9" in got


def test_yaml_syntax_error_and_non_utf8(repo: Path) -> None:
    write(repo / "manifests/bad.yaml", "apiVersion: reconciler/v1\nkind: [unclosed\n")
    (repo / "manifests/latin.yaml").write_bytes(b"apiVersion: reconciler/v1\nkind: caf\xe9\n")
    got = messages(repo)
    assert any(m.startswith(f"{repo / 'manifests/bad.yaml'}:3:1: YAML syntax error") for m in got)
    assert f"{repo / 'manifests/latin.yaml'}:2:10: file is not UTF-8 (byte 0xe9)" in got


def test_anchors_and_aliases_are_refused_at_the_first(repo: Path) -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)
    )
    write(repo / "manifests/bomb.yaml", laughs)
    # Refused at the first anchor (1:4), before any alias could expand; hangs are
    # pytest-timeout's to catch, and figures the benchmarks' (no timing asserts here).
    assert messages(repo) == [
        f"{repo / 'manifests/bomb.yaml'}:1:4: YAML anchor 'a' is not allowed in manifests; write the values out"
    ]
    write(repo / "manifests/bomb.yaml", "a: 1\nb: *a\n")
    assert messages(repo) == [
        f"{repo / 'manifests/bomb.yaml'}:2:4: YAML alias 'a' is not allowed in manifests; write the values out"
    ]


def test_deep_nesting_and_huge_files_are_refused_where_they_go_too_far(repo: Path) -> None:
    write(repo / "manifests/deep.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    # at the 33rd bracket (1:35), not after reading 50,000 of them
    assert messages(repo) == [
        f"{repo / 'manifests/deep.yaml'}:1:35: nested deeper than 32 levels; a manifest needs 3"
    ]
    write(repo / "manifests/deep.yaml", manifest_yaml("big") + "# " + "x" * 300_000 + "\n")
    assert messages(repo) == [
        f"{repo / 'manifests/deep.yaml'}:1:1: file is larger than 256 KiB; put long ID lists in an *IdsFile"
    ]


def test_ids_files(repo: Path, tmp_path: Path) -> None:
    write(repo / "manifests/ids/good.txt", "# farm A\n  a1  \n\na2\na1\n")
    write(repo / "manifests/ids/bad.txt", "a1\nb\tc\nd,e\n")
    write(repo / "manifests/ids/empty.txt", "# nothing\n")
    outside = write(tmp_path.parent / f"{tmp_path.name}-outside.txt", "x\n")
    os.symlink(outside, repo / "manifests/ids/link.txt")
    spec = "apiVersion: reconciler/v1\nkind: StageStateDeletion\nmetadata: {{name: {n}}}\nspec:\n  orgId: o\n  pipelineId: p\n  stageInstanceNames: [s]\n  assetIdsFile: {f}\n  pointIds: [p]\n"
    for n, f in [
        ("good", "ids/good.txt"),
        ("bad", "ids/bad.txt"),
        ("empty", "ids/empty.txt"),
        ("escape", "../../x.txt"),
        ("link", "ids/link.txt"),
        ("missing", "ids/nope.txt"),
    ]:
        write(repo / f"manifests/{n}.yaml", spec.format(n=n, f=f))
    result = load([str(repo / "manifests")])
    got = [str(d) for d in result.diagnostics]
    m = str(repo / "manifests")
    assert f"{m}/ids/good.txt:5:1: warning: duplicate ID 'a1' (counted once)" in got
    # A tab is a control character: named, at its own column.
    tab = "assetId contains U+0009 CHARACTER TABULATION (a control character); remove it"
    assert f"{m}/ids/bad.txt:2:2: {tab}" in got
    assert any(g.startswith(f"{m}/ids/bad.txt:3:1: bad ID 'd,e'") for g in got)
    assert f"{m}/bad.yaml:8:17: spec.assetIdsFile: 'ids/bad.txt' holds bad IDs" in got
    assert f"{m}/empty.yaml:8:17: spec.assetIdsFile: 'ids/empty.txt' holds no IDs" in got
    assert any(
        g.startswith(f"{m}/escape.yaml:8:17: spec.assetIdsFile: '../../x.txt' is outside") for g in got
    )
    assert any(g.startswith(f"{m}/link.yaml:8:17: spec.assetIdsFile: 'ids/link.txt' is outside") for g in got)
    assert f"{m}/missing.yaml:8:17: spec.assetIdsFile: cannot read 'ids/nope.txt': file not found" in got
    good = next(x for x in result.manifests if x.name == "good")
    assert good.asset_ids == ("a1", "a2")


def test_duplicate_ids_in_a_list_warn_and_count_once(repo: Path) -> None:
    write(repo / "manifests/d.yaml", manifest_yaml("d", assets=["a1", "a2", "a1"]))
    result = load([str(repo / "manifests")])
    assert result.errors == []
    assert [str(w) for w in result.warnings] == [
        f"{repo / 'manifests/d.yaml'}:9:22: warning: spec.assetIds[2]: duplicate 'a1' (counted once)"
    ]
    assert result.manifests[0].asset_ids == ("a1", "a2")


def test_validate_cli_exit_codes_and_no_traceback(repo: Path) -> None:
    write(repo / "manifests/ok.yaml", manifest_yaml("ok"))
    good = run_cli(["validate"], repo)
    assert good.code == 0 and "1 manifest in 1 file valid: 2 cells declared." in good.out
    write(repo / "manifests/broken.yaml", "apiVersion: [\n")
    bad = run_cli(["validate"], repo)
    assert bad.code == 1
    assert "manifests/broken.yaml:" in bad.err and "YAML syntax error" in bad.err
    assert "Traceback" not in bad.all
    missing = run_cli(["validate", "nowhere"], repo)
    assert missing.code == 1 and "nowhere: no such file or directory" in missing.err
    assert "Traceback" not in missing.all
