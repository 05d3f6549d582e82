"""Model serving, vector search and MLflow tables against the raw demo system tables.

Costs are recomputed from RAW billing.usage and RAW billing.list_prices with SQL written here: each
usage row takes the price of the latest price change at or before its start (not the specs' interval
join through billing_summary). Request, token and run figures are recomputed from the raw
serving.endpoint_usage, serving.served_entities and mlflow.* Parquet in pandas.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest


CENT = Decimal("0.005")  # "to the cent": closer than half a cent
TERMINAL = ("FINISHED", "FAILED", "KILLED")


@pytest.fixture(scope="module")
def spark(pipeline_output, demo_source):
    """The session with raw usage priced independently as the view `raw_costed_usage`."""
    s = pipeline_output.spark
    s.read.parquet(str(demo_source / "billing" / "usage")).createOrReplaceTempView("aiml_raw_usage")
    s.read.parquet(str(demo_source / "billing" / "list_prices")).createOrReplaceTempView("aiml_raw_prices")
    s.sql("""
        WITH priced AS (
          SELECT u.record_id, u.workspace_id, u.usage_date, u.billing_origin_product,
                 u.product_features.serving_type AS serving_type,
                 u.usage_metadata.endpoint_id AS endpoint_id, u.usage_metadata.endpoint_name AS endpoint_name,
                 u.usage_unit,
                 CAST(u.usage_quantity AS DECIMAL(30,18)) AS quantity,
                 CAST(p.pricing.effective_list.default AS DECIMAL(20,12)) AS price,
                 p.price_start_time,
                 MAX(p.price_start_time) OVER (PARTITION BY u.record_id) AS latest_change
          FROM aiml_raw_usage u
          JOIN aiml_raw_prices p
            ON p.sku_name = u.sku_name AND p.cloud = u.cloud AND p.usage_unit = u.usage_unit
           AND p.currency_code = 'USD' AND p.price_start_time <= u.usage_start_time
        )
        SELECT record_id, workspace_id, usage_date, billing_origin_product, serving_type, endpoint_id,
               endpoint_name, usage_unit, quantity, quantity * price AS cost
        FROM priced
        WHERE price_start_time = latest_change
    """).createOrReplaceTempView("raw_costed_usage")
    return s


def _raw_cost_by(spark, where: str, keys: str) -> dict:
    rows = spark.sql(f"""
        SELECT {keys}, SUM(quantity) AS quantity, SUM(cost) AS cost
        FROM raw_costed_usage WHERE {where}
        GROUP BY {keys}
        HAVING SUM(quantity) != 0
    """).collect()
    n = len(keys.split(","))
    return {tuple(r[:n]): (r["quantity"], r["cost"]) for r in rows}


def _table_cost_by(pipeline_output, table: str, keys: list[str], quantity: str) -> dict:
    frame = pipeline_output.table(table).groupBy(*keys).agg({quantity: "sum", "total_cost_usd": "sum"})
    return {tuple(r[:len(keys)]): (r[f"sum({quantity})"], r["sum(total_cost_usd)"]) for r in frame.collect()}


def _assert_costs_agree(expected: dict, got: dict) -> None:
    assert expected, "no raw usage to compare with"
    assert set(got) == set(expected)
    for key, (quantity, cost) in expected.items():
        assert got[key][0] == quantity, key
        assert abs(got[key][1] - cost) < CENT, (key, got[key][1], cost)


@pytest.fixture(scope="module")
def raw_entities(demo_source) -> pd.DataFrame:
    return pd.read_parquet(demo_source / "serving" / "served_entities")


@pytest.fixture(scope="module")
def raw_requests(demo_source) -> pd.DataFrame:
    frame = pd.read_parquet(demo_source / "serving" / "endpoint_usage")
    frame["day"] = frame.request_time.dt.tz_convert("UTC").dt.date
    return frame


@pytest.fixture(scope="module")
def raw_runs(demo_source) -> pd.DataFrame:
    return pd.read_parquet(demo_source / "mlflow" / "runs_latest")


# --- model serving costs -----------------------------------------------------------------------

def test_model_serving_costs_match_raw_usage_and_prices(spark, pipeline_output):
    expected = _raw_cost_by(spark, "billing_origin_product = 'MODEL_SERVING'", "usage_date, workspace_id, endpoint_id")
    got = _table_cost_by(pipeline_output, "model_serving_costs", ["usage_date", "workspace_id", "endpoint_id"],
                         "total_usage_quantity")
    _assert_costs_agree(expected, got)


def test_model_serving_costs_have_no_fan_out(spark, pipeline_output, raw_entities):
    # The trap is real: an endpoint has several versions of its served entity in the history.
    versions = raw_entities.groupby("endpoint_id").size()
    assert (versions > 1).any()

    raw_total = spark.sql("""
        SELECT SUM(cost) AS cost, SUM(quantity) AS quantity
        FROM raw_costed_usage WHERE billing_origin_product = 'MODEL_SERVING'
    """).first()
    costs = pipeline_output.table("model_serving_costs")
    total = costs.agg({"total_cost_usd": "sum"}).first()[0]
    assert abs(total - raw_total["cost"]) < CENT
    grain = ["usage_date", "workspace_id", "endpoint_id", "serving_type", "usage_unit"]
    assert costs.count() == costs.select(*grain).distinct().count()


def test_deleted_endpoint_keeps_its_serving_cost(spark, pipeline_output, raw_entities):
    deleted = raw_entities[raw_entities.endpoint_delete_time.notna()]
    assert len(deleted) > 0, "the demo data should contain a deleted serving endpoint (fraud-scorer)"
    endpoint_id = deleted.endpoint_id.iloc[0]
    raw_cost = spark.sql(f"""
        SELECT SUM(cost) FROM raw_costed_usage
        WHERE billing_origin_product = 'MODEL_SERVING' AND endpoint_id = '{endpoint_id}'
    """).first()[0]
    assert raw_cost and raw_cost > 0
    rows = pipeline_output.table("model_serving_costs").where(f"endpoint_id = '{endpoint_id}'").toPandas()
    assert abs(sum(rows.total_cost_usd) - raw_cost) < CENT
    assert not rows.endpoint_active.any()  # no current served entities any more

    inventory = pipeline_output.table("endpoint_inventory").where(f"endpoint_id = '{endpoint_id}'").toPandas()
    assert len(inventory) == 1 and bool(inventory.is_deleted.iloc[0])
    assert inventory.delete_time.iloc[0] == deleted.endpoint_delete_time.max().tz_convert(None)


def test_foundation_model_costs_match_raw_usage_and_prices(spark, pipeline_output):
    expected = _raw_cost_by(spark, "serving_type = 'FOUNDATION_MODEL'", "usage_date, workspace_id, endpoint_id")
    got = _table_cost_by(pipeline_output, "foundation_model_costs", ["usage_date", "workspace_id", "endpoint_id"],
                         "total_usage_quantity")
    _assert_costs_agree(expected, got)


# --- vector search costs -----------------------------------------------------------------------

def test_vector_search_costs_match_raw_usage_and_prices(spark, pipeline_output, demo_facts):
    expected = _raw_cost_by(spark, "billing_origin_product = 'VECTOR_SEARCH'", "usage_date, workspace_id, endpoint_id")
    got = _table_cost_by(pipeline_output, "vector_search_costs", ["usage_date", "workspace_id", "endpoint_id"],
                         "total_dbus")
    _assert_costs_agree(expected, got)

    # The planted vector search correction (retraction + restatement at half) is netted that day:
    # the day's DBUs are below what the ORIGINAL rows alone say.
    correction = demo_facts.correction("restated_same_sku")
    day = datetime.fromtimestamp(correction.usage_start_epoch, timezone.utc).date()
    by_type = {r["record_type"]: r["quantity"] for r in spark.sql(f"""
        SELECT r.record_type, SUM(c.quantity) AS quantity
        FROM raw_costed_usage c JOIN aiml_raw_usage r ON c.record_id = r.record_id
        WHERE c.billing_origin_product = 'VECTOR_SEARCH' AND c.usage_date = DATE'{day}'
        GROUP BY r.record_type
    """).collect()}
    assert set(by_type) == {"ORIGINAL", "RETRACTION", "RESTATEMENT"}
    day_rows = [v for k, v in got.items() if k[0] == day]
    assert len(day_rows) == 1
    assert day_rows[0][0] == sum(by_type.values()) < by_type["ORIGINAL"]


def test_vector_search_summary_totals_match_raw(spark, pipeline_output):
    expected_daily = _raw_cost_by(spark, "billing_origin_product = 'VECTOR_SEARCH'", "workspace_id, endpoint_id, usage_date")
    summary = pipeline_output.table("vector_search_endpoint_summary").toPandas()
    assert len(summary) == len({k[:2] for k in expected_daily})
    for row in summary.itertuples():
        days = {k[2]: v for k, v in expected_daily.items() if k[:2] == (row.workspace_id, row.endpoint_id)}
        assert row.active_days == len(days)
        assert row.first_usage_date == min(days) and row.last_usage_date == max(days)
        assert row.total_dbus == sum(q for q, _ in days.values())
        assert abs(row.total_cost_usd - sum(c for _, c in days.values())) < CENT


# --- endpoint usage ----------------------------------------------------------------------------

def test_endpoint_usage_summary_matches_raw_requests(raw_requests, pipeline_output):
    expected = (raw_requests.groupby(["day", "workspace_id", "served_entity_id"])
                .agg(requests=("databricks_request_id", "size"),
                     errors=("status_code", lambda s: int((s >= 400).sum())),
                     input_tokens=("input_token_count", "sum"), output_tokens=("output_token_count", "sum"),
                     requesters=("requester", "nunique"))
                .reset_index())
    got = pipeline_output.table("endpoint_usage_summary").toPandas()
    assert len(got) == len(expected)
    merged = expected.merge(got, left_on=["day", "workspace_id", "served_entity_id"],
                            right_on=["usage_date", "workspace_id", "served_entity_id"])
    assert len(merged) == len(expected)
    for want, have in (("requests", "request_count"), ("errors", "error_count"), ("input_tokens", "total_input_tokens"),
                       ("output_tokens", "total_output_tokens"), ("requesters", "distinct_requesters")):
        assert (merged[want] == merged[have]).all(), want
    assert got.total_input_tokens.sum() == raw_requests.input_token_count.sum()
    assert got.total_output_tokens.sum() == raw_requests.output_token_count.sum()
    assert got.error_count.sum() > 0


def test_foundation_and_external_model_usage_split_by_entity_type(raw_requests, raw_entities, pipeline_output):
    entity_type = raw_entities.drop_duplicates("served_entity_id").set_index("served_entity_id").entity_type
    typed = raw_requests.assign(entity_type=raw_requests.served_entity_id.map(entity_type))

    foundation = typed[typed.entity_type == "FOUNDATION_MODEL"]
    fm = pipeline_output.table("foundation_model_usage").toPandas()
    assert len(foundation) > 0 and len(fm) > 0
    assert fm.request_count.sum() == len(foundation)
    assert fm.total_tokens.sum() == foundation.input_token_count.sum() + foundation.output_token_count.sum()

    external = typed[typed.entity_type == "EXTERNAL_MODEL"]
    ext = pipeline_output.table("external_model_usage").toPandas()
    providers = raw_entities[raw_entities.entity_type == "EXTERNAL_MODEL"].external_model_config.map(lambda c: c["provider"])
    assert set(ext.provider) == set(providers)
    assert ext.request_count.sum() == len(external)
    assert ext.total_input_tokens.sum() == external.input_token_count.sum()
    assert ext.error_count.sum() == int((external.status_code >= 400).sum())


def test_endpoint_inventory_counts_requests_over_the_last_30_days_of_data(raw_requests, raw_entities, pipeline_output):
    last_day = raw_requests.day.max()
    window = raw_requests[raw_requests.day > last_day - timedelta(days=30)]
    endpoint_of = raw_entities.drop_duplicates("served_entity_id").set_index("served_entity_id").endpoint_id
    expected = window.served_entity_id.map(endpoint_of).value_counts().to_dict()

    inventory = pipeline_output.table("endpoint_inventory").toPandas().set_index("endpoint_id")
    assert set(inventory.index) == set(raw_entities.endpoint_id)  # one row per endpoint, deleted ones too
    for endpoint_id, row in inventory.iterrows():
        if endpoint_id in expected:
            assert row.request_count_30d == expected[endpoint_id], endpoint_id
        else:  # no usage tracking on this endpoint
            assert pd.isna(row.request_count_30d)
    # the window really is shorter than the data: the 30-day count is below the all-time count
    all_time = raw_requests.served_entity_id.map(endpoint_of).value_counts()
    assert any(expected[e] < all_time[e] for e in expected)


# --- MLflow ------------------------------------------------------------------------------------

def test_mlflow_success_ratio_matches_raw_runs(raw_runs, pipeline_output):
    summary = pipeline_output.table("mlflow_experiments_summary").toPandas().set_index("experiment_id")
    assert set(summary.index) >= set(raw_runs.experiment_id)
    for experiment_id, runs in raw_runs.groupby("experiment_id"):
        status = runs.status.value_counts()
        terminal = sum(int(status.get(s, 0)) for s in TERMINAL)
        row = summary.loc[experiment_id]
        assert row.run_count == len(runs)
        assert row.finished_count == status.get("FINISHED", 0)
        assert row.failed_count == status.get("FAILED", 0)
        assert row.success_ratio == pytest.approx(status.get("FINISHED", 0) / terminal)


def test_running_run_is_counted_as_running_not_failed(demo_facts, raw_runs, pipeline_output):
    running = raw_runs[raw_runs.status == "RUNNING"]
    assert len(running) == 1, "the demo data plants exactly one RUNNING run"
    run = running.iloc[0]
    assert pd.isna(run.end_time)
    assert run.start_time.date() == demo_facts.end_date - timedelta(days=1)  # started on the last day

    summary = pipeline_output.table("mlflow_runs_summary").where(f"run_id = '{run.run_id}'").toPandas()
    assert len(summary) == 1
    row = summary.iloc[0]
    assert bool(row.is_running) and not bool(row.is_failure)
    assert pd.isna(row.duration_seconds)

    experiment = pipeline_output.table("mlflow_experiments_summary").where(
        f"experiment_id = '{run.experiment_id}'").toPandas().iloc[0]
    runs = raw_runs[raw_runs.experiment_id == run.experiment_id]
    assert experiment.running_count == 1
    assert experiment.failed_count == int((runs.status == "FAILED").sum())
    # the running run is in run_count but not in the ratio's denominator
    assert experiment.success_ratio == pytest.approx(
        experiment.finished_count / (experiment.run_count - experiment.running_count))


def test_mlflow_runs_summary_metric_counts_match_raw_history(demo_source, raw_runs, pipeline_output):
    history = pd.read_parquet(demo_source / "mlflow" / "run_metrics_history")
    values = history.groupby("run_id").size()
    names = history.groupby("run_id").metric_name.nunique()
    runs = pipeline_output.table("mlflow_runs_summary").toPandas().set_index("run_id")
    assert len(runs) == len(raw_runs)
    for run_id, row in runs.iterrows():
        assert row.metric_value_count == values.get(run_id, 0)
        assert row.metric_count == names.get(run_id, 0)
    finished = raw_runs[raw_runs.end_time.notna()].set_index("run_id")
    durations = (finished.end_time - finished.start_time).dt.total_seconds().astype("int64")
    assert (runs.loc[durations.index, "duration_seconds"] == durations).all()
