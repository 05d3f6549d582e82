"""Stage: render. Dashboard specs -> Lakeview (AI/BI) dashboards: one .lvdash.json each, and their bundle entries.

The serialized format is the one Databricks' own published dashboards use: datasets with
`queryLines` and `parameters`; canvas pages whose `layout` places widgets on a 6-column grid;
widgets holding one query over a dataset (`fields` with their expressions; the widget aggregates)
and a versioned `spec` (`widgetType`, `encodings`, `frame`); a PAGE_TYPE_GLOBAL_FILTERS page whose
filter widgets bind each parameter on every dataset that uses it.

Tables are written unqualified (`my_table`, or `all_workspaces_my_table` for a central
dashboard): the bundle sets `dataset_catalog` / `dataset_schema` per target, which apply exactly to
names that are not fully qualified, so one file deploys to every target.

The layout and each widget's query are also what `tablesmith report` runs locally: one definition
of what a widget shows.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from engine.render import viewmodel as vm
from engine.render.registry import RenderContext, renderer, template
from engine.names import resolve_references
from engine.spec.model import (
    CONSOLIDATED_PREFIX,
    Aggregate,
    Dashboard,
    DashboardDataset,
    DashboardFilter,
    DashboardPage,
    DashboardScope,
    FilterType,
    Measure,
    Project,
    Widget,
    WidgetType,
)

GRID_COLUMNS = 6
# (width, height) on the grid when the spec sets none.
DEFAULT_SIZES = {
    WidgetType.COUNTER: (2, 2),
    WidgetType.LINE: (3, 6),
    WidgetType.BAR: (3, 6),
    WidgetType.AREA: (3, 6),
    WidgetType.PIE: (3, 6),
    WidgetType.TABLE: (6, 6),
    WidgetType.TEXT: (6, 2),
}
# Spec versions of each widget type, as Databricks' published dashboards write them.
SPEC_VERSIONS = {WidgetType.COUNTER: 2, WidgetType.TABLE: 2, WidgetType.LINE: 3, WidgetType.BAR: 3, WidgetType.AREA: 3, WidgetType.PIE: 3}
FILTER_WIDGETS = {FilterType.DATE_RANGE: "filter-date-range-picker", FilterType.SINGLE_SELECT: "filter-single-select"}
FILTER_PAGE = "global_filters"
MAIN_QUERY = "main_query"
DASHBOARDS_DIR = "generated/dashboards"
RESOURCES_FILE = "generated/resources/tablesmith_dashboards.yml"

_AGGREGATES = {
    Aggregate.SUM: "SUM(`{}`)", Aggregate.AVG: "AVG(`{}`)", Aggregate.MIN: "MIN(`{}`)", Aggregate.MAX: "MAX(`{}`)",
    Aggregate.COUNT: "COUNT(`{}`)", Aggregate.COUNT_DISTINCT: "COUNT(DISTINCT `{}`)", Aggregate.NONE: "`{}`",
}
_BINS = {"day": ("daily", "DAY"), "week": ("weekly", "WEEK"), "month": ("monthly", "MONTH")}
_FORMATS = {
    "currency": {"type": "number-currency", "currencyCode": "USD", "abbreviation": "compact", "decimalPlaces": {"type": "max", "places": 2}},
    "number": {"type": "number-plain", "abbreviation": "compact", "decimalPlaces": {"type": "max", "places": 2}},
    "percent": {"type": "number-percent", "decimalPlaces": {"type": "max", "places": 1}},
}


# --- what each widget shows (shared with the local report) ---------------------------------------

@dataclass(frozen=True)
class Position:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class QueryField:
    name: str  # the name encodings refer to, e.g. sum(<column>)
    expression: str  # Databricks SQL over the dataset's columns, e.g. SUM(`<column>`)
    aggregated: bool


@dataclass(frozen=True)
class WidgetQuery:
    dataset: str
    fields: tuple[QueryField, ...]
    disaggregated: bool  # rows as they are; otherwise grouped by every field that is not aggregated


def relation(dashboard: Dashboard, table: str) -> str:
    """What ${table} becomes in a deployed dataset: unqualified, resolved through dataset_catalog/dataset_schema."""
    return CONSOLIDATED_PREFIX + table if dashboard.scope is DashboardScope.CENTRAL else table


def dataset_sql(dashboard: Dashboard, dataset: DashboardDataset) -> str:
    return resolve_references(dataset.query.strip(), lambda name: relation(dashboard, name))


def layout(page: DashboardPage) -> tuple[tuple[Widget, Position], ...]:
    """Widgets left to right in spec order on the 6-column grid, wrapping to a new row when one does not fit."""
    placed = []
    x, y, row_height = 0, 0, 0
    for widget in page.widgets:
        default_width, default_height = DEFAULT_SIZES[widget.type]
        width, height = widget.width or default_width, widget.height or default_height
        if x + width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append((widget, Position(x, y, width, height)))
        x += width
        row_height = max(row_height, height)
    return tuple(placed)


def measure_field(measure: Measure) -> QueryField:
    if measure.agg is Aggregate.NONE:
        return QueryField(measure.field, f"`{measure.field}`", False)
    return QueryField(f"{measure.agg.value.replace('_', '')}({measure.field})", _AGGREGATES[measure.agg].format(measure.field), True)


def x_field(widget: Widget) -> QueryField:
    assert widget.x is not None
    if widget.bin:
        prefix, unit = _BINS[widget.bin]
        return QueryField(f"{prefix}({widget.x})", f'DATE_TRUNC("{unit}", `{widget.x}`)', False)
    return QueryField(widget.x, f"`{widget.x}`", False)


def plain_field(name: str) -> QueryField:
    return QueryField(name, f"`{name}`", False)


def widget_query(widget: Widget) -> WidgetQuery | None:
    """The one query a widget runs over its dataset, or None for a text box."""
    if widget.dataset is None:
        return None
    if widget.type is WidgetType.TABLE:
        return WidgetQuery(widget.dataset, tuple(plain_field(c) for c in widget.columns), True)
    fields: list[QueryField] = []
    if widget.x:
        fields.append(x_field(widget))
    if widget.color:
        fields.append(plain_field(widget.color))
    for measure in (widget.y, widget.value):
        if measure:
            fields.append(measure_field(measure))
    return WidgetQuery(widget.dataset, tuple(fields), not any(f.aggregated for f in fields))


def scale_type(dataset: DashboardDataset, widget: Widget, field_name: str) -> str:
    if widget.bin and field_name == widget.x:
        return "temporal"
    column = dataset.column(field_name)
    kind = (column.type if column else "").upper()
    if kind.startswith(("DATE", "TIMESTAMP")):
        return "temporal"
    if kind.startswith(("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "DECIMAL")):
        return "quantitative"
    return "categorical"


def filter_default(flt: DashboardFilter) -> dict:
    if flt.type is FilterType.DATE_RANGE:
        low, high = flt.default
        return {"range": {"dataType": "DATE", "min": {"value": low}, "max": {"value": high}}}
    return {"values": {"dataType": "STRING", "values": [{"value": flt.default}]}}


# --- the serialized dashboard ----------------------------------------------------------------------

def serialized(dashboard: Dashboard) -> dict:
    pages = [_page(dashboard, page) for page in dashboard.pages]
    if dashboard.filters:
        pages.append(_filter_page(dashboard))
    return {
        "datasets": [_dataset(dashboard, d) for d in dashboard.datasets],
        "pages": pages,
        "uiSettings": {"theme": {"widgetHeaderAlignment": "ALIGNMENT_UNSPECIFIED"}},
    }


def _dataset(dashboard: Dashboard, dataset: DashboardDataset) -> dict:
    lines = dataset_sql(dashboard, dataset).split("\n")
    out: dict = {
        "name": dataset.name,
        "displayName": dataset.title,
        "queryLines": [line + "\n" for line in lines[:-1]] + [lines[-1]],
    }
    parameters = [_parameter(f) for f in dashboard.filters if f.parameter in dataset.parameters]
    if parameters:
        out["parameters"] = parameters
    return out


def _parameter(flt: DashboardFilter) -> dict:
    out = {"displayName": flt.title, "keyword": flt.parameter,
           "dataType": "DATE" if flt.type is FilterType.DATE_RANGE else "STRING"}
    if flt.type is FilterType.DATE_RANGE:
        out["complexType"] = "RANGE"
    out["defaultSelection"] = filter_default(flt)
    return out


def _page(dashboard: Dashboard, page: DashboardPage) -> dict:
    items = []
    for widget, position in layout(page):
        items.append({"widget": _widget(dashboard, widget), "position": dataclasses.asdict(position)})
    return {"name": page.name, "displayName": page.title, "layout": items, "pageType": "PAGE_TYPE_CANVAS"}


def _frame(widget: Widget) -> dict:
    return {"showTitle": bool(widget.title), "title": widget.title or ""}


def _encoding(field: QueryField, scale: str, title: str | None = None, number_format: str | None = None) -> dict:
    out: dict = {"fieldName": field.name, "scale": {"type": scale}, "displayName": title or field.name}
    if number_format and scale == "quantitative":
        out["format"] = _FORMATS[number_format]
    return out


def _widget(dashboard: Dashboard, widget: Widget) -> dict:
    if widget.type is WidgetType.TEXT:
        return {"name": widget.name, "multilineTextboxSpec": {"lines": (widget.markdown or "").splitlines(keepends=True)}}
    query = widget_query(widget)
    assert query is not None
    dataset = dashboard.dataset(query.dataset)
    assert dataset is not None
    by_name = {f.name: f for f in query.fields}
    if widget.type is WidgetType.COUNTER:
        assert widget.value is not None
        value = measure_field(widget.value)
        encodings: dict = {"value": {"fieldName": value.name, "displayName": widget.value.title or value.name}}
        if widget.format:
            encodings["value"]["format"] = _FORMATS[widget.format]
    elif widget.type is WidgetType.TABLE:
        encodings = {"columns": [{"fieldName": c, "displayName": c} for c in widget.columns]}
    elif widget.type is WidgetType.PIE:
        assert widget.value is not None and widget.color is not None
        value = measure_field(widget.value)
        encodings = {
            "angle": _encoding(value, "quantitative", widget.value.title, widget.format),
            "color": _encoding(by_name[widget.color], "categorical"),
        }
    else:
        assert widget.y is not None
        x = x_field(widget)
        y = measure_field(widget.y)
        encodings = {
            "x": _encoding(x, scale_type(dataset, widget, widget.x or ""), None),
            "y": _encoding(y, "quantitative", widget.y.title, widget.format),
        }
        if widget.color:
            encodings["color"] = _encoding(by_name[widget.color], scale_type(dataset, widget, widget.color))
    return {
        "name": widget.name,
        "queries": [{"name": MAIN_QUERY, "query": {
            "datasetName": query.dataset,
            "fields": [{"name": f.name, "expression": f.expression} for f in query.fields],
            "disaggregated": query.disaggregated,
        }}],
        "spec": {"version": SPEC_VERSIONS[widget.type], "widgetType": widget.type.value, "encodings": encodings, "frame": _frame(widget)},
    }


def _filter_page(dashboard: Dashboard) -> dict:
    items = []
    for i, flt in enumerate(dashboard.filters):
        queries, fields = [], []
        if flt.values_dataset and flt.values_field:
            name = f"values_{flt.values_dataset}_{flt.values_field}"
            queries.append({"name": name, "query": {"datasetName": flt.values_dataset, "fields": [
                {"name": flt.values_field, "expression": f"`{flt.values_field}`"},
                {"name": f"{flt.values_field}_associativity", "expression": "COUNT_IF(`associative_filter_predicate_group`)"},
            ], "disaggregated": False}})
            fields.append({"fieldName": flt.values_field, "displayName": flt.values_field, "queryName": name})
        for dataset in dashboard.bound_datasets(flt.parameter):
            name = f"parameter_{dataset.name}_{flt.parameter}"
            queries.append({"name": name, "query": {"datasetName": dataset.name,
                                                    "parameters": [{"name": flt.parameter, "keyword": flt.parameter}],
                                                    "disaggregated": False}})
            fields.append({"parameterName": flt.parameter, "queryName": name})
        items.append({
            "widget": {"name": f"filter_{flt.parameter}", "queries": queries, "spec": {
                "version": 2, "widgetType": FILTER_WIDGETS[flt.type], "encodings": {"fields": fields},
                "selection": {"defaultSelection": filter_default(flt)},
                "frame": {"showTitle": True, "title": flt.title},
            }},
            "position": {"x": (i * 2) % GRID_COLUMNS, "y": (i * 2) // GRID_COLUMNS * 2, "width": 2, "height": 2},
        })
    return {"name": FILTER_PAGE, "displayName": "Global Filters", "layout": items, "pageType": "PAGE_TYPE_GLOBAL_FILTERS"}


def dashboard_file(dashboard: Dashboard) -> str:
    return f"{DASHBOARDS_DIR}/{dashboard.name}.lvdash.json"


# --- the bundle resources ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DashboardResource:
    key: str
    display_name: str
    file_path: str  # relative to the resources file
    dataset_catalog: str
    dataset_schema: str


@dataclass(frozen=True)
class DashboardsView:
    header: str
    dashboards: tuple[DashboardResource, ...]


def dashboards_view(project: Project) -> DashboardsView:
    s = project.settings
    resources = []
    for dashboard in project.dashboards:
        central = dashboard.scope is DashboardScope.CENTRAL
        resources.append(DashboardResource(
            key=f"tablesmith_dashboard_{dashboard.name}",
            display_name=vm.collapse(dashboard.title),
            file_path=f"../dashboards/{dashboard.name}.lvdash.json",
            # The central views live in project.yaml's central catalog and schema, the same on every target.
            dataset_catalog=s.central_catalog if central else "${var.catalog}",
            dataset_schema=s.central_schema if central else "${var.schema}",
        ))
    return DashboardsView(vm.HEADER, tuple(resources))


@renderer("dashboards", "generated/dashboards/*.lvdash.json and generated/resources/tablesmith_dashboards.yml: Lakeview dashboards")
def render_dashboards(project: Project, _context: RenderContext) -> dict[str, str]:
    if not project.dashboards:
        return {}
    outputs = {dashboard_file(d): json.dumps(serialized(d), indent=2, ensure_ascii=False) + "\n" for d in project.dashboards}
    outputs[RESOURCES_FILE] = template("dashboards.yml.j2").render(view=dashboards_view(project))
    return outputs
