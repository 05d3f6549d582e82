"""Billing tables against the raw demo system tables: costs recomputed independently, planted traps found.

Every expected figure comes from the RAW demo Parquet (billing.usage, billing.list_prices,
lakeflow.jobs) with SQL written here, separately from the specs. Prices are looked up the way the
pricing docs describe it ("the most recent price change on or before the usage time"), not with the
specs' interval join, so a wrong join in billing_summary shows up as a difference.
"""

from __future__ import annotations

from decimal import Decimal

import pytest


CENT = Decimal("0.005")  # "to the cent": closer than half a cent


@pytest.fixture(scope="module")
def spark(pipeline_output, demo_source):
    """The session, with the raw demo tables and the catalog's tables as temporary views."""
    s = pipeline_output.spark
    s.read.parquet(str(demo_source / "billing" / "usage")).createOrReplaceTempView("raw_usage")
    s.read.parquet(str(demo_source / "billing" / "list_prices")).createOrReplaceTempView("raw_prices")
    s.read.parquet(str(demo_source / "lakeflow" / "jobs")).createOrReplaceTempView("raw_jobs")
    for name in ("billing_summary", "cost_by_sku", "cost_by_product", "cost_by_job", "cost_by_user", "jobs_bronze"):
        pipeline_output.table(name).createOrReplaceTempView(f"out_{name}")
    # Each usage row with the price of the latest price change at or before its start (all record types).
    s.sql("""
        WITH candidates AS (
          SELECT u.record_id, u.workspace_id, u.usage_date, u.sku_name, u.usage_unit, u.record_type,
                 u.billing_origin_product, u.usage_metadata.job_id AS job_id,
                 u.usage_metadata.job_run_id AS job_run_id, u.usage_metadata.cluster_id AS cluster_id,
                 u.identity_metadata.run_as AS run_as,
                 CAST(u.usage_quantity AS DECIMAL(30,18)) AS quantity,
                 CAST(p.pricing.effective_list.default AS DECIMAL(20,12)) AS effective_price,
                 CAST(p.pricing.default AS DECIMAL(20,12)) AS default_price,
                 p.price_start_time,
                 MAX(p.price_start_time) OVER (PARTITION BY u.record_id) AS latest_change
          FROM raw_usage u
          JOIN raw_prices p
            ON p.sku_name = u.sku_name AND p.cloud = u.cloud AND p.usage_unit = u.usage_unit
           AND p.currency_code = 'USD' AND p.price_start_time <= u.usage_start_time
        )
        SELECT record_id, workspace_id, usage_date, sku_name, usage_unit, record_type, billing_origin_product,
               job_id, job_run_id, cluster_id, run_as, quantity,
               quantity * effective_price AS cost, quantity * default_price AS list_cost,
               effective_price, default_price
        FROM candidates
        WHERE price_start_time = latest_change
    """).createOrReplaceTempView("expected_costed_usage")
    return s


def _rows(spark, sql: str) -> dict:
    """{key tuple: value tuple} for a query whose columns named k_* form the key; the key must be unique."""
    out = {}
    for row in spark.sql(sql).collect():
        d = row.asDict()
        key = tuple(v for k, v in d.items() if k.startswith("k_"))
        assert key not in out, f"duplicate row for {key}"
        out[key] = tuple(v for k, v in d.items() if not k.startswith("k_"))
    return out


def _close(a, b, tolerance=CENT) -> bool:
    return a is not None and b is not None and abs(Decimal(a) - Decimal(b)) < tolerance


def test_every_usage_row_has_exactly_one_price_row_in_raw_data(spark):
    # The interval containment the docs define; 0 or 2+ candidates would make any cost join lose or fan out.
    counts = spark.sql("""
        SELECT u.record_id, COUNT(p.sku_name) AS candidates
        FROM raw_usage u
        LEFT JOIN raw_prices p
          ON p.sku_name = u.sku_name AND p.cloud = u.cloud AND p.usage_unit = u.usage_unit
         AND p.currency_code = 'USD'
         AND p.price_start_time <= u.usage_start_time
         AND (p.price_end_time IS NULL OR u.usage_start_time < p.price_end_time)
        GROUP BY u.record_id
        HAVING COUNT(p.sku_name) != 1
    """).collect()
    assert counts == [], f"usage rows without exactly one price row: {counts[:5]}"


