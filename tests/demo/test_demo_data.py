"""The demo data: schemas match the source registry, cross-table keys join, planted cases exist.

One generated dataset and one local SparkSession are shared by the module; Spark reads the files
the way the engine will (plain `spark.read.parquet` of `<root>/<schema>/<table>`).
"""

from __future__ import annotations

import filecmp
import statistics
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.demo import append_day, facts, generate
from engine.demo.generator import APPEND_TABLES
from engine.errors import UserError
from engine.sources.system_tables import SYSTEM_TABLES, closest_table, local_path, spark_schema

pyspark = pytest.importorskip("pyspark")
from pyspark.sql.types import StructType  # noqa: E402

SMALL = dict(workspaces=2, days=14, jobs=12)  # for the tests that generate extra copies


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("demo") / "system"
    return root, generate(root)


@pytest.fixture(scope="module")
def demo_root(demo) -> Path:
    return demo[0]


@pytest.fixture(scope="module")
def demo_facts():
    return facts()


@pytest.fixture(scope="module")
def spark_session(local_spark):
    """The test session's one local Spark (root conftest): a process holds one JVM."""
    return local_spark.spark


@pytest.fixture(scope="module")
def frames(spark_session, demo_root):
    """Every demo table read once with Spark and registered as a view `<schema>_<table>`."""
    result = {}
    for name in SYSTEM_TABLES:
        schema, table = name.split(".")[1:]
        result[name] = spark_session.read.parquet(str(local_path(demo_root, name)))
        result[name].createOrReplaceTempView(f"{schema}_{table}")
    return result


@pytest.fixture(scope="module")
def spark(spark_session, frames):
    """The session, with the demo tables registered as views."""
    return spark_session


def sql_one(spark, query: str):
    return spark.sql(query).collect()[0][0]


# --- registry ------------------------------------------------------------------------------------

def test_registry_ddl_agrees_with_sparks_own_parser(spark_session):
    for name, table in SYSTEM_TABLES.items():
        assert StructType.fromDDL(table.ddl).simpleString() == spark_schema(name).simpleString(), name


def test_registry_helpers():
    assert len(SYSTEM_TABLES) == 19
    assert local_path(Path("/r"), "system.billing.usage") == Path("/r/billing/usage")
    assert closest_table("system.billing.usgae") == "system.billing.usage"
    assert SYSTEM_TABLES["system.serving.served_entities"].delete_column == "endpoint_delete_time"
    assert not SYSTEM_TABLES["system.query.history"].streamable


def test_every_table_reads_back_with_the_registry_schema(frames, demo):
    _, counts = demo
    for name, frame in frames.items():
        expected = spark_schema(name)
        assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
            (f.name, f.dataType.simpleString()) for f in expected.fields
        ], name
        assert counts[name] > 0, name


# --- billing --------------------------------------------------------------------------------------

def test_usage_volume_and_hour_alignment(spark):
    assert 18_000 <= sql_one(spark, "SELECT count(*) FROM billing_usage") <= 60_000
    misaligned = sql_one(spark, """
        SELECT count(*) FROM billing_usage
        WHERE date_trunc('HOUR', usage_start_time) != usage_start_time
           OR usage_end_time != usage_start_time + INTERVAL 1 HOUR
           OR usage_date != to_date(usage_start_time)""")
    assert misaligned == 0
    assert sql_one(spark, "SELECT count(*) - count(DISTINCT record_id) FROM billing_usage") == 0


def _correction_group_total(spark, original_record_id: str) -> Decimal:
    """Net quantity of everything billed for the original row's resource and hour, whatever the SKU."""
    return sql_one(spark, f"""
        SELECT sum(u.usage_quantity) FROM billing_usage u
        JOIN (SELECT * FROM billing_usage WHERE record_id = '{original_record_id}') o
          ON u.workspace_id = o.workspace_id AND u.usage_start_time = o.usage_start_time
         AND u.usage_metadata <=> o.usage_metadata AND u.identity_metadata <=> o.identity_metadata""")


