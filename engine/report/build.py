"""Stage: report. The local preview of the dashboards: static HTML, one page per dashboard and an index.

Charts are Plotly figures (built and validated by the plotly package) drawn by the plotly.js the
package ships, copied once into the report folder: the report works offline, with no CDN. The
page layout is the deployed one (engine.render.lakeview.layout on the same 6-column grid). Each
dashboard page also shows how fresh its tables are and the run's quality-check counts for them.
"""

from __future__ import annotations

import datetime as dt
import decimal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from engine import atomic
from engine.render.lakeview import Position, layout, measure_field, x_field
from engine.report.queries import LocalDashboards, Outcome, Rows, shown_default
from engine.spec.model import Dashboard, Project, Widget, WidgetType

PLOTLY_JS = "plotly.min.js"
CHART_ROWS = 5000  # points a chart may draw
TABLE_ROWS = 100  # rows a table shows
ROW_PIXELS = 52  # one row of the grid


# --- view-model ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WidgetView:
    name: str
    type: str
    title: str
    position: Position
    figure: str = ""  # Plotly figure JSON (charts)
    value: str = ""  # counters
    columns: tuple[str, ...] = ()  # tables
    cells: tuple[tuple[str, ...], ...] = ()
    text: str = ""  # text boxes
    rows: int = 0  # rows the widget's query returned
    error: str = ""


@dataclass(frozen=True)
class PageView:
    name: str
    title: str
    widgets: tuple[WidgetView, ...]
    rows: int  # grid rows the page needs


@dataclass(frozen=True)
class TableState:
    table: str
    newest: str
    expectations: tuple[tuple[str, str, str, str], ...]  # (expectation, on_violation, violations, rows checked)
    violations: int


@dataclass(frozen=True)
class DashboardView:
    name: str
    title: str
    description: str
    file: str
    scope: str
    filters: tuple[tuple[str, str], ...]  # (title, value the report used)
    pages: tuple[PageView, ...]
    tables: tuple[TableState, ...]
    errors: int


@dataclass(frozen=True)
class ReportView:
    title: str
    schema: str
    as_of: str
    generated_at: str
    run_time: str
    dashboards: tuple[DashboardView, ...]
    quality: tuple[TableState, ...]
    row_pixels: int = ROW_PIXELS


@dataclass(frozen=True)
class ReportResult:
    folder: Path
    index: Path
    pages: dict[str, Path]  # dashboard name -> its HTML file
    errors: int  # widgets whose query failed
    view: ReportView


# --- building --------------------------------------------------------------------------------------

def build_report(project: Project, spark: Any, schema: str, folder: Path, as_of: dt.date | None = None) -> ReportResult:
    """Run every dashboard of `project` on the local database `schema` and write the report into `folder`."""
    local = LocalDashboards(spark, schema, project)
    try:
        existing = local.existing_tables()
        read = sorted({t for d in project.dashboards for t in d.tables})
        freshness = local.freshness([t for t in read if t in existing])
        quality_rows = local.quality() if "_quality_metrics" in existing else Rows((), ())
        today = as_of or _as_of(freshness)
        states = _table_states(project, freshness, quality_rows, existing)
        dashboards = tuple(_dashboard(local, d, today, states) for d in project.dashboards)
    finally:
        local.close()
    run_times = [row[5] for row in quality_rows.rows if row[5] is not None]
    view = ReportView(
        title=f"{project.settings.name} dashboards",
        schema=schema,
        as_of=today.isoformat(),
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        run_time=max(run_times).strftime("%Y-%m-%d %H:%M UTC") if run_times else "unknown",
        dashboards=dashboards,
        quality=tuple(states[t] for t in sorted(states)),
    )
    return write_report(view, folder)