def test_billing_summary_has_one_priced_row_per_usage_record(spark):
    raw = spark.sql("SELECT COUNT(*) AS n, COUNT(DISTINCT record_id) AS ids FROM raw_usage").first()
    out = spark.sql("""
        SELECT COUNT(*) AS n, COUNT(DISTINCT record_id) AS ids, COUNT_IF(estimated_cost_usd IS NULL) AS unpriced
        FROM out_billing_summary
    """).first()
    assert raw.n == raw.ids  # record ids are unique in the source
    assert (out.n, out.ids, out.unpriced) == (raw.n, raw.ids, 0)
    missing = spark.sql("SELECT record_id FROM raw_usage EXCEPT SELECT record_id FROM out_billing_summary").count()
    assert missing == 0
    # Corrections are kept as rows: every RETRACTION and RESTATEMENT of the source is there.
    by_type = _rows(spark, "SELECT record_type AS k_t, COUNT(*) AS n FROM out_billing_summary GROUP BY record_type")
    raw_by_type = _rows(spark, "SELECT record_type AS k_t, COUNT(*) AS n FROM raw_usage GROUP BY record_type")
    assert by_type == raw_by_type and ("RETRACTION",) in by_type


@pytest.mark.parametrize("table", ["billing_summary", "cost_by_sku", "cost_by_product", "cost_by_user"])
def test_daily_workspace_cost_matches_raw_recomputation(spark, table):
    cost, list_cost = ("estimated_cost_usd", "list_cost_usd") if table == "billing_summary" else ("total_cost_usd", "total_list_cost_usd")
    expected = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, SUM(cost) AS cost, SUM(list_cost) AS list_cost
        FROM expected_costed_usage GROUP BY workspace_id, usage_date
    """)
    actual = _rows(spark, f"""
        SELECT workspace_id AS k_ws, usage_date AS k_day, SUM({cost}) AS cost, SUM({list_cost}) AS list_cost
        FROM out_{table} GROUP BY workspace_id, usage_date
    """)
    assert set(actual) == set(expected), f"{table}: workspace-days differ: {set(actual) ^ set(expected)}"
    wrong = {k: (actual[k], v) for k, v in expected.items() if not (_close(actual[k][0], v[0]) and _close(actual[k][1], v[1]))}
    assert not wrong, f"{table}: cost differs from the raw recomputation on {len(wrong)} workspace-days, e.g. {list(wrong.items())[:3]}"


def test_total_dbus_per_sku_and_product_match_raw(spark):
    sku_expected = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, sku_name AS k_sku, SUM(quantity) AS q
        FROM expected_costed_usage GROUP BY 1, 2, 3 HAVING SUM(quantity) != 0
    """)
    sku_actual = _rows(spark, "SELECT workspace_id AS k_ws, usage_date AS k_day, sku_name AS k_sku, total_dbus AS q FROM out_cost_by_sku")
    assert sku_actual.keys() == sku_expected.keys()
    assert all(Decimal(sku_actual[k][0]) == Decimal(v[0]) for k, v in sku_expected.items())
    product_expected = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, billing_origin_product AS k_p,
               SUM(CASE WHEN usage_unit = 'DBU' THEN quantity ELSE 0 END) AS dbus
        FROM expected_costed_usage GROUP BY 1, 2, 3 HAVING SUM(quantity) != 0
    """)
    product_actual = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, billing_origin_product AS k_p, total_dbus AS dbus
        FROM out_cost_by_product
    """)
    assert product_actual.keys() == product_expected.keys()
    assert all(Decimal(product_actual[k][0]) == Decimal(v[0]) for k, v in product_expected.items())