def test_corrections_net_to_the_restatement(spark, demo_facts):
    kinds = {c.kind for c in demo_facts.corrections}
    assert kinds == {"restated_same_sku", "restated_other_sku", "retraction_only"}
    for correction in demo_facts.corrections:
        rows = {r.record_type: r for r in spark.sql(f"""
            SELECT record_type, sku_name, usage_quantity, ingestion_date FROM billing_usage
            WHERE record_id IN ('{correction.original_record_id}', '{correction.retraction_record_id}',
                                '{correction.restatement_record_id}')""").collect()}
        assert rows["RETRACTION"].usage_quantity == -rows["ORIGINAL"].usage_quantity
        assert rows["RETRACTION"].ingestion_date > rows["ORIGINAL"].ingestion_date
        expected = Decimal(str(correction.restated_quantity or 0))
        assert _correction_group_total(spark, correction.original_record_id) == expected
        if correction.kind == "retraction_only":
            assert "RESTATEMENT" not in rows and expected == 0
        else:
            assert rows["RESTATEMENT"].usage_quantity == expected
    other = demo_facts.correction("restated_other_sku")
    assert other.restated_sku != other.original_sku


def test_retraction_copies_every_field_but_quantity_and_ids(spark, demo_facts):
    columns = [f.name for f in spark_schema("system.billing.usage").fields
               if f.name not in ("record_id", "usage_quantity", "record_type", "ingestion_date")]
    for correction in demo_facts.corrections:
        pair = spark.sql(f"""SELECT {', '.join(columns)} FROM billing_usage WHERE record_id IN
            ('{correction.original_record_id}', '{correction.retraction_record_id}')""").collect()
        assert len(pair) == 2 and pair[0] == pair[1]


def test_every_usage_row_matches_exactly_one_list_price(spark):
    unmatched = sql_one(spark, """
        SELECT count(*) FROM (
          SELECT u.record_id, count(p.sku_name) AS prices FROM billing_usage u
          LEFT JOIN billing_list_prices p
            ON u.sku_name = p.sku_name AND u.cloud = p.cloud AND u.usage_unit = p.usage_unit
           AND p.currency_code = 'USD' AND p.price_start_time <= u.usage_start_time
           AND u.usage_start_time < coalesce(p.price_end_time, TIMESTAMP '9999-12-31 00:00:00')
           AND u.usage_end_time <= coalesce(p.price_end_time, TIMESTAMP '9999-12-31 00:00:00')
          GROUP BY u.record_id) WHERE prices != 1""")
    assert unmatched == 0


def test_price_change_and_promotion(spark, demo_facts):
    history = spark.sql(f"""SELECT unix_seconds(price_start_time) AS starts, unix_seconds(price_end_time) AS ends,
        pricing.default AS price FROM billing_list_prices
        WHERE sku_name = '{demo_facts.price_change_sku}' ORDER BY price_start_time""").collect()
    assert len(history) == 2
    assert history[0].ends == history[1].starts == demo_facts.price_change_time.timestamp()
    assert history[1].ends is None
    assert [float(r.price) for r in history] == [demo_facts.old_price, demo_facts.new_price]
    promoted = spark.sql("""SELECT sku_name FROM billing_list_prices
        WHERE pricing.effective_list.default != pricing.default AND pricing.promotional.default IS NOT NULL""").collect()
    assert [r.sku_name for r in promoted] == [demo_facts.promotional_sku]


