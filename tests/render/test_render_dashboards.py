"""The Lakeview dashboards: the bundle entries against Databricks' typed models, and the JSON's structure.

The structure checks read the generated files as Lakeview reads them, independently of the spec
engine: every widget query names a dataset, every field expression is a dataset column or an
aggregate of one (the dataset's columns derived by sqlglot from its SQL over the specs' declared
columns), every encoding names a query field, positions tile a 6-column grid without overlaps,
every filter binds parameters its datasets declare, and every dataset's SQL parses.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import pytest
import sqlglot
import yaml
from databricks.bundles.dashboards import Dashboard as BundleDashboard
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from engine.render.lakeview import RESOURCES_FILE
from engine.render.registry import render_all
from engine.spec import load_project
from engine.spec.model import CONSOLIDATED_PREFIX, SOURCE_WORKSPACE_COLUMN

REPO = Path(__file__).resolve().parents[2]
GRID = 6
WIDGET_TYPES = {"counter": 2, "table": 2, "line": 3, "bar": 3, "area": 3, "pie": 3}
FILTER_TYPES = {"filter-date-range-picker", "filter-single-select"}
AGGREGATES = (exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Count, exp.CountIf)


@pytest.fixture(scope="module")
def project():
    return load_project(REPO / "specs")


@pytest.fixture(scope="module")
def outputs(project):
    return render_all(project)


@pytest.fixture(scope="module")
def resources(outputs) -> dict:
    return yaml.safe_load(outputs[RESOURCES_FILE])["resources"]["dashboards"]


def dashboards(outputs) -> dict[str, dict]:
    return {path: json.loads(text) for path, text in outputs.items() if path.endswith(".lvdash.json")}


# --- the bundle entries --------------------------------------------------------------------------

def test_every_entry_passes_the_typed_bundle_model(resources, project):
    assert len(resources) == len(project.dashboards) >= 7
    for key, value in resources.items():
        model = BundleDashboard.from_dict(value)  # raises on an unknown or misspelt field
        assert value["warehouse_id"] == "${var.warehouse_id}" and model.warehouse_id is not None
        assert model.display_name and model.file_path.endswith(".lvdash.json")


def test_the_typed_model_rejects_an_unknown_key(resources):
    entry = dict(next(iter(resources.values())))
    entry["dataset_catlog"] = entry.pop("dataset_catalog")
    with pytest.raises(ValueError, match="dataset_catlog"):
        BundleDashboard.from_dict(entry)


def test_entries_point_at_the_generated_files_and_resolve_names_per_target(resources, outputs, project):
    settings = project.settings
    for dashboard in project.dashboards:
        entry = resources[f"tablesmith_dashboard_{dashboard.name}"]
        target = posixpath.normpath(posixpath.join(posixpath.dirname(RESOURCES_FILE), entry["file_path"]))
        assert target in outputs, target
        if dashboard.scope.value == "central":
            assert (entry["dataset_catalog"], entry["dataset_schema"]) == (settings.central_catalog, settings.central_schema)
        else:
            assert (entry["dataset_catalog"], entry["dataset_schema"]) == ("${var.catalog}", "${var.schema}")


def test_the_bundle_includes_the_resources_file(outputs):
    bundle = yaml.safe_load(outputs["databricks.yml"])
    assert any(Path(RESOURCES_FILE).match(pattern) for pattern in bundle["include"])


# --- the serialized dashboards -------------------------------------------------------------------

def _schema(project, central: bool) -> dict[str, dict[str, str]]:
    schema = {}
    for table in project.tables:
        if table.layer.value == "bronze":
            continue  # a dashboard naming one fails to resolve: the structure test would say so
        columns = {c.name: c.type for c in table.all_columns}
        if central:
            schema[CONSOLIDATED_PREFIX + table.name] = {SOURCE_WORKSPACE_COLUMN: "STRING", **columns}
        else:
            schema[table.name] = columns
    return schema


def _dataset_columns(sql: str, schema: dict) -> tuple[list[str], set[tuple[str, str | None]]]:
    """The query's output columns, and the parameters it uses (name, .min/.max or None)."""
    tree = sqlglot.parse_one(sql, read="databricks")
    assert isinstance(tree, exp.Query), sql
    parameters = set()
    for placeholder in list(tree.find_all(exp.Placeholder)):
        parent = placeholder.parent
        if isinstance(parent, exp.Dot):
            parameters.add((placeholder.name, parent.expression.name))
            parent.replace(exp.cast(exp.null(), "DATE"))
        else:
            parameters.add((placeholder.name, None))
            placeholder.replace(exp.cast(exp.null(), "STRING"))
    for table in tree.find_all(exp.Table):
        assert not table.db and not table.catalog, f"{table.sql()}: names are unqualified (dataset_catalog/dataset_schema resolve them)"
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        assert table.name in schema or table.name in ctes, f"{table.name} is not a silver/gold table of the catalog"
    qualified = qualify(tree, schema=schema, dialect="databricks", validate_qualify_columns=True)
    return [s.alias_or_name for s in qualified.selects], parameters


