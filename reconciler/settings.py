"""Flags (`reconciler.args`), environment and reconcile.yaml merged into the typed settings
operations take.

Where option defaults are decided: flags win over the repository config, which wins over
the built-in defaults (DESIGN "CLI"). Of the environment, this module reads the gateway,
which credential variables to use and `CI`; `enos.auth` reads the credentials' values, and
other modules read what they use themselves: `store` (`CI`, the pull request's base),
`actor` (the user, commit and CI run), `commands` with `notify` and `render.markdown` (the
targets' URLs, the commit, run and file links), `render.console` (`NO_COLOR`, `CI`,
`COLUMNS`), `gitcmd`, `gitsync._git` and `enos.session` (git's and TLS's variables).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.args import DEFAULT_PATHS
from reconciler.config import find_config, pick
from reconciler.errors import ApplyRefused, ConfigError, Hint, Hinted, ReconcilerError
from reconciler.plan import DEFAULT_MAX_ASSETS, DEFAULT_MAX_POINTS, Options

DEFAULT_START_TIMEOUT = 600.0  # DESIGN "Apply" step 8: 61121 is retried for up to 10 minutes

if TYPE_CHECKING:
    from reconciler.apply import Gateways
    from reconciler.apply.values import StartSettings
    from reconciler.args import ApplyArgs
    from reconciler.config import RepoConfig
    from reconciler.enos import EnosClient
    from reconciler.operations import ApplySettings
    from reconciler.plan.file import SavedPlan
    from reconciler.plan.values import PipelineRef


# How the CLI says a core message with its hint: `{}` is the core's words, `{value}` the
# hint's value; the flags are spelled here, once.
ADVICE: dict[Hint, str] = {
    Hint.PAUSE_PIPELINES: "{}\nPause them in the EnOS console, or pass --pause-pipelines to pause RUNNING "
    "ones for the run and start them again after.",
    Hint.LEDGER_IN_GIT: "{} Drop --ledger (or pass that file): a ledger kept in git is synced, never bypassed",
    Hint.LEDGER_MISSING: "{}\nCheck --ledger, RECONCILE_LEDGER or ledger.path in reconcile.yaml, whichever named it.",
    Hint.LEDGER_NONE_YET: "{} (nothing applied yet, or a wrong --ledger?)",
    Hint.LEDGER_SEGMENT: "{} (--ledger {value})",
    Hint.TARGETS: "--target: {}",
    Hint.START_PIPELINE: "--start {}",
    Hint.SETTLE_START: "{}: `reconcile ledger resolve --start {value}`",
    Hint.RESEND_IN_DOUBT: "{} To send them again: `reconcile apply --resend-in-doubt`",
    Hint.KAFKA_RATE: "{}\nA kafkaRate can also be given for them all: pass --kafka-rate N.",
    Hint.SNAPSHOT: "--snapshot {}",
    Hint.SNAPSHOT_PER_RUN: "{} (`apply --snapshot FILE`)",
    Hint.START_TIMEOUT: "{}; --start-timeout is {value}",
    Hint.COUNTS: "{} (--limit N, --tail N)",
    Hint.FILTER: "--{value} {}",  # `ledger show` spells each filter as `select` names it
    Hint.IGNORE_WINDOW: "{} (--ignore-window)",
    Hint.ALLOW_UNREVIEWED: "{} (--allow-unreviewed)",
    Hint.SAVED_PLAN: "{} with `reconcile plan --out`",
}


def advice(said: ReconcilerError | str) -> str:
    """A core error's, note's or warning's words with the advice its hint asks for (a
    plain `str` is said as it is); an error's detail lines each with their own."""
    if isinstance(said, ReconcilerError):
        return _advised(said.headline, said.hint, said.hint_value) + "".join(
            f"\n  {advice(line)}" for line in said.details
        )
    if isinstance(said, Hinted):
        return _advised(said, said.hint, said.hint_value)
    return str(said)


def _advised(words: str, hint: Hint | None, value: str) -> str:
    return str(words) if hint is None else ADVICE[hint].format(words, value=value)


@contextmanager
def flag_advice(error: type[ReconcilerError], *, before: str = "", after: str = "") -> Iterator[None]:
    """A core `error`'s message with this command's flag added: the core names no flags,
    since which flag applies (if any) depends on the command that met the error."""
    try:
        yield
    except error as exc:
        raise type(exc)(f"{before}{advice(exc)}{after}") from exc


