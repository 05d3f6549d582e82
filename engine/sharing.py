"""Stage: sharing (between spec and render/deploy). What is shared, as plain data.

One neutral model of Delta Sharing, derived from the Project: the objects of each share (plain
names, no SQL quoting), the consolidated views the central workspace builds over every provider's
share, and the central views the project declares. `engine/render/sharing.py` turns it into SQL,
`engine/deploy` into SDK calls; neither derives names of its own, so the two cannot disagree.

Where a provider's tables live is a deployment fact (each bundle target sets its own catalog and
schema); what recipients see never moves: every object is shared as `<project schema>.<alias or
table>`, the names the central views read.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.names import REFERENCE
from engine.spec.model import CONSOLIDATED_PREFIX, DatasetKind, Project, ShareMembership, Table, first_sentence

# The REST API's SharedDataObject.data_object_type for each kind of dataset.
DATA_OBJECT_TYPES = {
    DatasetKind.STREAMING_TABLE: "STREAMING_TABLE",
    DatasetKind.MATERIALIZED_VIEW: "MATERIALIZED_VIEW",
    DatasetKind.VIEW: "VIEW",
}


@dataclass(frozen=True)
class SharedObject:
    share: str
    table: str  # the spec's table
    kind: DatasetKind
    catalog: str  # where the table lives (a target's catalog, or a placeholder such as {{catalog}})
    schema: str
    shared_schema: str  # what recipients see: <shared_schema>.<shared_name>
    shared_name: str
    history: bool | None  # None: views and materialized views have no history clause
    description: str  # the table's purpose (first sentence of its description)
    pii: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"

    @property
    def shared_as(self) -> str:
        return f"{self.shared_schema}.{self.shared_name}"

    @property
    def data_object_type(self) -> str:
        return DATA_OBJECT_TYPES[self.kind]


@dataclass(frozen=True)
class Branch:
    """One provider's copy of a shared table, as the central workspace mounts it."""

    provider: str  # the provider's label: the value of source_workspace
    catalog: str
    schema: str
    table: str


@dataclass(frozen=True)
class ConsolidatedView:
    table: str  # the spec's table
    catalog: str
    schema: str
    name: str  # all_workspaces_<table>
    description: str
    columns: tuple[str, ...]
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class ResolvedCentralView:
    catalog: str
    schema: str
    name: str
    description: str
    query: str  # as declared, with ${...} references
    reads: dict[str, str]  # reference -> the central view it resolves to (name in catalog.schema)


def memberships(project: Project) -> list[tuple[Table, ShareMembership]]:
    """Every (table, share membership), shares in project order, tables by name."""
    order = {share.name: i for i, share in enumerate(project.settings.shares)}
    pairs = [(t, m) for t in project.tables for m in t.share]
    return sorted(pairs, key=lambda pair: (order.get(pair[1].share, len(order)), pair[1].share, pair[0].name))


def shared_objects(project: Project, catalog: str | None = None, schema: str | None = None) -> tuple[SharedObject, ...]:
    """Each table in each of its shares; `catalog`/`schema`: where the tables live (default: the project's)."""
    s = project.settings
    catalog, schema = catalog or s.catalog, schema or s.schema
    return tuple(
        SharedObject(
            share=member.share, table=table.name, kind=table.dataset_kind, catalog=catalog, schema=schema,
            shared_schema=s.schema, shared_name=member.alias or table.name,
            history=member.history if table.dataset_kind is DatasetKind.STREAMING_TABLE else None,
            description=first_sentence(table.description), pii=table.pii_columns,
        )
        for table, member in memberships(project)
    )


def consolidated_views(project: Project) -> tuple[ConsolidatedView, ...]:
    """One view per shared table: the table from every provider catalog whose share holds it."""
    s = project.settings
    views = []
    for table in sorted(project.tables, key=lambda t: t.name):
        branches = []
        for provider in s.providers:
            member = next((m for m in table.share if m.share == provider.share), None)
            if member is not None:
                branches.append(Branch(provider.name, provider.catalog, s.schema, member.alias or table.name))
        if branches:
            views.append(ConsolidatedView(
                table=table.name, catalog=s.central_catalog, schema=s.central_schema,
                name=CONSOLIDATED_PREFIX + table.name,
                description=f"{table.name} from every provider workspace, with source_workspace. {first_sentence(table.description)}",
                columns=tuple(c.name for c in table.all_columns),
                branches=tuple(branches),
            ))
    return tuple(views)


def central_views(project: Project) -> tuple[ResolvedCentralView, ...]:
    """The project's central views, each reference resolved to a consolidated or earlier central view."""
    s = project.settings
    consolidated = {view.table: view.name for view in consolidated_views(project)}
    plans, earlier = [], set()
    for view in s.central_views:
        reads = {}
        for match in REFERENCE.finditer(view.query):
            name = match.group(1)
            reads[name] = name if name in earlier else consolidated[name]  # validate checked both
        plans.append(ResolvedCentralView(s.central_catalog, s.central_schema, view.name, first_sentence(view.description),
                                     view.query, reads))
        earlier.add(view.name)
    return tuple(plans)
