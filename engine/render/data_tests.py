"""Stage: render. SQL data tests from the specs, one file per domain, and the bundle job that runs them.

dbt's singular-test model: each test is one SELECT returning the rows that break one rule; no rows
is a pass. Per stored table: its schema (columns and types, compared by the runner from the header),
grain uniqueness (the keys), no NULL in non-nullable columns, and every expectation (a row passes
only when the rule is TRUE, as in the engine). engine/testing/data_tests.py parses the `-- key:
value` header before each query and runs them, locally in pytest and on Databricks in
`tablesmith_data_tests_job`.

Not tested, because the spec language cannot say it: accepted values (there is no such field;
expectations written `<column> IN (<literals>)` are labelled `accepted_values`) and freshness (no
spec declares an SLA). Pipeline-private temporary views are not stored, so they have no tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from engine.errors import UserError
from engine.escape import sql_comment
from engine.render.registry import renderer, template
from engine.render.viewmodel import HEADER, KIND_LABELS, collapse, first_sentence, grain, sql_ident, sql_string
from engine.runtime.queries import passes
from engine.spec.model import DatasetKind, Expectation, OnViolation, Project, Table
from engine.sql.types import canonical

FOLDER = "generated/data_tests"
JOB_FILE = "generated/resources/tablesmith_data_tests_job.yml"
NOTEBOOK = "engine/testing/data_tests_notebook.py"
# Built-in test names; an expectation may not take one (test ids must be unique).
BUILT_IN = ("schema", "unique_grain", "not_null")


@dataclass(frozen=True)
class NullCheck:
    column: str  # quoted identifier
    label: str  # the column name as a SQL string literal


@dataclass(frozen=True)
class DataTestView:
    id: str
    table: str
    kind: str  # schema | unique_grain | not_null | accepted_values | expectation
    severity: str  # error | warn
    rule: str  # one line
    header: tuple[tuple[str, str], ...]  # further `-- key: value` lines the runner reads
    relation: str  # `${catalog}`.`${schema}`.`table`
    columns: tuple[str, ...] = ()  # unique_grain: the grain, quoted
    nulls: tuple[NullCheck, ...] = ()  # not_null
    predicate: str = ""  # expectation / accepted_values: TRUE for an offending row


@dataclass(frozen=True)
class TableTests:
    name: str
    heading: str
    notes: tuple[str, ...]
    tests: tuple[DataTestView, ...]


@dataclass(frozen=True)
class DomainTests:
    header: str
    domain: str
    notes: tuple[str, ...]
    tables: tuple[TableTests, ...]


def domain_tests(project: Project, domain: str) -> DomainTests:
    tables = [t for t in project.tables if t.domain == domain]
    stored = [t for t in tables if t.dataset_kind is not DatasetKind.TEMPORARY_VIEW]
    private = [t.name for t in tables if t.dataset_kind is DatasetKind.TEMPORARY_VIEW]
    notes = [
        "Accepted values: the spec language has no accepted-values field; expectations written",
        "`<column> IN (<literals>)` are labelled accepted_values.",
        "Freshness: not tested; no spec declares a freshness SLA (the spec language has none).",
    ]
    if private:
        notes.append(f"Not tested (pipeline-private temporary views, not stored): {', '.join(private)}.")
    return DomainTests(HEADER, domain, tuple(notes), tuple(_table_tests(t) for t in stored))


def _table_tests(table: Table) -> TableTests:
    relation = sql_ident("${catalog}", "${schema}", table.name)
    prefix = f"{table.domain}::{table.name}::"
    columns = table.all_columns
    tests = [DataTestView(
        prefix + "schema", table.name, "schema", "error",
        f"{len(columns)} columns with the declared names, order and Spark types",
        tuple(("column", f"{c.name} {canonical(c.type)}") for c in columns)
        + ((("partitioned_by", ", ".join(table.partition_by)),) if table.partition_by else ()),
        relation,
    )]
    notes = []
    keys = grain(table)
    if keys:
        tests.append(DataTestView(prefix + "unique_grain", table.name, "unique_grain", "error",
                                  f"one row per {', '.join(keys)}", (), relation, columns=tuple(sql_ident(k) for k in keys)))
    else:
        notes.append("grain: no keys declared, uniqueness not tested")
    required = [c.name for c in columns if not c.nullable]
    if required:
        nulls = tuple(NullCheck(sql_ident(n), sql_string(n)) for n in required)
        tests.append(DataTestView(prefix + "not_null", table.name, "not_null", "error",
                                  f"no NULL in {', '.join(required)}", _where(" OR ".join(f"{n.column} IS NULL" for n in nulls)),
                                  relation, nulls=nulls))
    for expectation in table.expectations:
        if expectation.name in BUILT_IN:
            where = f"{expectation.location.file}:{expectation.location.line}: " if expectation.location else ""
            raise UserError(f"{where}{table.name}: expectation name '{expectation.name}' is reserved for the "
                            f"built-in data test of that name; rename the expectation")
        tests.append(_expectation_test(table, expectation, prefix, relation))
    return TableTests(table.name, f"{table.name} ({KIND_LABELS[table.dataset_kind]}): {first_sentence(table.description)}",
                      tuple(notes), tuple(tests))


def _expectation_test(table: Table, expectation: Expectation, prefix: str, relation: str) -> DataTestView:
    column = accepted_values_column(expectation.expr)
    kind = "accepted_values" if column else "expectation"
    level = expectation.on_violation.value
    rule = f"{expectation.name}: {collapse(expectation.expr)} (on_violation {level})"
    # passes() is the engine's own rule: a row passes only when the expression is TRUE.
    predicate = "NOT " + passes(expectation)
    return DataTestView(prefix + expectation.name, table.name, kind,
                        "warn" if expectation.on_violation is OnViolation.WARN else "error",
                        rule, (("expectation", expectation.name), *_where(predicate)), relation,
                        predicate=predicate.replace("\n", "\n  "))


def _where(predicate: str) -> tuple[tuple[str, str], ...]:
    """The `-- where:` line of a test whose query returns the table's rows where `predicate` is TRUE:
    the runner counts a table's tests with one COUNT_IF each in one scan. Written only when the
    predicate fits a comment line unchanged; without it the runner counts the query's rows."""
    return (("where", predicate),) if sql_comment(predicate) == predicate else ()


