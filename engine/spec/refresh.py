"""Stage: spec. How each table refreshes on Databricks, and a warning for every materialized view the
15-minute pipeline would recompute in full.

The documented rules (with their URLs) and the rule table are in engine.sql.refresh; this module
decides which query each pattern runs and applies the rules that need the specs:

- `aggregate` (and a persisted `view`, which the backend publishes as a materialized view): the
  spec's `query`, plus every system table it reads directly (ROW_TRACKING_NOT_ENABLED) and the
  reasons of any temporary view it reads (the engine inlines a temporary view into its readers).
- `snapshot`: the declared columns (each `expr`, cast) over the source, filtered by the spec's
  `filter`; a system source is read directly.
- `scd2` current tables: ROW_NUMBER() OVER (PARTITION BY keys ORDER BY sequence DESC) = 1 over the
  history (engine.runtime.queries.scd2_current_query; tests/spec/test_refresh_cost.py checks that
  query against the rules), so eligible whenever keys are declared.
- `reference`: rows written in the spec (no source: a full recompute that costs nothing).
- `stream` / `scd2` history: streaming tables (append only new input); temporary views: not stored.

Daily tables are recomputed once a day by the daily job: no warning. A pipeline table may accept
its full recompute with `refresh: {full_recompute_ok: "<why>"}` (shown in docs/SCHEMA.md).
Pure functions of the model; sqlglot only through engine.sql.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping

from engine.spec.errors import Diagnostic
from engine.spec.model import DatasetKind, Pattern, Schedule, Table
from engine.sql.refresh import Reason, expression_reasons, query_reasons, reason

WARNING_CODE = "MV_FULL_RECOMPUTE"
UNUSED_ACK_CODE = "REFRESH_ACK_UNUSED"


class RefreshMode(str, enum.Enum):
    STREAMING = "streaming append"
    INCREMENTAL = "incremental"
    FULL_RECOMPUTE = "full recompute"
    STATIC = "static"  # rows in the spec
    VIEW = "view"


@dataclass(frozen=True)
class Assessment:
    table: Table
    mode: RefreshMode
    reasons: tuple[Reason, ...] = ()
    key: tuple[str, ...] = ()  # the spec key the reasons come from

    @property
    def warns(self) -> bool:
        """A materialized view on the 15-minute pipeline, recomputed in full, not acknowledged."""
        return (self.mode is RefreshMode.FULL_RECOMPUTE and self.table.schedule is Schedule.PIPELINE
                and not self.table.full_recompute_ok)

    @property
    def label(self) -> str:
        """The refresh mode as docs/SCHEMA.md shows it."""
        t, daily = self.table, self.table.schedule is Schedule.DAILY
        if self.mode is RefreshMode.STREAMING:
            return "streaming append"
        if self.mode is RefreshMode.VIEW:
            return "view (computed when read)"
        if self.mode is RefreshMode.STATIC:
            return "full recompute (rows in the spec)"
        if self.mode is RefreshMode.INCREMENTAL:
            return "incremental MV (daily)" if daily else "incremental MV"
        if daily:
            return "full recompute (daily)"
        if t.full_recompute_ok:
            return f"full recompute, accepted: {t.full_recompute_ok}"
        return "full recompute (every refresh)"

    @property
    def explained(self) -> str:
        """The label and, for a full recompute, why (the rules cite Databricks' docs)."""
        if self.mode is RefreshMode.FULL_RECOMPUTE and self.reasons:
            return f"{self.label} — {explain(self.reasons)}"
        return self.label


def assess(table: Table, tables: Mapping[str, Table]) -> Assessment:
    """The refresh mode of one table and, for a full recompute, every reason (`tables`: by name)."""
    kind = table.dataset_kind
    if kind is DatasetKind.STREAMING_TABLE:
        return Assessment(table, RefreshMode.STREAMING)
    if kind is DatasetKind.TEMPORARY_VIEW:
        return Assessment(table, RefreshMode.VIEW, _query_reasons(table, tables), ("query",))
    if table.pattern is Pattern.REFERENCE:
        return Assessment(table, RefreshMode.STATIC, (reason("NO_SOURCE_TABLE", "rows"),), ("rows",))
    if table.pattern is Pattern.SCD2_CURRENT:
        found = () if table.keys else (reason("WINDOW_WITHOUT_PARTITION_BY", "ROW_NUMBER() OVER (ORDER BY sequence)"),)
        key: tuple[str, ...] = ("keys",)
    elif table.pattern is Pattern.SNAPSHOT:
        found, key = _snapshot_reasons(table)
    else:
        found, key = _query_reasons(table, tables), ("query",)
    return Assessment(table, RefreshMode.FULL_RECOMPUTE if found else RefreshMode.INCREMENTAL, found, key)


def _snapshot_reasons(table: Table) -> tuple[tuple[Reason, ...], tuple[str, ...]]:
    found: list[Reason] = []
    key: tuple = ("source",)
    for index, column in enumerate(table.columns):
        own = expression_reasons(column.expr) if column.expr else ()
        if own and not found:
            key = ("columns", index)
        found.extend(own)
    own = expression_reasons(table.filter or "TRUE")
    if own and not found:
        key = ("filter",)
    found.extend(own)
    if table.source and table.source.startswith("system."):
        found.append(reason("ROW_TRACKING_NOT_ENABLED", table.source))
    return tuple(dict.fromkeys(found)), key


def _query_reasons(table: Table, tables: Mapping[str, Table]) -> tuple[Reason, ...]:
    found = list(query_reasons(table.query or ""))
    for name in table.system_sources:
        found.append(reason("ROW_TRACKING_NOT_ENABLED", name))
    for name in table.upstream_tables:
        upstream = tables.get(name)
        if upstream is not None and upstream.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            for inner in _query_reasons(upstream, tables):
                found.append(Reason(inner.code, f"{inner.construct} (in temporary view {name})", inner.why))
    return tuple(dict.fromkeys(found))


def explain(reasons: Iterable[Reason]) -> str:
    """Reasons grouped by rule: `CROSS JOIN, SELECT DISTINCT: not among ...; current_date(): is ...`."""
    grouped: dict[str, list[Reason]] = {}
    for item in reasons:
        grouped.setdefault(item.code, []).append(item)
    return "; ".join(f"{', '.join(r.construct for r in group)} {group[0].why}" for group in grouped.values())


def assess_all(tables: Iterable[Table]) -> dict[str, Assessment]:
    tables = tuple(tables)
    by_name = {t.name: t for t in tables}
    return {t.name: assess(t, by_name) for t in tables}


def pipeline_materialized_views(tables: Iterable[Table]) -> list[Assessment]:
    """What `tablesmith validate --refresh` lists: every materialized view the 15-minute pipeline
    refreshes (a persisted view is published as one), with how Databricks refreshes it, by spec file."""
    tables = tuple(tables)
    assessments = assess_all(tables)
    views = [assessments[t.name] for t in tables if t.schedule is Schedule.PIPELINE
             and t.dataset_kind in (DatasetKind.MATERIALIZED_VIEW, DatasetKind.VIEW)]
    return sorted(views, key=lambda a: a.table.location.file)  # stable: spec order within a file; no line lookup


def refresh_summary(tables: Iterable[Table], views: Iterable[Assessment]) -> str:
    """One line: how the pipeline's materialized views (`views`, as listed above) refresh on
    Databricks, and what else the catalog holds."""
    tables, views = tuple(tables), tuple(views)
    incremental = sum(a.mode is RefreshMode.INCREMENTAL for a in views)
    accepted = sum(a.mode is RefreshMode.FULL_RECOMPUTE and not a.warns for a in views)
    warned = sum(a.warns for a in views)
    static = sum(a.mode is RefreshMode.STATIC for a in views)
    streams = sum(t.dataset_kind is DatasetKind.STREAMING_TABLE for t in tables)
    daily = sum(t.schedule is Schedule.DAILY and t.dataset_kind is not DatasetKind.STREAMING_TABLE for t in tables)
    return (f"refresh on Databricks: {len(views)} materialized views on the 15-minute pipeline: {incremental} incremental, "
            f"{accepted} recomputed in full as their specs accept, {warned} recomputed in full without a reason "
            f"(warned above), {static} with rows in the spec; {streams} streaming tables; {daily} daily")


def refresh_warnings(entries) -> list[Diagnostic]:
    """One located warning per pipeline materialized view recomputed in full and not acknowledged,
    and one per acknowledgement that no longer applies. `entries`: engine.spec.rules.SpecEntry."""
    assessments = assess_all(e.table for e in entries)
    warnings = []
    for entry in entries:
        found = assessments[entry.table.name]
        if found.warns:
            message = (f"{entry.table.name}: the 15-minute pipeline recomputes this materialized view in full at every "
                       f"refresh: {explain(found.reasons)}. Make the query incrementally refreshable, set "
                       f"'schedule: daily', or accept it with 'refresh: {{full_recompute_ok: <why>}}'")
            warnings.append(_warning(entry, found.key, WARNING_CODE, message))
        elif entry.table.full_recompute_ok and not entry.derived and found.mode is not RefreshMode.FULL_RECOMPUTE:
            message = f"refresh.full_recompute_ok is set but {entry.table.name} is refreshed as {found.label}: remove it"
            warnings.append(_warning(entry, ("refresh", "full_recompute_ok"), UNUSED_ACK_CODE, message))
        elif entry.table.full_recompute_ok and not entry.derived and entry.table.schedule is Schedule.DAILY:
            message = f"refresh.full_recompute_ok is set but {entry.table.name} is daily: a daily recompute needs no acknowledgement"
            warnings.append(_warning(entry, ("refresh", "full_recompute_ok"), UNUSED_ACK_CODE, message))
    return sorted(warnings)


def _warning(entry, key: tuple[str, ...], code: str, message: str) -> Diagnostic:
    located = entry.diag(key if entry.positions.has(entry.prefix + key) else (), code, message)
    return Diagnostic(located.file, located.line, located.col, code, message, located.key_path, located.snippet,
                      severity="warning")