def _field_columns(expression: str) -> list[str]:
    """The dataset columns a widget field expression reads; it must be a column, an aggregate of one, or a date bin."""
    tree = sqlglot.parse_one(expression, read="databricks")
    if isinstance(tree, exp.Column):
        return [tree.name]
    if isinstance(tree, AGGREGATES):
        return [c.name for c in tree.find_all(exp.Column)]
    if isinstance(tree, (exp.DateTrunc, exp.TimestampTrunc)):
        return [c.name for c in tree.find_all(exp.Column)]
    raise AssertionError(f"not a field, aggregate or date bin: {expression}")


def test_every_dashboard_is_consistent(outputs, project):
    files = dashboards(outputs)
    assert set(files) == {f"generated/dashboards/{d.name}.lvdash.json" for d in project.dashboards}
    for path, board in files.items():
        central = "central" in path
        _check_dashboard(path, board, _schema(project, central))


def _check_dashboard(path: str, board: dict, schema: dict) -> None:
    assert set(board) == {"datasets", "pages", "uiSettings"}, path
    datasets = {}
    for dataset in board["datasets"]:
        assert dataset["name"] not in datasets, f"{path}: dataset {dataset['name']} twice"
        assert all(isinstance(line, str) for line in dataset["queryLines"])
        sql = "".join(dataset["queryLines"])
        assert not re.search(r"(?i)\bsystem\.", sql), f"{path}: {dataset['name']} reads a system table"
        columns, used = _dataset_columns(sql, schema)
        declared = {p["keyword"]: p for p in dataset.get("parameters", [])}
        assert {name for name, _ in used} == set(declared), f"{path}: {dataset['name']} parameters"
        for name, bound in used:
            assert (declared[name].get("complexType") == "RANGE") == (bound in ("min", "max")), (path, name, bound)
        datasets[dataset["name"]] = (columns, declared)

    widget_names = set()
    page_types = [page["pageType"] for page in board["pages"]]
    assert set(page_types) <= {"PAGE_TYPE_CANVAS", "PAGE_TYPE_GLOBAL_FILTERS"} and page_types.count("PAGE_TYPE_GLOBAL_FILTERS") <= 1
    for page in board["pages"]:
        cells: set[tuple[int, int]] = set()
        for item in page["layout"]:
            widget, position = item["widget"], item["position"]
            assert widget["name"] not in widget_names, f"{path}: widget {widget['name']} twice"
            widget_names.add(widget["name"])
            x, y, width, height = (position[k] for k in ("x", "y", "width", "height"))
            assert all(isinstance(v, int) for v in (x, y, width, height)) and x >= 0 and y >= 0 and width >= 1 and height >= 1
            assert x + width <= GRID, f"{path}: {widget['name']} overflows the {GRID}-column grid"
            area = {(cx, cy) for cx in range(x, x + width) for cy in range(y, y + height)}
            assert not area & cells, f"{path}: {widget['name']} overlaps another widget"
            cells |= area
            if "multilineTextboxSpec" in widget:
                continue
            if page["pageType"] == "PAGE_TYPE_GLOBAL_FILTERS":
                _check_filter(path, widget, datasets)
            else:
                _check_widget(path, widget, datasets)


