"""Benchmark: the catalog at scale (10M billing.usage rows) against a plain PySpark baseline. Prints figures.

    .venv/bin/python benchmarks/bench_scale.py [--usage-rows 10000000] [--data DIR] [--keep-data]

1. Generates an account with the demo generator: 20 workspaces, 90 days, 1,000 jobs with their runs
   and tasks, `scale` chosen for about `--usage-rows` billing.usage rows (smaller sizes shrink jobs
   and scale together). With `--data DIR` an account generated before with the same parameters
   (DIR/bench_scale.json) is reused and its generation time reported as it was measured.
2. Runs the catalog locally in three stages, each a real `tablesmith run` on one output folder and
   one warm Spark server: the billing tables (billing_usage_bronze, list_prices, billing_summary,
   cost_by_product/sku/job/user and what they read: jobs_bronze, jobs_latest), then the jobs domain,
   then the whole catalog. A stage runs on a copy of the specs holding its tables and their upstream
   (`--select t` would also refresh everything downstream of t, most of the catalog); each stage
   builds only the tables that are new to the output. Per stage: wall time and its split (Spark
   start, register, graph, flows, counts), source rows read, rows written, rows per second, and the
   peak memory of the client and Spark server process trees (RSS summed, sampled from /proc).
3. Times a plain PySpark script (one local SparkSession, the local server's driver memory and
   shuffle partitions) computing the same billing tables from the same Parquet files by hand, and
   prints the ratio Tablesmith billing stage / baseline (goal <= 1.3). Row counts and cost sums of
   both must be equal. Then the same script once more with the one table it does not write, the
   bronze copy of billing.usage (the spec's columns, read back for billing_summary, as the catalog
   does): the ratio to that like-for-like baseline is what the engine adds to the same work, the
   first ratio also what the catalog's design adds (a bronze history). `--no-bronze-baseline` skips it.
4. Prints the machine (cores, memory, load average before/after, Spark and Python versions).
   Exits 1 when a stage fails or the baseline's results differ. Targets (issue 16): 10M usage rows
   in under 15 minutes with peak memory under 8 GB.

Never part of the test suite. Stops the Spark server it started and removes its output (and the
generated data unless --keep-data) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from machine import PROBE_ADDITIONS, load_figures, python_seconds  # same folder: on sys.path when run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

# The account of the issue: 1,000 jobs, 20 workspaces, 90 days. SCALE_10M (measured) gives about
# 10M usage rows with it: the jobs bill about 0.77M rows, each unit of scale about 0.195M more.
FULL_ROWS, FULL_JOBS, WORKSPACES, DAYS, SEED = 10_000_000, 1000, 20, 90, 7
SCALE_10M = 47.3
MIN_JOBS = 24  # the demo's default: every planted job role and a few more

# The billing stage: the tables the baseline computes by hand, and their cost column.
BASELINE_TABLES = {
    "billing_summary": "estimated_cost_usd",
    "cost_by_product": "total_cost_usd",
    "cost_by_sku": "total_cost_usd",
    "cost_by_job": "total_cost_usd",
    "cost_by_user": "total_cost_usd",
}
BILLING_STAGE = ("billing_usage_bronze", "list_prices", *BASELINE_TABLES)

DONE = re.compile(r"done in (?P<total>[\d.]+)s \(Spark start (?P<spark>[\d.]+)s, prepare (?P<prepare>[\d.]+)s, "
                  r"pipeline (?P<pipeline>[\d.]+)s \[register (?P<register>[\d.]+)s, graph (?P<graph>[\d.]+)s\], "
                  r"row counts and expectations (?P<checks>[\d.]+)s\)")
TABLE_LINE = re.compile(r"^(?P<name>\w+)\s+(?P<kind>streaming_table|materialized_view|view)\s+\+?(?P<rows>\d+)\s+[\d.]+\s")


# --- the account -------------------------------------------------------------------------------

def account_params(usage_rows: int) -> dict:
    """Generator arguments for about `usage_rows` billing.usage rows (jobs and scale shrink together)."""
    ratio = usage_rows / FULL_ROWS
    return dict(workspaces=WORKSPACES, days=DAYS, jobs=max(MIN_JOBS, round(FULL_JOBS * ratio)), seed=SEED,
                scale=round(SCALE_10M * ratio, 4))


def ensure_account(data: Path, params: dict, processes: int) -> dict:
    """Generate the account into data/source unless data/bench_scale.json says it is there already."""
    from engine.demo.generator import generate

    stamp_file = data / "bench_scale.json"
    if stamp_file.exists():
        stamp = json.loads(stamp_file.read_text())
        if stamp.get("params") == params and (data / "source").is_dir():
            print(f"reusing the account in {data} (generated in {stamp['seconds']:.0f} s when it was written)")
            return {**stamp, "reused": True}
    data.mkdir(parents=True, exist_ok=True)
    print(f"generating the account into {data / 'source'}: {params} ...", flush=True)
    sampler = MemorySampler(lambda: [os.getpid(), *descendants(os.getpid())]).start()
    started = time.perf_counter()
    counts = generate(data / "source", processes=processes, **params)
    seconds = time.perf_counter() - started
    sampler.stop()
    stamp = {"params": params, "counts": counts, "seconds": round(seconds, 1), "peak_rss_bytes": sampler.peak}
    stamp_file.write_text(json.dumps(stamp, indent=2, sort_keys=True))
    print(f"generated {counts['system.billing.usage']:,} usage rows, {sum(counts.values()):,} rows in {seconds:.1f} s", flush=True)
    return {**stamp, "reused": False}


# --- memory ------------------------------------------------------------------------------------

def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes ({} when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def _cpu(pid: int) -> float | None:
    """CPU seconds of a process and of the children it waited for (utime stime cutime cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class MemorySampler:
    """Peak of the summed RSS of some processes (sampled every `interval` s), and the sum of their VmHWM."""

    def __init__(self, pids, interval: float = 1.0):
        self.pids, self.interval = pids, interval
        self.peak = 0
        self.hwm: dict[int, int] = {}
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "MemorySampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu(self) -> float:
        """CPU seconds the processes used while sampled (those already running count from the first sample)."""
        return sum(last - self._cpu_first.get(pid, 0.0) for pid, last in self._cpu_last.items())

    def _run(self) -> None:
        first = True
        while True:
            stopping = self._stop.is_set()  # one last sample after stop(): the CPU of the final second
            total = 0
            for pid in set(self.pids()):
                status = _status(pid)
                total += status.get("VmRSS", 0)
                self.hwm[pid] = max(self.hwm.get(pid, 0), status.get("VmHWM", 0))
                cpu = _cpu(pid)
                if cpu is not None:
                    if first:
                        self._cpu_first[pid] = cpu
                    self._cpu_last[pid] = max(cpu, self._cpu_last.get(pid, 0.0))
            first = False
            self.peak = max(self.peak, total)
            if stopping:
                return
            self._stop.wait(self.interval)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


# --- the stages --------------------------------------------------------------------------------

@dataclass
class Stage:
    label: str
    wall: float = 0.0
    split: dict[str, float] = field(default_factory=dict)
    tables: int = 0
    rows_read: int = 0
    rows_written: int = 0
    peak: int = 0
    hwm_sum: int = 0
    cpu: float = 0.0  # CPU seconds of the client and server process trees (JVM included)
    ok: bool = True
    note: str = ""


def spec_files_by_table(specs: Path) -> dict[str, Path]:
    """Table name -> the spec file defining it (an SCD2 spec also defines its `current` table)."""
    from engine.spec import table_spec_files

    found = {}
    for path in table_spec_files(specs):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found[document["name"]] = path
        current = (document.get("scd2") or {}).get("current") or {}
        if current.get("name"):
            found[current["name"]] = path
    return found


def with_upstream(project, names) -> set[str]:
    wanted = set(names)
    for table in reversed(project.tables):  # topological order, walked downstream first
        if table.name in wanted:
            wanted.update(table.upstream_tables)
    return wanted


def subset_specs(specs: Path, target: Path, names: set[str]) -> Path:
    """A specs folder with only these tables' spec files and the project settings (central views
    dropped: they read tables a subset may lack)."""
    files = spec_files_by_table(specs)
    target.mkdir(parents=True)
    project = yaml.safe_load((specs / "project.yaml").read_text(encoding="utf-8"))
    project.get("central", {}).pop("views", None)
    (target / "project.yaml").write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
    for path in {files[n] for n in names}:
        out = target / path.relative_to(specs)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out)
    return target


