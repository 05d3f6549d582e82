"""Spark SQL types without Spark: parse (sqlglot's Databricks dialect), print, compare.

Validation needs types before any JVM exists; the data tests compare `canonical(declared)` with
`field.dataType.simpleString()` of what the engine produced; the system-table registry and the
demo generator turn DDL column lists into Spark and Arrow schemas. sqlglot parses; this module
only refuses what sqlglot is lenient about (Spark rejects `DECIMAL(40,2)`, `MAP<STRING>`, `ARRAY<>`)
and prints Spark's own spelling.

    canonical("MAP<STRING, DECIMAL(38,18)>") == "map<string,decimal(38,18)>"
    parse_columns("a STRING, b ARRAY<INT>") == Struct((Field("a", Primitive("STRING")), ...))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

DIALECT = "databricks"


class TypeSyntaxError(ValueError):
    """A type string that Spark would reject; the message says what was expected."""


# --- the neutral type tree (the registry, the demo writer and Spark/Arrow converters use it) -------

@dataclass(frozen=True)
class Primitive:
    name: str  # Spark's simpleString, upper case: STRING, BOOLEAN, TINYINT, INT, BIGINT, DOUBLE, DATE, ...


@dataclass(frozen=True)
class Decimal:
    precision: int
    scale: int


@dataclass(frozen=True)
class Array:
    element: "ColumnType"


@dataclass(frozen=True)
class Map:
    key: "ColumnType"
    value: "ColumnType"


@dataclass(frozen=True)
class Field:
    name: str
    type: "ColumnType"


@dataclass(frozen=True)
class Struct:
    fields: tuple[Field, ...]


ColumnType = Primitive | Decimal | Array | Map | Struct

_T = exp.DataType.Type
# sqlglot's type -> Spark's simpleString (upper case here, lower case in canonical()).
_PRIMITIVES = {
    _T.TEXT: "STRING", _T.BOOLEAN: "BOOLEAN", _T.TINYINT: "TINYINT", _T.SMALLINT: "SMALLINT", _T.INT: "INT",
    _T.BIGINT: "BIGINT", _T.FLOAT: "FLOAT", _T.DOUBLE: "DOUBLE", _T.DATE: "DATE", _T.TIMESTAMP: "TIMESTAMP",
    _T.TIMESTAMPLTZ: "TIMESTAMP", _T.TIMESTAMPTZ: "TIMESTAMP", _T.TIMESTAMPNTZ: "TIMESTAMP_NTZ",
    _T.BINARY: "BINARY", _T.VARIANT: "VARIANT", _T.NULL: "VOID", _T.UNKNOWN: None,
}
_EXAMPLES = "e.g. STRING, BIGINT, DECIMAL(38,18), ARRAY<…>, MAP<…>, STRUCT<…>"


@lru_cache(maxsize=4096)  # a catalog repeats a few dozen distinct types thousands of times
def parse_type(text: str) -> ColumnType:
    """One Spark SQL type; TypeSyntaxError with what was expected otherwise."""
    if not text.strip() or "," in _outside_brackets(text):
        raise TypeSyntaxError(f"'{text}' is not one Spark SQL type ({_EXAMPLES})")
    definitions = _definitions(f"`x` {text}")
    if definitions is None or len(definitions) != 1 or definitions[0].args.get("constraints"):
        raise TypeSyntaxError(f"'{text}' is not a Spark SQL type ({_EXAMPLES})")
    return _convert(definitions[0].kind, text)


@lru_cache(maxsize=1024)
def type_class(text: str) -> str:
    """'numeric', 'temporal' or 'other': how a chart may use a column of this type ('other' when unreadable)."""
    try:
        data_type = exp.DataType.build(text, dialect=DIALECT)
    except (SqlglotError, ValueError):
        return "other"
    if data_type.is_type(*exp.DataType.NUMERIC_TYPES):
        return "numeric"
    if data_type.is_type(*exp.DataType.TEMPORAL_TYPES):
        return "temporal"
    return "other"


def _outside_brackets(text: str) -> str:
    """The characters of `text` at bracket depth 0 (a top-level comma means two columns)."""
    depth, out = 0, []
    for char in text:
        depth += char in "<(" and 1 or (-1 if char in ">)" else 0)
        if depth == 0:
            out.append(char)
    return "".join(out)


@lru_cache(maxsize=4096)
def canonical(text: str) -> str:
    """`MAP<STRING, DECIMAL(38,18)>` -> `map<string,decimal(38,18)>` (Spark's simpleString)."""
    return simple_string(parse_type(text))


def simple_string(column_type: ColumnType) -> str:
    if isinstance(column_type, Primitive):
        return column_type.name.lower()
    if isinstance(column_type, Decimal):
        return f"decimal({column_type.precision},{column_type.scale})"
    if isinstance(column_type, Array):
        return f"array<{simple_string(column_type.element)}>"
    if isinstance(column_type, Map):
        return f"map<{simple_string(column_type.key)},{simple_string(column_type.value)}>"
    return "struct<" + ",".join(f"{f.name}:{simple_string(f.type)}" for f in column_type.fields) + ">"


def ddl(column_type: ColumnType) -> str:
    """The type as Spark DDL (upper case, struct fields `name: TYPE`)."""
    if isinstance(column_type, Primitive):
        return column_type.name
    if isinstance(column_type, Decimal):
        return f"DECIMAL({column_type.precision},{column_type.scale})"
    if isinstance(column_type, Array):
        return f"ARRAY<{ddl(column_type.element)}>"
    if isinstance(column_type, Map):
        return f"MAP<{ddl(column_type.key)}, {ddl(column_type.value)}>"
    return "STRUCT<" + ", ".join(f"{_field_name(f.name)}: {ddl(f.type)}" for f in column_type.fields) + ">"


def _field_name(name: str) -> str:
    return name if name.isidentifier() and name.isascii() else "`" + name.replace("`", "``") + "`"


@lru_cache(maxsize=256)
def parse_columns(column_list: str) -> Struct:
    """A DDL column list (`a STRING, b ARRAY<INT>`) as a neutral type tree."""
    definitions = _definitions(column_list)
    if not definitions:
        raise TypeSyntaxError(f"not a column list of `name TYPE` pairs: {column_list[:60]}")
    return Struct(tuple(Field(d.name, _convert(d.kind, column_list)) for d in definitions))


def _definitions(column_list: str) -> list[exp.ColumnDef] | None:
    try:
        schema = sqlglot.parse_one(f"CREATE TABLE t ({column_list})", read=DIALECT)
    except (SqlglotError, ValueError):
        return None
    definitions = list(schema.this.expressions) if isinstance(schema.this, exp.Schema) else []
    if not all(isinstance(d, exp.ColumnDef) and isinstance(d.kind, exp.DataType) for d in definitions):
        return None
    return definitions


def _convert(data_type: exp.DataType, text: str) -> ColumnType:
    kind = data_type.this
    params = data_type.expressions
    if kind in (_T.ARRAY, _T.MAP, _T.STRUCT) and not data_type.args.get("nested"):
        raise TypeSyntaxError(f"{kind.value} needs its element types, e.g. {kind.value}<…> (in '{text}')")
    if kind == _T.ARRAY:
        if len(params) != 1:
            raise TypeSyntaxError(f"ARRAY takes one element type, found {len(params)} (in '{text}')")
        return Array(_convert(params[0], text))
    if kind == _T.MAP:
        if len(params) != 2:
            raise TypeSyntaxError(f"MAP takes a key and a value type, found {len(params)} (in '{text}')")
        return Map(_convert(params[0], text), _convert(params[1], text))
    if kind == _T.STRUCT:
        fields = []
        for field in params:
            if not isinstance(field, exp.ColumnDef) or not isinstance(field.kind, exp.DataType):
                raise TypeSyntaxError(f"expected `name: TYPE` fields in STRUCT (in '{text}')")
            fields.append(Field(field.name, _convert(field.kind, text)))
        if not fields:
            raise TypeSyntaxError(f"STRUCT needs at least one field (in '{text}')")
        return Struct(tuple(fields))
    if kind == _T.DECIMAL:
        values = [_int_param(p, text) for p in params]
        precision = values[0] if values else 10
        scale = values[1] if len(values) > 1 else 0
        if len(values) > 2 or not 1 <= precision <= 38:
            raise TypeSyntaxError(f"decimal precision must be a whole number from 1 to 38, not {precision} (in '{text}')")
        if not 0 <= scale <= precision:
            raise TypeSyntaxError(f"decimal scale must be a whole number from 0 to {precision}, not {scale} (in '{text}')")
        return Decimal(precision, scale)
    if kind in (_T.VARCHAR, _T.CHAR) and params:
        _int_param(params[0], text)
        return Primitive("STRING")  # Spark casts to CHAR/VARCHAR as STRING, and the engine casts every column
    name = _PRIMITIVES.get(kind)
    if name is None or params:
        raise TypeSyntaxError(f"'{data_type.sql(dialect=DIALECT)}' is not a Spark SQL type ({_EXAMPLES})")
    return Primitive(name)


def _int_param(param: exp.Expression, text: str) -> int:
    value = param.this if isinstance(param, exp.DataTypeParam) else param
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.this)
    raise TypeSyntaxError(f"expected a whole number in '{text}', found '{param.sql(dialect=DIALECT)}'")
