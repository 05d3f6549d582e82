"""Tablesmith: YAML specs in, Databricks monitoring tables out.

Stages, read top-down: spec (load, schema, model, rules) -> graph -> runtime -> render -> cli.
"""

__version__ = "0.1.0"