def source_rows(source: Path, system_tables: set[str]) -> int:
    import pyarrow.parquet as pq

    from engine.sources.system_tables import local_path

    total = 0
    for name in system_tables:
        for file in sorted(local_path(source, name).glob("*.parquet")):
            total += pq.ParquetFile(file).metadata.num_rows
    return total


def run_stage(label: str, specs: Path, source: Path, output: Path, project) -> Stage:
    from engine.runtime.layout import LocalLayout
    from engine.runtime.server import running

    layout = LocalLayout(output)
    command = [sys.executable, "-m", "engine.cli", "run", "--specs", str(specs), "--source", str(source),
               "--output", str(output)]
    print(f"stage {label}: {' '.join(command[2:])}", flush=True)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def tree() -> list[int]:
        server = running(layout)
        roots = [process.pid] + ([server.pid] if server else [])
        return roots + [d for r in roots for d in descendants(r)]

    sampler = MemorySampler(tree).start()
    started = time.perf_counter()
    lines = []
    for line in process.stdout:  # streamed: a long stage shows its progress
        lines.append(line)
        if line.lstrip().startswith(("ok ", "FAILED ")) or "starting the local" in line:
            print(f"    {line.rstrip()}", flush=True)
    code = process.wait()
    stage = Stage(label, wall=time.perf_counter() - started)
    sampler.stop()
    stage.peak, stage.hwm_sum, stage.cpu = sampler.peak, sum(sampler.hwm.values()), sampler.cpu
    stdout = "".join(lines)
    if code != 0:
        stage.ok, stage.note = False, stdout[-3000:]
        print(f"stage {label} FAILED (exit {code}):\n{stage.note}", flush=True)
        return stage
    table_start = next((i for i, line in enumerate(lines) if line.startswith("table ")), len(lines))
    print("".join(f"    {line}" for line in lines[table_start:] if not line.startswith("done in")), end="", flush=True)
    match = DONE.search(stdout)
    stage.split = {k: float(v) for k, v in match.groupdict().items()} if match else {}
    built = {m["name"]: int(m["rows"]) for m in map(TABLE_LINE.match, stdout.splitlines()) if m}
    stage.tables, stage.rows_written = len(built), sum(built.values())
    stage.rows_read = source_rows(source, {s for n in built if n in project.table_names for s in project.table(n).system_sources})
    print(f"stage {label}: {stage.wall:.1f} s, {stage.tables} tables, {stage.rows_read:,} source rows read, "
          f"{stage.rows_written:,} rows written, peak {gib(stage.peak)}", flush=True)
    return stage


