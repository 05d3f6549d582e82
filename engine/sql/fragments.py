"""The SQL a spec carries, parsed once with sqlglot's Databricks dialect and checked statically.

Expressions (filter, column expr, expectation, alert condition) are pasted into generated SQL, so
each must be exactly one expression with no comment. Queries must be one SELECT whose output
names every declared column, whose aggregates are grouped, and whose columns' lineage is known
(a column derived from a PII column is PII). No sqlglot exception escapes: every failure is a
`SqlProblem` with a stable code and, where sqlglot knows it, a line and column in the fragment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError

from engine.names import did_you_mean, flat_table_name, quoted_references, resolve_references
from engine.sql.types import Array, ColumnType, Struct, TypeSyntaxError, parse_type

DIALECT = "databricks"


@dataclass(frozen=True)
class SqlProblem:
    code: str
    message: str
    line: int = 0  # 1-based, within the fragment; 0 when sqlglot does not say
    col: int = 0
    near: str = ""  # text at the problem, to find it in the spec file


@dataclass(frozen=True)
class ParsedQuery:
    tree: exp.Query
    output_columns: tuple[str, ...] | None  # None when a `*` hides them

    @cached_property
    def named(self) -> frozenset[str]:
        """Every identifier the query writes (lower case): its columns, tables and aliases."""
        return frozenset(identifier.name.lower() for identifier in self.tree.find_all(exp.Identifier))

    @cached_property
    def expands_star(self) -> bool:
        """A SELECT list holds `*` or `t.*` (`COUNT(*)` is no such star)."""
        return any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star)
                   for select in self.tree.find_all(exp.Select) for p in select.expressions)


# `${some_table}` -> `some_table`, `${system.billing.usage}` -> `system`.`billing`.`usage`.
with_placeholders = quoted_references


def _syntax_problem(error: SqlglotError, code: str) -> SqlProblem:
    first = str(error).splitlines()[0][:200]
    if isinstance(error, ParseError) and error.errors:
        detail = error.errors[0]
        return SqlProblem(code, detail.get("description") or first, int(detail.get("line") or 0),
                          int(detail.get("col") or 0), str(detail.get("highlight") or "").strip())
    return SqlProblem(code, first)


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> tuple[exp.Expression | None, SqlProblem | None]:
    """One boolean or scalar expression, no statement, no comment; cached per distinct text."""
    try:
        trees = [t for t in sqlglot.parse(text, read=DIALECT) if t is not None]
    except (SqlglotError, ValueError) as error:  # TokenError (an unclosed quote or /*) included
        return None, _syntax_problem(error, "SQL_SYNTAX") if isinstance(error, SqlglotError) else SqlProblem("SQL_SYNTAX", str(error))
    if len(trees) != 1:
        return None, SqlProblem("SQL_STATEMENTS", "expected exactly one expression, found several statements" if trees
                                else "expected an expression, found nothing")
    tree = trees[0]
    if isinstance(tree, (exp.Query, exp.Command, exp.DDL, exp.DML)):
        return None, SqlProblem("SQL_NOT_EXPRESSION", f"expected an expression, found a {tree.key.upper()} statement")
    if any(node.comments for node in tree.walk()):
        return None, SqlProblem("SQL_COMMENT", "comments are not allowed here: the expression is pasted into generated SQL")
    return tree, None


@lru_cache(maxsize=4096)
def expression_columns(text: str) -> tuple[tuple[str, ...] | None, str]:
    """Root column names an expression uses (lambda variables excluded), or None and the problem."""
    tree, problem = parse_expression(text)
    if tree is None:
        assert problem is not None
        return None, problem.message
    bound = {p.name.lower() for lam in tree.find_all(exp.Lambda) for p in lam.expressions}
    roots = [column.table or column.name for column in tree.find_all(exp.Column)]
    return tuple(r for r in roots if r.lower() not in bound), ""


def selected_from(expression: exp.Expression, table: str) -> ParsedQuery:
    """`SELECT <expression> FROM <table>` as a parsed query, the expression keeping its own line and
    column: how a source table's column expressions and filter are checked like a query."""
    return ParsedQuery(exp.select(expression.copy()).from_(exp.Table(this=exp.to_identifier(table))), None)