def _original_only(spark, where: str) -> Decimal:
    """The wrong answer: only ORIGINAL rows (what a record_type = 'ORIGINAL' filter would report)."""
    value = spark.sql(f"""
        SELECT SUM(quantity) AS q FROM expected_costed_usage
        WHERE record_type = 'ORIGINAL' AND usage_unit = 'DBU' AND {where}
    """).first().q
    return Decimal(value or 0)


def _table_dbus(spark, table: str, where: str) -> Decimal:
    value = spark.sql(f"SELECT SUM(total_dbus) AS q FROM out_{table} WHERE {where}").first().q
    return Decimal(value or 0)


def _usage_of(spark, record_id: str):
    return spark.sql(f"SELECT * FROM expected_costed_usage WHERE record_id = '{record_id}'").first()


def test_retraction_only_correction_nets_to_zero(spark, demo_facts):
    c = demo_facts.correction("retraction_only")
    original = _usage_of(spark, c.original_record_id)
    retraction = _usage_of(spark, c.retraction_record_id)
    assert Decimal(retraction.quantity) == -Decimal(original.quantity) != 0
    # The correction group (its two records) nets to zero in billing_summary ...
    net = spark.sql(f"""
        SELECT SUM(usage_quantity) AS q, SUM(estimated_cost_usd) AS c FROM out_billing_summary
        WHERE record_id IN ('{c.original_record_id}', '{c.retraction_record_id}')
    """).first()
    assert Decimal(net.q) == 0 and Decimal(net.c) == 0
    # ... so every daily table on that day holds exactly the ORIGINAL-only total minus the retracted quantity.
    day = f"workspace_id = '{c.workspace_id}' AND usage_date = DATE'{original.usage_date}'"
    cases = {
        "cost_by_sku": f"sku_name = '{c.original_sku}'",
        "cost_by_product": f"billing_origin_product = '{original.billing_origin_product}'",
        "cost_by_user": f"run_as <=> {_sql_or_null(original.run_as)}",
    }
    if original.job_id is not None:
        cases["cost_by_job"] = f"job_id = '{original.job_id}'"
    for table, group in cases.items():
        wrong = _original_only(spark, f"{day} AND {group}")
        got = _table_dbus(spark, table, f"{day} AND {group}")
        assert got == wrong - Decimal(original.quantity), f"{table}: retraction not netted ({got} vs ORIGINAL-only {wrong})"


def _sql_or_null(value) -> str:
    return "NULL" if value is None else f"'{value}'"


def test_restatement_with_another_sku_lands_under_the_restated_sku(spark, demo_facts):
    c = demo_facts.correction("restated_other_sku")
    assert c.restated_sku != c.original_sku
    original = _usage_of(spark, c.original_record_id)
    restatement = _usage_of(spark, c.restatement_record_id)
    assert restatement.sku_name == c.restated_sku and Decimal(restatement.quantity) == Decimal(original.quantity)
    day = f"workspace_id = '{c.workspace_id}' AND usage_date = DATE'{original.usage_date}'"
    restated = _table_dbus(spark, "cost_by_sku", f"{day} AND sku_name = '{c.restated_sku}'")
    assert restated == _original_only(spark, f"{day} AND sku_name = '{c.restated_sku}'") + Decimal(restatement.quantity)
    moved_from = _table_dbus(spark, "cost_by_sku", f"{day} AND sku_name = '{c.original_sku}'")
    assert moved_from == _original_only(spark, f"{day} AND sku_name = '{c.original_sku}'") - Decimal(original.quantity)
    # The job's day total is unchanged by the move (same quantity), and still counted once.
    if original.job_id is not None:
        job_day = f"{day} AND job_id = '{original.job_id}'"
        assert _table_dbus(spark, "cost_by_job", job_day) == _original_only(spark, job_day)


def test_same_sku_restatement_replaces_the_original_quantity(spark, demo_facts):
    c = demo_facts.correction("restated_same_sku")
    original = _usage_of(spark, c.original_record_id)
    day = f"workspace_id = '{c.workspace_id}' AND usage_date = DATE'{original.usage_date}' AND sku_name = '{c.original_sku}'"
    expected = _original_only(spark, day) - Decimal(original.quantity) + Decimal(str(c.restated_quantity))
    assert _table_dbus(spark, "cost_by_sku", day) == expected