def paths_or_default(paths: Sequence[str] | None) -> list[str]:
    return list(paths) if paths else list(DEFAULT_PATHS)


def check_window_override(args: ApplyArgs) -> None:
    """`--ignore-window` and `--reason TEXT` go together (break glass, and why)."""
    reason = args.reason
    if args.ignore_window != (reason is not None) or (reason is not None and not reason.strip()):
        raise ReconcilerError(
            "--ignore-window needs --reason TEXT (kept in every record of the run), and --reason "
            "goes only with --ignore-window"
        )


def config(path: str | None = None) -> RepoConfig | None:
    """`--config FILE`, else reconcile.yaml in the working directory when there is one."""
    found = path if path is not None else find_config()
    if found is None:  # nothing to read: its models are not even imported
        return None
    from reconciler.config import load_config

    return load_config(found)


def pull_request_config(head: RepoConfig | None, base: RepoConfig | None) -> RepoConfig | None:
    """What a pull request's plan job runs with: the pull request's reconcile.yaml (what
    the merge will do), except every setting that reaches outside the repository, which
    comes from the base branch: gateways and credential variable names, the ledger's git
    remote (a name or a URL: where git connects), and notification targets. A pull request
    is untrusted code: it may change what is declared, and nothing else runs on its word."""
    if head is None:
        return None
    from dataclasses import MISSING, fields, replace

    from reconciler.store import CHECKOUT_REMOTE

    remote = base.git.remote if base is not None and base.git is not None else CHECKOUT_REMOTE
    outside: dict[str, object] = {"git": replace(head.git, remote=remote) if head.git is not None else None}
    for f in fields(head):
        if f.name in FROM_THE_BASE:
            default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]
            outside[f.name] = getattr(base, f.name) if base is not None else default
    return replace(head, **outside)  # type: ignore[arg-type]


# RepoConfig's fields a pull request's plan job takes from the base branch whole (the
# ledger's remote besides): they say where credentials and messages are sent.
FROM_THE_BASE = ("gateways", "notify")


def resolve_ledger(flag: str | None, cfg: RepoConfig | None = None) -> str:
    """`--ledger` (or RECONCILE_LEDGER), else reconcile.yaml's, else the default (the one
    rule: `store.ledger_path`)."""
    from reconciler.store import ledger_path

    return ledger_path(flag, cfg)


def plan_options(max_points: int | None, max_assets: int | None, targets: Iterable[str] | None) -> Options:
    from reconciler.config import MAX_INT32, check_bound

    check_bound("--max-points", max_points, 1, MAX_INT32)
    check_bound("--max-assets", max_assets, 1, MAX_INT32)
    return Options(
        max_points=max_points or DEFAULT_MAX_POINTS,
        max_assets=max_assets or DEFAULT_MAX_ASSETS,
        targets=tuple(targets or ()),
    )


def resume_settings(cfg: RepoConfig | None) -> dict[PipelineRef, StartSettings]:
    """reconcile.yaml's start body per pipeline, resourceConfig included (DESIGN "EnOS
    contract decisions", Start)."""
    from reconciler.apply.values import StartSettings
    from reconciler.plan.values import PipelineRef

    if cfg is None:
        return {}
    return {
        PipelineRef(p.org_id, p.pipeline_id): StartSettings(p.execution_mode, p.kafka_rate, p.resource_config)
        for p in cfg.pipelines
    }