@lru_cache(maxsize=1024)
def parse_query(query: str) -> tuple[ParsedQuery | None, SqlProblem | None]:
    """One SELECT (CTEs, set operations allowed); references already in ${...} form."""
    try:
        trees = [t for t in sqlglot.parse(with_placeholders(query), read=DIALECT) if t is not None]
    except SqlglotError as error:
        return None, _syntax_problem(error, "QUERY_SYNTAX")
    except ValueError as error:
        return None, SqlProblem("QUERY_SYNTAX", str(error))
    if len(trees) != 1:
        return None, SqlProblem("QUERY_STATEMENTS", f"expected exactly one SELECT statement, found {len(trees)} statements")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        return None, SqlProblem("QUERY_NOT_SELECT", f"expected a SELECT query, found a {tree.key.upper()} statement")
    return ParsedQuery(tree, _output_columns(tree)), None


def _output_columns(tree: exp.Query) -> tuple[str, ...] | None:
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this  # a UNION's columns are its first branch's
    if not isinstance(select, exp.Select):
        return None
    names = []
    for projection in select.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            return None
        names.append(projection.alias_or_name)
    return tuple(names)


def aggregate_problems(parsed: ParsedQuery) -> list[SqlProblem]:
    """Columns selected next to aggregates that no GROUP BY covers (Spark rejects them at run time)."""
    problems = []
    for select in parsed.tree.find_all(exp.Select):
        group = select.args.get("group")
        if group is not None and group.args.get("all"):
            continue  # GROUP BY ALL groups by every non-aggregate
        aggregated = any(_aggregates(p) for p in select.expressions) or select.args.get("having") is not None
        if group is None and not aggregated:
            continue
        keys = _group_keys(group)
        for position, projection in enumerate(select.expressions, start=1):
            if isinstance(projection, exp.Star):
                continue
            if position in keys["ordinals"] or projection.alias_or_name.lower() in keys["names"]:
                continue
            ungrouped = [c for c in _bare_columns(projection) if c.name.lower() not in keys["names"]]
            if not ungrouped:  # checked before printing any SQL: the generator is the slow part
                continue
            if projection.unalias().sql(dialect=DIALECT).lower() in keys["sql"]:
                continue
            for column in ungrouped:
                if column.sql(dialect=DIALECT).lower() not in keys["sql"]:
                    clause = "the GROUP BY" if group is not None else "a GROUP BY (the SELECT also aggregates)"
                    problems.append(SqlProblem(
                        "AGGREGATE_WITHOUT_GROUP_BY",
                        f"'{projection.sql(dialect=DIALECT)[:80]}' uses column '{column.name}', which is neither aggregated nor in {clause}",
                        near=column.name))
                    break
    return problems


def _aggregates(node: exp.Expression) -> bool:
    return any(not _inside(agg, exp.Window, node) for agg in node.find_all(exp.AggFunc))


