"""Stage: demo data. billing.usage rows: what kinds of usage exist, a compact row buffer, corrections,
and a fast columnar conversion to Arrow (billing.usage is by far the largest table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import pyarrow as pa

from engine.demo import catalog as C
from engine.demo.ids import DAY, HOUR, uuid_prefix
from engine.sources.system_tables import arrow_schema

USAGE = "system.billing.usage"


@dataclass(frozen=True)
class UsageProfile:
    """What a usage row is for: its SKU and the product columns that go with it."""

    sku: C.Sku
    billing_origin_product: str
    usage_type: str
    features: Mapping[str, object]  # non-null product_features fields


def _profile(sku_key: str, origin: str, usage_type: str = "COMPUTE_TIME", **features: object) -> UsageProfile:
    return UsageProfile(C.SKUS[sku_key], origin, usage_type, features)


PROFILES: dict[str, UsageProfile] = {
    "all_purpose": _profile("all_purpose", "ALL_PURPOSE", is_serverless=False, is_photon=False),
    "all_purpose_photon": _profile("all_purpose_photon", "ALL_PURPOSE", is_serverless=False, is_photon=True),
    "jobs": _profile("jobs", "JOBS", jobs_tier="CLASSIC", is_serverless=False, is_photon=False),
    "jobs_photon": _profile("jobs_photon", "JOBS", jobs_tier="CLASSIC", is_serverless=False, is_photon=True),
    "jobs_serverless": _profile("jobs_serverless", "JOBS", is_serverless=True, performance_target="PERFORMANCE_OPTIMIZED"),
    "interactive_serverless": _profile("interactive_serverless", "INTERACTIVE", is_serverless=True),
    "sql_pro": _profile("sql_pro", "SQL", sql_tier="PRO", is_serverless=False, is_photon=True),
    "sql_serverless": _profile("sql_serverless", "SQL", sql_tier="PRO", is_serverless=True, is_photon=True),
    "remote_sql_serverless": _profile("remote_sql_serverless", "SQL", sql_tier="PRO", is_serverless=True, is_photon=True),
    "dlt_core": _profile("dlt_core", "DLT", dlt_tier="CORE", is_serverless=False, is_photon=False),
    "dlt_advanced": _profile("dlt_advanced", "DLT", dlt_tier="ADVANCED", is_serverless=False, is_photon=False),
    "model_serving": _profile("model_serving", "MODEL_SERVING", serving_type="MODEL"),
    "foundation_model": _profile("foundation_model", "MODEL_SERVING", "TOKEN", serving_type="FOUNDATION_MODEL"),
    "vector_search": _profile("vector_search", "VECTOR_SEARCH"),
}
_PROFILE_KEYS = tuple(PROFILES)
_PROFILE_INDEX = {key: i for i, key in enumerate(_PROFILE_KEYS)}

METADATA_FIELDS = (
    "cluster_id", "job_id", "warehouse_id", "node_type", "job_run_id", "notebook_id", "dlt_pipeline_id",
    "endpoint_name", "endpoint_id", "dlt_update_id", "job_name", "notebook_path", "budget_policy_id",
)


class UsageRow(NamedTuple):
    workspace_id: str
    record_id: str
    profile: str  # key of PROFILES
    start: int  # epoch seconds, on the hour; every row covers one clock hour
    quantity: float
    tags: tuple[tuple[str, str], ...]
    record_type: str = "ORIGINAL"
    ingestion_day: int = 0  # days since epoch
    cluster_id: str | None = None
    job_id: str | None = None
    warehouse_id: str | None = None
    node_type: str | None = None
    job_run_id: str | None = None
    notebook_id: str | None = None
    dlt_pipeline_id: str | None = None
    endpoint_name: str | None = None
    endpoint_id: str | None = None
    dlt_update_id: str | None = None
    job_name: str | None = None
    notebook_path: str | None = None
    budget_policy_id: str | None = None
    run_as: str | None = None
    owned_by: str | None = None


def tag_items(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))


class UsageBuffer:
    """Collects one day's usage rows, written through one `UsageStream` per source (cluster, run, ...)."""

    def __init__(self, *id_parts: object):
        self.rows: list[UsageRow] = []
        self._id_parts = id_parts

    def stream(self, *source: object) -> "UsageStream":
        return UsageStream(self.rows, uuid_prefix(*self._id_parts, *source))


