"""View-model helpers: the decisions templates never make (escaping, purpose, retention, maintenance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.render import viewmodel as vm
from engine.render.registry import render_all
from engine.spec import load_project

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def project():
    return load_project(HERE / "fixture_specs")


@pytest.mark.parametrize("text, purpose", [
    ("One row per run. Count with DISTINCT.", "One row per run."),
    ("Usage, e.g. DBUs, per day. More.", "Usage, e.g. DBUs, per day."),
    ("List history (SCD2). price_end_time is NULL now.", "List history (SCD2)."),
    ("Reads system.billing.usage daily\n  across lines", "Reads system.billing.usage daily across lines"),
])
def test_purpose_is_the_first_sentence(text, purpose):
    assert vm.first_sentence(text) == purpose


def test_escaping_for_each_output_language():
    assert vm.md_cell("a | b\n c") == "a \\| b c"
    assert vm.md_code("x `y`") == "``x `y```"
    assert vm.sql_ident("ca", "we`ird") == "`ca`.`we``ird`"
    assert vm.sql_string("it's a \\ path") == "'it\\'s a \\\\ path'"
    assert vm.quoted("yes") == '"yes"'  # YAML would read a bare yes as true


def test_retention_follows_the_lineage_to_the_system_tables(project):
    daily = project.table("daily_cost")  # reads usage_bronze, which reads system.billing.usage
    assert vm.transitive_system_sources(project, daily) == ("system.billing.usage",)
    assert dict(vm.schema_doc(project).domains[0].tables[1].facts)["Source retention"] == "`system.billing.usage`: 365 days"
    assert vm.retention_text("system.compute.node_types") == "indefinite"


def test_schema_doc_sections(project):
    doc = render_all(project)["docs/SCHEMA.md"]
    assert doc.index("## Overview") < doc.index("## Common columns") < doc.index("## Domain: billing")
    assert "| `_account_identifier` | `string` | no |" in doc
    assert "```mermaid\nflowchart LR" in doc
    assert "| Refresh | daily job at 02:00 UTC" in doc
    assert "| `known_unit` | `usage_quantity IS NOT NULL OR record_id = 'a\\|b'` | warn |" in doc
    assert "| Shared | `fixture_share` as `mon.usage`, with history, PII included: `run_as` |" in doc
    assert "Expectations: none declared." in doc


def test_maintenance_only_touches_tables_no_pipeline_maintains(project):
    view = vm.maintenance_view(project)
    statements = [s for item in view.items for s in item.statements if not s.startswith("DELETE FROM ")]
    # The daily job passes the target's catalog and schema as these parameters.
    assert statements == ["OPTIMIZE `{{catalog}}`.`{{schema}}`.`run_slices`", "VACUUM `{{catalog}}`.`{{schema}}`.`run_slices`"]
    assert view.fallback == ""


def test_maintenance_expires_rows_of_retained_streaming_tables_only(project):
    view = vm.maintenance_view(project)
    deleted = {item.table for item in view.items for s in item.statements if s.startswith("DELETE FROM ")}
    assert deleted == {t.name for t in project.tables if t.retention is not None}
    assert deleted == {"usage_bronze", "run_slices", "clusters_bronze"}  # the bronze default; none on views
