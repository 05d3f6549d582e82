"""Stage: report. Run the dashboards' datasets and widget queries on a local run's tables.

The SQL is the deployed SQL (engine.render.lakeview.dataset_sql): tables unqualified, resolved in
the local database as the bundle's dataset_catalog / dataset_schema resolve them on Databricks;
for a central dashboard, each all_workspaces_<table> is a temporary view over the local table with
one provider (this workspace). Parameters are bound at their defaults through Spark's named
parameter markers, so `:period.min` is read exactly as written. Each widget then runs its own
query over its dataset: the field expressions Lakeview runs, grouped by its non-aggregated fields.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterable

from engine.escape import sql_identifier
from engine.render.lakeview import WidgetQuery, dataset_sql, widget_query
from engine.runtime.quality import QUALITY_TABLE
from engine.spec.model import (
    CONSOLIDATED_PREFIX,
    SOURCE_WORKSPACE_COLUMN,
    Dashboard,
    DashboardFilter,
    DashboardScope,
    FilterType,
    Project,
    Widget,
)

LOCAL_PROVIDER = "local"  # the source_workspace of every row in a local central view
_RELATIVE = re.compile(r"^now(?:(?P<sign>[+-])(?P<count>\d+)(?P<unit>[dwMy]))?(?:/(?P<round>[dwMy]))?$")
_TEMPORAL_TYPES = ("DATE", "TIMESTAMP")


@dataclass(frozen=True)
class Rows:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Outcome:
    """A query's rows, or the error that stopped it (shown in the report instead of the widget)."""

    rows: Rows | None
    error: str = ""


def resolve_date(text: str, today: dt.date) -> dt.date:
    """A Lakeview date (YYYY-MM-DD or now-30d/d, now-1M/M, …) as of `today`."""
    if not text.startswith("now"):
        return dt.date.fromisoformat(text)
    match = _RELATIVE.match(text)
    if match is None:
        raise ValueError(f"not a Lakeview date: {text!r}")
    day = today
    if match.group("count"):
        count = int(match.group("count")) * (-1 if match.group("sign") == "-" else 1)
        day = _shift(day, count, match.group("unit"))
    rounding = match.group("round")
    if rounding == "w":
        day -= dt.timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif rounding == "M":
        day = day.replace(day=1)
    elif rounding == "y":
        day = day.replace(month=1, day=1)
    return day


def _shift(day: dt.date, count: int, unit: str) -> dt.date:
    if unit == "d":
        return day + dt.timedelta(days=count)
    if unit == "w":
        return day + dt.timedelta(weeks=count)
    months = day.month - 1 + count * (12 if unit == "y" else 1)
    year, month = day.year + months // 12, months % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def parameter_value(flt: DashboardFilter, today: dt.date) -> Any:
    """The filter's default as a Spark argument: a struct(min, max) of dates, or a string."""
    if flt.type is FilterType.DATE_RANGE:
        from pyspark.sql import functions as F

        low, high = (resolve_date(v, today) for v in flt.default)
        return F.struct(F.lit(low).alias("min"), F.lit(high).alias("max"))
    return flt.default


def shown_default(flt: DashboardFilter, today: dt.date) -> str:
    if flt.type is FilterType.DATE_RANGE:
        low, high = (resolve_date(v, today) for v in flt.default)
        return f"{low.isoformat()} … {high.isoformat()}"
    return str(flt.default)


def widget_sql(query: WidgetQuery, view: str, limit: int) -> str:
    """What Lakeview runs for a widget: its field expressions over the dataset, grouped unless disaggregated."""
    select = ", ".join(f"{f.expression} AS {sql_identifier(f.name)}" for f in query.fields)
    text = f"SELECT {select} FROM {view}"
    keys = [f.expression for f in query.fields if not f.aggregated]
    if not query.disaggregated and keys:
        text += " GROUP BY " + ", ".join(keys)
    if keys:
        text += " ORDER BY " + ", ".join(keys)
    return text + f" LIMIT {int(limit)}"


