"""Stage: runtime. Pure query builders: strings from the spec model, no Spark needed."""

from __future__ import annotations

from engine import escape
from engine.spec.model import Alert, Expectation, OnViolation, Pattern, ProjectSettings, Table

FAILED_EXPECTATION_MARKER = "TABLESMITH_EXPECTATION_FAILED"


# The one quoting rule (engine.escape), under the names the query builders use.
quote = escape.sql_identifier
sql_string = escape.sql_string


def source_projection(table: Table) -> list[str]:
    """Declared columns only, cast to their declared types: new upstream columns never leak in."""
    return [f"CAST({c.expr or quote(c.name)} AS {c.type}) AS {quote(c.name)}" for c in table.columns]


def identifier_projection(settings: ProjectSettings) -> list[str]:
    return [
        f"CAST({sql_string(settings.account_identifier)} AS STRING) AS `_account_identifier`",
        f"CAST({sql_string(settings.workspace_identifier)} AS STRING) AS `_workspace_identifier`",
    ]


def scd2_current_query(table: Table, history: str) -> str:
    """Latest version per entity key, deleted entities excluded (a window query: runs on both engines)."""
    assert table.scd2 is not None
    keys = ", ".join(quote(k) for k in table.keys)
    columns = ", ".join(quote(c.name) for c in table.columns)
    deleted = f" AND {quote(table.scd2.delete_column)} IS NULL" if table.scd2.delete_column else ""
    return (
        f"SELECT {columns} FROM ("
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {quote(table.scd2.sequence_by)} DESC) AS `__version_rank` "
        f"FROM {history}) WHERE `__version_rank` = 1{deleted}"
    )


def passes(expectation: Expectation) -> str:
    """A row passes only when the rule is TRUE: NULL counts as a violation."""
    return f"COALESCE(({expectation.expr}), FALSE)"


ROWS_READ, ROWS_KEPT = "rows_read", "rows_kept"


def expectation_measure(index: int) -> str:
    return f"expectation_{index}"


def observed_measures(table: Table) -> list[tuple[str, str]]:
    """(name, aggregate) a local flow observes before its expectations apply: rows read, rows kept
    (passing every drop rule) and, per drop or warn rule, its violations; a warn rule counts only kept
    rows, as a query of the stored table would. A fail rule has none: a violation stops the run."""
    drops = [e for e in table.expectations if e.on_violation is OnViolation.DROP]
    kept = " AND ".join(passes(e) for e in drops) or "TRUE"
    measures = [(ROWS_READ, "COUNT(1)"), (ROWS_KEPT, f"COUNT_IF({kept})")]
    for index, expectation in enumerate(table.expectations):
        if expectation.on_violation is OnViolation.DROP:
            measures.append((expectation_measure(index), f"COUNT_IF(NOT {passes(expectation)})"))
        elif expectation.on_violation is OnViolation.WARN:
            measures.append((expectation_measure(index), f"COUNT_IF(({kept}) AND NOT {passes(expectation)})"))
    return measures


def fail_guard(table: Table, expectation: Expectation) -> str:
    """A predicate that is TRUE for passing rows and raises, naming table and rule, otherwise."""
    message = f"{FAILED_EXPECTATION_MARKER}: table {table.name}, expectation {expectation.name} ({expectation.expr})"
    return f"CASE WHEN {passes(expectation)} THEN TRUE ELSE raise_error({sql_string(message)}) END"


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return sql_string(str(value))


def reference_query(table: Table) -> str:
    """Rows written in the spec as a VALUES relation, each value cast to its column's type."""
    rows = ", ".join(
        "(" + ", ".join(f"CAST({literal(row.get(c.name))} AS {c.type})" for c in table.columns) + ")"
        for row in table.rows
    )
    names = ", ".join(quote(c.name) for c in table.columns)
    return f"SELECT * FROM VALUES {rows} AS reference({names})"


def retention_delete(table: Table, relation: str) -> str:
    """DELETE of the rows older than the table's retention, by the UTC date it runs on.

    An scd2 history keeps the latest version of every entity whatever its age (as Databricks keeps
    the latest row of its own SCD2 tables), so the `*_current` table never loses an entity.
    """
    assert table.retention is not None and table.retention.column is not None
    column = quote(table.retention.column)
    expired = f"old.{column} < date_sub(current_date(), {int(table.retention.days)})"
    if table.pattern is not Pattern.SCD2 or table.scd2 is None:
        return f"DELETE FROM {relation} AS old WHERE {expired}"
    same_entity = " AND ".join(f"newer.{quote(k)} <=> old.{quote(k)}" for k in table.keys)
    sequence = quote(table.scd2.sequence_by)
    return (f"DELETE FROM {relation} AS old WHERE {expired}"
            f" AND EXISTS (SELECT 1 FROM {relation} AS newer WHERE {same_entity} AND newer.{sequence} > old.{sequence})")


def alert_condition(alert: Alert, relation: str) -> str:
    """The alert's condition, limited to its window: rows within `days` of the column's latest value."""
    condition = f"({alert.condition})"
    if alert.within is None:
        return condition
    column = quote(alert.within.column)
    return (f"{condition} AND {column} > (SELECT MAX({column}) FROM {relation})"
            f" - INTERVAL {int(alert.within.days)} DAYS")
