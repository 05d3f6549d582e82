"""Stage: demo data. Event rows that hang off the simulated activity: query history, serving requests,
audit events, MLflow runs and metrics, and per-minute node utilisation.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from engine.demo import catalog as C
from engine.demo.ids import DAY, HOUR, at, day_start, from_epoch, hex_id, np_rng_for, rng_for, uuid_id
from engine.demo.entities import Cluster, Experiment, ServedEntity, Warehouse, World, Workspace
from engine.demo.world import NODE_TIMELINE_CLUSTERS_PER_KIND
from engine.sources.system_tables import arrow_schema

if TYPE_CHECKING:  # pragma: no cover
    from engine.demo.simulate import DayOutput


def _ms(epoch_seconds: int, milliseconds: int = 0) -> datetime:
    return from_epoch(epoch_seconds) + timedelta(milliseconds=milliseconds)


# --- query.history ------------------------------------------------------------------------------

def query_rows(world: World, warehouse: Warehouse, hour_start: int, load: float, namespace: str) -> list[dict]:
    seed = world.params.seed
    rng = rng_for(seed, namespace, "queries", warehouse.warehouse_id, hour_start)
    ws = warehouse.workspace
    rows = []
    for i in range(max(1, round(rng.uniform(1, 6) * load))):
        person = rng.choice(ws.people)
        statement_type, text = rng.choice(C.SQL_STATEMENTS)
        status = rng.choices(("FINISHED", "FAILED", "CANCELED"), (93, 5, 2))[0]
        cached = status == "FINISHED" and statement_type == "SELECT" and rng.random() < 0.1
        client = rng.choice(C.SQL_CLIENTS)
        waiting = rng.randrange(5_000, 60_000) if rng.random() < 0.05 else 0
        compile_ms = rng.randrange(40, 900)
        execution = rng.randrange(5, 60) if cached else int(rng.lognormvariate(7.3, 1.4))
        fetch = rng.randrange(2, 400)
        total = waiting + compile_ms + execution + fetch
        start_ms = rng.randrange(0, HOUR * 1000)
        read_bytes = 0 if cached else int(rng.lognormvariate(17, 2.2))
        read_rows = read_bytes // rng.randrange(60, 400)
        statement_id = uuid_id(seed, namespace, "statement", warehouse.warehouse_id, hour_start, i)
        rows.append({
            "account_id": C.ACCOUNT_ID, "workspace_id": ws.workspace_id, "statement_id": statement_id,
            "executed_by": person.email, "session_id": uuid_id(seed, namespace, "sql-session", person.email, hour_start // DAY),
            "execution_status": status,
            "compute": {"type": "WAREHOUSE", "cluster_id": None, "warehouse_id": warehouse.warehouse_id},
            "executed_by_user_id": person.user_id, "statement_text": text, "statement_type": statement_type,
            "error_message": rng.choice(C.SQL_ERRORS) if status == "FAILED" else None,
            "client_application": client, "client_driver": "jdbc" if client in ("Tableau", "Power BI") else None,
            "total_duration_ms": total, "waiting_for_compute_duration_ms": waiting,
            "waiting_at_capacity_duration_ms": 0, "execution_duration_ms": execution,
            "compilation_duration_ms": compile_ms, "total_task_duration_ms": 0 if cached else execution * rng.randrange(1, 8),
            "result_fetch_duration_ms": fetch,
            "start_time": _ms(hour_start, start_ms), "end_time": _ms(hour_start, start_ms + total),
            "update_time": _ms(hour_start, start_ms + total + 500),
            "read_partitions": 0 if cached else rng.randrange(1, 50), "pruned_files": rng.randrange(0, 200),
            "read_files": 0 if cached else rng.randrange(1, 300), "read_rows": read_rows,
            "produced_rows": rng.randrange(0, 10_000) if statement_type == "SELECT" else 0, "read_bytes": read_bytes,
            "read_io_cache_percent": rng.randrange(0, 101), "from_result_cache": cached,
            "spilled_local_bytes": int(read_bytes * 0.2) if rng.random() < 0.03 else 0,
            "written_bytes": read_bytes // 3 if statement_type in ("INSERT", "MERGE") else 0,
            "shuffle_read_bytes": read_bytes // rng.randrange(2, 10),
            "query_source": {
                "job_info": None, "legacy_dashboard_id": None,
                "dashboard_id": hex_id(32, seed, "dashboard", ws.index, i % 3) if client == "Databricks Dashboards" else None,
                "alert_id": None, "notebook_id": None, "sql_query_id": None, "genie_space_id": None, "pipeline_info": None,
            },
            "executed_as_user_id": person.user_id, "executed_as": person.email,
            "written_rows": read_rows // 3 if statement_type in ("INSERT", "MERGE") else 0,
            "written_files": rng.randrange(1, 20) if statement_type in ("INSERT", "MERGE") else 0,
            "cache_origin_statement_id": uuid_id(seed, "cached-from", statement_id) if cached else None,
            "query_tags": None, "pruned_files_bytes": rng.randrange(0, 10**9), "read_files_bytes": read_bytes,
        })
    return rows


# --- serving.endpoint_usage ---------------------------------------------------------------------

def endpoint_requests(world: World, entity: ServedEntity, hour_start: int, namespace: str) -> list[dict]:
    seed = world.params.seed
    rng = rng_for(seed, namespace, "requests", entity.served_entity_id, hour_start)
    hour = hour_start % DAY // HOUR
    weekday = from_epoch(hour_start).weekday() < 5
    count = rng.randint(3, 14) if weekday and 8 <= hour < 20 else rng.randint(0, 3)
    requesters = [p.email for p in entity.workspace.people[:6]] + list(world.service_principals[:1])
    rows = []
    for i in range(count):
        status = rng.choices((200, 429, 500), (95, 3, 2))[0]
        input_tokens = int(rng.lognormvariate(6.0, 0.8))
        output_tokens = int(rng.lognormvariate(5.2, 0.7)) if status == 200 else 0
        rows.append({
            "workspace_id": entity.workspace.workspace_id, "account_id": C.ACCOUNT_ID,
            "client_request_id": (
                uuid_id(seed, namespace, "client-request", entity.served_entity_id, hour_start, i)
                if rng.random() < 0.3 else None
            ),
            "databricks_request_id": uuid_id(seed, namespace, "request", entity.served_entity_id, hour_start, i),
            "requester": rng.choice(requesters), "status_code": status,
            "request_time": _ms(hour_start, rng.randrange(0, HOUR * 1000)),
            "input_token_count": input_tokens, "output_token_count": output_tokens,
            "input_character_count": input_tokens * 4 + rng.randrange(0, 4),
            "output_character_count": output_tokens * 4 + (rng.randrange(0, 4) if output_tokens else 0),
            "usage_context": {"app": rng.choice(("support-bot", "doc-summarizer"))} if rng.random() < 0.5 else None,
            "request_streaming": rng.random() < 0.4, "served_entity_id": entity.served_entity_id,
        })
    return rows


# --- access.audit -------------------------------------------------------------------------------

class _AuditLog:
    """Builds audit rows with deterministic ids, one log per day."""

    def __init__(self, world: World, day: date, namespace: str):
        self.world, self.day, self.namespace = world, day, namespace
        self.rows: list[dict] = []

    def add(self, workspace: Workspace | None, when: int, email: str, display: str | None, service: str, action: str,
            params: dict[str, str], *, status: int = 200, error: str | None = None, agent: str = C.USER_AGENTS[0]) -> None:
        seed, n = self.world.params.seed, len(self.rows)
        level = "ACCOUNT_LEVEL" if workspace is None else "WORKSPACE_LEVEL"
        ip_rng = rng_for(seed, "ip", email)
        self.rows.append({
            "account_id": C.ACCOUNT_ID,
            "workspace_id": "0" if workspace is None else workspace.workspace_id,  # account-level events use "0"
            "version": "2.0", "event_time": _ms(when, n % 1000), "event_date": from_epoch(when).date(),
            "source_ip_address": f"10.{ip_rng.randrange(256)}.{ip_rng.randrange(256)}.{ip_rng.randrange(1, 255)}",
            "user_agent": agent, "session_id": uuid_id(seed, self.namespace, "session", email, self.day),
            "user_identity": {"email": email, "subject_name": None}, "service_name": service, "action_name": action,
            "request_id": uuid_id(seed, self.namespace, "audit-request", self.day, n),
            "request_params": params,
            "response": {"status_code": status, "error_message": error, "result": None if error else "{}"},
            "audit_level": level, "event_id": uuid_id(seed, self.namespace, "audit-event", self.day, n),
            "identity_metadata": {"run_by": email, "run_as": email, "acting_resource": None,
                                  "run_by_display_name": display, "run_as_display_name": display},
        })


def audit_rows(world: World, day: date, namespace: str, out: "DayOutput") -> list[dict]:
    log = _AuditLog(world, day, namespace)
    day0, weekday = day_start(day), day.weekday() < 5
    for ws in world.home_workspaces:  # workspace events are regional
        rng = rng_for(world.params.seed, namespace, "audit", ws.index, day)
        for person in ws.people:
            if rng.random() >= (0.8 if weekday else 0.1):
                continue
            login = day0 + rng.randrange(7 * HOUR, 10 * HOUR)
            sdk = rng.random() < 0.25
            agent = C.USER_AGENTS[2] if sdk else rng.choice(C.USER_AGENTS[:2])
            log.add(ws, login, person.email, person.display_name, "accounts", "tokenLogin" if sdk else "login",
                    {"user": person.email}, agent=agent)
            for _ in range(rng.randint(2, 8)):
                log.add(ws, login + rng.randrange(60, 8 * HOUR), person.email, person.display_name, "unityCatalog",
                        "getTable", {"full_name_arg": rng.choice(C.UC_TABLES), "workspace_id": ws.workspace_id},
                        agent=agent)
            if person == world.planted.denied_user and ws == world.home_workspaces[0]:
                for _ in range(rng.randint(2, 3)):  # planted: repeated denied reads of a restricted table
                    log.add(ws, login + rng.randrange(60, 6 * HOUR), person.email, person.display_name, "unityCatalog",
                            "getTable", {"full_name_arg": C.RESTRICTED_TABLE, "workspace_id": ws.workspace_id},
                            status=403, error=f"PERMISSION_DENIED: User does not have SELECT on Table '{C.RESTRICTED_TABLE}'.",
                            agent=agent)
        _change_events(world, day, ws, log)
    for cluster, start in out.cluster_starts:
        if not cluster.workspace.is_remote:
            log.add(cluster.workspace, start, cluster.owner, None, "clusters", "start", {"cluster_id": cluster.cluster_id})
    for notebook, hour_start, commands in out.notebook_hours:
        rng = rng_for(world.params.seed, namespace, "notebook-audit", notebook.notebook_id, hour_start)
        for _ in range(commands):
            log.add(notebook.workspace, hour_start + rng.randrange(HOUR), notebook.user.email, notebook.user.display_name,
                    "notebook", "runCommand", {"notebookId": notebook.notebook_id, "commandLanguage": "python"})
    _account_events(world, day, namespace, log)
    return log.rows


def _change_events(world: World, day: date, ws: Workspace, log: _AuditLog) -> None:
    """jobs/clusters create, update and delete events for the SCD2 changes made that day."""
    for job, version, first in _changed_on(world.jobs, ws, day):
        action = "delete" if version.delete_time else ("create" if first else "update")
        log.add(ws, int(version.change_time.timestamp()), job.creator.email, job.creator.display_name, "jobs",
                action, {"job_id": job.job_id, "name": str(version.attrs["name"])}, agent=C.USER_AGENTS[3])
    for cluster, version, first in _changed_on(world.clusters, ws, day):
        action = "permanentDelete" if version.delete_time else ("create" if first else "edit")
        log.add(ws, int(version.change_time.timestamp()), cluster.owner, None, "clusters", action,
                {"cluster_id": cluster.cluster_id, "cluster_name": str(version.attrs["name"])})


def _changed_on(entities, ws: Workspace, day: date):
    """(entity, version, is its first version) for each SCD2 version of `ws`'s entities changed on `day`."""
    for entity in entities:
        if entity.workspace == ws:
            for i, version in enumerate(entity.versions):
                if version.change_time.date() == day:
                    yield entity, version, i == 0


