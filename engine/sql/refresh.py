"""Can Databricks refresh a materialized view's query incrementally? Read from the sqlglot parse tree.

Documented rules this module relies on (checked 2026-11; Databricks decides at refresh time with a
cost model, so "incremental" here means *eligible*, never guaranteed):

- Incremental refresh of materialized views needs serverless pipelines; otherwise every refresh
  recomputes. https://docs.databricks.com/aws/en/ldp/incremental-refresh
- Supported for incremental refresh (the page's table of SQL keywords and clauses): SELECT
  expressions with deterministic built-in functions and immutable UDFs, GROUP BY, WITH (CTEs),
  UNION ALL, FROM over Delta tables, materialized views and streaming tables, WHERE and HAVING,
  INNER JOIN, LEFT / RIGHT / FULL OUTER JOIN, OVER (window functions) when PARTITION BY is given,
  QUALIFY. "Non-deterministic functions, for example CURRENT_TIMESTAMP, are not supported." A query
  that uses anything outside that table is recomputed in full at every refresh.
  (same page; the Azure copy https://learn.microsoft.com/azure/databricks/optimizations/incremental-refresh)
- The reasons Databricks itself gives when an incremental refresh policy cannot be met
  (MATERIALIZED_VIEW_NOT_INCREMENTALIZABLE error class): EXPRESSION_NOT_DETERMINISTIC,
  OPERATOR_NOT_INCREMENTALIZABLE, SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE,
  WINDOW_WITHOUT_PARTITION_BY, AGGREGATE_NOT_TOP_NODE, INPUT_NOT_IN_DELTA, ROW_TRACKING_NOT_ENABLED,
  UDF_NOT_DETERMINISTIC. The rule codes below reuse those names.
  https://docs.databricks.com/aws/en/error-messages/materialized-view-not-incrementalizable-error-class
- `REFRESH POLICY AUTO | INCREMENTAL | INCREMENTAL STRICT | FULL` (AUTO by default) chooses what a
  refresh does when incremental is impossible; EXPLAIN CREATE MATERIALIZED VIEW previews it.
  https://docs.databricks.com/aws/en/ldp/developer/ldp-sql-ref-create-materialized-view-refresh-policy

- Not applied: the versions of the incremental-refresh page read here (the older English table and
  a newer translated one) say "EXPECTATIONS: No. Materialized views that use expectations are always
  fully refreshed". Most catalog views carry expectations; the current page could not be read to
  confirm it still holds, so this is reported (docs/ARCHITECTURE.md, "Refresh cost") rather than
  enforced. EXPLAIN CREATE MATERIALIZED VIEW on a workspace settles it.

Everything here is static and conservative: a construct the documented table does not list counts
against the query (OPERATOR_NOT_INCREMENTALIZABLE): LIMIT, ORDER BY, SELECT DISTINCT, UNION /
INTERSECT / EXCEPT (distinct), CROSS JOIN, SEMI / ANTI joins, PIVOT, TABLESAMPLE. Generators such as
explode() (also under LATERAL VIEW) are deterministic built-in functions, which the table supports in
SELECT expressions, so they do not count. Source-level rules (row tracking on the tables a
query reads, views) need the specs and live in engine.spec.refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

from sqlglot import exp

from engine.sql.fragments import DIALECT, parse_expression, parse_query

DOCS = "https://docs.databricks.com/aws/en/ldp/incremental-refresh"
ERROR_CLASS = "https://docs.databricks.com/aws/en/error-messages/materialized-view-not-incrementalizable-error-class"
ROW_TRACKING = "https://docs.databricks.com/aws/en/delta/row-tracking"


@dataclass(frozen=True)
class Rule:
    """One documented reason a query is recomputed in full; `find` names each offending construct."""

    code: str  # Databricks' own reason name (ERROR_CLASS) where it has one
    why: str
    doc: str
    find: Callable[[exp.Expression], Iterator[str]] | None = None  # None: checked from the specs (engine.spec.refresh)


@dataclass(frozen=True, order=True)
class Reason:
    code: str
    construct: str
    why: str

    def __str__(self) -> str:
        return f"{self.construct} {self.why}"


# Functions whose value changes between refreshes or rows (by sqlglot class, else by name as parsed).
NON_DETERMINISTIC_CLASSES = ("CurrentDate", "CurrentTimestamp", "CurrentTime", "CurrentDatetime", "Localtimestamp",
                             "Rand", "Randn", "Uuid", "Shuffle")
NON_DETERMINISTIC_NAMES = frozenset({
    "current_date", "current_timestamp", "now", "curdate", "localtimestamp", "rand", "randn", "random", "uuid",
    "shuffle", "monotonically_increasing_id", "spark_partition_id", "input_file_name", "input_file_block_start",
    "input_file_block_length",
})


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else ""


def _shown(node: exp.Expression, limit: int = 60) -> str:
    text = " ".join(node.sql(dialect=DIALECT).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _non_deterministic(tree: exp.Expression) -> Iterator[str]:
    for node in tree.find_all(exp.Func):
        if type(node).__name__ in NON_DETERMINISTIC_CLASSES or _function_name(node) in NON_DETERMINISTIC_NAMES:
            yield f"{_function_name(node)}()"


def _window_without_partition(tree: exp.Expression) -> Iterator[str]:
    """`OVER (...)` without PARTITION BY; `OVER w` is judged by the WINDOW clause that defines w."""
    named = {}
    for select in tree.find_all(exp.Select):
        for definition in select.args.get("windows") or []:
            named[definition.this.name.lower()] = bool(definition.args.get("partition_by"))
    for window in tree.find_all(exp.Window):
        if window.parent is not None and window.arg_key == "windows":
            continue  # a WINDOW clause definition, judged where it is used
        if window.args.get("partition_by"):
            continue
        reference = window.args.get("alias")
        if reference is not None and named.get(reference.name.lower()):
            continue
        yield _shown(window)


def _subquery_expressions(tree: exp.Expression) -> Iterator[str]:
    """A query used as a value (scalar subquery, IN (SELECT ...), EXISTS), not as a FROM / JOIN relation."""
    for node in tree.find_all(exp.Exists):
        yield "EXISTS (subquery)"
    for node in tree.find_all(exp.In):
        if node.args.get("query") is not None:
            yield "IN (subquery)"
    for node in tree.find_all(exp.Subquery):
        if not isinstance(node.parent, (exp.From, exp.Join, exp.SetOperation, exp.Subquery, exp.CTE, exp.In, exp.Lateral)):
            yield f"scalar subquery ({_shown(node.this, 40)})"


def _unlisted_operators(tree: exp.Expression) -> Iterator[str]:
    for node in tree.find_all(exp.Limit):
        yield "LIMIT"
    for node in tree.find_all(exp.Order):
        if isinstance(node.parent, (exp.Select, exp.SetOperation)):
            yield "ORDER BY"
    for select in tree.find_all(exp.Select):
        if select.args.get("distinct") is not None:
            yield "SELECT DISTINCT"
        for join in select.args.get("joins") or []:
            kind, side = (join.args.get("kind") or "").upper(), (join.args.get("side") or "").upper()
            if kind == "CROSS" or (not kind and not side and join.args.get("on") is None and not join.args.get("using")):
                yield "CROSS JOIN"
            elif kind in ("SEMI", "ANTI"):
                yield f"{side or 'LEFT'} {kind} JOIN".strip()
    for operation in tree.find_all(exp.SetOperation):
        if isinstance(operation, exp.Union) and not operation.args.get("distinct"):
            continue  # UNION ALL is supported
        name = {exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT"}.get(type(operation), operation.key.upper())
        yield f"{name} (distinct)" if isinstance(operation, exp.Union) else name
    for node in tree.find_all(exp.Pivot):
        yield "UNPIVOT" if node.args.get("unpivot") else "PIVOT"
    for node in tree.find_all(exp.TableSample):
        yield "TABLESAMPLE"


# The one rule table: order is the order reasons are printed in.
RULES: tuple[Rule, ...] = (
    Rule("EXPRESSION_NOT_DETERMINISTIC",
         "(non-deterministic: incremental refresh needs deterministic functions)", DOCS, _non_deterministic),
    Rule("WINDOW_WITHOUT_PARTITION_BY",
         "(window without PARTITION BY: not incrementalizable)", DOCS,
         _window_without_partition),
    Rule("SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE",
         "(subquery used as a value: not incrementalizable; join it instead)", ERROR_CLASS, _subquery_expressions),
    Rule("OPERATOR_NOT_INCREMENTALIZABLE",
         "(not among the documented incremental operators: GROUP BY, WITH, UNION ALL, WHERE/HAVING, "
         "INNER and OUTER joins, OVER with PARTITION BY, QUALIFY)", DOCS,
         _unlisted_operators),
    # Source rules: what a query reads, known only from the specs (engine.spec.refresh applies them).
    Rule("ROW_TRACKING_NOT_ENABLED",
         "(system table read directly: incremental refresh needs sources with row tracking, which system tables "
         "do not document; read it through a streaming table)", ROW_TRACKING),
    Rule("NO_SOURCE_TABLE", "(rows written in the spec: recomputed whole, at no cost)", DOCS),
)
RULES_BY_CODE = {rule.code: rule for rule in RULES}


def reason(code: str, construct: str) -> Reason:
    return Reason(code, construct, RULES_BY_CODE[code].why)


def tree_reasons(tree: exp.Expression) -> tuple[Reason, ...]:
    """Every documented obstacle in one parse tree, each construct once, in rule order."""
    found: list[Reason] = []
    for rule in RULES:
        if rule.find is None:
            continue
        for construct in dict.fromkeys(rule.find(tree)):
            found.append(Reason(rule.code, construct, rule.why))
    return tuple(found)


@lru_cache(maxsize=1024)  # validate assesses each query for its warnings, then again for its report
def query_reasons(query: str) -> tuple[Reason, ...]:
    """Reasons a spec query (`${ref}` syntax) is recomputed in full; () when eligible or unparsable
    (a query that does not parse is already a validation error)."""
    parsed, _ = parse_query(query)
    return tree_reasons(parsed.tree) if parsed is not None else ()


@lru_cache(maxsize=4096)
def expression_reasons(expression: str) -> tuple[Reason, ...]:
    """The same for one SQL expression (a snapshot's filter or a column's expr)."""
    tree, _ = parse_expression(expression)
    return tree_reasons(tree) if tree is not None else ()
