"""Stage: spec. What a dashboard dataset's SQL reads and returns, derived by sqlglot (Databricks dialect).

A dataset query names catalog tables as ${table} and dashboard parameters as :name (:name.min and
:name.max for a date range, as Lakeview writes them). `analyze` parses it once and returns the
tables it names without the reference syntax, the parameters it uses, the columns it names that no
table declares, and its output columns with their types (sqlglot's qualify + annotate_types over a
schema built from the specs' declared columns). Pure: no Spark, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from engine.names import REFERENCE, quoted_references
from engine.spec.model import DatasetColumn

DIALECT = "databricks"
RANGE_BOUNDS = ("min", "max")


@dataclass(frozen=True)
class SqlProblem:
    code: str
    message: str
    needle: str  # the text to point at in the query ("" when there is none)
    line: int  # 1-based line inside the query text (0 when unknown)


@dataclass(frozen=True)
class ParameterUse:
    name: str
    bound: str | None  # "min" / "max" for :name.min / :name.max, else None
    line: int


@dataclass(frozen=True)
class BareTable:
    name: str  # as written, dotted
    line: int


@dataclass(frozen=True)
class QueryAnalysis:
    columns: tuple[DatasetColumn, ...]
    parameters: tuple[ParameterUse, ...]
    bare_tables: tuple[BareTable, ...]
    problems: tuple[SqlProblem, ...]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(sorted({p.name for p in self.parameters}))


def analyze(query: str, schema: Mapping[str, Mapping[str, str]], range_parameters: frozenset[str]) -> QueryAnalysis:
    """`schema`: table name -> {column: Databricks type} for every ${table} the query may read.

    `range_parameters`: parameters that are date ranges (typed DATE at :p.min / :p.max).
    """
    frozen = tuple(sorted((t, tuple(cols.items())) for t, cols in schema.items()))  # declared order: SELECT * keeps it
    return _analyze(query, frozen, range_parameters)


@lru_cache(maxsize=1024)
def _analyze(query: str, schema: tuple, range_parameters: frozenset[str]) -> QueryAnalysis:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError, TokenError

    references = {m.group(1) for m in REFERENCE.finditer(query)}
    text = quoted_references(query)
    try:
        trees = [t for t in sqlglot.parse(text, read=DIALECT) if t is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = first.get("description") or str(exc).splitlines()[0]
        return _failed(SqlProblem("DATASET_SQL_SYNTAX", f"the query does not parse as Databricks SQL: {message}",
                                  first.get("highlight") or "", int(first.get("line") or 0)))
    except (TokenError, SqlglotError, ValueError) as exc:
        return _failed(SqlProblem("DATASET_SQL_SYNTAX", f"the query does not parse as Databricks SQL: {str(exc).splitlines()[0][:200]}", "", 0))
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        found = "several statements" if len(trees) > 1 else (f"a {trees[0].key.upper()} statement" if trees else "nothing")
        return _failed(SqlProblem("DATASET_NOT_QUERY", f"a dataset is one SELECT query; found {found}", "", 0))
    tree = trees[0]

    problems: list[SqlProblem] = []
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    bare = []
    for table in tree.find_all(exp.Table):
        if not table.name:  # table-valued functions, VALUES
            continue
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        dotted = ".".join(parts)
        quoted = all(part.args.get("quoted") for part in table.parts)
        if quoted and dotted in references:
            continue
        if len(parts) == 1 and dotted.lower() in ctes:
            continue
        bare.append(BareTable(dotted, _line(table.this)))

    uses = []
    for placeholder in list(tree.find_all(exp.Placeholder)):
        name = placeholder.name
        parent = placeholder.parent
        bound = parent.expression.name if isinstance(parent, exp.Dot) and parent.this is placeholder else None
        line = _line(placeholder)
        if not name:
            problems.append(SqlProblem("PARAMETER_USAGE", "positional parameters (?) are not supported: name it, :name", "?", line))
            continue
        uses.append(ParameterUse(name, bound, line))
        if name in range_parameters:
            if bound not in RANGE_BOUNDS:
                problems.append(SqlProblem("PARAMETER_USAGE", f"':{name}' is a date range: use :{name}.min and :{name}.max", f":{name}", line))
                continue
            typed = exp.cast(exp.null(), exp.DataType.build("DATE"))
            parent.replace(typed)
        else:
            if bound is not None:
                problems.append(SqlProblem("PARAMETER_USAGE", f"':{name}.{bound}': only a date range filter has .min and .max", f":{name}", line))
                continue
            placeholder.replace(exp.cast(exp.null(), exp.DataType.build("STRING")))

    known = {name for name, _ in schema}
    readable = not bare and references <= known
    columns: tuple[DatasetColumn, ...] = ()
    if readable:
        try:
            columns, unresolved = _resolve(tree, {name: dict(cols) for name, cols in schema})
        except SqlglotError as exc:
            problems.append(SqlProblem("DATASET_SQL", f"sqlglot cannot resolve the query's columns: {str(exc).splitlines()[0][:200]}", "", 0))
        else:
            for name, table, line in unresolved:
                where = f" in {table}" if table else ""
                problems.append(SqlProblem("UNDECLARED_COLUMN", f"column '{name}'{where} is not a declared column of the tables the query reads", name, line))
            for column in columns:
                if column.name.startswith("_col_"):
                    problems.append(SqlProblem("DATASET_UNNAMED_COLUMN",
                                               "every output column needs a name: give the expression an alias (AS name)", "", 0))
                    break
    return QueryAnalysis(columns, tuple(uses), tuple(bare), tuple(problems))


def _failed(problem: SqlProblem) -> QueryAnalysis:
    return QueryAnalysis((), (), (), (problem,))


def _line(node) -> int:
    return int(node.meta.get("line") or 0) if hasattr(node, "meta") else 0


def _resolve(tree, schema: dict[str, dict[str, str]]) -> tuple[tuple[DatasetColumn, ...], list[tuple[str, str, int]]]:
    """Output columns (name, type) and every column no table or alias provides (name, qualifier, line)."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    qualified = qualify(tree, schema=schema, dialect=DIALECT, validate_qualify_columns=False, identify=False)
    unresolved = []
    for scope in traverse_scope(qualified):
        missing = list(scope.unqualified_columns)
        if not scope.is_correlated_subquery and not scope.pivots:
            missing += list(scope.external_columns)
        for column in missing:
            unresolved.append((column.name, column.table, _line(column.this)))
    typed = annotate_types(qualified, schema=schema, dialect=DIALECT)
    columns = tuple(DatasetColumn(select.alias_or_name, select.type.sql(DIALECT) if select.type else "UNKNOWN")
                    for select in typed.selects)
    return columns, sorted(set(unresolved), key=lambda item: (item[2], item[0]))
