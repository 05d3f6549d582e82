"""`tablesmith deploy plan|apply` end to end against the in-memory workspace (fake_databricks.py).

The SDK is configured as a user would: the target's host in specs/project.yaml, the token from
DATABRICKS_TOKEN (or a ~/.databrickscfg profile). No Spark, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.deploy import workspace as workspace_module
from engine.render.sharing import recipient_statements
from engine.spec import load_project
from tests.deploy.fake_databricks import FakeDatabricks

SHARE_PATH = "/api/2.1/unity-catalog/shares"
GOOD_ID = "aws:us-west-2:8d3c8b1e-5a3f-4c1e-9f67-2b1f0c6a7d10"
# What the pipeline builds from the specs below: streams are streaming tables, aggregates materialized views.
TABLES = {"main.monitoring.usage_bronze": "STREAMING_TABLE", "main.monitoring.daily_cost": "MATERIALIZED_VIEW",
          "main.monitoring.run_slices": "STREAMING_TABLE"}

PROJECT = """\
name: deploy_test
catalog: main
schema: monitoring
account_identifier: acme-prod
workspace_identifier: emea-analytics
shares:
  - name: monitoring_share
    comment: Monitoring tables for the central workspace
recipients:
  - name: central_platform
    sharing_identifier: "{sharing_identifier}"
    shares: [monitoring_share]
providers:
  - {{name: emea, provider: acme_emea, share: monitoring_share}}
  - {{name: us, provider: acme_us, share: monitoring_share}}
targets:
  emea:
    role: provider
    {connection}
    account_identifier: acme-prod
    workspace_identifier: emea-analytics
  central:
    role: central
    {connection}
    account_identifier: acme-prod
    workspace_identifier: central-platform
    warehouse_id: wh1
"""

USAGE = """\
name: usage_bronze
description: Billable usage records, appended as they arrive.
domain: billing
layer: bronze
pattern: stream
source: system.billing.usage
columns:
  - {{name: record_id, type: STRING, nullable: false, description: Usage record id.}}
  - {{name: workspace_id, type: STRING, nullable: false, description: Workspace id.}}
  - {{name: usage_date, type: DATE, nullable: false, description: UTC usage date.}}
  - {{name: usage_quantity, type: "DECIMAL(38,18)", nullable: false, description: Quantity.}}
keys: [record_id]
{share}
"""

DAILY = """\
name: daily_cost
description: Daily cost per workspace. One row per workspace and day.
domain: billing
layer: gold
pattern: aggregate
query: |
  SELECT workspace_id, usage_date, CAST(SUM(usage_quantity) AS DECIMAL(38,6)) AS total_cost_usd
  FROM ${{usage_bronze}}
  GROUP BY workspace_id, usage_date
columns:
  - {{name: workspace_id, type: STRING, nullable: false, description: Workspace id.}}
  - {{name: usage_date, type: DATE, nullable: false, description: UTC usage date.}}
  - {{name: total_cost_usd, type: "DECIMAL(38,6)", description: Net cost (USD).}}
