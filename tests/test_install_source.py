"""install_source: `init` pins exactly the running reconcile, from a source CI can reach."""

from __future__ import annotations

import json

import pytest

from reconciler.errors import ReconcilerError
from reconciler.install_source import check, detect


def test_an_index_install_is_pinned_by_version() -> None:
    src = detect("0.1.0", direct_url=None)
    assert src.requirement == "enos-reconciler==0.1.0"


def test_a_vcs_install_is_pinned_to_its_commit() -> None:
    info = {
        "url": "https://git.example.com/platform/reconciler.git",
        "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "main"},
    }
    src = detect("0.1.0", json.dumps(info))
    assert (
        src.requirement == f"enos-reconciler @ git+https://git.example.com/platform/reconciler.git@{'a' * 40}"
    )


def test_a_wheel_served_over_https_is_pinned_with_its_hash() -> None:
    info = {
        "url": "https://artifacts.example.com/enos_reconciler-0.1.0-py3-none-any.whl",
        "archive_info": {"hashes": {"sha256": "b" * 64}},
    }
    src = detect("0.1.0", json.dumps(info))
    assert src.requirement.endswith(f".whl#sha256={'b' * 64}")


@pytest.mark.parametrize(
    "info",
    [
        {"url": "file:///home/me/reconciler", "dir_info": {"editable": True}},
        {
            "url": "file:///tmp/enos_reconciler-0.1.0-py3-none-any.whl",
            "archive_info": {"hashes": {"sha256": "c" * 64}},
        },
        {"url": "file:///home/me/reconciler", "vcs_info": {"vcs": "git", "commit_id": "d" * 40}},
    ],
)
def test_a_local_install_asks_for_a_source(info: dict[str, object]) -> None:
    with pytest.raises(ReconcilerError, match="--install-source") as err:
        detect("0.1.0", json.dumps(info))
    assert "CI cannot install" in str(err.value) and "pip wheel" in str(err.value)


def test_an_install_source_must_be_one_safe_requirement() -> None:
    assert check(" enos-reconciler==0.2.0 ") == "enos-reconciler==0.2.0"
    for bad in ('x" && curl evil', "enos-reconciler\n==1", "$(id)", ""):
        with pytest.raises(ReconcilerError, match="one pip requirement"):
            check(bad)
