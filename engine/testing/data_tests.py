"""Run the generated SQL data tests (generated/data_tests/<domain>.sql) where the tables live.

Each test is one SELECT returning the rows that break one rule (dbt's singular tests): no rows is a
pass. A structured comment header precedes each query:

    -- test: <domain>::<table>::unique_grain
    -- table: <table>
    -- kind: unique_grain
    -- severity: error
    -- rule: one row per workspace_id, usage_date
    SELECT ... FROM `${catalog}`.`${schema}`.`<table>` ...;

`${catalog}` and `${schema}` are replaced with the tables' catalog and schema (`spark_catalog` and
the local run's database locally; the bundle's variables on Databricks). Schema tests carry the
declared columns in `-- column: <name> <type>` lines and compare them with the query's result schema.
A row test whose query returns the table's rows where a predicate holds carries it in a
`-- where: <predicate>` line: the runner counts such tests with one COUNT_IF each in one scan.

Severity `error` fails the run. Severity `warn` (an expectation whose spec says `on_violation: warn`:
the pipeline keeps those rows by design) is reported with its count and sample and never fails,
except that where the run's `_quality_metrics` are known (the local run) the count must equal the
recorded one.

This module also runs on Databricks serverless (engine/testing/data_tests_notebook.py): it imports
the standard library and PySpark only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

SAMPLE_ROWS = 5
KINDS = ("schema", "unique_grain", "not_null", "accepted_values", "expectation")
SEVERITIES = ("error", "warn")
REQUIRED_FIELDS = ("test", "table", "kind", "severity", "rule")
PLACEHOLDERS = ("${catalog}", "${schema}")
LOCAL_CATALOG = "spark_catalog"  # engine.runtime.layout.LOCAL_CATALOG: this module imports no engine module

_FIELD = re.compile(r"^--\s*([a-z_]+):\s?(.*?)\s*$")


class DataTestFileError(ValueError):
    """A generated data test file that does not follow the header format (names file:line)."""


class DataTestsFailed(AssertionError):
    """At least one error-severity data test found offending rows; the message is the report."""


@dataclass(frozen=True)
class DataTest:
    id: str  # <domain>::<table>::<rule>, e.g. billing::<table>::not_null
    table: str
    kind: str
    severity: str
    rule: str  # what the test checks, one line
    sql: str  # the query, placeholders unreplaced, no trailing semicolon
    source: str  # file:line of the `-- test:` line
    expectation: str = ""  # expectation and accepted_values tests: the spec's expectation name
    columns: tuple[tuple[str, str], ...] = ()  # schema tests: (name, Spark simpleString) in declared order
    partitioned_by: tuple[str, ...] = ()  # schema tests: partition columns (Hive tables list them last)
    where: str = ""  # row tests whose query returns the table's rows where this predicate is TRUE

    @property
    def domain(self) -> str:
        return self.id.split("::", 1)[0]

    def query(self, catalog: str, schema: str) -> str:
        """The query with the placeholders replaced; they sit inside backticks, so backticks are doubled."""
        text = self.sql
        for placeholder, value in zip(PLACEHOLDERS, (catalog, schema)):
            text = text.replace(placeholder, value.replace("`", "``"))
        return text


@dataclass(frozen=True)
class Outcome:
    test: DataTest
    relation: str  # the table the test read, as `catalog`.`schema`.`table`
    status: str  # passed | failed | warned | missing
    count: int = 0  # offending rows
    sample: tuple[dict[str, Any], ...] = ()  # the first offending rows
    detail: str = ""  # why it failed beyond the rows (schema differences, metrics mismatch, missing table)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> bool:
        return any(o.failed for o in self.outcomes)

    def summary(self) -> str:
        counts = {s: len(self.by_status(s)) for s in ("passed", "failed", "warned", "missing")}
        return (f"data tests: {counts['passed']} passed, {counts['failed']} failed, {counts['warned']} warnings, "
                f"{counts['missing']} on tables not found")

    def text(self) -> str:
        parts = [describe(o) for o in self.outcomes if o.status != "passed"]
        return "\n\n".join(parts + [self.summary()])


# --- parsing -----------------------------------------------------------------------------------

def parse(text: str, source: str = "<data tests>") -> list[DataTest]:
    """Every test in one generated file, in file order."""
    lines = text.splitlines()
    tests: list[DataTest] = []
    i = 0
    while i < len(lines):
        match = _FIELD.match(lines[i])
        if not match or match.group(1) != "test":
            i += 1
            continue
        start = i
        fields: list[tuple[str, str]] = [("test", match.group(2))]
        i += 1
        while i < len(lines) and (match := _FIELD.match(lines[i])):
            fields.append((match.group(1), match.group(2)))
            i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].rstrip().endswith(";"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise DataTestFileError(f"{source}:{start + 1}: test '{fields[0][1]}': its query does not end with ';'")
        body.append(lines[i].rstrip()[:-1])
        i += 1
        tests.append(_build(fields, "\n".join(body).strip(), f"{source}:{start + 1}"))
    seen: set[str] = set()
    for test in tests:
        if test.id in seen:
            raise DataTestFileError(f"{test.source}: test id '{test.id}' appears twice")
        seen.add(test.id)
    return tests


def _build(fields: list[tuple[str, str]], sql: str, where: str) -> DataTest:
    single = {key: value for key, value in fields if key not in ("column", "partitioned_by")}
    missing = [key for key in REQUIRED_FIELDS if not single.get(key)]
    if missing:
        raise DataTestFileError(f"{where}: header lacks {', '.join(missing)} (expected -- key: value lines)")
    if single["kind"] not in KINDS:
        raise DataTestFileError(f"{where}: kind '{single['kind']}' is not one of {', '.join(KINDS)}")
    if single["severity"] not in SEVERITIES:
        raise DataTestFileError(f"{where}: severity '{single['severity']}' is not one of {', '.join(SEVERITIES)}")
    if not sql:
        raise DataTestFileError(f"{where}: test '{single['test']}' has no query")
    columns = []
    for key, value in fields:
        if key == "column":
            name, _, type_ = value.partition(" ")
            if not name or not type_:
                raise DataTestFileError(f"{where}: column line '{value}' is not '<name> <type>'")
            columns.append((name, type_.strip()))
    partitioned = tuple(c.strip() for key, value in fields if key == "partitioned_by" for c in value.split(",") if c.strip())
    if single["kind"] == "schema" and not columns:
        raise DataTestFileError(f"{where}: schema test '{single['test']}' declares no columns")
    return DataTest(single["test"], single["table"], single["kind"], single["severity"], single["rule"], sql, where,
                    expectation=single.get("expectation", ""), columns=tuple(columns), partitioned_by=partitioned,
                    where=single.get("where", ""))


def load(folder: Path | str) -> list[DataTest]:
    """Every test of every `<domain>.sql` file in the folder, files in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataTestFileError(f"{folder}: no such folder (run `tablesmith generate`)")
    tests: list[DataTest] = []
    for path in sorted(folder.glob("*.sql")):
        tests.extend(parse(path.read_text(encoding="utf-8"), str(path)))
    return tests