# --- the plain PySpark baseline ----------------------------------------------------------------

BASELINE_SQL = {
    # What billing_usage_bronze keeps (record_id_present drops NULL ids) and flattens, read once.
    "usage": """
        SELECT record_id, account_id, workspace_id, record_type, usage_date, usage_start_time, usage_end_time,
               sku_name, cloud, usage_unit, usage_type, billing_origin_product, usage_quantity,
               usage_metadata.cluster_id AS cluster_id, usage_metadata.warehouse_id AS warehouse_id,
               usage_metadata.job_id AS job_id, usage_metadata.job_run_id AS job_run_id,
               usage_metadata.job_name AS job_name, usage_metadata.notebook_id AS notebook_id,
               usage_metadata.notebook_path AS notebook_path, usage_metadata.dlt_pipeline_id AS dlt_pipeline_id,
               usage_metadata.endpoint_id AS endpoint_id, usage_metadata.endpoint_name AS endpoint_name,
               identity_metadata.run_as AS run_as, identity_metadata.owned_by AS owned_by,
               product_features.is_serverless AS is_serverless, product_features.is_photon AS is_photon,
               product_features.jobs_tier AS jobs_tier, product_features.sql_tier AS sql_tier,
               product_features.serving_type AS serving_type, custom_tags
        FROM raw_usage WHERE record_id IS NOT NULL""",
    "prices": """
        SELECT sku_name, cloud, currency_code, usage_unit, price_start_time, price_end_time,
               pricing.`default` AS list_price, pricing.effective_list.`default` AS effective_list_price
        FROM raw_prices""",
    # The latest version of each job, deleted jobs included.
    "job_names": """
        SELECT workspace_id, job_id, name FROM (
          SELECT workspace_id, job_id, name,
                 ROW_NUMBER() OVER (PARTITION BY workspace_id, job_id ORDER BY change_time DESC) AS version_rank
          FROM raw_jobs WHERE job_id IS NOT NULL AND workspace_id IS NOT NULL)
        WHERE version_rank = 1""",
    # Each usage row with the one list price valid at its start time.
    "billing_summary": """
        SELECT u.record_id, u.account_id, u.workspace_id, u.record_type, u.usage_date, u.usage_start_time,
               u.usage_end_time, u.sku_name, u.cloud, u.usage_unit, u.usage_type, u.billing_origin_product,
               u.usage_quantity,
               CAST(u.usage_quantity * p.effective_list_price AS DECIMAL(38,6)) AS estimated_cost_usd,
               CAST(u.usage_quantity * p.list_price AS DECIMAL(38,6)) AS list_cost_usd,
               p.effective_list_price, p.list_price, u.cluster_id, u.warehouse_id, u.job_id, u.job_run_id,
               COALESCE(j.name, u.job_name) AS job_name, u.job_name AS billed_job_name, u.notebook_id,
               u.notebook_path, u.dlt_pipeline_id, u.endpoint_id, u.endpoint_name, u.run_as, u.owned_by,
               u.is_serverless, u.is_photon, u.jobs_tier, u.sql_tier, u.serving_type, u.custom_tags
        FROM usage u
        LEFT JOIN prices p
          ON u.sku_name = p.sku_name AND u.cloud = p.cloud AND u.usage_unit = p.usage_unit
         AND p.currency_code = 'USD' AND u.usage_start_time >= p.price_start_time
         AND (p.price_end_time IS NULL OR u.usage_start_time < p.price_end_time)
        LEFT JOIN job_names j ON u.workspace_id = j.workspace_id AND u.job_id = j.job_id""",
    # Aggregates: every record type summed (corrections net out), groups netting to zero dropped.
    "cost_by_product": """
        SELECT workspace_id, usage_date, billing_origin_product, is_serverless,
               SUM(CASE WHEN usage_unit = 'DBU' THEN usage_quantity ELSE 0 END) AS total_dbus,
               SUM(estimated_cost_usd) AS total_cost_usd, SUM(list_cost_usd) AS total_list_cost_usd,
               COUNT(*) AS record_count
        FROM summary GROUP BY workspace_id, usage_date, billing_origin_product, is_serverless
        HAVING SUM(usage_quantity) != 0""",
    "cost_by_sku": """
        SELECT workspace_id, usage_date, sku_name, cloud, usage_unit, SUM(usage_quantity) AS total_usage,
               SUM(CASE WHEN usage_unit = 'DBU' THEN usage_quantity ELSE 0 END) AS total_dbus,
               SUM(estimated_cost_usd) AS total_cost_usd, SUM(list_cost_usd) AS total_list_cost_usd,
               COUNT(*) AS record_count
        FROM summary GROUP BY workspace_id, usage_date, sku_name, cloud, usage_unit
        HAVING SUM(usage_quantity) != 0""",
    "cost_by_job": """
        SELECT c.workspace_id, c.usage_date, c.job_id, j.name AS job_name, c.run_as, c.billing_origin_product,
               c.run_count, c.total_dbus, c.total_cost_usd, c.total_list_cost_usd
        FROM (
          SELECT workspace_id, job_id, usage_date, billing_origin_product,
                 max_by(run_as, CASE WHEN run_as IS NOT NULL THEN usage_start_time END) AS run_as,
                 COUNT(DISTINCT job_run_id) AS run_count,
                 SUM(CASE WHEN usage_unit = 'DBU' THEN usage_quantity ELSE 0 END) AS total_dbus,
                 SUM(estimated_cost_usd) AS total_cost_usd, SUM(list_cost_usd) AS total_list_cost_usd
          FROM summary WHERE job_id IS NOT NULL
          GROUP BY workspace_id, job_id, usage_date, billing_origin_product
          HAVING SUM(usage_quantity) != 0) c
        LEFT JOIN job_names j ON c.workspace_id = j.workspace_id AND c.job_id = j.job_id""",
    "cost_by_user": """
        SELECT workspace_id, usage_date, run_as, billing_origin_product, COUNT(DISTINCT job_id) AS distinct_jobs,
               SUM(CASE WHEN usage_unit = 'DBU' THEN usage_quantity ELSE 0 END) AS total_dbus,
               SUM(estimated_cost_usd) AS total_cost_usd, SUM(list_cost_usd) AS total_list_cost_usd,
               COUNT(*) AS record_count
        FROM summary GROUP BY workspace_id, usage_date, run_as, billing_origin_product
        HAVING SUM(usage_quantity) != 0""",
}