def _account_events(world: World, day: date, namespace: str, log: _AuditLog) -> None:
    rng = rng_for(world.params.seed, namespace, "account-audit", day)
    admin = world.workspaces[0].people[0]
    if day.weekday() < 5:
        for _ in range(rng.randint(1, 2)):
            log.add(None, day_start(day) + rng.randrange(8 * HOUR, 17 * HOUR), admin.email, admin.display_name,
                    "accounts", "login", {"user": admin.email})
    if rng.random() < 0.2:
        log.add(None, day_start(day) + rng.randrange(8 * HOUR, 17 * HOUR), admin.email, admin.display_name,
                "accounts", "addPrincipalToGroup", {"group_name": rng.choice(C.TEAMS)})
    if rng.random() < 0.15:  # a failed account-console login
        log.add(None, day_start(day) + rng.randrange(DAY), "unknown@example.com", None, "accounts", "login",
                {"user": "unknown@example.com"}, status=401, error="Invalid credentials")


# --- mlflow -------------------------------------------------------------------------------------

def mlflow_rows(world: World, day: date, namespace: str, *, snapshot_end: bool) -> tuple[list[dict], list[dict]]:
    """(runs_latest rows, run_metrics_history rows) of the runs started that day.

    With `snapshot_end`, runs are seen as of the end of the window: on its last day one planted
    run is still RUNNING (no end_time, metrics only up to the snapshot).
    """
    params, runs, metrics = world.params, [], []
    snapshot = day_start(params.end_date)
    last_day = snapshot_end and day == params.end_date - timedelta(days=1)
    for experiment in world.experiments:
        if experiment.create_time > at(day) or (experiment.delete_time and experiment.delete_time <= at(day)):
            continue
        rng = rng_for(params.seed, namespace, "mlflow", experiment.experiment_id, day)
        starts = [day_start(day) + rng.randrange(8 * HOUR, 20 * HOUR) for _ in range(rng.randint(0, 3 if day.weekday() < 5 else 1))]
        durations = [rng.randrange(5 * 60, 90 * 60) for _ in starts]
        if last_day and experiment == world.experiments[0]:
            starts.append(day_start(day) + 22 * HOUR + 30 * 60)
            durations.append(3 * HOUR)  # runs past the snapshot: RUNNING
        for i, (start, duration) in enumerate(zip(starts, durations)):
            run, run_metrics = _mlflow_run(world, experiment, day, i, start, duration, rng, namespace,
                                           snapshot if snapshot_end else None)
            runs.append(run)
            metrics.extend(run_metrics)
    return runs, metrics


