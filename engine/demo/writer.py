"""Stage: demo data. Deterministic Parquet output in the source layout ``<root>/<schema>/<table>/``.

Byte-identical output for identical input: rows are sorted within each part file, part files
are cut at fixed row counts, row groups have a fixed size, and the files carry no pandas metadata
and no timestamps. Tables are built in a staging directory next to the output and renamed into
place one table at a time, so a reader never sees a half-written table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from engine import atomic
from engine.sources.system_tables import arrow_schema, local_path

ROWS_PER_FILE = 250_000
ROW_GROUP_ROWS = 65_536
COMPRESSION = "zstd"

# Sort order inside each part file. Empty: already sorted when added (billing.usage: one day at a
# time, sorted by usage.usage_table, so the part files stay in usage_start_time order).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "system.billing.usage": (),
    "system.billing.list_prices": ("sku_name", "price_start_time"),
    "system.lakeflow.jobs": ("workspace_id", "job_id", "change_time"),
    "system.lakeflow.job_tasks": ("workspace_id", "job_id", "task_key", "change_time"),
    "system.lakeflow.job_run_timeline": ("period_start_time", "workspace_id", "job_id", "run_id"),
    "system.lakeflow.job_task_run_timeline": ("period_start_time", "workspace_id", "job_id", "run_id"),
    "system.lakeflow.pipelines": ("workspace_id", "pipeline_id", "change_time"),
    "system.compute.clusters": ("workspace_id", "cluster_id", "change_time"),
    "system.compute.node_types": ("node_type",),
    "system.compute.node_timeline": ("start_time", "cluster_id", "instance_id"),
    "system.compute.warehouses": ("workspace_id", "warehouse_id", "change_time"),
    "system.access.audit": ("event_time", "workspace_id", "event_id"),
    "system.access.workspaces_latest": ("workspace_id",),
    "system.query.history": ("start_time", "statement_id"),
    "system.serving.served_entities": ("served_entity_id", "change_time"),
    "system.serving.endpoint_usage": ("request_time", "databricks_request_id"),
    "system.mlflow.experiments_latest": ("workspace_id", "experiment_id"),
    "system.mlflow.runs_latest": ("start_time", "run_id"),
    "system.mlflow.run_metrics_history": ("metric_time", "run_id", "metric_name"),
}


def rows_to_table(name: str, rows: Sequence[dict]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=arrow_schema(name))


def sort_table(name: str, table: pa.Table) -> pa.Table:
    keys = SORT_KEYS[name]
    return table.sort_by([(key, "ascending") for key in keys]) if keys and table.num_rows else table


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, compression=COMPRESSION, write_statistics=True)


class PartWriter:
    """Buffers one table's rows and writes part-00000.parquet, part-00001.parquet, ... into `directory`."""

    def __init__(self, name: str, directory: Path, rows_per_file: int = ROWS_PER_FILE):
        self.name, self.directory, self.rows_per_file = name, directory, rows_per_file
        self.schema = arrow_schema(name)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.parts = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            if self._pending_rows >= self.rows_per_file:
                self._flush()

    def add_rows(self, rows: Sequence[dict]) -> None:
        if rows:
            self.add(rows_to_table(self.name, rows))

    def _flush(self) -> None:
        table = sort_table(self.name, pa.concat_tables(self._pending))
        self.directory.mkdir(parents=True, exist_ok=True)
        write_parquet(table, self.directory / f"part-{self.parts:05d}.parquet")
        self.parts += 1
        self.rows += table.num_rows
        self._pending, self._pending_rows = [], 0

    def close(self) -> int:
        """Write what is left (an empty table still gets one file, so its schema is readable)."""
        if self._pending or self.parts == 0:
            if not self._pending:
                self._pending = [self.schema.empty_table()]
            self._flush()
        return self.rows


def publish(staging: Path, out_dir: Path, names: Sequence[str]) -> None:
    """Move each staged table into `out_dir`, replacing an older copy one table at a time."""
    for name in names:
        atomic.replace_directory(local_path(staging, name), local_path(out_dir, name), local_path(staging / ".retired", name))


def write_new_file(name: str, table: pa.Table, directory: Path, file_name: str) -> Path:
    """Add one file to an existing table directory (a hidden temporary file, then a rename)."""
    target = directory / file_name
    if target.exists():
        raise FileExistsError(f"{target} already exists (was this day appended before?)")
    with atomic.staged_file(target) as temporary:
        write_parquet(sort_table(name, table), temporary)
    return target