# --- running -----------------------------------------------------------------------------------

def relation(test: DataTest, catalog: str, schema: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in (catalog, schema, test.table))


def run_test(
    spark: Any,
    test: DataTest,
    catalog: str,
    schema: str,
    quality_metrics: Mapping[tuple[str, str], int] | None = None,
) -> Outcome:
    """Run one test. `quality_metrics`: (table, expectation) -> violations the run recorded; when given,
    a warn expectation's count must equal it (the local run keeps them in `_quality_metrics`)."""
    where = relation(test, catalog, schema)
    try:
        frame = spark.sql(test.query(catalog, schema))
        if test.kind == "schema":
            return _schema_outcome(test, where, frame.schema)
        rows = frame.limit(SAMPLE_ROWS + 1).collect()
        count = len(rows) if len(rows) <= SAMPLE_ROWS else frame.count()
    except Exception as exc:  # noqa: BLE001 - only a missing table is an outcome; anything else propagates
        if _condition(exc) == "TABLE_OR_VIEW_NOT_FOUND":
            return Outcome(test, where, "missing", detail=f"table {where} not found")
        raise
    return _rows_outcome(test, where, count, tuple(row.asDict(recursive=True) for row in rows[:SAMPLE_ROWS]), quality_metrics)


def _rows_outcome(test: DataTest, where: str, count: int, sample: tuple[dict[str, Any], ...],
                  quality_metrics: Mapping[tuple[str, str], int] | None) -> Outcome:
    if test.severity == "error":
        return Outcome(test, where, "failed" if count else "passed", count, sample)
    if quality_metrics is not None and test.expectation:
        recorded = quality_metrics.get((test.table, test.expectation))
        if recorded is None:
            return Outcome(test, where, "failed", count, sample,
                           f"no count recorded for warn rule '{test.expectation}' in _quality_metrics")
        if recorded != count:
            return Outcome(test, where, "failed", count, sample,
                           f"{count} rows violate the rule but _quality_metrics recorded {recorded}")
    return Outcome(test, where, "warned" if count else "passed", count, sample)


