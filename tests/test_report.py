"""`reconcile ledger report`: one self-contained HTML file, checked in a real headless Chromium
(Debian's package): no console errors, no request leaves the file, the chart holds the right totals,
and the filters narrow it. Skips without chromium, except under CI=true, where it fails."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import gateway_env, manifest_yaml, pipeline, run_cli, world_for, write
from helpers.browser import chromium, open_page
from helpers.node import in_ci
from helpers.report_ledger import EXPECTED, history_ledger

from reconciler import ledger as L
from reconciler.render.audit import audit_data
from reconciler.render.report import CHART_JS_VERSION, chart_js, report_html

GOLDEN = Path(__file__).parent / "golden"

PROBES = {
    "ready": "document.body.dataset.ready",
    "total": "Number(document.getElementById('chart-box').dataset.total)",
    "pipelines": "Number(document.getElementById('chart-box').dataset.pipelines)",
    "chartSum": "Chart.getChart('chart').data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])",
    "errorsShown": "document.getElementById('errors').hidden === false",
    "manifests": "[...document.querySelectorAll('#manifests tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))",
    "doubt": "[...document.querySelectorAll('#doubt tbody tr')].map(tr => tr.cells[4].textContent)",
    "failed": "[...document.querySelectorAll('#failed tbody tr')].map(tr => [tr.cells[6].textContent, tr.cells[6].children.length])",
    "paused": "[...document.querySelectorAll('#paused tbody tr')].map(tr => tr.cells[0].textContent)",
    "cards": "[...document.querySelectorAll('.card b')].map(b => b.textContent)",
}


def need_chromium() -> None:
    if chromium() is None:
        if in_ci():
            pytest.fail(
                "chromium is not installed, and CI=true: `apt-get install -y chromium` (.ci/run does)"
            )
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium): the report is not checked in a browser"
        )


def cleared(path: Path, pipe: str | None = None) -> int:
    """Cells cleared, counted straight from the ledger (not through the report's code)."""
    return sum(
        len(r.asset_ids) * len(r.point_ids)
        for r in L.read(path).records
        if r.kind == "delete" and (pipe is None or r.pipeline_id == pipe)
    )


@pytest.fixture
def report(tmp_path: Path) -> Path:
    ledger = history_ledger(tmp_path / "applied-ledger.jsonl")
    res = run_cli(["ledger", "report", "--ledger", str(ledger), "--out", "out/report.html"], tmp_path)
    assert res.code == 0 and "Wrote out/report.html" in res.out, res.all
    return tmp_path / "out/report.html"


def test_report_renders_with_the_right_totals(report: Path) -> None:
    need_chromium()
    ledger = report.parent.parent / "applied-ledger.jsonl"
    page = open_page(report.as_uri(), PROBES)
    assert page.errors == []
    assert page.requests == [report.as_uri()]  # nothing fetched: no network, no CDN
    v = page.values
    assert v["ready"] == "1" and not v["errorsShown"]
    assert v["total"] == cleared(ledger) == EXPECTED["total"]
    assert dict(v["chartSum"]) == {"p1": cleared(ledger, "p1"), "p2": cleared(ledger, "p2")}
    rows = {r[0]: r for r in v["manifests"]}
    assert set(rows) == {"wind-fix", "solar-reset", "wind-fix-2"}
    assert rows["wind-fix"][5] == "4" and rows["wind-fix"][6] == "p1: 3 min 30 s"  # pause to resume
    assert rows["solar-reset"][6] == "p2: paused by someone else"
    assert rows["wind-fix-2"][6] == "p1: still paused"
    assert rows["wind-fix"][2] == "ci" and rows["wind-fix"][3] == "0123456789"
    assert rows["wind-fix"][7] == "3 items" and rows["solar-reset"][7] == "—"  # the snapshot digests
    assert v["doubt"] == [str(EXPECTED["in_doubt"])]
    assert v["failed"] == [["Not supported Stage Type <b>", 0]]  # text, never markup
    assert v["paused"] == EXPECTED["left_paused"]
    assert v["cards"][:2] == [str(EXPECTED["total"]), "3"]


@pytest.mark.parametrize(
    ("fragment", "total", "manifests"),
    [
        ("pipeline=p2", 4, ["solar-reset"]),
        ("manifest=wind-fix", 4, ["wind-fix"]),
        ("asset=0033Tiui", 4, ["wind-fix"]),
        ("asset=a5", 2, ["wind-fix-2"]),
        ("asset=nobody", 0, ["nothing cleared (with these filters)"]),
    ],
)
def test_filters_narrow_the_chart_and_tables(
    report: Path, fragment: str, total: int, manifests: list[str]
) -> None:
    need_chromium()
    page = open_page(f"{report.as_uri()}#{fragment}", PROBES)
    assert page.errors == []
    assert page.values["total"] == total
    assert [r[0] for r in page.values["manifests"]] == manifests


def test_report_after_a_real_apply(repo: Path, make_emulator: Any) -> None:
    need_chromium()
    em = make_emulator(world_for([pipeline("p1", status="RUNNING")]))
    write(repo / "manifests/a.yaml", manifest_yaml("a", assets=["a1", "a2", "a3"], points=["x", "y"]))
    assert run_cli(["apply", "--auto-approve", "--pause-pipelines"], repo, gateway_env(em)).code == 0
    assert run_cli(["ledger", "report"], repo).code == 0
    page = open_page((repo / "ledger-report.html").as_uri(), PROBES)
    assert page.errors == [] and page.values["total"] == 6 == cleared(repo / "applied-ledger.jsonl")
    (row,) = page.values["manifests"]
    assert re.fullmatch(r"p1: \d+ s", row[6])  # paused by this apply, started again


def test_self_contained_html(tmp_path: Path) -> None:
    html = report_html(L.read(history_ledger(tmp_path / "l.jsonl")))
    assert "<script src" not in html and "<link" not in html and "url(" not in html.split("<script>")[0]
    assert html.count("<script") == 3 and chart_js() in html
    assert f"Chart.js v{CHART_JS_VERSION}" in chart_js()  # the vendored file is the version we say
    assert "</script" not in chart_js() and "Not supported Stage Type \\u003cb>" in html


def test_audit_data_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history_ledger(tmp_path / "applied-ledger.jsonl")
    monkeypatch.chdir(tmp_path)
    got = json.dumps(audit_data(L.read("applied-ledger.jsonl")), indent=1, sort_keys=True) + "\n"
    golden = GOLDEN / "report-audit-data.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()


def test_report_cli_errors_and_stdout(tmp_path: Path) -> None:
    missing = run_cli(["ledger", "report", "--ledger", "nope.jsonl"], tmp_path)
    assert missing.code == 1 and "nope.jsonl does not exist" in missing.err
    history_ledger(tmp_path / "applied-ledger.jsonl")
    out = run_cli(["ledger", "report", "--out", "-"], tmp_path)
    assert out.code == 0 and out.out.startswith("<!doctype html>") and out.out.rstrip().endswith("</html>")


def test_the_controls_filter_and_keep_the_filter_in_the_url(report: Path) -> None:
    need_chromium()
    choose = (
        "(() => { const s = document.getElementById('f-pipeline'); s.value = 'p1';"
        " s.dispatchEvent(new Event('change')); return Number(document.getElementById('chart-box').dataset.total); })()"
    )
    clear = "(() => { document.getElementById('f-clear').click(); return Number(document.getElementById('chart-box').dataset.total); })()"
    page = open_page(report.as_uri(), {"chosen": choose, "hash": "location.hash", "cleared": clear})
    assert page.errors == []
    assert page.values == {"chosen": EXPECTED["p1"], "hash": "#pipeline=p1", "cleared": EXPECTED["total"]}
