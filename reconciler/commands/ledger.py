"""The ledger's commands, the whole run of each: verify and show (each can check a snapshot
file), resolve (with its read-back), report, migrate, restore."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.args import ShowFormat
from reconciler.commands import DONE, Ask, CommandOutcome, approve, ask_stdin
from reconciler.errors import Hint, LedgerError, LedgerLocked, ReconcilerError
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.args import (
        LedgerMigrateArgs,
        LedgerReportArgs,
        LedgerResolveArgs,
        LedgerRestoreArgs,
        LedgerShowArgs,
        LedgerVerifyArgs,
    )
    from reconciler.ledger import Ledger
    from reconciler.plan import Action
    from reconciler.plan.values import PipelineRef
    from reconciler.render.console import Consoles
    from reconciler.store import LedgerStore


def verify(args: LedgerVerifyArgs, c: Consoles) -> CommandOutcome:
    """Check the hash chain of every record, in every file of the ledger (with the ledger in
    git, as its branch holds it, and the checkout's file beside it); 1 when a snapshot given
    to check does not match."""
    from reconciler import ledger as ledger_mod
    from reconciler.settings import config
    from reconciler.store import open_store

    store = open_store(config(), args.ledger)
    led = store.read(check_seals=True)
    if not led.exists:
        raise LedgerError(f"{led.path} does not exist: nothing to verify", hint=Hint.LEDGER_MISSING)
    for w in led.warnings:
        c.warn(w)
    seals = led.segment - 1  # each file but the last ends with a seal
    theirs = "its summary" if seals == 1 else "their summaries"
    files = (
        f" in {plural(led.segment, 'file')} ({plural(seals, 'seal')} and {theirs} checked)" if seals else ""
    )
    where = f"{store.where}: {led.path}" if store.in_git else f"{led.path}"
    c.out.print(
        f"{where}: {plural(len(led.records), 'record')}{files}, chain intact; head seq {led.head_seq} "
        f"hash {led.head_hash}",
        markup=False,
    )
    if store.in_git and Path(store.path).exists():
        local = ledger_mod.read(store.path, check_seals=True)
        for w in local.warnings:
            c.warn(w)
        if (local.head_seq, local.head_hash) != (led.head_seq, led.head_hash):
            c.warn(_checkout_against(store.where, store.path, local, led))
    return _check_snapshot(c, led, args.snapshot)


def _checkout_against(where: str, path: str, local: Ledger, published: Ledger) -> str:
    """How the checkout's ledger file (verified too) stands against the published one."""
    from reconciler.ledger import GENESIS

    hashes = {0: GENESIS, **{r.seq: r.hash for r in published.records}}
    if local.head_seq < published.head_seq and hashes.get(local.head_seq) == local.head_hash:
        return (
            f"{path} in this checkout is behind {where} (head seq {local.head_seq} of "
            f"{published.head_seq}); plan and apply go by {where}"
        )
    mine = {0: GENESIS, **{r.seq: r.hash for r in local.records}}
    if local.head_seq > published.head_seq and mine.get(published.head_seq) == published.head_hash:
        ahead = local.head_seq - published.head_seq
        return (
            f"{path} in this checkout has {plural(ahead, 'record')} {where} does not (head seq "
            f"{local.head_seq}): a run that stopped before publishing; plan and apply go by {where}"
        )
    return (
        f"{path} in this checkout differs from {where} (its head: seq {local.head_seq} hash "
        f"{local.head_hash}); plan and apply go by {where}"
    )


def show(args: LedgerShowArgs, c: Consoles) -> CommandOutcome:
    """The history, filtered; every filter checked against the ledger (a name no record
    holds is an error with the closest it does hold, never an empty answer)."""
    from reconciler import ledger as ledger_mod
    from reconciler.render import ledger as render
    from reconciler.settings import flag_advice

    if args.since is not None:
        with flag_advice(ReconcilerError, before="--since "):
            ledger_mod.parse_since(args.since)
    led = _published(args.ledger)
    if not led.exists:  # never "0 records", which would read as "never cleared"
        raise LedgerError(f"{led.path} does not exist: nothing to show", hint=Hint.LEDGER_MISSING)
    records = ledger_mod.select(
        led,
        manifest=args.manifest,
        pipeline=args.pipeline,
        since=args.since,
        kinds=args.kind,
        stage=args.stage,
        asset=args.asset,
        point=args.point,
        limit=args.limit,
        tail=args.tail,
    )
    for w in led.warnings:
        c.warn(w)
    if args.fmt is ShowFormat.JSON:
        c.write(render.records_json(r.as_json() for r in records))
    else:
        c.out.print(render.ledger_lines(records), end="", markup=False)
        if args.asset is not None or args.point is not None:
            c.out.print(_last_cleared(args, led), end="", markup=False)
    return _check_snapshot(c, led, args.snapshot)


def _last_cleared(args: LedgerShowArgs, led: Ledger) -> str:
    """When the asked cell was last cleared, from its full history (not the --tail/--limit
    window), and what of it is in doubt."""
    from reconciler import ledger as ledger_mod
    from reconciler.ledger import history as ledger_history
    from reconciler.render import ledger as render

    asset, point, manifest, stage = args.asset, args.point, args.manifest, args.stage
    history = ledger_mod.select(
        led, manifest=manifest, stage=stage, asset=asset, point=point, kinds=["intent", "delete", "failed"]
    )
    what = " / ".join(f"{n} {v}" for n, v in (("asset", asset), ("point", point)) if v is not None)
    doubt = [
        (r, cells)
        for r, cells in ledger_history.open_intents(
            led.records, aliases=ledger_history.recorded_aliases(led.records)
        )
        if (manifest is None or r.manifest == manifest) and (stage is None or r.key[3] == stage)
    ]
    return render.last_cleared_text(history, what, _descriptions(), asset=asset, point=point, in_doubt=doubt)


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


def _check_snapshot(c: Consoles, led: Ledger, path: Path | None) -> CommandOutcome:
    """With `--snapshot FILE`: the evidence checked against the ledger's digests; 1 when it
    does not match (the report says where)."""
    if path is None:
        return DONE
    from reconciler.ledger.evidence import check
    from reconciler.settings import advice

    report = check(path, led.records)
    c.out.print("".join(f"{advice(line)}\n" for line in report.lines()), end="", markup=False)
    return DONE if report.ok else CommandOutcome(1)


def resolve(args: LedgerResolveArgs, c: Consoles, ask: Ask = ask_stdin) -> CommandOutcome:
    """Record in-doubt requests as done, after a person checked (with `verify`, after their
    cells read back empty); or, with `start`, settle a start in doubt."""
    from reconciler import operations
    from reconciler.actor import current_actor
    from reconciler.settings import config, paths_or_default
    from reconciler.store import open_store

    cfg = config()
    store = open_store(cfg, args.ledger)
    if args.start is not None:
        return _resolve_start(c, store, args.start, args.auto_approve, ask)

    def confirm(doubt: list[Action]) -> None:
        if args.verify:
            _read_back(c, doubt, args.gateway)
        for a in doubt:
            c.out.print(
                f"  {a.manifest} / {a.pipeline_id} / {a.stage}: {plural(a.cells, 'cell')} "
                f"({plural(len(a.asset_ids), 'asset')} x {plural(len(a.point_ids), 'point')})",
                markup=False,
            )
        approve(args.auto_approve, ask, "Record these requests as done?")

    done = operations.resolve(
        paths_or_default(args.paths), store, manifest=args.manifest, actor=current_actor(), confirm=confirm
    )
    if not done:
        c.out.print("No in-doubt requests to resolve.")
        return DONE
    c.out.print(f"Recorded {plural(len(done), 'in-doubt request')} as done.")
    return DONE


def _resolve_start(
    c: Consoles, store: LedgerStore, start: str, auto_approve: bool, ask: Ask
) -> CommandOutcome:
    from reconciler import operations
    from reconciler.actor import current_actor

    def confirm(ref: PipelineRef, at: str) -> None:
        c.out.print(
            f"  {ref.org_id}/{ref.pipeline_id}: start announced at {at}, never confirmed. From now on "
            "reconcile leaves this pipeline as it is (started by you, or paused on purpose).",
            markup=False,
        )
        approve(auto_approve, ask, "Record this start as settled?")

    ref = operations.resolve_start(store, start, actor=current_actor(), confirm=confirm)
    c.out.print(f"Recorded the start of {ref.org_id}/{ref.pipeline_id} as settled.", markup=False)
    return DONE


def _read_back(c: Consoles, doubt: list[Action], gateway: str | None) -> None:
    """The evidence for settling, said per request: how many in-doubt cells hold state now.
    The refusal is the core's (`operations.refuse_unless_read_back_empty`)."""
    from reconciler import operations
    from reconciler.apply.live import read_state
    from reconciler.settings import config, gateways_for

    with gateways_for(gateway, config(), read_only=True)() as gw:
        state = read_state(gw, doubt)
    operations.refuse_unread(state)
    for a, n in state.holding.items():
        verdict = f"{plural(n, 'cell')} still {'holds' if n == 1 else 'hold'} state" if n else "no state left"
        c.out.print(f"  read back {a.manifest} / {a.pipeline_id} / {a.stage}: {verdict}", markup=False)
    operations.refuse_held(state)
    c.out.print("Every in-doubt cell reads back empty: nothing is left to clear there.", markup=False)


def report(args: LedgerReportArgs, c: Consoles) -> CommandOutcome:
    """An audit report: one self-contained HTML file, or standard output for `-`."""
    from reconciler.render.report import report_html

    led = _published(args.ledger)
    if not led.exists:
        raise ReconcilerError(f"{led.path} does not exist: nothing to report (a typo in --ledger?)")
    for w in led.warnings:
        c.warn(w)
    html = report_html(led, args.title)
    if args.out == "-":
        c.write(html)
        return DONE
    target = Path(args.out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ReconcilerError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from exc
    c.out.print(
        f"Wrote {target} ({len(html.encode()):,} bytes): {plural(len(led.records), 'record')} "
        f"up to seq {led.head_seq}",
        markup=False,
    )
    return DONE


def _published(ledger: str | None) -> Ledger:
    """The ledger to show or report, read as `plan` reads it (`LedgerStore.read`): with the
    ledger in git, as its branch holds it (a checkout may be behind, and one of another
    branch never has a dedicated ledger branch's records); else the local file."""
    from reconciler.settings import config
    from reconciler.store import open_store

    return open_store(config(), ledger).read()


def migrate(args: LedgerMigrateArgs, c: Consoles) -> CommandOutcome:
    """Rewrite a v1 or v2 ledger in format v3, keeping the original; with the ledger in git,
    the remote's, published with the anchor moved."""
    from reconciler.settings import config, flag_advice
    from reconciler.store import open_store

    store = open_store(config(), args.ledger)
    with flag_advice(LedgerLocked, after=" Or pass --lock-timeout SECONDS to wait for it."):
        result = store.rewrite(lambda line: c.err.print(line, markup=False), lock_timeout=args.lock_timeout)
    for w in result.warnings:
        c.warn(w)
    if result.backup is None:
        c.out.print(f"{result.path}: already in format v3; nothing to do", markup=False)
        return DONE
    if store.in_git:
        c.out.print(f"Published to {store.where}; the anchor moved with it.", markup=False)
    c.out.print(
        f"{result.path}: {result.records:,} records in format v3 ({plural(result.files_after, 'file')}), "
        f"{result.referenced:,} deletes now refer to their intent; {result.bytes_before:,} -> "
        f"{result.bytes_after:,} bytes. The original is kept as {result.backup}"
        + (" (not committed: delete it once you no longer need it)." if store.in_git else "."),
        markup=False,
    )
    return DONE


def restore(args: LedgerRestoreArgs, c: Consoles, ask: Ask = ask_stdin) -> CommandOutcome:
    """Commit the ledger reconcile last published (its anchor) on the ledger's branch."""
    from reconciler.settings import config
    from reconciler.store import NOTHING_TO_RESTORE, open_store

    store = open_store(config(), args.ledger)
    if not store.in_git:
        raise ReconcilerError(NOTHING_TO_RESTORE)
    approve(args.auto_approve, ask, f"Commit the anchored ledger on {store.where}?")
    done = store.restore(lambda line: c.err.print(line, markup=False))
    c.out.print(
        f"restored {plural(done.records, 'record')} on {store.where} ({(done.head or '')[:12]}): {done.note}",
        markup=False,
    )
    return DONE
