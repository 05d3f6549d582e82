"""Stage: graph. A small deterministic DAG over table names."""

from engine.graph.dag import CycleError, find_cycle, topological_order

__all__ = ["CycleError", "find_cycle", "topological_order"]
