"""The generated bundle against Databricks' own models: every target would pass `bundle validate`.

Every file under generated/resources/ (whoever renders it) is loaded with databricks.yml, each target
is merged the way the CLI merges it (tests/bundle_config.py), and every resource is built with the
typed models of the `databricks-bundles` package, which reject unknown and misspelt fields. Every
${var.*} must have a value in every target without --var, and every other reference must name
something that exists.
"""

from __future__ import annotations

import copy
import fnmatch
import posixpath
import re
import shutil
from pathlib import Path

import pytest
import yaml
from databricks.bundles.jobs import Job
from databricks.bundles.pipelines import Pipeline
from packaging.specifiers import SpecifierSet

from engine.cli import EXIT_OK, main
from tests import bundle_config as bc

HERE = Path(__file__).parent
REPO = HERE.parent.parent
ALERTS_SINCE = "0.279.0"  # databricks/cli CHANGELOG, Release v0.279.0: "Add support for alerts to DABs"


@pytest.fixture(scope="module")
def repo_bundle() -> bc.Bundle:
    return bc.load(REPO)


@pytest.fixture(scope="module")
def fixture_bundle(tmp_path_factory) -> bc.Bundle:
    """The render fixture's project with provider targets, generated into a scratch root."""
    root = tmp_path_factory.mktemp("fixture_bundle")
    shutil.copytree(HERE / "fixture_specs", root / "specs")
    (root / "engine").symlink_to(REPO / "engine")  # the notebook the pipelines run
    with (root / "specs" / "project.yaml").open("a") as project_yaml:
        project_yaml.write(PROVIDER_TARGETS)
    assert main(["generate", "--specs", str(root / "specs")]) == EXIT_OK
    return bc.load(root)


PROVIDER_TARGETS = """
targets:
  emea:
    role: provider
    host: https://adb-1.azuredatabricks.net
    account_identifier: acct-emea
    workspace_identifier: ws-emea
    catalog: emea_cat
    schema: emea_mon
    warehouse_id: 0123456789abcdef
    service_principal: emea-monitoring-sp
  us:
    role: provider
    account_identifier: acct-us
    workspace_identifier: ws-us
  hub:
    role: central
    account_identifier: acct-emea
    workspace_identifier: hub
    warehouse_id: abc123
"""


def bundles(repo_bundle, fixture_bundle):
    return {"repo": repo_bundle, "fixture": fixture_bundle}


@pytest.fixture(params=["repo", "fixture"])
def bundle(request, repo_bundle, fixture_bundle) -> bc.Bundle:
    return bundles(repo_bundle, fixture_bundle)[request.param]


def each_target(bundle: bc.Bundle):
    for target in sorted(bundle.config["targets"]):
        yield target, bc.for_target(bundle, target)


# --- every file, every resource, every target ------------------------------------------------------

def test_every_resource_file_is_included(bundle):
    on_disk = {p.relative_to(bundle.root).as_posix() for p in (bundle.root / "generated/resources").rglob("*") if p.is_file()}
    assert on_disk, "no resource files"
    assert on_disk <= set(bundle.files), f"not matched by databricks.yml include: {sorted(on_disk - set(bundle.files))}"
    for relative in on_disk:
        assert set(bundle.files[relative]) <= {"resources", "variables"}, relative


def test_configuration_outside_resources_uses_only_cli_fields(bundle):
    assert bc.check_structure(bundle.config) == []


def test_every_resource_of_every_target_builds_with_the_typed_models(bundle):
    for target, config in each_target(bundle):
        built, problems = bc.typed_resources(config)
        assert problems == [], f"target {target}:\n" + "\n".join(problems)
        resolved, problems = bc.typed_resources(bc.resolve(config))
        assert problems == [], f"target {target}, references resolved:\n" + "\n".join(problems)
        assert {kind for kind, _ in built} >= {"jobs", "pipelines"}


