"""Dashboard specs: the catalog's dashboards load with their datasets' columns derived by sqlglot,
the documented example validates, and the SQL analysis finds what it must (no Spark here)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.spec import SpecError, load_project
from engine.spec.dashboard_sql import analyze

REPO = Path(__file__).resolve().parents[2]
SCHEMA_LINE = "# yaml-language-server: $schema=../../engine/spec/schemas/dashboard.schema.json"
ASKED_FOR = {"executive_overview", "job_operations", "cost_analysis", "failure_analysis", "aiml", "compute_rightsizing", "central_overview"}


@pytest.fixture(scope="module")
def project():
    return load_project(REPO / "specs")


def test_the_dashboards_users_asked_for_load(project):
    assert {d.name for d in project.dashboards} == ASKED_FOR
    for dashboard in project.dashboards:
        assert (REPO / "specs" / "dashboards" / f"{dashboard.name}.yaml").read_text().startswith(SCHEMA_LINE + "\n")
        for dataset in dashboard.datasets:
            assert dataset.columns, (dashboard.name, dataset.name)
            for table in dataset.tables:
                assert project.table(table).layer.value in ("silver", "gold"), (dashboard.name, table)
        widgets = [w for page in dashboard.pages for w in page.widgets]
        assert {"counter", "table"} <= {w.type.value for w in widgets} and any(w.type.is_chart for w in widgets), dashboard.name
    kinds = {w.type.value for d in project.dashboards for page in d.pages for w in page.widgets}
    assert kinds >= {"counter", "line", "bar", "area", "table", "pie"}


def test_dataset_columns_and_types_come_from_the_query(project):
    dashboard = next(d for d in project.dashboards if d.name == "executive_overview")
    daily = dashboard.dataset("daily_cost")
    assert [(c.name, c.type) for c in daily.columns] == [
        ("usage_date", "DATE"), ("billing_origin_product", "STRING"), ("compute", "STRING"), ("total_cost_usd", "DECIMAL(38, 6)")]
    assert daily.parameters == ("period", "workspace")
    assert [f.parameter for f in dashboard.filters] == ["period", "workspace"]
    assert {d.name for d in dashboard.bound_datasets("period")} == {"daily_cost", "serverless_share", "workspace_cost", "team_cost"}


def test_a_central_dashboard_reads_consolidated_columns(project):
    central = next(d for d in project.dashboards if d.scope.value == "central")
    assert central.dataset("cost").columns[0].name == "source_workspace"
    assert all(d.column("source_workspace") for d in central.datasets)


def test_the_documented_example_is_one_valid_yaml_file(tmp_path):
    text = (REPO / "docs" / "EXTENDING.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a dashboard is one YAML file"):]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    specs = tmp_path / "specs"
    shutil.copytree(REPO / "specs", specs)
    (specs / "dashboards" / "spend_by_team.yaml").write_text(example, encoding="utf-8")
    project = load_project(specs)
    dashboard = next(d for d in project.dashboards if d.name == "spend_by_team")
    assert [c.name for c in dashboard.dataset("daily").columns] == ["usage_date", "team", "total_cost_usd"]


def test_all_errors_of_a_dashboard_are_reported_at_once(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(REPO / "specs", specs)
    path = specs / "dashboards" / "cost_analysis.yaml"
    text = path.read_text()
    text = text.replace("FROM ${cost_by_sku}", "FROM ${billing_usage_bronze}", 1)
    text = text.replace("x: sku_name,", "x: sku,", 1)
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_project(specs)
    codes = {d.code for d in caught.value.diagnostics}
    assert {"BRONZE_READ", "UNKNOWN_FIELD"} <= codes
    assert all(d.file.endswith("cost_analysis.yaml") for d in caught.value.diagnostics)


# --- the SQL analysis ------------------------------------------------------------------------------

SCHEMA = {"t": {"d": "DATE", "w": "STRING", "cost": "DECIMAL(38,6)"}}


def test_ctes_and_references_are_not_bare_tables():
    analysis = analyze("WITH c AS (SELECT w, SUM(cost) AS cost FROM ${t} GROUP BY w) SELECT c.w, c.cost FROM c", SCHEMA, frozenset())
    assert not analysis.bare_tables and not analysis.problems
    assert [(c.name, c.type) for c in analysis.columns] == [("w", "STRING"), ("cost", "DECIMAL(38, 6)")]


def test_bare_tables_and_system_tables_are_found():
    analysis = analyze("SELECT * FROM t JOIN system.billing.usage u ON true", SCHEMA, frozenset())
    assert [b.name for b in analysis.bare_tables] == ["t", "system.billing.usage"]


def test_parameters_are_used_as_their_filter_allows():
    analysis = analyze("SELECT d FROM ${t} WHERE d BETWEEN :p.min AND :p.max AND w = :w", SCHEMA, frozenset({"p"}))
    assert analysis.parameter_names == ("p", "w") and not analysis.problems
    wrong = analyze("SELECT d FROM ${t} WHERE d > :p AND w = :w.min", SCHEMA, frozenset({"p"}))
    assert [p.code for p in wrong.problems] == ["PARAMETER_USAGE", "PARAMETER_USAGE"]


@pytest.mark.parametrize(("query", "code"), [
    ("SELECT SUM(cost) FROM ${t}", "DATASET_UNNAMED_COLUMN"),
    ("SELECT nope FROM ${t}", "UNDECLARED_COLUMN"),
    ("SELECT FROM WHERE", "DATASET_SQL_SYNTAX"),
    ("DELETE FROM ${t}", "DATASET_NOT_QUERY"),
    ("SELECT 1 AS a; SELECT 2 AS b", "DATASET_NOT_QUERY"),
])
def test_bad_queries_get_a_code(query, code):
    assert code in {p.code for p in analyze(query, SCHEMA, frozenset()).problems}


def test_both_schema_engines_agree_on_dashboard_files():
    """fastjsonschema (the fast path) and jsonschema (the explanations) judge every dashboard file alike."""
    import yaml

    from engine.spec.schema import DASHBOARD_SCHEMA, _validator, is_valid_shape

    files = sorted((REPO / "specs" / "dashboards").glob("*.yaml")) + sorted((REPO / "tests" / "spec" / "corpus").glob("dashboard_*/dashboards/*.yaml"))
    verdicts = set()
    for path in files:
        document = yaml.safe_load(path.read_text())
        reference = not any(True for _ in _validator(DASHBOARD_SCHEMA).iter_errors(document))
        assert is_valid_shape(document, DASHBOARD_SCHEMA) == reference, path
        verdicts.add(reference)
    assert verdicts == {True, False}
