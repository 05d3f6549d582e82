"""Stage: demo data. Deterministic synthetic Databricks system tables for local runs and tests.

Modules, in dependency order: ids (keyed randomness), catalog (static reference data), entities
(frozen dataclasses), world (builds the entities and the planted cases), runs / usage / events (parts
of one simulated day), simulate (the day), dimensions (SCD2 and reference tables), writer (Parquet
layout), generator (entry points), facts (the planted cases as values). Only the CLI imports this
package (`tablesmith demo-data`, and `tablesmith run` with no source); the runtime never does.
"""

from __future__ import annotations

from engine.demo.facts import DemoFacts, facts  # binds `facts` to the function, not the submodule

__all__ = ["DemoFacts", "append_day", "facts", "generate"]


def __getattr__(name: str):
    # Lazy: `facts` alone does not need the writer (pyarrow Parquet output).
    if name in ("append_day", "generate"):
        from engine.demo import generator

        return getattr(generator, name)
    raise AttributeError(name)