keys: [workspace_id, usage_date]
{share}
"""

RUNS = """\
name: run_slices
description: Job run timeline slices.
domain: jobs
layer: bronze
pattern: stream
source: system.lakeflow.job_run_timeline
columns:
  - {{name: workspace_id, type: STRING, nullable: false, description: Workspace id.}}
  - {{name: run_id, type: STRING, nullable: false, description: Run id.}}
  - {{name: period_start_time, type: TIMESTAMP, nullable: false, description: Slice start.}}
{share}
"""

DEFAULT_SHARES = {
    "usage_bronze": "share:\n  - {share: monitoring_share, history: true}",
    "daily_cost": "share:\n  - {share: monitoring_share}",
    "run_slices": "share:\n  - {share: monitoring_share, alias: runs}",
}


def write_specs(specs: Path, url: str, *, shares: dict[str, str] | None = None, sharing_identifier: str = GOOD_ID,
                connection: str | None = None) -> Path:
    shares = {**DEFAULT_SHARES, **(shares or {})}
    (specs / "billing").mkdir(parents=True, exist_ok=True)
    (specs / "jobs").mkdir(parents=True, exist_ok=True)
    (specs / "project.yaml").write_text(PROJECT.format(sharing_identifier=sharing_identifier,
                                                       connection=connection or f"host: {url}"))
    (specs / "billing" / "usage_bronze.yaml").write_text(USAGE.format(share=shares["usage_bronze"]))
    (specs / "billing" / "daily_cost.yaml").write_text(DAILY.format(share=shares["daily_cost"]))
    (specs / "jobs" / "run_slices.yaml").write_text(RUNS.format(share=shares["run_slices"]))
    return specs


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No ambient Databricks config: only what each test sets."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.databrickscfg, no CLI token cache
    monkeypatch.setattr(workspace_module, "POLL_SECONDS", 0.01)


@pytest.fixture
def fake(clean_env, monkeypatch):
    server = FakeDatabricks(token="x").start()
    server.tables.update(TABLES)
    monkeypatch.setenv("DATABRICKS_TOKEN", "x")
    yield server
    server.stop()


@pytest.fixture
def specs(tmp_path, fake) -> Path:
    return write_specs(tmp_path / "specs", fake.url)


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def deploy(capsys, action: str, specs: Path, target: str = "emea", *extra: str) -> tuple[int, str, str]:
    return run(capsys, "deploy", action, "--target", target, "--specs", str(specs), *extra)


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == EXIT_BAD_INPUT, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


# --- provider: plan, apply, idempotency ------------------------------------------------------------

def test_plan_on_an_empty_workspace_lists_everything_and_writes_nothing(fake, specs, capsys):
    code, out, err = deploy(capsys, "plan", specs)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith("target emea (provider, acme-prod/emea-analytics)")
    assert lines[1:] == [
        "= system schema billing already enabled",
        "+ enable system schema lakeflow",
        "+ create share monitoring_share",
        "+ add materialized view main.monitoring.daily_cost to share monitoring_share as monitoring.daily_cost",
        "+ add streaming table main.monitoring.run_slices to share monitoring_share as monitoring.runs",
        "+ add streaming table main.monitoring.usage_bronze to share monitoring_share as monitoring.usage_bronze with history",
        f"+ create recipient central_platform ({GOOD_ID})",
        "+ grant SELECT on share monitoring_share to recipient central_platform",
        "plan: 7 changes: 7 to add, 0 to update, 0 to remove",
    ]
    assert fake.writes == []
    assert fake.shares == {} and fake.system_schemas["lakeflow"] == "AVAILABLE"


def test_apply_creates_everything_and_a_second_apply_changes_nothing(fake, specs, capsys):
    code, out, err = deploy(capsys, "apply", specs)
    assert code == EXIT_OK, err
    assert "+ create share monitoring_share" in out and out.rstrip().endswith("applied 7 changes: 7 added, 0 updated, 0 removed")
    assert fake.system_schemas["lakeflow"] == "ENABLE_COMPLETED"
    objects = fake.share_objects("monitoring_share")
    assert set(objects) == set(TABLES)
    usage = objects["main.monitoring.usage_bronze"]
    assert usage.history_data_sharing_status.value == "ENABLED" and usage.shared_as == "monitoring.usage_bronze"
    assert usage.comment == "Billable usage records, appended as they arrive."
    assert objects["main.monitoring.run_slices"].shared_as == "monitoring.runs"
    assert objects["main.monitoring.run_slices"].history_data_sharing_status.value == "DISABLED"
    assert objects["main.monitoring.daily_cost"].data_object_type.value == "MATERIALIZED_VIEW"
    assert objects["main.monitoring.usage_bronze"].data_object_type.value == "STREAMING_TABLE"
    assert objects["main.monitoring.run_slices"].data_object_type.value == "STREAMING_TABLE"
    assert objects["main.monitoring.daily_cost"].history_data_sharing_status is None
    assert fake.shares["monitoring_share"].comment == "Monitoring tables for the central workspace"
    recipient = fake.recipients["central_platform"]
    assert recipient.data_recipient_global_metastore_id == GOOD_ID and recipient.authentication_type.value == "DATABRICKS"
    assert fake.permissions["monitoring_share"] == {"central_platform": {"SELECT"}}

    fake.reset_log()
    code, out, err = deploy(capsys, "apply", specs)
    assert code == EXIT_OK, err
    assert out.splitlines()[1:] == ["nothing to change"]
    assert fake.writes == []
    assert fake.requests  # it did read the workspace

    code, out, _ = deploy(capsys, "plan", specs)
    assert "= recipient central_platform exists" in out
    assert "= recipient central_platform has SELECT on share monitoring_share" in out
    assert "= streaming table main.monitoring.run_slices shared as monitoring.runs" in out
    assert out.rstrip().endswith("plan: nothing to change")


def test_a_table_no_longer_in_the_specs_is_removed_from_the_share(fake, specs, capsys):
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    write_specs(specs, fake.url, shares={"daily_cost": ""})
    fake.reset_log()

    code, out, _ = deploy(capsys, "plan", specs)
    assert "- remove materialized view main.monitoring.daily_cost from share monitoring_share" in out
    assert "plan: 1 change: 0 to add, 0 to update, 1 to remove" in out
    assert fake.writes == []

    code, out, err = deploy(capsys, "apply", specs)
    assert code == EXIT_OK, err
    assert "main.monitoring.daily_cost" not in fake.share_objects("monitoring_share")
    [write] = fake.writes
    assert write.method == "PATCH" and write.path == f"{SHARE_PATH}/monitoring_share"
    assert write.body["updates"] == [{"action": "REMOVE", "data_object": {
        "name": "main.monitoring.daily_cost", "data_object_type": "MATERIALIZED_VIEW"}}]


def test_alias_and_history_changes_become_one_update(fake, specs, capsys):
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    write_specs(specs, fake.url, shares={"run_slices": "share:\n  - {share: monitoring_share, alias: job_runs, history: true}"})
    fake.reset_log()

    code, out, _ = deploy(capsys, "plan", specs)
    assert "~ alter streaming table main.monitoring.run_slices in share monitoring_share: alias monitoring.runs -> monitoring.job_runs, history on" in out
    code, out, err = deploy(capsys, "apply", specs)
    assert code == EXIT_OK, err
    [write] = fake.writes
    [update] = write.body["updates"]
    assert update["action"] == "UPDATE"
    assert update["data_object"]["shared_as"] == "monitoring.job_runs"
    assert update["data_object"]["history_data_sharing_status"] == "ENABLED"
    shared = fake.share_objects("monitoring_share")["main.monitoring.run_slices"]
    assert shared.shared_as == "monitoring.job_runs" and shared.history_data_sharing_status.value == "ENABLED"
    fake.reset_log()
    assert deploy(capsys, "apply", specs)[1].splitlines()[1:] == ["nothing to change"]
    assert fake.writes == []


def test_an_object_added_by_hand_is_removed_and_a_changed_comment_is_updated(fake, specs, capsys):
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    fake.tables["main.monitoring.scratch"] = "MANAGED"
    from databricks.sdk.service.sharing import SharedDataObject, SharedDataObjectDataObjectType

    fake.shares["monitoring_share"].objects.append(SharedDataObject(
        name="main.monitoring.scratch", data_object_type=SharedDataObjectDataObjectType.TABLE))
    fake.share_objects("monitoring_share")["main.monitoring.daily_cost"].comment = "edited by hand"
    code, out, _ = deploy(capsys, "plan", specs)
    assert "- remove table main.monitoring.scratch from share monitoring_share" in out
    assert "~ alter materialized view main.monitoring.daily_cost in share monitoring_share: comment" in out


def test_the_workspace_refuses_a_share_type_that_is_not_the_tables_type(fake, specs, capsys):
    """The service checks the data object type against the table; so does the fake."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import BadRequest
    from databricks.sdk.service.sharing import (
        SharedDataObject,
        SharedDataObjectDataObjectType,
        SharedDataObjectUpdate,
        SharedDataObjectUpdateAction,
    )

    client = WorkspaceClient(host=fake.url, token="x")
    client.shares.create("scratch_share")
    for name, wrong in (("main.monitoring.usage_bronze", SharedDataObjectDataObjectType.TABLE),
                        ("main.monitoring.daily_cost", SharedDataObjectDataObjectType.TABLE),
                        ("main.monitoring.daily_cost", SharedDataObjectDataObjectType.STREAMING_TABLE)):
        update = SharedDataObjectUpdate(action=SharedDataObjectUpdateAction.ADD,
                                        data_object=SharedDataObject(name=name, data_object_type=wrong))
        with pytest.raises(BadRequest, match="cannot be shared as data object type"):
            client.shares.update("scratch_share", updates=[update])
    assert fake.share_objects("scratch_share") == {}

    # A table whose spec says stream but which is a plain table in the workspace: apply says so.
    fake.tables["main.monitoring.usage_bronze"] = "MANAGED"
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "updating share monitoring_share (add main.monitoring.usage_bronze) failed",
                          "is a MANAGED and cannot be shared as data object type STREAMING_TABLE")