def test_cost_spike_is_about_five_times_normal(spark, demo_facts):
    daily = spark.sql(f"""
        SELECT u.usage_date, sum(u.usage_quantity * p.pricing.effective_list.default) AS cost
        FROM billing_usage u JOIN billing_list_prices p
          ON u.sku_name = p.sku_name AND u.usage_unit = p.usage_unit AND p.price_start_time <= u.usage_start_time
         AND u.usage_start_time < coalesce(p.price_end_time, TIMESTAMP '9999-12-31 00:00:00')
        WHERE u.workspace_id = '{demo_facts.spike_workspace_id}' AND dayofweek(u.usage_date) BETWEEN 2 AND 6
        GROUP BY u.usage_date ORDER BY cost""").collect()
    costs = {r.usage_date: float(r.cost) for r in daily}
    spike = costs.pop(demo_facts.spike_date)
    median = sorted(costs.values())[len(costs) // 2]
    assert 3.5 <= spike / median <= 7.5
    assert max(costs.values()) < spike / 2


def test_job_name_null_era(spark, demo_facts):
    cutoff = demo_facts.job_name_populated_from.isoformat()
    before, after = spark.sql(f"""SELECT
        count_if(usage_date < DATE '{cutoff}' AND usage_metadata.job_name IS NOT NULL),
        count_if(usage_date >= DATE '{cutoff}' AND usage_metadata.job_name IS NULL)
        FROM billing_usage WHERE sku_name LIKE '%JOBS_COMPUTE%' AND usage_metadata.job_id IS NOT NULL""").collect()[0]
    assert before == 0 and after == 0


# --- lakeflow -------------------------------------------------------------------------------------

def test_long_run_is_sliced_at_clock_hours(spark, demo_facts):
    job = demo_facts.long_running_job
    run_id = sql_one(spark, f"""SELECT run_id FROM lakeflow_job_run_timeline WHERE job_id = '{job.job_id}'
        GROUP BY run_id HAVING count(*) >= 3 ORDER BY run_id LIMIT 1""")
    rows = spark.sql(f"""SELECT unix_seconds(period_start_time) AS s, unix_seconds(period_end_time) AS e,
        result_state, termination_code
        FROM lakeflow_job_run_timeline WHERE run_id = '{run_id}' ORDER BY s""").collect()
    assert len(rows) >= 3
    for current, following in zip(rows, rows[1:]):
        assert current.e == following.s
        assert current.e % 3600 == 0  # cut at UTC clock hours
        assert current.result_state is None and current.termination_code is None
    assert rows[-1].result_state is not None and rows[-1].termination_code is not None


def test_only_last_slices_are_terminal_everywhere(spark, demo_facts):
    bad = spark.sql("""
        SELECT run_id FROM (
          SELECT *, lead(period_start_time) OVER (PARTITION BY workspace_id, run_id ORDER BY period_start_time) AS nxt
          FROM lakeflow_job_run_timeline)
        WHERE result_state IS NULL AND (nxt IS NULL OR nxt != period_end_time
              OR date_trunc('HOUR', period_end_time) != period_end_time)""").collect()
    # The one exception is planted: a run still in progress when the data ends (no terminal row yet).
    assert [r.run_id for r in bad] == [demo_facts.sla_risk_run_id]
    assert sql_one(spark, """SELECT count(*) FROM lakeflow_job_run_timeline
        WHERE to_date(period_start_time) != to_date(period_end_time)""") == 0  # runs end before midnight
    states = {r[0] for r in spark.sql("SELECT DISTINCT result_state FROM lakeflow_job_run_timeline").collect()}
    assert states - {None} <= {"SUCCEEDED", "FAILED", "ERROR", "TIMED_OUT", "CANCELLED", "SKIPPED", "BLOCKED"}
    assert {"SUCCEEDED", "FAILED"} <= states


def test_repaired_run_and_failure_streak(spark, demo_facts):
    terminal = spark.sql(f"""SELECT result_state FROM lakeflow_job_run_timeline
        WHERE run_id = '{demo_facts.repaired_run_id}' AND result_state IS NOT NULL ORDER BY period_end_time""").collect()
    assert [r.result_state for r in terminal] == ["FAILED", "SUCCEEDED"]
    assert sql_one(spark, """SELECT count(*) FROM (SELECT run_id FROM lakeflow_job_run_timeline
        WHERE result_state IS NOT NULL GROUP BY workspace_id, run_id HAVING count(*) > 1)""") >= 1

    job = demo_facts.failing_job
    finals = spark.sql(f"""SELECT run_id, max_by(result_state, period_end_time) AS state, max(period_end_time) AS ended
        FROM lakeflow_job_run_timeline WHERE workspace_id = '{job.workspace_id}' AND job_id = '{job.job_id}'
         AND result_state IS NOT NULL GROUP BY run_id ORDER BY ended DESC""").collect()
    streak = 0
    for row in finals:
        if row.state != "FAILED":
            break
        streak += 1
    assert streak == demo_facts.failing_streak_length >= 3
    assert {r.run_id for r in finals[:streak]} == set(demo_facts.failing_streak_run_ids)


def _final_runs(spark):
    """Every run with its final state (latest terminal row), start, end and job, oldest first per job."""
    return spark.sql("""
        SELECT workspace_id, job_id, run_id, min(period_start_time) AS started,
               unix_seconds(min(period_start_time)) AS start_epoch, unix_seconds(max(period_end_time)) AS end_epoch,
               unix_seconds(max(period_end_time)) - unix_seconds(min(period_start_time)) AS seconds,
               max_by(result_state, CASE WHEN result_state IS NOT NULL THEN period_end_time END) AS state
        FROM lakeflow_job_run_timeline GROUP BY workspace_id, job_id, run_id
        ORDER BY workspace_id, job_id, started, run_id""").collect()


def _trailing_failures(runs) -> int:
    streak = 0
    for run in reversed(runs):
        if run.state not in ("FAILED", "ERROR", "TIMED_OUT"):
            break
        streak += 1
    return streak


def test_planted_failures_are_the_only_current_ones(spark, demo_facts):
    by_job: dict[tuple[str, str], list] = {}
    for run in _final_runs(spark):
        by_job.setdefault((run.workspace_id, run.job_id), []).append(run)
    streaks = {key: _trailing_failures(runs) for key, runs in by_job.items()}
    planted = {
        (demo_facts.failing_job.workspace_id, demo_facts.failing_job.job_id): (3, demo_facts.failing_streak_run_ids),
        (demo_facts.first_failure_job.workspace_id, demo_facts.first_failure_job.job_id): (1, (demo_facts.first_failure_run_id,)),
        (demo_facts.digest_failure_job.workspace_id, demo_facts.digest_failure_job.job_id): (1, (demo_facts.digest_failure_run_id,)),
    }
    assert {key: n for key, n in streaks.items() if n} == {key: n for key, (n, _) in planted.items()}
    for key, (n, run_ids) in planted.items():
        runs = by_job[key]
        assert tuple(r.run_id for r in runs[-n:]) == run_ids
        assert runs[-n - 1].state == "SUCCEEDED"  # earlier runs succeeded
    last_day = demo_facts.last_day.isoformat()
    others = sql_one(spark, f"""SELECT count(*) FROM lakeflow_job_run_timeline WHERE result_state != 'SUCCEEDED'
        AND to_date(period_start_time) = DATE '{last_day}'
        AND job_id NOT IN ('{"', '".join(job for _, job in planted)}')""")
    assert others == 0  # every other job succeeds on the window's last day
    assert (demo_facts.failing_job.tier, demo_facts.first_failure_job.tier, demo_facts.digest_failure_job.tier) == ("P2", "P1", "P3")


def test_only_the_slowdown_job_has_a_latest_run_twice_its_median(spark, demo_facts):
    by_job: dict[tuple[str, str], list] = {}
    for run in _final_runs(spark):
        by_job.setdefault((run.workspace_id, run.job_id), []).append(run)
    slow = set()
    for key, runs in by_job.items():
        finished = [r for r in runs if r.state is not None]
        successes = sorted(r.seconds for r in finished if r.state == "SUCCEEDED")
        if successes and finished[-1].seconds >= 2 * statistics.median(successes):
            slow.add(key)
    job = demo_facts.slowdown_job
    assert slow == {(job.workspace_id, job.job_id)} and job.tier == "P2"
    runs = by_job[(job.workspace_id, job.job_id)]
    assert tuple(r.run_id for r in runs[-2:]) == demo_facts.slow_run_ids
    usual = statistics.median(r.seconds for r in runs[:-2])
    assert all(r.seconds >= 2 * usual for r in runs[-2:])
    assert all(r.seconds < 2 * usual and r.state == "SUCCEEDED" for r in runs[:-2])  # normal otherwise


def test_sla_job_declares_its_sla_in_tags_and_misses_it_on_known_runs(spark, demo_facts):
    job = demo_facts.sla_job
    tags = spark.sql(f"""SELECT max_by(tags, change_time) AS tags FROM lakeflow_jobs
        WHERE workspace_id = '{job.workspace_id}' AND job_id = '{job.job_id}'""").collect()[0].tags
    assert tags["sla_max_duration_minutes"] == str(demo_facts.sla_max_duration_minutes) == "45"
    assert tags["sla_deadline_utc"] == demo_facts.sla_deadline_utc and tags["tier"] == job.tier == "P3"
    hours, minutes = map(int, demo_facts.sla_deadline_utc.split(":"))
    runs = [r for r in _final_runs(spark) if r.workspace_id == job.workspace_id and r.job_id == job.job_id]
    too_long = {r.run_id for r in runs if r.seconds > demo_facts.sla_max_duration_minutes * 60}
    deadline = hours * 3600 + minutes * 60  # seconds after midnight UTC of the day the run started
    too_late = {r.run_id for r in runs if r.end_epoch > r.start_epoch - r.start_epoch % 86400 + deadline}
    assert too_long == set(demo_facts.sla_duration_breach_run_ids) and len(too_long) == 1
    assert too_late == set(demo_facts.sla_deadline_breach_run_ids) and len(too_late) == 2
    assert runs[-1].run_id in too_late - too_long  # the last run started late, with a normal duration
    assert all(r.state == "SUCCEEDED" for r in runs)
    ordinary = [r.seconds for r in runs if r.run_id not in too_long]
    assert max(ordinary) < 2 * statistics.median(r.seconds for r in runs)  # an SLA miss, not a 2x slowdown


def test_job_tiers_are_p1_p2_p3_and_some_jobs_are_untagged(spark, demo_facts):
    latest = spark.sql("""SELECT workspace_id, job_id, max_by(tags, change_time) AS tags FROM lakeflow_jobs
        GROUP BY workspace_id, job_id""").collect()
    tiers = {(r.workspace_id, r.job_id): r.tags.get("tier") for r in latest}
    assert set(tiers.values()) - {None} == {"P1", "P2", "P3"}
    assert any(not r.tags for r in latest) and sum(1 for r in latest if r.tags.get("team")) > len(latest) / 2
    for ref in (demo_facts.failing_job, demo_facts.first_failure_job, demo_facts.digest_failure_job,
                demo_facts.slowdown_job, demo_facts.sla_job, demo_facts.long_running_job):
        assert tiers[(ref.workspace_id, ref.job_id)] == ref.tier is not None
    billed = {r[0] for r in spark.sql("""SELECT DISTINCT custom_tags['tier'] FROM billing_usage
        WHERE usage_metadata.job_id IS NOT NULL""").collect()}
    assert billed - {None} == {"P1", "P2", "P3"}  # job tags reach the usage rows


def test_task_runs_belong_to_job_runs(spark):
    orphans = sql_one(spark, """SELECT count(*) FROM lakeflow_job_task_run_timeline t
        LEFT ANTI JOIN lakeflow_job_run_timeline r ON t.workspace_id = r.workspace_id AND t.job_run_id = r.run_id""")
    assert orphans == 0


def test_scd2_histories_and_null_era(spark, demo_facts):
    assert sql_one(spark, """SELECT count(*) FROM (SELECT job_id FROM lakeflow_jobs
        GROUP BY workspace_id, job_id HAVING count(*) > 1)""") >= 3
    deleted = {r.job_id for r in spark.sql("SELECT job_id FROM lakeflow_jobs WHERE delete_time IS NOT NULL").collect()}
    assert deleted == set(demo_facts.deleted_job_ids) and deleted
    assert sql_one(spark, "SELECT count(*) FROM lakeflow_jobs WHERE cardinality(tags) = 0") >= 1
    null_era = spark.sql("""SELECT count_if(trigger_type IS NOT NULL), count(*) FROM lakeflow_jobs
        WHERE change_time < TIMESTAMP '2025-12-05 00:00:00'""").collect()[0]
    assert null_era[0] == 0 and null_era[1] > 0
    for table, key in (("compute_clusters", "cluster_id"), ("compute_warehouses", "warehouse_id"),
                       ("serving_served_entities", "served_entity_id")):
        assert sql_one(spark, f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table} GROUP BY {key})") > 1, table


