"""`tablesmith report`, tested as a person sees it: the catalog's dashboards on the shared local run,
opened in headless Chromium (Debian's package, driven by Playwright; never a downloaded browser).

One browser start for every page: each page is loaded with the network cut off (the report must
work offline), screenshotted, and every chart must have drawn marks with no console error.
Set TABLESMITH_UPDATE_SCREENSHOTS=1 to refresh docs/img/dashboard_<name>.png from this run.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.render.lakeview import WidgetQuery, QueryField
from engine.report.build import PLOTLY_JS, build_report
from engine.report.queries import LocalDashboards, resolve_date, widget_sql
from engine.spec import load_project

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
# What a chart drew: bars, line segments, markers, filled areas and pie slices, each with a real path.
MARKS = """() => Array.from(document.querySelectorAll('[data-figure]')).map(chart => {
  const drawn = chart.querySelectorAll('g.trace .point path, g.trace path.js-line, g.trace path.js-fill, g.slice path.surface');
  const real = Array.from(drawn).filter(path => (path.getAttribute('d') || '').length > 4);
  return {widget: chart.closest('[data-widget]').dataset.widget, rows: Number(chart.closest('[data-widget]').dataset.rows), marks: real.length};
})"""


@pytest.fixture(scope="module")
def project():
    return load_project(REPO / "specs")


@pytest.fixture(scope="module")
def report(pipeline_output, project, tmp_path_factory):
    return build_report(project, pipeline_output.spark, pipeline_output.schema, tmp_path_factory.mktemp("report"))


def _browser(playwright):
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is missing: install Debian's package (`apt-get install -y chromium`); "
                    ".ci/run does this. The report is checked in a real browser, never skipped.")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def test_every_dashboard_page_draws_in_chromium(report, project):
    from playwright.sync_api import sync_playwright

    assert report.errors == 0, [(w.name, w.error) for d in report.view.dashboards for p in d.pages for w in p.widgets if w.error]
    assert set(report.pages) == {d.name for d in project.dashboards}
    update = os.environ.get("TABLESMITH_UPDATE_SCREENSHOTS") == "1"
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))

            def offline(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    requests.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(report.index.resolve().as_uri())
            links = page.eval_on_selector_all(".card a", "links => links.map(a => a.getAttribute('href'))")
            assert sorted(links) == sorted(path.name for path in report.pages.values())
            for name, path in sorted(report.pages.items()):
                page.goto(path.resolve().as_uri())
                page.wait_for_function("document.body.dataset.chartsReady !== undefined", timeout=120_000)
                charts = page.evaluate(MARKS)
                assert charts, f"{name}: no chart on the page"
                for chart in charts:
                    assert chart["rows"] > 0 and chart["marks"] > 0, f"{name}: chart {chart['widget']} drew nothing: {chart}"
                counters = page.eval_on_selector_all(".counter .value", "values => values.map(v => v.textContent.trim())")
                assert counters and all(re.search(r"\d", value) for value in counters), f"{name}: counters {counters}"
                tables = page.eval_on_selector_all(".widget.table", "ts => ts.map(t => t.querySelectorAll('tbody tr').length)")
                assert all(rows > 0 for rows in tables), f"{name}: a table has no rows: {tables}"
                assert page.locator(".widget .error").count() == 0
                shot = report.folder / f"dashboard_{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 20_000, f"{name}: the screenshot is blank"
                if update:
                    shutil.copyfile(shot, REPO / "docs" / "img" / shot.name)
            assert not problems, f"console errors: {problems}"
            assert not requests, f"the report reached for the network: {requests}"
        finally:
            browser.close()


def test_the_report_is_offline_and_shows_freshness_and_quality(report):
    import plotly.offline

    assert (report.folder / PLOTLY_JS).read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()
    for path in [report.index, *report.pages.values()]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{path.name} links outside the report"
    assert len(report.view.quality) >= len({t for d in report.view.dashboards for t in (s.table for s in d.tables)})
    for dashboard in report.view.dashboards:
        assert dashboard.tables, dashboard.name
        for state in dashboard.tables:
            assert re.match(r"\d{4}-\d{2}-\d{2}", state.newest), (dashboard.name, state.table, state.newest)
    checked = [e for state in report.view.quality for e in state.expectations]
    assert checked and all(level in ("warn", "drop", "fail") for _, level, _, _ in checked)


def test_a_counter_equals_its_dataset_recomputed_from_the_table(pipeline_output, project, report):
    """The period filter's default is bound as Lakeview binds it: the counter sums exactly the days in range."""
    dashboard = next(d for d in project.dashboards if d.name == "executive_overview")
    as_of = dt.date.fromisoformat(report.view.as_of)
    local = LocalDashboards(pipeline_output.spark, pipeline_output.schema, project)
    try:
        local.open(dashboard)
        outcomes = local.run_datasets(dashboard, as_of)
        assert not any(o.error for o in outcomes.values()), outcomes
        widget = next(w for page in dashboard.pages for w in page.widgets if w.type.value == "counter" and w.dataset == "daily_cost")
        shown = local.run_widget(dashboard, widget, 10).rows.rows[0][0]
    finally:
        local.close()
    low, high = resolve_date("now-30d/d", as_of), as_of
    expected = pipeline_output.table("cost_by_product").where(f"usage_date BETWEEN DATE'{low}' AND DATE'{high}'") \
        .agg({"total_cost_usd": "sum"}).collect()[0][0]
    assert shown == expected and expected > 0


