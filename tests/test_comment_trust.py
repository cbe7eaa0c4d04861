"""What a reviewer approves is true (issue 27 items 1, 3 and 7): the pull-request comment,
rendered as GitHub would (markdown-it-py: CommonMark, GFM tables, raw HTML on), names every
pipeline and cell count the plan has, whatever the pull request puts in free text; a refused
plan still prints a comment; the base commit is the base; each ID list is printed once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import commit_all, git, manifest_yaml, run_cli, write
from helpers.examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.apply.live import LiveState, Sample
from reconciler.ledger import Ledger
from reconciler.manifests import IdSource, LoadResult, Manifest
from reconciler.plan import Options, Plan, build_plan, diff
from reconciler.plan import file as planfile
from reconciler.plan.values import PipelineRef
from reconciler.render.live import live_markdown
from reconciler.render.markdown import plan_markdown
from reconciler.render.plan import summary_line
from reconciler.render.review import LiveStatus, Review

# The reproduction in the issue: after a blank line, a table that moves the cells to a test
# pipeline with totals that add up, then an unclosed comment that hides the real rows.
FAKE_TABLE = (
    "fix\n\n"
    "| orgId | pipeline | stage | to clear | requests | assets | points | applied | in doubt |\n"
    "|---|---|---|--:|---|---|---|--:|--:|\n"
    "| `o1` | `pTEST` | `s1` | 30 | 1 request | 3 | 10 | 0 | 0 |\n\n"
    "**Plan: 30 cells to clear in 1 request; 0 already applied, 0 in doubt, 0 in history only.**\n\n"
    "<!--"
)
HOSTILE = [FAKE_TABLE, "<!--", "`\n\n<!--", "</details><details open>", "x``` \n```\n# h", "\x1b[2J", "|"]
hostile = st.sampled_from(HOSTILE) | st.text(
    alphabet=st.sampled_from("`\n |<>!-*_#[]()&\\$~:=1x\x1b\u202e") | st.characters(), max_size=40
)
# IDs may hold anything but commas, whitespace and control characters (DESIGN).
ids = st.text(alphabet=st.sampled_from("`|<>!*_#[]-~&$\\ax1"), min_size=1, max_size=8)

ALLOWED_HTML = {"<details><summary>", "</summary>", "</details>"}


def md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def seen(token: Token) -> str:
    """What a reader sees of an inline token: its text and code, no markup."""
    parts = []
    for c in token.children or []:
        if c.type in ("text", "code_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif c.type == "html_inline":
            assert any(c.content.startswith(h) for h in ALLOWED_HTML), c.content
    return "".join(parts)


def reading(source: str) -> tuple[list[list[str]], list[str], list[str]]:
    """The table body rows, the paragraphs and the headings a reader sees."""
    rows: list[list[str]] = []
    paragraphs: list[str] = []
    headings: list[str] = []
    tokens = md().parse(source)
    row: list[str] | None = None
    body = False
    for i, t in enumerate(tokens):
        if t.type == "html_block":  # only our own <details> wrapper: no comment, no other tag
            assert all(
                line in ALLOWED_HTML or line.startswith("<details><summary>")
                for line in t.content.split("\n")
                if line
            ), t.content
        body = {"tbody_open": True, "tbody_close": False}.get(t.type, body)
        if t.type == "tr_open" and body:
            row = []
        elif t.type == "inline":
            text = seen(t)
            if row is not None:
                row.append(text)
            elif tokens[i - 1].type == "paragraph_open":
                paragraphs.append(text)
            elif tokens[i - 1].type == "heading_open":
                headings.append(text)
        elif t.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
    return rows, paragraphs, headings


def expected_rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(org, pipeline, stage, cells to clear) of every pending key, from the plan JSON."""
    data = json.loads("".join(planfile.pieces(plan, {})))
    per: dict[tuple[str, str, str, str], int] = {}
    for a in data["actions"]:  # a cell several manifests declare is counted for each
        for share in a.get("sharedBy") or [{"manifest": a["manifest"], "pointIds": a["pointIds"]}]:
            key = (share["manifest"], a["orgId"], a["pipelineId"], a["stageInstanceName"])
            cells = len(share.get("assetIds", a["assetIds"])) * len(share["pointIds"])
            per[key] = per.get(key, 0) + cells
    return sorted((o, p, s, f"{n:,}") for (_, o, p, s), n in per.items())


