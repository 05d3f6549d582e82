"""engine.sql.types agrees with Spark's own parser: what it prints is Spark's simpleString(),
and what it refuses, Spark refuses too (checked against the real JVM, not a table of our own)."""

from __future__ import annotations

import pytest

from engine.sql.types import TypeSyntaxError, canonical, ddl, parse_type

VALID = [
    "STRING", "bigint", "long", "INT", "integer", "short", "byte", "real", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP",
    "TIMESTAMP_NTZ", "BINARY", "decimal", "DECIMAL(38,18)", "dec(5)", "numeric(5,2)", "VARCHAR(10)", "CHAR(3)",
    "ARRAY<STRING>", "MAP<STRING, DECIMAL(38,6)>", "STRUCT<a: INT, `b c`: ARRAY<STRING>>", "struct<a int>",
    "ARRAY<STRUCT<x: MAP<STRING,BIGINT>, y: TIMESTAMP>>",
]
INVALID = ["FOO", "DECIMAL(40,2)", "DECIMAL(5,6)", "ARRAY<>", "MAP<STRING>", "STRING)", "int,", "ARRAY<INT>>"]


def _spark_simple_string(spark, text: str) -> str:
    """What the engine produces: every declared column is CAST to its declared type."""
    return spark.sql(f"SELECT CAST(NULL AS {text}) AS x").schema["x"].dataType.simpleString()


@pytest.mark.parametrize("text", VALID)
def test_canonical_is_sparks_simple_string(local_spark, text):
    assert canonical(text) == _spark_simple_string(local_spark.spark, text)
    assert canonical(ddl(parse_type(text))) == canonical(text), "printing as DDL round-trips"


@pytest.mark.parametrize("text", INVALID)
def test_what_is_refused_spark_refuses_too(local_spark, text):
    with pytest.raises(TypeSyntaxError):
        canonical(text)
    with pytest.raises(Exception):  # noqa: B017 - Spark's parse error class differs across versions
        _spark_simple_string(local_spark.spark, text)
