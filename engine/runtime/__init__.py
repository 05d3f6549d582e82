"""Stage: runtime. Specs become pipeline datasets at run time, on Databricks or on local Spark.

queries (pure SQL builders) -> flows (one object per table) -> backend (the one module that
imports pyspark.pipelines / dlt) -> entry (called by the generic notebook and the local run).
"""