def report_local_run(project: Project, output: Path, folder: Path | None = None, as_of: dt.date | None = None) -> ReportResult:
    """The report on the tables of the local run in `output`, written into `folder` (default: <output>/report)."""
    from engine.runtime.local import finished_run, local_session, write_spark_conf

    layout = finished_run(output)
    write_spark_conf(layout)
    spark = local_session(layout)  # through the folder's warm Spark server (Derby: one process)
    return build_report(project, spark, project.settings.schema, folder or output / "report", as_of)


def _as_of(freshness: dict[str, dt.datetime | None]) -> dt.date:
    """'now' for relative dates: the newest data read (demo data ends in the past), never after today."""
    today = dt.datetime.now(dt.timezone.utc).date()
    newest = [v.date() for v in freshness.values() if v is not None]
    return min(max(newest), today) if newest else today


def _table_states(project: Project, freshness: dict, quality: Rows, existing: set[str]) -> dict[str, TableState]:
    by_table: dict[str, list[tuple]] = {}
    for table, expectation, on_violation, violations, checked, _ in quality.rows:
        by_table.setdefault(table, []).append((expectation, on_violation, violations, checked))
    names = set(freshness) | {t for t in by_table if t in set(project.table_names)} | {t for d in project.dashboards for t in d.tables}
    states = {}
    for name in sorted(names):
        newest = freshness.get(name)
        shown = _cell(newest) if newest is not None else ("not built by the run" if name not in existing else "no dates")
        expectations = tuple((e, level, _count(v), _count(c)) for e, level, v, c in by_table.get(name, ()))
        states[name] = TableState(name, shown, expectations, sum(int(v or 0) for _, _, v, _ in by_table.get(name, ())))
    return states


def _dashboard(local: LocalDashboards, dashboard: Dashboard, today: dt.date, states: dict[str, TableState]) -> DashboardView:
    local.open(dashboard)
    datasets = local.run_datasets(dashboard, today)
    runnable = [w for page in dashboard.pages for w, _ in layout(page)
                if not datasets.get(w.dataset or "", Outcome(Rows((), ()))).error]
    # The widgets' queries are independent: a few at a time keep both cores of a laptop busy.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(map(id, runnable), pool.map(
            lambda w: local.run_widget(dashboard, w, TABLE_ROWS if w.type is WidgetType.TABLE else CHART_ROWS), runnable)))
    pages = []
    errors = 0
    for page in dashboard.pages:
        widgets = []
        for widget, position in layout(page):
            outcome = datasets.get(widget.dataset or "", Outcome(Rows((), ())))
            if outcome.error:
                view = WidgetView(widget.name, widget.type.value, widget.title or "", position, error=f"dataset {widget.dataset}: {outcome.error}")
            else:
                view = _widget(widget, position, results[id(widget)])
            errors += bool(view.error)
            widgets.append(view)
        pages.append(PageView(page.name, page.title, tuple(widgets), max(p.y + p.height for _, p in layout(page))))
    return DashboardView(
        name=dashboard.name, title=dashboard.title, description=dashboard.description, file=f"{dashboard.name}.html",
        scope=dashboard.scope.value,
        filters=tuple((f.title, shown_default(f, today)) for f in dashboard.filters),
        pages=tuple(pages), tables=tuple(states[t] for t in dashboard.tables if t in states), errors=errors,
    )


def _widget(widget: Widget, position: Position, outcome: Outcome) -> WidgetView:
    base = dict(name=widget.name, type=widget.type.value, title=widget.title or "", position=position)
    if outcome.error or outcome.rows is None:
        return WidgetView(**base, error=outcome.error or "no rows")
    rows = outcome.rows
    if widget.type is WidgetType.TEXT:
        return WidgetView(**base, text=widget.markdown or "")
    if widget.type is WidgetType.TABLE:
        return WidgetView(**base, columns=rows.columns, cells=tuple(tuple(_cell(v) for v in row) for row in rows.rows), rows=len(rows.rows))
    if widget.type is WidgetType.COUNTER:
        value = rows.rows[0][0] if rows.rows else None
        return WidgetView(**base, value=_number(value, widget.format), rows=len(rows.rows))
    return WidgetView(**base, figure=_figure(widget, rows), rows=len(rows.rows))


