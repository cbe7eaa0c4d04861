"""Where the running `reconcile` was installed from, so `init` pins exactly that in CI.

The apply job runs next to production secrets with `contents: write`: whatever it
installs must be a source the team controls, and exactly the version that scaffolded
the repository. Installation metadata tells which (PEP 610 `direct_url.json`):

- a VCS URL at its commit: pinned to that commit (`enos-reconciler @ git+URL@<sha>`);
- a wheel or sdist served over https: pinned with its sha256 (`... @ URL#sha256=...`);
- from a package index (no `direct_url.json`): pinned by version;
- a local directory (editable or not) or a local file: CI cannot reach it, so `init`
  asks for `--install-source` instead of guessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata

from reconciler.errors import ReconcilerError

DISTRIBUTION = "enos-reconciler"
_SAFE = re.compile(r"^[A-Za-z0-9._\-+=@:/#?&%~!,\[\] ]+$")


@dataclass(frozen=True)
class InstallSource:
    """A pip requirement for CI, and how it was found."""

    requirement: str
    how: str


def check(spec: str) -> str:
    """`--install-source`: one pip requirement, safe to write inside double quotes."""
    spec = spec.strip()
    if not spec or not _SAFE.match(spec) or '"' in spec or "$" in spec or "`" in spec:
        raise ReconcilerError(
            f"--install-source {spec!r}: give one pip requirement (no quotes, $ or newlines), e.g. "
            f'"{DISTRIBUTION} @ git+https://git.example.com/platform/reconciler@<commit>"'
        )
    return spec


def running(version: str) -> InstallSource:
    """`detect` for this installation of reconcile."""
    found = list(metadata.distributions(name=DISTRIBUTION))
    for dist in found:  # an installed .dist-info says where it came from
        direct_url = dist.read_text("direct_url.json")
        if direct_url is not None:
            return detect(version, direct_url)
    if any(str(getattr(d, "_path", "")).endswith(".egg-info") for d in found):
        raise _ask("this reconcile runs from a source checkout, which CI cannot install")
    return detect(version, None)


def detect(version: str, direct_url: str | None) -> InstallSource:
    """What CI should install, given an installation's `direct_url.json` (None: there is
    none, so it came from a package index); `ReconcilerError` asking for
    `--install-source` when it came from somewhere CI cannot reach."""
    if direct_url is None:
        return InstallSource(
            f"{DISTRIBUTION}=={version}", f"installed from a package index, version {version}"
        )
    try:
        info = json.loads(direct_url)
        url = info["url"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _ask(f"its installation record (direct_url.json) cannot be read: {exc}") from exc
    sub = info.get("subdirectory")
    fragment = f"#subdirectory={sub}" if sub else ""
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("commit_id") and not url.startswith("file:"):
        return InstallSource(
            f"{DISTRIBUTION} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}{fragment}",
            f"installed from {url} at commit {vcs['commit_id'][:12]}",
        )
    archive = info.get("archive_info")
    if isinstance(archive, dict) and url.startswith("https://"):
        digest = (archive.get("hashes") or {}).get("sha256") or str(archive.get("hash", "")).removeprefix(
            "sha256="
        )
        if digest:
            return InstallSource(
                f"{DISTRIBUTION} @ {url}#sha256={digest}", f"installed from {url}, sha256 pinned"
            )
    where = url.removeprefix("file://")
    digest = ""
    if isinstance(archive, dict):
        digest = (archive.get("hashes") or {}).get("sha256", "")
    kind = "an editable checkout" if (info.get("dir_info") or {}).get("editable") else "a local path"
    hint = (
        f" (sha256 {digest}: pin it with #sha256=... once the file is where CI can fetch it)"
        if digest
        else ""
    )
    raise _ask(f"this reconcile runs from {kind}, {where}{hint}, which CI cannot install")


def _ask(why: str) -> ReconcilerError:
    return ReconcilerError(
        f"{why}. Say what CI should install with --install-source, a source your team controls, "
        f"pinned: a commit of your fork ('{DISTRIBUTION} @ git+https://git.example.com/platform/"
        f"reconciler@<commit>'), a wheel on your artifact server ('{DISTRIBUTION} @ "
        f"https://artifacts.example.com/enos_reconciler-<version>-py3-none-any.whl#sha256=<digest>'), "
        f"or a version on your package index ('{DISTRIBUTION}==<version>'). Build the wheel with "
        "`python -m pip wheel --no-deps -w dist .` in a checkout of the reconciler source"
    )