def test_an_overridden_location_is_named_by_the_plan_and_by_the_sharing_job(fake, tmp_path, capsys):
    """A provider writing to another catalog/schema shares its own tables, under the names the central
    workspace reads; the bundle target of the same name passes that location to the sharing job."""
    from tests import bundle_config

    specs = write_specs(tmp_path / "specs", fake.url,
                        connection=f"host: {fake.url}\n    catalog: ops_cat\n    schema: mon_emea")
    fake.tables.clear()
    fake.tables.update({name.replace("main.monitoring.", "ops_cat.mon_emea."): kind for name, kind in TABLES.items()})

    code, out, err = deploy(capsys, "plan", specs)
    assert code == EXIT_OK, err
    assert out.splitlines()[0].endswith(": ops_cat.mon_emea")
    assert "+ add streaming table ops_cat.mon_emea.usage_bronze to share monitoring_share as monitoring.usage_bronze with history" in out
    assert "+ add materialized view ops_cat.mon_emea.daily_cost to share monitoring_share as monitoring.daily_cost" in out
    assert "main.monitoring" not in out
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    shared = fake.share_objects("monitoring_share")
    assert {name: o.shared_as for name, o in shared.items()} == {
        "ops_cat.mon_emea.usage_bronze": "monitoring.usage_bronze", "ops_cat.mon_emea.daily_cost": "monitoring.daily_cost",
        "ops_cat.mon_emea.run_slices": "monitoring.runs"}

    (tmp_path / "engine").symlink_to(Path(__file__).resolve().parents[2] / "engine")
    assert run(capsys, "generate", "--specs", str(specs))[0] == EXIT_OK
    emea = bundle_config.resolve(bundle_config.for_target(bundle_config.load(tmp_path), "emea"))
    job = emea["resources"]["jobs"]["tablesmith_sharing_setup_job"]
    parameters = {p["name"]: p["default"] for p in job["parameters"]}
    assert parameters == {"catalog": "ops_cat", "schema": "mon_emea"}
    assert {(p["catalog"], p["schema"]) for p in emea["resources"]["pipelines"].values()} == {("ops_cat", "mon_emea")}
    # The job's SQL file, with those parameters, adds exactly the objects the plan added.
    provider_sql = (tmp_path / "generated/sql/delta_sharing_provider.sql").read_text()
    for name, value in parameters.items():
        provider_sql = provider_sql.replace("{{" + name + "}}", value)
    added = set(re.findall(r"^ALTER SHARE `monitoring_share` ADD (?:TABLE|MATERIALIZED VIEW|VIEW) `(\w+)`\.`(\w+)`\.`(\w+)`",
                           provider_sql, flags=re.M))
    assert {".".join(parts) for parts in added} == set(shared)