class UsageStream:
    """Adds rows for one source. Record ids are the source's UUID prefix plus a counter: unique,
    cheap, and independent of how many other sources exist (so `scale` does not change them)."""

    def __init__(self, rows: list[UsageRow], prefix: str):
        self.rows, self._prefix, self._counter = rows, prefix, 0

    def next_record_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:012x}"

    def add(self, workspace_id: str, profile: str, start: int, quantity: float,
            tags: tuple[tuple[str, str], ...] = (), **metadata: str | None) -> UsageRow:
        # ORIGINAL rows are ingested the same day, late-evening hours the day after.
        day = start // DAY
        ingestion = day + (1 if start % DAY >= 20 * HOUR else 0)
        row = UsageRow(workspace_id, self.next_record_id(), profile, start, quantity, tags,
                       ingestion_day=ingestion, **metadata)
        self.rows.append(row)
        return row

    def add_hourly(self, workspace_id: str, profile: str, start: int, end: int, rate_per_hour: float,
                   tags: tuple[tuple[str, str], ...] = (), **metadata: str | None) -> None:
        """One row per clock hour overlapped by [start, end), quantity pro rata (classic compute)."""
        hour = start - start % HOUR
        while hour < end:
            overlap = min(end, hour + HOUR) - max(start, hour)
            if overlap > 0:
                self.add(workspace_id, profile, hour, rate_per_hour * overlap / HOUR, tags, **metadata)
            hour += HOUR


@dataclass(frozen=True)
class Correction:
    """A planted billing correction, as facts report it."""

    kind: str  # "restated_same_sku" | "restated_other_sku" | "retraction_only"
    workspace_id: str
    usage_start_epoch: int
    original_record_id: str
    retraction_record_id: str
    restatement_record_id: str | None
    original_sku: str
    restated_sku: str | None
    original_quantity: float
    restated_quantity: float | None  # net quantity of the group after the correction (None: zero)


def correct(buffer: UsageBuffer, original: UsageRow, kind: str, *, quantity: float | None = None,
            profile: str | None = None, lag_days: int = 3) -> Correction:
    """Append a RETRACTION of `original` and, unless quantity is None and profile is None, a RESTATEMENT."""
    ingestion = original.ingestion_day + lag_days
    stream = buffer.stream("correction", kind)
    retraction = original._replace(record_id=stream.next_record_id(), quantity=-original.quantity,
                                   record_type="RETRACTION", ingestion_day=ingestion)
    buffer.rows.append(retraction)
    restatement = None
    if quantity is not None or profile is not None:
        restatement = original._replace(
            record_id=stream.next_record_id(),
            quantity=original.quantity if quantity is None else quantity,
            profile=profile or original.profile, record_type="RESTATEMENT", ingestion_day=ingestion,
        )
        buffer.rows.append(restatement)
    return Correction(
        kind=kind,
        workspace_id=original.workspace_id,
        usage_start_epoch=original.start,
        original_record_id=original.record_id,
        retraction_record_id=retraction.record_id,
        restatement_record_id=restatement.record_id if restatement else None,
        original_sku=PROFILES[original.profile].sku.name,
        restated_sku=PROFILES[restatement.profile].sku.name if restatement else None,
        original_quantity=round(original.quantity, 6),
        restated_quantity=round(restatement.quantity, 6) if restatement else None,
    )


# --- Arrow conversion --------------------------------------------------------------------------

