"""`ledger show` answers an operator's questions: validated filters, last cleared and why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write
from hypothesis import given
from hypothesis import strategies as st

from reconciler import ledger as L
from reconciler.errors import ReconcilerError
from reconciler.render.ledger import ledger_lines
from reconciler.render.text import fit


@pytest.fixture
def applied(repo: Path, make_emulator: Any) -> Path:
    """Two manifests applied one after the other: asset 0033Tiui cleared twice."""
    em = make_emulator(world_for([pipeline("p1"), pipeline("p2")]))
    write(
        repo / "manifests/a.yaml",
        manifest_yaml("inverter-fix-a", assets=["0033Tiui", "0034Tiui"], points=["INV.GenActivePW"]) + "  \n",
    )
    first = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert first.code == 0, first.all
    text = manifest_yaml(
        "inverter-fix-b", pipeline="p2", stages=["s2"], assets=["0033Tiui"], points=["INV.Temp"]
    )
    write(
        repo / "manifests/b.yaml",
        text.replace("metadata:\n", "metadata:\n  description: Re-commissioned inverter (OPS-77)\n"),
    )
    second = run_cli(["apply", "--auto-approve"], repo, gateway_env(em))
    assert second.code == 0, second.all
    return repo


def show(repo: Path, *args: str) -> Any:
    return run_cli(["ledger", "show", *args], repo)


def test_filters_narrow_to_the_cells_asked(applied: Path) -> None:
    led = L.read(applied / "applied-ledger.jsonl")
    by_asset = show(applied, "--asset", "0034Tiui", "--format", "json")
    assert by_asset.code == 0
    import json

    records = json.loads(by_asset.out)
    assert records and all("0034Tiui" in r["assetIds"] for r in records)
    assert len(records) == sum(1 for r in led.records if "0034Tiui" in r.asset_ids)
    by_stage = json.loads(show(applied, "--stage", "s2", "--format", "json").out)
    assert {r["stageInstanceName"] for r in by_stage} == {"s2"} and by_stage
    by_point = json.loads(show(applied, "--point", "INV.Temp", "--format", "json").out)
    assert {r["manifest"] for r in by_point} == {"inverter-fix-b"}


def test_limit_and_tail_keep_the_first_or_last(applied: Path) -> None:
    import json

    every = json.loads(show(applied, "--format", "json").out)
    assert [r["seq"] for r in json.loads(show(applied, "--limit", "2", "--format", "json").out)] == [
        r["seq"] for r in every[:2]
    ]
    assert [r["seq"] for r in json.loads(show(applied, "--tail", "2", "--format", "json").out)] == [
        r["seq"] for r in every[-2:]
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--manifest", "inverter-fix-c"],
            "--manifest 'inverter-fix-c': no record of .* did you mean 'inverter-fix-[ab]' or 'inverter-fix-[ab]'",
        ),
        (["--asset", "0033Tiiu"], "--asset '0033Tiiu': no record .*did you mean '0033Tiui'"),
        (["--stage", "nope"], "--stage 'nope': no record"),
        (["--point", "INV.GenActivPW"], "did you mean 'INV.GenActivePW'"),
        (["--pipeline", "p3"], "--pipeline 'p3'"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--limit", "1", "--tail", "1"], r"limit and tail exclude each other.*\(--limit N, --tail N\)"),
    ],
)
def test_bad_filters_are_errors_not_empty_answers(applied: Path, args: list[str], message: str) -> None:
    res = show(applied, *args)
    assert res.code == 1 and "Traceback" not in res.err
    import re

    assert re.search(message, res.err), res.err


def test_last_cleared_and_why_in_one_command(applied: Path) -> None:
    res = show(applied, "--asset", "0033Tiui", "--kind", "delete", "--tail", "1")
    assert res.code == 0, res.all
    led = L.read(applied / "applied-ledger.jsonl")
    last = [r for r in led.records if r.kind == "delete" and "0033Tiui" in r.asset_ids][-1]
    assert f"asset 0033Tiui: last cleared {last.at} (record #{last.seq}; 2 clears so far)" in res.out
    assert "manifest inverter-fix-b, pipeline p2, stage s2" in res.out
    assert "why: Re-commissioned inverter (OPS-77)" in res.out
    assert f"by {last.actor['user']}" in res.out


def test_never_cleared_cell_says_so(repo: Path) -> None:
    res = show(repo, "--asset", "x")
    assert res.code == 1 and "it has no records" in res.err


def test_select_unit_filters_compose(applied: Path) -> None:
    led = L.read(applied / "applied-ledger.jsonl")
    got = L.select(led, asset="0033Tiui", stage="s1", kinds=["delete"])
    assert [r.manifest for r in got] == ["inverter-fix-a"]
    with pytest.raises(ReconcilerError, match="must be at least 1, not 0") as raised:
        L.select(led, tail=0)
    from reconciler.settings import advice

    assert advice(raised.value) == "--tail must be at least 1, not 0"  # the CLI names the filter


def test_asset_history_golden(tmp_path: Path) -> None:
    from helpers.report_ledger import history_ledger

    history_ledger(tmp_path / "applied-ledger.jsonl")
    res = show(tmp_path, "--asset", "0033Tiui")
    assert res.code == 0, res.all
    golden = Path(__file__).parent / "golden" / "ledger-show-asset.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(res.out)
    assert res.out == golden.read_text()


def test_every_line_fits_120_columns_in_a_ci_log_and_keeps_every_fact(repo: Path, make_emulator: Any) -> None:
    """A ledger as CI writes it (a run URL, long names, a snapshot, pause and start
    records): no line of `ledger show` (nor of the plan before it) wider than 120, and the
    text, spaces aside, the same as the records on one line each (issue 25: lines reached
    214-329, the plan's request lines 147-165)."""
    pid = "7c21d09e55b34f10a9e2"
    em = make_emulator(world_for([pipeline(pid, status="RUNNING", stages=("counter_agg_inverter_3",))]))
    assets = [f"INV{i:05d}Tiui" for i in range(40)]
    write(
        repo / "manifests/a.yaml",
        manifest_yaml(
            "farm-a-counter-reset-after-scada-replay-2026-11",
            pipeline=pid,
            stages=["counter_agg_inverter_3"],
            assets=assets,
            points=["INV.GenActivePW", "INV.DayEnergy", "INV.TotalEnergy"],
        ),
    )
    ci = {
        **gateway_env(em),
        "CI": "true",
        "GITHUB_ACTOR": "solar-ops-release-bot",
        "GITHUB_REPOSITORY": "acme-renewables/stream-processing-reconcile",
        "GITHUB_RUN_ID": "12345678901",
    }
    planned = run_cli(["plan", "--refresh", "--pause-pipelines"], repo, ci)  # live statuses too
    assert planned.code == 0, planned.all
    assert not [line for line in planned.out.splitlines() if len(line) > 120], planned.out
    assert (
        "clear120cellsin1request:40assetsx3points;assetsINV00000Tiui,INV00001Tiui,INV00002Tiui,…+37more;"
        "pointsINV.GenActivePW,INV.DayEnergy,INV.TotalEnergy"
    ) in "".join(planned.out.split())
    assert f"{pid}: RUNNING (apply pauses it for its 1 request" in planned.out
    applied = run_cli(
        ["apply", "--auto-approve", "--pause-pipelines", "--snapshot", "evidence.jsonl"], repo, ci
    )
    assert applied.code == 0, applied.all
    res = show(repo)
    assert res.code == 0, res.all
    wide = [line for line in res.out.splitlines() if len(line) > 120]
    assert not wide, wide
    records = L.read(repo / "applied-ledger.jsonl").records
    assert {r.kind for r in records} >= {"pause", "intent", "delete", "start", "resume"}
    one_line_each = ledger_lines(records, width=10_000)
    assert max(len(line) for line in one_line_each.splitlines()) > 120  # there was something to wrap
    assert "".join(res.out.split()) == "".join(one_line_each.split())
    assert (
        "https://github.com/acme-renewables/stream-processing-reconcile/actions/runs/12345678901" in res.out
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", " ", "  ", " x "]), st.text("ab cdefghij-/", min_size=1, max_size=300)
        ),
        max_size=12,
    ),
    st.integers(0, 60),
    st.integers(0, 40),
)
def test_fit_never_cuts_and_never_exceeds_the_width(
    parts: list[tuple[str, str]], start: int, indent: int
) -> None:
    lines = fit(parts, start=start, indent=indent, width=80)
    assert len(lines[0]) <= 80 - start or not lines[0].strip(" ")
    assert all(len(line) <= 80 - indent for line in lines[1:])
    assert "".join("".join(lines).split()) == "".join("".join(sep + text for sep, text in parts).split())