# --- charts ----------------------------------------------------------------------------------------

def _figure(widget: Widget, rows: Rows) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    index = {name: i for i, name in enumerate(rows.columns)}
    measure = widget.value if widget.type is WidgetType.PIE else widget.y
    assert measure is not None
    y_name = measure_field(measure).name
    if widget.type is WidgetType.PIE:
        labels = [_label(r[index[widget.color or ""]]) for r in rows.rows]
        figure = go.Figure(go.Pie(labels=labels, values=[_plain(r[index[y_name]]) for r in rows.rows], sort=False, hole=0.35))
    else:
        x_name = x_field(widget).name
        series: dict[str, tuple[list, list]] = {}
        for row in rows.rows:
            key = _label(row[index[widget.color]]) if widget.color else measure.title or y_name
            xs, ys = series.setdefault(key, ([], []))
            xs.append(_plain(row[index[x_name]]))
            ys.append(_plain(row[index[y_name]]))
        traces = []
        for key, (xs, ys) in series.items():
            if widget.type is WidgetType.BAR:
                traces.append(go.Bar(name=key, x=xs, y=ys))
            elif widget.type is WidgetType.AREA:
                traces.append(go.Scatter(name=key, x=xs, y=ys, mode="lines", stackgroup="one"))
            else:
                traces.append(go.Scatter(name=key, x=xs, y=ys, mode="lines+markers"))
        figure = go.Figure(traces)
        figure.update_layout(barmode="stack", xaxis_title=widget.x, yaxis_title=measure.title or y_name)
        if widget.format == "currency":
            figure.update_yaxes(tickprefix="$", tickformat="~s")
        elif widget.format == "percent":
            figure.update_yaxes(tickformat=".0%")
    figure.update_layout(margin={"l": 48, "r": 12, "t": 8, "b": 40}, showlegend=bool(widget.color),
                         legend={"orientation": "h", "y": -0.25}, template="plotly_white", autosize=True)
    return _script_json(pio.to_json(figure, validate=True, pretty=False))


def _script_json(text: str) -> Markup:
    """JSON safe inside <script>: <, > and & only occur in strings, where \\u escapes mean the same."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# --- values ----------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _label(value: Any) -> str:
    return "(none)" if value is None else str(_plain(value))


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, decimal.Decimal)):
        return f"{float(value):,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _number(value: Any, number_format: str | None) -> str:
    if value is None:
        return "—"
    if not isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    number = float(value)
    if number_format == "percent":
        return f"{number * 100:.1f} %"
    prefix = "$" if number_format == "currency" else ""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= size:
            return f"{prefix}{number / size:.2f}{suffix}"
    return f"{prefix}{number:,.2f}" if number_format == "currency" or not float(number).is_integer() else f"{int(number):,}"


# --- writing ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("engine.report", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # spec text and table values are shown, never interpreted as HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def write_report(view: ReportView, folder: Path) -> ReportResult:
    from plotly.offline import get_plotlyjs

    folder.mkdir(parents=True, exist_ok=True)
    script = folder / PLOTLY_JS
    bundled = get_plotlyjs()
    if not script.is_file() or script.read_text(encoding="utf-8") != bundled:
        atomic.write_text(script, bundled)
    env = _environment()
    pages = {}
    for dashboard in view.dashboards:
        path = folder / dashboard.file
        atomic.write_text(path, env.get_template("dashboard.html.j2").render(report=view, dashboard=dashboard, plotly=PLOTLY_JS))
        pages[dashboard.name] = path
    index = folder / "index.html"
    atomic.write_text(index, env.get_template("index.html.j2").render(report=view, plotly=PLOTLY_JS))
    return ReportResult(folder, index, pages, sum(d.errors for d in view.dashboards), view)