def run_many(
    spark: Any,
    tests: Iterable[DataTest],
    catalog: str,
    schema: str,
    quality_metrics: Mapping[tuple[str, str], int] | None = None,
    *,
    workers: int = 4,
) -> list[Outcome]:
    """The outcomes `run_test` gives, in the order given, with far fewer Spark jobs: the row tests of
    one table are counted by one query (one scan with a COUNT_IF per test that has a `where` line, a
    scalar COUNT(*) subquery per other test), and only a test that found rows is run again alone,
    for its sample. A counting query that fails (a missing table, say) falls back to one query per
    test, so every outcome is exactly run_test's. Tables are counted `workers` at a time.

    Measured on the catalog's 308 row tests (local server CPU): about 21 s against 39 s for one
    UNION ALL of COUNT(*) subqueries per domain, whose every subquery plans and reads its own scan."""
    from concurrent.futures import ThreadPoolExecutor

    tests = list(tests)
    by_table: dict[str, list[int]] = {}
    for index, test in enumerate(tests):
        by_table.setdefault(test.table, []).append(index)

    def table_outcomes(indexes: list[int]) -> dict[int, Outcome]:
        outcomes = {i: run_test(spark, tests[i], catalog, schema, quality_metrics)
                    for i in indexes if tests[i].kind == "schema"}
        rows = [i for i in indexes if tests[i].kind != "schema"]
        try:
            counts = _counts(spark, [tests[i] for i in rows], catalog, schema) if rows else []
        except Exception:  # noqa: BLE001 - run_test tells a missing table from a real error, test by test
            counts = [None] * len(rows)
        for i, count in zip(rows, counts):
            if count == 0:
                outcomes[i] = _rows_outcome(tests[i], relation(tests[i], catalog, schema), 0, (), quality_metrics)
            else:
                outcomes[i] = run_test(spark, tests[i], catalog, schema, quality_metrics)
        return outcomes

    outcomes: dict[int, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part in pool.map(table_outcomes, by_table.values()):
            outcomes.update(part)
    return [outcomes[i] for i in range(len(tests))]


def _counts(spark: Any, tests: list[DataTest], catalog: str, schema: str) -> list[int]:
    """The number of rows each test's query returns, all of one table counted in one query."""
    columns = [f"COUNT_IF({t.where}) AS `{n}`" if t.where else f"(SELECT COUNT(*) FROM ({t.query(catalog, schema)})) AS `{n}`"
               for n, t in enumerate(tests)]
    row = spark.sql(f"SELECT {', '.join(columns)} FROM {relation(tests[0], catalog, schema)}").collect()[0]
    return [int(row[str(n)]) for n in range(len(tests))]


def _schema_outcome(test: DataTest, where: str, schema: Any) -> Outcome:
    """Names in order and Spark types as declared (nullability is the not_null test's job). Hive-style
    partitioned storage (the local Parquet tables) lists partition columns last: that order passes too."""
    actual = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    declared = list(test.columns)
    partitions_last = ([c for c in declared if c[0] not in test.partitioned_by]
                       + [c for p in test.partitioned_by for c in declared if c[0] == p])
    if actual in (declared, partitions_last):
        return Outcome(test, where, "passed")
    return Outcome(test, where, "failed", detail="the table's schema differs from the spec\n" + _schema_diff(declared, actual))


def _schema_diff(declared: list[tuple[str, str]], actual: list[tuple[str, str]]) -> str:
    lines = []
    for i in range(max(len(declared), len(actual))):
        want = declared[i] if i < len(declared) else ("<none>", "")
        got = actual[i] if i < len(actual) else ("<none>", "")
        marker = "  " if want == got else "!="
        lines.append(f"  {marker} #{i + 1}: declared {want[0]} {want[1]}  found {got[0]} {got[1]}")
    return "\n".join(lines)


def _condition(exc: Exception) -> str:
    for getter in ("getCondition", "getErrorClass"):  # Spark 4 renamed getErrorClass
        method = getattr(exc, getter, None)
        if callable(method):
            try:
                value = method()
            except Exception:  # noqa: BLE001 - an exception without an error class
                value = None
            if value:
                return str(value)
    return ""


def run_all(
    spark: Any,
    tests: Iterable[DataTest],
    catalog: str,
    schema: str,
    quality_metrics: Mapping[tuple[str, str], int] | None = None,
    echo: Callable[[str], None] | None = None,
) -> Report:
    report = Report(run_many(spark, tests, catalog, schema, quality_metrics))
    if echo is not None:
        for outcome in report.outcomes:
            echo(f"{outcome.status.upper():>7} {outcome.test.id}" + (f" ({outcome.count} rows)" if outcome.count else ""))
    return report


def describe(outcome: Outcome) -> str:
    """A failure or warning as a reader needs it: test, table, rule, offending rows and a sample."""
    test = outcome.test
    label = {"failed": "FAILED", "warned": "WARNING", "missing": "NOT FOUND", "passed": "passed"}[outcome.status]
    lines = [f"{label} {test.id} ({test.kind}, severity {test.severity}; {test.source})",
             f"  table: {outcome.relation}",
             f"  rule:  {test.rule}"]
    if outcome.count:
        lines.append(f"  rows:  {outcome.count} offending")
    if outcome.detail:
        lines.append("  " + outcome.detail.replace("\n", "\n  "))
    if outcome.sample:
        lines.append(f"  sample (first {len(outcome.sample)}):")
        lines.extend(f"    {_row_text(row)}" for row in outcome.sample)
    return "\n".join(lines)


def _row_text(row: Mapping[str, Any], limit: int = 400) -> str:
    text = ", ".join(f"{key}={value!r}" for key, value in row.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_job(spark: Any, folder: Path | str, catalog: str, schema: str, echo: Callable[[str], None] = print) -> Report:
    """The Databricks job's entry point: run every test on the deployed tables, print the report and
    raise DataTestsFailed (failing the task) when an error-severity test found rows.

    A table that does not exist is reported, not failed: the pipeline skips tables whose system
    schemas are not enabled, and daily tables exist only after the first daily run.
    """
    if not catalog or not schema:
        raise ValueError("the data tests need the tables' catalog and schema (job parameters catalog, schema)")
    tests = load(folder)
    echo(f"running {len(tests)} data tests from {folder} on `{catalog}`.`{schema}`")
    report = run_all(spark, tests, catalog, schema, echo=echo)
    echo(report.text())
    if report.failed:
        failures = "\n\n".join(describe(o) for o in report.by_status("failed"))
        raise DataTestsFailed(f"{len(report.by_status('failed'))} data tests failed on `{catalog}`.`{schema}`\n\n{failures}")
    return report
