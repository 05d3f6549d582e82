"""The generated SQL parses as Databricks SQL, statement by statement.

sqlglot parses the views and CREATE SCHEMA fully. The Delta Sharing DDL (CREATE SHARE, ALTER SHARE,
CREATE RECIPIENT, GRANT ... ON SHARE, CREATE CATALOG ... USING SHARE) and OPTIMIZE/VACUUM are not in
sqlglot's grammar: it falls back to exp.Command, so those statements must instead match a strict
regex of the documented Databricks grammar (docs: sql-ref-syntax-ddl-alter-share and friends).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from engine.render.registry import render_all
from engine.render.sharing import PROVIDER_SQL, RECIPIENT_SQL, provider_statements, recipient_statements
from engine.spec import load_project

HERE = Path(__file__).parent
REPO = HERE.parent.parent

ID = r"`(?:[^`]|``)+`"
STRING = r"'(?:[^'\\]|\\.)*'"
FQN = rf"{ID}\.{ID}\.{ID}"
ALIAS = rf"(?: AS {ID}\.{ID})?"
GRAMMAR = [re.compile(f"^{pattern}$") for pattern in (
    rf"CREATE SHARE IF NOT EXISTS {ID}(?: COMMENT {STRING})?",
    rf"ALTER SHARE {ID} ADD TABLE {FQN} COMMENT {STRING}{ALIAS} (?:WITH|WITHOUT) HISTORY",
    rf"ALTER SHARE {ID} ADD MATERIALIZED VIEW {FQN} COMMENT {STRING}{ALIAS}",
    rf"ALTER SHARE {ID} ADD VIEW {FQN} COMMENT {STRING}{ALIAS}",
    rf"CREATE RECIPIENT IF NOT EXISTS {ID} USING ID '[a-z]+:[a-z0-9-]+:[0-9a-f-]{{36}}'(?: COMMENT {STRING})?",
    rf"GRANT SELECT ON SHARE {ID} TO RECIPIENT {ID}",
    rf"CREATE CATALOG IF NOT EXISTS {ID} USING SHARE {ID}\.{ID}",
    rf"OPTIMIZE {FQN}",
    rf"VACUUM {FQN}",
)]
PROJECTS = {"fixture": HERE / "fixture_specs", "repo": REPO / "specs"}


@pytest.fixture(scope="module", params=sorted(PROJECTS))
def project(request):
    return load_project(PROJECTS[request.param])


def statements_of(sql_file: str) -> list[str]:
    """Statements of a generated file: comment lines dropped, split where a line ends with ';'."""
    body = "\n".join(line for line in sql_file.splitlines() if not line.startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def assert_databricks_sql(statement: str) -> None:
    tree = sqlglot.parse_one(statement, read="databricks")
    if isinstance(tree, exp.Command):
        assert any(rule.match(statement) for rule in GRAMMAR), f"not in the documented grammar:\n{statement}"
    else:
        assert isinstance(tree, (exp.Create, exp.Select, exp.Delete)), f"unexpected statement kind {type(tree).__name__}"


# What a job run passes for the SQL files' {{catalog}} / {{schema}} parameters (a target's location).
JOB_PARAMETERS = {"catalog": "prov_cat", "schema": "mon_emea"}


def with_job_parameters(statement: str) -> str:
    """The statement as the SQL file task runs it: {{name}} replaced by the job parameter's value."""
    text = re.sub(r"\{\{(\w+)\}\}", lambda m: JOB_PARAMETERS[m.group(1)], statement)
    assert "{{" not in text and "}}" not in text, statement
    return text


def test_every_generated_statement_parses(project):
    for path, text in render_all(project).items():
        if path.endswith(".sql"):
            for statement in statements_of(text):
                assert_databricks_sql(with_job_parameters(statement))