def local_server_settings() -> dict[str, str]:
    """The local server's driver memory and shuffle partitions (engine/runtime/layout.py), for the baseline."""
    from engine.runtime.layout import LocalLayout

    settings = dict(line.split(" ", 1) for line in LocalLayout(Path("x")).spark_defaults().splitlines() if line)
    wanted = ("spark.driver.memory", "spark.sql.shuffle.partitions", "spark.sql.session.timeZone",
              "spark.ui.enabled", "spark.ui.showConsoleProgress")
    return {key: settings[key] for key in wanted if key in settings}


def bronze_projection(specs: Path) -> str:
    """The SELECT list of billing_usage_bronze: its declared columns cast to their types and the two
    identifier columns, as the catalog's stream writes them (engine/runtime/queries.py)."""
    from engine.runtime.queries import identifier_projection, source_projection
    from engine.spec import load_project

    project = load_project(specs)
    return ", ".join([*source_projection(project.table("billing_usage_bronze")), *identifier_projection(project.settings)])


def baseline(source: Path, output: Path, bronze_select: str = "") -> int:
    """The plain PySpark script (run in its own process): prints its timings as JSON on the last line.
    `bronze_select`: first write the bronze copy of billing.usage with this SELECT list and compute
    from it, as the catalog does (not partitioned, as the local streaming table is)."""
    started = time.perf_counter()
    from pyspark.sql import SparkSession

    from engine.sources.system_tables import local_path

    builder = SparkSession.builder.master("local[*]").appName("bench_scale baseline")
    for key, value in local_server_settings().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    session = time.perf_counter() - started
    spark.read.parquet(str(local_path(source, "system.billing.usage"))).createOrReplaceTempView("raw_usage")
    if bronze_select:
        spark.sql(f"SELECT {bronze_select} FROM raw_usage WHERE record_id IS NOT NULL").write.mode("overwrite") \
            .parquet(str(output / "billing_usage_bronze"))
        spark.read.parquet(str(output / "billing_usage_bronze")).createOrReplaceTempView("raw_usage")
    spark.read.parquet(str(local_path(source, "system.billing.list_prices"))).createOrReplaceTempView("raw_prices")
    spark.read.parquet(str(local_path(source, "system.lakeflow.jobs"))).createOrReplaceTempView("raw_jobs")
    for view in ("usage", "prices", "job_names"):
        spark.sql(BASELINE_SQL[view]).createOrReplaceTempView(view)
    spark.sql(BASELINE_SQL["billing_summary"]).write.mode("overwrite").partitionBy("usage_date") \
        .parquet(str(output / "billing_summary"))
    spark.read.parquet(str(output / "billing_summary")).createOrReplaceTempView("summary")
    for name in ("cost_by_product", "cost_by_sku", "cost_by_job", "cost_by_user"):
        spark.sql(BASELINE_SQL[name]).write.mode("overwrite").parquet(str(output / name))
    compute = time.perf_counter() - started - session
    spark.stop()
    print(json.dumps({"session": session, "compute": compute}))
    return 0


