"""A local run killed at any moment, then run again, leaves every table exactly as a clean run would.

One output folder with its own warm server, driven through the CLI in subprocesses, as a user would:
1. day 1: the server's JVM dies alone (as when its code cache filled) while a partitioned
   materialized view is being written: the run fails at once naming the server's log, and the
   server process leaves; the repairing run (on a new server) is itself killed after dropping what
   it rebuilds, before its flows start; the next run repairs everything, on that same server (no
   flow of the killed run ran);
2. day 2: the states that kills at worse moments leave are planted - files committed to a
   partition the metastore never registered (the 254 duplicated rows of the newest day), and the
   files of a streaming batch never logged - and the next run must ignore or remove them;
3. the warm server is then reused by the next command and stopped by `tablesmith stop`.
After each repair every table's full sorted contents equal a clean run's on the same input (run on
the session's server under another schema). A run killed while its flows ran on a server that
survives is covered in test_guard.py (its server is restarted). Small on purpose: the tiny runtime
specs, with the daily cost view and the usage stream partitioned by day.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runtime import hadoop_fs, server
from engine.runtime.layout import LocalLayout
from engine.runtime.run import run_local

from .conftest import JOBS, PRICES, USAGE_DAY_1, USAGE_DAY_2, WORKSPACES, write_table

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("usage_raw", "jobs_hist", "jobs_hist_current", "prices", "sku_owners", "daily_cost", "cost_by_job_name", "workspaces")
KILL_TIMEOUT = 600.0
# This folder's server runs Hadoop's own local file system class: it starts a `chmod` process per
# file and folder, which keeps a tiny table's write job open long enough for the 5 ms poll below to
# catch it (ours commits such a write within a few milliseconds: the poll missed it).
HADOOP_FS = {hadoop_fs.CHOICE_ENV: "hadoop"}


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    specs = base / "specs"
    shutil.copytree(Path(__file__).parent / "specs", specs, ignore=shutil.ignore_patterns("serving", "alerts"))
    for table in ("daily_cost", "usage_raw"):
        spec = specs / "billing" / f"{table}.yaml"
        spec.write_text(spec.read_text() + "partition_by: [usage_date]\n")
    source = base / "source"
    write_table(source, "system.billing.usage", USAGE_DAY_1)
    write_table(source, "system.billing.list_prices", PRICES)
    write_table(source, "system.lakeflow.jobs", JOBS)
    write_table(source, "system.access.workspaces_latest", WORKSPACES)
    output = base / "out"
    yield {"base": base, "specs": specs, "source": source, "output": output}
    server.stop(LocalLayout(output))


def _start_run(crash, *extra: str) -> tuple[subprocess.Popen, Path]:
    log = crash["base"] / f"run-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "engine.cli", "run", "--specs", str(crash["specs"]), "--source", str(crash["source"]),
               "--output", str(crash["output"]), *extra]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **HADOOP_FS})
    return process, log


def _run(crash, *extra: str) -> str:
    process, log = _start_run(crash, *extra)
    assert process.wait(timeout=KILL_TIMEOUT) == 0, log.read_text()[-3000:]
    return log.read_text()


def _server_pid(crash) -> int:
    return json.loads((crash["output"] / "server" / "server.json").read_text())["pid"]


def _server_temp(crash) -> set[str]:
    """The instances whose JVM temporary folder (server/tmp/<instance>) exists."""
    folder = crash["output"] / "server" / "tmp"
    return {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()


def _server_instance(crash) -> str:
    return json.loads((crash["output"] / "server" / "server.json").read_text())["instance"]


def _kill_when(process: subprocess.Popen, log: Path, reached, what: str) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT
    while not reached():
        if process.poll() is not None:
            pytest.fail(f"the run ended before the kill point ({what}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"kill point not reached in time: {what}")
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _table_dir(crash, table: str) -> Path:
    return crash["output"] / "warehouse" / "rt.db" / table


def _writing(crash, table: str):
    """The table's write job is under way: its `_temporary` folder exists from the job's set-up to its
    commit (waiting for task output files as well missed the write now and then on a loaded machine)."""
    return lambda: (_table_dir(crash, table) / "_temporary").is_dir()


def _contents(spark, schema: str, table: str) -> list[str]:
    return sorted(repr(sorted(row.asDict(recursive=True).items())) for row in spark.read.table(f"`{schema}`.`{table}`").collect())


def _assert_equal_to_clean_run(crash, local_spark, clean: str) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(hadoop_fs.CHOICE_ENV, HADOOP_FS[hadoop_fs.CHOICE_ENV])  # the settings the folder's server has
        recovered = server.session(LocalLayout(crash["output"]), echo=lambda _: None)
    try:
        for table in TABLES:
            got, want = _contents(recovered, "rt", table), _contents(local_spark.spark, clean, table)
            assert want, f"the clean run left {table} empty"
            assert got == want, f"{table} after the crash and re-run differs from a clean run"
    finally:
        server.release(LocalLayout(crash["output"]))


def _clean_run(crash, local_spark, name: str) -> str:
    source = crash["base"] / f"source-{name}"
    shutil.copytree(crash["source"], source)
    run_local(crash["specs"], source=source, output=local_spark.root, pipeline_name=name,
              extra_conf={"tablesmith.schema": name}, echo=lambda _: None)
    return name


def _pending(crash) -> dict:
    try:
        return json.loads((crash["output"] / "state" / "pipeline-rt.pending.json").read_text())
    except (OSError, ValueError):
        return {}


def _jvm_of(server_pid: int) -> int:
    """The server's JVM, found in /proc (its child running java), not from the server's own record."""
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == server_pid and b"java" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                return int(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    pytest.fail(f"no JVM under the server process {server_pid}")


def test_a_server_dying_mid_write_fails_the_run_then_a_killed_repair_then_the_next_run_repairs(crash, local_spark):
    process, log = _start_run(crash)
    deadline, jvm = time.monotonic() + KILL_TIMEOUT, None
    while not (jvm and _writing(crash, "daily_cost")()):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"daily_cost was not being written:\n{log.read_text()[-3000:]}")
        if jvm is None and (crash["output"] / "server" / "server.json").exists():
            dead_server, dead_instance = _server_pid(crash), _server_instance(crash)
            jvm = _jvm_of(dead_server)
        time.sleep(0.005)
    os.kill(jvm, signal.SIGKILL)
    killed = time.monotonic()
    assert process.wait(timeout=120) == 2, log.read_text()[-3000:]  # a UserError: the client does not hang
    assert time.monotonic() - killed < 10
    out = log.read_text()
    assert f"the local Spark server died during the run: its JVM (pid {jvm}) ended" in out
    assert str(crash["output"] / "server" / "server.log") in out
    assert _pending(crash)["refresh"] is None  # the first run: every table

    repair, log = _start_run(crash)
    dropped = lambda: _pending(crash).get("pid") == repair.pid and not _table_dir(crash, "daily_cost").exists()  # noqa: E731
    _kill_when(repair, log, dropped, "daily_cost dropped by the repairing run")
    out = log.read_text()
    assert "the last run did not finish" in out and "starting the local Spark server" in out
    assert not server._alive(dead_server)  # the server process left once its JVM was gone
    # The killed JVM's temporary files (Spark's, Hive's) were in its own folder, removed by the next start.
    assert _server_temp(crash) == {_server_instance(crash)} != {dead_instance}
    flows_ran, warm = _pending(crash)["flows_started"], _server_pid(crash)

    out = _run(crash)
    assert "the last run did not finish" in out
    assert ("restarting the local Spark server" in out) == flows_ran  # usually not: the kill came before the flows
    assert _server_pid(crash) == warm or flows_ran
    assert not (crash["output"] / "state" / "pipeline-rt.pending.json").exists()
    _assert_equal_to_clean_run(crash, local_spark, _clean_run(crash, local_spark, "crash_day1"))


def test_crash_leftovers_are_ignored_or_removed_by_the_next_run(crash, local_spark):
    write_table(crash["source"], "system.billing.usage", USAGE_DAY_2, part="part-00001")
    # The engine refreshes a view with TRUNCATE + append: files a killed write had committed to
    # the new day's partition before registering it survive TRUNCATE, and the next write registers
    # the partition: the newest day counted twice. A stream's batch killed before its log entry
    # leaves files the table must never read.
    day_one = next(_table_dir(crash, "daily_cost").glob("usage_date=2026-10-01/*.parquet"))
    unregistered = _table_dir(crash, "daily_cost") / "usage_date=2026-10-02"
    unregistered.mkdir()
    shutil.copy(day_one, unregistered / "part-00000-crashed.c000.snappy.parquet")
    shutil.copy(next(_table_dir(crash, "usage_raw").glob("part-*.parquet")),
                _table_dir(crash, "usage_raw") / "part-00009-uncommitted-c000.snappy.parquet")

    out = _run(crash)
    assert "refreshing 3 of 9 tables" in out  # usage_raw, daily_cost, cost_by_job_name
    _assert_equal_to_clean_run(crash, local_spark, _clean_run(crash, local_spark, "crash_day2"))


def test_the_warm_server_is_reused_then_stopped(crash, local_spark):
    warm = _server_pid(crash)
    out = _run(crash, "--select", "prices")
    assert "starting the local Spark server" not in out and _server_pid(crash) == warm
    assert "refreshing 2 of 9 tables" in out  # prices and its reader daily_cost
    _assert_equal_to_clean_run(crash, local_spark, "crash_day2")
    # The JVM's temporary files (Spark's block manager, Hive's session folders) are the folder's own.
    assert _server_temp(crash) == {_server_instance(crash)}
    assert {entry.name.split("-")[0] for entry in (crash["output"] / "server" / "tmp" / _server_instance(crash)).iterdir()} \
        >= {"blockmgr", "artifacts"}

    stopped = subprocess.run([sys.executable, "-m", "engine.cli", "stop", "--output", str(crash["output"])],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0 and f"pid {warm}" in stopped.stdout
    assert not server._alive(warm) and not (crash["output"] / "server" / "server.json").exists()
    assert _server_temp(crash) == set()  # the stopped server removed its temporary files
    again = subprocess.run([sys.executable, "-m", "engine.cli", "stop", "--output", str(crash["output"])],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "no local Spark server running" in again.stdout