def test_system_schema_enable_calls_the_metastore_endpoint(fake, specs, capsys):
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    [enable] = [w for w in fake.writes if w.method == "PUT"]
    assert enable.path == f"/api/2.1/unity-catalog/metastores/{fake.metastore_id}/systemschemas/lakeflow"


def test_a_schema_being_enabled_is_not_enabled_again(fake, specs, capsys):
    fake.system_schemas["lakeflow"] = "ENABLE_INITIALIZED"
    code, out, _ = deploy(capsys, "plan", specs)
    assert "= system schema lakeflow being enabled (ENABLE_INITIALIZED)" in out


def test_profile_from_databrickscfg(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DATABRICKS_TOKEN")
    config = tmp_path / "databrickscfg"
    config.write_text(f"[acme-emea]\nhost = {fake.url}\ntoken = x\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    specs = write_specs(tmp_path / "specs", fake.url, connection="profile: acme-emea")
    code, out, err = deploy(capsys, "plan", specs)
    assert code == EXIT_OK, err
    assert "at profile acme-emea" in out.splitlines()[0]


# --- central -----------------------------------------------------------------------------------------

def test_central_plan_lists_the_recipient_statements_and_apply_runs_them(fake, specs, capsys):
    statements = recipient_statements(load_project(specs))
    code, out, err = deploy(capsys, "plan", specs, "central")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith("target central (central, acme-prod/central-platform)") and "warehouse wh1" in lines[0]
    assert lines[1] == "+ run CREATE CATALOG IF NOT EXISTS `emea_monitoring` USING SHARE `acme_emea`.`monitoring_share`"
    assert len(lines) == len(statements) + 2
    assert fake.statements == [] and fake.writes == []

    fake.running_polls = 1  # each statement reports RUNNING once: apply polls until it succeeds
    code, out, err = deploy(capsys, "apply", specs, "central")
    assert code == EXIT_OK, err
    assert fake.statements == statements
    assert any("CREATE OR REPLACE VIEW `monitoring_central`.`consolidated`.`all_workspaces_daily_cost`" in s for s in statements)
    assert {w.body["warehouse_id"] for w in fake.writes} == {"wh1"}


def test_central_warehouse_flag_overrides_the_target(fake, specs, capsys):
    fake.warehouses.add("wh2")
    code, out, err = deploy(capsys, "apply", specs, "central", "--warehouse-id", "wh2")
    assert code == EXIT_OK, err
    assert {w.body["warehouse_id"] for w in fake.writes} == {"wh2"}


def test_central_statement_failure(fake, specs, capsys):
    fake.failing_statements["USING SHARE `acme_us`"] = "[NO_SUCH_PROVIDER] Provider acme_us does not exist."
    code, out, err = deploy(capsys, "apply", specs, "central")
    assert_one_line_error(code, err, "statement failed on warehouse wh1: [NO_SUCH_PROVIDER] Provider acme_us does not exist.",
                          "CREATE CATALOG IF NOT EXISTS `us_monitoring`")
    assert len(fake.statements) == 2  # stopped at the failing one


def test_central_unknown_warehouse(fake, specs, capsys):
    code, _, err = deploy(capsys, "apply", specs, "central", "--warehouse-id", "nope")
    assert_one_line_error(code, err, "SQL warehouse nope not found")


# --- errors: one line, exit 2 ------------------------------------------------------------------------

def test_unknown_target_lists_known_ones(fake, specs, capsys):
    code, _, err = deploy(capsys, "plan", specs, "staging")
    assert_one_line_error(code, err, "unknown target 'staging'; known targets: central, emea")


def test_bad_token_is_not_authenticated(fake, specs, capsys, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "expired")
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, f"not authenticated to {fake.url} (target emea)", "databricks auth login")


def test_no_credentials_at_all(fake, specs, capsys, monkeypatch):
    monkeypatch.delenv("DATABRICKS_TOKEN")
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "not authenticated: no usable Databricks credentials for target emea")
    assert fake.requests == []


