"""Stage: render. Delta Sharing: the provider script (share, objects, recipients, grants) and the
recipient script (catalogs from shares, consolidated cross-workspace views, the project's central views).

What is shared comes from the neutral model (engine.sharing), which `tablesmith deploy` turns into SDK
calls; here it is only quoted for SQL. Each statement is rendered once, by a macro in
templates/_sharing.sql.j2, from the view-model below. The .sql files lay those statements out with comments; `provider_statements`
and `recipient_statements` return the same statements as plain strings (no trailing semicolon) for
`tablesmith deploy`, which runs them through the SQL statement API.

Where the provider's tables live is not known at generate time: each bundle target (and `--var`)
sets its own catalog and schema, and bundles do not substitute variables inside SQL files. So the
provider script names its tables with the job parameters `{{catalog}}` and `{{schema}}` (the
sharing setup job passes ${var.catalog} and ${var.schema}), as Databricks' own SQL-file bundle
template does; `tablesmith deploy` passes the target's location instead. What recipients see never
moves: every object is shared AS `<project schema>`.`<alias or table>`, the names the central
workspace's views read.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import sharing
from engine.render.registry import renderer, template
from engine.render.viewmodel import CATALOG_PARAMETER, HEADER, KIND_LABELS, SCHEMA_PARAMETER, sql_ident, sql_string
from engine.names import resolve_references
from engine.spec.model import DatasetKind, Project

PROVIDER_SQL = "generated/sql/delta_sharing_provider.sql"
RECIPIENT_SQL = "generated/sql/delta_sharing_recipient.sql"

# ALTER SHARE has no STREAMING TABLE keyword: a streaming table is added with ADD TABLE.
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


# --- SQL view-model: the neutral sharing model (engine.sharing), quoted for SQL -------------------

@dataclass(frozen=True)
class SqlObject:
    share: str
    keyword: str
    name: str
    comment: str
    shared_as: str
    history: str  # "WITH HISTORY" / "WITHOUT HISTORY" for tables; "" for views (the grammar has no clause)


@dataclass(frozen=True)
class SqlBranch:
    label: str
    source: str


@dataclass(frozen=True)
class SqlConsolidatedView:
    name: str
    comment: str
    columns: tuple[str, ...]
    branches: tuple[SqlBranch, ...]


@dataclass(frozen=True)
class SqlCentralView:
    name: str
    comment: str
    query: str


def _sql_object(obj: sharing.SharedObject) -> SqlObject:
    history = "" if obj.history is None else ("WITH HISTORY" if obj.history else "WITHOUT HISTORY")
    return SqlObject(sql_ident(obj.share), _SHARE_KEYWORDS[obj.kind], sql_ident(obj.catalog, obj.schema, obj.table),
                     sql_string(obj.description), sql_ident(obj.shared_schema, obj.shared_name), history)


def _sql_consolidated(view: sharing.ConsolidatedView) -> SqlConsolidatedView:
    return SqlConsolidatedView(
        name=sql_ident(view.catalog, view.schema, view.name),
        comment=sql_string(view.description),
        columns=tuple(sql_ident(c) for c in view.columns),
        branches=tuple(SqlBranch(sql_string(b.provider), sql_ident(b.catalog, b.schema, b.table)) for b in view.branches),
    )


def _sql_central(view: sharing.ResolvedCentralView) -> SqlCentralView:
    query = resolve_references(view.query.strip().rstrip(";").rstrip(), lambda name: sql_ident(view.catalog, view.schema, view.reads[name]))
    return SqlCentralView(sql_ident(view.catalog, view.schema, view.name), sql_string(view.description), query)


# --- statements --------------------------------------------------------------------------------

def _macro(name: str):
    return getattr(template("_sharing.sql.j2").module, name)


def _text(name: str, *args) -> str:
    return str(_macro(name)(*args)).strip()


def provider_script(project: Project) -> Script:
    s = project.settings
    statements = [Statement((), _text("create_share", sql_ident(share.name), sql_string(share.comment) if share.comment else ""))
                  for share in s.shares]
    for obj in sharing.shared_objects(project, CATALOG_PARAMETER, SCHEMA_PARAMETER):
        comments = [f"{obj.table}: {KIND_LABELS[obj.kind]}" + (", with history" if obj.history else "")]
        if obj.pii:
            comments.append("PII shared (include_pii: true): " + ", ".join(obj.pii))
        statements.append(Statement(tuple(comments), _text("add_object", _sql_object(obj))))
    for recipient in s.recipients:
        statements.append(Statement((), _text("create_recipient", sql_ident(recipient.name), sql_string(recipient.sharing_identifier),
                                              sql_string(recipient.comment) if recipient.comment else "")))
    for recipient in s.recipients:
        for share in recipient.shares:
            statements.append(Statement((), _text("grant", sql_ident(share), sql_ident(recipient.name))))
    return Script(
        header=HEADER,
        intro=(
            "Delta Sharing, provider side: run once in a provider workspace, by the sharing setup job of its bundle target.",
            f"{CATALOG_PARAMETER} and {SCHEMA_PARAMETER} are the job's parameters (the target's ${{var.catalog}} and ${{var.schema}}):",
            f"the tables are shared from where that target's pipeline writes them, as {s.schema}.<table> (what the central views read).",
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
    statements.extend(Statement((), _text("consolidated_view", _sql_consolidated(view))) for view in sharing.consolidated_views(project))
    statements.extend(Statement((f"central view {view.name} (project.yaml central.views)",), _text("central_view", _sql_central(view)))
                      for view in sharing.central_views(project))
    return Script(
        header=HEADER,
        intro=(
            f"Delta Sharing, recipient side: run in the central workspace; views go to {s.central_catalog}.{s.central_schema}",
            f"(the catalog {s.central_catalog} must exist; the schema is created).",
            "Each provider's share is mounted as a catalog; each shared table gets an all_workspaces_<table> view that",
            "UNION ALLs it from every provider catalog with an explicit column list and a source_workspace column.",
            "Then the central views project.yaml declares (central.views), in their order.",
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