def hostile_plan(draw: Any) -> tuple[Plan, LoadResult, Review, LiveState]:
    manifests = []
    for i in range(draw(st.integers(1, 3))):
        manifests.append(
            Manifest(
                f"m{i}",
                draw(ids),
                draw(ids),
                tuple(draw(st.lists(ids, min_size=1, max_size=2, unique=True))),
                tuple(draw(st.lists(ids, min_size=1, max_size=3, unique=True))),
                tuple(draw(st.lists(ids, min_size=1, max_size=2, unique=True))),
                path=draw(hostile) or "m.yaml",
                line=1,
                description=draw(hostile),
                labels=((draw(hostile) or "k", draw(hostile)),),
                id_sources=(IdSource("assetIdsFile", draw(hostile) or "ids.txt", "0" * 64, 3),),
            )
        )
    plan = build_plan(diff(manifests, Ledger(Path("l.jsonl"))), Options())
    statuses = {a.pipeline: LiveStatus(draw(hostile) or "RUNNING", draw(hostile)) for a in plan.actions}
    review = Review(statuses=statuses, warnings=(draw(hostile),), refresh_error=None)
    samples = {
        m.name: [Sample(m.name, m.stages[0], m.asset_ids[0], m.point_ids[0], draw(hostile), draw(hostile))]
        for m in manifests
    }
    live = LiveState(holding={a: 1 for a in plan.actions}, samples=samples)
    loaded = LoadResult(manifests=manifests)
    return plan, loaded, review, live


@st.composite
def hostile_plans(draw: Any) -> tuple[Plan, LoadResult, Review, LiveState]:
    return hostile_plan(draw)


def comment(plan: Plan, loaded: LoadResult, review: Review, live: LiveState | None = None) -> str:
    body = plan_markdown(
        plan, manifests=loaded, review=review, base_commit="abc123 (the pull request's base)"
    )
    return body + (live_markdown(plan, live) if live is not None else "")


def check_reader_sees_the_plan(source: str, plan: Plan, names: list[str]) -> None:
    rows, paragraphs, headings = reading(source)
    want = expected_rows(plan)
    # Every table row a reader sees is one of the plan's keys with its real count, and
    # every key of the plan has its row: no row added, moved, or hidden.
    plan_rows = [r for r in rows if len(r) >= 9]
    assert len(plan_rows) == len(want), (plan_rows, want)
    for org, pipe, stage, cells in want:
        assert any(
            r[0] == org and (r[1] == pipe or r[1].startswith(pipe + " (")) and r[2] == stage and r[3] == cells
            for r in plan_rows
        ), (org, pipe, stage, cells, plan_rows)
    assert summary_line(plan) in paragraphs
    assert headings[0] == "reconcile plan" and headings.count("reconcile plan") == 1
    for h in headings[1:]:  # a section per manifest, and the live part: nothing else
        assert h == "Live state" or any(h == n or h.startswith(n + " · ") for n in names), headings


@given(hostile_plans())
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_comment_shows_every_pipeline_and_count_whatever_the_free_text(
    case: tuple[Plan, LoadResult, Review, LiveState],
) -> None:
    plan, loaded, review, live = case
    check_reader_sees_the_plan(comment(plan, loaded, review, live), plan, [m.name for m in loaded.manifests])


def test_the_issue_reproduction_cannot_move_cells_to_ptest() -> None:
    prod = Manifest(
        "wind-fix", "o1", "pPROD", ("s1",), tuple(f"a{i}" for i in range(3)), tuple(f"x{i}" for i in range(10)),
        path=f"manifests/{FAKE_TABLE}.yaml", line=1, description=FAKE_TABLE,
        labels=(("team", FAKE_TABLE),),
        id_sources=(IdSource("assetIdsFile", f"manifests/ids/{FAKE_TABLE}", "0" * 64, 3),),
    )  # fmt: skip
    plan = build_plan(diff([prod], Ledger(Path("l.jsonl"))), Options())
    ref = PipelineRef("o1", "pPROD")
    review = Review(statuses={ref: LiveStatus(FAKE_TABLE, FAKE_TABLE)})
    live = LiveState(
        holding={a: 30 for a in plan.actions},
        samples={"wind-fix": [Sample("wind-fix", "s1", "a0", "x0", FAKE_TABLE, FAKE_TABLE)]},
    )
    source = comment(plan, LoadResult(manifests=[prod]), review, live)
    check_reader_sees_the_plan(source, plan, ["wind-fix"])
    rows, _, _ = reading(source)
    assert not any(r[1] == "pTEST" for r in rows)
    ((org, pipe, stage, cells),) = [r[:4] for r in rows if len(r) >= 9]
    assert (org, stage, cells) == ("o1", "s1", "30") and pipe.startswith("pPROD (fix | orgId | pipeline")
    assert "<!--" not in md().render(source).replace("&lt;!--", "")


# --- item 3: the pull request always hears --------------------------------------------


def test_plan_markdown_prints_a_comment_when_it_refuses(repo: Path) -> None:
    write(repo / "manifests/bad.yaml", manifest_yaml("bad", pipeline='"p1`\\n\\n<!--"'))
    res = run_cli(["plan", "--format", "markdown"], repo)
    assert res.code == 1, res.all
    assert res.out.startswith("## reconcile plan: refused\n")
    assert "refused this pull request: there is no plan to review" in res.out
    assert "manifests/bad.yaml:" in res.out and "LINE FEED" in res.out
    assert "error: 1 error in manifests" in res.err  # stderr still says it, as before
    rows, paragraphs, _ = reading(res.out)
    assert rows == [] and any(p.startswith("What to do:") for p in paragraphs)
    assert run_cli(["plan"], repo).out == ""  # text: no comment body on stdout


