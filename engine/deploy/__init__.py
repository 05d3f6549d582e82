"""Stage: deploy. Make a workspace match the specs: system schemas, shares, recipients, grants on a
provider workspace; catalogs from shares and consolidated views on the central workspace.

Read top-down: `targets` (which workspace, which role) -> `plan` (pure diff of desired vs actual
state) -> `workspace` (the only module importing databricks.sdk) -> `deployment.py` (prepare and
apply one target's plan; `tablesmith deploy` in engine/cli.py prints it).
"""