def test_every_variable_has_a_value_in_every_target_without_var(bundle):
    for target, config in each_target(bundle):
        values, problems = bc.variable_values(config)
        assert problems == [], f"target {target}: " + "\n".join(problems)
        assert bc.reference_problems(config) == [], f"target {target}"


def test_references_have_known_shapes(repo_bundle):
    config = bc.for_target(repo_bundle, "prod")
    refs = {ref.split(".")[0] for _, ref in bc.references(config)}
    assert refs == {"var", "resources", "workspace", "bundle"}
    broken = copy.deepcopy(config)
    jobs = broken["resources"]["jobs"]
    job = jobs["tablesmith_refresh_job"]
    job["tasks"][0]["pipeline_task"]["pipeline_id"] = "${resources.pipelines.tablesmith_pipelin.id}"
    job["name"] = "${var.nme}-${workspace.current_user.nickname}-${bundel.name}"
    job["description"] = "${resources.pipelines.tablesmith_pipeline.idd}"
    problems = "\n".join(bc.reference_problems(broken))
    for fragment in ("tablesmith_pipelin.id} names no resource", "${var.nme} names no declared variable",
                     "nickname} is not a workspace field", "${bundel.name} is not a known kind",
                     "Pipeline has no field idd"):
        assert fragment in problems


def test_cli_version_admits_the_first_cli_with_alerts_and_nothing_older(repo_bundle):
    constraint = repo_bundle.config["bundle"]["databricks_cli_version"]
    assert bc.CLI_VERSION_CONSTRAINT.match(constraint)
    spec = SpecifierSet(constraint.replace(" ", ""))
    assert ALERTS_SINCE in spec and "1.13.0" in spec and "0.278.0" not in spec


# --- the typed models are strict: a misspelt key is rejected ---------------------------------------

def _first(config, kind):
    return next(iter(config["resources"][kind].items()))


@pytest.mark.parametrize("mutate, fragment", [
    (lambda job: job.__setitem__("max_concurent_runs", 1), "max_concurent_runs"),
    (lambda job: job["tasks"][0]["pipeline_task"].__setitem__("full_refesh", False), "full_refesh"),
    (lambda job: job["schedule"].__setitem__("timezone", "UTC"), "timezone"),
    (lambda job: job["schedule"].__setitem__("pause_status", "SOMETIMES"), "SOMETIMES"),
])
def test_a_misspelt_job_field_is_rejected(repo_bundle, mutate, fragment):
    job = copy.deepcopy(bc.for_target(repo_bundle, "prod")["resources"]["jobs"]["tablesmith_refresh_job"])
    Job.from_dict(copy.deepcopy(job))  # as generated: accepted
    mutate(job)
    with pytest.raises(ValueError, match=fragment):
        Job.from_dict(job)


def test_misspelt_fields_are_reported_for_every_resource_kind(repo_bundle):
    config = bc.for_target(repo_bundle, "dev")
    for kind in config["resources"]:
        broken = copy.deepcopy(config)
        key, value = _first(broken, kind)
        value["colour"] = "blue"
        _, problems = bc.typed_resources(broken)
        assert [p for p in problems if p.startswith(f"resources.{kind}.{key}: ") and "colour" in p], kind
    broken = copy.deepcopy(config)
    broken["resources"]["pipelines"]["tablesmith_pipeline"]["librarys"] = []
    with pytest.raises(ValueError, match="librarys"):
        Pipeline.from_dict(broken["resources"]["pipelines"]["tablesmith_pipeline"])


