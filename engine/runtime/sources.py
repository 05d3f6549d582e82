"""Stage: runtime. Where system tables are read from: Databricks' catalog, or a local folder.

Local layout (docs/SOURCES.md): <root>/<schema>/<table>/ holding Parquet files with Databricks'
column names. Reads use the registry schema, so extra columns are ignored and missing ones are NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from engine.sources.system_tables import SYSTEM_TABLES, local_path


class SystemSource(Protocol):
    def available(self, name: str) -> bool: ...

    def read(self, spark: Any, name: str, *, streaming: bool) -> Any: ...

    def describe(self, name: str) -> str: ...


@dataclass(frozen=True)
class DatabricksSystemSource:
    """system.<schema>.<table> straight from Unity Catalog."""

    enabled_schemas: frozenset[str] | None = None  # None: probe the catalog

    def available(self, name: str) -> bool:
        schema = name.split(".")[1]
        return self.enabled_schemas is None or schema in self.enabled_schemas

    def read(self, spark: Any, name: str, *, streaming: bool) -> Any:
        if streaming:
            # System tables get rewritten by retention and corrections; skip those commits.
            return spark.readStream.option("skipChangeCommits", "true").table(name)
        return spark.read.table(name)

    def describe(self, name: str) -> str:
        return name


@dataclass(frozen=True)
class LocalSystemSource:
    """Parquet folders laid out like the system catalog, e.g. <root>/billing/usage/."""

    root: Path
    overrides: Mapping[str, str] = field(default_factory=dict)  # system.x.y -> folder

    def path(self, name: str) -> Path:
        if name in self.overrides:
            return Path(self.overrides[name])
        return local_path(self.root, name)

    def available(self, name: str) -> bool:
        folder = self.path(name)
        return folder.is_dir() and any(p.suffix == ".parquet" for p in folder.rglob("*.parquet"))

    def read(self, spark: Any, name: str, *, streaming: bool) -> Any:
        from engine.sources.system_tables import spark_schema

        schema = spark_schema(name) if name in SYSTEM_TABLES else None
        reader = spark.readStream if streaming else spark.read
        if schema is not None:
            reader = reader.schema(schema)
        return reader.option("recursiveFileLookup", "true").parquet(str(self.path(name).resolve()))

    def describe(self, name: str) -> str:
        return str(self.path(name))
