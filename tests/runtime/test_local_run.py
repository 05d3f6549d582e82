"""Real pipelines on local Spark Declarative Pipelines: every pattern, re-runs, expectations, skips,
`--select`, changed specs, and counts taken from the run itself.

The tests in this module run in order against one pipeline (`rt`) and share its state.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import CheckFailed
from engine.runtime.local import LocalLayout, run_local
from engine.spec import SpecError
from engine.spec.manifest import read_manifest

from .conftest import USAGE_DAY_2, write_table

SPECS = Path(__file__).parent / "specs"


def _run(local_spark, source, **options):
    return run_local(SPECS, source=source, output=local_spark.root, pipeline_name="rt", echo=lambda _: None, **options)


def _rows(spark, table, order):
    return [r.asDict() for r in spark.read.table(f"rt.{table}").orderBy(*order).collect()]


def _checkpoint_files(local_spark, table) -> int:
    storage = LocalLayout(local_spark.root, "rt").storage
    return sum(1 for p in storage.rglob("*") if p.is_file() and table in p.as_posix() and "/offsets/" in p.as_posix())


def test_first_run_builds_every_pattern(local_spark, tiny_source, monkeypatch):
    import engine.runtime.entry
    import engine.spec

    loads = []
    real_load = engine.spec.load_project
    monkeypatch.setattr(engine.spec, "load_project", lambda specs: loads.append(specs) or real_load(specs))

    def no_second_read(path):
        raise AssertionError(f"the local run read its specs again from {path}")

    monkeypatch.setattr(engine.runtime.entry, "read_manifest", no_second_read)
    result = _run(local_spark, tiny_source)
    spark = local_spark.spark
    assert loads == [SPECS]  # the specs are loaded once per run; the notebook is handed that project

    # The same pipeline as a project of the upstream CLI, written by the run (in the background).
    layout = LocalLayout(local_spark.root, "rt")
    upstream = json.loads(layout.spec_file.read_text())
    assert upstream["storage"] == layout.storage.resolve().as_uri() and upstream["database"] == "rt"
    assert (layout.pipeline_dir / "transformations" / "tablesmith_pipeline.py").is_file()
    assert set(read_manifest(layout.pipeline_dir / "manifest.json").table_names) == set(real_load(SPECS).table_names)

    usage = _rows(spark, "usage_raw", ["record_id"])
    assert [r["record_id"] for r in usage] == ["r1", "r2", "r3", "r4", "r6", "r7"]  # the NULL id was dropped
    assert {(r["_account_identifier"], r["_workspace_identifier"]) for r in usage} == {("acct-test", "ws-test")}

    current = _rows(spark, "jobs_hist_current", ["job_id"])
    assert [(r["job_id"], r["name"]) for r in current] == [("j1", "new")]  # latest version; deleted j2 gone
    assert spark.read.table("rt.jobs_hist").count() == 3

    cost = {(r["workspace_id"], r["usage_date"].day): (r["total_dbus"], r["total_cost_usd"]) for r in _rows(spark, "daily_cost", ["workspace_id"])}
    # ws1: retraction nets the original out; 4 DBU at the old price 0.2 and 10 after the change at 0.3.
    assert cost[("ws1", 1)] == (Decimal("14"), Decimal("3.800000"))
    assert cost[("ws2", 1)] == (Decimal("4"), Decimal("2.000000"))

    by_job = _rows(spark, "cost_by_job_name", ["job_id"])
    assert [(r["job_id"], r["job_name"], r["total_dbus"]) for r in by_job] == [("j1", "new", Decimal("13"))]
    assert {r["workspace_id"] for r in _rows(spark, "workspaces", ["workspace_id"])} == {"ws1", "ws2"}
    assert not spark.catalog.tableExists("rt.job_usage")  # a temporary view is never published
    owners = _rows(spark, "sku_owners", ["sku_name"])
    assert [(r["sku_name"], r["owner"], r["weight"]) for r in owners] == [
        ("ALL_PURPOSE", "it's analytics", None), ("JOBS", "data-eng", Decimal("1.50"))]

    assert set(result.skipped) == {"endpoint_raw", "endpoint_tokens"}
    assert "system.serving.endpoint_usage" in result.skipped["endpoint_raw"]
    assert "endpoint_raw" in result.skipped["endpoint_tokens"]

    assert result.tables["usage_raw"].violations == {"has_record_id": 1, "known_record_type": 1}
    # Rows written, observed by the write itself: they match the stored tables.
    for name in ("usage_raw", "jobs_hist", "jobs_hist_current", "daily_cost", "cost_by_job_name", "workspaces", "prices"):
        assert result.tables[name].rows == spark.read.table(f"rt.{name}").count(), name
    metrics = {(r["table_name"], r["expectation"]): r["violations"]
               for r in spark.read.table("rt._quality_metrics").where(f"run_id = '{result.run_id}'").collect()}
    assert metrics == {("usage_raw", "has_record_id"): 1, ("usage_raw", "known_record_type"): 1,
                       # re-evaluated outside the pipeline: through a system table and a temporary view
                       ("workspaces", "named"): 0, ("cost_by_job_name", "not_negative"): 0}


def test_second_run_processes_only_new_files(local_spark, tiny_source):
    before = _checkpoint_files(local_spark, "usage_raw")
    write_table(tiny_source, "system.billing.usage", USAGE_DAY_2, part="part-00001")
    result = _run(local_spark, tiny_source)
    spark = local_spark.spark

    ids = [r["record_id"] for r in _rows(spark, "usage_raw", ["record_id"])]
    assert ids == ["r1", "r2", "r3", "r4", "r6", "r7", "r8"]  # new day appended, nothing duplicated
    assert result.tables["usage_raw"].rows == 1  # the streaming table reports what this run appended
    assert set(result.refreshed) == {"usage_raw", "daily_cost", "cost_by_job_name"}
    assert _checkpoint_files(local_spark, "usage_raw") > before
    cost = {(r["workspace_id"], r["usage_date"].day): r["total_cost_usd"] for r in _rows(spark, "daily_cost", ["workspace_id"])}
    assert cost[("ws1", 2)] == Decimal("1.500000")


def test_run_without_new_data_changes_nothing(local_spark, tiny_source, monkeypatch):
    import engine.spec

    monkeypatch.setattr(engine.spec, "load_project", lambda specs: pytest.fail("specs loaded although no file changed"))
    said = []
    result = run_local(SPECS, source=tiny_source, output=local_spark.root, pipeline_name="rt", echo=said.append)
    assert result.refreshed == () and said == ["nothing changed since the last run (no new source files, no spec changes): nothing to refresh"]
    assert local_spark.spark.read.table("rt.usage_raw").count() == 7
    (tiny_source / "billing" / "usage" / "part-00001.parquet").touch()  # a source file changed: the specs are read again
    monkeypatch.undo()
    again = _run(local_spark, tiny_source)
    assert "usage_raw" in again.refreshed and again.tables["usage_raw"].rows == 0  # the stream found no new file


def test_full_refresh_rebuilds_from_scratch(local_spark, tiny_source):
    _run(local_spark, tiny_source, full_refresh=True)
    spark = local_spark.spark
    assert spark.read.table("rt.usage_raw").count() == 7
    assert spark.read.table("rt.usage_raw").select("record_id").distinct().count() == 7
    assert spark.read.table("rt.daily_cost").count() == 3


def test_select_refreshes_the_table_and_its_downstream(local_spark, tiny_source):
    result = _run(local_spark, tiny_source, select=["prices"])
    assert result.refreshed == ("daily_cost", "prices")
    assert {n for n, t in result.tables.items() if t.state == "UNCHANGED"} == set(result.tables) - {"daily_cost", "prices"}
    assert local_spark.spark.read.table("rt.daily_cost").count() == 3


def test_a_changed_spec_refreshes_only_its_table_and_downstream(local_spark, tiny_source, tmp_path):
    """A view's changed spec rebuilds it and its readers; a streaming table's rebuilds it from all input."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    daily = specs / "billing" / "daily_cost.yaml"
    daily.write_text(daily.read_text() + "expectations:\n  - {name: bounded, expr: 'total_dbus < 1000', on_violation: warn}\n")
    usage = specs / "billing" / "usage_raw.yaml"  # its expectations list ends the file
    usage.write_text(usage.read_text() + "  - {name: bounded, expr: 'usage_quantity < 1000', on_violation: warn}\n")
    result = run_local(specs, source=tiny_source, output=local_spark.root, pipeline_name="rt", echo=lambda _: None)
    assert set(result.refreshed) == {"usage_raw", "daily_cost", "cost_by_job_name"}  # not prices, jobs, workspaces
    assert result.tables["usage_raw"].rows == 7  # reset: every input row read again, none duplicated
    assert local_spark.spark.read.table("rt.usage_raw").select("record_id").distinct().count() == 7
    assert result.tables["daily_cost"].violations == {"bounded": 0}
    back = _run(local_spark, tiny_source)  # the original specs again: the same tables change back
    assert set(back.refreshed) == {"usage_raw", "daily_cost", "cost_by_job_name"}