def test_misspelt_fields_outside_resources_are_rejected(repo_bundle):
    broken = copy.deepcopy(repo_bundle.config)
    broken["targets"]["prod"]["run_as"] = {"service_principle_name": "x"}
    broken["targets"]["prod"]["workspace"]["rootpath"] = "/x"
    broken["variables"]["warehouse_id"]["lookup"] = {"sql_warehouse": "x"}
    broken["targets"]["dev"]["variables"]["catalogue"] = "x"
    broken["permissions"] = [{"group_name": "users", "level": "CAN_WRITE"}]
    problems = "\n".join(bc.check_structure(broken))
    for fragment in ("targets.prod.run_as", "targets.prod.workspace.rootpath: unknown field",
                     "variables.warehouse_id.lookup.sql_warehouse: unknown field",
                     "targets.dev.variables.catalogue: variable has not been defined", "permissions[0].level"):
        assert fragment in problems


def test_a_variable_without_default_or_lookup_needs_var(repo_bundle):
    broken = copy.deepcopy(repo_bundle)
    broken.config["variables"]["warehouse_id"] = {"description": "no default, no lookup"}
    _, problems = bc.variable_values(bc.for_target(broken, "dev"))
    assert problems == ["variables.warehouse_id: no value assigned to required variable warehouse_id (it would need --var warehouse_id=...)"]


# --- what the targets promise ------------------------------------------------------------------

def pipeline_locations(config: dict) -> set[tuple[str, str]]:
    return {(p["catalog"], p["schema"]) for p in config["resources"]["pipelines"].values()}


def test_dev_isolates_each_developer_from_every_production_target(bundle):
    alice, bob = bc.User("alice@example.com", "alice"), bc.User("bob.jones@example.com", "bob_jones")
    dev = bc.for_target(bundle, "dev")
    alice_dev, bob_dev = bc.resolve(dev, alice), bc.resolve(dev, bob)
    assert pipeline_locations(alice_dev).isdisjoint(pipeline_locations(bob_dev))
    for target, config in each_target(bundle):
        if config["bundle"]["mode"] == "production":
            assert pipeline_locations(bc.resolve(config, alice)).isdisjoint(pipeline_locations(alice_dev)), target
    # The developer's schema is created by the bundle, in the catalog the pipelines write to.
    (schema,) = alice_dev["resources"]["schemas"].values()
    assert {(schema["catalog_name"], schema["name"])} == pipeline_locations(alice_dev)
    assert alice_dev["bundle"]["mode"] == "development" and "run_as" not in alice_dev
    assert "root_path" not in alice_dev.get("workspace", {})  # development: ~/.bundle/<name>/dev, per user


def test_production_targets_run_as_a_service_principal_from_a_root_only_it_can_write(bundle):
    production = [(t, c) for t, c in each_target(bundle) if c["bundle"]["mode"] == "production"]
    assert {t for t, _ in production} >= {"prod"}
    for target, config in production:
        raw = bundle.config["targets"][target]
        # validate_target_mode.go: production must set workspace.root_path explicitly.
        assert raw["workspace"]["root_path"].startswith("/Workspace/Users/${workspace.current_user.userName}/"), target
        assert not any(p.get("development") for p in config["resources"]["pipelines"].values())
        assert set(config["run_as"]) == {"service_principal_name"}
        assert config["run_as"]["service_principal_name"] == "${var.service_principal}"
        lookup = config["variables"]["service_principal"]
        assert lookup["default"] is None and set(lookup["lookup"]) == {"service_principal"}, target
        # Nobody but the service principal may manage (and so write) the deployed root and resources.
        assert config["permissions"] == [{"service_principal_name": "${var.service_principal}", "level": "CAN_MANAGE"}]
        resolved = bc.resolve(config, bc.User("4f1b2c3d-app-id", "4f1b2c3d-app-id"))
        assert resolved["workspace"]["root_path"].startswith("/Workspace/Users/4f1b2c3d-app-id/.bundle/")
        assert not resolved["workspace"]["root_path"].startswith("/Workspace/Shared")


def test_every_pipeline_has_the_bundle_root_as_root_path(bundle):
    for relative, document in bundle.files.items():
        for key, pipeline in (document.get("resources") or {}).get("pipelines", {}).items():
            root = posixpath.normpath(posixpath.join(posixpath.dirname(relative), pipeline["root_path"]))
            assert root == ".", f"{relative}: {key}"