# --- compute and usage attribution ---------------------------------------------------------------

def test_all_purpose_usage_has_no_job_id(spark, demo_facts):
    ids = ", ".join(f"'{c}'" for c in demo_facts.all_purpose_cluster_ids)
    with_job, total = spark.sql(f"""SELECT count_if(usage_metadata.job_id IS NOT NULL), count(*) FROM billing_usage
        WHERE usage_metadata.cluster_id IN ({ids})""").collect()[0]
    assert with_job == 0 and total > 0
    job = demo_facts.all_purpose_job
    # Hours in which the job ran on its all-purpose cluster are billed to the cluster, without job_id.
    overlapping = sql_one(spark, f"""
        SELECT count(*) FROM billing_usage u JOIN lakeflow_job_task_run_timeline t
          ON u.workspace_id = t.workspace_id AND array_contains(t.compute_ids, u.usage_metadata.cluster_id)
         AND u.usage_start_time = date_trunc('HOUR', t.period_start_time)
        WHERE t.job_id = '{job.job_id}' AND u.usage_metadata.job_id IS NULL""")
    assert overlapping > 0


def test_serverless_jobs_bill_several_rows_per_hour(spark, demo_facts):
    most = sql_one(spark, f"""SELECT max(n) FROM (SELECT count(*) AS n FROM billing_usage
        WHERE usage_metadata.job_id = '{demo_facts.serverless_job.job_id}'
        GROUP BY usage_metadata.job_run_id, usage_start_time)""")
    assert most > 1
    unattributed = sql_one(spark, """SELECT count(*) FROM billing_usage WHERE product_features.is_serverless
        AND billing_origin_product = 'JOBS' AND usage_metadata.job_id IS NULL AND identity_metadata.run_as IS NULL""")
    assert unattributed > 0


