"""Stage: render. Delta Sharing: the provider script (share, objects, recipients, grants) and the
recipient script (catalogs from shares, consolidated cross-workspace views).

One source of truth: each statement is rendered once, by a macro in templates/_sharing.sql.j2, from
the view-model below. The .sql files lay those statements out with comments; `provider_statements`
and `recipient_statements` return the same statements as plain strings (no trailing semicolon) for
`tablesmith deploy`, which runs them through the SQL statement API.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.render.registry import renderer, template
from engine.render.viewmodel import HEADER, KIND_LABELS, collapse, first_sentence, sql_ident, sql_string
from engine.spec.model import CONSOLIDATED_PREFIX, DatasetKind, Project, ShareMembership, Table

PROVIDER_SQL = "generated/sql/delta_sharing_provider.sql"
RECIPIENT_SQL = "generated/sql/delta_sharing_recipient.sql"
# Convention for the cross-workspace cost views: a shared table with these columns holds daily cost
# per workspace; when several do, the one with the fewest columns (the most aggregated) is used.
COST_COLUMNS = ("usage_date", "workspace_id", "total_cost_usd")

_SHARE_KEYWORDS = {
    DatasetKind.STREAMING_TABLE: "TABLE",
    DatasetKind.MATERIALIZED_VIEW: "MATERIALIZED VIEW",
    DatasetKind.VIEW: "VIEW",
}


@dataclass(frozen=True)
class Statement:
    comments: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Script:
    header: str
    intro: tuple[str, ...]
    statements: tuple[Statement, ...]


# --- view-model --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SharedObject:
    table: str
    share: str
    keyword: str
    name: str
    comment: str
    shared_as: str  # "" when the recipient sees the table under its own name
    history: str  # "WITH HISTORY" / "WITHOUT HISTORY" for tables; "" for views (the grammar has no clause)
    pii: tuple[str, ...]


@dataclass(frozen=True)
class Branch:
    label: str
    source: str


@dataclass(frozen=True)
class ConsolidatedView:
    table: str
    name: str
    comment: str
    columns: tuple[str, ...]
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class CostViews:
    source_table: str
    source: str
    costs: str
    summary: str


def _memberships(project: Project) -> list[tuple[Table, ShareMembership]]:
    order = {share.name: i for i, share in enumerate(project.settings.shares)}
    pairs = [(t, m) for t in project.tables for m in t.share]
    return sorted(pairs, key=lambda pair: (order.get(pair[1].share, len(order)), pair[1].share, pair[0].name))


def shared_objects(project: Project) -> tuple[SharedObject, ...]:
    s = project.settings
    objects = []
    for table, member in _memberships(project):
        is_table = table.dataset_kind is DatasetKind.STREAMING_TABLE
        objects.append(SharedObject(
            table=table.name,
            share=sql_ident(member.share),
            keyword=_SHARE_KEYWORDS[table.dataset_kind],
            name=sql_ident(s.catalog, s.schema, table.name),
            comment=sql_string(first_sentence(table.description)),
            shared_as=sql_ident(s.schema, member.alias) if member.alias else "",
            history=("WITH HISTORY" if member.history else "WITHOUT HISTORY") if is_table else "",
            pii=table.pii_columns,
        ))
    return tuple(objects)


def consolidated_views(project: Project) -> tuple[ConsolidatedView, ...]:
    """One view per shared table: the table from every provider catalog whose share holds it."""
    s = project.settings
    views = []
    for table in sorted(project.tables, key=lambda t: t.name):
        branches = []
        for provider in s.providers:
            member = next((m for m in table.share if m.share == provider.share), None)
            if member is not None:
                source = sql_ident(provider.catalog, s.schema, member.alias or table.name)
                branches.append(Branch(sql_string(provider.name), source))
        if branches:
            views.append(ConsolidatedView(
                table=table.name,
                name=sql_ident(s.central_catalog, s.central_schema, CONSOLIDATED_PREFIX + table.name),
                comment=sql_string(f"{table.name} from every provider workspace, with source_workspace. {first_sentence(table.description)}"),
                columns=tuple(sql_ident(c.name) for c in table.all_columns),
                branches=tuple(branches),
            ))
    return tuple(views)


def cost_views(project: Project, views: tuple[ConsolidatedView, ...]) -> CostViews | None:
    candidates = [project.table(v.table) for v in views]
    candidates = [t for t in candidates if set(COST_COLUMNS) <= {c.name for c in t.all_columns}]
    if not candidates:
        return None
    chosen = min(candidates, key=lambda t: (len(t.columns), t.name))
    s = project.settings
    return CostViews(
        source_table=chosen.name,
        source=sql_ident(s.central_catalog, s.central_schema, CONSOLIDATED_PREFIX + chosen.name),
        costs=sql_ident(s.central_catalog, s.central_schema, CONSOLIDATED_PREFIX + "costs"),
        summary=sql_ident(s.central_catalog, s.central_schema, "all_accounts_summary"),
    )


# --- statements --------------------------------------------------------------------------------

def _macro(name: str):
    return getattr(template("_sharing.sql.j2").module, name)


def _text(name: str, *args) -> str:
    return str(_macro(name)(*args)).strip()


def provider_script(project: Project) -> Script:
    s = project.settings
    statements = [Statement((), _text("create_share", sql_ident(share.name), sql_string(share.comment) if share.comment else ""))
                  for share in s.shares]
    for obj in shared_objects(project):
        table = project.table(obj.table)
        comments = [f"{obj.table}: {KIND_LABELS[table.dataset_kind]}" + (", with history" if obj.history == "WITH HISTORY" else "")]
        if obj.pii:
            comments.append("PII shared (include_pii: true): " + ", ".join(obj.pii))
        statements.append(Statement(tuple(comments), _text("add_object", obj)))
    for recipient in s.recipients:
        statements.append(Statement((), _text("create_recipient", sql_ident(recipient.name), sql_string(recipient.sharing_identifier),
                                              sql_string(recipient.comment) if recipient.comment else "")))
    for recipient in s.recipients:
        for share in recipient.shares:
            statements.append(Statement((), _text("grant", sql_ident(share), sql_ident(recipient.name))))
    return Script(
        header=HEADER,
        intro=(
            f"Delta Sharing, provider side: run once in the workspace that owns {s.catalog}.{s.schema} ({s.workspace_identifier}).",
            "For a FRESH share only: ALTER SHARE ... ADD fails when the object is already in the share (not idempotent).",
            "`tablesmith deploy` reconciles an existing share instead (adds, updates and removes objects to match the specs).",
            "Tables holding PII are shared only when their spec sets include_pii: true; each such statement lists them.",
        ),
        statements=tuple(statements),
    )


def recipient_script(project: Project) -> Script:
    s = project.settings
    statements = [Statement((f"provider workspace '{p.name}' ({p.account_identifier or '?'} / {p.workspace_identifier or '?'})",),
                            _text("create_catalog", sql_ident(p.catalog), sql_ident(p.provider, p.share)))
                  for p in s.providers]
    statements.append(Statement((), _text("create_schema", sql_ident(s.central_catalog, s.central_schema))))
    views = consolidated_views(project)
    statements.extend(Statement((), _text("consolidated_view", view)) for view in views)
    costs = cost_views(project, views)
    if costs is not None:
        statements.append(Statement((f"daily cost per workspace, from {costs.source_table} (columns {', '.join(COST_COLUMNS)})",),
                                    _text("costs_view", costs)))
        statements.append(Statement(("one row per account across every provider workspace",), _text("accounts_summary_view", costs)))
    return Script(
        header=HEADER,
        intro=(
            f"Delta Sharing, recipient side: run in the central workspace; views go to {s.central_catalog}.{s.central_schema}",
            f"(the catalog {s.central_catalog} must exist; the schema is created).",
            "Each provider's share is mounted as a catalog; each shared table gets an all_workspaces_<table> view that",
            "UNION ALLs it from every provider catalog with an explicit column list and a source_workspace column.",
            collapse(f"Cost views use the shared table with columns {', '.join(COST_COLUMNS)} (fewest columns wins)."),
        ),
        statements=tuple(statements),
    )


def provider_statements(project: Project) -> list[str]:
    return [statement.text for statement in provider_script(project).statements]


def recipient_statements(project: Project) -> list[str]:
    return [statement.text for statement in recipient_script(project).statements]


# --- renderers ---------------------------------------------------------------------------------

@renderer("sharing_provider", "Delta Sharing DDL for the provider workspace")
def render_provider(project: Project, _context) -> dict[str, str]:
    return {PROVIDER_SQL: template("sql_script.sql.j2").render(script=provider_script(project))}


@renderer("sharing_recipient", "catalogs and consolidated views for the central (recipient) workspace")
def render_recipient(project: Project, _context) -> dict[str, str]:
    return {RECIPIENT_SQL: template("sql_script.sql.j2").render(script=recipient_script(project))}