def _mlflow_run(world, experiment: Experiment, day, i, start, duration, rng, namespace, snapshot):
    seed = world.params.seed
    run_id = hex_id(32, seed, namespace, "mlflow-run", experiment.experiment_id, day, i)
    running = snapshot is not None and start + duration > snapshot
    status = "RUNNING" if running else rng.choices(("FINISHED", "FAILED", "KILLED"), (80, 12, 8))[0]
    steps = rng.randint(5, 20)
    done = steps if status in ("FINISHED", "RUNNING") else rng.randint(1, steps)
    values: dict[str, list[float]] = {}
    metrics = []
    for step in range(done):
        metric_time = start + (step + 1) * duration // steps
        if running and metric_time >= snapshot:
            break
        progress = (step + 1) / steps
        for name in C.ML_METRICS:
            value = {"loss": 1.2 * math.exp(-2.5 * progress), "val_loss": 1.3 * math.exp(-2.0 * progress) + 0.05,
                     "accuracy": 0.55 + 0.4 * (1 - math.exp(-3 * progress))}[name] + rng.uniform(-0.02, 0.02)
            values.setdefault(name, []).append(round(value, 6))
            metrics.append({
                "account_id": C.ACCOUNT_ID, "insert_time": from_epoch(metric_time + rng.randrange(1, 30)),
                "record_id": uuid_id(seed, namespace, "metric", run_id, name, step),
                "workspace_id": experiment.workspace.workspace_id, "experiment_id": experiment.experiment_id,
                "run_id": run_id, "metric_name": name, "metric_time": from_epoch(metric_time), "metric_step": step,
                "metric_value": round(value, 6),
            })
    end = None if running else start + duration
    run = {
        "account_id": C.ACCOUNT_ID, "update_time": from_epoch(end if end else snapshot - 60), "delete_time": None,
        "workspace_id": experiment.workspace.workspace_id, "run_id": run_id, "experiment_id": experiment.experiment_id,
        "created_by": experiment.owner.email, "start_time": from_epoch(start), "end_time": from_epoch(end) if end else None,
        "run_name": f"{rng.choice(('brave', 'calm', 'eager', 'quiet', 'bold'))}-{rng.choice(('otter', 'lynx', 'heron', 'moth'))}-{i}",
        "status": status,
        "params": {"learning_rate": str(rng.choice((0.001, 0.01, 0.1))), "max_depth": str(rng.randint(3, 10)),
                   "n_estimators": str(rng.choice((100, 200, 500)))},
        "tags": {"mlflow.user": experiment.owner.email, "mlflow.source.type": "NOTEBOOK"},
        "aggregated_metrics": [
            {"metric_name": name, "min_value": min(v), "max_value": max(v), "latest_value": v[-1]}
            for name, v in values.items()
        ],
    }
    return run, metrics