def accepted_values_column(expr: str) -> str | None:
    """The column of an expectation `col IN (literals)` or `col IS NULL OR col IN (literals)`, else None."""
    try:
        node = sqlglot.parse_one(expr, read="databricks")
    except sqlglot.errors.SqlglotError:
        return None
    if isinstance(node, exp.Or) and isinstance(node.this, exp.Is) and isinstance(node.this.expression, exp.Null):
        nullable_column = node.this.this
        node = node.expression
        if not (isinstance(nullable_column, exp.Column) and isinstance(node, exp.In)
                and isinstance(node.this, exp.Column) and node.this.name == nullable_column.name):
            return None
    if (isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.expressions
            and all(isinstance(value, exp.Literal) for value in node.expressions)):
        return node.this.name
    return None


# --- the bundle job ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DataTestsJobView:
    header: str
    name: str
    notebook: str  # relative to generated/resources/


def data_tests_job_view(project: Project) -> DataTestsJobView:
    return DataTestsJobView(HEADER, project.settings.name, f"../../{NOTEBOOK}")


@renderer("data_tests", "generated/data_tests/<domain>.sql: SQL data tests from the specs, and the bundle job running them")
def render_data_tests(project: Project, _context) -> dict[str, str]:
    sql = template("data_tests.sql.j2")
    outputs = {f"{FOLDER}/{domain}.sql": sql.render(file=domain_tests(project, domain))
               for domain in sorted({t.domain for t in project.tables})}
    outputs[JOB_FILE] = template("data_tests_job.yml.j2").render(job=data_tests_job_view(project))
    return outputs
