"""Stage: spec. Semantic rules, one function each, run after every document passed the schema.

Each rule yields located Diagnostics; `check` runs all of them so a user sees every error at once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.graph import find_cycle
from engine.sources.system_tables import SYSTEM_TABLES
from engine.sources.system_tables import columns as system_columns
from engine.spec.build import DEFAULT_ALERT_SCHEDULES
from engine.spec.cache import SpecCache, content_key
from engine.spec.errors import Diagnostic, snippet
from engine.sql.fragments import (ParsedQuery, SqlProblem, aggregate_problems, bare_table_names, column_sources,
                                  expression_columns, may_derive_from, parse_expression, parse_query, selected_from,
                                  unknown_columns, unknown_fields, with_placeholders)
from engine.spec.outbound import parse_message, redact_url, url_problem
from engine.spec.loader import KeyPath, Positions
from engine.names import did_you_mean, flat_table_name
from engine.spec.model import (
    CONSOLIDATED_PREFIX,
    IDENTIFIER_COLUMNS,
    REFERENCE,
    SOURCE_WORKSPACE_COLUMN,
    Aggregate,
    Dashboard,
    DashboardScope,
    DatasetKind,
    FilterType,
    Pattern,
    ProjectSettings,
    Schedule,
    Table,
    Widget,
)
from engine.sql.types import TypeSyntaxError, canonical, ddl, type_class

SOURCE_PATTERNS = (Pattern.STREAM, Pattern.SNAPSHOT, Pattern.SCD2)
QUERY_PATTERNS = (Pattern.AGGREGATE, Pattern.VIEW)


@dataclass(frozen=True)
class SpecEntry:
    """A model table with the positions of the file it came from (`prefix`: where inside it)."""

    table: Table
    positions: Positions
    path: Path
    prefix: KeyPath = ()

    def diag(self, path: KeyPath, code: str, message: str, *, key: bool = False) -> Diagnostic:
        return self.positions.diagnostic(self.prefix + path, code, message, key=key)

    @property
    def derived(self) -> bool:
        return self.table.derived_from is not None


@dataclass
class RuleContext:
    entries: list[SpecEntry]
    settings: ProjectSettings | None
    settings_positions: Positions | None
    specs_root: Path
    ghost_names: frozenset[str] = frozenset()  # tables whose files failed the schema: known, not checked
    cache: SpecCache = field(default_factory=SpecCache.disabled)
    by_name: dict[str, list[SpecEntry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.entries:
            self.by_name.setdefault(entry.table.name, []).append(entry)

    def primary(self) -> Iterator[SpecEntry]:
        return (e for e in self.entries if not e.derived)

    def known(self, name: str) -> Table | None:
        found = self.by_name.get(name)
        return found[0].table if found else None


Rule = Callable[[RuleContext], Iterable[Diagnostic]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def check(ctx: RuleContext) -> list[Diagnostic]:
    return [d for r in RULES for d in r(ctx)]


_suggest = did_you_mean


def _where(entry: SpecEntry) -> str:
    loc = entry.table.location
    return f"{loc.file}:{loc.line}"


@rule
def unique_table_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    for name, entries in sorted(ctx.by_name.items()):
        if len(entries) > 1:
            first = entries[0]
            for other in entries[1:]:
                yield other.diag(("name",), "DUPLICATE_TABLE",
                                 f"table '{name}' is already defined at {_where(first)}")


@rule
def file_layout(ctx: RuleContext) -> Iterator[Diagnostic]:
    """specs/<domain>/<table>.yaml: a reader finds a table by its name without searching."""
    for entry in ctx.primary():
        table = entry.table
        if entry.path.stem != table.name:
            yield entry.diag(("name",), "FILE_NAME_MISMATCH", f"table '{table.name}' must live in a file named {table.name}.yaml, not {entry.path.name}")
        folder = entry.path.parent.name
        if folder != table.domain:
            yield entry.diag(("domain",), "DOMAIN_FOLDER_MISMATCH", f"domain '{table.domain}' must match the spec's folder '{folder}/' (specs/<domain>/<table>.yaml)")


@rule
def pattern_requirements(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        t, data = entry.table, entry.positions
        p = t.pattern.value
        if t.pattern in SOURCE_PATTERNS:
            if not t.source:
                yield entry.diag((), "PATTERN_REQUIREMENT", f"pattern '{p}' needs a 'source' (a system table such as system.billing.usage, or another spec)")
            if t.query:
                yield entry.diag(("query",), "PATTERN_REQUIREMENT", f"pattern '{p}' reads 'source' and takes no 'query'; use pattern 'aggregate' for SQL transforms", key=True)
        if t.pattern in QUERY_PATTERNS:
            if not t.query:
                yield entry.diag((), "PATTERN_REQUIREMENT", f"pattern '{p}' needs a 'query' (Spark SQL naming tables as ${{table}})")
            if t.source:
                yield entry.diag(("source",), "PATTERN_REQUIREMENT", f"pattern '{p}' takes its inputs from 'query', not 'source'", key=True)
            if t.filter:
                yield entry.diag(("filter",), "PATTERN_REQUIREMENT", f"pattern '{p}' takes no 'filter'; put a WHERE clause in the query", key=True)
            for i, column in enumerate(t.columns):
                if column.expr:
                    yield entry.diag(("columns", i, "expr"), "PATTERN_REQUIREMENT", f"column expressions apply to source patterns only; compute '{column.name}' in the query", key=True)
        if t.pattern is Pattern.REFERENCE:
            if not t.rows:
                yield entry.diag((), "PATTERN_REQUIREMENT", "pattern 'reference' needs 'rows': the table's rows, one mapping per row")
            for key in ("source", "query", "filter"):
                if data.has((key,)):
                    yield entry.diag((key,), "PATTERN_REQUIREMENT", f"pattern 'reference' holds its rows in the spec and takes no '{key}'", key=True)
        elif data.has(("rows",)):
            yield entry.diag(("rows",), "PATTERN_REQUIREMENT", f"'rows' apply to pattern 'reference' only, not '{p}'", key=True)
        if t.pattern is Pattern.SCD2:
            if t.scd2 is None:
                yield entry.diag((), "PATTERN_REQUIREMENT", "pattern 'scd2' needs an 'scd2' block with 'sequence_by' (e.g. change_time)")
            if not t.keys:
                yield entry.diag((), "PATTERN_REQUIREMENT", "pattern 'scd2' needs 'keys': the entity key, e.g. [workspace_id, job_id]")
        elif t.scd2 is not None:
            yield entry.diag(("scd2",), "PATTERN_REQUIREMENT", f"'scd2' settings apply to pattern 'scd2' only, not '{p}'", key=True)
        if t.pattern is not Pattern.VIEW and data.has(("view",)):
            yield entry.diag(("view",), "PATTERN_REQUIREMENT", f"'view' settings apply to pattern 'view' only, not '{p}'", key=True)


@rule
def declared_columns(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        t = entry.table
        seen: dict[str, int] = {}
        for i, column in enumerate(t.columns):
            lowered = column.name.lower()
            if lowered in IDENTIFIER_COLUMNS:
                yield entry.diag(("columns", i, "name"), "RESERVED_COLUMN", f"'{column.name}' is added to every table by the engine; do not declare it")
            elif lowered in seen:
                yield entry.diag(("columns", i, "name"), "DUPLICATE_COLUMN", f"column '{column.name}' is declared twice (first as columns[{seen[lowered]}])")
            else:
                seen[lowered] = i
        names = {c.name.lower() for c in t.all_columns}
        # Every place a spec names one of its own columns, with the key path to point at.
        named: list[tuple[KeyPath, str]] = [
            ((key, i), value)
            for key, values in (("keys", t.keys), ("partition_by", t.partition_by), ("cluster_by", t.cluster_by))
            for i, value in enumerate(values)
        ]
        if t.scd2 and t.pattern is Pattern.SCD2:
            named.append((("scd2", "sequence_by"), t.scd2.sequence_by))
            if t.scd2.delete_column:
                named.append((("scd2", "delete_column"), t.scd2.delete_column))
        declared = [c.name for c in t.columns]
        for i, row in enumerate(t.rows):
            for key in row:
                if key.lower() not in names:
                    yield entry.diag(("rows", i, key), "UNDECLARED_COLUMN", f"row {i + 1} sets '{key}', which is not a declared column{_suggest(key, declared)}", key=True)
        for path, value in named:
            if value.lower() not in names:
                yield entry.diag(path, "UNDECLARED_COLUMN", f"'{value}' is not a declared column{_suggest(value, declared)}")


@rule
def column_types(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        for i, column in enumerate(entry.table.columns):
            try:
                canonical(column.type)
            except TypeSyntaxError as exc:
                yield entry.diag(("columns", i, "type"), "BAD_TYPE", f"column '{column.name}': {exc}")


def _locate(entry: SpecEntry, path: KeyPath, needle: str) -> tuple[int, int]:
    """Line and column of `needle` inside a (possibly multi-line) value; the value's start if absent."""
    positions = entry.positions
    loc = positions.at(entry.prefix + path)
    lines = positions.text.splitlines()
    for n in range(loc.line - 1, len(lines)):
        start = lines[n].find(needle, loc.col - 1 if n == loc.line - 1 else 0)
        if start >= 0:
            return n + 1, start + 1
    return loc.line, loc.col


