"""Compute tables against the raw demo system tables: current cluster versions and hourly utilization.

Expected figures are recomputed from the RAW demo Parquet (compute.clusters, compute.node_timeline)
in pandas, separately from the specs' SQL, and the planted cases of `engine.demo.facts` are checked.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest



@pytest.fixture(scope="module")
def raw_clusters(demo_source) -> pd.DataFrame:
    return pd.read_parquet(demo_source / "compute" / "clusters")


@pytest.fixture(scope="module")
def raw_nodes(demo_source) -> pd.DataFrame:
    frame = pd.read_parquet(demo_source / "compute" / "node_timeline")
    frame["start_time"] = frame["start_time"].dt.tz_convert(None)  # naive UTC, as Spark's toPandas returns it
    frame["hour"] = frame.start_time.dt.floor("h")
    frame["cpu"] = frame.cpu_user_percent + frame.cpu_system_percent
    return frame


@pytest.fixture(scope="module")
def utilization(pipeline_output) -> pd.DataFrame:
    return pipeline_output.table("cluster_utilization").toPandas()


def test_clusters_current_holds_the_latest_live_config(demo_facts, raw_clusters, pipeline_output):
    latest = raw_clusters.sort_values("change_time").groupby(["workspace_id", "cluster_id"]).last()
    live = latest[latest.delete_time.isna()]
    current = pipeline_output.table("clusters_current").toPandas()
    assert not current.duplicated(["workspace_id", "cluster_id"]).any()
    assert set(zip(current.workspace_id, current.cluster_id)) == set(live.index)
    assert demo_facts.deleted_cluster_id in set(raw_clusters.cluster_id)
    assert demo_facts.deleted_cluster_id not in set(current.cluster_id)
    # Clusters with several versions (resized, renamed): the current row is the newest version.
    versioned = raw_clusters.groupby(["workspace_id", "cluster_id"]).size()
    versioned = [k for k in versioned[versioned > 1].index if k in live.index]
    assert versioned
    current = current.set_index(["workspace_id", "cluster_id"])
    changed = 0
    for key in versioned:
        for column in ("cluster_name", "worker_count", "min_autoscale_workers", "worker_node_type"):
            want, got = live.loc[key, column], current.loc[key, column]
            assert (pd.isna(want) and pd.isna(got)) or want == got, (key, column, want, got)
        oldest = raw_clusters[(raw_clusters.workspace_id == key[0]) & (raw_clusters.cluster_id == key[1])].sort_values("change_time").iloc[0]
        changed += oldest.cluster_name != live.loc[key, "cluster_name"] or oldest.worker_count != live.loc[key, "worker_count"]
    assert changed  # at least one of them really changed name or size


def test_over_provisioned_cluster_shows_low_cpu(demo_facts, raw_nodes, utilization):
    cluster = demo_facts.over_provisioned_cluster_id
    mine = utilization[utilization.cluster_id == cluster]
    others = utilization[utilization.cluster_id != cluster]
    assert len(mine) > 0 and len(others) > 0
    assert (mine.avg_cpu_percent < 15).all()
    assert others.avg_cpu_percent.median() > 30
    # Many nodes are running while CPU stays low: that is what over-provisioned means.
    expected_nodes = raw_nodes[raw_nodes.cluster_id == cluster].groupby("hour").instance_id.nunique()
    got_nodes = {pd.Timestamp(h): n for h, n in zip(mine.hour, mine.node_count)}
    assert got_nodes == {pd.Timestamp(h): n for h, n in expected_nodes.items()}
    assert mine.node_count.min() >= 12


def test_node_count_for_one_hour_matches_raw(raw_nodes, utilization):
    # The busiest hour of the raw data: rows are per instance and minute, so COUNT(*) would be ~60x too high.
    by_hour = raw_nodes.groupby(["workspace_id", "cluster_id", "hour"])
    sizes = by_hour.instance_id.nunique().sort_values()
    (workspace_id, cluster_id, hour), nodes = sizes.index[-1], sizes.iloc[-1]
    rows = raw_nodes[(raw_nodes.cluster_id == cluster_id) & (raw_nodes.hour == hour)]
    assert len(rows) > nodes  # the trap is there: several minutes per instance
    got = utilization[(utilization.workspace_id == workspace_id) & (utilization.cluster_id == cluster_id)
                      & (utilization.hour == hour)]
    assert len(got) == 1
    got = got.iloc[0]
    assert got.node_count == nodes
    assert got.worker_node_count == rows[~rows.driver].instance_id.nunique()
    assert got.sample_count == len(rows)


def test_hourly_utilization_matches_raw_for_every_cluster_hour(raw_nodes, utilization):
    expected = raw_nodes.groupby(["workspace_id", "cluster_id", "hour"]).agg(
        nodes=("instance_id", "nunique"), avg_cpu=("cpu", "mean"), max_cpu=("cpu", "max"),
        avg_mem=("mem_used_percent", "mean"), max_mem=("mem_used_percent", "max"))
    got = utilization.set_index(["workspace_id", "cluster_id", "hour"]).sort_index()
    assert not got.index.duplicated().any()
    assert set(got.index) == set(expected.index)
    for key, want in expected.iterrows():
        row = got.loc[key]
        assert row.node_count == want.nodes, key
        assert math.isclose(row.avg_cpu_percent, want.avg_cpu, rel_tol=1e-9), key
        assert math.isclose(row.max_cpu_percent, want.max_cpu, rel_tol=1e-9), key
        assert math.isclose(row.avg_memory_percent, want.avg_mem, rel_tol=1e-9), key
        assert math.isclose(row.max_memory_percent, want.max_mem, rel_tol=1e-9), key
        assert row.usage_date == key[2].date(), key