def run_baseline(source: Path, output: Path, specs: Path | None = None) -> Stage:
    """`specs`: the like-for-like baseline, which also writes the bronze copy billing_usage_bronze."""
    command = [sys.executable, str(Path(__file__).resolve()), "--baseline", str(source), str(output)]
    label = "plain PySpark + bronze" if specs else "plain PySpark baseline"
    if specs:
        command += ["--bronze-specs", str(specs)]
    print(f"baseline: plain PySpark, one local SparkSession{', with the bronze copy' if specs else ''}", flush=True)
    env = {**os.environ, "SPARK_CONF_DIR": str(output.parent / "baseline-conf")}
    from engine.runtime.layout import LOG4J

    Path(env["SPARK_CONF_DIR"]).mkdir(parents=True, exist_ok=True)
    (Path(env["SPARK_CONF_DIR"]) / "log4j2.properties").write_text(LOG4J)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sampler = MemorySampler(lambda: [process.pid, *descendants(process.pid)]).start()
    stdout, stderr = process.communicate()
    stage = Stage(label, wall=time.perf_counter() - started)
    sampler.stop()
    stage.peak, stage.hwm_sum, stage.cpu = sampler.peak, sum(sampler.hwm.values()), sampler.cpu
    if process.returncode != 0:
        stage.ok, stage.note = False, (stdout + stderr)[-3000:]
        print(f"baseline FAILED:\n{stage.note}", flush=True)
        return stage
    timings = json.loads(stdout.strip().splitlines()[-1])
    stage.split = {"spark": timings["session"], "pipeline": timings["compute"]}
    stage.tables = len(BASELINE_TABLES) + (1 if specs else 0)
    stage.rows_read = source_rows(source, {"system.billing.usage", "system.billing.list_prices", "system.lakeflow.jobs"})
    print(f"baseline: {stage.wall:.1f} s (session {timings['session']:.1f} s, compute {timings['compute']:.1f} s), "
          f"peak {gib(stage.peak)}", flush=True)
    return stage


