"""Stage: demo data. Simulate one UTC day of the account: job runs, compute activity, usage, events.

`simulate_day` is a pure function of (world, day, namespace). The full generator calls it for every
day of the window with namespace "base"; `append_day` calls it with namespace "append" so its ids
cannot collide with the base data. Planted one-off cases (cost spike, billing corrections, the
still-running MLflow run) happen only in the base window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import pyarrow as pa

from engine.demo import catalog as C
from engine.demo import events
from engine.demo.ids import DAY, HOUR, day_start, from_epoch, rng_for, uuid_id
from engine.demo.runs import Run, add_run_usage, runs_of_job
from engine.demo.usage import PROFILES, Correction, UsageBuffer, UsageRow, correct, tag_items
from engine.demo.entities import Cluster, Notebook, World, alive_at, version_at
from engine.demo.world import NOTEBOOKS_PER_WORKSPACE, WAREHOUSES_PER_WORKSPACE, detailed

BASE, APPEND = "base", "append"


@dataclass
class DayOutput:
    day: date
    usage: UsageBuffer
    runs: list[Run] = field(default_factory=list)
    job_clusters: list[Cluster] = field(default_factory=list)
    node_intervals: list[tuple[Cluster, int, int]] = field(default_factory=list)  # cluster up [start, end)
    cluster_starts: list[tuple[Cluster, int]] = field(default_factory=list)  # interactive starts (audit)
    notebook_hours: list[tuple[Notebook, int, int]] = field(default_factory=list)  # (notebook, hour, commands)
    queries: list[dict] = field(default_factory=list)
    endpoint_usage: list[dict] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    mlflow_run_rows: list[dict] = field(default_factory=list)
    mlflow_metrics: list[dict] = field(default_factory=list)
    node_timeline: pa.Table | None = None
    corrections: list[Correction] = field(default_factory=list)


def simulate_day(world: World, day: date, namespace: str = BASE) -> DayOutput:
    seed = world.params.seed
    out = DayOutput(day, UsageBuffer(seed, namespace, "usage", day))
    planted = namespace == BASE and world.params.start_date <= day < world.params.end_date
    _jobs(world, day, namespace, out)
    _warehouses(world, day, namespace, out)
    _pipelines(world, day, namespace, out)
    _notebooks(world, day, namespace, out)
    _unattributed_serverless(world, day, namespace, out)
    _serving(world, day, namespace, out)
    _vector_search(world, day, out)
    if planted:
        _cost_spike(world, day, out)
        _corrections(world, day, out)
        _spend_drop(world, day, out)
    out.audit = events.audit_rows(world, day, namespace, out)
    out.mlflow_run_rows, out.mlflow_metrics = events.mlflow_rows(world, day, namespace, snapshot_end=planted)
    if namespace != BASE or day in world.planted.node_timeline_days:
        out.node_timeline = events.node_timeline(world, namespace, out.node_intervals)
    return out


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- compute ------------------------------------------------------------------------------------

def _jobs(world: World, day: date, namespace: str, out: DayOutput) -> None:
    busy: dict[str, list[tuple[int, int]]] = defaultdict(list)  # all-purpose cluster id -> job intervals
    for job in world.jobs:
        for run in runs_of_job(world, job, day, namespace):
            out.runs.append(run)
            add_run_usage(out.usage, world, run, namespace)
            for attempt in run.attempts:
                if attempt.job_cluster is not None:
                    out.job_clusters.append(attempt.job_cluster)
                    out.node_intervals.append((attempt.job_cluster, attempt.start, attempt.end))
                elif job.compute == "all_purpose" and attempt.end > attempt.start:
                    busy[job.all_purpose_cluster_id].append((attempt.start, attempt.end))
    _all_purpose(world, day, namespace, out, busy)


def _sessions(cluster: Cluster, day: date, rng) -> list[tuple[int, int]]:
    """Interactive use of an all-purpose cluster: office hours on weekdays, now and then on weekends."""
    day0 = day_start(day)
    if day.weekday() < 5 and (cluster.over_provisioned or rng.random() < 0.85):
        start = day0 + rng.randrange(7 * HOUR, 10 * HOUR)
        return [(start, start + rng.randrange(5 * HOUR, 9 * HOUR))]
    if day.weekday() >= 5 and rng.random() < 0.2:
        start = day0 + rng.randrange(10 * HOUR, 14 * HOUR)
        return [(start, start + rng.randrange(1 * HOUR, 4 * HOUR))]
    return []


def _all_purpose(world: World, day: date, namespace: str, out: DayOutput, busy: dict) -> None:
    """All-purpose usage is per cluster, never per job: job_id stays NULL even while a job runs on it."""
    day0 = day_start(day)
    for cluster in world.clusters:
        if cluster.kind != "all_purpose":
            continue
        rng = rng_for(world.params.seed, namespace, "ap-activity", cluster.workspace.index, cluster.index, day)
        sessions = [s for s in _sessions(cluster, day, rng) if alive_at(cluster.versions, from_epoch(s[0]))]
        version = version_at(cluster.versions, from_epoch(day0)) or cluster.versions[0]
        idle = int(version.attrs["auto_termination_minutes"]) * 60  # stays up this long after the last use
        deleted = cluster.versions[-1].delete_time
        stop = min(day0 + DAY, int(deleted.timestamp())) if deleted else day0 + DAY
        up = _merge([(s, min(e + idle, stop)) for s, e in sessions + busy.get(cluster.cluster_id, []) if s < stop])
        out.cluster_starts.extend((cluster, start) for start, _ in sessions)
        usage = out.usage.stream("all-purpose", cluster.cluster_id)
        for start, end in up:
            when = from_epoch(start)
            spec = cluster.spec_at(when)
            usage.add_hourly(
                cluster.workspace.workspace_id, "all_purpose_photon" if spec.photon else "all_purpose", start, end,
                spec.dbu_per_hour, tag_items(cluster.tags_at(when)),
                cluster_id=cluster.cluster_id, node_type=spec.worker_node,
            )
            out.node_intervals.append((cluster, start, end))


def _warehouses(world: World, day: date, namespace: str, out: DayOutput) -> None:
    day0, weekday = day_start(day), day.weekday() < 5
    for warehouse in world.warehouses:
        ws = warehouse.workspace
        rng = rng_for(world.params.seed, namespace, "warehouse-activity", ws.index, warehouse.index, day)
        attrs = warehouse.attrs_at(from_epoch(day0))
        serverless = attrs["type"] == "SERVERLESS"
        profile = "remote_sql_serverless" if ws.is_remote else ("sql_serverless" if serverless else "sql_pro")
        usage = out.usage.stream("warehouse", warehouse.warehouse_id)
        for hour in range(24):
            busy_hours = 7 <= hour < 19 if weekday else 9 <= hour < 17
            chance = (0.6 if serverless else 0.85) if weekday and busy_hours else (0.15 if busy_hours else 0.04)
            if rng.random() >= chance:
                continue
            start = day0 + hour * HOUR
            attrs = warehouse.attrs_at(from_epoch(start))
            rate = C.WAREHOUSE_DBU_PER_HOUR[str(attrs["size"])]
            clusters = rng.randint(1, int(attrs["max_clusters"])) if 10 <= hour < 16 and rng.random() < 0.3 else 1
            fraction = rng.uniform(0.3, 1.0) if serverless else rng.uniform(0.6, 1.0)
            usage.add(ws.workspace_id, profile, start, rate * clusters * fraction, tag_items(attrs["tags"]),
                      warehouse_id=warehouse.warehouse_id, owned_by=warehouse.owner)
            if not ws.is_remote and detailed(warehouse.index, WAREHOUSES_PER_WORKSPACE, world.params.scale):
                out.queries.extend(events.query_rows(world, warehouse, start, fraction * clusters, namespace))


def _pipelines(world: World, day: date, namespace: str, out: DayOutput) -> None:
    day0 = day_start(day)
    for pipeline in world.pipelines:
        rng = rng_for(world.params.seed, namespace, "pipeline-activity", pipeline.workspace.index, pipeline.index, day)
        spec = pipeline.cluster.spec_at(from_epoch(day0))
        tags = tag_items(version_at(pipeline.versions, from_epoch(day0)).attrs["tags"])
        if pipeline.continuous:
            updates = [(day0, day0 + DAY)]
        else:
            # Triggered every 3 hours at a fixed minute; each update runs 8-25 minutes.
            minute = rng_for(world.params.seed, "pipeline-minute", pipeline.pipeline_id).randrange(60)
            starts = [day0 + k * 3 * HOUR + minute * 60 for k in range(8)]
            updates = [(s, s + rng.randrange(8 * 60, 25 * 60)) for s in starts]
        usage = out.usage.stream("pipeline", pipeline.pipeline_id)
        for number, (start, end) in enumerate(updates):
            usage.add_hourly(
                pipeline.workspace.workspace_id, "dlt_advanced" if pipeline.edition == "ADVANCED" else "dlt_core",
                start, end, spec.dbu_per_hour, tags, cluster_id=pipeline.cluster.cluster_id, node_type=spec.worker_node,
                dlt_pipeline_id=pipeline.pipeline_id,
                dlt_update_id=uuid_id(world.params.seed, namespace, "dlt-update", pipeline.pipeline_id, day, number),
                run_as=pipeline.run_as,
            )
            out.node_intervals.append((pipeline.cluster, start, end))


def _notebooks(world: World, day: date, namespace: str, out: DayOutput) -> None:
    day0 = day_start(day)
    for notebook in world.notebooks:
        rng = rng_for(world.params.seed, namespace, "notebook-activity", notebook.workspace.index, notebook.index, day)
        if rng.random() >= (0.7 if day.weekday() < 5 else 0.1):
            continue
        hours = set()
        for _ in range(rng.randint(1, 2)):
            first = rng.randrange(8, 17)
            hours.update(range(first, min(24, first + rng.randint(1, 3))))
        tags = {"team": notebook.user.team, "budget_policy": "interactive"} if notebook.budget_policy_id else {}
        usage = out.usage.stream("notebook", notebook.notebook_id)
        for hour in sorted(hours):
            start = day0 + hour * HOUR
            commands = rng.randint(2, 5)
            for _ in range(commands):
                usage.add(notebook.workspace.workspace_id, "interactive_serverless", start, rng.uniform(0.2, 1.5),
                          tag_items(tags), notebook_id=notebook.notebook_id, notebook_path=notebook.path,
                          budget_policy_id=notebook.budget_policy_id, run_as=notebook.user.email)
            if detailed(notebook.index, NOTEBOOKS_PER_WORKSPACE, world.params.scale):
                out.notebook_hours.append((notebook, start, commands))  # audit runCommand events


def _unattributed_serverless(world: World, day: date, namespace: str, out: DayOutput) -> None:
    """Serverless rows for shared resources: no job, run, notebook or run_as (reference §2.1f)."""
    for ws in world.home_workspaces:
        rng = rng_for(world.params.seed, namespace, "unattributed", ws.index, day)
        usage = out.usage.stream("unattributed", ws.workspace_id)
        for hour in sorted(rng.sample(range(24), rng.randint(2, 5))):
            usage.add(ws.workspace_id, "jobs_serverless", day_start(day) + hour * HOUR, rng.uniform(0.05, 0.6))


def _serving(world: World, day: date, namespace: str, out: DayOutput) -> None:
    day0 = day_start(day)
    for entity in world.served_entities:
        rng = rng_for(world.params.seed, namespace, "serving", entity.served_entity_id, day)
        usage = out.usage.stream("serving", entity.served_entity_id)
        for hour in range(24):
            start = day0 + hour * HOUR
            if not alive_at(entity.versions, from_epoch(start)):
                continue
            requests = events.endpoint_requests(world, entity, start, namespace) if entity.tracked else []
            out.endpoint_usage.extend(requests)
            ids = {"endpoint_name": entity.endpoint_name, "endpoint_id": entity.endpoint_id}
            if entity.billing == "dbu":
                usage.add(entity.workspace.workspace_id, "model_serving", start,
                          entity.dbu_per_hour * rng.uniform(0.9, 1.1), **ids)
            elif entity.billing == "token":  # billed: the tokens of the hour's successful requests
                tokens = sum(r["input_token_count"] + r["output_token_count"]
                             for r in requests if r["status_code"] == 200)
                if tokens:
                    usage.add(entity.workspace.workspace_id, "foundation_model", start, float(tokens), **ids)


def _vector_search(world: World, day: date, out: DayOutput) -> None:
    for endpoint in world.vector_search:
        usage = out.usage.stream("vector-search", endpoint.endpoint_id)
        for hour in range(24):
            usage.add(endpoint.workspace.workspace_id, "vector_search", day_start(day) + hour * HOUR,
                      endpoint.dbu_per_hour, endpoint_name=endpoint.endpoint_name, endpoint_id=endpoint.endpoint_id)


# --- planted one-off cases ----------------------------------------------------------------------

def _cost_spike(world: World, day: date, out: DayOutput) -> None:
    """The spike workspace's cost on the spike day is about 5x what it spent otherwise that day."""
    planted = world.planted
    if day != planted.spike_day:
        return
    ws = planted.spike_workspace.workspace_id
    normal = sum(r.quantity * world.price(PROFILES[r.profile].sku, from_epoch(r.start))
                 for r in out.usage.rows if r.workspace_id == ws)
    cluster = planted.spike_cluster
    start, end = int(cluster.versions[0].change_time.timestamp()), day_start(day) + 23 * HOUR
    price = world.price(PROFILES["all_purpose_photon"].sku, from_epoch(start))
    rate = 4 * normal / price / ((end - start) / HOUR)
    spec = cluster.spec_at(from_epoch(start))
    out.usage.stream("spike", cluster.cluster_id).add_hourly(
        ws, "all_purpose_photon", start, end, rate, cluster_id=cluster.cluster_id, node_type=spec.worker_node)
    out.node_intervals.append((cluster, start, end))
    out.cluster_starts.append((cluster, start))