def _profile_arrays(schema: pa.Schema) -> dict[str, pa.Array]:
    features_type = schema.field("product_features").type
    features = [
        {f.name: profile.features.get(f.name) for f in features_type} for profile in PROFILES.values()
    ]
    return {
        "sku_name": pa.array([p.sku.name for p in PROFILES.values()], pa.string()),
        "usage_unit": pa.array([p.sku.usage_unit for p in PROFILES.values()], pa.string()),
        "billing_origin_product": pa.array([p.billing_origin_product for p in PROFILES.values()], pa.string()),
        "usage_type": pa.array([p.usage_type for p in PROFILES.values()], pa.string()),
        "product_features": pa.array(features, features_type),
    }


def _quantities(values: tuple[float, ...]) -> pa.Array:
    # Round to 6 decimals first so the float -> decimal cast is exact and stable.
    rounded = pa.array(np.round(np.asarray(values, dtype=np.float64), 6))
    return rounded.cast(pa.decimal128(38, 6), safe=False).cast(pa.decimal128(38, 18))


def usage_table(rows: list[UsageRow]) -> pa.Table:
    """Columnar conversion, rows sorted by (usage_start_time, workspace_id, record_id): repeated
    structs and maps are built once and gathered with `take`."""
    schema = arrow_schema(USAGE)
    n = len(rows)
    if n == 0:
        return schema.empty_table()
    # Sorted here, in Python, because sorting the nested Arrow table later costs far more.
    cols = UsageRow(*zip(*sorted(rows, key=lambda r: (r.start, r.workspace_id, r.record_id))))
    profile_index = pa.array([_PROFILE_INDEX[p] for p in cols.profile], pa.int32())
    per_profile = _profile_arrays(schema)

    tag_sets: dict[tuple, int] = {}
    tag_index = pa.array([tag_sets.setdefault(t, len(tag_sets)) for t in cols.tags], pa.int32())
    distinct_tags = pa.array([list(t) for t in tag_sets], schema.field("custom_tags").type)

    starts = np.asarray(cols.start, dtype=np.int64)
    metadata_type = schema.field("usage_metadata").type
    metadata = pa.StructArray.from_arrays(
        [
            pa.array(getattr(cols, f.name), pa.string()) if f.name in METADATA_FIELDS else pa.nulls(n, pa.string())
            for f in metadata_type
        ],
        fields=list(metadata_type),
    )
    identity_type = schema.field("identity_metadata").type
    identity = pa.StructArray.from_arrays(
        [
            pa.array(getattr(cols, f.name), pa.string()) if f.name in ("run_as", "owned_by") else pa.nulls(n, pa.string())
            for f in identity_type
        ],
        fields=list(identity_type),
    )
    timestamp = schema.field("usage_start_time").type
    columns = {
        "account_id": pa.repeat(pa.scalar(C.ACCOUNT_ID), n),
        "workspace_id": pa.array(cols.workspace_id, pa.string()),
        "record_id": pa.array(cols.record_id, pa.string()),
        "sku_name": per_profile["sku_name"].take(profile_index),
        "cloud": pa.repeat(pa.scalar(C.CLOUD), n),
        "usage_start_time": pa.array(starts * 1_000_000).cast(timestamp),
        "usage_end_time": pa.array((starts + HOUR) * 1_000_000).cast(timestamp),
        "usage_date": pa.array((starts // DAY).astype(np.int32)).cast(pa.date32()),
        "custom_tags": distinct_tags.take(tag_index),
        "usage_unit": per_profile["usage_unit"].take(profile_index),
        "usage_quantity": _quantities(cols.quantity),
        "usage_metadata": metadata,
        "identity_metadata": identity,
        "record_type": pa.array(cols.record_type, pa.string()),
        "ingestion_date": pa.array(np.asarray(cols.ingestion_day, dtype=np.int32)).cast(pa.date32()),
        "billing_origin_product": per_profile["billing_origin_product"].take(profile_index),
        "product_features": per_profile["product_features"].take(profile_index),
        "usage_type": per_profile["usage_type"].take(profile_index),
    }
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
