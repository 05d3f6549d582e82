# Databricks notebook source
# MAGIC %md
# MAGIC # Tablesmith data tests
# MAGIC Runs the SQL data tests generated from the specs (`generated/data_tests/<domain>.sql`) on the
# MAGIC deployed tables and fails with the table, rule and a sample of offending rows. It names no
# MAGIC table. Job parameters (set by the bundle's `tablesmith_data_tests_job`): `catalog`, `schema`,
# MAGIC `bundle_root` (the bundle's synced files, holding `engine/` and `generated/`).

# COMMAND ----------

import sys

bundle_root = dbutils.widgets.get("bundle_root")  # noqa: F821 - `dbutils` is injected
if bundle_root not in sys.path:
    sys.path.insert(0, bundle_root)  # import the engine synced beside the generated tests

from engine.testing.data_tests import run_job  # noqa: E402

run_job(
    spark,  # noqa: F821 - `spark` is injected
    f"{bundle_root}/generated/data_tests",
    catalog=dbutils.widgets.get("catalog"),  # noqa: F821
    schema=dbutils.widgets.get("schema"),  # noqa: F821
)
