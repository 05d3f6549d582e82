"""Stage: graph. Text and Mermaid views of the table graph."""

from __future__ import annotations

from engine.spec.model import Project


def text(project: Project) -> str:
    lines = []
    for table in project.tables:
        reads = ", ".join(table.upstream_tables + table.system_sources) or "-"
        lines.append(f"{table.name:<36} {table.pattern.value:<13} {table.schedule.value:<9} <- {reads}")
    return "\n".join(lines)


def mermaid(project: Project, domain: str | None = None) -> str:
    """`flowchart LR` with system sources as stadium nodes; limited to one domain when given."""
    tables = [t for t in project.tables if domain is None or t.domain == domain]
    names = {t.name for t in tables}
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}
    edges: list[str] = []
    for table in tables:
        nodes[table.name] = f'  {table.name}["{table.name}"]'
        for upstream in table.system_sources:
            node_id = upstream.replace(".", "_")
            nodes.setdefault(node_id, f'  {node_id}(["{upstream}"])')
            edges.append(f"  {node_id} --> {table.name}")
        for upstream in table.upstream_tables:
            if upstream not in names:
                nodes.setdefault(upstream, f'  {upstream}["{upstream}"]:::external')
            edges.append(f"  {upstream} --> {table.name}")
    lines.extend(nodes[k] for k in sorted(nodes))
    lines.extend(sorted(set(edges)))
    if any(":::external" in n for n in nodes.values()):
        lines.append("  classDef external stroke-dasharray: 4 4")
    return "\n".join(lines)
