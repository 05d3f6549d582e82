"""A tiny, hand-written set of system tables whose every total is known in advance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

UTC = dt.timezone.utc


def hour(day: int, h: int) -> dt.datetime:
    return dt.datetime(2026, 10, day, h, tzinfo=UTC)


def usage(record_id, workspace, record_type, quantity, start, sku="JOBS", job=None):
    return dict(account_id="acc", workspace_id=workspace, record_id=record_id, sku_name=sku, cloud="AWS",
                usage_start_time=start, usage_end_time=start + dt.timedelta(hours=1), usage_date=start.date(),
                usage_unit="DBU", usage_quantity=Decimal(quantity), record_type=record_type,
                usage_metadata={"job_id": job})


def price(sku, amount, start, end=None):
    return dict(account_id="acc", price_start_time=start, price_end_time=end, sku_name=sku, cloud="AWS",
                currency_code="USD", usage_unit="DBU",
                pricing={"default": Decimal(amount), "promotional": None, "effective_list": {"default": Decimal(amount)}})


USAGE_DAY_1 = [
    usage("r1", "ws1", "ORIGINAL", "2.5", hour(1, 0), job="j1"),
    usage("r2", "ws1", "RETRACTION", "-2.5", hour(1, 0), job="j1"),
    usage("r3", "ws1", "RESTATEMENT", "3", hour(1, 0), job="j1"),
    usage("r4", "ws1", "BOGUS", "1", hour(1, 0), job="j2"),  # warn: unknown record type
    usage(None, "ws1", "ORIGINAL", "100", hour(1, 0)),  # drop: no record id
    usage("r6", "ws2", "ORIGINAL", "4", hour(1, 3), sku="ALL_PURPOSE"),
    usage("r7", "ws1", "ORIGINAL", "10", hour(1, 13), job="j1"),  # after the price change
]
USAGE_DAY_2 = [usage("r8", "ws1", "ORIGINAL", "5", hour(2, 6), job="j1")]
PRICES = [
    price("JOBS", "0.2", hour(1, 0) - dt.timedelta(days=30), hour(1, 12)),
    price("JOBS", "0.3", hour(1, 12)),
    price("ALL_PURPOSE", "0.5", hour(1, 0) - dt.timedelta(days=30)),
]
JOBS = [
    dict(account_id="acc", workspace_id="ws1", job_id="j1", name="old", change_time=hour(1, 0)),
    dict(account_id="acc", workspace_id="ws1", job_id="j1", name="new", change_time=hour(2, 0)),
    dict(account_id="acc", workspace_id="ws1", job_id="j2", name="gone", change_time=hour(1, 0), delete_time=hour(3, 0)),
]
WORKSPACES = [
    dict(account_id="acc", workspace_id="ws1", workspace_name="one", status="RUNNING"),
    dict(account_id="acc", workspace_id="ws2", workspace_name="two", status="RUNNING"),
]


def write_table(root: Path, name: str, rows: list[dict], part: str = "part-00000") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.sources.system_tables import arrow_schema, local_path

    schema = arrow_schema(name)
    table = pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)
    folder = local_path(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{part}.parquet")
    return folder


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_source")
    write_table(root, "system.billing.usage", USAGE_DAY_1)
    write_table(root, "system.billing.list_prices", PRICES)
    write_table(root, "system.lakeflow.jobs", JOBS)
    write_table(root, "system.access.workspaces_latest", WORKSPACES)
    return root  # no serving tables: the serving specs must be skipped
