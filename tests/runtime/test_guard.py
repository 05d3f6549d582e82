"""One run per output folder, stale locks taken over, unfinished runs redone (no Spark needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.runtime.guard import Pending, RunLock
from engine.runtime.layout import LocalLayout
from engine.runtime.refresh import RunState, plan_run, spec_fingerprint
from engine.runtime.run import run_local
from engine.spec import load_project

from .conftest import USAGE_DAY_1, write_table

SPECS = Path(__file__).parent / "specs"
HOLD_LOCK = """
import sys, time
from pathlib import Path
from engine.runtime.guard import RunLock
from engine.runtime.layout import LocalLayout
with RunLock(LocalLayout(Path(sys.argv[1]))):
    print("locked", flush=True)
    time.sleep(600)
"""


def _holder(output: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(output)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_run_on_the_same_output_gets_a_clear_error(tmp_path):
    source = tmp_path / "source"
    write_table(source, "system.billing.usage", USAGE_DAY_1)
    output = tmp_path / "out"
    holder = _holder(output)
    try:
        with pytest.raises(UserError) as caught:
            run_local(SPECS, source=source, output=output, echo=lambda _: None)
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert f"pid {holder.pid}" in message and "wait for it to finish" in message
    assert not (output / "warehouse").exists() and not (output / "server").exists()  # no Spark was touched


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    holder = _holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with RunLock(LocalLayout(tmp_path)):
        assert f"pid {os.getpid()}" in (tmp_path / "state" / "run.lock").read_text()
    assert time.monotonic() - started < 5


def test_a_pending_journal_knows_whether_its_run_died(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "p.json"
    Pending("r1", dead.pid, 1, ("daily_cost",), ("usage_raw",), flows_started=True).save(path)
    loaded = Pending.load(path)
    assert loaded == Pending("r1", dead.pid, 1, ("daily_cost",), ("usage_raw",), True) and loaded.orphaned
    assert not Pending("r1", os.getpid(), 1, None, flows_started=True).orphaned  # alive
    assert not Pending("r1", dead.pid, 1, None).orphaned  # killed before its flows started, or ended and said so
    (tmp_path / "bad.json").write_text("{")
    assert Pending.load(tmp_path / "bad.json") is None


FAKE_SERVER = """
import json, os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
info = Path(sys.argv[1]) / "server" / "server.json"
info.parent.mkdir(parents=True, exist_ok=True)
info.write_text(json.dumps({"pid": os.getpid(), "port": 1, "token": "t", "fingerprint": "f", "instance": "i"}))
print("up", flush=True)
time.sleep(600)
"""


def _fake_server(output: Path) -> subprocess.Popen:
    """Stands in for a warm server (same command-line marker, same server.json); no JVM."""
    process = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(output), "engine.runtime.server"],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout.readline().strip() == "up"
    return process


def test_flows_orphaned_by_a_killed_run_are_stopped_with_their_server(tmp_path):
    from engine.runtime.guard import stop_orphaned_flows

    layout = LocalLayout(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fake = _fake_server(tmp_path)
    try:
        said = []
        assert not stop_orphaned_flows(layout, Pending("r", dead.pid, fake.pid, None), said.append)  # flows never started
        assert not stop_orphaned_flows(layout, Pending("r", dead.pid, fake.pid + 1, None, flows_started=True), said.append)
        assert fake.poll() is None and not said
        assert stop_orphaned_flows(layout, Pending("r", dead.pid, fake.pid, None, flows_started=True), said.append)
        assert fake.wait(timeout=30) == 0 and "restarting the local Spark server" in said[0]
        assert not (tmp_path / "server" / "server.json").exists()
    finally:
        fake.kill()


def _state(project, sources):
    return RunState(sources=sources, specs={t.name: spec_fingerprint(t) for t in project.tables},
                    daily_built_on="2026-11-22", source_root="/data")


def test_an_unfinished_run_is_redone_whatever_else_changed():
    project = load_project(SPECS)
    state = _state(project, {"system.billing.usage": "a"})
    plan = plan_run(project, project.table_names, state, state, "2026-11-22", unfinished=(("prices",), ("usage_raw",)))
    assert set(plan.tables) == {"prices", "daily_cost", "usage_raw", "cost_by_job_name"}
    assert plan.reset == ("usage_raw",)
    everything = plan_run(project, project.table_names, state, state, "2026-11-22", unfinished=(None, ()))
    assert everything.tables is None


def test_select_takes_everything_downstream_and_full_refresh_resets_streams():
    project = load_project(SPECS)
    state = _state(project, {})
    selected = plan_run(project, project.table_names, state, state, "2026-11-22", select=["usage_raw"])
    assert set(selected.tables) == {"usage_raw", "daily_cost", "cost_by_job_name"}  # job_usage: a view in between
    full = plan_run(project, project.table_names, state, state, "2026-11-22", full_refresh=True)
    assert full.tables is None and set(full.reset) == {"usage_raw", "jobs_hist", "endpoint_raw"}


def test_another_source_folder_rebuilds_the_streaming_tables():
    project = load_project(SPECS)
    before = _state(project, {})
    after = RunState(before.sources, before.specs, before.daily_built_on, "/elsewhere")
    plan = plan_run(project, project.table_names, before, after, "2026-11-22")
    assert plan.tables is None and "usage_raw" in plan.reset and "source folder changed" in plan.reasons["*"]