def test_job_usage_falls_inside_its_run_slices(spark):
    outside = sql_one(spark, """
        SELECT count(*) FROM billing_usage u
        LEFT ANTI JOIN lakeflow_job_run_timeline t
          ON u.workspace_id = t.workspace_id AND u.usage_metadata.job_run_id = t.run_id
         AND u.usage_start_time >= date_trunc('HOUR', t.period_start_time)
         AND u.usage_start_time < date_trunc('HOUR', t.period_end_time) + INTERVAL 1 HOUR
        WHERE u.usage_metadata.job_run_id IS NOT NULL AND u.workspace_id IN (SELECT workspace_id FROM lakeflow_jobs)""")
    assert outside == 0


def test_keys_join_across_tables(spark, demo_facts):
    remote = demo_facts.remote_workspace_id
    missing_jobs = sql_one(spark, f"""SELECT count(*) FROM billing_usage u LEFT ANTI JOIN lakeflow_jobs j
        ON u.workspace_id = j.workspace_id AND u.usage_metadata.job_id = j.job_id
        WHERE u.usage_metadata.job_id IS NOT NULL AND u.workspace_id != '{remote}'""")
    assert missing_jobs == 0
    assert sql_one(spark, f"""SELECT count(*) FROM billing_usage
        WHERE workspace_id = '{remote}' AND usage_metadata.job_id IS NOT NULL""") > 0
    for table in ("lakeflow_jobs", "lakeflow_job_run_timeline", "compute_clusters", "compute_node_timeline", "query_history"):
        assert sql_one(spark, f"SELECT count(*) FROM {table} WHERE workspace_id = '{remote}'") == 0, table
    assert sql_one(spark, """SELECT count(*) FROM billing_usage u LEFT ANTI JOIN access_workspaces_latest w
        ON u.workspace_id = w.workspace_id""") == 0
    assert sql_one(spark, """SELECT count(*) FROM billing_usage u LEFT ANTI JOIN compute_clusters c
        ON u.workspace_id = c.workspace_id AND u.usage_metadata.cluster_id = c.cluster_id
        WHERE u.usage_metadata.cluster_id IS NOT NULL AND u.workspace_id IN (SELECT workspace_id FROM lakeflow_jobs)""") == 0
    assert sql_one(spark, """SELECT count(*) FROM query_history q LEFT ANTI JOIN compute_warehouses w
        ON q.compute.warehouse_id = w.warehouse_id""") == 0
    assert sql_one(spark, """SELECT count(*) FROM serving_endpoint_usage e LEFT ANTI JOIN serving_served_entities s
        ON e.served_entity_id = s.served_entity_id""") == 0
    assert sql_one(spark, """SELECT count(*) FROM billing_usage u LEFT ANTI JOIN serving_served_entities s
        ON u.usage_metadata.endpoint_id = s.endpoint_id
        WHERE u.billing_origin_product = 'MODEL_SERVING'""") == 0


