"""Stage: spec. Load every YAML spec, check shape and meaning, and return the frozen Project.

    project = load_project(Path("specs"))   # raises SpecError listing every problem at once
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path

from engine.graph import CycleError, topological_order
from engine.spec.build import alert_from_doc, dashboard_from_doc, settings_from_doc, tables_from_doc
from engine.spec.errors import Diagnostic, SpecError, display_path
from engine.spec.files import discover
from engine.spec.cache import SpecCache, content_key
from engine.spec.loader import Document, Positions, parse_yaml, read_spec_text
from engine.spec.model import Dashboard, Project, ProjectSettings, Table

# The checks (JSON Schema via jsonschema, SQL rules via sqlglot) are imported inside the functions
# that validate: importing the model or the manifest reader (the pipeline runtime does both on
# Databricks) must not need packages a serverless pipeline may lack.

__all__ = ["Diagnostic", "SpecError", "Project", "Table", "load_project", "validate_project", "table_spec_files"]


def table_spec_files(specs_dir: Path) -> list[Path]:
    """specs/<domain>/**/<table>.yaml, sorted; top-level files are project settings, not tables."""
    return list(discover(Path(specs_dir)).tables)


def load_project(specs_dir: Path) -> Project:
    return _load_checked(specs_dir, warn=False)[0]


def validate_project(specs_dir: Path) -> tuple[Project, list[Diagnostic]]:
    """load_project plus the warnings `tablesmith validate` prints (never errors: the project is valid)."""
    return _load_checked(specs_dir, warn=True)


def _load_checked(specs_dir: Path, *, warn: bool) -> tuple[Project, list[Diagnostic]]:
    specs_dir = Path(specs_dir)
    shown = display_path(specs_dir)
    found = discover(specs_dir)
    if found.project is None:  # not a specs folder: nothing under it is read
        raise SpecError(list(found.problems))

    diagnostics: list[Diagnostic] = list(found.problems)
    cache = SpecCache.for_specs(specs_dir)
    try:
        with _cycle_collector_paused():
            return _load(specs_dir, shown, found, cache, diagnostics, warn)
    finally:
        cache.save()  # also after errors: the specs that passed need no parse next time


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Loading builds hundreds of thousands of small dicts, lists and dataclasses that all stay alive
    until it ends: each pass of Python's cycle collector walks them and frees nothing, a fifth of a
    1,000-spec load. Paused for the load; the few cycles it leaves (sqlglot trees) are freed after."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _load(specs_dir: Path, shown: str, found, cache: SpecCache, diagnostics: list[Diagnostic],
          warn: bool) -> tuple[Project, list[Diagnostic]]:
    from engine.spec.rules import RuleContext, SpecEntry, check
    from engine.spec.schema import TABLE_SCHEMA

    settings, settings_positions = _load_settings(found.project, cache, diagnostics)

    files = found.tables
    if not files and not found.problems:
        diagnostics.append(Diagnostic(shown, 1, 1, "NO_SPECS", f"no table specs found under {shown}/<domain>/*.yaml"))

    entries: list[SpecEntry] = []
    ghosts: set[str] = set()
    for path in files:
        doc, valid = _load_document(path, TABLE_SCHEMA, cache, diagnostics)
        if not valid:
            # Known to exist (by its name, or by its file name when it did not parse): readers of a
            # broken spec get its own error, not a cascade of false UNKNOWN_REFERENCE errors.
            named = doc is not None and isinstance(doc.data, dict) and isinstance(doc.data.get("name"), str)
            ghosts.add(doc.data["name"] if named else path.stem)
            continue
        tables = tables_from_doc(doc)
        entries.append(SpecEntry(tables[0], doc.positions, path))
        for derived in tables[1:]:
            entries.append(SpecEntry(derived, doc.positions, path, prefix=("scd2", "current")))

    ctx = RuleContext(entries, settings, settings_positions, specs_dir, ghost_names=frozenset(ghosts), cache=cache)
    diagnostics.extend(check(ctx))
    alerts = _load_alerts(found.alerts, ctx, diagnostics)
    dashboards = _load_dashboards(found.dashboards, ctx, diagnostics)
    if diagnostics:
        raise SpecError(diagnostics)
    assert settings is not None
    warnings = []
    if warn:
        from engine.spec.refresh import refresh_warnings

        warnings = refresh_warnings(entries)
    project = Project(settings=settings, tables=_ordered([e.table for e in entries]), specs_dir=str(specs_dir),
                      alerts=tuple(sorted(alerts, key=lambda a: a.name)),
                      dashboards=tuple(sorted(dashboards, key=lambda d: d.name)))
    return project, warnings


def _load_alerts(files: tuple[Path, ...], ctx, diagnostics: list[Diagnostic]) -> list:
    """specs/alerts/*.yaml: shape first, then the rules that need the tables (engine.spec.rules)."""
    from engine.spec.rules import check_alerts
    from engine.spec.schema import ALERT_SCHEMA

    loaded = []
    for path in files:
        doc, valid = _load_document(path, ALERT_SCHEMA, ctx.cache, diagnostics)
        if not valid:
            continue
        table = ctx.known(doc.data["table"])
        loaded.append((alert_from_doc(doc, table.keys if table else ()), doc.positions, path))
    diagnostics.extend(check_alerts(ctx, loaded))
    return [alert for alert, _, _ in loaded]


def _load_dashboards(files: tuple[Path, ...], ctx, diagnostics: list[Diagnostic]) -> list[Dashboard]:
    """specs/dashboards/*.yaml: shape, then sqlglot derives each dataset's columns and the rules check them."""
    from engine.spec.rules import DashboardEntry, analyze_dashboard, check_dashboards
    from engine.spec.schema import DASHBOARD_SCHEMA

    entries = []
    for path in files:
        doc, valid = _load_document(path, DASHBOARD_SCHEMA, ctx.cache, diagnostics)
        if not valid:
            continue
        dashboard = dashboard_from_doc(doc)
        entries.append(DashboardEntry(dashboard, doc.positions, path, analyze_dashboard(ctx, dashboard)))
    diagnostics.extend(check_dashboards(ctx, entries))
    return [_with_derived_columns(entry) for entry in entries]


def _with_derived_columns(entry) -> Dashboard:
    """The dashboard with each dataset's output columns and parameters, as sqlglot derived them."""
    datasets = tuple(
        dataclasses.replace(d, columns=entry.analyses[d.name].columns, parameters=entry.analyses[d.name].parameter_names)
        for d in entry.dashboard.datasets
    )
    return dataclasses.replace(entry.dashboard, datasets=datasets)


def _load_settings(path: Path, cache: SpecCache, diagnostics: list[Diagnostic]) -> tuple[ProjectSettings | None, Positions | None]:
    from engine.spec.schema import PROJECT_SCHEMA

    doc, valid = _load_document(path, PROJECT_SCHEMA, cache, diagnostics)
    if not valid:
        return None, doc.positions if doc else None
    return settings_from_doc(doc), doc.positions


def _load_document(path: Path, schema: str, cache: SpecCache, diagnostics: list[Diagnostic]) -> tuple[Document | None, bool]:
    """Parse and shape-check one file; problems go to `diagnostics`. True when it passed both.

    A file whose text passed before comes from the cache: no parse, no schema check, and its
    positions are found only if a rule reports on it.
    """
    from engine.spec.schema import validate_shape

    shown = display_path(path)
    text, problems = read_spec_text(path, shown)
    if text is None:
        diagnostics.extend(problems)
        return None, False
    key = content_key("document", schema, text) if cache.enabled else ""
    data = cache.get(key) if key else None
    if data is not None:
        return Document(path=path, data=data, positions=Positions(shown, text, data, marked=False)), True
    doc, problems = parse_yaml(path, shown, text)
    if doc is not None:
        problems = validate_shape(doc, schema)
    diagnostics.extend(problems)
    valid = doc is not None and not problems
    if valid and key:
        cache.put(key, doc.data)
    return doc, valid


def _ordered(tables: list[Table]) -> tuple[Table, ...]:
    """Topological order (sorted ties) with `requires` widened to every system schema read upstream."""
    by_name = {t.name: t for t in tables}
    try:
        order = topological_order({t.name: t.upstream_tables for t in tables})
    except CycleError:  # pragma: no cover - rules report cycles before this point
        order = sorted(by_name)
    done: dict[str, Table] = {}
    for name in order:
        table = by_name[name]
        needed = set(table.requires)
        needed.update(source.split(".")[1] for source in table.system_sources)
        for upstream in table.upstream_tables:
            needed.update(done[upstream].requires)
        done[name] = dataclasses.replace(table, requires=tuple(sorted(needed)))
    return tuple(done[name] for name in order)