def _check_widget(path: str, widget: dict, datasets: dict) -> None:
    spec = widget["spec"]
    assert WIDGET_TYPES.get(spec["widgetType"]) == spec["version"], (path, widget["name"], spec["widgetType"], spec["version"])
    (query,) = widget["queries"]
    assert query["name"] == "main_query"
    body = query["query"]
    assert body["datasetName"] in datasets, f"{path}: {widget['name']} reads unknown dataset {body['datasetName']}"
    columns, _ = datasets[body["datasetName"]]
    names = [f["name"] for f in body["fields"]]
    assert len(names) == len(set(names))
    aggregated = False
    for field in body["fields"]:
        read = _field_columns(field["expression"])
        assert set(read) <= set(columns), f"{path}: {widget['name']}: {field['expression']} reads {read}, not in {columns}"
        aggregated |= field["expression"] != f"`{read[0]}`" and not field["expression"].startswith("DATE_TRUNC")
    assert body["disaggregated"] == (not aggregated)
    encodings = spec["encodings"]
    named = [e["fieldName"] for key, e in encodings.items() if key != "columns" and isinstance(e, dict)]
    named += [c["fieldName"] for c in encodings.get("columns", [])]
    assert named and set(named) <= set(names), f"{path}: {widget['name']} encodes {named}, its query has {names}"
    for key in ("x", "y", "color", "angle"):
        if key in encodings:
            assert encodings[key]["scale"]["type"] in ("temporal", "quantitative", "categorical")


def _check_filter(path: str, widget: dict, datasets: dict) -> None:
    spec = widget["spec"]
    assert spec["widgetType"] in FILTER_TYPES and spec["version"] == 2
    queries = {q["name"]: q["query"] for q in widget["queries"]}
    fields = spec["encodings"]["fields"]
    assert any("parameterName" in f for f in fields), f"{path}: filter {widget['name']} binds no parameter"
    for field in fields:
        query = queries[field["queryName"]]
        assert query["datasetName"] in datasets
        columns, declared = datasets[query["datasetName"]]
        if "parameterName" in field:
            assert field["parameterName"] in declared, f"{path}: {query['datasetName']} has no parameter {field['parameterName']}"
            assert query["parameters"] == [{"name": field["parameterName"], "keyword": field["parameterName"]}]
            default = declared[field["parameterName"]]["defaultSelection"]
            assert spec["selection"]["defaultSelection"] == default
        else:
            assert field["fieldName"] in columns and field["fieldName"] in [f["name"] for f in query["fields"]]


def test_the_structure_check_catches_a_broken_file(outputs, project):
    """The checks above fail on the mistakes they exist for (a widget on a missing dataset, an overlap)."""
    path, board = next(iter(dashboards(outputs).items()))
    schema = _schema(project, "central" in path)
    broken = json.loads(json.dumps(board))
    canvas = next(p for p in broken["pages"] if p["pageType"] == "PAGE_TYPE_CANVAS")
    canvas["layout"][0]["widget"]["queries"][0]["query"]["datasetName"] = "missing"
    with pytest.raises(AssertionError, match="unknown dataset"):
        _check_dashboard(path, broken, schema)
    overlapping = json.loads(json.dumps(board))
    canvas = next(p for p in overlapping["pages"] if p["pageType"] == "PAGE_TYPE_CANVAS")
    canvas["layout"][1]["position"] = dict(canvas["layout"][0]["position"])
    with pytest.raises(AssertionError, match="overlaps"):
        _check_dashboard(path, overlapping, schema)


def test_the_dashboards_deployed_read_the_specs_sql_with_tables_unqualified(outputs, project):
    for dashboard in project.dashboards:
        board = json.loads(outputs[f"generated/dashboards/{dashboard.name}.lvdash.json"])
        for spec_dataset, dataset in zip(dashboard.datasets, board["datasets"]):
            sql = "".join(dataset["queryLines"])
            assert "${" not in sql
            for table in spec_dataset.tables:
                expected = (CONSOLIDATED_PREFIX + table) if dashboard.scope.value == "central" else table
                assert re.search(rf"\b{expected}\b", sql), (dashboard.name, spec_dataset.name, expected)