def test_promotional_sku_list_cost_differs_from_effective_cost(spark, demo_facts):
    prices = spark.sql(f"""
        SELECT pricing.default AS list_price, pricing.effective_list.default AS effective
        FROM raw_prices WHERE sku_name = '{demo_facts.promotional_sku}'
    """).collect()
    assert len(prices) == 1 and prices[0].list_price != prices[0].effective
    rows = spark.sql(f"""
        SELECT total_dbus, total_cost_usd, total_list_cost_usd FROM out_cost_by_sku
        WHERE sku_name = '{demo_facts.promotional_sku}'
    """).collect()
    assert rows
    for r in rows:
        assert _close(r.total_cost_usd, Decimal(r.total_dbus) * Decimal(prices[0].effective))
        assert _close(r.total_list_cost_usd, Decimal(r.total_dbus) * Decimal(prices[0].list_price))
        assert r.total_cost_usd != r.total_list_cost_usd


def test_price_change_applies_the_price_valid_at_the_usage_time(spark, demo_facts):
    change = demo_facts.price_change_time.date()
    rows = spark.sql(f"""
        SELECT usage_date, total_dbus, total_cost_usd FROM out_cost_by_sku
        WHERE sku_name = '{demo_facts.price_change_sku}'
    """).collect()
    before = [r for r in rows if r.usage_date < change]
    after = [r for r in rows if r.usage_date >= change]
    assert before and after
    for r in before:
        assert _close(r.total_cost_usd, Decimal(r.total_dbus) * Decimal(str(demo_facts.old_price)))
    for r in after:
        assert _close(r.total_cost_usd, Decimal(r.total_dbus) * Decimal(str(demo_facts.new_price)))


def test_all_purpose_usage_without_job_id_is_kept(spark, demo_facts):
    clusters = ", ".join(f"'{c}'" for c in demo_facts.all_purpose_cluster_ids)
    raw = spark.sql(f"""
        SELECT COUNT(*) AS n, SUM(cost) AS cost FROM expected_costed_usage
        WHERE job_id IS NULL AND cluster_id IN ({clusters})
    """).first()
    kept = spark.sql(f"""
        SELECT COUNT(*) AS n, SUM(estimated_cost_usd) AS cost FROM out_billing_summary
        WHERE job_id IS NULL AND cluster_id IN ({clusters})
    """).first()
    assert raw.n > 0 and kept.n == raw.n and _close(kept.cost, raw.cost)
    # Their products (ALL_PURPOSE) in cost_by_product hold the same cost as the raw rows of those products.
    products = [r.p for r in spark.sql(f"""
        SELECT DISTINCT billing_origin_product AS p FROM expected_costed_usage WHERE cluster_id IN ({clusters})
    """).collect()]
    in_list = ", ".join(f"'{p}'" for p in products)
    expected = spark.sql(f"SELECT SUM(cost) AS c FROM expected_costed_usage WHERE billing_origin_product IN ({in_list})").first().c
    got = spark.sql(f"SELECT SUM(total_cost_usd) AS c FROM out_cost_by_product WHERE billing_origin_product IN ({in_list})").first().c
    assert _close(got, expected)
    # The job run on an all-purpose cluster has no job_id in billing, so cost_by_job cannot list it.
    job = demo_facts.all_purpose_job
    assert spark.sql(f"SELECT * FROM out_cost_by_job WHERE job_id = '{job.job_id}'").count() == 0


def test_cost_by_job_one_row_per_job_day_despite_job_versions(spark):
    versions = spark.sql("""
        SELECT workspace_id, job_id FROM out_jobs_bronze GROUP BY workspace_id, job_id HAVING COUNT(*) > 1
    """)
    versions.createOrReplaceTempView("multi_version_jobs")
    assert versions.count() > 0
    duplicates = spark.sql("""
        SELECT workspace_id, job_id, usage_date FROM out_cost_by_job
        GROUP BY workspace_id, job_id, usage_date HAVING COUNT(*) > 1
    """).count()
    assert duplicates == 0
    covered = spark.sql("""
        SELECT COUNT(*) AS n FROM out_cost_by_job c JOIN multi_version_jobs m USING (workspace_id, job_id)
    """).first().n
    assert covered > 0  # the trap is exercised: jobs with several versions have cost


