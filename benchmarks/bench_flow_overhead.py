"""Benchmark: what one flow costs the local engine when it has almost nothing to do. Prints figures.

    .venv/bin/python benchmarks/bench_flow_overhead.py [--flows 40] [--runs 4]

A one-more-day re-run of the demo catalog refreshes 46 tables over a few MB of rows: much of its
time goes to what every flow costs whatever its size (analysis, metastore calls, the table emptied
and written, job and task set-up). This measures that cost alone: N materialized views in one
pipeline on a warm local server started with the settings `tablesmith run` gives its server, each
either a constant (`SELECT 1`) or an aggregate of one 2,000-row table, refreshed R times. Run 1
creates the tables; the later runs are refreshes, as in a re-run. Each prints the wall time of
registration, of the graph (from the run's start to its first flow: resolution, then every table
created or emptied) and of the flows, and the server CPU per flow (from /proc, as
bench_local_run.py reads it). The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_local_run import server_cpu  # noqa: E402 - the benchmarks folder is on sys.path when run
from machine import load_average  # noqa: E402

from engine.runtime import server  # noqa: E402
from engine.runtime.layout import LocalLayout  # noqa: E402

SCHEMA = "flow_overhead"
QUERIES = {
    "constant": "SELECT 1 AS one",
    "aggregate": f"SELECT k, count(*) AS n, sum(v) AS total FROM {SCHEMA}.source GROUP BY k",
}


def one_run(spark: Any, layout: LocalLayout, flows: int, sql: str) -> tuple[float, float, float, float]:
    """(register, graph, flows) seconds and the server CPU seconds of one pipeline run."""
    from pyspark import pipelines as dp
    from pyspark.pipelines.add_pipeline_analysis_context import add_pipeline_analysis_context
    from pyspark.pipelines.block_session_mutations import block_session_mutations
    from pyspark.pipelines.graph_element_registry import graph_element_registration_context
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, start_run

    cpu, started = server_cpu(layout.root), time.perf_counter()
    graph_id = create_dataflow_graph(spark, default_catalog=None, default_database=SCHEMA, sql_conf={"spark.sql.session.timeZone": "UTC"})
    with graph_element_registration_context(SparkConnectGraphElementRegistry(spark, graph_id)), \
            add_pipeline_analysis_context(spark=spark, dataflow_graph_id=graph_id, flow_name=None), \
            block_session_mutations():
        for i in range(flows):
            dp.materialized_view(name=f"view_{i}")(lambda: spark.sql(sql))
    registered = time.perf_counter()
    first_flow = None
    for item in start_run(spark, graph_id, full_refresh=[], full_refresh_all=False, refresh=[], dry=False,
                          storage=layout.storage.resolve().as_uri()):
        if "pipeline_event_result" in item:
            message = item["pipeline_event_result"].event.message
            if "FAILED" in message:
                raise SystemExit(f"a flow failed: {message}")
            if first_flow is None and " is QUEUED" in message:
                first_flow = time.perf_counter()
    ended = time.perf_counter()
    first_flow = first_flow or ended
    return registered - started, first_flow - registered, ended - first_flow, server_cpu(layout.root) - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="tablesmith-flow-overhead-") as tmp:
        layout = LocalLayout(Path(tmp) / "out", large_input=False)  # the demo-data server settings
        started = time.perf_counter()
        spark = server.session(layout, echo=lambda _: None)
        print(f"server start {time.perf_counter() - started:.1f}s; {args.flows} materialized views per run, {args.runs} runs each")
        try:
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
            spark.range(2000).selectExpr("CAST(id % 50 AS STRING) AS k", "id * 1.5 AS v").write.saveAsTable(f"{SCHEMA}.source")
            for kind, sql in QUERIES.items():
                refreshes = []
                for run in range(1, args.runs + 1):
                    register, graph, flows, cpu = one_run(spark, layout, args.flows, sql)
                    print(f"{kind:9} run {run} ({'create' if run == 1 else 'refresh'}): register {register:4.1f}s  "
                          f"graph {graph:4.1f}s  flows {flows:4.1f}s  | server CPU {cpu:5.1f}s = "
                          f"{cpu / args.flows * 1000:4.0f} ms per flow", flush=True)
                    if run > 1:
                        refreshes.append((graph + flows, cpu))
                if refreshes:
                    wall = sum(w for w, _ in refreshes) / len(refreshes)
                    cpu = sum(c for _, c in refreshes) / len(refreshes)
                    print(f"{kind:9} refresh mean: {wall / args.flows * 1000:.0f} ms wall and {cpu / args.flows * 1000:.0f} ms "
                          f"server CPU per flow")
                for i in range(args.flows):  # the next query's run 1 creates its tables too
                    spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.view_{i}")
        finally:
            server.stop(layout)
    print(load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
