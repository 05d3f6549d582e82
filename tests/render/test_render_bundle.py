"""The bundle: databricks.yml and generated/resources/*.yml, parsed as YAML and checked field by field."""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

import pytest
import yaml

from engine.render.registry import render_all
from engine.spec import load_project

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture(scope="module")
def outputs():
    return render_all(load_project(HERE / "fixture_specs"))


def resources(outputs) -> dict:
    merged: dict = {"pipelines": {}, "jobs": {}}
    for path, text in outputs.items():
        if path.startswith("generated/resources/"):
            for kind, items in yaml.safe_load(text)["resources"].items():
                for key, value in items.items():
                    merged[kind][key] = (path, value)
    return merged


def resolve(resource_file: str, relative: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(resource_file), relative))


def test_databricks_yml(outputs):
    bundle = yaml.safe_load(outputs["databricks.yml"])
    assert bundle["include"] == ["generated/resources/*.yml"]
    assert {"engine/**", "specs/**"} <= set(bundle["sync"]["include"])
    assert set(bundle["variables"]) == {"catalog", "schema", "account_identifier", "workspace_identifier", "refresh_schedule",
                                        "warehouse_id", "service_principal"}
    assert bundle["variables"]["refresh_schedule"]["default"] == "0 0/15 * * * ?"
    assert bundle["variables"]["catalog"]["default"] == "fixture_cat"
    assert bundle["variables"]["warehouse_id"]["lookup"] == {"warehouse": "Serverless Starter Warehouse"}
    assert bundle["bundle"]["databricks_cli_version"] == ">= 0.279.0"  # alerts in bundles: CLI v0.279.0

    # dev: each developer gets '[dev <user>]' names and a schema of their own, created by the bundle.
    dev = bundle["targets"]["dev"]
    assert (dev["mode"], dev["default"]) == ("development", True)
    assert dev["variables"] == {"schema": "${workspace.current_user.short_name}_mon"}
    assert dev["resources"]["schemas"]["tablesmith_dev_schema"]["name"] == "${var.schema}"
    assert "run_as" not in dev

    # prod: runs as a service principal, from a root in the deploying identity's home (not /Workspace/Shared).
    prod = bundle["targets"]["prod"]
    assert prod["mode"] == "production"
    assert prod["workspace"]["root_path"].startswith("/Workspace/Users/${workspace.current_user.userName}/")
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert prod["permissions"] == [{"service_principal_name": "${var.service_principal}", "level": "CAN_MANAGE"}]
    assert prod["variables"]["service_principal"] == {"lookup": {"service_principal": "tablesmith-deployer"}}
    assert set(bundle["targets"]) == {"dev", "prod"}  # the fixture declares no provider targets


def test_each_provider_target_is_a_production_bundle_target(tmp_path):
    """A provider target of specs/project.yaml deploys with its own values: no --var to get wrong."""
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "fixture_specs", specs)
    with (specs / "project.yaml").open("a") as project_yaml:
        project_yaml.write(PROVIDER_TARGETS)
    bundle = yaml.safe_load(render_all(load_project(specs))["databricks.yml"])
    assert set(bundle["targets"]) == {"dev", "prod", "emea"}  # a central target (hub_side) runs no pipeline: no bundle target
    emea = bundle["targets"]["emea"]
    assert emea["mode"] == "production" and emea["workspace"]["host"] == "https://adb-1.azuredatabricks.net"
    assert emea["variables"] == {
        "catalog": "emea_cat", "schema": "emea_mon", "account_identifier": "acct-emea", "workspace_identifier": "ws-emea",
        "warehouse_id": {"lookup": {"warehouse": "EMEA SQL"}},
        "service_principal": {"lookup": {"service_principal": "emea-monitoring-sp"}},
    }
    assert emea["run_as"] == bundle["targets"]["prod"]["run_as"]


PROVIDER_TARGETS = """
targets:
  emea:
    role: provider
    host: https://adb-1.azuredatabricks.net
    account_identifier: acct-emea
    workspace_identifier: ws-emea
    catalog: emea_cat
    schema: emea_mon
    warehouse: EMEA SQL
    service_principal: emea-monitoring-sp
  hub_side:
    role: central
    account_identifier: acct-emea
    workspace_identifier: hub
    warehouse_id: abc123
"""


