"""Stage: demo data. Static reference data: SKUs and list prices, node types, people, names.

SKU names follow the documented patterns (`<tier>_<PRODUCT>[_(PHOTON)][_<REGION>]`) but the exact
names and prices are illustrative, not a copy of a real price list.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT_ID = "5f2b8c1e-7d3a-4e9b-a6c4-2d8e1f0b9a37"
CLOUD = "AWS"
HOME_SKU_REGION = "US_WEST_OREGON"
REMOTE_SKU_REGION = "EUROPE_FRANKFURT"
CURRENCY = "USD"


@dataclass(frozen=True)
class NodeType:
    name: str
    cores: float
    memory_mb: int
    gpus: int
    dbu_per_hour: float  # DBUs one instance of this type consumes per hour


NODE_TYPES = (
    NodeType("m5d.large", 2.0, 8192, 0, 0.5),
    NodeType("m5d.xlarge", 4.0, 16384, 0, 0.75),
    NodeType("m5d.2xlarge", 8.0, 32768, 0, 1.5),
    NodeType("i3.xlarge", 4.0, 31232, 0, 1.0),
    NodeType("i3.2xlarge", 8.0, 62464, 0, 2.0),
    NodeType("i3.4xlarge", 16.0, 124928, 0, 4.0),
    NodeType("r5d.xlarge", 4.0, 32768, 0, 1.0),
    NodeType("r5d.4xlarge", 16.0, 131072, 0, 3.6),
    NodeType("c5d.2xlarge", 8.0, 16384, 0, 1.5),
    NodeType("g5.xlarge", 4.0, 16384, 1, 1.4),
)
NODE_TYPE = {n.name: n for n in NODE_TYPES}


@dataclass(frozen=True)
class Sku:
    """A SKU with its list price in USD per `usage_unit`."""

    name: str
    usage_unit: str
    price: float
    promotional_price: float | None = None  # set: effective_list differs from default


def _regional(product: str, region: str) -> str:
    return f"ENTERPRISE_{product}_{region}"


# Keys used by the simulation; the values are the SKUs billed in the home region.
SKUS: dict[str, Sku] = {
    "all_purpose": Sku("ENTERPRISE_ALL_PURPOSE_COMPUTE", "DBU", 0.55),
    "all_purpose_photon": Sku("ENTERPRISE_ALL_PURPOSE_COMPUTE_(PHOTON)", "DBU", 0.55),
    "jobs": Sku("ENTERPRISE_JOBS_COMPUTE", "DBU", 0.20),
    "jobs_photon": Sku("ENTERPRISE_JOBS_COMPUTE_(PHOTON)", "DBU", 0.20),
    # Serverless jobs carry a promotional price: pricing.effective_list.default != pricing.default.
    "jobs_serverless": Sku(_regional("JOBS_SERVERLESS_COMPUTE", HOME_SKU_REGION), "DBU", 0.45, 0.35),
    "interactive_serverless": Sku(_regional("ALL_PURPOSE_SERVERLESS_COMPUTE", HOME_SKU_REGION), "DBU", 0.95),
    "sql_pro": Sku(_regional("SQL_PRO_COMPUTE", HOME_SKU_REGION), "DBU", 0.55),
    "sql_serverless": Sku(_regional("SERVERLESS_SQL_COMPUTE", HOME_SKU_REGION), "DBU", 0.70),
    "dlt_core": Sku("ENTERPRISE_DLT_CORE_COMPUTE", "DBU", 0.20),
    "dlt_advanced": Sku("ENTERPRISE_DLT_ADVANCED_COMPUTE", "DBU", 0.36),
    "model_serving": Sku(_regional("SERVERLESS_REAL_TIME_INFERENCE", HOME_SKU_REGION), "DBU", 0.07),
    # Pay-per-token foundation model serving, billed per token.
    "foundation_model": Sku(_regional("SERVERLESS_REAL_TIME_INFERENCE_LAUNCH", HOME_SKU_REGION), "TOKEN", 0.000002),
    "vector_search": Sku(_regional("VECTOR_SEARCH_COMPUTE", HOME_SKU_REGION), "DBU", 0.07),
    # Used only by the workspace in the other region.
    "remote_sql_serverless": Sku(_regional("SERVERLESS_SQL_COMPUTE", REMOTE_SKU_REGION), "DBU", 0.91),
    # Listed but never used: real price lists hold many SKUs nobody in the account consumes.
    "unused_gpu_serving": Sku(_regional("SERVERLESS_REAL_TIME_INFERENCE_GPU", HOME_SKU_REGION), "DBU", 0.082),
}
PRICE_CHANGE_SKU = "all_purpose"  # list price raised at midnight UTC inside the window
PRICE_CHANGE_NEW_PRICE = 0.65

# Dollars only matter for sizing the planted cost spike; these are list prices.
WAREHOUSE_DBU_PER_HOUR = {"2X_SMALL": 4, "X_SMALL": 6, "SMALL": 12, "MEDIUM": 24, "LARGE": 40}


@dataclass(frozen=True)
class Person:
    email: str
    user_id: str
    display_name: str
    team: str


TEAMS = ("data-eng", "analytics", "ml-platform", "finance-bi")
COST_CENTERS = {"data-eng": "CC-1040", "analytics": "CC-2210", "ml-platform": "CC-3105", "finance-bi": "CC-4420"}

PEOPLE_NAMES = (
    ("Alice", "Nguyen", "data-eng"), ("Bruno", "Keller", "data-eng"), ("Chloe", "Martin", "analytics"),
    ("Dev", "Patel", "ml-platform"), ("Elena", "Rossi", "analytics"), ("Farid", "Haddad", "finance-bi"),
    ("Grace", "Okafor", "ml-platform"), ("Hiro", "Tanaka", "data-eng"), ("Ines", "Duarte", "finance-bi"),
    ("Jonas", "Berg", "analytics"), ("Kira", "Ivanova", "ml-platform"), ("Liam", "Walsh", "data-eng"),
)
EMAIL_DOMAIN = "acme-corp.com"

SERVICE_PRINCIPAL_NAMES = ("sp-etl-prod", "sp-ml-batch", "sp-reporting")

WORKSPACE_NAMES = ("acme-prod", "acme-analytics", "acme-ml", "acme-staging", "acme-sandbox", "acme-research")
REMOTE_WORKSPACE_NAME = "acme-eu-sales"

JOB_NAMES = (
    "daily_sales_etl", "customer_360_refresh", "orders_ingest", "inventory_snapshot", "marketing_attribution",
    "fraud_features", "finance_close_report", "clickstream_sessionize", "churn_scoring", "product_catalog_sync",
    "ad_spend_rollup", "support_tickets_ingest", "gdpr_deletes", "pricing_model_train", "warehouse_compaction",
    "revenue_dashboard_refresh", "supplier_feed_load", "events_dedup", "forecast_demand", "shipping_eta_model",
    "crm_export", "data_quality_checks", "feature_store_backfill", "payments_reconcile", "loyalty_points_calc",
    "web_logs_parse", "recommendations_batch", "tax_report_monthly", "hr_headcount_sync", "iot_telemetry_agg",
)
TASK_KEYS = ("ingest", "clean", "transform", "enrich", "aggregate", "publish", "quality_checks", "notify")

UC_TABLES = (
    "main.sales.orders", "main.sales.customers", "main.sales.order_items", "main.marketing.campaigns",
    "main.ml.churn_features", "main.ops.inventory", "main.web.clickstream", "main.finance.invoices",
)
RESTRICTED_TABLE = "main.finance.payroll"  # reads by the planted user are denied (403)

SQL_STATEMENTS = (
    ("SELECT", "SELECT region, sum(amount) FROM main.sales.orders WHERE order_date >= current_date() - 30 GROUP BY region"),
    ("SELECT", "SELECT * FROM main.sales.customers WHERE customer_id = ?"),
    ("SELECT", "SELECT date_trunc('week', ts) AS wk, count(*) FROM main.web.clickstream GROUP BY 1 ORDER BY 1"),
    ("SELECT", "SELECT c.segment, avg(o.amount) FROM main.sales.orders o JOIN main.sales.customers c USING (customer_id) GROUP BY 1"),
    ("INSERT", "INSERT INTO main.ops.inventory_daily SELECT * FROM main.ops.inventory WHERE snapshot_date = current_date()"),
    ("MERGE", "MERGE INTO main.sales.customers t USING updates s ON t.customer_id = s.customer_id WHEN MATCHED THEN UPDATE SET *"),
    ("SHOW", "SHOW TABLES IN main.sales"),
    ("DESCRIBE", "DESCRIBE TABLE EXTENDED main.finance.invoices"),
)
SQL_CLIENTS = ("Databricks SQL Editor", "Tableau", "dbt", "Power BI", "Databricks Dashboards")
SQL_ERRORS = (
    "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`sales`.`order` cannot be found.",
    "[DIVIDE_BY_ZERO] Division by zero.",
    "[INSUFFICIENT_PERMISSIONS] User does not have SELECT on Table 'main.finance.payroll'.",
)

USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/128.0 Safari/537.36",
    "databricks-sdk-py/0.40.0 python/3.11.9 os/linux auth/pat",
    "databricks-cli/0.230.0 go/1.22",
)

ML_METRICS = ("loss", "val_loss", "accuracy")
