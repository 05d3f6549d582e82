"""Stage: graph. Topological order with sorted ties, and cycle paths for error messages.

Sorted ties make generated files and run order byte-stable across machines (sqlmesh utils/dag.py).
"""

from __future__ import annotations

import heapq
from typing import Iterable, Mapping


class CycleError(ValueError):
    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def topological_order(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes ordered so every node comes after all it depends on; `edges[n]` are n's upstreams.

    Upstreams not themselves keys are ignored (system tables, unknown names reported elsewhere).
    """
    upstream = {node: sorted(set(deps) & edges.keys()) for node, deps in edges.items()}
    downstream: dict[str, list[str]] = {node: [] for node in upstream}
    for node, deps in upstream.items():
        for dep in deps:
            downstream[dep].append(node)
    waiting = {node: len(deps) for node, deps in upstream.items()}
    ready = [node for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in downstream[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(upstream):
        cycle = find_cycle(upstream)
        raise CycleError(cycle or sorted(set(upstream) - set(order)))
    return order


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts (a -> b -> a), smallest start name first."""
    graph = {node: sorted(set(deps) & edges.keys()) for node, deps in edges.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            node, index = stack[-1]
            children = graph[node]
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if state.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None
