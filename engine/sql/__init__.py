"""The SQL toolkit: every place that parses a spec's SQL does it here, on sqlglot's Databricks dialect.

    fragments.py  expressions (filters, column expressions, expectations, alert conditions) and
                  queries: syntax, one statement, no comment, output columns, GROUP BY, lineage

Quoting of identifiers and literals is engine.escape (standard library only: the pipeline runtime
uses it); this package is for validate, generate and tests, never imported on the runtime path.
"""