# --- compute.node_timeline ----------------------------------------------------------------------

NODE_TIMELINE = "system.compute.node_timeline"


def _sampled(cluster: Cluster) -> bool:
    """Keep the table bounded: every job cluster, the first few all-purpose/pipeline clusters."""
    if cluster.workspace.is_remote:
        return False
    return cluster.kind in ("job", "spike") or cluster.index < NODE_TIMELINE_CLUSTERS_PER_KIND


def node_timeline(world: World, namespace: str, intervals: list[tuple[Cluster, int, int]]) -> pa.Table:
    """One row per instance and minute while a cluster is up (driver and workers separately)."""
    schema = arrow_schema(NODE_TIMELINE)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "cluster", "instance", "minute", "driver", "cpu_user", "cpu_system", "cpu_wait", "mem", "sent", "received",
        "disk_root", "disk_local", "node_type", "workspace")}
    for cluster, start, end in intervals:
        if not _sampled(cluster) or end <= start:
            continue
        spec = cluster.spec_at(from_epoch(start))
        minutes = np.arange(start // 60, -(-end // 60), dtype=np.int64) * 60
        for instance in range(1 + spec.workers):
            rng = np_rng_for(world.params.seed, namespace, "node", cluster.cluster_id, start, instance)
            n = len(minutes)
            if cluster.over_provisioned:  # planted: CPU about 5-10 % all day
                user, system = rng.normal(5.5, 1.2, n).clip(1, 8), rng.normal(1.6, 0.4, n).clip(0.5, 2.5)
            else:
                user, system = rng.normal(rng.uniform(40, 62), 9, n).clip(20, 88), rng.normal(7, 2, n).clip(2, 12)
            instance_id = "i-" + hex_id(17, world.params.seed, namespace, "instance", cluster.cluster_id, start, instance)
            node_type = spec.driver_node if instance == 0 else spec.worker_node
            parts["cluster"].append(np.full(n, cluster.cluster_id, dtype=object))
            parts["instance"].append(np.full(n, instance_id, dtype=object))
            parts["minute"].append(minutes)
            parts["driver"].append(np.full(n, instance == 0))
            parts["cpu_user"].append(user.round(2))
            parts["cpu_system"].append(system.round(2))
            parts["cpu_wait"].append(rng.exponential(0.8, n).clip(0, 15).round(2))
            # Planted: the over-provisioned cluster's memory is mostly idle too (about 25 %).
            memory = rng.normal(24, 5, n).clip(8, 45) if cluster.over_provisioned else rng.normal(62, 8, n).clip(20, 97)
            parts["mem"].append(memory.round(2))
            parts["sent"].append(rng.lognormal(16, 1.0, n).astype(np.int64))
            parts["received"].append(rng.lognormal(17, 1.0, n).astype(np.int64))
            parts["disk_root"].append(np.full(n, 12_000_000_000, dtype=np.int64) - rng.integers(0, 10**9, n))
            parts["disk_local"].append(np.full(n, 450_000_000_000, dtype=np.int64) - rng.integers(0, 10**11, n))
            parts["node_type"].append(np.full(n, node_type, dtype=object))
            parts["workspace"].append(np.full(n, cluster.workspace.workspace_id, dtype=object))
    if not parts["minute"]:
        return schema.empty_table()
    col = {k: np.concatenate(v) for k, v in parts.items()}
    n = len(col["minute"])
    timestamp = schema.field("start_time").type
    disk_values = np.empty(2 * n, dtype=np.int64)
    disk_values[0::2], disk_values[1::2] = col["disk_root"], col["disk_local"]
    disk = pa.MapArray.from_arrays(
        pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
        pa.array(np.tile(np.array(["/", "/local_disk0"], dtype=object), n), pa.string()),
        pa.array(disk_values, pa.int64()),
        type=schema.field("disk_free_bytes_per_mount_point").type,
    )
    columns = {
        "account_id": pa.repeat(pa.scalar(C.ACCOUNT_ID), n),
        "workspace_id": pa.array(col["workspace"], pa.string()),
        "cluster_id": pa.array(col["cluster"], pa.string()),
        "instance_id": pa.array(col["instance"], pa.string()),
        "start_time": pa.array(col["minute"] * 1_000_000).cast(timestamp),
        "end_time": pa.array((col["minute"] + 60) * 1_000_000).cast(timestamp),
        "driver": pa.array(col["driver"], pa.bool_()),
        "cpu_user_percent": pa.array(col["cpu_user"], pa.float64()),
        "cpu_system_percent": pa.array(col["cpu_system"], pa.float64()),
        "cpu_wait_percent": pa.array(col["cpu_wait"], pa.float64()),
        "mem_used_percent": pa.array(col["mem"], pa.float64()),
        "mem_swap_percent": pa.repeat(pa.scalar(0.0), n),
        "network_sent_bytes": pa.array(col["sent"], pa.int64()),
        "network_received_bytes": pa.array(col["received"], pa.int64()),
        "disk_free_bytes_per_mount_point": disk,
        "node_type": pa.array(col["node_type"], pa.string()),
    }
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