def test_node_timeline_utilisation(spark, demo_facts):
    cpu = {r.cluster_id: r.cpu for r in spark.sql("""SELECT cluster_id, avg(cpu_user_percent + cpu_system_percent) AS cpu
        FROM compute_node_timeline GROUP BY cluster_id""").collect()}
    assert 5 <= cpu.pop(demo_facts.over_provisioned_cluster_id) <= 10
    assert cpu and all(35 <= value <= 85 for value in cpu.values())
    memory = {r.cluster_id: r.mem for r in spark.sql("""SELECT cluster_id, avg(mem_used_percent) AS mem
        FROM compute_node_timeline GROUP BY cluster_id""").collect()}
    assert 15 <= memory.pop(demo_facts.over_provisioned_cluster_id) <= 35  # mostly idle memory too
    assert all(50 <= value <= 75 for value in memory.values())
    assert sql_one(spark, "SELECT count(DISTINCT instance_id) > count(DISTINCT cluster_id) FROM compute_node_timeline")


# --- access, serving, mlflow -----------------------------------------------------------------------

def test_audit_levels_and_denials(spark, demo_facts):
    levels = spark.sql("""SELECT audit_level, count_if(workspace_id = '0') AS zero, count(*) AS n
        FROM access_audit GROUP BY audit_level""").collect()
    by_level = {r.audit_level: r for r in levels}
    assert by_level["ACCOUNT_LEVEL"].zero == by_level["ACCOUNT_LEVEL"].n > 0
    assert by_level["WORKSPACE_LEVEL"].zero == 0
    denied = sql_one(spark, f"""SELECT count(*) FROM access_audit WHERE response.status_code = 403
        AND user_identity.email = '{demo_facts.denied_user_email}'
        AND request_params['full_name_arg'] = '{demo_facts.restricted_table}'""")
    assert denied > 0
    services = {r[0] for r in spark.sql("SELECT DISTINCT service_name FROM access_audit").collect()}
    assert {"unityCatalog", "jobs", "notebook", "clusters", "accounts"} <= services


