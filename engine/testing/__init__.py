"""Stage: testing. The runner of the generated SQL data tests (generated/data_tests/<domain>.sql), used
by pytest on the local run and by the bundle's data tests job on Databricks."""