def _first(rows: list[UsageRow], predicate) -> UsageRow:
    matches = sorted((r for r in rows if r.record_type == "ORIGINAL" and predicate(r)),
                     key=lambda r: (r.start, r.record_id))
    if not matches:
        raise RuntimeError("a planted billing correction found no usage row to correct")
    return matches[0]


def _corrections(world: World, day: date, out: DayOutput) -> None:
    planted, rows = world.planted, out.usage.rows
    if day == planted.same_sku_correction_day:  # over-billed vector search hour, restated at half
        original = _first(rows, lambda r: r.profile == "vector_search" and r.start % DAY >= 10 * HOUR)
        out.corrections.append(correct(out.usage, original, "restated_same_sku", quantity=original.quantity * 0.5))
    if day == planted.other_sku_correction_day:  # a photon job billed at the non-photon SKU
        original = _first(rows, lambda r: r.job_id == planted.misbilled_job.job_id and r.profile == "jobs")
        out.corrections.append(correct(out.usage, original, "restated_other_sku", profile="jobs_photon"))
    if day == planted.retraction_only_day:  # a row that should never have been written
        home = world.home_workspaces[0].workspace_id
        original = _first(rows, lambda r: r.profile == "jobs_serverless" and r.job_id is None and r.workspace_id == home)
        out.corrections.append(correct(out.usage, original, "retraction_only"))


SPEND_DROP_FACTOR = 0.05  # the drop day's usage is 5 % of what the workspace would have spent


def spend_drop(world: World) -> tuple[str, date]:
    """The planted spend drop: the first home workspace (not the spike's), a weekday ten days before the end."""
    home = [w for w in world.workspaces if not w.is_remote]
    workspace = next((w for w in home if w != world.planted.spike_workspace), home[0])
    planted = world.planted
    busy = {planted.spike_day, planted.same_sku_correction_day, planted.other_sku_correction_day, planted.retraction_only_day}
    day = world.params.end_date - timedelta(days=10)
    while day.weekday() >= 5 or day in busy:  # a plain weekday, so the drop stands out against weekday spend
        day -= timedelta(days=1)
    return workspace.workspace_id, day


def _spend_drop(world: World, day: date, out: DayOutput) -> None:
    """Spend falls to a twentieth for a day (a stopped scheduler, a broken tag): the catalog's low-spend anomaly."""
    workspace_id, drop_day = spend_drop(world)
    if day != drop_day:
        return
    out.usage.rows[:] = [
        row._replace(quantity=row.quantity * SPEND_DROP_FACTOR) if row.workspace_id == workspace_id else row
        for row in out.usage.rows
    ]
