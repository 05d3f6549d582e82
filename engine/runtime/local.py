"""Stage: runtime. `tablesmith run`: the same registration code, run for real on local Spark.

A spark-pipelines project is written under the output folder (spark-pipeline.yml, one generic
definitions file, spark-defaults.conf) and run in this process against a local Spark Connect
server with a file-based Hive/Derby catalog, so a second run is incremental. Users can also run
the written project with `SPARK_CONF_DIR=<out>/conf spark-pipelines run --spec <out>/pipeline/spark-pipeline.yml`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.runtime.entry import LAST_REGISTRATION, Registration, provided_project, skipped_tables
from engine.runtime.refresh import RefreshPlan, RunState, files_fingerprint, plan_refresh, spec_fingerprint
from engine.runtime.sources import LocalSystemSource
from engine.runtime.queries import FAILED_EXPECTATION_MARKER
from engine.spec import manifest
from engine.spec.model import Project, Schedule

NOTEBOOK = Path(__file__).with_name("pipeline_notebook.py")

LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.hms.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hms.level = off
"""

_FLOW_EVENT = re.compile(r"Flow (?P<name>\S+?) (?:is|has) (?P<state>[A-Z_]+)")


@dataclass(frozen=True)
class LocalLayout:
    """Everything a local run keeps, under one folder (default .tablesmith/).

    Warehouse, metastore and Spark settings belong to the folder; several pipelines (`name`)
    can share them, each with its own project folder and checkpoints.
    """

    root: Path
    name: str = "pipeline"

    @property
    def pipeline_dir(self) -> Path:
        return self.root / self.name

    @property
    def spec_file(self) -> Path:
        return self.pipeline_dir / "spark-pipeline.yml"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def metastore(self) -> Path:
        return self.root / "metastore_db"

    @property
    def storage(self) -> Path:
        return self.root / "storage" / self.name

    def spark_defaults(self) -> str:
        # Static settings go here, not on the command line: spark-submit drops --conf groups
        # past the tenth entry when handing them to the Python client (docs/ARCHITECTURE.md).
        return "\n".join([
            "spark.sql.catalogImplementation hive",
            f"spark.sql.warehouse.dir {self.warehouse.resolve()}",
            f"spark.hadoop.javax.jdo.option.ConnectionURL jdbc:derby:;databaseName={self.metastore.resolve()};create=true",
            f"spark.driver.extraJavaOptions -Dderby.system.home={self.root.resolve()}",
            "spark.ui.enabled false",
            "spark.ui.showConsoleProgress false",
            "spark.sql.session.timeZone UTC",
            "spark.sql.shuffle.partitions 4",
            "spark.driver.memory 2g",
            "",
        ])


@dataclass
class TableResult:
    name: str
    kind: str
    state: str = "QUEUED"
    seconds: float = 0.0
    rows: int | None = None
    violations: dict[str, int] = field(default_factory=dict)
    started: float | None = None


@dataclass
class RunResult:
    run_id: str
    layout: LocalLayout
    tables: dict[str, TableResult]
    skipped: dict[str, str]
    failed: bool
    error: str = ""
    failed_expectation: str = ""
    seconds: float = 0.0
    session_seconds: float = 0.0
    flow_seconds: float = 0.0
    check_seconds: float = 0.0  # row counts and expectation violations after the run
    schema: str = ""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_project(project: Project, layout: LocalLayout, source_root: Path, specs_dir: Path, extra_conf: dict[str, str] | None = None) -> dict[str, str]:
    """The spark-pipelines project around the generic registration code; returns its configuration.

    The project's manifest is written beside it, so `spark-pipelines run` on the written project
    registers the same tables without the specs; `run_pipeline` hands the loaded project over instead.
    """
    manifest_file = layout.pipeline_dir / "manifest.json"
    _write(manifest_file, manifest.dumps(project, _posix_relative(specs_dir, Path.cwd())))
    conf = {
        "tablesmith.mode": "local",
        "tablesmith.manifest": str(manifest_file.resolve()),
        "tablesmith.source_root": str(source_root.resolve()),
        "tablesmith.schema": project.settings.schema,
        "tablesmith.schedule": "all",
        **(extra_conf or {}),
    }
    spec = {
        "name": project.settings.name,
        "storage": layout.storage.resolve().as_uri(),
        "database": conf["tablesmith.schema"],
        "configuration": {"spark.sql.session.timeZone": "UTC", **conf},
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }
    _write(layout.spec_file, json.dumps(spec, indent=2, sort_keys=True) + "\n")  # JSON is YAML
    # The Databricks notebook itself is the definitions file: one registration path everywhere.
    _write(layout.pipeline_dir / "transformations" / "tablesmith_pipeline.py", NOTEBOOK.read_text(encoding="utf-8"))
    write_spark_conf(layout)
    return conf