def _located(entry: SpecEntry, path: KeyPath, needle: str, code: str, message: str) -> Diagnostic:
    line, col = _locate(entry, path, needle)
    from engine.spec.loader import format_key_path

    return Diagnostic(entry.positions.file, line, col, code, message, format_key_path(entry.prefix + path),
                      snippet(entry.positions.text, line, col))


_BAD_REFERENCE = re.compile(r"\$\{[^}]*\}?")


@rule
def references_resolve(ctx: RuleContext) -> Iterator[Diagnostic]:
    names = set(ctx.by_name) | ctx.ghost_names
    for entry in ctx.primary():
        t = entry.table
        if t.source:
            yield from _check_reference(ctx, entry, ("source",), t.source, t.source, names)
        if t.query:
            for match in REFERENCE.finditer(t.query):
                yield from _check_reference(ctx, entry, ("query",), match.group(1), match.group(0), names)
            valid = {m.span() for m in REFERENCE.finditer(t.query)}
            for match in _BAD_REFERENCE.finditer(t.query):
                if match.span() not in valid:
                    yield _located(entry, ("query",), match.group(0), "BAD_REFERENCE_SYNTAX",
                                   f"'{match.group(0)}' is not a reference: write ${{table_name}} or ${{system.<schema>.<table>}}")
            for bare in bare_table_names(t.query) or ():
                if bare in names or bare.startswith("system."):
                    yield _located(entry, ("query",), bare.split(".")[-1], "BARE_REFERENCE",
                                   f"'{bare}' is named without the reference syntax, so the graph cannot see it: write ${{{bare}}}")


def _check_reference(ctx: RuleContext, entry: SpecEntry, path: KeyPath, name: str, needle: str, names: set[str]) -> Iterator[Diagnostic]:
    if name.startswith("system."):
        if name not in SYSTEM_TABLES:
            yield _located(entry, path, needle, "UNKNOWN_SOURCE",
                           f"{entry.table.name} ({_where(entry)}) reads '{name}', which is not a supported system table{_suggest(name, SYSTEM_TABLES)}")
    elif name not in names:
        yield _located(entry, path, needle, "UNKNOWN_REFERENCE",
                       f"{entry.table.name} ({_where(entry)}) reads '{name}', which does not exist{_suggest(name, names)}")