def run_checked_baseline(source: Path, output: Path, warehouse_db: Path, specs: Path | None = None) -> Stage:
    """A baseline run whose five tables must equal Tablesmith's (rows and cost sums); its output removed."""
    stage = run_baseline(source, output, specs)
    if stage.ok:
        print("checking the baseline's results against Tablesmith's tables:")
        problems, stage.rows_written = compare(warehouse_db, output)
        if specs:
            import pyarrow.dataset as ds

            stage.rows_written += ds.dataset(output / "billing_usage_bronze", format="parquet").count_rows()
        if problems:
            print(f"baseline and Tablesmith differ on: {', '.join(problems)}")
            stage.ok = False
    shutil.rmtree(output, ignore_errors=True)
    return stage


def table_figures(directory: Path, cost_column: str) -> tuple[int, object]:
    """(rows, SUM(cost)) of a Parquet table folder, read with pyarrow: the same for both sides."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(directory), format="parquet", partitioning="hive",
                         exclude_invalid_files=True, ignore_prefixes=[".", "_"])
    table = dataset.to_table(columns=[cost_column])
    return table.num_rows, pc.sum(table.column(cost_column)).as_py()


def compare(warehouse_db: Path, baseline_out: Path) -> tuple[list[str], int]:
    """Tables whose row count or cost sum differ, and the baseline's rows written."""
    problems, written = [], 0
    for name, cost in BASELINE_TABLES.items():
        ours, theirs = table_figures(warehouse_db / name, cost), table_figures(baseline_out / name, cost)
        same = "equal" if ours == theirs else "DIFFERENT"
        print(f"  {name:<16} Tablesmith {ours[0]:>10,} rows, SUM({cost}) {ours[1]} | baseline {theirs[0]:>10,} rows, "
              f"SUM {theirs[1]} -> {same}")
        written += theirs[0]
        if ours != theirs:
            problems.append(name)
    return problems, written