def _posix_relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def write_spark_conf(layout: LocalLayout) -> None:
    _write(layout.conf_dir / "spark-defaults.conf", layout.spark_defaults())
    _write(layout.conf_dir / "log4j2.properties", LOG4J)


def local_session(layout: LocalLayout) -> Any:
    """One local Spark Connect server per process, on a free port (two runs on one machine coexist).

    Static settings (warehouse, metastore) come from SPARK_CONF_DIR; they are fixed for the
    life of the JVM, so a process can only ever serve one LocalLayout root.
    """
    import shutil

    from engine.errors import UserError

    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise UserError("Spark needs Java 17: install it (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")
    os.environ["SPARK_CONF_DIR"] = str(layout.conf_dir.resolve())
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession as ClassicSession
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    if SparkContext._active_spark_context is None:
        port = _free_port()
        os.environ.setdefault("SPARK_CONNECT_AUTHENTICATE_TOKEN", uuid.uuid4().hex)
        conf = SparkConf(loadDefaults=True).setAll([
            ("spark.master", "local[*]"),
            ("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin"),
            ("spark.connect.grpc.binding.address", "127.0.0.1"),
            ("spark.connect.grpc.binding.port", str(port)),
            ("spark.sql.artifact.isolation.enabled", "true"),
            ("spark.sql.artifact.isolation.alwaysApplyClassloader", "true"),
        ])
        ClassicSession(SparkContext.getOrCreate(conf))
        _SERVER_PORT[:] = [port]
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark.sql.functions dispatches on this
    spark = ConnectSession.builder.remote(f"sc://localhost:{_SERVER_PORT[0]}").getOrCreate()
    warehouse = spark.conf.get("spark.sql.warehouse.dir", "")
    if warehouse.removeprefix("file:").rstrip("/") != str(layout.warehouse.resolve()):
        raise UserError(f"a Spark session with warehouse {warehouse} already runs in this process; "
                           f"cannot switch to {layout.warehouse}")
    return spark


