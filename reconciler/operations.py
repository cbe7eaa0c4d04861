"""Named operations the commands call: plan, apply, resolve (Terraform's backend operations).

Each takes typed settings and its collaborators and returns a value; none prints.
`apply` locks the ledger, syncs it with git when the repository keeps it there,
verifies it, plans (or checks a saved plan), guards, confirms, runs `apply.apply`,
and publishes its records (DESIGN "Apply" and "The ledger in git (CI)").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import ledger as ledger_mod
from reconciler import manifests, tls
from reconciler.errors import ApplyRefused, Hint, Hinted, LedgerError, LedgerMoved, PlanError, ReconcilerError
from reconciler.plan import Action, Options, Plan, build_plan, diff, skim, starts_in_doubt
from reconciler.plan import file as planfile
from reconciler.plan.guards import (
    check_max_cells,
    refuse_over,
    refuse_unacknowledged_reclears,
    start_in_doubt,
)
from reconciler.plan.values import PipelineRef, pending_by_manifest
from reconciler.store import DEFAULT_LEDGER, LedgerStore, lease_stop
from reconciler.words import plural

if TYPE_CHECKING:  # the apply engine and git are loaded by apply, not by plan
    from reconciler.apply import ApplyOptions, ApplyResult, Gateways, Reporter
    from reconciler.apply.live import LiveState
    from reconciler.gitsync import Session
    from reconciler.windows import Windows
_CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class Planned:
    """A plan and what it was made from: the loaded manifests (a saved plan's own, re-read)."""

    plan: Plan
    loaded: manifests.LoadResult
    ledger: ledger_mod.Ledger
    saved: planfile.SavedPlan | None = None

    @property
    def manifest_files(self) -> dict[str, str]:
        return {m.name: m.path for m in self.loaded.manifests}

    @property
    def warnings(self) -> list[str]:
        out = list(self.ledger.warnings)
        if not self.ledger.exists:
            out.append(
                Hinted(
                    f"{self.ledger.path} does not exist: planning against an empty ledger",
                    Hint.LEDGER_NONE_YET,
                )
            )
        out.extend(str(d) for d in self.loaded.warnings)
        out.extend(self.start_warnings)
        return out

    @property
    def start_warnings(self) -> list[str]:
        """A `start` record with no outcome (a runner died during the call): said in every
        format (the PR comment's warnings too), with the one command that settles it."""
        return [start_in_doubt(ref, at) for ref, at in self.starts_in_doubt]

    @property
    def starts_in_doubt(self) -> list[tuple[PipelineRef, str]]:
        """Each `start` record with no outcome: its pipeline, and when it was announced."""
        return starts_in_doubt(self.ledger.pipeline_records())


def _load(paths: Sequence[str], options: Options) -> manifests.LoadResult:
    loaded = manifests.load_or_raise(paths)
    unknown = sorted(set(options.targets) - {m.name for m in loaded.manifests})
    if unknown:
        raise PlanError(f"no manifest is named {_did_you_mean(unknown, loaded)}", hint=Hint.TARGETS)
    return loaded


def _did_you_mean(unknown: Sequence[str], loaded: manifests.LoadResult) -> str:
    import difflib

    names = [m.name for m in loaded.manifests]
    out = []
    for name in unknown:
        close = difflib.get_close_matches(name, names, n=1)
        out.append(name + (f" (did you mean {close[0]}?)" if close else ""))
    return ", ".join(out)


def plan_from(
    paths: Sequence[str],
    ledger: ledger_mod.Ledger,
    options: Options,
    *,
    max_cells: int | None = None,
    max_cells_source: str = "the maxCells limit",
    loaded: manifests.LoadResult | None = None,
) -> tuple[Plan, manifests.LoadResult]:
    """Load manifests (raising on any error; `loaded`: already loaded) and plan against a
    verified ledger. With `max_cells`, a plan larger than that is refused from the counts
    alone, before a request is built: 10^11 declared cells must be refused, not built."""
    loaded = loaded or _load(paths, options)
    d = diff(loaded.manifests, ledger)
    if max_cells is not None:
        refuse_over(pending_by_manifest(d.keys, options.targets), max_cells, max_cells_source)
    return build_plan(d, options, manifest_paths=paths), loaded


def plan(
    paths: Sequence[str], store: LedgerStore | str, options: Options, *, pr_base: str | None = None
) -> Planned:
    """`reconcile plan`: manifests and the ledger in, a plan out; no EnOS call. The ledger is
    the store's (`LedgerStore.read`: with the ledger in git, as its branch holds it; a path:
    that file); `pr_base`: a pull request's base, whose checks the read runs."""
    if isinstance(store, str):
        store = LedgerStore(store)
    with ledger_mod.no_gc():  # many small objects, no cycles: see `no_gc`
        loaded = _load(paths, options)
        led = store.read(skim=skim(loaded.manifests), pr_base=pr_base)
    p, loaded = plan_from(paths, led, options, loaded=loaded)
    if not only_files(paths):  # with some files read, "no manifest declares it now" cannot be told
        refuse_unacknowledged_reclears(p)
    return Planned(p, loaded, led)


def only_files(paths: Sequence[str]) -> bool:
    """Some manifest files were given, not whole folders: other manifests were not read."""
    return any(Path(x).is_file() for x in paths)


def _load_and_read(
    paths: Sequence[str], options: Options, ledger_path: str
) -> tuple[manifests.LoadResult, ledger_mod.Ledger]:
    """The manifests, then the verified ledger with what they need of it: sealed segments
    none of them names are taken from their seals' summaries (`plan.skim`), so a plan's
    cost does not grow with years of unrelated history."""
    with ledger_mod.no_gc():  # many small objects, no cycles: see `no_gc`
        loaded = _load(paths, options)
        return loaded, ledger_mod.read(ledger_path, skim=skim(loaded.manifests))


def replan_saved(
    saved: planfile.SavedPlan, ledger: ledger_mod.Ledger, loaded: manifests.LoadResult | None = None
) -> tuple[Plan, manifests.LoadResult]:
    """Re-derive a saved plan from its manifests and the ledger; refuse unless identical."""
    loaded = loaded or _load(saved.manifests, saved.options)
    d = diff(loaded.manifests, ledger)
    planfile.check_head(saved, d.ledger)
    # The plan hash covers the ledger path as saved (`--ledger` may spell it differently).
    d = replace(d, ledger=replace(d.ledger, path=saved.ledger.path))
    fresh = build_plan(d, saved.options, manifest_paths=saved.manifests)
    planfile.check_same(saved, fresh)
    return fresh, loaded


# --- apply -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplySettings:
    """Everything `reconcile apply` was asked to do, flags merged over reconcile.yaml."""

    paths: tuple[str, ...]
    ledger: str | None  # --ledger
    apply_options: ApplyOptions
    default_ledger: str = DEFAULT_LEDGER  # reconcile.yaml's, for a target that is not a saved plan
    plan_options: Options = field(default_factory=Options)
    max_cells: int | None = None
    lock_timeout: float | None = None  # None: refuse a held local lock at once, wait out a
    # remote lease for as long as a runner that died would hold it
    reviewed_paths: tuple[str, ...] = ()  # with the ledger in git: must be as a pushed commit has them
    allow_unreviewed: bool = False  # break glass: apply them anyway (the records say so)
    saved: planfile.SavedPlan | None = None  # the target, when it is a saved plan (read once)
    max_cells_source: str = "the maxCells limit"  # where `max_cells` was set, for its refusal
    windows: Windows | None = None  # apply.windows: when apply may pause production
    window_override: str | None = None  # --ignore-window --reason TEXT (break glass; records say so)
    now: Callable[[], float] = time.time  # the wall clock windows are judged by (tests inject it)


def target_ledger(settings: ApplySettings) -> tuple[str, planfile.SavedPlan | None]:
    """The ledger to lock and the saved plan, if the target is one: `--ledger` when given,
    else the saved plan's own, else reconcile.yaml's or the default (DESIGN "Plan")."""
    saved = settings.saved
    ledger = settings.ledger or (saved.ledger.path if saved else settings.default_ledger)
    return ledger, saved


def apply(
    settings: ApplySettings,
    *,
    gateways: Callable[[], Gateways],
    reporter: Reporter,
    show: Callable[[Planned], None],
    confirm: Callable[[Plan], None],
    store: LedgerStore | None = None,
) -> tuple[Planned, ApplyResult | None]:
    """Lock, sync, verify, plan, guard, confirm, send, publish. None: nothing to apply.
    `store`: the ledger (`store.open_store`); by default the target's file, off git."""
    from reconciler.apply import scope

    ledger_path, saved = target_ledger(settings)
    store = store or LedgerStore(ledger_path)
    lock_timeout = settings.lock_timeout
    with (
        _OneSession(gateways) as gateways,
        store.open_write(reporter.note, _no_ledger, lock_timeout=lock_timeout, wait=lock_timeout) as writer,
    ):
        first: Planned | None = None
        checked = writer.session()
        if checked is not None:
            checked.check_reviewed(settings.reviewed_paths or settings.paths, allow=settings.allow_unreviewed)
        for _attempt in range(_CAS_ATTEMPTS):
            session = writer.session()
            if session is not None:
                session.before_plan()
            planned = _planned(settings, writer.path, saved)
            if first is None:
                first = planned
                if planned.plan.has_changes:  # a gateway session follows: its CA bundle loads
                    tls.warm()  # on another core while the plan is shown and httpx imported
                show(planned)
            else:
                planned = replace(planned, plan=scope.without_concurrent(planned.plan, first.plan, reporter))
            if not planned.plan.has_changes:
                if session is not None:
                    session.finish("reconcile: nothing to apply")
                scope.refuse_paused_starts(planned.starts_in_doubt, gateways)
                return planned, None
            deferred = scope.deferral(settings.windows, settings.now, settings.window_override, reporter)
            to_run = planned
            if deferred is not None:
                # Outside the window: pause and send nothing, but start what an earlier run
                # left paused (a window gates pausing, never resuming).
                to_run = replace(planned, plan=scope.resumes_only(planned.plan))
                if not to_run.plan.has_changes:
                    if session is not None:
                        session.finish("reconcile: deferred, nothing sent")
                    return planned, scope.deferred_result(deferred, planned.plan)
            # The gateways and credentials are checked only now: a run with nothing to apply
            # needs none, and one with work learns of a missing one before it is asked.
            gw = gateways()
            if planned is first and deferred is None:
                check_max_cells(planned.plan, settings.max_cells, settings.max_cells_source)
                confirm(planned.plan)
            paused = scope.paused_starts(planned.starts_in_doubt, gw)
            try:
                result = _run(to_run, settings, gw, reporter, session)
            except LedgerMoved as exc:
                _lost_the_race(exc, saved, session, reporter)
                continue
            result.outside_window = deferred
            _publish_result(session, result, reporter)
            result.resume_failed.extend((ref, why) for ref, why in paused if ref not in result.resumed)
            return planned, result
    raise ReconcilerError(
        f"another apply kept changing the ledger; gave up after {_CAS_ATTEMPTS} attempts, nothing was sent"
    )


class _OneSession:
    """apply's gateways, built on first use and kept for every attempt of the run (a lost
    compare-and-swap re-plans on the same session): one gateway session, one token from
    each gateway, per command; closed when the run ends."""

    def __init__(self, build: Callable[[], Gateways]) -> None:
        self._build = build
        self._gateways: Gateways | None = None

    def __call__(self) -> Gateways:
        if self._gateways is None:
            self._gateways = self._build()
        return self._gateways

    def __enter__(self) -> _OneSession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._gateways is not None:
            self._gateways.close()


def _lost_the_race(
    exc: LedgerMoved, saved: planfile.SavedPlan | None, session: Session | None, reporter: Reporter
) -> None:
    """The write-ahead push was refused because another apply pushed first: nothing was sent."""
    if session is not None:
        session.lost_the_race()
    if saved is not None:
        raise PlanError(
            f"the ledger moved while applying the saved plan ({exc}); nothing was sent. Plan again"
        ) from exc
    reporter.note(f"{exc} Re-planning on it now.")


def _publish_result(session: Session | None, result: ApplyResult, reporter: Reporter) -> None:
    """Every record on the remote before exiting 0 (invariant 11); a run that did not
    finish still pushes what it recorded, and a failure to do so is reported."""
    if session is None:
        return
    if result.ok:
        session.finish(
            f"reconcile: applied {plural(len(result.deleted), 'request')}, "
            f"{plural(result.cells_deleted, 'cell')}"
        )
        return
    session.abort(None)


def _no_ledger(ledger_path: str) -> ApplyRefused:
    return ApplyRefused(
        f"{ledger_path} does not exist: nothing was sent. A typo in its path or the wrong "
        "directory must never re-clear everything; if nothing was ever applied, create an "
        "empty ledger (`reconcile init` does)",
        hint=Hint.LEDGER_MISSING,
    )


def _planned(settings: ApplySettings, ledger_path: str, saved: planfile.SavedPlan | None) -> Planned:
    if not Path(ledger_path).exists():  # with the ledger in git: after the sync
        raise _no_ledger(ledger_path)
    if saved is not None:
        loaded, led = _load_and_read(saved.manifests, saved.options, ledger_path)
        fresh, loaded = replan_saved(saved, led, loaded)
        refuse_unacknowledged_reclears(fresh, partial=only_files(saved.manifests))
        return Planned(fresh, loaded, led, saved)
    loaded, led = _load_and_read(settings.paths, settings.plan_options, ledger_path)
    p, loaded = plan_from(
        settings.paths,
        led,
        settings.plan_options,
        max_cells=settings.max_cells,
        max_cells_source=settings.max_cells_source,
        loaded=loaded,
    )
    refuse_unacknowledged_reclears(p, partial=only_files(settings.paths))
    return Planned(p, loaded, led)


def _run(
    planned: Planned, settings: ApplySettings, gateways: Gateways, reporter: Reporter, session: Session | None
) -> ApplyResult:
    from reconciler import apply as apply_mod

    options = settings.apply_options
    if session is not None and not options.write_ahead:
        options = replace(options, write_ahead=True)
    if settings.windows is not None and settings.window_override is None and options.gate is None:
        from reconciler import windows

        # Each pause is begun only if its estimate ends inside the window (DESIGN "Windows").
        options = replace(options, gate=windows.gate(settings.windows, settings.now))
    try:
        with ledger_mod.LedgerWriter(planned.ledger) as writer:
            return apply_mod.apply(
                planned.plan,
                gateways,
                writer,
                reporter,
                options,
                publish=session.announce if session is not None else None,
                stop=lease_stop(session),
            )
    except BaseException as exc:
        if session is not None:
            session.abort(exc)
        raise


# --- ledger resolve ----------------------------------------------------------------------


def resolve(
    paths: Sequence[str],
    store: LedgerStore,
    *,
    manifest: str | None,
    actor: dict[str, object],
    confirm: Callable[[list[Action]], None],
) -> list[Action]:
    """Record in-doubt requests as done (`delete` with `resolved: true`) after a person checked;
    with the ledger in git, from the remote's latest ledger, and pushed before returning."""
    with store.open_write(_quiet, _nothing_to_resolve) as ledger:
        ledger.refuse_if_leased()
        if not Path(ledger.path).exists():  # with the ledger in git: after the sync
            raise _nothing_to_resolve(ledger.path)
        loaded = _load(paths, Options())
        led = ledger_mod.read(ledger.path)  # in full: what is in doubt is the whole ledger's question
        p, _ = plan_from(paths, led, Options(), loaded=loaded)
        planned = [a for a in p.actions if a.in_doubt]
        doubt = [
            a
            for a in (*planned, *_doubt_beyond_the_plan(p, led, loaded.manifests, planned))
            if manifest is None or a.manifest == manifest
        ]
        if not doubt:
            return []
        confirm(doubt)
        with ledger_mod.LedgerWriter(led) as writer:
            for a in doubt:
                for fields in a.ledger_fields():  # each manifest a shared request serves
                    writer.append("delete", {**fields, "resolved": True, "actor": actor})
        ledger.publish_final(f"reconcile: {plural(len(doubt), 'in-doubt request')} resolved by a person")
    return doubt


def _nothing_to_resolve(ledger_path: str) -> LedgerError:
    """`ledger resolve` settles what a ledger holds: none is never "nothing in doubt"."""
    return LedgerError(f"{ledger_path} does not exist: nothing to resolve", hint=Hint.LEDGER_MISSING)


def resolve_start(
    store: LedgerStore,
    pipeline: str,
    *,
    actor: dict[str, object],
    confirm: Callable[[PipelineRef, str], None],
) -> PipelineRef:
    """`ledger resolve --start ORG/PIPELINE`: a person settled a start in doubt (started the
    pipeline in the console, or keeps it paused on purpose): a `resume` record with
    `"resolved": true` closes it, so applies leave the pipeline to the person and exit 0
    again. With the ledger in git, from the remote's latest ledger, pushed before returning."""
    org, _, pid = pipeline.partition("/")
    if not org or not pid or "/" in pid:
        raise PlanError(f"{pipeline!r} is not ORG/PIPELINE (e.g. o1/p1)", hint=Hint.START_PIPELINE)
    ref = PipelineRef(org, pid)
    with store.open_write(_quiet, _nothing_to_resolve) as ledger:
        ledger.refuse_if_leased()
        if not Path(ledger.path).exists():  # with the ledger in git: after the sync
            raise _nothing_to_resolve(ledger.path)
        led = ledger_mod.read(ledger.path)
        doubt = dict(starts_in_doubt(led.pipeline_records()))
        if ref not in doubt:
            known = ", ".join(f"{r.org_id}/{r.pipeline_id}" for r in doubt) or "none"
            raise PlanError(f"{pipeline} has no start in doubt in {ledger.path} (starts in doubt: {known})")
        confirm(ref, doubt[ref])
        with ledger_mod.LedgerWriter(led) as writer:
            note = ledger_mod.SETTLED_START_NOTE  # stored text: as every ledger so far has it
            writer.append(
                "resume",
                {"orgId": org, "pipelineId": pid, "resolved": True, "note": note, "actor": actor},
            )
        ledger.publish_final(f"reconcile: the start of {pid} settled by a person")
    return ref


def refuse_unread(state: LiveState) -> None:
    """`ledger resolve --verify`: a request whose cells could not be read back is not
    recorded as done; nothing is (the evidence is what settles it)."""
    if state.failed:
        a, why = state.failed[0]
        raise ReconcilerError(
            f"could not read {a.manifest} / {a.pipeline_id} / {a.stage} back: {why}; nothing was recorded"
        )


def refuse_held(state: LiveState) -> None:
    """`ledger resolve --verify`: cells that still hold state were not cleared (the delete
    did not take effect, or the pipeline rebuilt the state since): nothing is recorded as
    done, and they are to be sent again, not settled."""
    held = sum(n for n in state.holding.values() if n)
    if held:
        raise ReconcilerError(
            f"{plural(held, 'in-doubt cell')} still {'holds' if held == 1 else 'hold'} state, so their "
            "deletes did not take effect (or the state was rebuilt since); nothing was recorded.",
            hint=Hint.RESEND_IN_DOUBT,
        )


def _quiet(_line: str) -> None:
    """`ledger resolve` says nothing of the sync it runs first."""


def _doubt_beyond_the_plan(
    p: Plan, led: ledger_mod.Ledger, declared: Sequence[manifests.Manifest], planned: Sequence[Action]
) -> list[Action]:
    """Cells in doubt (`ledger.history.open_intents`, as `ledger show` and the report list
    them) that the plan does not act on: sent under a manifest no longer declared, or no
    longer declaring them. A person settles them like the plan's, by their own name."""
    from reconciler.ledger import history
    from reconciler.plan import KeyDiff, PendingGroup, StageKey

    aliases = {**history.recorded_aliases(led.records), **{m.name: m.renamed_from for m in declared}}
    carried = history.carriers(aliases)
    covered: set[tuple[tuple[str, str, str, str], str, str]] = set()
    for a in planned:
        for name, points in a.shares or ((a.manifest, a.point_ids),):
            key = (name, a.org_id, a.pipeline_id, a.stage)
            covered.update((key, asset, point) for asset in a.asset_ids for point in points)
    left: dict[StageKey, dict[str, dict[str, None]]] = {}  # key -> asset -> points, in ledger order
    for r, cells in history.open_intents(led.records, aliases=aliases):
        merged = history.merged_key(r, carried)
        for asset in r.asset_ids:
            for point in r.point_ids:
                if (asset, point) in cells and (merged, asset, point) not in covered:
                    left.setdefault(StageKey(*r.key), {}).setdefault(asset, {})[point] = None
    keys = []
    for key, assets in left.items():
        groups: dict[tuple[str, ...], list[str]] = {}
        for asset, sent in assets.items():
            groups.setdefault(tuple(sent), []).append(asset)
        doubt = tuple(PendingGroup(points, tuple(a)) for points, a in groups.items())
        keys.append(KeyDiff(key, 0, (), doubt, False))
    if not keys:
        return []
    d = replace(p.diff, keys=tuple(keys), undeclared=(), pending_resumes=(), renames=(), marks=())
    return list(build_plan(d).actions)
