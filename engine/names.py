"""Shared by every stage: how a spec names a table (`${name}`), and "did you mean" for a name not found.

Standard library only: the pipeline runtime reads references too.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Iterable

from engine.escape import sql_identifier

# One explicit reference syntax, readable without Spark: ${table} or ${system.schema.table}.
REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,2})\s*\}")


def resolve_references(query: str, resolve: Callable[[str], str]) -> str:
    """The query with every ${name} replaced by `resolve(name)`; nothing else changes."""
    return REFERENCE.sub(lambda m: resolve(m.group(1)), query)


def flat_table_name(reference: str) -> str:
    """A referenced table's name in one part: a system table's as `_system__<schema>__<table>` (no
    spec table's name starts with `_`), a spec table's as it is. Local runs read each system table
    through a temporary view of that name; validate qualifies queries with it."""
    return "_" + reference.replace(".", "__") if reference.startswith("system.") else reference


def quoted_references(query: str) -> str:
    """Every `${a.b}` as `` `a`.`b` ``: the query as sqlglot parses it, each reference a quoted table name."""
    return resolve_references(query, lambda name: sql_identifier(*name.split(".")))


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The known name nearest to `word` (difflib ratio >= 0.6), or None."""
    matches = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or "" when nothing is close: appended to an error message."""
    return suggestion(closest(word, choices))


def suggestion(match: str | None) -> str:
    """The hint's wording, for a caller that found the match by its own rule."""
    return f" (did you mean '{match}'?)" if match else ""