_SERVER_PORT: list[int] = []


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_pipeline(
    spark: Any,
    layout: LocalLayout,
    *,
    project: Project | None = None,
    full_refresh: bool = False,
    refresh: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Register definitions through pyspark.pipelines and run the graph, reporting each flow.

    `project`: the project the caller loaded, used by the definitions file instead of reading the
    written manifest again."""
    from pyspark.pipelines.cli import load_pipeline_spec, register_definitions
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, start_run

    started = time.perf_counter()
    spec = load_pipeline_spec(layout.spec_file)
    for key in [k for k in _conf_keys(spark) if k not in spec.configuration]:
        spark.conf.unset(key)  # a previous run's settings must not leak into this one
    for key, value in spec.configuration.items():
        spark.conf.set(key, value)  # what the notebook reads, as the bundle's configuration would
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{spec.database}`")
    graph_id = create_dataflow_graph(spark, default_catalog=spec.catalog, default_database=spec.database, sql_conf=spec.configuration)
    registry = SparkConnectGraphElementRegistry(spark, graph_id)
    LAST_REGISTRATION.clear()
    if project is None:
        register_definitions(layout.spec_file, registry, spec, spark, graph_id)
    else:
        with provided_project(project):
            register_definitions(layout.spec_file, registry, spec, spark, graph_id)
    if not LAST_REGISTRATION:
        raise RuntimeError("the definitions file registered nothing")
    registration: Registration = LAST_REGISTRATION[0]

    tables = {
        name: TableResult(name, registration.project.table(name).dataset_kind.value)
        for name in registration.registered
    }
    result = RunResult(uuid.uuid4().hex[:12], layout, tables, dict(registration.skipped), failed=False, schema=spec.database)
    for name, reason in registration.skipped.items():
        echo(f"  - {name:<34} skipped: {reason}")

    errors: list[str] = []
    try:
        events = start_run(spark, graph_id, full_refresh=[], full_refresh_all=full_refresh,
                           refresh=list(refresh), dry=False, storage=spec.storage)
        for event in events:
            if "pipeline_event_result" in event:
                _on_event(event["pipeline_event_result"].event.message, tables, errors, echo)
    except Exception as exc:  # noqa: BLE001 - the engine reports flow failures as exceptions
        errors.append(str(exc))
    result.flow_seconds = time.perf_counter() - started
    result.failed = bool(errors) or any(t.state == "FAILED" for t in tables.values())
    if result.failed:
        text = "\n".join(errors)
        marker = re.search(FAILED_EXPECTATION_MARKER + r": ([^\n\"]+?\))", text)
        result.failed_expectation = marker.group(1) if marker else ""
        result.error = result.failed_expectation or _first_error_line(text)
    return result


def _conf_keys(spark: Any) -> list[str]:
    return [k for k in spark.conf.getAll if k.startswith("tablesmith.")]


def _on_event(message: str, tables: dict[str, TableResult], errors: list[str], echo: Callable[[str], None]) -> None:
    match = _FLOW_EVENT.search(message)
    if not match:
        if "FAILED" in message or "failed" in message:
            errors.append(message)
        return
    name = match.group("name").split(".")[-1]
    state = match.group("state")
    table = tables.get(name)
    if table is None:  # temporary views over system tables
        return
    now = time.perf_counter()
    table.state = state
    if state == "RUNNING" and table.started is None:
        table.started = now
    elif state in ("COMPLETED", "FAILED", "STOPPED", "SKIPPED", "EXCLUDED", "IDLE"):
        table.seconds = now - (table.started or now)
        mark = {"COMPLETED": "ok", "FAILED": "FAILED"}.get(state, state.lower())
        echo(f"  {mark:>6} {name:<34} {table.seconds:6.1f}s")
        if state == "FAILED":
            errors.append(message)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("at ") and "JVM stacktrace" not in line:
            return line[:400]
    return "pipeline run failed"


def run_local(
    specs_dir: Path,
    *,
    source: Path | None = None,
    output: Path = Path(".tablesmith"),
    full_refresh: bool = False,
    select: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    extra_conf: dict[str, str] | None = None,
    pipeline_name: str = "pipeline",
) -> RunResult:
    """Validate, make sure there is source data, run the pipeline, then count rows and violations."""
    from engine.errors import CheckFailed, UserError
    from engine.runtime import quality
    from engine.spec import load_project

    began = time.perf_counter()
    project = load_project(specs_dir)  # bad specs stop here, before any JVM starts
    unknown = sorted(set(select) - set(project.table_names))
    if unknown:
        raise UserError(f"--select names unknown tables: {', '.join(unknown)}")
    layout = LocalLayout(output, pipeline_name)
    source_root = source or Path(project.settings.source_root)
    if source is not None and not source.is_dir():
        raise UserError(f"--source {source} is not a folder (expected <schema>/<table>/ folders of Parquet files)")
    if source is None and not any(source_root.glob("*/*/*.parquet")):
        from engine.demo.generator import generate

        echo(f"no source data in {source_root}: writing demo system tables there (tablesmith demo-data)")
        generate(source_root)

    conf = write_project(project, layout, source_root, specs_dir, extra_conf)
    sources = LocalSystemSource(source_root, dict(project.settings.source_tables))
    active = [t for t in project.tables if t.name not in skipped_tables(list(project.tables), sources, None)]
    current = RunState(
        sources={s: files_fingerprint(sources.path(s)) for s in sorted({s for t in active for s in t.system_sources})},
        specs={t.name: spec_fingerprint(t) for t in active},
        daily_built_on=dt.datetime.now(dt.timezone.utc).date().isoformat(),
    )
    state_file = layout.root / "state" / f"{layout.name}-{conf['tablesmith.schema']}.json"
    previous = None if full_refresh or select else RunState.load(state_file)
    plan = RefreshPlan(tuple(select)) if select else plan_refresh(project, [t.name for t in active], previous, current, current.daily_built_on)
    if plan.nothing:
        echo("nothing changed since the last run (no new source files, no spec changes): nothing to refresh")
        tables = {t.name: TableResult(t.name, t.dataset_kind.value, state="UNCHANGED") for t in active}
        return RunResult(uuid.uuid4().hex[:12], layout, tables, {}, failed=False,
                         seconds=time.perf_counter() - began, schema=conf["tablesmith.schema"])
    if plan.tables is not None and not select:
        echo(f"refreshing {len(plan.tables)} of {len(active)} tables (new data or changed specs; "
             f"daily tables once per UTC day; --full-refresh rebuilds all)")

    echo(f"starting local Spark (warehouse {layout.warehouse})")
    session_started = time.perf_counter()
    spark = local_session(layout)
    session_seconds = time.perf_counter() - session_started
    refresh = list(plan.tables or ())
    echo(f"running {len(refresh) or len(project.tables)} tables{' (full refresh)' if full_refresh else ''}")
    result = run_pipeline(spark, layout, project=project, full_refresh=full_refresh, refresh=refresh, echo=echo)
    result.session_seconds = session_seconds
    if result.failed:
        result.seconds = time.perf_counter() - began
        if result.failed_expectation:
            raise CheckFailed(f"expectation failed: {result.failed_expectation}")
        raise CheckFailed(f"pipeline run failed: {result.error}")

    if not select:
        RunState(current.sources, current.specs,
                 current.daily_built_on if _refreshed_daily(project, plan) else (previous.daily_built_on if previous else "")
                 ).save(state_file)
    registration = LAST_REGISTRATION[0]
    refreshed = set(registration.registered if plan.tables is None else plan.tables)
    checks_started = time.perf_counter()
    for name, table in result.tables.items():
        if name not in refreshed:
            table.state = "UNCHANGED"
    counted = [n for n, t in result.tables.items() if n in refreshed and t.kind != "temporary_view"]
    rows = count_rows(spark, result.schema, counted)
    for name, count in rows.items():
        result.tables[name].rows = count
    metrics = quality.measure(spark, registration, result.schema, only=refreshed, rows=rows)
    quality.record(spark, result.schema, result.run_id, metrics)
    result.check_seconds = time.perf_counter() - checks_started
    for (name, rule), (_, violations, _) in metrics.items():
        result.tables[name].violations[rule] = violations
    result.seconds = time.perf_counter() - began
    echo(summary(result))
    return result


def count_rows(spark: Any, schema: str, tables: Sequence[str]) -> dict[str, int]:
    """Row counts of many tables in one Spark job (one query per table costs a job each)."""
    if not tables:
        return {}
    parts = [f"SELECT '{name}' AS t, COUNT(*) AS n FROM `{schema}`.`{name}`" for name in tables]
    return {row["t"]: int(row["n"]) for row in spark.sql(" UNION ALL ".join(parts)).collect()}


def _refreshed_daily(project: Project, plan: RefreshPlan) -> bool:
    daily = {t.name for t in project.tables if t.schedule is Schedule.DAILY}
    return plan.tables is None or bool(daily & set(plan.tables))


def summary(result: RunResult) -> str:
    lines = [f"{'table':<36} {'kind':<18} {'rows':>10} {'seconds':>8}  expectation violations"]
    for name, table in result.tables.items():
        rows = "unchanged" if table.state == "UNCHANGED" else ("-" if table.rows is None else str(table.rows))
        violations = ", ".join(f"{rule}={count}" for rule, count in sorted(table.violations.items()) if count) or "-"
        lines.append(f"{name:<36} {table.kind:<18} {rows:>10} {table.seconds:>8.1f}  {violations}")
    for name, reason in result.skipped.items():
        lines.append(f"{name:<36} {'skipped':<18} {'-':>10} {'-':>8}  {reason}")
    lines.append(
        f"done in {result.seconds:.1f}s (Spark start {result.session_seconds:.1f}s, pipeline {result.flow_seconds:.1f}s, "
        f"row counts and expectations {result.check_seconds:.1f}s). "
        f"Tables: database `{result.schema}` in {result.layout.warehouse} (Hive metastore {result.layout.metastore}); "
        f"quality metrics in `{result.schema}`.`_quality_metrics`."
    )
    return "\n".join(lines)
