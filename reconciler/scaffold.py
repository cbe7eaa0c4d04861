"""`reconcile init`: a manifests repository with CI workflows, from templates in the package.

Writes nothing if any target exists (unless forced), so a half-scaffolded tree never
results from a refusal. `--force` never overwrites the ledger or a reviewed
reconcile.yaml; `--workflows-only` refreshes the CI files alone. The scaffold keeps
the ledger in git (reconcile.yaml) on the repository's real default branch, and `init`
returns every secret, variable, permission and protection the user must still set.

The first push is not an apply: the example manifest is written to `examples/`, which
nothing plans or applies (only `manifests/` is, and it starts empty but for a README), so
pushing the scaffold clears nothing, and the example reaches production only by being
copied into `manifests/` in a reviewed pull request.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import __version__, gitcmd
from reconciler.config import CONFIG_SCHEMA_FILE, render_config_schema
from reconciler.errors import ReconcilerError
from reconciler.manifests.schema import SCHEMA_FILE, render_schema

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

DEFAULT_MAX_CELLS = 1_000_000
LEDGER = "applied-ledger.jsonl"
CONFIG = "reconcile.yaml"
# What `--workflows-only` rewrites: the CI files, never a reviewed setting.
WORKFLOWS = (
    ".github/workflows/reconcile-apply.yml",
    ".github/workflows/reconcile-plan.yml",
    ".gitlab-ci.yml",
)


def default_branch(directory: Path) -> str:
    """The branch the repository merges into: origin's HEAD, else the branch checked out
    (a fresh `git init` honours init.defaultBranch), else git's configured default, else
    main. Workflows and the ledger must name the real one: `master` is still common."""
    for args in (
        ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"],
        ["symbolic-ref", "--quiet", "--short", "HEAD"],
        ["config", "--get", "init.defaultBranch"],
    ):
        found = _git(directory, args)
        if found:
            return found.removeprefix("origin/")
    return "main"


def _git(directory: Path, args: list[str]) -> str | None:
    where = directory if directory.is_dir() else directory.parent
    while not where.is_dir():
        where = where.parent
    out = (gitcmd.read(args, cwd=where) or "").strip()
    return out or None


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        name = child.name.replace("dot-", ".", 1) if child.name.startswith("dot-") else child.name
        rel = f"{prefix}{name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        elif child.name != "__pycache__":
            out.append((rel, child))
    return out


# What CI installs in the examples and tests: a version on the package index.
INDEX_INSTALL = f"enos-reconciler=={__version__}"


def planned_files(
    max_cells: int = DEFAULT_MAX_CELLS, branch: str = "main", install: str = INDEX_INSTALL
) -> dict[str, str]:
    """Every file init writes, relative path -> content. `install` is the pip requirement
    both CI jobs install: the reconcile that scaffolded them (`install_source`)."""
    root = resources.files("reconciler") / "templates" / "init"
    values = {
        "{{VERSION}}": __version__,
        "{{MAX_CELLS}}": str(max_cells),
        "{{BRANCH}}": branch,
        "{{INSTALL}}": install,
    }
    files = {}
    for rel, src in _walk(root):
        content = src.read_text()
        for placeholder, value in values.items():
            content = content.replace(placeholder, value)
        files[rel] = content
    files[f"schemas/{SCHEMA_FILE}"] = render_schema()
    files[f"schemas/{CONFIG_SCHEMA_FILE}"] = render_config_schema()
    files[LEDGER] = ""
    return files


@dataclass(frozen=True)
class InitResult:
    """What init wrote and kept (relative paths), and what the user must still set up, in order."""

    written: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # an existing ledger or reconcile.yaml
    branch: str = "main"


NEXT_STEPS = [
    "Push the scaffold: it clears nothing (its example is under examples/, and only "
    "manifests/ is planned and applied). Then, on a branch, copy examples/example.yaml into "
    "manifests/ (or write your own there), edit it, and open a pull request.",
    "Make the plan job a required status check of the default branch (GitHub: a branch "
    "ruleset or protection rule requiring `reconcile plan / plan`; GitLab: Pipelines must "
    "succeed), so nothing merges without a plan a reviewer saw.",
    "Add CODEOWNERS for manifests/ and reconcile.yaml (GitHub: .github/CODEOWNERS; GitLab: "
    "CODEOWNERS with Code Owner approval required), so every deletion and every change to "
    "where credentials go or to apply's policy needs the right reviewers.",
    "The gateway: set ENOS_API_GATEWAY (GitHub: a repository secret, so fork pull requests "
    "do not see it either; GitLab: a CI/CD variable), or list gateways per org in "
    "reconcile.yaml.",
    # GitHub
    "GitHub: create the environment enos-production (Settings > Environments; limit its "
    "deployment branches to {branch}) and put the production ENOS_APP_KEY and ENOS_APP_SECRET in it "
    "as environment secrets: only the apply job uses that environment.",
    "GitHub, optional: repository secrets ENOS_READONLY_APP_KEY and ENOS_READONLY_APP_SECRET, an "
    "application that may only read pipelines, for `plan --refresh` on pull requests; pull "
    "requests from forks get no secrets and plan offline.",
    "GitHub: the apply workflow pushes the ledger to {branch} with GITHUB_TOKEN (permissions: "
    "contents: write). If {branch} is protected, add GitHub Actions (or the app whose token you "
    "use) to the bypass list of {branch}'s ruleset, or keep the ledger on a dedicated branch: set "
    "ledger.git.branch: reconcile/ledger in reconcile.yaml.",
    # GitLab
    "GitLab: protect the environment enos-production and add ENOS_APP_KEY and ENOS_APP_SECRET "
    "as masked, protected CI/CD variables with environment scope enos-production: only the "
    "apply job sees them.",
    "GitLab: RECONCILE_PUSH_TOKEN, a project access token with write_repository (masked, "
    "protected, scope enos-production) that may push to the ledger's branch: if {branch} is "
    "protected, add its role (Maintainer) to Allowed to push and merge under Settings > "
    "Repository > Protected branches, or set ledger.git.branch: reconcile/ledger.",
    "GitLab: RECONCILE_NOTE_TOKEN, a project access token with api scope and the Reporter "
    "role (masked, not protected), to keep one plan note per merge request up to date.",
    "GitLab, optional: ENOS_READONLY_APP_KEY and ENOS_READONLY_APP_SECRET (masked, not "
    "protected), a read-only application for `plan --refresh`; fork pipelines get none.",
    "GitLab, once the apply job has run once: make its resource group run jobs oldest first: "
    'curl --request PUT --header "PRIVATE-TOKEN: <maintainer token>" --data '
    '"process_mode=oldest_first" '
    '"https://<your-gitlab>/api/v4/projects/<project id>/resource_groups/reconcile-apply"',
    "CI installs exactly {install} ({install_how}). Keep that source under your team's "
    "control (your fork, your artifact server or package index), and change it only through "
    "a reviewed pull request: the apply job runs next to the production secrets.",
]


def init(
    directory: Path,
    *,
    force: bool = False,
    max_cells: int = DEFAULT_MAX_CELLS,
    branch: str | None = None,
    workflows_only: bool = False,
    install: str = INDEX_INSTALL,
    install_how: str = "a version on the package index",
) -> InitResult:
    """Write the scaffold into `directory`; refuse (writing nothing) if a file exists
    unless `force`. An existing ledger and an existing reconcile.yaml are never
    overwritten, forced or not: one is the record, the other a reviewed setting.
    `workflows_only` rewrites the CI files alone (to take a new template)."""
    branch = branch or default_branch(directory)
    files = planned_files(max_cells, branch, install)
    if workflows_only:
        files = {rel: text for rel, text in files.items() if rel in WORKFLOWS}
        force = True
    kept = [rel for rel in (LEDGER, CONFIG) if rel in files and (directory / rel).exists()]
    existing = sorted(rel for rel in files if rel not in kept and (directory / rel).exists())
    if existing and not force:
        raise ReconcilerError(
            f"{directory}: refusing to overwrite existing files (nothing was written; --force "
            "overwrites them, --workflows-only rewrites the CI files alone):\n"
            + "\n".join(f"  {rel}" for rel in existing)
        )
    written = sorted(rel for rel in files if rel not in kept)
    for rel in written:
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[rel])
    steps = (
        []
        if workflows_only
        else [
            step.replace("{branch}", branch)
            .replace("{install}", install)
            .replace("{install_how}", install_how)
            for step in NEXT_STEPS
        ]
    )
    return InitResult(written, steps, kept, branch)
