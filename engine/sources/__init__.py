"""Stage: sources. What the engine reads: the Databricks system tables, their schemas and layout."""
