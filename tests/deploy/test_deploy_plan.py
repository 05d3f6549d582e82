"""The pure parts of deploy: targets from settings, desired state from specs, the diff."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.deploy.plan import (
    ActualObject,
    Kind,
    ProviderDesired,
    ProviderState,
    RecipientSpec,
    SharedObjectSpec,
    provider_plan,
)
from engine.deploy.targets import Role, Target, for_target, parse_targets, select_target
from engine.errors import UserError
from engine.render.viewmodel import sql_ident, sql_string
from engine.spec.model import Project, ProjectSettings

REPO = Path(__file__).parent.parent.parent


def settings(**targets) -> ProjectSettings:
    return ProjectSettings(name="p", catalog="main", schema="monitoring", account_identifier="a", workspace_identifier="w",
                           targets=MappingProxyType(targets))


def desired(*objects: SharedObjectSpec, schemas=("billing",)) -> ProviderDesired:
    return ProviderDesired(system_schemas=schemas, shares=(("s", ""),), objects=objects,
                           recipients=(RecipientSpec("r", "aws:x:1"),), grants=(("s", "r"),))


def state(*objects: ActualObject, **overrides) -> ProviderState:
    values = dict(system_schemas={"billing": "ENABLE_COMPLETED"}, shares={"s": objects}, recipients={"r": "aws:x:1"},
                  grants=frozenset({("s", "r")}), missing_tables=frozenset())
    values.update(overrides)
    return ProviderState(**values)


TABLE = SharedObjectSpec("s", "main.monitoring.t", "TABLE", "monitoring.t", history=True, comment="T.")


def test_targets_parse_select_and_override():
    project = Project(settings(emea={"role": "provider", "account_identifier": "acme", "workspace_identifier": "emea",
                                     "catalog": "prod", "profile": "p"},
                               hub={"role": "central", "account_identifier": "acme", "workspace_identifier": "hub",
                                    "catalog": "hub_cat", "warehouse_id": "wh"}), (), "specs")
    targets = parse_targets(project.settings.targets)
    assert targets["emea"] == Target("emea", Role.PROVIDER, "acme", "emea", profile="p", catalog="prod")
    emea = select_target(project, "emea")
    provider = for_target(project, emea).settings
    # Where the pipeline wrote the tables is the target's location; the project's schema stays the
    # name recipients see, so the settings keep it.
    assert emea.location(project) == ("prod", "monitoring")
    assert (provider.catalog, provider.schema, provider.workspace_identifier) == ("main", "monitoring", "emea")
    central = for_target(project, select_target(project, "hub")).settings
    assert (central.central_catalog, central.catalog) == ("hub_cat", "main")
    with pytest.raises(UserError, match="unknown target 'x'; known targets: emea, hub"):
        select_target(project, "x")


def test_no_targets_says_how_to_add_them():
    with pytest.raises(UserError, match="known targets: none"):
        select_target(Project(settings(), (), "specs"), "emea")


def test_in_sync_is_all_keep():
    plan = provider_plan("t", desired(TABLE), state(ActualObject("main.monitoring.t", "TABLE", "monitoring.t", True, "T.")))
    assert plan.changes == () and plan.summary() == "nothing to change"
    assert all(step.line.startswith("= ") for step in plan.steps)


def test_streaming_table_type_and_default_alias_count_as_equal():
    actual = ActualObject("main.monitoring.t", "STREAMING_TABLE", None, True, "T.")
    assert provider_plan("t", desired(TABLE), state(actual)).changes == ()


def test_a_changed_kind_is_removed_then_added():
    actual = ActualObject("main.monitoring.t", "VIEW", "monitoring.t", None, "T.")
    plan = provider_plan("t", desired(TABLE), state(actual))
    assert [c.kind for c in plan.changes] == [Kind.REMOVE_OBJECT, Kind.ADD_OBJECT]
    assert plan.changes[0].line == "- remove view main.monitoring.t from share s (now a table)"


def test_history_is_not_compared_for_materialized_views():
    mv = SharedObjectSpec("s", "main.monitoring.mv", "MATERIALIZED_VIEW", "monitoring.mv", history=None)
    actual = ActualObject("main.monitoring.mv", "MATERIALIZED_VIEW", "monitoring.mv", False)
    assert provider_plan("t", desired(mv), state(actual)).changes == ()


def test_removals_come_before_additions_in_a_share():
    actual = ActualObject("main.monitoring.old", "TABLE", "monitoring.t", False)
    plan = provider_plan("t", desired(TABLE), state(actual))
    assert [c.kind for c in plan.changes] == [Kind.REMOVE_OBJECT, Kind.ADD_OBJECT]
    assert plan.summary() == "2 changes: 1 to add, 0 to update, 1 to remove"


def test_missing_tables_are_listed_together():
    with pytest.raises(UserError, match=r"^tables main.monitoring.a, main.monitoring.b do not exist: run the pipeline first$"):
        provider_plan("t", desired(TABLE), state(missing_tables=frozenset({"main.monitoring.b", "main.monitoring.a"})))


def test_schema_states():
    plan = provider_plan("t", desired(TABLE, schemas=("billing", "lakeflow", "query")),
                         state(system_schemas={"billing": "MANAGED", "lakeflow": "", "query": "ENABLE_INITIALIZED"}, shares={}))
    lines = [s.line for s in plan.steps if s.subject in ("billing", "lakeflow", "query")]
    assert lines == ["= system schema billing already enabled (managed by Databricks)", "+ enable system schema lakeflow",
                     "= system schema query being enabled (ENABLE_INITIALIZED)"]
    with pytest.raises(UserError, match="system schema query cannot be enabled: its state is UNAVAILABLE"):
        provider_plan("t", desired(TABLE, schemas=("query",)), state(system_schemas={"query": "UNAVAILABLE"}))


def test_the_example_targets_in_specs_project_yaml_match_the_schema():
    schema = json.loads((REPO / "engine/spec/schemas/project.schema.json").read_text())
    doc = yaml.safe_load((REPO / "specs/project.yaml").read_text())
    Draft202012Validator(schema).validate(doc)
    targets = parse_targets(doc["targets"])
    assert {t.role for t in targets.values()} == {Role.PROVIDER, Role.CENTRAL}
    assert all(t.warehouse_id for t in targets.values() if t.role is Role.CENTRAL)


@pytest.mark.parametrize("bad", [
    {"role": "hub", "account_identifier": "a", "workspace_identifier": "w"},
    {"role": "provider", "account_identifier": "a"},
    {"role": "provider", "account_identifier": "a", "workspace_identifier": "w", "host": "adb-1.azuredatabricks.net"},
    {"role": "provider", "account_identifier": "a", "workspace_identifier": "w", "warehouse": ""},
    {"role": "provider", "account_identifier": "a", "workspace_identifier": "w", "service_principal_name": "x"},
])
def test_schema_rejects_bad_targets(bad):
    schema = json.loads((REPO / "engine/spec/schemas/project.schema.json").read_text())
    doc = {"catalog": "c", "schema": "s", "account_identifier": "a", "workspace_identifier": "w", "targets": {"t": bad}}
    assert list(Draft202012Validator(schema).iter_errors(doc))


def test_dev_is_not_a_target_name():
    """Provider targets become bundle targets of the same name; `dev` is the bundle's per-developer one."""
    schema = json.loads((REPO / "engine/spec/schemas/project.schema.json").read_text())
    target = {"role": "provider", "account_identifier": "a", "workspace_identifier": "w"}
    doc = {"catalog": "c", "schema": "s", "account_identifier": "a", "workspace_identifier": "w", "targets": {"dev": target}}
    assert list(Draft202012Validator(schema).iter_errors(doc))
    doc["targets"] = {"devel": target}
    assert not list(Draft202012Validator(schema).iter_errors(doc))