def test_cost_by_job_matches_raw_job_usage(spark):
    expected = _rows(spark, """
        SELECT workspace_id AS k_ws, job_id AS k_job, usage_date AS k_day,
               COUNT(DISTINCT job_run_id) AS runs, SUM(quantity) AS dbus, SUM(cost) AS cost
        FROM expected_costed_usage WHERE job_id IS NOT NULL
        GROUP BY 1, 2, 3 HAVING SUM(quantity) != 0
    """)
    actual = _rows(spark, """
        SELECT workspace_id AS k_ws, job_id AS k_job, usage_date AS k_day, run_count AS runs,
               total_dbus AS dbus, total_cost_usd AS cost
        FROM out_cost_by_job
    """)
    assert actual.keys() == expected.keys()
    for k, (runs, dbus, cost) in expected.items():
        assert actual[k][0] == runs and Decimal(actual[k][1]) == Decimal(dbus) and _close(actual[k][2], cost), k


def test_cost_by_job_names_come_from_the_latest_job_version(spark, demo_facts):
    latest = _rows(spark, """
        SELECT workspace_id AS k_ws, job_id AS k_job, name, delete_time
        FROM (SELECT *, MAX(change_time) OVER (PARTITION BY workspace_id, job_id) AS newest FROM raw_jobs)
        WHERE change_time = newest
    """)
    names = _rows(spark, "SELECT DISTINCT workspace_id AS k_ws, job_id AS k_job, job_name FROM out_cost_by_job")
    for key, (job_name,) in names.items():
        if key in latest and latest[key][1] is None:
            assert job_name == latest[key][0], key
        else:  # deleted, or from a workspace in another region: no name, but the cost is kept
            assert job_name is None, key
    # A job renamed inside the window: billing recorded the old name on earlier rows, the table shows the new one.
    renamed = spark.sql("""
        SELECT DISTINCT u.workspace_id, u.usage_metadata.job_id AS job_id, u.usage_metadata.job_name AS billed_name
        FROM raw_usage u
        WHERE u.usage_metadata.job_name IS NOT NULL
    """).collect()
    renamed = [r for r in renamed if (r.workspace_id, r.job_id) in latest and latest[(r.workspace_id, r.job_id)][0] != r.billed_name
               and latest[(r.workspace_id, r.job_id)][1] is None]
    assert renamed, "the demo data should contain a job renamed after it was billed"
    for r in renamed:
        assert names[(r.workspace_id, r.job_id)][0] == latest[(r.workspace_id, r.job_id)][0] != r.billed_name
    # Deleted jobs and the other region's jobs keep their cost with a NULL name.
    deleted = ", ".join(f"'{j}'" for j in demo_facts.deleted_job_ids)
    kept = spark.sql(f"""
        SELECT COUNT(*) AS n, COUNT(job_name) AS named FROM out_cost_by_job
        WHERE job_id IN ({deleted}) OR workspace_id = '{demo_facts.remote_workspace_id}'
    """).first()
    assert kept.n > 0 and kept.named == 0


def test_cost_by_user_attributes_cost_to_run_as(spark):
    expected = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, run_as AS k_user, SUM(cost) AS cost,
               COUNT(DISTINCT job_id) AS jobs
        FROM expected_costed_usage GROUP BY 1, 2, 3 HAVING SUM(quantity) != 0
    """)
    actual = _rows(spark, """
        SELECT workspace_id AS k_ws, usage_date AS k_day, run_as AS k_user, total_cost_usd AS cost, distinct_jobs AS jobs
        FROM out_cost_by_user
    """)
    assert actual.keys() == expected.keys()
    assert any(k[2] is None for k in actual) and any(k[2] is not None for k in actual)
    for k, (cost, jobs) in expected.items():
        assert _close(actual[k][0], cost) and actual[k][1] == jobs, k
