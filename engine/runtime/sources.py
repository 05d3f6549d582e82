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
    """system.<schema>.<table> straight from Unity Catalog.

    A system schema that is not enabled has no tables, so each system table the selected tables
    read is probed once (`spark.catalog.tableExists`, a catalog lookup allowed while the pipeline
    defines its datasets); the tables that need a missing one are skipped, as a local run skips a
    missing folder. `enabled_schemas` (pipeline setting `tablesmith.enabled_schemas`) replaces the
    probe when set.
    """

    spark: Any = None
    enabled_schemas: frozenset[str] | None = None  # None: probe the catalog
    _problems: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # probed name -> problem ("" = found)

    def available(self, name: str) -> bool:
        if self.enabled_schemas is not None:
            return name.split(".")[1] in self.enabled_schemas
        return not self._problem(name)

    def _problem(self, name: str) -> str:
        if name not in self._problems:
            try:
                found = bool(self.spark.catalog.tableExists(name))
                self._problems[name] = "" if found else "not found in Unity Catalog"
            except Exception as exc:  # noqa: BLE001 - e.g. no USE SCHEMA on it: the table cannot be read either
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self._problems[name] = f"could not be checked: {first_line[:300]}"
        return self._problems[name]

    def read(self, spark: Any, name: str, *, streaming: bool) -> Any:
        if streaming:
            # System tables get rewritten by retention and corrections; skip those commits.
            return spark.readStream.option("skipChangeCommits", "true").table(name)
        return spark.read.table(name)

    def describe(self, name: str) -> str:
        if self.enabled_schemas is not None and not self.available(name):
            return f"{name}: schema not in tablesmith.enabled_schemas ({','.join(sorted(self.enabled_schemas)) or 'empty'})"
        problem = self._problems.get(name, "")
        return f"{name}: {problem}" if problem else name


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
