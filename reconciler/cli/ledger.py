"""The ledger commands: verify and show (each can check a snapshot file), resolve, report,
migrate, restore."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from reconciler.cli._app import (
    LedgerOpt,
    LockTimeout,
    Paths,
    Yes,
    ask,
    consoles,
    ledger_app,
    paths_or_default,
)
from reconciler.errors import LedgerLocked, ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.ledger import Ledger
    from reconciler.plan import Action
    from reconciler.plan.values import PipelineRef
    from reconciler.render.console import Consoles
    from reconciler.store import LedgerStore


@ledger_app.command("verify")
def ledger_verify(
    ledger: LedgerOpt = None,
    snapshot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Also check this `apply --snapshot` file against the digests its delete records carry.",
        ),
    ] = None,
) -> None:
    """Check the hash chain of every record; name the first bad line.

    Every file of the ledger is read: the main file, each segment its seals name (and
    each seal's digest of its segment and summary, which plan and apply trust for the
    segments no manifest names), and each ID list file. Records cut from the end of the
    file are not detectable by the chain alone; with the ledger in git, apply checks that
    the new ledger extends the remote's.

    \b
    Example:  reconcile ledger verify --ledger applied-ledger.jsonl
    """
    from reconciler import ledger as ledger_mod
    from reconciler.settings import config, resolve_ledger

    c = consoles()
    path = resolve_ledger(ledger, config())
    led = ledger_mod.read(path, check_seals=True)
    if not led.exists:
        raise ReconcilerError(f"{path} does not exist: nothing to verify (a typo in --ledger?)")
    for w in led.warnings:
        c.warn(w)
    seals = led.segment - 1  # each file but the last ends with a seal
    theirs = "its summary" if seals == 1 else "their summaries"
    files = (
        f" in {plural(led.segment, 'file')} ({plural(seals, 'seal')} and {theirs} checked)" if seals else ""
    )
    c.out.print(
        f"{path}: {plural(len(led.records), 'record')}{files}, chain intact; head seq {led.head_seq} "
        f"hash {led.head_hash}",
        markup=False,
    )
    if snapshot is not None:
        _check_snapshot(c, led, snapshot)


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
            "--kind", metavar="KIND", help="Only these kinds (intent, delete, failed, pause, start, resume)."
        ),
    ] = None,
    stage: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only records of this stage instance.")  # noqa: UP045
    ] = None,
    asset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="ID", help="Only records whose cells include this asset; says when it was last cleared."
        ),
    ] = None,
    point: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="ID", help="Only records whose cells include this point."),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option(metavar="N", help="Only the first N matching records.")  # noqa: UP045
    ] = None,
    tail: Annotated[
        Optional[int], typer.Option(metavar="N", help="Only the last N matching records.")  # noqa: UP045
    ] = None,
    snapshot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Check this `apply --snapshot` file against the digests its delete records carry.",
        ),
    ] = None,
) -> None:
    """The history: when, manifest, pipeline, stage, assets, points, actor.

    Every filter is checked against the ledger: a manifest, pipeline, stage, asset or
    point that no record names is an error with the closest names it does hold, never
    an empty answer that reads as "never cleared". With the ledger in git (reconcile.yaml),
    the ledger is read as its branch holds it, like `plan` reads it: a checkout may be
    behind.

    \b
    Example:
      reconcile ledger show --manifest wind-avg-power-fix-2026-11 --since 7d
      reconcile ledger show --asset 0033Tiui --kind delete --tail 1   # last cleared, and why
      reconcile ledger show --kind delete --snapshot evidence.jsonl.gz  # with the evidence checked
    """
    from reconciler import ledger as ledger_mod
    from reconciler.ledger import history as ledger_history
    from reconciler.render import ledger as render
    from reconciler.settings import flag_advice

    if fmt not in ("text", "json"):
        raise ReconcilerError(f"--format must be text or json, not {fmt!r}")
    if since is not None:
        with flag_advice(ReconcilerError, before="--since "):
            ledger_mod.parse_since(since)
    c = consoles()
    led = _published(ledger)
    if not led.exists:  # never "0 records", which would read as "never cleared"
        raise ReconcilerError(
            f"{led.path} does not exist: check --ledger (or RECONCILE_LEDGER, or ledger.path in reconcile.yaml)"
        )
    records = ledger_mod.select(
        led,
        manifest=manifest,
        pipeline=pipeline,
        since=since,
        kinds=kind,
        stage=stage,
        asset=asset,
        point=point,
        limit=limit,
        tail=tail,
    )
    for w in led.warnings:
        c.warn(w)
    if fmt == "json":
        c.write(render.records_json(r.as_json() for r in records))
    else:
        c.out.print(render.ledger_lines(records), end="", markup=False)
        if asset is not None or point is not None:
            # The full history of the cell, not the --tail/--limit window, says when it was last cleared.
            history = ledger_mod.select(
                led,
                manifest=manifest,
                stage=stage,
                asset=asset,
                point=point,
                kinds=["intent", "delete", "failed"],
            )
            what = " / ".join(f"{n} {v}" for n, v in (("asset", asset), ("point", point)) if v is not None)
            doubt = [
                (r, cells)
                for r, cells in ledger_history.open_intents(
                    led.records, aliases=ledger_history.recorded_aliases(led.records)
                )
                if (manifest is None or r.manifest == manifest) and (stage is None or r.key[3] == stage)
            ]
            text = render.last_cleared_text(
                history, what, _descriptions(), asset=asset, point=point, in_doubt=doubt
            )
            c.out.print(text, end="", markup=False)
    if snapshot is not None:
        _check_snapshot(c, led, snapshot)


def _descriptions() -> dict[str, str | None]:
    """Each manifest's description (the "why"), from the default manifests folder when it
    loads; the ledger holds names only."""
    from reconciler import manifests
    from reconciler.args import DEFAULT_PATHS

    if not all(Path(p).exists() for p in DEFAULT_PATHS):
        return {}
    try:
        loaded = manifests.load(list(DEFAULT_PATHS))
    except ReconcilerError:
        return {}
    return {m.name: m.description for m in loaded.manifests}


def _check_snapshot(c: Consoles, led: Ledger, path: Path) -> None:
    from reconciler.ledger.evidence import check

    report = check(path, led.records)
    c.out.print(report.text(), end="", markup=False)
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("resolve")
def ledger_resolve(
    paths: Paths = None,
    ledger: LedgerOpt = None,
    manifest: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="Only in-doubt cells of this manifest.")  # noqa: UP045
    ] = None,
    auto_approve: Yes = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read the in-doubt cells back first (Get Stage State, read-only credentials); refuse "
            "to record a request whose cells still hold state.",
        ),
    ] = False,
    gateway: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="URL", envvar="ENOS_API_GATEWAY", help="Gateway URL, for --verify."),
    ] = None,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--start",
            metavar="ORG/PIPELINE",
            help="Settle a start in doubt instead: an apply announced this pipeline's start and "
            "stopped before confirming it. Run it once you started the pipeline in the EnOS console, "
            "or chose to keep it paused: applies then leave it to you.",
        ),
    ] = None,
) -> None:
    """Record in-doubt requests as done, after a person checked the state is cleared.

    With --verify the cells are read back first: a request whose cells hold no state is
    recorded as done; one whose cells still hold state is not (its delete did not take
    effect, or the pipeline rebuilt the state since): re-send it with
    `reconcile apply --resend-in-doubt` instead.

    \b
    Example:  reconcile ledger resolve --verify --manifest wind-avg-power-fix-2026-11 --auto-approve
    """
    from reconciler import operations
    from reconciler.actor import current_actor
    from reconciler.settings import config
    from reconciler.store import open_store

    c = consoles()
    store = open_store(config(), ledger)
    if start is not None:
        _resolve_start(c, store, start, auto_approve)
        return

    def confirm(doubt: list[Action]) -> None:
        if verify:
            _read_back(c, doubt, gateway)
        for a in doubt:
            c.out.print(
                f"  {a.manifest} / {a.pipeline_id} / {a.stage}: {plural(a.cells, 'cell')} "
                f"({plural(len(a.asset_ids), 'asset')} x {plural(len(a.point_ids), 'point')})",
                markup=False,
            )
        from reconciler.commands import approve

        approve(auto_approve, ask, "Record these requests as done?")

    done = operations.resolve(
        paths_or_default(paths), store, manifest=manifest, actor=current_actor(), confirm=confirm
    )
    if not done:
        c.out.print("No in-doubt requests to resolve.")
        return
    c.out.print(f"Recorded {plural(len(done), 'in-doubt request')} as done.")


def _resolve_start(c: Consoles, store: LedgerStore, start: str, auto_approve: bool) -> None:
    from reconciler import operations
    from reconciler.actor import current_actor
    from reconciler.commands import approve

    def confirm(ref: PipelineRef, at: str) -> None:
        c.out.print(
            f"  {ref.org_id}/{ref.pipeline_id}: start announced at {at}, never confirmed. From now on "
            "reconcile leaves this pipeline as it is (started by you, or paused on purpose).",
            markup=False,
        )
        approve(auto_approve, ask, "Record this start as settled?")

    ref = operations.resolve_start(store, start, actor=current_actor(), confirm=confirm)
    c.out.print(f"Recorded the start of {ref.org_id}/{ref.pipeline_id} as settled.", markup=False)


def _read_back(c: Consoles, doubt: list[Action], gateway: str | None) -> None:
    """The evidence for settling: how many in-doubt cells hold state now; refuse if any do."""
    from reconciler.apply.live import read_state
    from reconciler.settings import config, gateways_for

    with gateways_for(gateway, config(), read_only=True)() as gw:
        state = read_state(gw, doubt)
    if state.failed:
        a, why = state.failed[0]
        raise ReconcilerError(
            f"could not read {a.manifest} / {a.pipeline_id} / {a.stage} back: {why}; nothing was recorded"
        )
    held = [(a, n) for a, n in state.holding.items() if n]
    for a, n in state.holding.items():
        verdict = f"{plural(n, 'cell')} still {'holds' if n == 1 else 'hold'} state" if n else "no state left"
        c.out.print(f"  read back {a.manifest} / {a.pipeline_id} / {a.stage}: {verdict}", markup=False)
    if held:
        raise ReconcilerError(
            f"{plural(sum(n for _, n in held), 'in-doubt cell')} still {'holds' if sum(n for _, n in held) == 1 else 'hold'} "
            "state, so their deletes did not take effect (or the state was rebuilt since); nothing was "
            "recorded. Re-send them with `reconcile apply --resend-in-doubt`"
        )
    c.out.print("Every in-doubt cell reads back empty: nothing is left to clear there.", markup=False)


@ledger_app.command("report")
def ledger_report(
    ledger: LedgerOpt = None,
    out: Annotated[
        str,
        typer.Option("--out", metavar="FILE", help="Where to write the HTML file ('-' for standard output)."),
    ] = "ledger-report.html",
    title: Annotated[str, typer.Option(metavar="TEXT", help="The page's title.")] = "Stage state cleared",
) -> None:
    """An audit report: one self-contained HTML file (no network needed to open it).

    A chart of cells cleared per day per pipeline; per manifest when, by whom, from which
    commit and CI run, how many cells and how long each pipeline was paused; requests in
    doubt or failed; pipelines left paused. Filter by pipeline, manifest or asset in the
    page (the filter is kept in the URL, e.g. ledger-report.html#asset=0033Tiui). With the
    ledger in git, the ledger as its branch holds it.

    \b
    Example:  reconcile ledger report --out ledger-report.html
    """
    from reconciler.render.report import report_html

    c = consoles()
    led = _published(ledger)
    if not led.exists:
        raise ReconcilerError(f"{led.path} does not exist: nothing to report (a typo in --ledger?)")
    for w in led.warnings:
        c.warn(w)
    html = report_html(led, title)
    if out == "-":
        c.write(html)
        return
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ReconcilerError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
    c.out.print(
        f"Wrote {target} ({len(html.encode()):,} bytes): {plural(len(led.records), 'record')} "
        f"up to seq {led.head_seq}",
        markup=False,
    )


def _published(ledger: str | None) -> Ledger:
    """The ledger to show or report, read as `plan` reads it (`LedgerStore.read`): with the
    ledger in git, as its branch holds it (a checkout may be behind, and one of another
    branch never has a dedicated ledger branch's records); else the local file."""
    from reconciler.settings import config
    from reconciler.store import open_store

    return open_store(config(), ledger).read()


@ledger_app.command("migrate")
def ledger_migrate(ledger: LedgerOpt = None, lock_timeout: LockTimeout = None) -> None:
    """Rewrite a v1 or v2 ledger in format v3, keeping the original as `<name>.v<N>.bak`.

    Format v3 stores long ID lists once, by content, in `<name>.d/ids/`, and seals the
    file once it holds 1 MB, at the start of a run, going on in `<name>.d/segments/`: no
    file grows for years, and git keeps each list once. A run's records stay in one
    segment, so a small ledger may stay one file. Every record keeps its seq, kind, time, fields and cells
    (checked before the ledger is replaced); the head hash changes, so saved plans made
    before are stale. With the ledger in git (reconcile.yaml), the remote's ledger is
    migrated and published (the main file and `<name>.d/`), and reconcile's anchor moves
    with it, so the next apply accepts it.

    \b
    Example:  reconcile ledger migrate --ledger applied-ledger.jsonl
    """
    from reconciler.settings import config, flag_advice
    from reconciler.store import open_store

    c = consoles()
    store = open_store(config(), ledger)
    with flag_advice(LedgerLocked, after=" Or pass --lock-timeout SECONDS to wait for it."):
        result = store.rewrite(lambda line: c.err.print(line, markup=False), lock_timeout=lock_timeout)
    for w in result.warnings:
        c.warn(w)
    if result.backup is None:
        c.out.print(f"{result.path}: already in format v3; nothing to do", markup=False)
        return
    if store.in_git:
        c.out.print(f"Published to {store.where}; the anchor moved with it.", markup=False)
    c.out.print(
        f"{result.path}: {result.records:,} records in format v3 ({plural(result.files_after, 'file')}), "
        f"{result.referenced:,} deletes now refer to their intent; {result.bytes_before:,} -> "
        f"{result.bytes_after:,} bytes. The original is kept as {result.backup}"
        + (" (not committed: delete it once you no longer need it)." if store.in_git else "."),
        markup=False,
    )


@ledger_app.command("restore")
def ledger_restore(ledger: LedgerOpt = None, auto_approve: Yes = False) -> None:
    """Put the ledger back as reconcile last published it, after it was cut, rewritten or
    forged on its branch, the branch was force-pushed or deleted, a lease was planted, or
    the anchor was moved.

    reconcile keeps its own anchor of every ledger it publishes (refs/reconcile/anchor on
    the remote), which merged pull requests cannot move. This commits that ledger and its
    lease on the ledger's branch (creating it if it is gone); nothing is sent to EnOS. It
    never cuts: when the anchor holds less than a ledger reconcile published on the branch
    (it was moved back, or to a forged commit), that version is restored and anchored again.

    \b
    Example:  reconcile ledger restore
    """
    from reconciler.commands import approve
    from reconciler.settings import config
    from reconciler.store import NOTHING_TO_RESTORE, open_store

    c = consoles()
    store = open_store(config(), ledger)
    if not store.in_git:
        raise ReconcilerError(NOTHING_TO_RESTORE)
    approve(auto_approve, ask, f"Commit the anchored ledger on {store.where}?")
    done = store.restore(lambda line: c.err.print(line, markup=False))
    c.out.print(
        f"restored {plural(done.records, 'record')} on {store.where} ({(done.head or '')[:12]}): {done.note}",
        markup=False,
    )