def test_the_base_commit_is_the_pull_requests_base(repo: Path, tmp_path: Path) -> None:
    write(repo / "manifests/m.yaml", manifest_yaml("m"))
    commit_all(repo)
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "pr")
    write(repo / "manifests/n.yaml", manifest_yaml("n"))
    commit_all(repo)
    head = git(repo, "rev-parse", "HEAD")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": base}, "head": {"sha": head}}}))
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}
    res = run_cli(["plan", "--format", "markdown"], repo, env)
    assert res.code == 0, res.all
    assert f"- Base commit: `{base}` (the pull request's base)" in res.out and head not in res.out
    gitlab = run_cli(
        ["plan", "--format", "markdown"],
        repo,
        {"CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_COMMIT_SHA": head},
    )
    assert f"- Base commit: `{base}` (the pull request's base)" in gitlab.out, gitlab.all


# --- the HTML report in a real browser ---------------------------------------------------

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
REPORT_PROBES = {
    "ready": "document.body.dataset.ready",
    "pwned": "String(window.__pwned)",
    "imgs": "document.querySelectorAll('img').length",
    "scripts": "document.querySelectorAll('script').length",
    "manifests": "[...document.querySelectorAll('#manifests tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))",
    "links": "[...document.querySelectorAll('#manifests a')].map(a => a.protocol)",
    "failed": "[...document.querySelectorAll('#failed tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))",
    "doubt": "[...document.querySelectorAll('#doubt tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))",
    "options": "[...document.querySelectorAll('#f-manifest option')].map(o => o.textContent)",
    "total": "Number(document.getElementById('chart-box').dataset.total)",
    "head": "document.getElementById('head').textContent",
}


def hostile_report(tmp_path: Path) -> Path:
    from reconciler import ledger as L

    actor = {"user": XSS, "gitCommit": XSS, "runUrl": "javascript:window.__pwned=3"}
    path = tmp_path / f"led{XSS[:4]}.jsonl"
    path.touch()
    fields = {
        "manifest": XSS,
        "orgId": "o1",
        "pipelineId": f"p{XSS}",
        "stageInstanceName": f"s{XSS}",
        "assetIds": [f"a{XSS}"],
        "pointIds": ["x", "y"],
        "actor": actor,
    }
    with L.LedgerWriter(L.read(path)) as w:
        i = w.append("intent", fields, at="2026-11-27T10:00:00.000Z")
        w.append_delete(i, {"actor": actor}, at="2026-11-27T10:00:01.000Z")
        k = w.append("intent", fields, at="2026-11-27T10:00:02.000Z")
        w.append_failed(k, code=61107, message=XSS, fields={"actor": actor}, at="2026-11-27T10:00:03.000Z")
        w.append("intent", fields, at="2026-11-27T10:00:04.000Z")
    out = tmp_path / "report.html"
    res = run_cli(["ledger", "report", "--ledger", str(path), "--out", str(out)], tmp_path)
    assert res.code == 0, res.all
    return out


@pytest.mark.parametrize(
    ("fragment", "total"),
    [
        ("", 2),
        (f"manifest={XSS}", 2),  # the filter matches the name as text
        (f"pipeline={XSS}&asset={XSS}", 0),
        ("asset=%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D4%22%3E", 0),
    ],
)
def test_the_report_shows_every_field_as_text_in_a_browser(tmp_path: Path, fragment: str, total: int) -> None:
    from helpers.browser import open_page
    from test_report import need_chromium

    need_chromium()
    report = hostile_report(tmp_path)
    page = open_page(report.as_uri() + ("#" + fragment if fragment else ""), REPORT_PROBES)
    v = page.values
    assert v["pwned"] == "undefined" and v["imgs"] == 0 and v["scripts"] == 3, v
    assert v["ready"] == "1" and page.errors == []
    assert set(v["options"]) == {"all", XSS}  # the filter lists the name as text
    assert v["total"] == total
    if not fragment:
        ((name, _, user, commit, run, cells, paused, _),) = v["manifests"]
        assert name == XSS and user == XSS and cells == "2" and v["total"] == 2
        assert commit == XSS[:10] and run == "—" and v["links"] == []  # a javascript: URL is no link
        assert paused.startswith(f"p{XSS}: ")
        ((_, _, manifest, where, _, code, why),) = v["failed"]
        assert (manifest, where, code, why) == (XSS, f"p{XSS} / s{XSS}", "61107", XSS)
        for row in v["doubt"]:  # whether the last intent counts as in doubt is history's rule
            assert len(row) == 1 or (row[2], row[5]) == (XSS, XSS), row