def test_central_dashboards_read_one_local_provider(pipeline_output, project):
    dashboard = next(d for d in project.dashboards if d.scope.value == "central")
    before = pipeline_output.spark.catalog.currentDatabase()
    local = LocalDashboards(pipeline_output.spark, pipeline_output.schema, project)
    try:
        local.open(dashboard)
        local.run_datasets(dashboard, dt.date(2026, 10, 31))
        sources = {r[0] for r in pipeline_output.spark.sql(f"SELECT DISTINCT source_workspace FROM {local.dataset_view(dashboard, 'sources')}").collect()}
    finally:
        local.close()
    assert sources == {"<ALL>", "local"}
    assert pipeline_output.spark.catalog.currentDatabase() == before  # the report leaves the session as it found it


# --- no Spark ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("now", "2026-10-31"), ("now/d", "2026-10-31"), ("now-30d/d", "2026-10-01"), ("now-1w", "2026-10-24"),
    ("now/w", "2026-10-26"), ("now/M", "2026-10-01"), ("now-1M/M", "2026-09-01"), ("now-1y/y", "2025-01-01"),
    ("now+2d", "2026-11-02"), ("2026-01-15", "2026-01-15"),
])
def test_lakeview_relative_dates(text, expected):
    assert resolve_date(text, dt.date(2026, 10, 31)).isoformat() == expected


def test_widget_queries_group_by_what_is_not_aggregated():
    query = WidgetQuery("daily", (QueryField("usage_date", "`usage_date`", False), QueryField("sum(cost)", "SUM(`cost`)", True)), False)
    assert widget_sql(query, "`v`", 50) == ("SELECT `usage_date` AS `usage_date`, SUM(`cost`) AS `sum(cost)` FROM `v` "
                                            "GROUP BY `usage_date` ORDER BY `usage_date` LIMIT 50")
    rows = WidgetQuery("t", (QueryField("a", "`a`", False),), True)
    assert widget_sql(rows, "`v`", 5) == "SELECT `a` AS `a` FROM `v` ORDER BY `a` LIMIT 5"


def test_report_without_a_local_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "--specs", str(REPO / "specs"), "--output", str(tmp_path / "nothing")]) == 2
    assert "run `tablesmith run` first" in capsys.readouterr().err
