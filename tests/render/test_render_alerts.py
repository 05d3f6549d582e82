"""Alert specs render to Databricks SQL alert (v2) resources in the bundle."""

from __future__ import annotations

from pathlib import Path

import sqlglot
import yaml

from engine.render.registry import render_all
from engine.spec import load_project

SPECS = Path(__file__).resolve().parents[1] / "runtime" / "specs"


def test_each_alert_becomes_a_bundle_alert_with_tier_schedule_and_destination():
    project = load_project(SPECS)
    text = render_all(project)["generated/resources/tablesmith_alerts.yml"]
    bundle = yaml.safe_load(text)
    alerts = bundle["resources"]["alerts"]
    assert set(alerts) == {f"tablesmith_alert_{a.name}" for a in project.alerts}

    p1 = alerts["tablesmith_alert_big_cost_day"]
    assert p1["schedule"]["quartz_cron_schedule"] == "0 0/15 * * * ?"
    assert p1["evaluation"]["comparison_operator"] == "GREATER_THAN"
    assert p1["evaluation"]["notification"]["subscriptions"] == [{"destination_id": "${var.big_cost_day_destination_id}"}]
    assert "big_cost_day_destination_id" in bundle["variables"]
    assert alerts["tablesmith_alert_daily_cost_digest"]["schedule"]["quartz_cron_schedule"] == "0 0 8 * * ?"

    for alert in alerts.values():
        sql = alert["query_text"].replace("${var.catalog}", "main").replace("${var.schema}", "monitoring")
        tree = sqlglot.parse_one(sql, read="databricks")
        assert tree.find(sqlglot.exp.Where) is not None


def test_no_alert_specs_means_no_alert_resources(tmp_path):
    project = load_project(Path(__file__).resolve().parents[2] / "tests" / "spec" / "base")
    assert "generated/resources/tablesmith_alerts.yml" not in render_all(project)


def test_a_windowed_alert_counts_only_rows_near_the_latest_value():
    """`within` becomes a scalar subquery on the same table: anchored on the data, not the clock."""
    project = load_project(Path(__file__).resolve().parents[2] / "specs")
    alert = next(a for a in project.alerts if a.within is not None)
    bundle = yaml.safe_load(render_all(project)["generated/resources/tablesmith_alerts.yml"])
    sql = bundle["resources"]["alerts"][f"tablesmith_alert_{alert.name}"]["query_text"]
    tree = sqlglot.parse_one(sql.replace("${var.catalog}", "main").replace("${var.schema}", "monitoring"), read="databricks")
    window = tree.find(sqlglot.exp.GT)
    assert window.this.name == alert.within.column
    latest = window.expression.find(sqlglot.exp.Max)
    assert latest is not None and latest.this.name == alert.within.column
    assert window.expression.find(sqlglot.exp.Table).name == alert.table
    assert "CURRENT_DATE" not in sql.upper() and "CURRENT_TIMESTAMP" not in sql.upper()