def gateways_for(
    gateway: str | None,
    cfg: RepoConfig | None = None,
    *,
    read_only: bool = False,
    on_retry: Callable[[str], None] | None = None,
) -> Callable[[], Gateways]:
    """Check the configuration now (no network) and return what builds the clients later.

    Checked before any plan is shown: a missing gateway or credential is the first thing
    a user hears about, not the last. `--gateway` (or ENOS_API_GATEWAY) is the default
    gateway; reconcile.yaml may name one per org, each with its own credential variables.
    `read_only` prefers ENOS_READONLY_APP_KEY/SECRET when set (plan --refresh on PRs).
    """
    from reconciler.enos import Credentials, check_gateway, credentials_from_env

    key_var, secret_var = "ENOS_APP_KEY", "ENOS_APP_SECRET"
    if read_only and os.environ.get("ENOS_READONLY_APP_KEY"):
        key_var, secret_var = "ENOS_READONLY_APP_KEY", "ENOS_READONLY_APP_SECRET"
    per_org: dict[str, tuple[str, Credentials]] = {}
    default: tuple[str, Credentials] | None = None
    for g in cfg.gateways if cfg is not None else ():
        entry = (check_gateway(g.url), credentials_from_env(g.app_key_env, g.app_secret_env))
        if g.org_id is None:
            default = entry
        else:
            per_org[g.org_id] = entry
    url = gateway or os.environ.get("ENOS_API_GATEWAY")
    if url:
        default = (check_gateway(url), credentials_from_env(key_var, secret_var))
    if default is None and not per_org:
        raise ReconcilerError(
            "no gateway: pass --gateway URL, set ENOS_API_GATEWAY, or list `gateways` in reconcile.yaml"
        )

    def build() -> Gateways:
        from reconciler.apply import Gateways

        def client(entry: tuple[str, Credentials]) -> EnosClient:
            from reconciler.enos import EnosClient
            from reconciler.enos.session import RetryPolicy, Session

            # A read-only refresh (the PR comment) degrades to the offline plan rather than
            # wait out apply's whole backoff on a gateway that is down.
            retry = RetryPolicy(attempts=3, initial=0.2, cap=1.0) if read_only else RetryPolicy()
            return EnosClient(Session(entry[0], entry[1], on_retry=on_retry, retry=retry))

        return Gateways({org: client(e) for org, e in per_org.items()}, client(default) if default else None)

    return build


def apply_settings(cfg: RepoConfig | None, args: ApplyArgs) -> ApplySettings:
    """`reconcile apply`'s flags over reconcile.yaml over the defaults, and who applies.

    In CI, manifests with uncommitted changes are refused unless `allow_dirty`: the
    ledger's `gitCommit` would not say what was applied. With the ledger in git, apply
    refuses anything not on the remote's branch unless `allow_unreviewed` (break glass),
    and then every record of the run says `"unreviewed": true` in its actor.
    """
    from reconciler.actor import current_actor
    from reconciler.apply import ApplyOptions
    from reconciler.config import MAX_CELLS_LIMIT, MAX_INT32, MAX_START_TIMEOUT, check_bound
    from reconciler.operations import ApplySettings
    from reconciler.plan.rollout import DEFAULT_MAX_PAUSE, DEFAULT_MAX_PAUSED

    check_bound("--concurrency", args.concurrency, 1, 64)
    check_bound("--start-timeout", args.start_timeout, 0, MAX_START_TIMEOUT)
    check_bound("--max-cells", args.max_cells, 0, MAX_CELLS_LIMIT)
    check_bound("--kafka-rate", args.kafka_rate, 1, MAX_INT32)
    check_bound("--lock-timeout", args.lock_timeout, 0, MAX_START_TIMEOUT)
    check_bound("--max-paused", args.max_paused, 1, 64)
    pause_seconds = max_pause_seconds(args.max_pause)
    paths = paths_or_default(args.paths)
    window_override = args.reason.strip() if args.reason is not None else None
    saved = saved_plan(paths)
    # Where the manifests are: a saved plan's own paths (the plan file itself is usually an
    # untracked build output, not a change to what is applied).
    manifest_paths = saved.manifests if saved is not None else paths
    actor = current_actor(manifest_paths)
    if args.allow_unreviewed:
        actor["unreviewed"] = True
    if window_override is not None:  # break glass: outside apply.windows, and why
        actor["windowOverride"] = window_override
    in_git = cfg is not None and cfg.git is not None  # then apply checks what was reviewed itself
    if (
        actor.get("gitDirty")
        and os.environ.get("CI")
        and not (args.allow_dirty or args.allow_unreviewed or in_git)
    ):
        raise ApplyRefused(
            "the manifests have uncommitted changes, so the ledger could not say which commit was "
            "applied; nothing was sent. Commit them, or pass --allow-dirty"
        )
    evidence = snapshot_path(
        args.snapshot,
        cfg,
        args.ledger or (saved.ledger.path if saved is not None else resolve_ledger(None, cfg)),
    )
    options = ApplyOptions(
        concurrency=pick(args.concurrency, cfg.concurrency if cfg else None, 4),
        pause_pipelines=pick(args.pause_pipelines, cfg.pause_pipelines if cfg else None, False),
        skip_pause_check=args.skip_pause_check,
        resend_in_doubt=args.resend_in_doubt,
        verify=args.verify,
        kafka_rate=args.kafka_rate,
        resume_settings=resume_settings(cfg),
        start_timeout=pick(args.start_timeout, cfg.start_timeout if cfg else None, DEFAULT_START_TIMEOUT),
        actor=actor,
        snapshot=evidence,
        max_paused=pick(args.max_paused, cfg.max_paused if cfg else None, DEFAULT_MAX_PAUSED),
        max_pause=pick(pause_seconds, cfg.max_pause if cfg else None, DEFAULT_MAX_PAUSE),
        canary=pick(False if args.no_canary else None, cfg.canary if cfg else None, True),
    )
    return ApplySettings(
        paths=tuple(paths),
        ledger=args.ledger,
        default_ledger=resolve_ledger(None, cfg),
        plan_options=plan_options(args.max_points, args.max_assets, args.target),
        apply_options=options,
        max_cells=args.max_cells if args.max_cells is not None else (cfg.max_cells if cfg else None),
        max_cells_source="--max-cells"
        if args.max_cells is not None
        else f"apply.maxCells in {cfg.path if cfg else 'reconcile.yaml'}",
        lock_timeout=args.lock_timeout,
        reviewed_paths=(*manifest_paths, *((str(cfg.path),) if cfg else ())),
        saved=saved,
        allow_unreviewed=args.allow_unreviewed,
        windows=cfg.windows if cfg is not None else None,
        window_override=window_override,
    )


