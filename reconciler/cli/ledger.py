"""The ledger commands: verify, show, resolve, migrate, restore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from reconciler.cli._app import LedgerOpt, LockTimeout, Paths, Yes, consoles, ledger_app, paths_or_default
from reconciler.errors import ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.plan import Action


@ledger_app.command("verify")
def ledger_verify(ledger: LedgerOpt = None) -> None:
    """Check the hash chain of every record; name the first bad line.

    Records cut from the end of the file are not detectable by the chain alone; with the
    ledger in git, apply checks that the new ledger extends the remote's.

    \b
    Example:  reconcile ledger verify --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod
    from reconciler.cli.settings import config, resolve_ledger

    c = consoles()
    path = resolve_ledger(ledger, config())
    led = ledger_mod.read(path)
    if not led.exists:
        raise ReconcilerError(f"{path} does not exist: nothing to verify (a typo in --ledger?)")
    for w in led.warnings:
        c.warn(w)
    c.out.print(
        f"{path}: {plural(len(led.records), 'record')}, chain intact; head seq {led.head_seq} hash {led.head_hash}",
        markup=False,
    )


@ledger_app.command("show")
def ledger_show(
    ledger: LedgerOpt = None,
    fmt: Annotated[str, typer.Option("--format", metavar="text|json", help="text or json.")] = "text",
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only records of this manifest.")  # noqa: UP045
    ] = None,
    pipeline: Annotated[
        Optional[str], typer.Option(metavar="ID", help="Only records of this pipeline ID.")  # noqa: UP045
    ] = None,
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="WHEN",
            help="Only records at or after this time: 2026-11-01, 2026-11-01T08:00Z, or 7d/12h/30m.",
        ),
    ] = None,
    kind: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--kind", metavar="KIND", help="Only these kinds (intent, delete, failed, pause, resume)."
        ),
    ] = None,
) -> None:
    """The history: when, manifest, pipeline, stage, assets, points, actor.

    \b
    Example:  reconcile ledger show --manifest wind-avg-power-fix-2026-11 --since 7d
    """
    from reconciler import ledger as ledger_mod
    from reconciler.cli.settings import config, resolve_ledger
    from reconciler.render import ledger as render

    if fmt not in ("text", "json"):
        raise ReconcilerError(f"--format must be text or json, not {fmt!r}")
    c = consoles()
    led = ledger_mod.read(resolve_ledger(ledger, config()))
    if not led.exists:
        c.warn(f"{led.path} does not exist (nothing applied yet, or a wrong --ledger)")
    records = ledger_mod.select(led, manifest=manifest, pipeline=pipeline, since=since, kinds=kind)
    for w in led.warnings:
        c.warn(w)
    if fmt == "json":
        c.write(render.records_json(r.as_json() for r in records))
    else:
        c.out.print(render.ledger_lines(records), end="", markup=False)


@ledger_app.command("resolve")
def ledger_resolve(
    paths: Paths = None,
    ledger: LedgerOpt = None,
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only in-doubt cells of this manifest.")  # noqa: UP045
    ] = None,
    auto_approve: Yes = False,
) -> None:
    """Record in-doubt requests as done, after a person checked the state is cleared.

    \b
    Example:  reconcile ledger resolve --manifest wind-avg-power-fix-2026-11 --auto-approve
    """
    from reconciler import operations
    from reconciler.actor import current_actor
    from reconciler.cli.settings import config, ledger_repo, resolve_ledger

    c = consoles()
    cfg = config()
    ledger_path = resolve_ledger(ledger, cfg)

    def confirm(doubt: list[Action]) -> None:
        for a in doubt:
            c.out.print(
                f"  {a.manifest} / {a.pipeline_id} / {a.stage}: {plural(a.cells, 'cell')} "
                f"({plural(len(a.asset_ids), 'asset')} x {plural(len(a.point_ids), 'point')})",
                markup=False,
            )
        from reconciler.cli.apply import approve

        approve(c, auto_approve, "Record these requests as done?")

    done = operations.resolve(
        paths_or_default(paths),
        ledger_path,
        manifest=manifest,
        actor=current_actor(),
        confirm=confirm,
        sync=ledger_repo(cfg, ledger_path),
    )
    if not done:
        c.out.print("No in-doubt requests to resolve.")
        return
    c.out.print(f"Recorded {plural(len(done), 'in-doubt request')} as done.")


