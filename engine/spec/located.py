"""Stage: spec. Where a problem found after validation (Spark rejecting a query at run time) sits in its spec.

The finder knows a line of the SQL it ran and a fragment of that line; the spec holds the same
text under `query` (or a filter, a column expression, an expectation). The diagnostic points at
the fragment in the file, so a run's error reads like `validate`'s: file:line:col, key, snippet.
"""

from __future__ import annotations

from pathlib import Path

from engine.spec.errors import Diagnostic, snippet
from engine.spec.loader import KeyPath, format_key_path, parse_marked, read_spec_text
from engine.spec.model import Table


def sql_diagnostic(table: Table, code: str, message: str, line: int | None, fragment: str,
                   position: int | None = None) -> Diagnostic:
    """`message` at the spec text Spark's `line` (1-based, of the query) and `fragment` point at
    (or, without a fragment, its `position`: 0-based on that line of the query).

    Tried in order: that line of the query, where the fragment is on it; a filter, column
    expression or expectation holding the fragment; the table's own spec (its first line).
    """
    where = table.location
    found = None if table.derived_from else _find(table, line, fragment, position)  # a derived table's SQL is generated
    if found is None:
        return Diagnostic(where.file, where.line, where.col, code, f"{table.name}: {message}")
    text, path, at_line, at_col = found
    return Diagnostic(where.file, at_line, at_col, code, f"{table.name}: {message}", format_key_path(path),
                      snippet(text, at_line, at_col))


def _find(table: Table, line: int | None, fragment: str, position: int | None) -> tuple[str, KeyPath, int, int] | None:
    file = table.location.file
    text, _ = read_spec_text(Path(file), file)
    if text is None:
        return None
    document, _ = parse_marked(Path(file), file, text)
    if document is None:
        return None
    lines = text.splitlines()
    if table.query and line:
        start = document.positions.at(("query",))
        query_lines = table.query.splitlines()
        if 1 <= line <= len(query_lines):
            # A block scalar (`query: |`) starts on the line after its key; a one-line value on it.
            block = lines[start.line - 1][start.col - 1:start.col] in ("|", ">")
            at = start.line + line if block else start.line
            if at <= len(lines) and query_lines[line - 1].strip() in lines[at - 1]:
                col = _column(lines[at - 1], fragment, query_lines[line - 1], position)
                if col:
                    return text, ("query",), at, col
    if fragment:
        fragments: list[tuple[KeyPath, str | None]] = [(("filter",), table.filter)]
        fragments += [(("columns", i, "expr"), c.expr) for i, c in enumerate(table.columns)]
        fragments += [(("expectations", i, "expr"), e.expr) for i, e in enumerate(table.expectations)]
        for path, value in fragments:
            if value and fragment.lower() in value.lower():
                start = document.positions.at(path)
                for at in range(start.line, len(lines) + 1):
                    col = lines[at - 1].lower().find(fragment.lower())
                    if col >= 0:
                        return text, path, at, col + 1
    return None


def _column(file_line: str, fragment: str, query_line: str, position: int | None) -> int:
    """1-based column of the fragment on the file's line (0: not there), else of the position, else
    the line's first character."""
    indent = len(file_line) - len(file_line.lstrip())
    if fragment:
        col = file_line.lower().find(fragment.lower())
        if col >= 0:
            return col + 1
        if fragment.lower() not in query_line.lower():
            return 0  # the fragment is not on this line of the query: the position is another text's
    elif position is not None and "${" not in query_line[:position] and position < len(query_line):
        # Spark counts in the query's line (references before it would move it); the file adds the block's indent.
        return indent - (len(query_line) - len(query_line.lstrip())) + position + 1
    return indent + 1
