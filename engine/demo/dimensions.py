"""Stage: demo data. Rows of the dimension tables (SCD2 histories, prices, workspaces, node types).

Regional tables only hold the workspaces of the home region; the workspace in the other region
appears only in the global tables (billing.usage, billing.list_prices, access.workspaces_latest).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from engine.demo import catalog as C
from engine.demo.entities import Cluster, Job, World
from engine.demo.world import LAKEFLOW_FULL_COLUMNS_SINCE


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def workspaces_rows(world: World) -> list[dict]:
    return [
        {"account_id": C.ACCOUNT_ID, "workspace_id": ws.workspace_id, "workspace_name": ws.name,
         "workspace_url": ws.url, "create_time": ws.create_time.replace(microsecond=0), "status": "RUNNING"}
        for ws in world.workspaces
    ]


def list_price_rows(world: World) -> list[dict]:
    rows = []
    for price in world.prices:
        effective = price.promotional_price if price.promotional_price is not None else price.price
        rows.append({
            "account_id": C.ACCOUNT_ID, "price_start_time": price.start, "price_end_time": price.end,
            "sku_name": price.sku.name, "cloud": C.CLOUD, "currency_code": C.CURRENCY, "usage_unit": price.sku.usage_unit,
            "pricing": {
                "default": _decimal(price.price),
                "promotional": {"default": _decimal(price.promotional_price)} if price.promotional_price is not None else None,
                "effective_list": {"default": _decimal(effective)},
            },
        })
    return rows


def node_type_rows() -> list[dict]:
    return [
        {"account_id": C.ACCOUNT_ID, "node_type": n.name, "core_count": n.cores, "memory_mb": n.memory_mb,
         "gpu_count": n.gpus}
        for n in C.NODE_TYPES
    ]


def _principal_id(job: Job) -> str:
    """lakeflow.jobs.run_as is an id: the user id of a person, the application id of a service principal."""
    person = next((p for p in job.workspace.people if p.email == job.run_as), None)
    return person.user_id if person else job.run_as


def _cron(job: Job) -> str:
    return f"0 {job.run_minute} {','.join(map(str, job.run_hours))} * * ?"


def job_rows(world: World) -> list[dict]:
    rows = []
    for job in _home(world.jobs):
        for version in job.versions:
            attrs = version.attrs
            full = version.change_time >= LAKEFLOW_FULL_COLUMNS_SINCE  # NULL era before early Dec 2025
            scheduled = job.run_type == "JOB_RUN"
            rows.append({
                "account_id": C.ACCOUNT_ID, "workspace_id": job.workspace.workspace_id, "job_id": job.job_id,
                "name": attrs["name"], "creator_id": job.creator.user_id, "tags": dict(attrs["tags"]),
                "run_as": _principal_id(job), "change_time": version.change_time, "delete_time": version.delete_time,
                "description": attrs["description"],
                "trigger": {"file_arrival": None, "periodic": None, "continuous": None, "table_update": None,
                            "schedule": {"quartz_cron_expression": _cron(job), "timezone_id": "UTC"}}
                if full and scheduled else None,
                "trigger_type": ("CRON" if scheduled else None) if full else None,
                "run_as_user_name": job.run_as if full else None,
                "creator_user_name": job.creator.email if full else None,
                "paused": attrs["paused"] if full else None,
                "timeout_seconds": attrs["timeout_seconds"] if full else None,
                "health_rules": [{"metric": "RUN_DURATION_SECONDS", "operator": "GREATER_THAN", "value": 3 * 3600}]
                if full and job.role == "long_running" else ([] if full else None),
                "deployment": {"kind": "BUNDLE", "metadata_file_path": f"/Workspace/.bundle/{attrs['name']}/prod/state/metadata.json"}
                if full and job.index % 3 == 0 else None,
                "create_time": job.create_time if full else None,
            })
    return rows


def job_task_rows(world: World) -> list[dict]:
    rows = []
    for job in _home(world.jobs):
        for task in job.tasks:
            versions = [(task.created, None)] + ([(task.deleted, task.deleted)] if task.deleted else [])
            for change_time, delete_time in versions:
                full = change_time >= LAKEFLOW_FULL_COLUMNS_SINCE
                rows.append({
                    "account_id": C.ACCOUNT_ID, "workspace_id": job.workspace.workspace_id, "job_id": job.job_id,
                    "task_key": task.key, "depends_on_keys": list(task.depends_on), "change_time": change_time,
                    "delete_time": delete_time, "timeout_seconds": task.timeout_seconds if full else None,
                    "health_rules": [] if full else None,
                })
    return rows


def pipeline_rows(world: World) -> list[dict]:
    rows = []
    for pipeline in _home(world.pipelines):
        for version in pipeline.versions:
            rows.append({
                "account_id": C.ACCOUNT_ID, "workspace_id": pipeline.workspace.workspace_id,
                "pipeline_id": pipeline.pipeline_id, "pipeline_type": "ETL_PIPELINE", "name": version.attrs["name"],
                "created_by": pipeline.created_by, "run_as": pipeline.run_as, "tags": dict(version.attrs["tags"]),
                "settings": {"photon": False, "development": version.attrs["development"], "continuous": pipeline.continuous,
                             "serverless": False, "edition": pipeline.edition, "channel": "CURRENT"},
                "configuration": {"source_path": f"/Volumes/main/raw/{version.attrs['name']}"},
                "change_time": version.change_time, "delete_time": version.delete_time,
            })
    return rows


def cluster_rows(world: World, job_clusters: Iterable[Cluster] = ()) -> list[dict]:
    rows = []
    for cluster in _home(list(world.clusters) + list(job_clusters)):
        created = cluster.versions[0].change_time
        for version in cluster.versions:
            spec = version.attrs["spec"]
            rows.append({
                "account_id": C.ACCOUNT_ID, "workspace_id": cluster.workspace.workspace_id,
                "cluster_id": cluster.cluster_id, "cluster_name": version.attrs["name"], "owned_by": cluster.owner,
                "create_time": created, "delete_time": version.delete_time,
                "driver_node_type": spec.driver_node, "worker_node_type": spec.worker_node,
                "worker_count": None if spec.autoscale else spec.workers,
                "min_autoscale_workers": spec.autoscale[0] if spec.autoscale else None,
                "max_autoscale_workers": spec.autoscale[1] if spec.autoscale else None,
                "auto_termination_minutes": version.attrs["auto_termination_minutes"],
                "enable_elastic_disk": True, "tags": dict(version.attrs["tags"]), "cluster_source": cluster.source,
                "init_scripts": [],
                "aws_attributes": {"first_on_demand": 1, "availability": "SPOT_WITH_FALLBACK", "zone_id": "us-west-2a"},
                "azure_attributes": None, "gcp_attributes": None,
                "driver_instance_pool_id": None, "worker_instance_pool_id": None, "dbr_version": spec.dbr_version,
                "change_time": version.change_time, "change_date": version.change_time.date(),
                "data_security_mode": "USER_ISOLATION" if cluster.kind == "all_purpose" else "SINGLE_USER",
                "policy_id": None,
            })
    return rows


def warehouse_rows(world: World) -> list[dict]:
    rows = []
    for warehouse in _home(world.warehouses):
        for version in warehouse.versions:
            a = version.attrs
            rows.append({
                "warehouse_id": warehouse.warehouse_id, "workspace_id": warehouse.workspace.workspace_id,
                "account_id": C.ACCOUNT_ID, "warehouse_name": a["name"], "warehouse_type": a["type"],
                "warehouse_channel": a["channel"], "warehouse_size": a["size"], "min_clusters": a["min_clusters"],
                "max_clusters": a["max_clusters"], "auto_stop_minutes": a["auto_stop_minutes"], "tags": dict(a["tags"]),
                "change_time": version.change_time, "delete_time": version.delete_time,
            })
    return rows


def served_entity_rows(world: World) -> list[dict]:
    rows = []
    for entity in _home(world.served_entities):
        for version in entity.versions:
            a = version.attrs
            custom = entity.entity_type == "CUSTOM_MODEL"
            rows.append({
                "served_entity_id": entity.served_entity_id, "account_id": C.ACCOUNT_ID,
                "workspace_id": entity.workspace.workspace_id, "created_by": entity.created_by,
                "endpoint_name": entity.endpoint_name, "endpoint_id": entity.endpoint_id,
                "served_entity_name": a["served_entity_name"], "entity_type": entity.entity_type,
                "entity_name": a["entity_name"], "entity_version": a["entity_version"],
                "endpoint_config_version": a["config_version"], "task": a["task"],
                "external_model_config": {"provider": a["provider"]} if entity.entity_type == "EXTERNAL_MODEL" else None,
                "foundation_model_config": None,  # pay-per-token: no provisioned throughput
                "custom_model_config": {"min_concurrency": a["min_concurrency"], "max_concurrency": a["max_concurrency"],
                                        "compute_type": "CPU"} if custom else None,
                "feature_spec_config": None,
                "change_time": version.change_time, "endpoint_delete_time": version.delete_time,
            })
    return rows


def experiment_rows(world: World) -> list[dict]:
    return [
        {"account_id": C.ACCOUNT_ID, "update_time": e.delete_time or e.create_time, "delete_time": e.delete_time,
         "experiment_id": e.experiment_id, "workspace_id": e.workspace.workspace_id, "name": e.name,
         "create_time": e.create_time}
        for e in _home(world.experiments)
    ]


def _home(entities: Iterable) -> list:
    return [e for e in entities if not e.workspace.is_remote]
