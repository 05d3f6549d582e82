"""Stage: runtime. `tablesmith run`: the registration code, run for real on local Spark.

The specs are loaded once; what to refresh is decided without Spark (engine.runtime.refresh), so a
run with nothing new returns before any JVM is involved. Otherwise, holding the folder's run lock
(engine.runtime.guard), it connects to the warm local Spark Connect server (engine.runtime.server),
drops what it rebuilds whole, registers every table in-process inside the pipelines registry
(`register_pipeline`, the function the Databricks notebook calls), runs the refresh, and takes
states and timings from the engine's events and counts from the flows' own observations
(engine.runtime.observed).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from engine.names import did_you_mean
from engine.runtime import guard, layout as files, observed, quality, server
from engine.runtime.entry import Registration, register_pipeline, skipped_tables
from engine.runtime.layout import LocalLayout
from engine.runtime.queries import quote
from engine.runtime.refresh import Inputs, RefreshPlan, RunState, files_fingerprint, plan_run, spec_fingerprint
from engine.runtime.results import FlowEvents, RunObserver, RunResult, SparkError, TableResult, apply_observations
from engine.runtime.sources import LocalSystemSource
from engine.spec.located import sql_diagnostic
from engine.spec.model import DatasetKind, Project, Schedule

NOTHING_CHANGED = "nothing changed since the last run (no new source files, no spec changes): nothing to refresh"

# Rebuilt whole by each refresh (a persisted view is published as a materialized view locally).
STORED_BATCH = (DatasetKind.MATERIALIZED_VIEW, DatasetKind.VIEW)
# Settings of the dataflow graph itself (the session's static ones are in spark-defaults.conf).
# No flow retries: locally a failure (a fail expectation, a bad query) is deterministic, and each
# retry waits its back-off before failing the same way.
GRAPH_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.pipelines.maxFlowRetryAttempts": "0"}


def check_selection(project: Project, select: Sequence[str]) -> None:
    """UserError naming each --select name that is no table of the project, with the nearest one."""
    from engine.errors import UserError

    unknown = sorted(set(select) - set(project.table_names))
    if unknown:
        named = ", ".join(name + did_you_mean(name, project.table_names) for name in unknown)
        raise UserError(f"--select names unknown tables: {named}")


def run_local(
    specs_dir: Path,
    *,
    project: Project | None = None,
    source: Path | None = None,
    output: Path = Path(".tablesmith"),
    full_refresh: bool = False,
    select: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    observer: RunObserver | None = None,
    extra_conf: Mapping[str, str] | None = None,
    pipeline_name: str = "pipeline",
) -> RunResult:
    """Refresh what changed (or `select` and its downstream, or everything with `full_refresh`).

    `project`: the specs already loaded by the caller; `source`: the system tables folder (default:
    the project's `source_root`); `observer`: told of progress as the run goes (default: plain lines
    through `echo`). Raises CheckFailed when a flow or a fail expectation fails."""
    from engine.errors import CheckFailed, UserError

    began = time.perf_counter()
    observer = observer or RunObserver(echo)
    note = observer.note
    layout = LocalLayout(output, pipeline_name)
    if project is None and not select and not full_refresh and nothing_changed(layout, specs_dir, source, extra_conf):
        note(NOTHING_CHANGED)
        return RunResult(uuid.uuid4().hex[:12], layout, {}, {}, seconds=time.perf_counter() - began)
    if project is None:
        from engine.spec import load_project

        project = load_project(specs_dir)  # bad specs stop here, before any JVM starts
    check_selection(project, select)
    source_root = source or Path(project.settings.source_root)
    if not source_root.is_dir():
        raise UserError(f"source {source_root} is not a folder (expected <schema>/<table>/ folders of Parquet "
                        f"files: pass --source, or run without it to get demo data)")
    conf = files.pipeline_conf(project, layout, source_root, extra_conf)
    schema = conf["tablesmith.schema"]

    sources = LocalSystemSource(source_root, dict(project.settings.source_tables))
    skipped = skipped_tables(list(project.tables), sources, None)
    active = [t for t in project.tables if t.name not in skipped]
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    current = RunState(
        sources={s: files_fingerprint(sources.path(s)) for s in sorted({s for t in active for s in t.system_sources})},
        specs={t.name: spec_fingerprint(t) for t in active},
        daily_built_on=today,
        source_root=str(source_root.resolve()),
    )
    layout = layout.sized_for(sources.path(s) for s in current.sources)  # the server's JIT (engine.runtime.layout)
    with guard.RunLock(layout):
        pending_file = layout.pending_file(schema)
        pending = guard.Pending.load(pending_file)
        previous = RunState.load(layout.state_file(schema))
        plan = plan_run(project, [t.name for t in active], previous, current, today, select=select,
                        full_refresh=full_refresh, unfinished=(pending.refresh, pending.reset) if pending else None)
        run_id = uuid.uuid4().hex[:12]
        if plan.nothing:
            note(NOTHING_CHANGED)
            tables = {t.name: TableResult(t.name, t.dataset_kind.value, state="UNCHANGED") for t in active}
            return RunResult(run_id, layout, tables, {}, seconds=time.perf_counter() - began, schema=schema)
        _describe(plan, len(active), pending, note)

        session_started = time.perf_counter()
        guard.stop_orphaned_flows(layout, pending, note)
        spark = server.session(layout, note)
        info = server.running(layout)
        if info is None:
            raise UserError(f"the local Spark server stopped as soon as it started: see its log {server.log_file(layout)}")
        journal = guard.Pending(run_id, os.getpid(), info.pid, plan.tables, plan.reset)
        journal.save(pending_file)
        session_seconds = time.perf_counter() - session_started

        with server.ServerWatch(layout, info, spark) as watch:  # the run fails when its server dies
            prepare_started = time.perf_counter()
            rebuild = [t.name for t in active if plan.refreshes(t.name) and t.dataset_kind in STORED_BATCH]
            # Dropped: changed specs (the engine refuses to change an existing table's partitioning);
            # emptied: partitioned views (TRUNCATE leaves unlisted partitions; engine.runtime.guard).
            changed = [t.name for t in active if plan.reasons.get(t.name) == "spec changed"]
            with server.answered_at_once(spark):
                spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote(schema)}")
                guard.prepare(spark, layout, schema, rebuild, changed, plan.reset, [t.name for t in active if t.partition_by])
            prepare_seconds = time.perf_counter() - prepare_started
            note(f"running {len(plan.tables) if plan.tables is not None else len(active)} tables"
                 f"{' (full refresh)' if full_refresh else ''}")
            upstream_project: list[concurrent.futures.Future] = []

            def flows_starting() -> None:
                dataclasses.replace(journal, flows_started=True).save(pending_file)
                # The same pipeline for the upstream CLI: this run never reads it, so it is written while the
                # server resolves the graph (~0.2 s of the client's serial time otherwise).
                upstream_project.append(_in_background(files.write_project, project, layout, conf, specs_dir))

            result = run_pipeline(spark, layout, project, {**conf, "tablesmith.run_id": run_id}, refresh=plan.tables, observer=observer,
                                  on_start=flows_starting)
            result.run_id, result.session_seconds, result.prepare_seconds = run_id, session_seconds, prepare_seconds
            result.unchanged = len(active) - len(result.tables)
            if result.failed:
                journal.save(pending_file)  # ended: its flows no longer run
                watch.check()  # the failure may be the server's death
                if result.failed_expectation:
                    raise CheckFailed(f"expectation failed: {result.failed_expectation}")
                if result.failures:
                    raise CheckFailed(failed_tables(project, result.failures))
                raise CheckFailed(f"pipeline run failed: {result.error}")

            checks_started = time.perf_counter()
            counts = observed.collect(spark, server.observations_dir(layout), run_id)
            refreshed = set(result.tables) if plan.tables is None else set(plan.tables) & set(result.tables)
            result.refreshed = tuple(sorted(refreshed))
            metrics = quality.from_observations(project, refreshed, counts or {})
            if counts is None:
                note("warning: the run's row and expectation counts did not arrive; none recorded")
            else:
                quality.record(spark, schema, run_id, metrics)
            apply_observations(result, counts, metrics if counts is not None else {})
            result.check_seconds = time.perf_counter() - checks_started
        if not select:
            built_daily = plan.tables is None or any(project.table(n).schedule is Schedule.DAILY for n in plan.tables)
            RunState(current.sources, current.specs, today if built_daily else (previous.daily_built_on if previous else ""),
                     current.source_root).save(layout.state_file(schema))
            folders = {str(sources.path(s).resolve()) for t in project.tables for s in t.system_sources}
            Inputs(str(specs_dir.resolve()), files_fingerprint(specs_dir), current.source_root, dict(extra_conf or {}),
                   schema, {f: files_fingerprint(Path(f)) for f in sorted(folders)}).save(layout.inputs_file())
        for written in upstream_project:
            written.result()  # its error, if any, once the run's own work is done
        pending_file.unlink(missing_ok=True)
    result.seconds = time.perf_counter() - began
    observer.run_finished(result)
    return result


def _in_background(work: Callable[..., None], *args: Any) -> concurrent.futures.Future:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tablesmith-write")
    try:
        return executor.submit(work, *args)
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one task


def nothing_changed(layout: LocalLayout, specs_dir: Path, source: Path | None,
                    extra_conf: Mapping[str, str] | None = None) -> bool:
    """No input file of the last successful run changed and no run is unfinished: decided from file
    sizes and times alone, without loading the specs or touching Spark."""
    inputs = Inputs.load(layout.inputs_file())
    if inputs is None or layout.pending_file(inputs.schema).exists():
        return False
    with guard.RunLock(layout):  # not while another run changes things
        return inputs.unchanged(specs_dir, source, extra_conf or {})


def _describe(plan: RefreshPlan, active: int, pending: guard.Pending | None, echo: Callable[[str], None]) -> None:
    if pending is not None:
        echo("the last run did not finish: its tables are rebuilt")
    if plan.tables is not None:
        echo(f"refreshing {len(plan.tables)} of {active} tables (new data, changed specs or --select; "
             f"daily tables once per UTC day; --full-refresh rebuilds all)")
    if plan.reset:
        echo(f"rebuilding from all input: {', '.join(plan.reset)}")


def _graph_subset(project: Project, refresh: Sequence[str] | None) -> set[str] | None:
    """What a partial refresh registers: the refreshed tables, and the streaming tables they stream
    from (a stream reads its upstream inside the pipeline); the rest are read from the catalog."""
    if refresh is None:
        return None
    wanted = set(refresh)
    for table in reversed(project.tables):  # downstream first: a stream's upstream stream comes later
        if table.name in wanted and table.dataset_kind is DatasetKind.STREAMING_TABLE:
            wanted.update(u for u in table.upstream_tables if project.table(u).dataset_kind is DatasetKind.STREAMING_TABLE)
    return wanted


def _drain(stream: Any) -> None:
    try:
        for _ in stream:
            pass
    except Exception:  # noqa: BLE001 - the run's outcome is known; a closed session ends the stream early
        pass


def run_pipeline(
    spark: Any,
    layout: LocalLayout,
    project: Project,
    conf: Mapping[str, str],
    *,
    refresh: Sequence[str] | None = None,
    observer: RunObserver | None = None,
    on_start: Callable[[], None] = lambda: None,
) -> RunResult:
    """Register every table in-process inside the pipelines registry and run the graph (`refresh`:
    only these flows; None: all), reporting each flow from the engine's events to `observer`."""
    observer = observer or RunObserver()
    from pyspark.pipelines.add_pipeline_analysis_context import add_pipeline_analysis_context
    from pyspark.pipelines.block_session_mutations import block_session_mutations
    from pyspark.pipelines.graph_element_registry import graph_element_registration_context
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, start_run

    started = time.perf_counter()
    schema = conf["tablesmith.schema"]
    with server.answered_at_once(spark):
        graph_id = create_dataflow_graph(spark, default_catalog=None, default_database=schema, sql_conf=GRAPH_CONF)
        registry = SparkConnectGraphElementRegistry(spark, graph_id)
        # What the upstream CLI does around each definitions file, without a file: the same
        # registration function the Databricks notebook calls, handed the project already loaded.
        with graph_element_registration_context(registry), \
                add_pipeline_analysis_context(spark=spark, dataflow_graph_id=graph_id, flow_name=None), \
                block_session_mutations():
            registration: Registration = register_pipeline(spark, conf, project=project, only=_graph_subset(project, refresh))

    tables = {name: TableResult(name, project.table(name).dataset_kind.value) for name in registration.registered}
    result = RunResult(conf.get("tablesmith.run_id", ""), layout, tables, dict(registration.skipped), schema=schema)
    result.register_seconds = time.perf_counter() - started
    for name, reason in registration.skipped.items():
        observer.table_skipped(name, reason)
    events = FlowEvents(tables, observer)
    on_start()
    observer.flows_starting(list(tables))
    try:
        stream = start_run(spark, graph_id, full_refresh=[], full_refresh_all=False,
                           refresh=list(refresh or ()), dry=False, storage=layout.storage.resolve().as_uri())
        for item in stream:
            if "pipeline_event_result" in item:
                event = item["pipeline_event_result"].event
                if not result.graph_seconds and "Flow " in event.message:
                    result.graph_seconds = time.perf_counter() - started - result.register_seconds
                events.on_event(event.message, event.timestamp.ToDatetime())
                if events.all_succeeded():
                    # The engine sees the last flow end at its next poll and reports the run one
                    # poll later (whole seconds each): with nothing left to run or to fail, the
                    # rest of the stream is read in the background instead of waited for.
                    threading.Thread(target=_drain, args=(stream,), name="tablesmith-run-tail", daemon=True).start()
                    break
    except Exception as exc:  # noqa: BLE001 - the engine reports flow failures as exceptions
        events.errors.append(str(exc))
    result.flow_seconds = time.perf_counter() - started
    result.failed = bool(events.errors) or any(t.state == "FAILED" for t in tables.values())
    if result.failed:
        result.error, result.failed_expectation = events.failure()
        result.failures = events.failures
    return result


def failed_tables(project: Project, failures: Mapping[str, SparkError]) -> str:
    """Each failed table's error where its spec says what Spark rejected: file:line:col, key, snippet."""
    located = [sql_diagnostic(project.table(name), "QUERY_UNRESOLVED" if error.resolving else "FLOW_FAILED",
                              error.message, error.line, error.fragment, error.position)
               for name, error in sorted(failures.items())]
    count = f"{len(located)} table{'s' if len(located) != 1 else ''}"
    when = "Spark rejected the query of" if all(e.resolving for e in failures.values()) else "the run failed in"
    return f"{when} {count}:\n" + "\n".join(d.format() for d in located)