def test_the_provider_script_shares_from_the_job_location_under_the_project_schema(project):
    """Tables are read where the target's pipeline wrote them; recipients see <project schema>.<name>."""
    schema = project.settings.schema
    adds = [with_job_parameters(s) for s in provider_statements(project) if s.startswith("ALTER SHARE")]
    assert adds
    for statement in adds:
        assert " `prov_cat`.`mon_emea`." in statement, statement
        assert re.search(rf" AS `{re.escape(schema)}`\.`\w+`( WITH(OUT)? HISTORY)?$", statement), statement
    maintenance = render_all(project)["generated/sql/maintenance.sql"]
    for statement in statements_of(maintenance):
        if statement.startswith(("OPTIMIZE", "VACUUM")):
            assert with_job_parameters(statement).split()[1].startswith("`prov_cat`.`mon_emea`."), statement


def test_files_and_statement_lists_are_one_source(project):
    outputs = render_all(project)
    assert statements_of(outputs[PROVIDER_SQL]) == provider_statements(project)
    assert statements_of(outputs[RECIPIENT_SQL]) == recipient_statements(project)
    for statement in provider_statements(project) + recipient_statements(project):
        assert not statement.endswith(";")


def test_consolidated_views_parse_to_a_union_of_every_provider(project):
    views = [s for s in recipient_statements(project) if "all_workspaces_" in s and "UNION ALL" in s]
    for view in views:
        tree = sqlglot.parse_one(view, read="databricks")
        assert isinstance(tree, exp.Create)
        assert len(list(tree.find_all(exp.Union))) == len(project.settings.providers) - 1


def test_sharing_keywords_follow_the_dataset_kind():
    project = load_project(HERE / "fixture_specs")
    by_table = {s.split("`.`")[2].split("`")[0]: s for s in provider_statements(project) if s.startswith("ALTER SHARE")}
    assert by_table["usage_bronze"].endswith("AS `mon`.`usage` WITH HISTORY")
    assert " ADD MATERIALIZED VIEW " in by_table["daily_cost"] and "HISTORY" not in by_table["daily_cost"]
    assert " ADD VIEW " in by_table["cost_view"] and by_table["cost_view"].endswith("AS `mon`.`costs_labelled`")
    assert " ADD MATERIALIZED VIEW " in by_table["clusters_current"]
    assert set(by_table) == {"usage_bronze", "daily_cost", "cost_view", "clusters_current"}


def test_pii_tables_carry_a_comment_naming_the_columns():
    text = render_all(load_project(HERE / "fixture_specs"))[PROVIDER_SQL]
    assert "-- PII shared (include_pii: true): run_as\nALTER SHARE `fixture_share` ADD TABLE `{{catalog}}`.`{{schema}}`.`usage_bronze`" in text
    assert "fresh share" in text.lower() and "tablesmith deploy" in text


def test_central_views_read_the_consolidated_views_they_name():
    statements = recipient_statements(load_project(HERE / "fixture_specs"))
    costs = next(s for s in statements if "`all_workspaces_costs`" in s.splitlines()[0])
    assert "FROM `central_cat`.`consolidated`.`all_workspaces_daily_cost`" in costs
    summary = next(s for s in statements if "`all_accounts_summary`" in s.splitlines()[0])
    assert "FROM `central_cat`.`consolidated`.`all_workspaces_costs`" in summary and "GROUP BY _account_identifier" in summary
    assert statements.index(costs) < statements.index(summary), "in the declared order"


def test_provider_catalogs_are_mounted_before_the_views():
    statements = recipient_statements(load_project(HERE / "fixture_specs"))
    assert statements[:3] == [
        "CREATE CATALOG IF NOT EXISTS `one_monitoring` USING SHARE `prov_one`.`fixture_share`",
        "CREATE CATALOG IF NOT EXISTS `two_catalog` USING SHARE `prov_two`.`fixture_share`",
        "CREATE SCHEMA IF NOT EXISTS `central_cat`.`consolidated`",
    ]
    usage = next(s for s in statements if "all_workspaces_usage_bronze" in s.splitlines()[0])
    assert "FROM `one_monitoring`.`mon`.`usage`" in usage and "SELECT 'two' AS `source_workspace`" in usage