def test_local_paths_exist_and_are_synced(bundle):
    """Relative paths in resources point at files the bundle syncs (the CLI translates them)."""
    sync = bundle.config["sync"]["include"]
    for relative, document in bundle.files.items():
        for _, path in _local_paths(document.get("resources") or {}):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), path))
            assert (bundle.root / target).exists(), f"{relative}: {path}"
            if target != ".":  # the root itself is the sync root
                assert any(fnmatch.fnmatch(target, pattern) for pattern in sync), f"{target} is not synced"


def _local_paths(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _local_paths(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _local_paths(item, key)
    elif isinstance(value, str) and key in {"path", "notebook_path", "root_path"} and value.startswith("."):
        yield key, value


def test_sql_files_use_only_the_parameters_their_job_passes(bundle):
    """A SQL file task substitutes {{name}} from the job's (and task's) parameters; none is left over."""
    seen = 0
    for relative, document in bundle.files.items():
        for key, job in (document.get("resources") or {}).get("jobs", {}).items():
            passed = {p["name"] for p in job.get("parameters", ())}
            for task in job["tasks"]:
                sql_file = (task.get("sql_task") or {}).get("file")
                if not sql_file:
                    continue
                seen += 1
                text = (bundle.root / posixpath.normpath(posixpath.join(posixpath.dirname(relative), sql_file["path"]))).read_text()
                used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
                assert used <= passed | set(task["sql_task"].get("parameters", {})), f"{key}.{task['task_key']}: {sorted(used - passed)}"
    assert seen >= 2


# --- sharing follows the target --------------------------------------------------------------------

def job_parameters(config: dict, job: str) -> dict[str, str]:
    return {p["name"]: p["default"] for p in config["resources"]["jobs"][job]["parameters"]}


def test_each_target_shares_and_maintains_its_own_location(fixture_bundle):
    for target, config in each_target(fixture_bundle):
        resolved = bc.resolve(config, bc.User("alice@example.com", "alice"))
        (location,) = pipeline_locations(resolved)
        for job in ("tablesmith_sharing_setup_job", "tablesmith_daily_job"):
            assert job_parameters(resolved, job) == {"catalog": location[0], "schema": location[1]}, (target, job)
    emea = bc.resolve(bc.for_target(fixture_bundle, "emea"))
    assert job_parameters(emea, "tablesmith_sharing_setup_job") == {"catalog": "emea_cat", "schema": "emea_mon"}
    us = bc.resolve(bc.for_target(fixture_bundle, "us"))
    assert job_parameters(us, "tablesmith_sharing_setup_job") == {"catalog": "fixture_cat", "schema": "mon"}
    assert emea["resources"]["jobs"]["tablesmith_sharing_setup_job"]["tasks"][0]["sql_task"]["warehouse_id"] == "0123456789abcdef"
    assert emea["run_as"] == {"service_principal_name": "<lookup service_principal: emea-monitoring-sp>"}
    assert us["run_as"] == {"service_principal_name": "<lookup service_principal: tablesmith-deployer>"}


def test_alert_destinations_are_looked_up_by_name(repo_bundle):
    config = bc.resolve(bc.for_target(repo_bundle, "prod"))
    alerts = config["resources"]["alerts"]
    destinations = {key: [s for s in a["evaluation"]["notification"]["subscriptions"] if "destination_id" in s]
                    for key, a in alerts.items()}
    assert destinations["tablesmith_alert_p1_job_failure"] == [
        {"destination_id": "<lookup notification_destination: Data platform on-call (Slack)>"}]
    assert destinations["tablesmith_alert_cost_attribution_below_target"] == []  # email: no destination
    raw = yaml.safe_load((REPO / "generated/resources/tablesmith_alerts.yml").read_text())
    assert all(set(v) == {"description", "lookup"} and set(v["lookup"]) == {"notification_destination"}
               for v in raw["variables"].values())
