"""Reading input files: only regular files, bounded, never blocking; BOMs dropped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import manifest_yaml, write

from reconciler import yamlsource
from reconciler.errors import Diagnostic
from reconciler.manifests import IDS_MAX_BYTES, load, read_ids_file
from reconciler.yamlsource import FileTooLarge, NotRegularFile, read_regular

pytestmark = pytest.mark.timeout(20)  # a blocked read must fail the test, not hang the suite


def test_read_regular_reads_a_regular_file(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "abc\n")
    assert read_regular(f, 4) == b"abc\n"
    assert read_regular(write(tmp_path / "e.txt", ""), 4) == b""


def test_read_regular_refuses_more_than_the_bound(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "abcde")
    with pytest.raises(FileTooLarge, match="file is larger than 0 KiB"):
        read_regular(f, 4)
    assert str(FileTooLarge(64 << 20)) == "file is larger than 64 MiB"


def test_read_regular_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)  # no writer: a blocking open or read would hang here
    with pytest.raises(NotRegularFile, match=r"not a regular file \(a FIFO\); refusing to read it"):
        read_regular(fifo, 1024)


def test_read_regular_refuses_a_symlink_to_dev_zero(tmp_path: Path) -> None:
    link = tmp_path / "x.yaml"
    os.symlink("/dev/zero", link)
    with pytest.raises(NotRegularFile, match=r"\(a character device\)"):
        read_regular(link, 1024)


def test_read_regular_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFile, match=r"\(a directory\)"):
        read_regular(tmp_path, 1024)


def test_decode_drops_a_bom_only_at_the_start() -> None:
    assert yamlsource.decode("f", b"\xef\xbb\xbfa\n") == ("a\n", [])
    assert yamlsource.decode("f", b"a\xef\xbb\xbf\n") == ("a\ufeff\n", [])


def test_fifo_and_dev_zero_manifests_are_refused(repo: Path) -> None:
    write(repo / "manifests/ok.yaml", manifest_yaml("ok"))
    os.mkfifo(repo / "manifests/x.yaml")
    os.symlink("/dev/zero", repo / "manifests/zero.yml")
    result = load([str(repo / "manifests")])
    m = repo / "manifests"
    assert sorted(str(d) for d in result.diagnostics) == [
        f"{m / 'x.yaml'}: not a regular file (a FIFO); refusing to read it",
        f"{m / 'zero.yml'}: not a regular file (a character device); refusing to read it",
    ]
    assert [x.name for x in result.manifests] == ["ok"]


def test_a_fifo_given_by_name_is_refused_not_missing(repo: Path) -> None:
    os.mkfifo(repo / "x.yaml")
    got = [str(d) for d in load([str(repo / "x.yaml")]).diagnostics]
    assert got == [f"{repo / 'x.yaml'}: not a regular file (a FIFO); refusing to read it"]


def test_special_ids_files_are_refused(repo: Path) -> None:
    (repo / "manifests/ids").mkdir()
    os.mkfifo(repo / "manifests/ids/fifo.txt")
    os.symlink("/dev/zero", repo / "manifests/ids/zero.txt")
    for name in ("fifo", "zero"):
        text = manifest_yaml(name).replace("assetIds: [a1, a2]", f"assetIdsFile: ids/{name}.txt")
        write(repo / f"manifests/{name}.yaml", text)
    got = [str(d) for d in load([str(repo / "manifests")]).diagnostics]
    m = repo / "manifests"
    assert f"{m / 'ids/fifo.txt'}: not a regular file (a FIFO); refusing to read it" in got
    assert (
        f"{m / 'fifo.yaml'}:9:17: spec.assetIdsFile: cannot read 'ids/fifo.txt': see {m / 'ids/fifo.txt'}"
        in got
    )
    # /dev/zero is outside the manifests root: refused before any open.
    assert any(
        g.startswith(f"{m / 'zero.yaml'}:9:17: spec.assetIdsFile: 'ids/zero.txt' is outside") for g in got
    )


def test_special_and_huge_ids_files_are_refused_by_the_reader(tmp_path: Path) -> None:
    assert read_ids_file(Path("/dev/zero"), "ids/zero.txt", "assetId") == (
        None,
        [Diagnostic("ids/zero.txt", 0, 0, "not a regular file (a character device); refusing to read it")],
    )
    huge = tmp_path / "huge.txt"
    huge.touch()
    os.truncate(huge, IDS_MAX_BYTES + 1)  # sparse: refused on its size, never read
    msg = "file is larger than 64 MiB; split the IDs over several files"
    assert read_ids_file(huge, "ids/huge.txt") == (None, [Diagnostic("ids/huge.txt", 0, 0, msg)])