class LocalDashboards:
    """One Spark session, the local database of a run, and the dashboards to evaluate on it."""

    def __init__(self, spark: Any, schema: str, project: Project):
        self.spark = spark
        self.schema = schema
        self.project = project
        self._views: list[str] = []
        self._previous_database = spark.catalog.currentDatabase()

    # --- the run ---------------------------------------------------------------------------------

    def existing_tables(self) -> set[str]:
        return {r.tableName for r in self.spark.sql(f"SHOW TABLES IN {sql_identifier(self.schema)}").collect() if not r.isTemporary}

    def freshness(self, tables: Iterable[str]) -> dict[str, dt.datetime | None]:
        """Newest date or timestamp in each table (over its DATE/TIMESTAMP columns), one Spark job."""
        parts = []
        for name in sorted(set(tables)):
            columns = [c.name for c in self.project.table(name).all_columns if c.type.upper().startswith(_TEMPORAL_TYPES)]
            newest = ", ".join(f"MAX(CAST({sql_identifier(c)} AS TIMESTAMP))" for c in columns)
            expression = "CAST(NULL AS TIMESTAMP)" if not columns else (newest if len(columns) == 1 else f"GREATEST({newest})")
            parts.append(f"SELECT '{name}' AS t, {expression} AS newest FROM {sql_identifier(self.schema, name)}")
        if not parts:
            return {}
        return {row["t"]: row["newest"] for row in self.spark.sql(" UNION ALL ".join(parts)).collect()}

    def quality(self) -> Rows:
        """The latest recorded count of each expectation (the run refreshes only what changed)."""
        source = sql_identifier(self.schema, QUALITY_TABLE)
        text = (
            "SELECT table_name, expectation, on_violation, violations, rows_checked, run_time FROM ("
            f"SELECT *, ROW_NUMBER() OVER (PARTITION BY table_name, expectation ORDER BY run_time DESC) AS latest FROM {source}"
            ") WHERE latest = 1 ORDER BY table_name, expectation"
        )
        return _rows(self.spark.sql(text))

    # --- dashboards ------------------------------------------------------------------------------

    def open(self, dashboard: Dashboard) -> None:
        """Resolve the deployed SQL's unqualified names locally: the run's database, or central views."""
        self.spark.sql(f"USE {sql_identifier(self.schema)}")
        if dashboard.scope is DashboardScope.CENTRAL:
            for name in dashboard.tables:
                table = self.project.table(name)
                view = CONSOLIDATED_PREFIX + name
                columns = ", ".join(sql_identifier(c.name) for c in table.all_columns)
                self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {sql_identifier(view)} AS SELECT '{LOCAL_PROVIDER}' AS "
                               f"{sql_identifier(SOURCE_WORKSPACE_COLUMN)}, {columns} FROM {sql_identifier(self.schema, name)}")
                self._views.append(sql_identifier(view))

    def run_datasets(self, dashboard: Dashboard, today: dt.date) -> dict[str, Outcome]:
        """Each dataset's query at its parameters' defaults, kept as a temporary view for its widgets."""
        filters = {f.parameter: f for f in dashboard.filters}
        outcomes = {}
        for dataset in dashboard.datasets:
            args = {p: parameter_value(filters[p], today) for p in dataset.parameters}
            view = self.dataset_view(dashboard, dataset.name)
            try:
                frame = self.spark.sql(dataset_sql(dashboard, dataset), args=args)
                frame.createOrReplaceTempView(view)
                self._views.append(view)
                outcomes[dataset.name] = Outcome(Rows(tuple(frame.columns), ()))
            except Exception as exc:  # noqa: BLE001 - a failing dataset is reported on its widgets, the rest still runs
                outcomes[dataset.name] = Outcome(None, _first_line(exc))
        return outcomes

    def run_widget(self, dashboard: Dashboard, widget: Widget, limit: int) -> Outcome:
        query = widget_query(widget)
        if query is None:
            return Outcome(Rows((), ()))
        try:
            return Outcome(_rows(self.spark.sql(widget_sql(query, self.dataset_view(dashboard, query.dataset), limit))))
        except Exception as exc:  # noqa: BLE001 - shown in the widget's place
            return Outcome(None, _first_line(exc))

    @staticmethod
    def dataset_view(dashboard: Dashboard, dataset: str) -> str:
        return sql_identifier(f"_tablesmith_report_{dashboard.name}_{dataset}")

    def close(self) -> None:
        for view in self._views:
            self.spark.sql(f"DROP VIEW IF EXISTS {view}")
        self._views.clear()
        self.spark.sql(f"USE {sql_identifier(self._previous_database)}")


def _rows(frame: Any) -> Rows:
    collected = frame.collect()
    return Rows(tuple(frame.columns), tuple(tuple(row) for row in collected))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]