@ledger_app.command("migrate")
def ledger_migrate(ledger: LedgerOpt = None, lock_timeout: LockTimeout = None) -> None:
    """Rewrite a v1 or v2 ledger in format v3, keeping the original as `<name>.v<N>.bak`.

    Format v3 stores long ID lists once, by content, in `<name>.d/ids/`, and seals the
    file at about 4 MB, going on in `<name>.d/segments/`: no file grows for years, and
    git keeps each list once. Every record keeps its seq, kind, time, fields and cells
    (checked before the ledger is replaced); the head hash changes, so saved plans made
    before are stale. With the ledger in git (reconcile.yaml), the remote's ledger is
    migrated and published (the main file and `<name>.d/`), and reconcile's anchor moves
    with it, so the next apply accepts it.

    \b
    Example:  reconcile ledger migrate --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod
    from reconciler.cli.settings import config, ledger_repo, resolve_ledger

    c = consoles()
    cfg = config()
    path = resolve_ledger(ledger, cfg)
    repo = ledger_repo(cfg, path)
    if repo is not None:
        with ledger_mod.LedgerLock(path, timeout=lock_timeout or 0):
            for note in repo.sync().notes:
                c.err.print(note, markup=False)
    result = ledger_mod.migrate(path, lock_timeout=lock_timeout or 0)
    for w in result.warnings:
        c.warn(w)
    if result.backup is None:
        c.out.print(f"{result.path}: already in format v3; nothing to do", markup=False)
        return
    if repo is not None:
        with ledger_mod.LedgerLock(path, timeout=lock_timeout or 0):
            repo.publish_rewrite(f"reconcile: ledger migrated ({result.records:,} records)")
        c.out.print(f"Published to {repo.where}; the anchor moved with it.", markup=False)
    c.out.print(
        f"{result.path}: {result.records:,} records in format v3 ({plural(result.files_after, 'file')}), "
        f"{result.referenced:,} deletes now refer to their intent; {result.bytes_before:,} -> "
        f"{result.bytes_after:,} bytes. The original is kept as {result.backup}.",
        markup=False,
    )


@ledger_app.command("restore")
def ledger_restore(ledger: LedgerOpt = None, auto_approve: Yes = False) -> None:
    """Put the ledger back as reconcile last published it, after it was cut, rewritten or
    forged on its branch, the branch was force-pushed or deleted, or a lease was planted.

    reconcile keeps its own anchor of every ledger it publishes (refs/reconcile/anchor on
    the remote), which merged pull requests cannot move. This commits that ledger and its
    lease on the ledger's branch (creating it if it is gone); nothing is sent to EnOS.

    \b
    Example:  reconcile ledger restore
    """
    from reconciler import ledger as ledger_mod
    from reconciler.cli.apply import approve
    from reconciler.cli.settings import config, ledger_repo, resolve_ledger

    c = consoles()
    cfg = config()
    path = resolve_ledger(ledger, cfg)
    repo = ledger_repo(cfg, path)
    if repo is None:
        raise ReconcilerError(
            "reconcile.yaml does not keep the ledger in git (ledger.git): there is no anchor to restore from"
        )
    approve(c, auto_approve, f"Commit the anchored ledger on {repo.where}?")
    with ledger_mod.LedgerLock(path):
        commit, records = repo.restore()
    c.out.print(
        f"restored {plural(records, 'record')} on {repo.where} ({(commit or '')[:12]}) as reconcile last "
        "published them",
        markup=False,
    )