def snapshot_path(flag: str | None, cfg: RepoConfig | None, ledger: str) -> str | None:
    """`--snapshot`, else reconcile.yaml's apply.snapshot, checked where it is used, with
    symlinks followed: never in a `.git` folder, never one of the ledger's files (the main
    file, its `.d/` folder, lock or lease), and apply.snapshot inside the repository (the
    folder of reconcile.yaml). Refused before anything is sent."""
    if flag:
        given, what = flag, f"--snapshot {flag}"
    elif cfg is not None and cfg.snapshot is not None:
        given, what = str(cfg.snapshot), f"apply.snapshot in {cfg.path} ({cfg.snapshot})"
    else:
        return None
    from reconciler.config import ledger_files_problem, snapshot_name_problem  # the file's models: only now

    target = Path(given).resolve()
    problem = None
    if any(part.casefold() == ".git" for part in target.parts):
        problem = "it is inside a .git folder"
    elif ledger_files_problem(target.as_posix(), Path(ledger).resolve().as_posix()):
        problem = f"it is one of the ledger's files ({ledger}, its .d/ folder, lock or lease)"
    elif not flag and cfg is not None and not _inside(target, cfg.path.resolve().parent):
        problem = f"it is outside the repository ({cfg.path.resolve().parent})"
    elif snapshot_name_problem(target.name):
        problem = (
            "it must name a JSON Lines file of its own (.jsonl or .jsonl.gz), not a manifest or another file"
        )
    if problem:
        raise ConfigError(f"{what}: {problem}; nothing was sent. Keep the evidence in a file of its own")
    return given


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def saved_plan(paths: Sequence[str]) -> SavedPlan | None:
    """The saved plan, when apply's target is one: read (and its hash checked) once."""
    from reconciler.plan import file as planfile

    if len(paths) == 1 and planfile.is_plan_file(paths[0]):
        return planfile.read(Path(paths[0]))
    return None


def schemas() -> dict[str, str]:
    """Every JSON Schema the project publishes in schemas/, by file name."""
    from reconciler.config import CONFIG_SCHEMA_FILE, render_config_schema
    from reconciler.manifests.schema import SCHEMA_FILE, render_schema

    return {SCHEMA_FILE: render_schema(), CONFIG_SCHEMA_FILE: render_config_schema()}


def max_pause_seconds(text: str | None) -> float | None:
    """--max-pause in seconds; a bad duration is a usage error naming the flag."""
    if text is None:
        return None
    from reconciler.windows import pause_duration

    try:
        return pause_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--max-pause: {exc}") from None