def test_serving_and_mlflow_shapes(spark):
    types = {r[0] for r in spark.sql("SELECT DISTINCT entity_type FROM serving_served_entities").collect()}
    assert {"CUSTOM_MODEL", "FOUNDATION_MODEL", "EXTERNAL_MODEL"} <= types
    statuses = {r[0] for r in spark.sql("SELECT DISTINCT status FROM mlflow_runs_latest").collect()}
    assert {"FINISHED", "FAILED", "KILLED", "RUNNING"} <= statuses
    assert sql_one(spark, """SELECT count(*) FROM mlflow_run_metrics_history m LEFT ANTI JOIN mlflow_runs_latest r
        ON m.run_id = r.run_id""") == 0


# --- determinism and appends ------------------------------------------------------------------------

def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.parquet"))


def test_same_arguments_give_byte_identical_files(demo_root, tmp_path):
    again = tmp_path / "again"
    generate(again)
    assert _files(again) == _files(demo_root)
    _, mismatch, errors = filecmp.cmpfiles(demo_root, again, [str(p) for p in _files(demo_root)], shallow=False)
    assert not mismatch and not errors
    other = tmp_path / "other-seed"
    generate(other, seed=8, **SMALL)
    small = tmp_path / "small"
    generate(small, **SMALL)
    _, mismatch, _ = filecmp.cmpfiles(small, other, [str(p) for p in _files(small)], shallow=False)
    assert len(mismatch) >= 15


def test_days_simulated_in_worker_processes_give_the_same_files(demo_root, tmp_path):
    parallel = tmp_path / "parallel"
    generate(parallel, processes=2)
    assert _files(parallel) == _files(demo_root)
    _, mismatch, errors = filecmp.cmpfiles(demo_root, parallel, [str(p) for p in _files(demo_root)], shallow=False)
    assert not mismatch and not errors