# --- report ------------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    import pyspark

    memory = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return {"cores": str(os.cpu_count()), "memory": gib(memory), "python": platform.python_version(),
            "spark": pyspark.__version__, "platform": platform.platform(),
            "speed": f"{PROBE_ADDITIONS:,} additions in {python_seconds():.2f}s"}


def report(account: dict, stages: list[Stage], base: Stage | None, loads: list[str], total: float,
           like: Stage | None = None) -> None:
    counts = account["counts"]
    usage = counts["system.billing.usage"]
    print("\n=== bench_scale figures ===")
    gen = "reused; generated earlier in" if account["reused"] else "generated in"
    print(f"account: {usage:,} billing.usage rows, {sum(counts.values()):,} rows in {len(counts)} tables, "
          f"{account['params']} ({gen} {account['seconds']:.0f} s, {usage / account['seconds']:,.0f} usage rows/s"
          + (f", peak {gib(account['peak_rss_bytes'])}" if account.get("peak_rss_bytes") else "") + ")")
    print(f"{'stage':<26} {'wall s':>7} {'start':>6} {'regist':>6} {'graph':>6} {'flows':>7} {'counts':>6} "
          f"{'tables':>6} {'rows read':>12} {'rows written':>13} {'read/s':>9} {'peak mem':>10} {'sum HWM':>10} {'CPU s':>7}")
    for s in [*stages, *(b for b in (base, like) if b)]:
        split = s.split
        print(f"{s.label:<26} {s.wall:>7.1f} {split.get('spark', 0):>6.1f} {split.get('register', 0):>6.1f} "
              f"{split.get('graph', 0):>6.1f} {split.get('pipeline', 0):>7.1f} {split.get('checks', 0):>6.1f} "
              f"{s.tables:>6} {s.rows_read:>12,} {s.rows_written:>13,} {s.rows_read / s.wall if s.wall else 0:>9,.0f} "
              f"{gib(s.peak):>10} {gib(s.hwm_sum):>10} {s.cpu:>7.1f}{'' if s.ok else '  FAILED'}")
    runs = sum(s.wall for s in stages)
    peak = max(s.peak for s in stages) if stages else 0  # the target is Tablesmith's; the baselines' are in the table
    print(f"Tablesmith stages together: {runs:.1f} s ({runs / 60:.1f} min; target: 10M usage rows under 15 min); "
          f"peak memory {gib(peak)} (target: under 8 GB)")
    if base and base.ok and stages and stages[0].ok:
        print(f"billing: Tablesmith {stages[0].wall:.1f} s / plain PySpark {base.wall:.1f} s = "
              f"ratio {stages[0].wall / base.wall:.2f} (goal <= 1.3); CPU {stages[0].cpu:.1f} s / {base.cpu:.1f} s = "
              f"{stages[0].cpu / base.cpu if base.cpu else 0:.2f}")
    if like and like.ok and stages and stages[0].ok:
        print(f"billing, like for like (the baseline also writes the bronze copy): Tablesmith {stages[0].wall:.1f} s / "
              f"{like.wall:.1f} s = ratio {stages[0].wall / like.wall:.2f}; CPU {stages[0].cpu:.1f} s / {like.cpu:.1f} s = "
              f"{stages[0].cpu / like.cpu if like.cpu else 0:.2f} (what the engine adds to the same work)")
    print(f"whole benchmark {total:.1f} s ({total / 60:.1f} min, account generation "
          f"{'excluded: reused' if account['reused'] else 'included'})")
    m = machine()
    print(f"machine: {m['cores']} cores, {m['memory']}, {m['platform']}; Python {m['python']}, Spark {m['spark']}; "
          f"load average (1/5/15 min) before {loads[0]}, after {loads[-1]}; Python speed probe (best of 3, after "
          f"the run): {m['speed']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usage-rows", type=int, default=FULL_ROWS)
    parser.add_argument("--data", type=Path, help="where the account is (re)used (default: /tmp/bench_scale_<rows>)")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated account for the next run")
    parser.add_argument("--specs", type=Path, default=ROOT / "specs")
    parser.add_argument("--processes", type=int, default=1, help="demo generator worker processes")
    parser.add_argument("--billing-only", action="store_true",
                        help="stop after the billing stage and the baseline (the ratio, in a third of the time)")
    parser.add_argument("--no-bronze-baseline", action="store_true",
                        help="skip the like-for-like baseline that also writes the bronze copy")
    parser.add_argument("--baseline", nargs=2, type=Path, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--bronze-specs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline:
        return baseline(*args.baseline, bronze_projection(args.bronze_specs) if args.bronze_specs else "")

    from engine.spec import load_project

    began = time.perf_counter()
    loads = [load_figures()]
    params = account_params(args.usage_rows)
    data = args.data or Path(f"/tmp/bench_scale_{args.usage_rows}")
    work = Path(tempfile.mkdtemp(prefix="bench_scale_run_", dir="/tmp"))
    output = work / "out"
    stages: list[Stage] = []
    account, base, like = None, None, None
    failed = False
    try:
        account = ensure_account(data, params, args.processes)
        source = data / "source"
        project = load_project(args.specs)
        billing = with_upstream(project, BILLING_STAGE)
        jobs = with_upstream(project, billing | {t.name for t in project.tables if t.domain == "jobs"})
        plan = [("billing", subset_specs(args.specs, work / "specs-billing", billing)),
                ("+ jobs domain", subset_specs(args.specs, work / "specs-jobs", jobs)),
                ("+ whole catalog", args.specs)]
        if args.billing_only:
            plan = plan[:1]
        for label, specs in plan:
            stage = run_stage(label, specs, source, output, project)
            stages.append(stage)
            if not stage.ok:
                failed = True
                break
            if label == "billing":  # the baseline right after the stage it is compared with
                from engine.runtime.layout import LocalLayout

                warehouse_db = LocalLayout(output).table_dir(project.settings.schema, "x").parent
                base = run_checked_baseline(source, work / "baseline", warehouse_db)
                if base.ok and not args.no_bronze_baseline:
                    like = run_checked_baseline(source, work / "baseline", warehouse_db, args.specs)
                if not base.ok or (like is not None and not like.ok):
                    failed = True
                    break
    finally:
        subprocess.run([sys.executable, "-m", "engine.cli", "stop", "--output", str(output)], cwd=ROOT,
                       capture_output=True, text=True)
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)
    loads.append(load_figures())
    if account is None:
        return 1  # the generator raised: its traceback says why
    report(account, stages, base, loads, time.perf_counter() - began, like)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
