# Databricks notebook source
# MAGIC %md
# MAGIC # Tablesmith generic pipeline
# MAGIC The only library of the Tablesmith pipelines. It names no table: every table comes from the
# MAGIC compiled specs (`generated/manifest.json`, written by `tablesmith generate`) synced with the
# MAGIC bundle. It imports only the standard library, PyYAML and PySpark: the pipeline needs no
# MAGIC environment dependencies, and nothing is pip-installed. Configuration (set by the bundle):
# MAGIC `tablesmith.bundle_root` (put on `sys.path`; holds `engine/` and `generated/manifest.json`),
# MAGIC `tablesmith.manifest` (optional, another manifest path), `tablesmith.catalog`,
# MAGIC `tablesmith.schema`, `tablesmith.account_identifier`, `tablesmith.workspace_identifier`,
# MAGIC `tablesmith.schedule`, `tablesmith.enabled_schemas` (optional: skips the catalog probe).
# MAGIC `tablesmith run` executes this same file locally (with `tablesmith.mode = local`).

# COMMAND ----------

import sys

bundle_root = spark.conf.get("tablesmith.bundle_root", "")  # noqa: F821 - `spark` is injected
if bundle_root and bundle_root not in sys.path:
    sys.path.insert(0, bundle_root)  # import the engine synced beside the manifest, never an installed one

from engine.runtime.entry import CONF_KEYS, CONF_PREFIX, register_pipeline  # noqa: E402

conf = {CONF_PREFIX + key: spark.conf.get(CONF_PREFIX + key, "") for key in CONF_KEYS}  # noqa: F821
register_pipeline(spark, conf)  # noqa: F821
