# Databricks notebook source
# MAGIC %md
# MAGIC # Tablesmith generic pipeline
# MAGIC The only library of the Tablesmith pipelines. It names no table: every table comes from the
# MAGIC YAML specs shipped next to it by the bundle. Configuration (set by the bundle):
# MAGIC `tablesmith.specs_dir`, `tablesmith.bundle_root`, `tablesmith.catalog`, `tablesmith.schema`,
# MAGIC `tablesmith.account_identifier`, `tablesmith.workspace_identifier`, `tablesmith.schedule`.
# MAGIC `tablesmith run` executes this same file locally (with `tablesmith.mode = local`).

# COMMAND ----------

import sys

bundle_root = spark.conf.get("tablesmith.bundle_root", "")  # noqa: F821 - `spark` is injected
if bundle_root and bundle_root not in sys.path:
    sys.path.insert(0, bundle_root)  # import the engine synced beside the specs

from engine.runtime.entry import CONF_PREFIX, register_pipeline  # noqa: E402

KEYS = ("specs_dir", "catalog", "schema", "account_identifier", "workspace_identifier", "schedule",
        "enabled_schemas", "mode", "source_root")
conf = {CONF_PREFIX + key: spark.conf.get(CONF_PREFIX + key, "") for key in KEYS}  # noqa: F821
register_pipeline(spark, conf)  # noqa: F821
