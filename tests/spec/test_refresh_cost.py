"""Refresh cost on Databricks: `tablesmith validate` warns (exit 0, file:line:col, stable code) about
every 15-minute materialized view Databricks recomputes in full, and the catalog holds none that is
not acknowledged in its spec. No JVM: the rules read sqlglot trees (engine.sql.refresh)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.spec import load_project, validate_project
from engine.spec.model import DatasetKind, Schedule
from engine.runtime.queries import scd2_current_query
from engine.spec.refresh import UNUSED_ACK_CODE, WARNING_CODE, RefreshMode, assess_all
from engine.sql.refresh import query_reasons

ROOT = Path(__file__).resolve().parents[2]
BASE = Path(__file__).parent / "base"

RECENT = """\
name: recent_usage
description: Usage of the last 30 days by workspace.
domain: billing
layer: gold
pattern: aggregate
{extra}query: |
  SELECT workspace_id, SUM(usage_quantity) AS q
  FROM ${{base_usage}}
  WHERE usage_date >= current_date() - 30
  GROUP BY workspace_id
columns:
  - {{name: workspace_id, type: STRING, description: Workspace.}}
  - {{name: q, type: "DECIMAL(38,18)", description: Quantity.}}
"""


def _specs(tmp_path: Path, extra: str = "", query_fix: bool = False) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(BASE, specs)
    text = RECENT.format(extra=extra)
    usage = specs / "billing" / "base_usage.yaml"
    usage.write_text(usage.read_text().replace(
        "keys: [record_id]", "  - {name: usage_date, type: DATE, description: Day.}\nkeys: [record_id]"))
    if query_fix:
        text = text.replace("  WHERE usage_date >= current_date() - 30\n", "")
    (specs / "billing" / "recent_usage.yaml").write_text(text)
    return specs


def test_validate_warns_with_file_line_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _specs(tmp_path)
    assert main(["validate", "--specs", "specs"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ") and "1 warning" in captured.out
    line = next(i for i, text in enumerate(RECENT.splitlines(), start=1) if text.startswith("{extra}query:"))
    assert f"specs/billing/recent_usage.yaml:{line}:8: warning: {WARNING_CODE}: query:" in captured.err
    assert "recent_usage" in captured.err and "current_date()" in captured.err and "non-deterministic" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("extra, fix", [
    ("schedule: daily\n", False),  # recomputed once a day: no warning
    ("refresh:\n  full_recompute_ok: \"small: one row per workspace\"\n", False),  # acknowledged in the spec
    ("", True),  # rewritten: every day kept, the reader filters
])
def test_no_warning_when_daily_acknowledged_or_incremental(tmp_path, extra, fix):
    _, warnings = validate_project(_specs(tmp_path, extra, fix))
    assert warnings == []


def test_an_acknowledgement_that_no_longer_applies_is_reported(tmp_path):
    ack = "refresh:\n  full_recompute_ok: \"small: one row per workspace\"\n"
    _, warnings = validate_project(_specs(tmp_path, ack, query_fix=True))
    assert [(w.code, w.key_path, w.severity) for w in warnings] == [(UNUSED_ACK_CODE, "refresh.full_recompute_ok", "warning")]


def test_errors_still_fail_and_print_no_warning_label(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = _specs(tmp_path)
    (specs / "billing" / "broken.yaml").write_text("name: broken\n")
    assert main(["validate", "--specs", "specs"]) == 2
    err = capsys.readouterr().err
    assert "warning:" not in err and "MV_FULL_RECOMPUTE" not in err and err.rstrip().endswith("found")
    assert "specs/billing/broken.yaml:" in err


def _pipeline_views(project) -> set[str]:
    return {t.name for t in project.tables if t.schedule is Schedule.PIPELINE
            and t.dataset_kind in (DatasetKind.MATERIALIZED_VIEW, DatasetKind.VIEW)}


def _listed(out: str) -> dict[str, str]:
    """`validate --refresh` lines `file:line: table: mode`, by table."""
    return {line.split(": ")[1]: line for line in out.splitlines() if line.startswith("specs/")}


@pytest.mark.parametrize("fix", [False, True])
def test_validate_refresh_lists_every_pipeline_materialized_view_with_its_mode(tmp_path, capsys, monkeypatch, fix):
    monkeypatch.chdir(tmp_path)
    specs = _specs(tmp_path, query_fix=fix)
    assert main(["validate", "--specs", "specs", "--refresh"]) == 0
    out = capsys.readouterr().out
    listed = _listed(out)
    assert set(listed) == _pipeline_views(load_project(specs)) and "recent_usage" in listed
    recent = listed["recent_usage"]
    assert re.match(r"specs/billing/recent_usage\.yaml:\d+: recent_usage: ", recent)
    summary = next(line for line in out.splitlines() if line.startswith("refresh on Databricks:"))
    if fix:
        assert recent.endswith(": incremental MV") and "0 recomputed in full without a reason" in summary
    else:
        assert "full recompute (every refresh) — current_date() " in recent and "non-deterministic" in recent
        assert "1 recomputed in full without a reason" in summary
    assert f"{len(listed)} materialized views on the 15-minute pipeline" in summary


def test_validate_without_refresh_prints_only_the_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _specs(tmp_path)
    assert main(["validate", "--specs", "specs"]) == 0
    out = capsys.readouterr().out
    assert _listed(out) == {} and "(`--refresh` lists each)" in out.splitlines()[1]


def test_the_catalogs_refresh_report_names_every_pipeline_materialized_view(catalog, capsys):
    project, _, _ = catalog
    assert main(["validate", "--specs", str(ROOT / "specs"), "--refresh"]) == 0
    listed = {line.split(": ")[1]: line for line in capsys.readouterr().out.splitlines() if ".yaml:" in line}
    assert set(listed) == _pipeline_views(project)
    for name, line in listed.items():  # incremental, rows in the spec, or a full recompute the spec accepts with a reason
        assert line.endswith(": incremental MV") or line.endswith("(rows in the spec)") \
            or f": {name}: full recompute, accepted: " in line, line


@pytest.fixture(scope="module")
def catalog():
    project, warnings = validate_project(ROOT / "specs")
    return project, warnings, assess_all(project.tables)


def test_the_catalog_has_no_unacknowledged_full_recompute_on_the_15_minute_pipeline(catalog):
    project, warnings, assessments = catalog
    assert warnings == [], "\n".join(w.format() for w in warnings)
    for table in project.tables:
        found = assessments[table.name]
        if found.mode is RefreshMode.FULL_RECOMPUTE and table.schedule is Schedule.PIPELINE:
            assert table.full_recompute_ok, f"{table.name}: {found.reasons}"


def test_rolling_window_tables_refresh_daily(catalog):
    project, _, _ = catalog
    for name in ("executive_summary_30d", "aiml_executive_summary_30d", "top_consumers_30d", "user_cost_30d",
                 "user_activity_30d", "trend_metrics"):
        assert project.table(name).schedule is Schedule.DAILY, name


def test_each_pattern_gets_the_query_it_runs(catalog):
    project, _, assessments = catalog
    # scd2 current tables: the query the runtime registers passes every rule, as the assessment says.
    current = [t for t in project.tables if t.derived_from]
    assert current and all(assessments[t.name].mode is RefreshMode.INCREMENTAL for t in current)
    assert all(query_reasons(scd2_current_query(t, "${" + str(t.derived_from) + "}")) == () for t in current)
    # streaming tables append; reference tables are rows written in the spec.
    assert assessments["billing_usage_bronze"].mode is RefreshMode.STREAMING
    assert assessments["team_mapping"].mode is RefreshMode.STATIC
    assert [r.code for r in assessments["team_mapping"].reasons] == ["NO_SOURCE_TABLE"]
    # a snapshot of a system table: the runtime projection (current_timestamp() ingestion column) and a direct read.
    codes = {r.code for r in assessments["workspace_info"].reasons}
    assert "ROW_TRACKING_NOT_ENABLED" in codes
    assert {r.construct for r in assessments["list_prices"].reasons} >= {"current_timestamp()", "system.billing.list_prices"}
    # a plain aggregate over pipeline tables is eligible.
    assert assessments["cost_by_sku"].mode is RefreshMode.INCREMENTAL


def test_a_temporary_view_passes_its_reasons_to_its_readers(tmp_path):
    specs = _specs(tmp_path)
    recent = specs / "billing" / "recent_usage.yaml"
    recent.write_text(recent.read_text().replace("pattern: aggregate\n", "pattern: view\n"))
    (specs / "billing" / "reader.yaml").write_text(
        "name: reader\ndescription: Reads the view.\ndomain: billing\nlayer: gold\npattern: aggregate\n"
        "query: SELECT workspace_id, q FROM ${recent_usage}\n"
        "columns:\n  - {name: workspace_id, type: STRING, description: W.}\n"
        "  - {name: q, type: \"DECIMAL(38,18)\", description: Q.}\n")
    project = load_project(specs)
    assert project.table("recent_usage").dataset_kind is DatasetKind.TEMPORARY_VIEW
    found = assess_all(project.tables)["reader"]
    assert found.mode is RefreshMode.FULL_RECOMPUTE
    assert [r.construct for r in found.reasons] == ["current_date() (in temporary view recent_usage)"]