def test_missing_profile(fake, tmp_path, capsys):
    specs = write_specs(tmp_path / "specs", fake.url, connection="profile: nowhere")
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "not authenticated", "--profile nowhere")


def test_create_share_needs_create_share(fake, specs, capsys):
    fake.fail("POST", SHARE_PATH, 403, "PERMISSION_DENIED", "User does not have CREATE SHARE on Metastore 'fake'.")
    code, out, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "permission denied creating share monitoring_share: needs CREATE SHARE on the metastore")
    assert out.splitlines()[-1] == "+ create share monitoring_share"  # the failing change is the last line printed


def test_create_recipient_needs_create_recipient(fake, specs, capsys):
    fake.fail("POST", "/api/2.1/unity-catalog/recipients", 403, "PERMISSION_DENIED",
              "User does not have CREATE RECIPIENT on Metastore 'fake'.")
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "permission denied creating recipient central_platform: needs CREATE RECIPIENT on the metastore")


def test_a_shared_table_that_does_not_exist_yet(fake, specs, capsys):
    del fake.tables["main.monitoring.daily_cost"]
    for action in ("plan", "apply"):
        code, _, err = deploy(capsys, action, specs)
        assert_one_line_error(code, err, "table main.monitoring.daily_cost does not exist: run the pipeline first")
    assert fake.writes == []


