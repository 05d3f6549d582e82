"""Stage: sources. The one registry of Databricks system-table schemas the engine reads.

Each table's columns are written once, as a Spark DDL column list taken from
/work/shared/reference/system-tables.md (Appendix A and §2; where live `DESCRIBE` output and the
docs disagree, DESCRIBE wins). The Spark schema and the Arrow schema are both derived from that
string by a small parser here, so there is exactly one source of truth and this module imports
without pyspark or pyarrow (they are imported inside the functions that need them).

Local layout of a system-table export: ``<root>/<schema>/<table>/*.parquet`` (see docs/SOURCES.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from engine.names import closest as nearest
from engine.names import suggestion

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow
    from pyspark.sql.types import DataType as SparkDataType, StructType

    from engine.sql.types import ColumnType, Field


@dataclass(frozen=True)
class SystemTable:
    """One system table: its full name, column DDL and the facts readers need about it."""

    name: str  # e.g. "system.billing.usage"
    schema: str  # system schema, e.g. "billing"
    table: str  # e.g. "usage"
    ddl: str  # Spark DDL column list: "account_id STRING, workspace_id STRING, ..."
    streamable: bool  # Databricks supports streaming reads (reference §1)
    retention_days: int | None  # free retention; None = indefinite
    scd2_keys: tuple[str, ...] = ()  # entity key of a slowly-changing (one row per change) table
    sequence_column: str | None = None  # orders the versions of an SCD2 entity
    delete_column: str | None = None  # non-null on the row that records a deletion
    time_column: str | None = None  # when an event happened: what retention of a copy is measured on


# --- column lists ------------------------------------------------------------------------------
# Struct field lists marked "partial" are open-ended upstream (Databricks appends fields).

_USAGE_METADATA = (
    "STRUCT<cluster_id:STRING, job_id:STRING, warehouse_id:STRING, instance_pool_id:STRING, node_type:STRING, "
    "job_run_id:STRING, notebook_id:STRING, dlt_pipeline_id:STRING, endpoint_name:STRING, endpoint_id:STRING, "
    "dlt_update_id:STRING, dlt_maintenance_id:STRING, run_name:STRING, job_name:STRING, notebook_path:STRING, "
    "central_clean_room_id:STRING, source_region:STRING, destination_region:STRING, app_id:STRING, app_name:STRING, "
    "metastore_id:STRING, private_endpoint_name:STRING, storage_api_type:STRING, budget_policy_id:STRING, "
    "ai_runtime_pool_id:STRING, ai_runtime_workload_id:STRING, uc_table_catalog:STRING, uc_table_schema:STRING, "
    "uc_table_name:STRING, database_instance_id:STRING, sharing_materialization_id:STRING, usage_policy_id:STRING, "
    "agent_bricks_id:STRING, base_environment_id:STRING>"  # partial: 50 fields upstream
)
_PRODUCT_FEATURES = (
    "STRUCT<jobs_tier:STRING, sql_tier:STRING, dlt_tier:STRING, is_serverless:BOOLEAN, is_photon:BOOLEAN, "
    "serving_type:STRING, networking:STRUCT<connectivity_type:STRING>, ai_runtime:STRUCT<compute_type:STRING>, "
    "model_serving:STRUCT<offering_type:STRING>, ai_gateway:STRUCT<feature_type:STRING>, performance_target:STRING, "
    "serverless_gpu:STRUCT<workload_type:STRING>, agent_bricks:STRUCT<problem_type:STRING, workload_type:STRING>, "
    "ai_functions:STRUCT<ai_function:STRING>, apps:STRUCT<compute_size:STRING>, "
    "lakeflow_connect:STRUCT<task_type:STRING, zerobus_request_type:STRING>, "
    "lakebase:STRUCT<storage_type:STRING, compute_type:STRING>, "
    "ai_bi_genie:STRUCT<capability_type:STRING, offering_type:STRING>, genie:STRUCT<offering_type:STRING>>"
)
_HEALTH_RULES = "ARRAY<STRUCT<metric:STRING, operator:STRING, value:BIGINT>>"
_RUN_COMPUTE = "ARRAY<STRUCT<type:STRING, cluster_id:STRING, warehouse_id:STRING>>"

_DDL: dict[str, str] = {
    "system.billing.usage": (
        "account_id STRING, workspace_id STRING, record_id STRING, sku_name STRING, cloud STRING, "
        "usage_start_time TIMESTAMP, usage_end_time TIMESTAMP, usage_date DATE, custom_tags MAP<STRING,STRING>, "
        f"usage_unit STRING, usage_quantity DECIMAL(38,18), usage_metadata {_USAGE_METADATA}, "
        "identity_metadata STRUCT<run_as:STRING, created_by:STRING, owned_by:STRING, run_by:STRING>, "
        "record_type STRING, ingestion_date DATE, billing_origin_product STRING, "
        f"product_features {_PRODUCT_FEATURES}, usage_type STRING"
    ),
    "system.billing.list_prices": (
        "account_id STRING, price_start_time TIMESTAMP, price_end_time TIMESTAMP, sku_name STRING, cloud STRING, "
        "currency_code STRING, usage_unit STRING, "
        "pricing STRUCT<`default`:DECIMAL(38,18), promotional:STRUCT<`default`:DECIMAL(38,18)>, "
        "effective_list:STRUCT<`default`:DECIMAL(38,18)>>"
    ),
    "system.lakeflow.jobs": (
        "account_id STRING, workspace_id STRING, job_id STRING, name STRING, creator_id STRING, "
        "tags MAP<STRING,STRING>, run_as STRING, change_time TIMESTAMP, delete_time TIMESTAMP, description STRING, "
        "`trigger` STRUCT<file_arrival:STRUCT<url:STRING, min_time_between_triggers_seconds:INT, "
        "wait_after_last_change_seconds:INT>, periodic:STRUCT<`interval`:INT, units:STRING>, "
        "continuous:STRUCT<enabled:BOOLEAN>, table_update:STRUCT<table_names:ARRAY<STRING>, "
        "min_time_between_triggers_seconds:BIGINT, wait_after_last_change_seconds:BIGINT, `condition`:STRING>, "
        "schedule:STRUCT<quartz_cron_expression:STRING, timezone_id:STRING>>, "
        "trigger_type STRING, run_as_user_name STRING, creator_user_name STRING, paused BOOLEAN, "
        f"timeout_seconds BIGINT, health_rules {_HEALTH_RULES}, "
        "deployment STRUCT<kind:STRING, metadata_file_path:STRING>, create_time TIMESTAMP"
    ),
    "system.lakeflow.job_tasks": (
        "account_id STRING, workspace_id STRING, job_id STRING, task_key STRING, depends_on_keys ARRAY<STRING>, "
        "change_time TIMESTAMP, delete_time TIMESTAMP, timeout_seconds BIGINT, "
        f"health_rules {_HEALTH_RULES}"  # element type assumed the same as on jobs
    ),
    "system.lakeflow.job_run_timeline": (
        "account_id STRING, workspace_id STRING, job_id STRING, run_id STRING, period_start_time TIMESTAMP, "
        "period_end_time TIMESTAMP, trigger_type STRING, result_state STRING, run_type STRING, run_name STRING, "
        "compute_ids ARRAY<STRING>, termination_code STRING, "
        "job_parameters MAP<STRING,MAP<STRING,STRING>>, "  # as DESC reports it (sic)
        f"source_task_run_id STRING, root_task_run_id STRING, compute {_RUN_COMPUTE}, termination_type STRING, "
        "setup_duration_seconds BIGINT, queue_duration_seconds BIGINT, run_duration_seconds BIGINT, "
        "cleanup_duration_seconds BIGINT, execution_duration_seconds BIGINT"
    ),
    "system.lakeflow.job_task_run_timeline": (
        "account_id STRING, workspace_id STRING, job_id STRING, run_id STRING, job_run_id STRING, "
        "parent_run_id STRING, period_start_time TIMESTAMP, period_end_time TIMESTAMP, task_key STRING, "
        "compute_ids ARRAY<STRING>, result_state STRING, termination_code STRING, "
        f"compute {_RUN_COMPUTE}, "  # assumed the same as on job_run_timeline
        "termination_type STRING, task_parameters MAP<STRING,STRING>, "  # map value type assumed
        "setup_duration_seconds BIGINT, cleanup_duration_seconds BIGINT, execution_duration_seconds BIGINT"
    ),
    # Columns confirmed by queries against the live table; `tags` and `configuration` are plausible
    # but unverified (reference §2.7), and the column order is not documented.
    "system.lakeflow.pipelines": (
        "account_id STRING, workspace_id STRING, pipeline_id STRING, pipeline_type STRING, name STRING, "
        "created_by STRING, run_as STRING, tags MAP<STRING,STRING>, "
        "settings STRUCT<photon:BOOLEAN, development:BOOLEAN, continuous:BOOLEAN, serverless:BOOLEAN, "
        "edition:STRING, channel:STRING>, configuration MAP<STRING,STRING>, "
        "change_time TIMESTAMP, delete_time TIMESTAMP"
    ),
    "system.compute.clusters": (
        "account_id STRING, workspace_id STRING, cluster_id STRING, cluster_name STRING, owned_by STRING, "
        "create_time TIMESTAMP, delete_time TIMESTAMP, driver_node_type STRING, worker_node_type STRING, "
        "worker_count BIGINT, min_autoscale_workers BIGINT, max_autoscale_workers BIGINT, "
        "auto_termination_minutes BIGINT, enable_elastic_disk BOOLEAN, tags MAP<STRING,STRING>, "
        "cluster_source STRING, init_scripts ARRAY<STRING>, "
        # the three cloud attribute structs are partial and their field lists assumed
        "aws_attributes STRUCT<first_on_demand:INT, availability:STRING, zone_id:STRING>, "
        "azure_attributes STRUCT<first_on_demand:INT, availability:STRING, spot_bid_max_price:DOUBLE>, "
        "gcp_attributes STRUCT<first_on_demand:INT, availability:STRING, zone_id:STRING>, "
        "driver_instance_pool_id STRING, worker_instance_pool_id STRING, dbr_version STRING, "
        "change_time TIMESTAMP, change_date DATE, "
        "data_security_mode STRING, policy_id STRING"  # newer columns, unverified against the docs
    ),
    "system.compute.node_types": (
        "account_id STRING, node_type STRING, core_count DOUBLE, memory_mb BIGINT, gpu_count BIGINT"
    ),
    "system.compute.node_timeline": (
        "account_id STRING, workspace_id STRING, cluster_id STRING, instance_id STRING, start_time TIMESTAMP, "
        "end_time TIMESTAMP, driver BOOLEAN, cpu_user_percent DOUBLE, cpu_system_percent DOUBLE, "
        "cpu_wait_percent DOUBLE, mem_used_percent DOUBLE, mem_swap_percent DOUBLE, network_sent_bytes BIGINT, "
        "network_received_bytes BIGINT, disk_free_bytes_per_mount_point MAP<STRING,BIGINT>, node_type STRING"
    ),
    "system.compute.warehouses": (
        "warehouse_id STRING, workspace_id STRING, account_id STRING, warehouse_name STRING, "
        "warehouse_type STRING, warehouse_channel STRING, warehouse_size STRING, min_clusters INT, "
        "max_clusters INT, auto_stop_minutes INT, tags MAP<STRING,STRING>, change_time TIMESTAMP, "
        "delete_time TIMESTAMP"
    ),
    "system.access.audit": (
        "account_id STRING, workspace_id STRING, version STRING, event_time TIMESTAMP, event_date DATE, "
        "source_ip_address STRING, user_agent STRING, session_id STRING, "
        "user_identity STRUCT<email:STRING, subject_name:STRING>, service_name STRING, action_name STRING, "
        "request_id STRING, request_params MAP<STRING,STRING>, "
        "response STRUCT<status_code:INT, error_message:STRING, result:STRING>, audit_level STRING, "
        "event_id STRING, identity_metadata STRUCT<run_by:STRING, run_as:STRING, acting_resource:STRING, "
        "run_by_display_name:STRING, run_as_display_name:STRING>"
    ),
    "system.access.workspaces_latest": (
        "account_id STRING, workspace_id STRING, workspace_name STRING, workspace_url STRING, "
        "create_time TIMESTAMP, status STRING"
    ),
    # query_parameters (a very large struct in DESC) is left out on purpose: nothing here reads it,
    # and a reader given this schema reads it as absent.
    "system.query.history": (
        "account_id STRING, workspace_id STRING, statement_id STRING, executed_by STRING, session_id STRING, "
        "execution_status STRING, compute STRUCT<type:STRING, cluster_id:STRING, warehouse_id:STRING>, "
        "executed_by_user_id STRING, statement_text STRING, statement_type STRING, error_message STRING, "
        "client_application STRING, client_driver STRING, total_duration_ms BIGINT, "
        "waiting_for_compute_duration_ms BIGINT, waiting_at_capacity_duration_ms BIGINT, "
        "execution_duration_ms BIGINT, compilation_duration_ms BIGINT, total_task_duration_ms BIGINT, "
        "result_fetch_duration_ms BIGINT, start_time TIMESTAMP, end_time TIMESTAMP, update_time TIMESTAMP, "
        "read_partitions BIGINT, pruned_files BIGINT, read_files BIGINT, read_rows BIGINT, produced_rows BIGINT, "
        "read_bytes BIGINT, read_io_cache_percent TINYINT, from_result_cache BOOLEAN, spilled_local_bytes BIGINT, "
        "written_bytes BIGINT, shuffle_read_bytes BIGINT, "
        "query_source STRUCT<job_info:STRUCT<job_id:STRING, job_run_id:STRING, job_task_run_id:STRING>, "
        "legacy_dashboard_id:STRING, dashboard_id:STRING, alert_id:STRING, notebook_id:STRING, "
        "sql_query_id:STRING, genie_space_id:STRING, pipeline_info:STRUCT<pipeline_id:STRING, update_id:STRING>>, "
        "executed_as_user_id STRING, executed_as STRING, written_rows BIGINT, written_files BIGINT, "
        "cache_origin_statement_id STRING, query_tags MAP<STRING,STRING>, pruned_files_bytes BIGINT, "
        "read_files_bytes BIGINT"
    ),
    "system.serving.served_entities": (
        "served_entity_id STRING, account_id STRING, workspace_id STRING, created_by STRING, "
        "endpoint_name STRING, endpoint_id STRING, served_entity_name STRING, entity_type STRING, "
        "entity_name STRING, entity_version STRING, endpoint_config_version INT, task STRING, "
        "external_model_config STRUCT<provider:STRING>, "
        "foundation_model_config STRUCT<min_provisioned_throughput:BIGINT, max_provisioned_throughput:BIGINT>, "
        "custom_model_config STRUCT<min_concurrency:INT, max_concurrency:INT, compute_type:STRING>, "
        "feature_spec_config STRUCT<min_concurrency:INT, max_concurrency:INT, compute_type:STRING>, "
        "change_time TIMESTAMP, endpoint_delete_time TIMESTAMP"
    ),
    "system.serving.endpoint_usage": (
        "workspace_id STRING, account_id STRING, client_request_id STRING, databricks_request_id STRING, "
        "requester STRING, status_code INT, request_time TIMESTAMP, input_token_count BIGINT, "
        "output_token_count BIGINT, input_character_count BIGINT, output_character_count BIGINT, "
        "usage_context MAP<STRING,STRING>, request_streaming BOOLEAN, served_entity_id STRING"
    ),
    "system.mlflow.experiments_latest": (
        "account_id STRING, update_time TIMESTAMP, delete_time TIMESTAMP, experiment_id STRING, "
        "workspace_id STRING, name STRING, create_time TIMESTAMP"
    ),
    "system.mlflow.runs_latest": (
        "account_id STRING, update_time TIMESTAMP, delete_time TIMESTAMP, workspace_id STRING, run_id STRING, "
        "experiment_id STRING, created_by STRING, start_time TIMESTAMP, end_time TIMESTAMP, run_name STRING, "
        "status STRING, params MAP<STRING,STRING>, tags MAP<STRING,STRING>, "
        # only metric_name is confirmed; min_value/max_value/latest_value are unverified names
        "aggregated_metrics ARRAY<STRUCT<metric_name:STRING, min_value:DOUBLE, max_value:DOUBLE, "
        "latest_value:DOUBLE>>"
    ),
    # insert_time, record_id and metric_step come from third-party DDL (unverified names).
    "system.mlflow.run_metrics_history": (
        "account_id STRING, insert_time TIMESTAMP, record_id STRING, workspace_id STRING, experiment_id STRING, "
        "run_id STRING, metric_name STRING, metric_time TIMESTAMP, metric_step BIGINT, metric_value DOUBLE"
    ),
}


def _table(
    name: str,
    *,
    streamable: bool,
    retention_days: int | None,
    scd2_keys: tuple[str, ...] = (),
    delete_column: str | None = None,
    time_column: str | None = None,
) -> SystemTable:
    _, schema, table = name.split(".")
    return SystemTable(
        name=name,
        schema=schema,
        table=table,
        ddl=_DDL[name],
        streamable=streamable,
        retention_days=retention_days,
        scd2_keys=scd2_keys,
        sequence_column="change_time" if scd2_keys else None,
        delete_column=(delete_column or "delete_time") if scd2_keys else None,
        time_column=time_column,
    )


_TABLES = (
    _table("system.billing.usage", streamable=True, retention_days=365, time_column="usage_date"),
    _table("system.billing.list_prices", streamable=False, retention_days=None),
    _table("system.lakeflow.jobs", streamable=True, retention_days=365, scd2_keys=("workspace_id", "job_id")),
    _table(
        "system.lakeflow.job_tasks",
        streamable=True,
        retention_days=365,
        scd2_keys=("workspace_id", "job_id", "task_key"),
    ),
    _table("system.lakeflow.job_run_timeline", streamable=True, retention_days=365, time_column="period_start_time"),
    _table(
        "system.lakeflow.job_task_run_timeline", streamable=True, retention_days=365, time_column="period_start_time"
    ),
    _table(
        "system.lakeflow.pipelines", streamable=True, retention_days=365, scd2_keys=("workspace_id", "pipeline_id")
    ),
    _table(
        "system.compute.clusters", streamable=True, retention_days=365, scd2_keys=("workspace_id", "cluster_id")
    ),
    _table("system.compute.node_types", streamable=False, retention_days=None),
    _table("system.compute.node_timeline", streamable=True, retention_days=90, time_column="start_time"),
    _table(
        "system.compute.warehouses",
        streamable=True,
        retention_days=365,
        scd2_keys=("workspace_id", "warehouse_id"),
    ),
    _table("system.access.audit", streamable=True, retention_days=365, time_column="event_date"),
    _table("system.access.workspaces_latest", streamable=False, retention_days=None),
    _table("system.query.history", streamable=False, retention_days=365, time_column="start_time"),
    _table(
        "system.serving.served_entities",
        streamable=True,
        retention_days=365,
        scd2_keys=("served_entity_id",),
        delete_column="endpoint_delete_time",
    ),
    _table("system.serving.endpoint_usage", streamable=True, retention_days=90, time_column="request_time"),
    _table("system.mlflow.experiments_latest", streamable=True, retention_days=180),
    _table("system.mlflow.runs_latest", streamable=True, retention_days=180),
    _table("system.mlflow.run_metrics_history", streamable=True, retention_days=180, time_column="metric_time"),
)

SYSTEM_TABLES: Mapping[str, SystemTable] = MappingProxyType({t.name: t for t in _TABLES})


# --- lookup ------------------------------------------------------------------------------------

def get(name: str) -> SystemTable:
    """The registry entry for a full table name; the KeyError suggests the closest known name."""
    try:
        return SYSTEM_TABLES[name]
    except KeyError:
        raise KeyError(f"unknown system table '{name}'{suggestion(closest_table(name))}") from None


def closest_table(name: str) -> str | None:
    """The registered table name nearest to `name` (for "did you mean" messages), or None."""
    match = nearest(name, SYSTEM_TABLES)
    if match is None and "." not in name.removeprefix("system."):
        # A bare table name ("usage") or schema-less typo: compare against the last part only.
        by_table = {t.table: t.name for t in _TABLES}
        short = nearest(name.removeprefix("system."), by_table)
        return by_table[short] if short else None
    return match


def local_path(root: Path, name: str) -> Path:
    """Where a local export of a table lives: ``root/<schema>/<table>`` (e.g. root/billing/usage)."""
    table = get(name)
    return Path(root) / table.schema / table.table


def columns(name: str) -> "tuple[Field, ...]":
    """The columns of a registered table, in order (parsed by engine.sql.types, i.e. sqlglot).

    Imported here, not at the top: the Databricks pipeline imports this registry for its names
    and must not need sqlglot; only local runs, the demo generator and validate parse the DDL.
    """
    from engine.sql.types import parse_columns

    return parse_columns(get(name).ddl).fields


# --- Spark and Arrow schemas -------------------------------------------------------------------

def spark_schema(name: str) -> "StructType":
    """The Spark schema of a registered table (all fields nullable, as Databricks reports them)."""
    from engine.sql.types import Struct

    return _to_spark(Struct(columns(name)))  # type: ignore[return-value]


def _to_spark(column_type: "ColumnType") -> "SparkDataType":
    from pyspark.sql import types as T

    from engine.sql.types import Array, Decimal, Map, Primitive

    if isinstance(column_type, Primitive):
        return {
            "STRING": T.StringType(), "BOOLEAN": T.BooleanType(), "TINYINT": T.ByteType(),
            "INT": T.IntegerType(), "BIGINT": T.LongType(), "DOUBLE": T.DoubleType(),
            "DATE": T.DateType(), "TIMESTAMP": T.TimestampType(),
        }[column_type.name]
    if isinstance(column_type, Decimal):
        return T.DecimalType(column_type.precision, column_type.scale)
    if isinstance(column_type, Array):
        return T.ArrayType(_to_spark(column_type.element), containsNull=True)
    if isinstance(column_type, Map):
        return T.MapType(_to_spark(column_type.key), _to_spark(column_type.value), valueContainsNull=True)
    return T.StructType([T.StructField(f.name, _to_spark(f.type), nullable=True) for f in column_type.fields])


@functools.lru_cache(maxsize=None)  # Arrow schemas are immutable; writers ask for them per batch
def arrow_schema(name: str) -> "pyarrow.Schema":
    """The Arrow schema of a registered table, for writers that do not need a JVM.

    It is built from the same parsed DDL as `spark_schema` (one source of truth; the tests check that
    Spark reads files written with it back as exactly `spark_schema`). TIMESTAMP is microsecond UTC,
    DATE is date32, DECIMAL(p,s) is decimal128(p,s), TINYINT/INT/BIGINT are int8/int32/int64.
    """
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _ddl_to_arrow(f.type)) for f in columns(name)])


def _ddl_to_arrow(column_type: "ColumnType") -> "pyarrow.DataType":
    import pyarrow as pa

    from engine.sql.types import Array, Decimal, Map, Primitive

    if isinstance(column_type, Primitive):
        return {
            "STRING": pa.string(), "BOOLEAN": pa.bool_(), "TINYINT": pa.int8(), "INT": pa.int32(),
            "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "DATE": pa.date32(),
            "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        }[column_type.name]
    if isinstance(column_type, Decimal):
        return pa.decimal128(column_type.precision, column_type.scale)
    if isinstance(column_type, Array):
        return pa.list_(_ddl_to_arrow(column_type.element))
    if isinstance(column_type, Map):
        return pa.map_(_ddl_to_arrow(column_type.key), _ddl_to_arrow(column_type.value))
    return pa.struct([pa.field(f.name, _ddl_to_arrow(f.type)) for f in column_type.fields])
