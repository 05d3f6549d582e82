"""Which tables a re-run refreshes: pure planning over fingerprints (no Spark)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.runtime.refresh import RunState, plan_refresh, spec_fingerprint
from engine.spec import load_project
from engine.spec.model import Schedule

SPECS = Path(__file__).parent / "specs"


def _state(project, sources, **changes):
    specs = {t.name: spec_fingerprint(t) for t in project.tables}
    specs.update(changes)
    return RunState(sources=sources, specs=specs, daily_built_on="2026-11-22")


def test_first_run_refreshes_everything():
    project = load_project(SPECS)
    plan = plan_refresh(project, project.table_names, None, _state(project, {}), "2026-11-22")
    assert plan.tables is None


def test_new_source_files_refresh_their_readers_and_everything_downstream():
    project = load_project(SPECS)
    before = {"system.billing.usage": "a", "system.billing.list_prices": "p", "system.lakeflow.jobs": "j",
              "system.access.workspaces_latest": "w"}
    after = dict(before, **{"system.billing.usage": "b"})
    plan = plan_refresh(project, project.table_names, _state(project, before), _state(project, after), "2026-11-22")
    assert set(plan.tables) == {"usage_raw", "daily_cost", "cost_by_job_name"}  # job_usage is a view: not selectable
    assert plan.reasons["job_usage"] == "upstream usage_raw refreshed"
    assert plan.reasons["usage_raw"] == "new data in system.billing.usage"


def test_nothing_changed_means_nothing_to_refresh():
    project = load_project(SPECS)
    state = _state(project, {"system.billing.usage": "a"})
    assert plan_refresh(project, project.table_names, state, state, "2026-11-22").nothing


def test_a_changed_spec_refreshes_that_table_and_its_downstream():
    project = load_project(SPECS)
    previous = _state(project, {}, prices="old-fingerprint")
    plan = plan_refresh(project, project.table_names, previous, _state(project, {}), "2026-11-22")
    assert set(plan.tables) == {"prices", "daily_cost"}


def test_daily_tables_refresh_once_per_day():
    project = load_project(SPECS)
    daily = dataclasses.replace(project.table("daily_cost"), schedule=Schedule.DAILY)
    project = dataclasses.replace(project, tables=tuple(daily if t.name == "daily_cost" else t for t in project.tables))
    before = _state(project, {"system.billing.usage": "a"})
    after = _state(project, {"system.billing.usage": "b"})
    same_day = plan_refresh(project, project.table_names, before, after, "2026-11-22")
    next_day = plan_refresh(project, project.table_names, before, after, "2026-11-23")
    assert "daily_cost" not in same_day.tables and "usage_raw" in same_day.tables
    assert "daily_cost" in next_day.tables


def test_a_partial_run_names_the_tables_it_does_not_refresh_with_catalog_and_schema():
    """A two-part `schema`.`table` read is taken by the engine for a possible `format`.`path`, whose first
    part it looks up as a data source (class loading across every jar; a Python worker the first time)."""
    from engine.runtime.entry import catalog_qualifier
    from engine.runtime.flows import FlowContext
    from engine.runtime.layout import LOCAL_CATALOG
    from engine.testing import data_tests

    assert data_tests.LOCAL_CATALOG == LOCAL_CATALOG  # its own copy: the data tests import no engine module

    settings = load_project(SPECS).settings
    local = catalog_qualifier(settings, local=True)
    assert local == f"`{LOCAL_CATALOG}`.`{settings.schema}`"
    assert catalog_qualifier(settings, local=False) == f"`{settings.catalog}`.`{settings.schema}`"
    context = FlowContext(spark=None, settings=settings, sources=None, in_pipeline=frozenset({"cost_by_sku"}),
                          apply_expectations=True, system_views=True, qualifier=local)
    assert context.table_ref("cost_by_sku") == "`cost_by_sku`"  # in the run: the graph's own name
    assert context.table_ref("billing_summary") == f"`{LOCAL_CATALOG}`.`{settings.schema}`.`billing_summary`"