@rule
def stream_sources(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        t = entry.table
        if t.pattern not in (Pattern.STREAM, Pattern.SCD2) or not t.source:
            continue
        if t.source in SYSTEM_TABLES and not SYSTEM_TABLES[t.source].streamable:
            yield entry.diag(("source",), "SOURCE_NOT_STREAMABLE",
                             f"'{t.source}' does not support streaming reads; use pattern 'snapshot' for it")
        upstream = ctx.known(t.source)
        if upstream is not None and upstream.dataset_kind is not DatasetKind.STREAMING_TABLE:
            yield entry.diag(("source",), "SOURCE_NOT_STREAMABLE",
                             f"'{t.source}' is a {upstream.dataset_kind.value.replace('_', ' ')}, not a streaming table; pattern '{t.pattern.value}' needs an append-only source")


@rule
def no_cycles(ctx: RuleContext) -> Iterator[Diagnostic]:
    edges = {name: entries[0].table.upstream_tables for name, entries in ctx.by_name.items()}
    cycle = find_cycle(edges)
    if cycle:
        entry = ctx.by_name[cycle[0]][0]
        path = ("source",) if entry.table.source == cycle[1] else ("query",)
        if entry.derived:
            path = ()
        yield entry.diag(path, "REFERENCE_CYCLE", "tables read each other in a cycle: " + " -> ".join(cycle))


_expression_columns = expression_columns


def _fragment_diag(entry: SpecEntry, path: KeyPath, problem: SqlProblem, what: str) -> Diagnostic:
    """A problem inside a SQL value, at its own line and column in the file when sqlglot knows them."""
    from engine.spec.loader import format_key_path

    positions = entry.positions
    loc = positions.at(entry.prefix + path)
    line, col = loc.line, loc.col
    lines = positions.text.splitlines()
    if problem.line:
        block = loc.line - 1 < len(lines) and lines[loc.line - 1][loc.col - 1:loc.col].strip() in ("|", ">", "|-", ">-")
        line = loc.line + problem.line if block else loc.line + problem.line - 1
        if block and line - 1 < len(lines):
            # The block's indentation is its first content line's; sqlglot's column counts from there.
            first = next((text for text in lines[loc.line:] if text.strip()), "")
            indent = len(first) - len(first.lstrip())
            col = indent + max(problem.col - len(problem.near), 0) + 1
        elif line == loc.line:
            quoted = lines[loc.line - 1][loc.col - 1:loc.col] in ("'", '"') if loc.line - 1 < len(lines) else False
            col = loc.col + quoted + max(problem.col - len(problem.near), 0)  # a quoted scalar's text starts after its quote
    elif problem.near:
        line, col = _locate(entry, path, problem.near)
    line = min(max(line, 1), max(len(lines), 1))
    return Diagnostic(positions.file, line, col, problem.code, f"{what}: {problem.message}" if what else problem.message,
                      format_key_path(entry.prefix + path), snippet(positions.text, line, col))


@rule
def queries_parse(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Each query is one SELECT that produces every declared column, with its aggregates grouped."""
    for entry in ctx.primary():
        t = entry.table
        if not t.query or "${" in with_placeholders(t.query):
            continue  # a malformed ${...} is reported once, by references_resolve
        parsed, problem = parse_query(t.query)
        if parsed is None:
            assert problem is not None
            yield _fragment_diag(entry, ("query",), problem, "")
            continue
        for problem in _cached_aggregate_problems(ctx.cache, t.query, parsed):
            yield _fragment_diag(entry, ("query",), problem, "")
        if parsed.output_columns is not None:
            produced = {name.lower() for name in parsed.output_columns}
            for i, column in enumerate(t.columns):
                if column.name.lower() not in produced and column.name.lower() not in IDENTIFIER_COLUMNS:
                    yield entry.diag(("columns", i, "name"), "QUERY_COLUMN_MISSING",
                                     f"'{column.name}' is declared but the query does not produce it"
                                     f"{_suggest(column.name.lower(), produced)}; it produces: {', '.join(parsed.output_columns)}")


@rule
def query_columns_exist(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Every column a query names is a column of a table it reads (a spec's declared columns, a
    system table's documented ones) or a name the query defines, and every STRUCT field it reads is
    one of its type's: a typo fails here, not in Spark."""
    for entry in ctx.primary():
        t = entry.table
        parsed = parse_query(t.query)[0] if t.query and "${" not in with_placeholders(t.query) else None
        if parsed is None:
            continue  # malformed references and syntax are reported by their own rules
        schema = _read_schema(ctx, t)
        if schema is None:
            continue  # an unknown table is reported by references_resolve
        columns = {c for read in schema.values() for c in read}
        read = ", ".join(sorted(t.references))
        by_flat_name = {flat_table_name(name): name for name in t.references}
        for problem in _cached_unknown_columns(ctx.cache, t.query, parsed, schema):
            name = problem.near
            diagnostic = _fragment_diag(entry, ("query",), problem, "")
            # sqlglot counts columns in the query as it parsed it (`${t}` written as `t`): the name on that line.
            text = entry.positions.text.splitlines()[diagnostic.line - 1] if diagnostic.line else ""
            starts = [m.start() + 1 for m in re.finditer(rf"(?<![\w$]){re.escape(name)}(?!\w)", text, re.IGNORECASE)]
            col = min(starts, key=lambda start: abs(start - diagnostic.col)) if starts else diagnostic.col
            if problem.code == "UNKNOWN_STRUCT_FIELD":
                message = problem.message
            elif problem.message in by_flat_name:  # `alias.name`: that table's columns
                table = by_flat_name[problem.message]
                message = f"'{name}' is not a column of {table}{_suggest(name.lower(), schema[problem.message])}"
            else:
                message = f"'{name}' is not a column of {read}{_suggest(name.lower(), columns)}"
            yield dataclasses.replace(diagnostic, col=col, snippet=snippet(entry.positions.text, diagnostic.line, col),
                                      message=message)


def _read_schema(ctx: RuleContext, table: Table) -> dict[str, dict[str, str]] | None:
    """flat_table_name -> {column: type} of every table the query reads; None when one is unknown."""
    schema: dict[str, dict[str, str]] = {}
    for name in table.references:
        columns = _columns_of(ctx, name)
        if columns is None:
            return None
        schema[flat_table_name(name)] = columns
    return schema


def _columns_of(ctx: RuleContext, name: str) -> dict[str, str] | None:
    """{column: type} of a system table (the registry's documented columns) or a spec table; None when unknown.
    Read only: a system table's mapping is shared by every call."""
    if name.startswith("system."):
        return _system_table_columns(name) if name in SYSTEM_TABLES else None
    known = ctx.known(name)
    return None if known is None else {c.name: c.type for c in known.all_columns}


@functools.lru_cache(maxsize=None)
def _system_table_columns(name: str) -> dict[str, str]:
    """Worked out once per table: a project's many specs read the same few sources."""
    return {f.name: ddl(f.type) for f in system_columns(name)}


@functools.lru_cache(maxsize=None)
def _system_schema_key(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return flat_table_name(name), tuple(sorted(_system_table_columns(name).items()))


@rule
def source_columns_exist(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A table read from a source (stream, snapshot, SCD2) selects each declared column from it, by its
    expr or, without one, by its name, after the filter: each name and STRUCT field they read is the
    source's, checked as a query's are (a typo in a bronze table's flattening fails here, not in Spark)."""
    known: dict[tuple[str, str], tuple[SqlProblem, ...]] = {}  # (source, text): copies of a spec repeat them
    for entry in ctx.primary():
        t = entry.table
        if t.pattern not in (Pattern.STREAM, Pattern.SNAPSHOT, Pattern.SCD2) or not t.source:
            continue
        columns = _columns_of(ctx, t.source)
        if columns is None:
            continue  # an unknown source is reported by references_resolve
        schema_key = _system_schema_key(t.source) if t.source.startswith("system.") else (
            flat_table_name(t.source), tuple(sorted(columns.items())))
        fragments = [(("filter",), t.filter)] if t.filter else []
        for i, column in enumerate(t.columns):
            if column.expr:
                fragments.append((("columns", i, "expr"), column.expr))
            elif _PLAIN_NAME.fullmatch(column.name):
                fragments.append((("columns", i, "name"), column.name))
        for path, text in fragments:
            found = known.get((t.source, text))
            if found is None:
                found = known[(t.source, text)] = _source_problems(text, schema_key)
            for problem in found:
                diagnostic = _fragment_diag(entry, path, problem, "")
                message = problem.message if problem.code == "UNKNOWN_STRUCT_FIELD" else (
                    f"'{problem.near}' is not a column of {t.source}{_suggest(problem.near.lower(), columns)}"
                    + ("" if path[-1] != "name" else ": a column without `expr` is read from the source by its name"))
                yield dataclasses.replace(diagnostic, message=message)


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=4096)
def _source_problems(text: str, schema_key: tuple[str, tuple[tuple[str, str], ...]]) -> tuple[SqlProblem, ...]:
    """Unknown columns and STRUCT fields of one expression evaluated on one source table (each distinct
    pair worked out once: a project's copies of a spec, or its many flattened fields, repeat them)."""
    expression, problem = parse_expression(text)
    if expression is None or problem is not None:
        return ()  # reported by expressions_parse
    source, columns = schema_key
    parsed = selected_from(expression, source)
    schema = {source: dict(columns)}
    return tuple((unknown_columns(parsed, schema) or []) + unknown_fields(parsed, schema))


def _cached_unknown_columns(cache: SpecCache, query: str, parsed: ParsedQuery,
                            schema: dict[str, dict[str, str]]) -> list[SqlProblem]:
    """unknown_columns, remembered by the query's text and the columns it reads."""
    def compute() -> list[list]:
        found = (unknown_columns(parsed, schema) or []) + unknown_fields(parsed, schema)
        return [[p.code, p.message, p.line, p.col, p.near] for p in found]

    if not cache.enabled:
        return [SqlProblem(*fields) for fields in compute()]
    stored = cache.remember(content_key("unknown_columns", query, json.dumps(schema, sort_keys=True)), compute)
    return [SqlProblem(*fields) for fields in stored]


@rule
def expressions_parse(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Filters and column expressions are single expressions, pasted into generated queries."""
    for entry in ctx.primary():
        t = entry.table
        fragments = [(("filter",), t.filter, "filter")] if t.filter else []
        fragments += [(("columns", i, "expr"), c.expr, f"expression of column '{c.name}'") for i, c in enumerate(t.columns) if c.expr]
        for path, text, what in fragments:
            _, problem = parse_expression(text)
            if problem is not None:
                code = {"filter": "FILTER_SYNTAX"}.get(path[0], "COLUMN_EXPR_SYNTAX")
                yield _fragment_diag(entry, path, SqlProblem(code, problem.message, problem.line, problem.col, problem.near), what)


@rule
def pii_lineage(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A column computed from a PII column is PII (a COUNT of identities is not), unless the spec says why not (pii_reason)."""
    pii = {name: {c.name.lower() for c in entries[0].table.all_columns if c.pii} for name, entries in ctx.by_name.items()}
    for entry in ctx.primary():
        t = entry.table
        upstream_pii = {u: pii.get(u, set()) for u in t.upstream_tables}
        if not t.query or not any(upstream_pii.values()):
            continue
        parsed, _ = parse_query(t.query)
        if parsed is None or not may_derive_from(parsed, set().union(*upstream_pii.values())):
            continue
        schema = {u: {c.name: c.type for c in ctx.by_name[u][0].table.all_columns} for u in t.upstream_tables if u in ctx.by_name}
        lineage = _cached_column_sources(ctx.cache, t.query, parsed, schema)
        for i, column in enumerate(t.columns):
            if column.pii or column.pii_reason:
                continue
            sources = lineage.get(column.name.lower(), set())
            tainted = sorted(f"{table}.{name}" for table, name in sources if name.lower() in upstream_pii.get(table, ()))
            if tainted:
                yield entry.diag(("columns", i, "name"), "PII_LINEAGE",
                                 f"'{column.name}' is computed from PII ({', '.join(tainted)}): set pii: true, "
                                 "or pii_reason: <why it is not personal data> (e.g. hashed, aggregated)")


def _cached_aggregate_problems(cache: SpecCache, query: str, parsed) -> list[SqlProblem]:
    """aggregate_problems, remembered by the query's text (it reads nothing else)."""
    if not cache.enabled:
        return aggregate_problems(parsed)
    stored = cache.remember(content_key("aggregates", query),
                            lambda: [[p.code, p.message, p.line, p.col, p.near] for p in aggregate_problems(parsed)])
    return [SqlProblem(*fields) for fields in stored]


def _cached_column_sources(cache: SpecCache, query: str, parsed, schema: dict) -> dict[str, set[tuple[str, str]]]:
    """column_sources, remembered by the query's text and its upstream columns (the slowest check)."""
    if not cache.enabled:
        return column_sources(parsed, schema) or {}
    key = content_key("lineage", query, json.dumps(schema, sort_keys=True))

    def compute() -> dict[str, list[list[str]]] | None:
        found = column_sources(parsed, schema)
        return None if found is None else {name: sorted([t, c] for t, c in pairs) for name, pairs in found.items()}

    stored = cache.remember(key, compute) or {}
    return {name: {(t, c) for t, c in pairs} for name, pairs in stored.items()}


@rule
def expectations_valid(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        t = entry.table
        names = {c.name.lower() for c in t.all_columns}
        seen: set[str] = set()
        own_columns = None
        for i, expectation in enumerate(t.expectations):
            if expectation.name in seen:
                yield entry.diag(("expectations", i, "name"), "DUPLICATE_EXPECTATION", f"expectation '{expectation.name}' is declared twice")
            seen.add(expectation.name)
            roots, problem = _expression_columns(expectation.expr)
            if roots is None:
                yield entry.diag(("expectations", i, "expr"), "EXPECTATION_SYNTAX", f"expectation '{expectation.name}' is not a valid SQL expression: {problem}")
                continue
            for root in roots:
                if root.lower() not in names:
                    yield _located(entry, ("expectations", i, "expr"), root, "UNDECLARED_COLUMN",
                                   f"expectation '{expectation.name}' uses '{root.lower()}', which is not a declared column{_suggest(root.lower(), names)}")
            if own_columns is None:
                own_columns = (t.name, tuple(sorted((c.name, c.type) for c in t.all_columns)))
            for problem in _source_problems(expectation.expr, own_columns):
                if problem.code == "UNKNOWN_STRUCT_FIELD":  # an unknown column is the UNDECLARED_COLUMN above
                    yield _fragment_diag(entry, ("expectations", i, "expr"), problem, f"expectation '{expectation.name}'")


@rule
def share_membership(ctx: RuleContext) -> Iterator[Diagnostic]:
    shares = {s.name for s in ctx.settings.shares} if ctx.settings else set()
    aliases: dict[tuple[str, str], str] = {}
    for entry in ctx.entries:
        t = entry.table
        for i, member in enumerate(t.share):
            path: KeyPath = ("share", i)
            target = entry.diag
            if ctx.settings is not None and member.share not in shares:  # broken project.yaml: reported there, once
                yield target(path + ("share",), "UNKNOWN_SHARE", f"share '{member.share}' is not declared in project.yaml{_suggest(member.share, shares)}")
            if t.pii_columns and not member.include_pii:
                yield target(path, "PII_NOT_APPROVED",
                             f"{t.name} holds PII columns ({', '.join(t.pii_columns)}); set include_pii: true to share them deliberately")
            if member.history and t.dataset_kind is not DatasetKind.STREAMING_TABLE:
                yield target(path + ("history",), "SHARE_HISTORY_NOT_SUPPORTED",
                             f"history sharing applies to streaming tables; {t.name} is a {t.dataset_kind.value.replace('_', ' ')}")
            if t.dataset_kind is DatasetKind.TEMPORARY_VIEW:
                yield target(path, "SHARE_NOT_SHAREABLE", f"{t.name} is a temporary view and cannot be shared; set view.persisted: true")
            shown = (member.share, member.alias or t.name)
            if shown in aliases and aliases[shown] != t.name:
                yield target(path, "DUPLICATE_SHARE_NAME", f"share '{member.share}' already exposes '{shown[1]}' (from {aliases[shown]})")
            aliases.setdefault(shown, t.name)


@rule
def schedule_order(ctx: RuleContext) -> Iterator[Diagnostic]:
    for entry in ctx.primary():
        t = entry.table
        if t.schedule is not Schedule.PIPELINE:
            continue
        for name in t.upstream_tables:
            upstream = ctx.known(name)
            if upstream is not None and upstream.schedule is Schedule.DAILY:
                yield entry.diag(("schedule",) if entry.positions.has(("schedule",)) else (), "SCHEDULE_ORDER",
                                 f"{t.name} refreshes with the pipeline but reads '{name}', which is built only by the daily job; make {t.name} 'schedule: daily'")


TIME_TYPES = ("date", "timestamp", "timestamp_ntz")


def _is_time_type(type_text: str) -> bool:
    try:
        return canonical(type_text) in TIME_TYPES
    except TypeSyntaxError:
        return True  # column_types reports the bad type itself


@rule
def retention(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Retention deletes rows of streaming tables on a declared DATE/TIMESTAMP column, and never
    sooner than the system source drops them itself (a full refresh would bring them back)."""
    for entry in ctx.primary():
        t, written = entry.table, entry.positions.has
        r = t.retention
        if r is None:
            if written(("retention_column",)):
                yield entry.diag(("retention_column",), "RETENTION_WITHOUT_DAYS",
                                 f"retention_column needs retention_days: {t.name} keeps every row unless retention_days is set", key=True)
            continue
        days_at: KeyPath = ("retention_days",) if written(("retention_days",)) else ()
        kind = t.dataset_kind
        if kind is not DatasetKind.STREAMING_TABLE:
            yield entry.diag(days_at, "RETENTION_NOT_SUPPORTED",
                             f"retention applies to streaming tables (patterns stream and scd2); {t.name} is a "
                             f"{kind.value.replace('_', ' ')}, recomputed from its inputs on every refresh: bound its window in the query", key=True)
            continue
        column_at: KeyPath = ("retention_column",) if written(("retention_column",)) else days_at
        declared = {c.name: (i, c) for i, c in enumerate(t.columns)}
        if r.column is None:
            yield entry.diag(days_at, "RETENTION_COLUMN_MISSING",
                             f"no column to measure retention on: set retention_column to a DATE or TIMESTAMP column of {t.name}", key=True)
        elif r.column not in declared:
            yield entry.diag(column_at, "UNDECLARED_COLUMN",
                             f"retention_column '{r.column}' is not a declared column{_suggest(r.column, declared)}")
        elif not _is_time_type(declared[r.column][1].type):
            index, column = declared[r.column]
            yield entry.diag(column_at if written(("retention_column",)) else ("columns", index, "type"), "RETENTION_COLUMN_TYPE",
                             f"retention is measured on '{r.column}', which is {column.type}; it must be DATE or TIMESTAMP")
        source = SYSTEM_TABLES.get(t.source or "")
        if source is not None and source.retention_days is not None and r.days < source.retention_days:
            yield entry.diag(days_at, "RETENTION_BELOW_SOURCE",
                             f"retention_days {r.days} is shorter than the {source.retention_days} days {source.name} keeps its own rows: "
                             "a full refresh would bring the deleted rows back; keep at least as long as the source")


@rule
def project_settings(ctx: RuleContext) -> Iterator[Diagnostic]:
    if ctx.settings is None or ctx.settings_positions is None:
        return
    pos = ctx.settings_positions
    shares = [s.name for s in ctx.settings.shares]
    for i, name in enumerate(shares):
        if name in shares[:i]:
            yield pos.diagnostic(("shares", i, "name"), "DUPLICATE_SHARE", f"share '{name}' is declared twice")
    for i, recipient in enumerate(ctx.settings.recipients):
        for j, share in enumerate(recipient.shares):
            if share not in shares:
                yield pos.diagnostic(("recipients", i, "shares", j), "UNKNOWN_SHARE", f"recipient '{recipient.name}' is granted share '{share}', which is not declared{_suggest(share, shares)}")


@rule
def central_views(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Central views read consolidated views of shared tables, or earlier central views, in one SELECT."""
    if ctx.settings is None or ctx.settings_positions is None:
        return
    pos = ctx.settings_positions
    mounted = {p.share for p in ctx.settings.providers}
    consolidated = {entries[0].table.name for entries in ctx.by_name.values()
                    if any(m.share in mounted for m in entries[0].table.share)}
    earlier: list[str] = []
    for i, view in enumerate(ctx.settings.central_views):
        path: KeyPath = ("central", "views", i)
        if view.name in earlier or view.name in {CONSOLIDATED_PREFIX + t for t in consolidated}:
            yield pos.diagnostic(path + ("name",), "DUPLICATE_CENTRAL_VIEW",
                                 f"'{view.name}' is already a view of the central schema")
        for name in view.references:
            if name not in consolidated and name not in earlier:
                hint = _suggest(name, sorted(consolidated) + earlier)
                why = " (tables must be shared through a share a provider mounts)" if name in ctx.by_name else ""
                yield pos.diagnostic(path + ("query",), "UNKNOWN_REFERENCE",
                                     f"central view '{view.name}' reads '{name}', which is neither a consolidated shared table "
                                     f"nor an earlier central view{why}{hint}")
        parsed, problem = parse_query(view.query)
        if problem is not None:
            yield pos.diagnostic(path + ("query",), problem.code, f"central view '{view.name}': {problem.message}")
        elif parsed is not None:
            for problem in aggregate_problems(parsed):
                yield pos.diagnostic(path + ("query",), problem.code, f"central view '{view.name}': {problem.message}")
            if any(node.comments for node in parsed.tree.walk()):  # a trailing `--` would swallow the `;` after it
                yield pos.diagnostic(path + ("query",), "SQL_COMMENT",
                                     f"central view '{view.name}': comments are not allowed; the query is pasted into a script")
        earlier.append(view.name)


_ENV_URL = re.compile(r"\$\{[A-Z_][A-Z0-9_]*\}")


def check_alerts(ctx: RuleContext, alerts: list) -> list[Diagnostic]:
    """Alerts name an existing table, use its columns, and have unique names matching their files."""
    diagnostics: list[Diagnostic] = []
    seen: dict[str, str] = {}
    for alert, positions, path in alerts:
        def diag(key_path: KeyPath, code: str, message: str, *, key: bool = False) -> None:
            diagnostics.append(positions.diagnostic(key_path, code, message, key=key))

        if alert.name in seen:
            diag(("name",), "DUPLICATE_ALERT", f"alert '{alert.name}' is already defined in {seen[alert.name]}")
        seen.setdefault(alert.name, positions.file)
        if path.stem != alert.name:
            diag(("name",), "FILE_NAME_MISMATCH", f"alert '{alert.name}' must live in a file named {alert.name}.yaml, not {path.name}")
        table = ctx.known(alert.table)
        if table is None:
            if alert.table not in ctx.ghost_names:
                diag(("table",), "UNKNOWN_REFERENCE", f"alert '{alert.name}' watches '{alert.table}', which does not exist{_suggest(alert.table, ctx.by_name)}")
            continue
        if table.schedule is Schedule.DAILY and not alert.tier.digest and alert.schedule == DEFAULT_ALERT_SCHEDULES[alert.tier]:
            # Evaluated every 15 or 30 minutes on rows that change once a day, it would notify the
            # same rows again at each re-notification (hourly) all day long.
            diag(("table",), "ALERT_ON_DAILY_TABLE",
                 f"a {alert.tier.value} alert is evaluated on its tier's schedule ({alert.schedule}), but '{table.name}' is "
                 f"refreshed once a day by the daily job: watch a table of the 15-minute pipeline, make the alert P3 "
                 f"(the daily digest, after the daily job), or give it a daily 'schedule'")
        names = {c.name.lower() for c in table.all_columns}
        roots, problem = _expression_columns(alert.condition)
        if roots is None:
            diag(("condition",), "CONDITION_SYNTAX", f"condition is not a valid SQL expression: {problem}")
        else:
            for root in roots:
                if root.lower() not in names:
                    diag(("condition",), "UNDECLARED_COLUMN", f"condition uses '{root}', which is not a column of {table.name}{_suggest(root.lower(), names)}")
        for i, column in enumerate(alert.columns):
            if column.lower() not in names:
                diag(("columns", i), "UNDECLARED_COLUMN", f"'{column}' is not a column of {table.name}{_suggest(column.lower(), names)}")
        if alert.within is not None:
            column = next((c for c in table.all_columns if c.name.lower() == alert.within.column.lower()), None)
            if column is None:
                diag(("within", "column"), "UNDECLARED_COLUMN", f"within.column '{alert.within.column}' is not a column of {table.name}{_suggest(alert.within.column.lower(), names)}")
            elif not _is_time_type(column.type):
                diag(("within", "column"), "ALERT_WINDOW_TYPE", f"within.column '{column.name}' is {column.type}; it must be DATE or TIMESTAMP")
        if alert.message:
            try:
                placeholders = parse_message(alert.message).placeholders
            except ValueError as exc:
                diag(("message",), "ALERT_MESSAGE_SYNTAX", str(exc))
                placeholders = ()
            for placeholder in placeholders:
                if placeholder.lower() not in names:
                    diag(("message",), "UNDECLARED_COLUMN", f"message uses {{{placeholder}}}, which is not a column of {table.name}")
        channel = alert.channel
        if channel.type in ("slack", "webhook") and not channel.url:
            diag(("channel",), "CHANNEL_INCOMPLETE", f"a {channel.type} channel needs 'url' (a URL or ${{ENV_VAR}})")
        elif channel.url and not _ENV_URL.fullmatch(channel.url):
            problem = url_problem(channel.url)
            if problem:
                diag(("channel", "url"), "ALERT_URL_UNSAFE", f"webhook URL {redact_url(channel.url)} {problem}")
            elif channel.type == "slack":
                diag(("channel", "url"), "ALERT_URL_SECRET",
                     "a Slack webhook URL is a secret: write ${ENV_VAR} and set the URL in that environment variable")
        if channel.type == "email" and not channel.to:
            diag(("channel",), "CHANNEL_INCOMPLETE", "an email channel needs 'to': a list of addresses")
    return diagnostics


# --- dashboards ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DashboardEntry:
    """A dashboard as written, with its file's positions and what sqlglot derived from each dataset."""

    dashboard: Dashboard
    positions: Positions
    path: Path
    analyses: dict  # dataset name -> engine.spec.dashboard_sql.QueryAnalysis

    def diag(self, path: KeyPath, code: str, message: str, *, key: bool = False) -> Diagnostic:
        return self.positions.diagnostic(path, code, message, key=key)

    def dataset_index(self, name: str) -> int:
        return next(i for i, d in enumerate(self.dashboard.datasets) if d.name == name)

    def widgets(self) -> Iterator[tuple[KeyPath, Widget]]:
        for i, page in enumerate(self.dashboard.pages):
            for j, widget in enumerate(page.widgets):
                yield ("pages", i, "widgets", j), widget


DashboardRule = Callable[[RuleContext, DashboardEntry], Iterable[Diagnostic]]
DASHBOARD_RULES: list[DashboardRule] = []


def dashboard_rule(fn: DashboardRule) -> DashboardRule:
    DASHBOARD_RULES.append(fn)
    return fn


def dashboard_schema(ctx: RuleContext, dashboard: Dashboard) -> dict[str, dict[str, str]]:
    """Table -> {column: type} for every catalog table the dashboard's datasets name as ${table}.

    A central dashboard reads each table's consolidated view, which adds the provider's name.
    """
    schema = {}
    for name in dashboard.tables:
        table = ctx.known(name)
        if table is None:
            continue
        columns = {c.name: c.type for c in table.all_columns}
        if dashboard.scope is DashboardScope.CENTRAL:
            columns = {SOURCE_WORKSPACE_COLUMN: "STRING", **columns}
        schema[name] = columns
    return schema


def analyze_dashboard(ctx: RuleContext, dashboard: Dashboard) -> dict:
    from engine.spec.dashboard_sql import analyze

    schema = dashboard_schema(ctx, dashboard)
    ranges = frozenset(f.parameter for f in dashboard.filters if f.type is FilterType.DATE_RANGE)
    return {d.name: analyze(d.query, {t: schema[t] for t in d.tables if t in schema}, ranges) for d in dashboard.datasets}


def check_dashboards(ctx: RuleContext, entries: list[DashboardEntry]) -> list[Diagnostic]:
    """Dashboards have unique names matching their files; each passes every dashboard rule."""
    diagnostics: list[Diagnostic] = []
    seen: dict[str, str] = {}
    for entry in entries:
        name = entry.dashboard.name
        if name in seen:
            diagnostics.append(entry.diag(("name",), "DUPLICATE_DASHBOARD", f"dashboard '{name}' is already defined in {seen[name]}"))
        seen.setdefault(name, entry.positions.file)
        if entry.path.stem != name:
            diagnostics.append(entry.diag(("name",), "FILE_NAME_MISMATCH", f"dashboard '{name}' must live in a file named {name}.yaml, not {entry.path.name}"))
        for fn in DASHBOARD_RULES:
            diagnostics.extend(fn(ctx, entry))
    return diagnostics


def _query_diagnostic(entry: DashboardEntry, index: int, code: str, message: str, needle: str = "", line: int = 0) -> Diagnostic:
    """Point at `needle` on the query's `line` (1-based inside the SQL), found in the YAML text."""
    from engine.spec.loader import format_key_path

    path: KeyPath = ("datasets", index, "query")
    positions = entry.positions
    start = positions.at(path)
    lines = positions.text.splitlines()
    query_lines = entry.dashboard.datasets[index].query.splitlines()
    found_line, found_col = start.line, start.col
    if 0 < line <= len(query_lines) and query_lines[line - 1].strip():
        wanted = query_lines[line - 1].strip()
        for n in range(start.line - 1, len(lines)):
            if wanted in lines[n]:
                found_line, found_col = n + 1, lines[n].find(wanted) + 1
                break
    if needle:
        for n in range(found_line - 1, len(lines)):
            at = lines[n].find(needle, found_col - 1 if n == found_line - 1 and line else 0)
            if at >= 0:
                found_line, found_col = n + 1, at + 1
                break
    return Diagnostic(positions.file, found_line, found_col, code, message, format_key_path(path),
                      snippet(positions.text, found_line, found_col))


@dashboard_rule
def dashboard_unique_names(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Datasets, pages, widgets and filters are referred to by name: each name once."""
    d = entry.dashboard
    groups = [
        ("dataset", [(("datasets", i, "name"), ds.name) for i, ds in enumerate(d.datasets)]),
        ("page", [(("pages", i, "name"), p.name) for i, p in enumerate(d.pages)]),
        ("widget", [(path + ("name",), w.name) for path, w in entry.widgets()]),
        ("filter parameter", [(("filters", i, "parameter"), f.parameter) for i, f in enumerate(d.filters)]),
    ]
    for kind, named in groups:
        seen: set[str] = set()
        for path, name in named:
            if name in seen:
                yield entry.diag(path, "DUPLICATE_NAME", f"{kind} name '{name}' is used twice in dashboard {d.name}")
            seen.add(name)


@dashboard_rule
def dashboard_reads_catalog(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Datasets read silver and gold tables of the catalog, named ${table}: never system.*, bronze or SQL outside it."""
    d = entry.dashboard
    mounted = ctx.settings.mounted_shares if ctx.settings else frozenset()
    for i, dataset in enumerate(d.datasets):
        for match in REFERENCE.finditer(dataset.query):
            name = match.group(1)
            needle = match.group(0)
            if name.startswith("system."):
                yield _query_diagnostic(entry, i, "SYSTEM_READ",
                                        f"dataset '{dataset.name}' reads {name}: dashboards read the catalog's gold and silver tables, "
                                        "never system tables (slow, unpriced, unaggregated); build a gold table from it", needle)
                continue
            table = ctx.known(name)
            if table is None:
                if name not in ctx.ghost_names:
                    yield _query_diagnostic(entry, i, "UNKNOWN_REFERENCE",
                                            f"dataset '{dataset.name}' reads '{name}', which is not a table of the catalog{_suggest(name, ctx.by_name)}", needle)
                continue
            if table.layer.value == "bronze":
                yield _query_diagnostic(entry, i, "BRONZE_READ",
                                        f"dataset '{dataset.name}' reads bronze table {name}: dashboards read silver and gold tables only", needle)
            if table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
                yield _query_diagnostic(entry, i, "NOT_IN_CATALOG",
                                        f"{name} is a pipeline-private temporary view, not in the catalog; set view.persisted: true", needle)
            if d.scope is DashboardScope.CENTRAL and not any(m.share in mounted for m in table.share):
                yield _query_diagnostic(entry, i, "NOT_CONSOLIDATED",
                                        f"a central dashboard reads all_workspaces_{name}, which exists only for tables shared to a share "
                                        "a provider in project.yaml mounts; add {name} to such a share", needle)
        for bare in entry.analyses[dataset.name].bare_tables:
            if bare.name.lower().startswith("system."):
                yield _query_diagnostic(entry, i, "SYSTEM_READ",
                                        f"dataset '{dataset.name}' reads {bare.name}: dashboards read the catalog's gold and silver tables, "
                                        "never system tables (slow, unpriced, unaggregated); build a gold table from it", bare.name, bare.line)
            else:
                yield _query_diagnostic(entry, i, "BARE_REFERENCE",
                                        f"'{bare.name}' is named without the reference syntax: datasets read catalog tables as ${{table}}", bare.name, bare.line)


@dashboard_rule
def dashboard_sql_valid(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Each dataset is one SELECT that parses, and every column it names is declared by a table it reads."""
    for i, dataset in enumerate(entry.dashboard.datasets):
        for problem in entry.analyses[dataset.name].problems:
            if problem.code != "PARAMETER_USAGE":
                yield _query_diagnostic(entry, i, problem.code, f"dataset '{dataset.name}': {problem.message}", problem.needle, problem.line)


@dashboard_rule
def dashboard_parameters_bound(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Every :parameter a query uses is a filter's, used as its type allows."""
    d = entry.dashboard
    filters = {f.parameter for f in d.filters}
    for i, dataset in enumerate(d.datasets):
        analysis = entry.analyses[dataset.name]
        for problem in analysis.problems:
            if problem.code == "PARAMETER_USAGE":
                yield _query_diagnostic(entry, i, problem.code, f"dataset '{dataset.name}': {problem.message}", problem.needle, problem.line)
        for name in analysis.parameter_names:
            if name not in filters:
                yield _query_diagnostic(entry, i, "UNKNOWN_PARAMETER",
                                        f"dataset '{dataset.name}' uses :{name}, but no filter sets it{_suggest(name, filters)}; "
                                        "declare it under filters", f":{name}")


@dashboard_rule
def dashboard_filters_bind(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Each filter binds to at least one dataset parameter; a select's values come from an existing field."""
    d = entry.dashboard
    used = {name for a in entry.analyses.values() for name in a.parameter_names}
    for i, f in enumerate(d.filters):
        if f.parameter not in used:
            yield entry.diag(("filters", i, "parameter"), "UNBOUND_FILTER",
                             f"filter '{f.title}' sets :{f.parameter}, which no dataset query uses{_suggest(f.parameter, used)}")
        if f.type is FilterType.DATE_RANGE and entry.positions.has(("filters", i, "values")):
            yield entry.diag(("filters", i, "values"), "FILTER_KEY_NOT_APPLICABLE",
                             "a date_range filter offers a date picker, not values from a dataset", key=True)
        elif f.values_dataset is not None:
            yield from _field_exists(entry, ("filters", i, "values"), f.values_dataset, f.values_field)


def _field_exists(entry: DashboardEntry, path: KeyPath, dataset_name: str, field_name: str | None, field_path: KeyPath = ()) -> Iterator[Diagnostic]:
    dataset = entry.dashboard.dataset(dataset_name)
    if dataset is None:
        names = [ds.name for ds in entry.dashboard.datasets]
        yield entry.diag(path + ("dataset",), "UNKNOWN_DATASET", f"dataset '{dataset_name}' is not defined in this dashboard{_suggest(dataset_name, names)}")
        return
    columns = entry.analyses[dataset_name].columns
    if field_name is None or not columns:  # a query that failed analysis is reported there, once
        return
    if field_name.lower() not in {c.name.lower() for c in columns}:
        yield entry.diag(field_path or path + ("field",), "UNKNOWN_FIELD",
                         f"'{field_name}' is not a field of dataset '{dataset_name}' (its query returns "
                         f"{', '.join(c.name for c in columns)}){_suggest(field_name, [c.name for c in columns])}")


# Which widget keys apply to which widget type (beyond type, name, title, width, height).
WIDGET_KEYS = {
    "counter": {"dataset", "value", "format"},
    "line": {"dataset", "x", "bin", "y", "color", "format"},
    "bar": {"dataset", "x", "bin", "y", "color", "format"},
    "area": {"dataset", "x", "bin", "y", "color", "format"},
    "pie": {"dataset", "value", "color", "format"},
    "table": {"dataset", "columns"},
    "text": {"markdown"},
}
_COMMON_WIDGET_KEYS = {"type", "name", "title", "width", "height"}


@dashboard_rule
def dashboard_widget_keys(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """A key that does not apply to a widget's type would be silently ignored: it is an error."""
    for path, widget in entry.widgets():
        allowed = WIDGET_KEYS[widget.type.value] | _COMMON_WIDGET_KEYS
        for key in sorted(entry.positions.child_keys(path)):
            if key not in allowed:
                yield entry.diag(path + (key,), "WIDGET_KEY_NOT_APPLICABLE",
                                 f"a {widget.type.value} widget takes no '{key}' (it takes {', '.join(sorted(allowed - _COMMON_WIDGET_KEYS))})", key=True)


@dashboard_rule
def dashboard_widget_fields(ctx: RuleContext, entry: DashboardEntry) -> Iterator[Diagnostic]:
    """Every field a widget names is an output column of its dataset; sums and averages are of numbers."""
    for path, widget in entry.widgets():
        if widget.dataset is None:
            continue
        if entry.dashboard.dataset(widget.dataset) is None:
            yield from _field_exists(entry, path, widget.dataset, None)
            continue
        named: list[tuple[KeyPath, str]] = [((key,), value) for key, value in (("x", widget.x), ("color", widget.color)) if value]
        named += [((key, "field"), m.field) for key, m in (("y", widget.y), ("value", widget.value)) if m]
        named += [(("columns", k), column) for k, column in enumerate(widget.columns)]
        for key_path, field_name in named:
            yield from _field_exists(entry, path, widget.dataset, field_name, path + key_path)
        columns = {c.name.lower(): c.type for c in entry.analyses[widget.dataset].columns}
        for key, measure in (("y", widget.y), ("value", widget.value)):
            column_type = columns.get(measure.field.lower()) if measure else None
            if measure and measure.agg in (Aggregate.SUM, Aggregate.AVG) and column_type and column_type != "UNKNOWN" \
                    and type_class(column_type) != "numeric":
                yield entry.diag(path + (key, "agg"), "MEASURE_NOT_NUMERIC",
                                 f"{measure.agg.value} of '{measure.field}', which is {column_type}: use count or count_distinct, or a numeric field")
        x_type = columns.get(widget.x.lower()) if widget.x else None
        if widget.bin and x_type and x_type != "UNKNOWN" and type_class(x_type) != "temporal":
            yield entry.diag(path + ("bin",), "BIN_NOT_DATE", f"bin truncates dates; x '{widget.x}' is {x_type}")
