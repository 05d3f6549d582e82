"""Stage: runtime. The single entry point the generic notebook and the local run both call.

    register_pipeline(spark, {"tablesmith.manifest": ".../generated/manifest.json", ...})
    register_pipeline(spark, conf, project=project)   # the local run: the project it already loaded,
                                                      # inside the pipelines registry of its own process

Reads the compiled manifest (engine.spec.manifest: no YAML, no checks; they ran in `generate`),
applies configuration overrides, skips tables whose system sources are not available (with a
line on stderr, which lands in the driver log on Databricks), and registers every other table.
Imports only the standard library, PyYAML and PySpark (tests/runtime/test_runtime_imports.py).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

from engine.runtime.backend import PipelineBackend
from engine.runtime.flows import FlowContext, SystemViewFlow, TableFlow
from engine.runtime.layout import LOCAL_CATALOG
from engine.runtime.queries import quote
from engine.runtime.sources import DatabricksSystemSource, LocalSystemSource, SystemSource
from engine.spec.manifest import MANIFEST_PATH, read_manifest
from engine.spec.model import DatasetKind, Project, ProjectSettings, Schedule, Table

CONF_PREFIX = "tablesmith."
SETTING_OVERRIDES = ("catalog", "schema", "account_identifier", "workspace_identifier")
# Every setting the notebook passes on (the bundle sets some; all are optional but one of
# manifest / bundle_root).
CONF_KEYS = ("manifest", "bundle_root", "catalog", "schema", "account_identifier", "workspace_identifier",
             "schedule", "enabled_schemas", "mode", "source_root", "run_id")


@dataclass(frozen=True)
class Registration:
    project: Project
    registered: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # table -> why


def manifest_path(conf: Mapping[str, str]) -> Path:
    """`tablesmith.manifest`, else the manifest `generate` writes under the bundle root."""
    explicit = conf.get(CONF_PREFIX + "manifest")
    if explicit:
        return Path(explicit)
    root = conf.get(CONF_PREFIX + "bundle_root")
    if root:
        return Path(root) / MANIFEST_PATH
    raise ValueError("pipeline configuration must set tablesmith.manifest (the compiled specs, "
                     f"{MANIFEST_PATH}) or tablesmith.bundle_root (the folder holding it)")


def with_overrides(project: Project, conf: Mapping[str, str]) -> Project:
    overrides = {key: conf[CONF_PREFIX + key] for key in SETTING_OVERRIDES if conf.get(CONF_PREFIX + key)}
    if overrides:
        project = dataclasses.replace(project, settings=dataclasses.replace(project.settings, **overrides))
    return project


def selected_tables(project: Project, schedule: str) -> list[Table]:
    if schedule in ("", "all"):
        return list(project.tables)
    return [t for t in project.tables if t.schedule is Schedule(schedule)]


def skipped_tables(tables: list[Table], sources: SystemSource, spark: Any) -> dict[str, str]:
    """Tables whose system sources are missing, and everything downstream of them (topological order)."""
    skipped: dict[str, str] = {}
    for table in tables:
        missing = [s for s in table.system_sources if not sources.available(s)]
        if missing:
            skipped[table.name] = f"source {missing[0]} is not available ({sources.describe(missing[0])}); requires schema '{missing[0].split('.')[1]}'"
            continue
        blocked = [u for u in table.upstream_tables if u in skipped]
        if blocked:
            skipped[table.name] = f"upstream table {blocked[0]} is skipped"
    return skipped


def catalog_qualifier(settings: ProjectSettings, local: bool) -> str:
    """How the flows name a table that is not in this pipeline: catalog and schema, locally too.

    The engine takes a two-part name for a possible `format`.`path` and looks its first part up as
    a data source: class-loading misses across every jar, and the first time a Python worker."""
    return f"{quote(LOCAL_CATALOG if local else settings.catalog)}.{quote(settings.schema)}"


def register_pipeline(spark: Any, conf: Mapping[str, str], backend: PipelineBackend | None = None,
                      project: Project | None = None, only: Collection[str] | None = None) -> Registration:
    """`project`: an already loaded project (the local run hands over the one it validated);
    otherwise the manifest named by the configuration is read, once. `only`: register just these
    tables (and the temporary views); the others are read from the catalog, as the daily pipeline
    reads the 15-minute one's. Local runs with `tablesmith.run_id` set observe each flow's counts
    under that id (engine.runtime.observed)."""
    if project is None:
        project = read_manifest(manifest_path(conf))
    project = with_overrides(project, conf)
    local = (conf.get(CONF_PREFIX + "mode") or "databricks") == "local"
    settings = project.settings
    if local:
        root = Path(conf.get(CONF_PREFIX + "source_root") or settings.source_root)
        sources: SystemSource = LocalSystemSource(root, dict(settings.source_tables))
    else:
        enabled = conf.get(CONF_PREFIX + "enabled_schemas")
        sources = DatabricksSystemSource(spark, frozenset(s.strip() for s in enabled.split(",")) if enabled else None)
    backend = backend or PipelineBackend(local=local)

    tables = selected_tables(project, conf.get(CONF_PREFIX + "schedule") or "all")
    skipped = skipped_tables(tables, sources, spark)
    for name, reason in skipped.items():
        print(f"tablesmith: skipping {name}: {reason}", file=sys.stderr)
    active = [t for t in tables if t.name not in skipped and
              (only is None or t.name in only or t.dataset_kind is DatasetKind.TEMPORARY_VIEW)]

    qualifier = catalog_qualifier(settings, local)
    context = FlowContext(
        spark=spark,
        settings=settings,
        sources=sources,
        in_pipeline=frozenset(t.name for t in active),
        apply_expectations=not backend.has_native_expectations,
        system_views=local,
        qualifier=qualifier,
        temporary_views=frozenset(t.name for t in active if t.dataset_kind is DatasetKind.TEMPORARY_VIEW),
        observe_run=(conf.get(CONF_PREFIX + "run_id") or "") if local else "",
        sql_without_round_trip=local,
    )
    if local:
        for name in sorted({s for t in active for s in t.system_sources if t.query}):
            backend.register(SystemViewFlow(name, context).definition())
    for table in active:
        backend.register(TableFlow(table, context).definition())
    return Registration(project, tuple(t.name for t in active), skipped)
