"""Stage: demo data. Write realistic, deterministic synthetic Databricks system tables as Parquet.

    generate(out_dir)                 # 19 tables under out_dir/<schema>/<table>/part-NNNNN.parquet
    append_day(out_dir, date(...))    # one new file per streamable event table, for one more day
    facts()                           # the planted cases (engine.demo.facts)

Pure pyarrow (no Spark, no JVM). Same arguments -> byte-identical files. The window is the `days`
days before `end_date` (exclusive), all timestamps UTC. Command line: `tablesmith demo-data` (the
only one; the CLI is the one place that calls this package).
"""

from __future__ import annotations

import multiprocessing
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.demo import dimensions as D
from engine.demo.runs import task_rows, timeline_rows
from engine.demo.simulate import APPEND, BASE, DayOutput, simulate_day
from engine.demo.usage import usage_table
from engine.demo.entities import Params, World
from engine.demo.world import build_world
from engine.atomic import scratch_directory
from engine.demo.writer import PartWriter, publish, rows_to_table, write_new_file
from engine.errors import UserError
from engine.sources.system_tables import SYSTEM_TABLES, arrow_schema, local_path

DEFAULT_END_DATE = date(2026, 11, 1)

# The streamable event tables append_day extends, and the id column that must stay unique in each.
APPEND_TABLES: dict[str, str | None] = {
    "system.billing.usage": "record_id",
    "system.lakeflow.job_run_timeline": "run_id",
    "system.lakeflow.job_task_run_timeline": "run_id",
    "system.compute.node_timeline": None,
    "system.access.audit": "event_id",
    "system.serving.endpoint_usage": "databricks_request_id",
    "system.mlflow.run_metrics_history": "record_id",
}


def generate(
    out_dir: Path,
    *,
    workspaces: int = 3,
    days: int = 45,
    jobs: int = 24,
    seed: int = 7,
    scale: float = 1.0,
    end_date: date = DEFAULT_END_DATE,
    processes: int = 1,
) -> dict[str, int]:
    """Write all 19 system tables for the window; returns the row count per table name.

    `processes` > 1 simulates days in that many worker processes (fork, Linux): each day is a pure
    function of the world, and the days are written in window order, so the files are the same."""
    world = build_world(Params(workspaces, days, jobs, seed, scale, end_date))
    out_dir = Path(out_dir)
    with scratch_directory(out_dir) as staging:
        writers = {name: PartWriter(name, local_path(staging, name)) for name in SYSTEM_TABLES}
        job_clusters, mlflow_run_rows = [], []
        for tables, clusters, runs in _simulated_days(world, processes):
            for name, table in tables.items():
                writers[name].add(table)
            job_clusters.extend(clusters)
            mlflow_run_rows.extend(runs)
        writers["system.mlflow.runs_latest"].add_rows(mlflow_run_rows)
        for name, rows in _dimension_rows(world, job_clusters).items():
            writers[name].add_rows(rows)
        counts = {name: writer.close() for name, writer in writers.items()}
        publish(staging, out_dir, list(SYSTEM_TABLES))
    return counts


def append_day(
    out_dir: Path,
    day: date,
    *,
    seed: int = 7,
    workspaces: int = 3,
    jobs: int = 24,
    days: int = 45,
    end_date: date = DEFAULT_END_DATE,
    scale: float = 1.0,
) -> dict[str, int]:
    """Add one new Parquet file per streamable event table with the rows of `day` only.

    Pass the arguments `generate` got, so the same jobs, clusters and endpoints keep running. Ids
    come from a separate namespace and are checked against the existing files. Dimension tables
    (jobs, clusters, ...) are not touched: job clusters created that day are not added to
    compute.clusters.
    """
    out_dir = Path(out_dir)
    world = build_world(Params(workspaces, days, jobs, seed, scale, end_date))
    file_name = f"part-{day:%Y%m%d}-append.parquet"
    for name in APPEND_TABLES:
        if (local_path(out_dir, name) / file_name).exists():
            raise UserError(f"{local_path(out_dir, name) / file_name} exists: {day} was appended before")
    tables = _event_tables(simulate_day(world, day, APPEND))
    _check_unique_ids(out_dir, tables)
    for name in APPEND_TABLES:
        write_new_file(name, tables[name], local_path(out_dir, name), file_name)
    return {name: tables[name].num_rows for name in APPEND_TABLES}


_WORLD: World | None = None  # the world a forked day worker inherits


def _simulate_base_day(day: date) -> tuple[dict[str, pa.Table], list, list[dict]]:
    out = simulate_day(_WORLD, day, BASE)
    return _event_tables(out), out.job_clusters, out.mlflow_run_rows


def _simulated_days(world: World, processes: int):
    """Each day of the window's event tables, job clusters and MLflow runs, in window order."""
    global _WORLD
    _WORLD = world
    try:
        if processes <= 1:
            yield from map(_simulate_base_day, world.params.window())
            return
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield from pool.imap(_simulate_base_day, world.params.window())  # imap keeps the order
    finally:
        _WORLD = None


def _event_tables(out: DayOutput) -> dict[str, pa.Table]:
    home_runs = [run for run in out.runs if not run.job.workspace.is_remote]  # lakeflow tables are regional
    node_timeline = out.node_timeline if out.node_timeline is not None else arrow_schema("system.compute.node_timeline").empty_table()
    return {
        "system.billing.usage": usage_table(out.usage.rows),
        "system.lakeflow.job_run_timeline": rows_to_table(
            "system.lakeflow.job_run_timeline", [row for run in home_runs for row in timeline_rows(run)]),
        "system.lakeflow.job_task_run_timeline": rows_to_table(
            "system.lakeflow.job_task_run_timeline", [row for run in home_runs for row in task_rows(run)]),
        "system.compute.node_timeline": node_timeline,
        "system.access.audit": rows_to_table("system.access.audit", out.audit),
        "system.query.history": rows_to_table("system.query.history", out.queries),
        "system.serving.endpoint_usage": rows_to_table("system.serving.endpoint_usage", out.endpoint_usage),
        "system.mlflow.run_metrics_history": rows_to_table("system.mlflow.run_metrics_history", out.mlflow_metrics),
    }


def _dimension_rows(world: World, job_clusters) -> dict[str, list[dict]]:
    return {
        "system.access.workspaces_latest": D.workspaces_rows(world),
        "system.billing.list_prices": D.list_price_rows(world),
        "system.compute.node_types": D.node_type_rows(),
        "system.lakeflow.jobs": D.job_rows(world),
        "system.lakeflow.job_tasks": D.job_task_rows(world),
        "system.lakeflow.pipelines": D.pipeline_rows(world),
        "system.compute.clusters": D.cluster_rows(world, job_clusters),
        "system.compute.warehouses": D.warehouse_rows(world),
        "system.serving.served_entities": D.served_entity_rows(world),
        "system.mlflow.experiments_latest": D.experiment_rows(world),
    }


def _check_unique_ids(out_dir: Path, tables: dict[str, pa.Table]) -> None:
    for name, id_column in APPEND_TABLES.items():
        directory = local_path(out_dir, name)
        if id_column is None or not directory.exists() or tables[name].num_rows == 0:
            continue
        existing = set(pq.read_table(directory, columns=[id_column]).column(id_column).to_pylist())
        clashes = existing.intersection(tables[name].column(id_column).to_pylist())
        if clashes:
            raise UserError(f"{name}: {len(clashes)} {id_column} values of the new day already exist, e.g. {sorted(clashes)[0]}")