def test_pipelines_share_one_notebook_and_differ_by_schedule(outputs):
    pipelines = resources(outputs)["pipelines"]
    assert set(pipelines) == {"tablesmith_pipeline", "tablesmith_daily_pipeline"}
    for key, schedule in (("tablesmith_pipeline", "pipeline"), ("tablesmith_daily_pipeline", "daily")):
        path, pipeline = pipelines[key]
        assert resolve(path, pipeline["libraries"][0]["notebook"]["path"]) == "engine/runtime/pipeline_notebook.py"
        assert (pipeline["catalog"], pipeline["schema"]) == ("${var.catalog}", "${var.schema}")
        assert pipeline["serverless"] is True and pipeline["continuous"] is False
        assert resolve(path, pipeline["root_path"]) == "."  # the bundle root goes on sys.path
        assert pipeline["configuration"] == {
            "tablesmith.catalog": "${var.catalog}",
            "tablesmith.schema": "${var.schema}",
            "tablesmith.account_identifier": "${var.account_identifier}",
            "tablesmith.workspace_identifier": "${var.workspace_identifier}",
            "tablesmith.manifest": "${workspace.file_path}/generated/manifest.json",
            "tablesmith.schedule": schedule,
            "tablesmith.bundle_root": "${workspace.file_path}",
        }


def test_jobs(outputs):
    jobs = resources(outputs)["jobs"]
    _, refresh = jobs["tablesmith_refresh_job"]
    assert refresh["schedule"] == {"quartz_cron_expression": "${var.refresh_schedule}", "timezone_id": "UTC"}
    assert refresh["max_concurrent_runs"] == 1 and refresh["timeout_seconds"] == 3600
    assert refresh["tasks"][0]["pipeline_task"]["pipeline_id"] == "${resources.pipelines.tablesmith_pipeline.id}"
    assert refresh["tasks"][0]["max_retries"] == 2

    daily_path, daily = jobs["tablesmith_daily_job"]
    assert daily["schedule"] == {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC"}
    first, maintenance = daily["tasks"]
    assert first["pipeline_task"]["pipeline_id"] == "${resources.pipelines.tablesmith_daily_pipeline.id}"
    assert maintenance["depends_on"] == [{"task_key": first["task_key"]}]
    assert maintenance["sql_task"]["warehouse_id"] == "${var.warehouse_id}"
    assert resolve(daily_path, maintenance["sql_task"]["file"]["path"]) in outputs

    assert daily["parameters"] == [{"name": "catalog", "default": "${var.catalog}"}, {"name": "schema", "default": "${var.schema}"}]

    sharing_path, sharing = jobs["tablesmith_sharing_setup_job"]
    assert "schedule" not in sharing
    assert sharing["parameters"] == daily["parameters"]
    assert resolve(sharing_path, sharing["tasks"][0]["sql_task"]["file"]["path"]) == "generated/sql/delta_sharing_provider.sql"

    schemas_path, schemas = jobs["tablesmith_enable_system_schemas_job"]
    notebook = resolve(schemas_path, schemas["tasks"][0]["notebook_task"]["notebook_path"])
    assert outputs[notebook].startswith("# Databricks notebook source\n")
    assert "REQUIRED_SCHEMAS = (\"billing\", \"compute\", \"lakeflow\")" in outputs[notebook]
    compile(outputs[notebook], notebook, "exec")


def test_daily_pipeline_only_when_a_table_is_daily():
    outputs = render_all(load_project(REPO / "specs"))
    project = load_project(REPO / "specs")
    has_daily = any(t.schedule.value == "daily" for t in project.tables)
    assert ("generated/resources/tablesmith_daily_pipeline.yml" in outputs) == has_daily
    daily = yaml.safe_load(outputs["generated/resources/tablesmith_daily_job.yml"])["resources"]["jobs"]["tablesmith_daily_job"]
    assert [t["task_key"] for t in daily["tasks"]][-1] == "maintenance"
    assert len(daily["tasks"]) == (2 if has_daily else 1)