def test_a_table_dropped_between_plan_and_add(fake, specs, capsys):
    fake.fail("PATCH", f"{SHARE_PATH}/monitoring_share", 404, "TABLE_DOES_NOT_EXIST",
              "Table 'main.monitoring.daily_cost' does not exist.")
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "table main.monitoring.daily_cost does not exist: run the pipeline first")


def test_unknown_recipient_sharing_identifier(fake, tmp_path, capsys):
    bad = "aws:us-west-2:00000000-0000-0000-0000-000000000000"
    specs = write_specs(tmp_path / "specs", fake.url, sharing_identifier=bad)
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, f"recipient central_platform: sharing identifier {bad} was not accepted",
                          "Invalid sharing identifier", "SELECT CURRENT_METASTORE()")
    assert "central_platform" not in fake.recipients


def test_an_existing_recipient_with_another_identifier(fake, specs, capsys):
    assert deploy(capsys, "apply", specs)[0] == EXIT_OK
    fake.recipients["central_platform"].data_recipient_global_metastore_id = "aws:us-east-1:11111111-2222-3333-4444-555555555555"
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "recipient central_platform exists with sharing identifier aws:us-east-1:")


def test_a_system_schema_that_cannot_be_enabled(fake, specs, capsys):
    fake.system_schemas["lakeflow"] = "UNAVAILABLE"
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "system schema lakeflow cannot be enabled: its state is UNAVAILABLE")


def test_a_system_schema_the_metastore_does_not_offer(fake, specs, capsys):
    del fake.system_schemas["lakeflow"]
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "system schema lakeflow cannot be enabled: this metastore does not offer it")


def test_enabling_a_system_schema_rejected_by_the_api(fake, specs, capsys):
    fake.fail("PUT", r".*/systemschemas/lakeflow", 400, "INVALID_PARAMETER_VALUE", "lakeflow is not supported in this region.")
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "system schema lakeflow cannot be enabled: lakeflow is not supported in this region.")


def test_enabling_a_system_schema_needs_an_admin(fake, specs, capsys):
    fake.fail("PUT", r".*/systemschemas/lakeflow", 403, "PERMISSION_DENIED", "Only metastore admins can enable system schemas.")
    code, _, err = deploy(capsys, "apply", specs)
    assert_one_line_error(code, err, "permission denied enabling system schema lakeflow: needs a metastore admin or account admin")


def test_an_invalid_target_in_project_yaml_is_a_spec_error(fake, tmp_path, capsys):
    specs = write_specs(tmp_path / "specs", fake.url, connection="role_typo: provider")
    code, _, err = deploy(capsys, "plan", specs)
    assert code == EXIT_BAD_INPUT
    assert "unknown key 'role_typo'" in err and "Traceback" not in err


def test_apply_requires_a_target(capsys):
    assert main(["deploy", "apply"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Missing option '--target'" in err and "Traceback" not in err


def test_an_unreachable_host_fails_fast_naming_host_and_target(clean_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "x")
    specs = write_specs(tmp_path / "specs", "https://127.0.0.1:9")  # nothing listens on port 9
    started = time.monotonic()
    code, _, err = deploy(capsys, "plan", specs)
    assert time.monotonic() - started < 30
    assert_one_line_error(code, err, "https://127.0.0.1:9", "emea")


def test_a_plain_http_host_is_refused_before_any_request(clean_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "secret-token")
    specs = write_specs(tmp_path / "specs", "http://adb-123.azuredatabricks.net")
    code, _, err = deploy(capsys, "plan", specs)
    assert_one_line_error(code, err, "http://adb-123.azuredatabricks.net", "emea", "https")
    assert "secret-token" not in err
