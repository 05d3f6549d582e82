"""A missing system schema skips its tables and everything downstream, on Databricks as locally.

On Databricks the pipeline probes each system table the selected tables read
(`spark.catalog.tableExists`, once per table) unless `tablesmith.enabled_schemas` says which schemas
exist; locally a missing folder does the same. The skip lines go to stderr (the driver log).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime.backend import PipelineBackend
from engine.runtime.entry import register_pipeline, skipped_tables
from engine.runtime.sources import LocalSystemSource
from engine.spec import load_project

from . import databricks_pipelines
from .databricks_pipelines import RecordingSpark

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def project():
    return load_project(SPECS)


def _register(project, spark, conf=None):
    dp = databricks_pipelines.module()
    registration = register_pipeline(spark, conf or {}, backend=PipelineBackend(dp), project=project)
    return registration, [r.options["name"] for r in dp.registered]


def test_a_missing_schema_skips_its_tables_and_their_downstream(project, capsys):
    spark = RecordingSpark(missing_schemas={"serving"})
    registration, registered = _register(project, spark)
    assert registration.skipped == {
        "endpoint_raw": "source system.serving.endpoint_usage is not available "
                        "(system.serving.endpoint_usage: not found in Unity Catalog); requires schema 'serving'",
        "endpoint_tokens": "upstream table endpoint_raw is skipped",
    }
    assert registered == [t.name for t in project.tables if t.name not in registration.skipped]
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("tablesmith: skipping")] == [
        f"tablesmith: skipping {name}: {reason}" for name, reason in registration.skipped.items()]
    # Each system table the tables read is probed exactly once.
    needed = sorted({s for t in project.tables for s in t.system_sources})
    assert sorted(spark.probed) == needed


def test_the_same_tables_are_skipped_as_in_a_local_run(project, tiny_source):
    """tiny_source (conftest.py) has every system table the specs read but the serving ones."""
    local = skipped_tables(list(project.tables), LocalSystemSource(tiny_source), None)
    registration, _ = _register(project, RecordingSpark(missing_schemas={"serving"}))
    assert list(local) == list(registration.skipped)
    assert local["endpoint_tokens"] == registration.skipped["endpoint_tokens"]
    assert local["endpoint_raw"].startswith("source system.serving.endpoint_usage is not available (")
    assert local["endpoint_raw"].endswith("); requires schema 'serving'")


def test_only_the_selected_schedule_is_probed(tmp_path):
    specs = tmp_path / "specs"
    (specs / "billing").mkdir(parents=True)
    (specs / "project.yaml").write_text((SPECS / "project.yaml").read_text())
    for name in ("usage_raw", "workspaces"):
        (specs / "billing" / f"{name}.yaml").write_text((SPECS / "billing" / f"{name}.yaml").read_text())
    text = (specs / "billing" / "workspaces.yaml").read_text()
    (specs / "billing" / "workspaces.yaml").write_text(text + "schedule: daily\n")
    spark = RecordingSpark()
    _, registered = _register(load_project(specs), spark, {"tablesmith.schedule": "pipeline"})
    assert registered == ["usage_raw"] and spark.probed == ["system.billing.usage"]


def test_enabled_schemas_replaces_the_probe(project, capsys):
    spark = RecordingSpark(missing_schemas={"billing"})  # would skip billing if it were asked
    registration, _ = _register(project, spark, {"tablesmith.enabled_schemas": "access, billing,lakeflow"})
    assert spark.probed == []
    assert set(registration.skipped) == {"endpoint_raw", "endpoint_tokens"}
    assert "schema not in tablesmith.enabled_schemas (access,billing,lakeflow)" in registration.skipped["endpoint_raw"]


def test_a_probe_that_fails_skips_with_its_error(project):
    class Denied(RecordingSpark):
        def _table_exists(self, name):
            if ".lakeflow." in name:
                raise RuntimeError("[INSUFFICIENT_PERMISSIONS] User does not have USE SCHEMA on Schema 'system.lakeflow'.\nmore")
            return super()._table_exists(name)

    registration, registered = _register(project, Denied())
    assert registration.skipped["jobs_hist"] == (
        "source system.lakeflow.jobs is not available (system.lakeflow.jobs: could not be checked: "
        "[INSUFFICIENT_PERMISSIONS] User does not have USE SCHEMA on Schema 'system.lakeflow'.); requires schema 'lakeflow'")
    assert {"jobs_hist_current", "job_usage", "cost_by_job_name"} <= set(registration.skipped)
    assert "usage_raw" in registered
