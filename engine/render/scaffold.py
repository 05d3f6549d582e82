"""Stage: render. `tablesmith new`: a commented starter spec for each pattern, valid as written.

Columns come from the source: a system table's top-level columns (struct columns are listed in a
comment, to be picked with `expr:`) or another spec's declared columns. The file is validated with the
whole project right after it is written, and removed again if validation fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine import atomic
from engine.errors import UserError
from engine.names import suggestion
from engine.render.viewmodel import quoted
from engine.sources import system_tables
from engine.sources.system_tables import SYSTEM_TABLES
from engine.spec import SpecError, load_project
from engine.spec.build import _current_name  # the loader's own rule for the default latest-row table name
from engine.spec.model import Column, DatasetKind, Project, Schedule
from engine.spec.schema import TABLE_SCHEMA, schema_text
from engine.sql import types

PATTERNS = ("stream", "snapshot", "scd2", "aggregate", "view")
DOMAINS = tuple(json.loads(schema_text(TABLE_SCHEMA))["properties"]["domain"]["enum"])
DEFAULT_SOURCES = {
    "stream": "system.billing.usage",
    "snapshot": "system.compute.node_types",
    "scd2": "system.lakeflow.jobs",
    "aggregate": "system.billing.usage",
    "view": "system.billing.usage",
}
LAYERS = {"stream": "bronze", "snapshot": "bronze", "scd2": "bronze", "aggregate": "gold", "view": "gold"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_PLAIN_YAML = re.compile(r"[a-z_][a-z0-9_]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


@dataclass(frozen=True)
class StarterSpec:
    name: str
    domain: str
    layer: str
    pattern: str
    source: str
    reference: str  # how a query names the source: ${...}
    columns: tuple[str, ...]  # YAML flow mappings
    struct_columns: str
    struct_example: str
    keys: str
    has_keys: bool
    key_expectation: str  # quoted
    group_by: str
    select_list: str
    sequence_by: str
    delete_column: str
    current_name: str
    daily: bool  # reads a table built only by the daily job, so it must be daily too


def write_starter(specs: Path, name: str, pattern: str, domain: str, source: str | None) -> Path:
    if not _IDENTIFIER.fullmatch(name):
        raise UserError(f"{name!r} is not a valid table name (letters, digits and _; not starting with a digit)")
    path = Path(specs) / domain / f"{name}.yaml"
    if path.exists():
        raise UserError(f"{path} already exists; `tablesmith new` never overwrites a spec")
    project = load_project(specs)  # a starter is validated with the project, so the project must be valid first
    if name in project.table_names:
        raise UserError(f"table '{name}' already exists ({project.table(name).location.file})")
    spec = starter_spec(project, name, pattern, domain, source or DEFAULT_SOURCES[pattern])
    from engine.render.registry import template

    atomic.write_text(path, template(f"new_{pattern}.yaml.j2").render(spec=spec))
    try:
        load_project(specs)
    except SpecError:
        path.unlink()
        raise
    return path


def starter_spec(project: Project, name: str, pattern: str, domain: str, source: str) -> StarterSpec:
    columns, structs, keys, scd2 = _source_facts(project, pattern, source)
    by_name = {c.name: c for c in columns}
    if pattern == "aggregate":
        group = _group_columns(columns)
        keys = group
        shown = [by_name[g] for g in group] + [Column("row_count", "BIGINT", "Number of source rows in the group.", nullable=False)]
    else:
        shown = list(columns)
    required = set(keys)
    sequence_by, delete_column = scd2
    return StarterSpec(
        name=name,
        domain=domain,
        layer=LAYERS[pattern],
        pattern=pattern,
        source=source,
        reference="${" + source + "}",
        columns=tuple(_column_yaml(c, nullable=c.nullable and c.name not in required) for c in shown),
        struct_columns=", ".join(structs),
        struct_example=f"{{name: <field>, type: STRING, expr: {structs[0]}.<field>, description: ...}}" if structs else "",
        keys="[" + ", ".join(_yaml_scalar(k) for k in keys) + "]",
        has_keys=bool(keys),
        key_expectation=quoted(" AND ".join(f"{k} IS NOT NULL" for k in keys)),
        group_by=", ".join(keys),
        select_list=",\n    ".join(c.name for c in columns),
        sequence_by=sequence_by,
        delete_column=delete_column,
        current_name=_current_name(name),
        daily=source in project.table_names and project.table(source).schedule is Schedule.DAILY,
    )


def _source_facts(project: Project, pattern: str, source: str):
    """(columns, struct column names, keys, (sequence_by, delete_column)) of a source, checked for the pattern."""
    if source.startswith("system."):
        if source not in SYSTEM_TABLES:
            raise UserError(f"'{source}' is not a supported system table{suggestion(system_tables.closest_table(source))}")
        entry = SYSTEM_TABLES[source]
        if pattern in ("stream", "scd2") and not entry.streamable:
            choices = ", ".join(n for n, t in sorted(SYSTEM_TABLES.items()) if t.streamable)
            raise UserError(f"'{source}' does not support streaming reads; pattern '{pattern}' needs one of: {choices}")
        if pattern == "scd2" and not entry.scd2_keys:
            choices = ", ".join(n for n, t in sorted(SYSTEM_TABLES.items()) if t.scd2_keys)
            raise UserError(f"'{source}' is not a slowly changing table; pattern 'scd2' reads one of: {choices}")
        fields = system_tables.columns(source)
        columns = tuple(Column(f.name, _type_text(f.type), f"From {source}.") for f in fields
                        if not isinstance(f.type, types.Struct))
        structs = tuple(f.name for f in fields if isinstance(f.type, types.Struct))
        return columns, structs, entry.scd2_keys, (entry.sequence_column or "", entry.delete_column or "")
    if source not in project.table_names:
        raise UserError(f"'{source}' is neither a system table (system.<schema>.<table>) nor a table in the specs")
    upstream = project.table(source)
    if pattern == "stream" and upstream.dataset_kind is not DatasetKind.STREAMING_TABLE:
        raise UserError(f"'{source}' is a {upstream.dataset_kind.value.replace('_', ' ')}; pattern 'stream' needs a streaming table")
    if pattern == "scd2":
        raise UserError("pattern 'scd2' reads a slowly changing system table (e.g. system.lakeflow.jobs), not another spec")
    columns = tuple(Column(c.name, c.type, c.description, c.nullable, c.pii) for c in upstream.columns)
    return columns, (), upstream.keys if pattern in ("stream", "snapshot") else (), ("", "")


def _group_columns(columns: tuple[Column, ...]) -> tuple[str, ...]:
    names = [c.name for c in columns]
    group = [n for n in ("workspace_id",) if n in names]
    date = next((c.name for c in columns if c.type.upper() == "DATE"), None)
    if date:
        group.append(date)
    if not group:
        group = [next((c.name for c in columns if c.type.upper() == "STRING"), columns[0].name)]
    return tuple(group)


_type_text = types.ddl  # the registry's parsed types, printed as DDL for the starter spec


def _column_yaml(column: Column, *, nullable: bool) -> str:
    parts = [f"name: {_yaml_scalar(column.name)}", f"type: {quoted(column.type)}"]
    if not nullable:
        parts.append("nullable: false")
    if column.pii:
        parts.append("pii: true")
    parts.append(f"description: {quoted(column.description)}")
    return "{" + ", ".join(parts) + "}"


def _yaml_scalar(text: str) -> str:
    return text if _PLAIN_YAML.fullmatch(text) and text not in _YAML_WORDS else quoted(text)