def test_append_day_adds_one_file_per_event_table(tmp_path):
    root = tmp_path / "system"
    generate(root, **SMALL)
    before = {p: (root / p).read_bytes() for p in _files(root)}
    seen_ids = set(pq.read_table(local_path(root, "system.billing.usage"), columns=["record_id"]).column(0).to_pylist())
    day = facts(**SMALL).end_date
    counts = append_day(root, day, **SMALL)
    added = sorted(set(_files(root)) - set(before))
    assert len(added) == len(APPEND_TABLES)
    assert {p.parent for p in added} == {local_path(Path("."), name) for name in APPEND_TABLES}
    assert all((root / p).read_bytes() == data for p, data in before.items())
    assert counts["system.billing.usage"] > 0 and counts["system.lakeflow.job_run_timeline"] > 0
    new_usage = pq.read_table(root / local_path(Path("."), "system.billing.usage") / f"part-{day:%Y%m%d}-append.parquet")
    assert set(new_usage.column("usage_date").to_pylist()) == {day}
    new_ids = new_usage.column("record_id").to_pylist()
    assert len(set(new_ids)) == len(new_ids) and not seen_ids.intersection(new_ids)
    with pytest.raises(UserError, match="appended before"):
        append_day(root, day, **SMALL)


def test_facts_do_not_depend_on_scale(tmp_path):
    root = tmp_path / "scaled"
    generate(root, scale=2.0, **SMALL)
    ids = set(pq.read_table(local_path(root, "system.billing.usage"), columns=["record_id"]).column(0).to_pylist())
    for correction in facts(**SMALL).corrections:
        assert {correction.original_record_id, correction.retraction_record_id} <= ids


def test_facts_are_stable_and_inside_the_window():
    first, second = facts(), facts()
    assert first == second
    assert first.start_date <= first.spike_date < first.end_date
    assert first.last_day == first.end_date - timedelta(days=1)
    assert len({first.failing_job, first.first_failure_job, first.digest_failure_job, first.slowdown_job,
                first.sla_job}) == 5  # five different jobs
    assert set(first.sla_duration_breach_run_ids) < set(first.sla_deadline_breach_run_ids)
    assert first.start_date < first.job_name_populated_from < first.end_date
    assert first.price_change_time == datetime.combine(first.price_change_time.date(), datetime.min.time(), timezone.utc)
    assert first.end_date - first.start_date == timedelta(days=45)


def test_planted_job_health_cases(spark, demo_facts):
    """Issue 14: a run still in progress at the end of the data, and a task that failed once and was
    retried inside a job run that succeeded on its first attempt."""
    running = spark.sql(f"""SELECT period_start_time, period_end_time, result_state, run_duration_seconds
        FROM lakeflow_job_run_timeline WHERE run_id = '{demo_facts.sla_risk_run_id}' ORDER BY period_start_time""").collect()
    assert all(r.result_state is None and r.run_duration_seconds is None for r in running)
    data_end = sql_one(spark, "SELECT max(period_end_time) FROM lakeflow_job_run_timeline")
    assert running[-1].period_end_time == data_end == demo_facts.data_end_time.replace(tzinfo=None)
    assert running[0].period_start_time == demo_facts.sla_risk_run_start.replace(tzinfo=None)
    elapsed = (data_end - running[0].period_start_time).total_seconds()
    assert 0.8 < elapsed / (demo_facts.sla_risk_max_duration_minutes * 60) < 1  # at risk, not yet breached

    job = demo_facts.task_retry_job
    tasks = spark.sql(f"""SELECT run_id, max_by(result_state, period_end_time) AS state, min(period_start_time) AS began
        FROM lakeflow_job_task_run_timeline WHERE job_run_id = '{demo_facts.task_retry_run_id}'
         AND task_key = '{demo_facts.task_retry_task_key}' GROUP BY run_id ORDER BY began""").collect()
    assert [(t.run_id, t.state) for t in tasks] == list(zip(demo_facts.task_retry_task_run_ids, ("FAILED", "SUCCEEDED")))
    finals = spark.sql(f"""SELECT result_state FROM lakeflow_job_run_timeline
        WHERE run_id = '{demo_facts.task_retry_run_id}' AND job_id = '{job.job_id}' AND result_state IS NOT NULL""").collect()
    assert [r.result_state for r in finals] == ["SUCCEEDED"]  # one attempt: a retry, not a repair

    owner = spark.sql(f"""SELECT max_by(tags, change_time) AS tags, max(creator_user_name) AS owner
        FROM lakeflow_jobs WHERE workspace_id = '{job.workspace_id}' AND job_id = '{job.job_id}'""").collect()[0]
    assert "team" not in owner.tags and owner.owner == demo_facts.sla_risk_owner_email