def _inside(node: exp.Expression, kind: type, stop: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop.parent:
        if isinstance(parent, kind):
            return True
        parent = parent.parent
    return False


def _bare_columns(projection: exp.Expression) -> list[exp.Column]:
    """Columns outside any aggregate, window or subquery (lambda variables excluded)."""
    bound = {p.name.lower() for lam in projection.find_all(exp.Lambda) for p in lam.expressions}
    bare = []
    for column in projection.find_all(exp.Column):
        if column.name.lower() in bound or isinstance(column.this, exp.Star):
            continue
        if any(_inside(column, kind, projection) for kind in (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)):
            continue
        bare.append(column)
    return bare


def _group_keys(group: exp.Group | None) -> dict[str, set]:
    keys: dict[str, set] = {"ordinals": set(), "names": set(), "sql": set()}
    if group is None:
        return keys
    for key in group.expressions:
        if isinstance(key, exp.Literal) and key.is_int:
            keys["ordinals"].add(int(key.this))
            continue
        keys["sql"].add(key.sql(dialect=DIALECT).lower())
        if isinstance(key, exp.Column):
            keys["names"].add(key.name.lower())
    return keys


def unknown_columns(parsed: ParsedQuery, schema: Mapping[str, Mapping[str, str]]) -> list[SqlProblem] | None:
    """The columns a query names that no table it reads has and that it does not define itself.

    `schema`: flat_table_name -> {column: type} of every table the query reads. sqlglot qualifies
    the query against it; a column it leaves unresolved is reported only when its name is nowhere
    else either (not a column of any table read, not an alias, a CTE's or subquery's column or a
    lambda's variable anywhere in the query), so an unusual construct sqlglot does not follow is
    never taken for a typo. Names such as `col1` (Spark's for an unnamed VALUES column) are left
    alone. A problem's message is the flat name of the table a qualified reference (`t.c`) names, or
    "". None when sqlglot cannot qualify the query.
    """
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    tables = {t: dict(c) for t, c in schema.items()}
    if not _names_unknown(parsed.tree, tables):
        return []  # the common case, without qualifying (the slow part)
    known = _plain_names(parsed.tree, tables)
    problems: dict[tuple[str, int, int], SqlProblem] = {}
    unknown_qualified: set[str] = set()  # `alias.name` with no such column: sqlglot stops at the first
    for _ in range(_MAX_QUALIFY_PASSES):
        tree = parsed.tree.copy()
        for table in tree.find_all(exp.Table):  # one depth for sqlglot's schema: system.a.b -> _system__a__b
            table.set("this", exp.to_identifier(_flat_name(table)))
            table.set("db", None)
            table.set("catalog", None)
        by_alias = {table.alias_or_name.lower(): table.name for table in tree.find_all(exp.Table)}
        for column in list(tree.find_all(exp.Column)):
            if column.table and column.name.lower() in unknown_qualified:
                _add(problems, column.this, of_table=by_alias.get(column.table.lower(), ""))
                column.replace(exp.Null())
        try:
            qualified = qualify(tree, dialect=DIALECT, schema=tables, validate_qualify_columns=False, quote_identifiers=False)
            scopes = list(traverse_scope(qualified))
            break
        except OptimizeError as error:
            unknown = _UNKNOWN_QUALIFIED.fullmatch(str(error))
            if unknown is None or unknown.group(1).lower() in unknown_qualified:
                return None
            unknown_qualified.add(unknown.group(1).lower())
        except (SqlglotError, ValueError, KeyError):
            return None
    else:
        return None
    for scope in scopes:
        candidates = list(scope.unqualified_columns)
        if not scope.is_correlated_subquery and not scope.pivots:
            candidates += scope.external_columns
        for column in candidates:
            head = column.args.get("table")
            if isinstance(head, exp.Identifier) and head.name.lower() not in known:
                _add(problems, head)  # `usage_metadat.job_id`: neither a table nor a column is called so
            elif not (column.name.lower() in known or _SPARK_DEFAULT_NAME.fullmatch(column.name.lower())):
                _add(problems, column.this)
    first: dict[str, SqlProblem] = {}  # each name once, where the query first names it
    for problem in sorted(problems.values(), key=lambda p: (p.line, p.col)):
        first.setdefault(problem.near.lower(), problem)
    return list(first.values())


def _flat_name(table: exp.Table) -> str:
    return flat_table_name(".".join(part for part in (table.catalog, table.db, table.name) if part))


def _names_unknown(tree: exp.Expression, schema: Mapping[str, Mapping[str, str]]) -> bool:
    """Some column the query names is not plainly there: `t.c` where t reads a table without c, or a
    name no table read has and the query does not define. Then qualifying decides."""
    columns = {table.lower(): {c.lower() for c in read} for table, read in schema.items()}
    known = _plain_names(tree, schema)
    by_alias = {t.alias_or_name.lower(): columns[_flat_name(t).lower()] for t in tree.find_all(exp.Table)
                if _flat_name(t).lower() in columns}
    every_column = {column for read in columns.values() for column in read}
    for column in tree.find_all(exp.Column):
        name, qualifier = column.name.lower(), column.table.lower()
        if qualifier in every_column and qualifier not in by_alias:
            continue  # `struct_column.field`: unknown_fields checks the field
        of_table = by_alias.get(qualifier) if qualifier else None
        if name not in (of_table if of_table is not None else known) or (qualifier and qualifier not in known):
            return True
    return False


def _plain_names(tree: exp.Expression, schema: Mapping[str, Mapping[str, str]]) -> set[str]:
    """Lower-case names no column reference can be a typo of: every column of the tables read, and
    every name the query defines as written (aliases, CTE and subquery columns, lambda variables;
    read before qualifying, which adds an alias to each output column)."""
    names = {i.name.lower() for i in tree.find_all(exp.Identifier) if not isinstance(i.parent, exp.Column)}
    return names | {column.lower() for columns in schema.values() for column in columns}


def _add(problems: dict[tuple[str, int, int], SqlProblem], name: exp.Identifier, of_table: str = "") -> None:
    """`of_table`: the (flat) name of the table a qualified reference names, as the problem's message."""
    line, col = int(name.meta.get("line") or 0), int(name.meta.get("col") or 0)
    problems.setdefault((name.name.lower(), line, col), SqlProblem("UNKNOWN_COLUMN", of_table, line, col, name.name))



def unknown_fields(parsed: ParsedQuery, schema: Mapping[str, Mapping[str, str]]) -> list[SqlProblem]:
    """`s.f` (or `t.s.f`, `s.f.g`) where s is a STRUCT column of a table the query reads and f is none of
    its fields, at any depth; an ARRAY of structs is looked into as Spark does (`arr.f`: every element's f).

    `schema` as for unknown_columns, with Spark SQL types. Only paths that cannot mean anything else are
    checked: a head the query itself defines (an alias, a CTE's or a lambda's name) or that two tables
    read with different types are skipped, and so is a path once it reaches a MAP or a scalar.
    """
    types: dict[str, set[str]] = {}
    for columns in schema.values():
        for column, type_text in columns.items():
            types.setdefault(column.lower(), set()).add(type_text)
    structs = {name for name, texts in types.items() if any("struct" in t.lower() for t in texts)}
    paths = sorted((path for path in (_dotted_path(c) for c in parsed.tree.find_all(exp.Column)) if len(path) > 1),
                   key=lambda path: (int(path[-1].meta.get("line") or 0), int(path[-1].meta.get("col") or 0)))
    if not any(identifier.name.lower() in structs for path in paths for identifier in path[:2]):
        return []  # the common case: no path starts at a struct column
    tables = {t.alias_or_name.lower() for t in parsed.tree.find_all(exp.Table)}
    defined = {i.name.lower() for i in parsed.tree.find_all(exp.Identifier)
               if not isinstance(i.parent, (exp.Column, exp.Dot, exp.Table))}
    problems: dict[str, SqlProblem] = {}  # each wrong path once, where the query first names it
    for path in paths:
        if path[0].name.lower() in tables and len(path) > 2:
            path = path[1:]
        head = path[0].name.lower()
        if head not in structs or head in defined or len(types[head]) != 1:
            continue
        problem = _field_problem(_column_type(next(iter(types[head]))), path)
        if problem is not None:
            problems.setdefault(problem.message.lower(), problem)
    return sorted(problems.values(), key=lambda p: (p.line, p.col))


def _dotted_path(column: exp.Column) -> list[exp.Identifier]:
    """The identifiers of `a.b.c...` as written, the column's parts and the dots sqlglot parsed after them."""
    path = [part for part in column.parts if isinstance(part, exp.Identifier)]
    node: exp.Expression = column
    while isinstance(node.parent, exp.Dot) and node.parent.this is node and isinstance(node.parent.expression, exp.Identifier):
        node = node.parent
        path.append(node.expression)
    return path


def _field_problem(column_type: ColumnType | None, path: list[exp.Identifier]) -> SqlProblem | None:
    walked = path[0].name
    for identifier in path[1:]:
        while isinstance(column_type, Array):
            column_type = column_type.element
        if not isinstance(column_type, Struct):
            return None
        fields = {f.name.lower(): f for f in column_type.fields}
        found = fields.get(identifier.name.lower())
        if found is None:
            names = sorted(f.name for f in column_type.fields)
            hint = did_you_mean(identifier.name, names) or f" (its fields: {', '.join(names)})"
            line, col = int(identifier.meta.get("line") or 0), int(identifier.meta.get("col") or 0)
            return SqlProblem("UNKNOWN_STRUCT_FIELD", f"'{identifier.name}' is not a field of the STRUCT {walked}{hint}",
                              line, col, identifier.name)
        walked, column_type = f"{walked}.{found.name}", found.type
    return None


def _column_type(text: str) -> ColumnType | None:
    try:
        return parse_type(text)
    except TypeSyntaxError:
        return None  # reported by column_types


_SPARK_DEFAULT_NAME = re.compile(r"col\d+")
_UNKNOWN_QUALIFIED = re.compile(r"Unknown column: (.+)")
_MAX_QUALIFY_PASSES = 20


def may_derive_from(parsed: ParsedQuery, columns: set[str]) -> bool:
    """False when no output column can be computed from any of `columns` (lower case).

    column_sources finds a column only where the query names it or where a SELECT list's star
    expands to it; without either, qualifying the query (the slow part) cannot find one.
    Both are worked out once per parsed query (parses are cached by text).
    """
    return parsed.expands_star or not parsed.named.isdisjoint(columns)


def column_sources(parsed: ParsedQuery, schema: Mapping[str, Mapping[str, str]]) -> dict[str, set[tuple[str, str]]] | None:
    """For every output column (lower case), the (table, column) pairs it is computed from.

    The query is qualified once (sqlglot's optimizer gives every column its source alias and
    expands `*`), then each output column is traced through CTEs, subqueries and set operations
    (by position); far cheaper than sqlglot.lineage's node graph. None when it cannot qualify.
    """
    from sqlglot.optimizer.qualify import qualify

    try:
        qualified = qualify(parsed.tree.copy(), dialect=DIALECT, schema=dict(schema),
                            validate_qualify_columns=False, quote_identifiers=False)  # names are compared lower-cased
    except (SqlglotError, ValueError, KeyError):
        return None
    tracer = _Tracer()
    return {name.lower(): tracer.output(qualified, i, {}) for i, name in enumerate(parsed.output_columns or ())}


class _Tracer:
    """Source columns of one output column (by position) of a qualified query."""

    def __init__(self) -> None:
        self.memo: dict[tuple[int, int], set[tuple[str, str]]] = {}

    def output(self, query: exp.Expression, position: int, ctes: Mapping[str, exp.Expression]) -> set[tuple[str, str]]:
        key = (id(query), position)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = set()  # recursion guard
        ctes = {**ctes, **{cte.alias_or_name.lower(): cte.this for cte in getattr(query, "ctes", [])}}
        found: set[tuple[str, str]] = set()
        if isinstance(query, exp.Subquery):
            found = self.output(query.this, position, ctes)
        elif isinstance(query, exp.SetOperation):
            found = self.output(query.this, position, ctes) | self.output(query.expression, position, ctes)
        elif isinstance(query, exp.Select) and position < len(query.expressions):
            found = self.expression(query.expressions[position], query, ctes)
        self.memo[key] = found
        return found

    def expression(self, node: exp.Expression, select: exp.Select, ctes: Mapping[str, exp.Expression]) -> set[tuple[str, str]]:
        sources = self._sources(select, ctes)
        found: set[tuple[str, str]] = set()
        for column in node.find_all(exp.Column):
            if column.find_ancestor(exp.Count, exp.ApproxDistinct) is not None:
                continue  # a count of identities is not an identity
            inner = column.find_ancestor(exp.Select)
            if inner is not None and inner is not select:  # a scalar subquery: its own FROM
                found |= self.expression(column, inner, ctes)
                continue
            source = sources.get(column.table.lower())
            if isinstance(source, str):
                found.add((source, column.name))
            elif source is not None:
                found |= self.named(source, column.name, ctes)
        return found

    def named(self, query: exp.Expression, name: str, ctes: Mapping[str, exp.Expression]) -> set[tuple[str, str]]:
        body = query
        while isinstance(body, (exp.Subquery, exp.SetOperation)):
            body = body.this
        names = [n.lower() for n in getattr(body, "named_selects", [])]
        return self.output(query, names.index(name.lower()), ctes) if name.lower() in names else set()

    @staticmethod
    def _sources(select: exp.Select, ctes: Mapping[str, exp.Expression]) -> dict[str, str | exp.Expression]:
        """Alias -> a table name, or the query behind a CTE or subquery."""
        out: dict[str, str | exp.Expression] = {}
        origin = select.args.get("from_") or select.args.get("from")  # the key's name differs across sqlglot versions
        relations = ([origin.this] if origin else []) + [j.this for j in select.args.get("joins") or []]
        for relation in relations:
            alias = relation.alias_or_name.lower()
            if isinstance(relation, exp.Table):
                cte = ctes.get(relation.name.lower()) if not relation.db else None
                out[alias] = cte if cte is not None else relation.name
            elif isinstance(relation, exp.Subquery):
                out[alias] = relation.this
        return out


_MARKER = "__tablesmith_reference__"


@lru_cache(maxsize=1024)
def bare_table_names(query: str) -> tuple[str, ...] | None:
    """Tables a query names without ${...} (CTE names excluded); None when it does not parse.

    Read from the parse tree, so a string literal such as 'moved from base_usage' is never a table.
    """
    try:
        trees = [t for t in sqlglot.parse(resolve_references(query, lambda _: f"`{_MARKER}`"), read=DIALECT) if t is not None]
    except (SqlglotError, ValueError):
        return None
    names = []
    for tree in trees:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not table.name or table.name == _MARKER or (not table.db and table.name.lower() in ctes):
                continue
            if isinstance(table.this, exp.Identifier):
                names.append(".".join(part for part in (table.catalog, table.db, table.name) if part))
    return tuple(names)