def test_bad_reference_is_reported_before_any_spark_work(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    spec = specs / "billing" / "daily_cost.yaml"
    spec.write_text(spec.read_text().replace("${prices}", "${price}"))
    output = tmp_path / "out"
    with pytest.raises(SpecError) as caught:
        run_local(specs, source=tmp_path, output=output, echo=lambda _: None)
    assert [d.code for d in caught.value.diagnostics] == ["UNKNOWN_REFERENCE"]
    assert "did you mean 'prices'" in caught.value.diagnostics[0].message
    assert not output.exists()  # nothing was written and no JVM was needed


def test_alerts_fire_by_tier_and_stay_silent_when_healthy(local_spark, tiny_source, monkeypatch, capsys):
    """After the runs above (daily_cost: ws1 14 DBU on day 1, ws2 4, ws1 5 on day 2)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from engine.cli import main

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TS_TEST_HOOK", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        code = main(["alerts", "check", "--specs", str(SPECS), "--output", str(local_spark.root)])
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "negative_cost" in out and "P2 negative_cost" in out and "ok" in out

    assert len(received) == 2  # one P1 message, one P3 digest; the healthy P2 alert sent nothing
    p1 = next(m for m in received if "alerts" in m)
    assert p1["digest"] is False and [a["alert"] for a in p1["alerts"]] == ["big_cost_day"]
    assert p1["alerts"][0]["messages"] == ["ws1 used 14.000000000000000000 DBU on 2026-10-01"]
    assert p1["alerts"][0]["expected_latency_minutes"] == 240
    digest = next(m for m in received if "text" in m)
    assert digest["text"].startswith("*[P3 digest] 3 row(s) across 1 alert(s)*")


def test_fail_expectation_stops_the_run_naming_table_and_rule(local_spark, tiny_source, tmp_path):
    """Last in the module: it leaves rt.daily_cost unfinished (the next run would rebuild it)."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    spec = specs / "billing" / "daily_cost.yaml"
    spec.write_text(spec.read_text() + "expectations:\n  - {name: small_days, expr: total_dbus < 10, on_violation: fail}\n")
    with pytest.raises(CheckFailed) as caught:
        run_local(specs, source=tiny_source, output=local_spark.root, pipeline_name="rt", select=["daily_cost"],
                  echo=lambda _: None)
    assert "daily_cost" in str(caught.value) and "small_days" in str(caught.value)
    pending = LocalLayout(local_spark.root, "rt").pending_file("rt")
    assert '"daily_cost"' in pending.read_text()  # the next run rebuilds it
