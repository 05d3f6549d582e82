"""Stage: deploy. The pure diff: what the specs want vs what the workspace has -> ordered changes.

Nothing here talks to Databricks. `workspace.py` reads the actual state into the dataclasses below
and executes the changes; the CLI prints them. Every step, including the ones that need no
change ("="), is a `Change`, so plan and apply print the same lines.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from engine.deploy.system_schemas import Action, decide
from engine.errors import UserError
from engine.render.sharing import recipient_statements
from engine.sharing import shared_objects
from engine.spec.model import Project

# --- desired state (from the specs) ---------------------------------------------------------------

# A share built before Tablesmith sent STREAMING_TABLE (or by `ALTER SHARE ... ADD TABLE`) may list a
# streaming table as TABLE: the same object, so it is not removed and re-added for that alone.
_SAME_TYPE = {"STREAMING_TABLE": "TABLE"}


@dataclass(frozen=True)
class SharedObjectSpec:
    """One object of a share as the API sees it: plain names, no SQL quoting."""

    share: str
    name: str  # catalog.schema.table
    data_object_type: str  # STREAMING_TABLE | MATERIALIZED_VIEW | VIEW (SharedDataObjectDataObjectType)
    shared_as: str  # schema.alias, or schema.table when the spec sets no alias
    history: bool | None  # None for views and materialized views (no history clause)
    comment: str = ""

    @property
    def kind(self) -> str:
        return self.data_object_type.lower().replace("_", " ")


@dataclass(frozen=True)
class RecipientSpec:
    name: str
    sharing_identifier: str
    comment: str = ""


@dataclass(frozen=True)
class ProviderDesired:
    system_schemas: tuple[str, ...]
    shares: tuple[tuple[str, str], ...]  # (name, comment)
    objects: tuple[SharedObjectSpec, ...]
    recipients: tuple[RecipientSpec, ...]
    grants: tuple[tuple[str, str], ...]  # (share, recipient)


def provider_desired(project: Project, catalog: str | None = None, schema: str | None = None) -> ProviderDesired:
    """What the specs want shared; `catalog`/`schema`: where the target's pipeline wrote the tables."""
    s = project.settings
    objects = [
        SharedObjectSpec(share=obj.share, name=obj.full_name, data_object_type=obj.data_object_type,
                         shared_as=obj.shared_as, history=obj.history, comment=obj.description)
        for obj in shared_objects(project, catalog, schema)  # the one model the SQL renderer also uses
    ]
    shares = {share.name: share.comment for share in s.shares}
    for o in objects:
        shares.setdefault(o.share, "")
    return ProviderDesired(
        system_schemas=tuple(sorted({schema for t in project.tables for schema in t.requires})),
        shares=tuple(shares.items()),
        objects=tuple(objects),
        recipients=tuple(RecipientSpec(r.name, r.sharing_identifier, r.comment) for r in s.recipients),
        grants=tuple((share, r.name) for r in s.recipients for share in r.shares),
    )


# --- actual state (read by workspace.py) ----------------------------------------------------------

@dataclass(frozen=True)
class ActualObject:
    name: str
    data_object_type: str
    shared_as: str | None
    history: bool | None
    comment: str = ""


@dataclass(frozen=True)
class ProviderState:
    system_schemas: Mapping[str, str]  # schema -> state; a schema not listed is not offered here
    shares: Mapping[str, tuple[ActualObject, ...]]  # existing shares only
    recipients: Mapping[str, str]  # existing recipient -> its data_recipient_global_metastore_id
    grants: frozenset[tuple[str, str]]  # (share, recipient) holding SELECT
    missing_tables: frozenset[str]  # desired objects whose table/view does not exist


# --- changes ----------------------------------------------------------------------------------------

class Kind(str, enum.Enum):
    KEEP = "keep"  # already as specified: printed with "=", nothing to do
    ENABLE_SCHEMA = "enable_schema"
    CREATE_SHARE = "create_share"
    REMOVE_OBJECT = "remove_object"
    UPDATE_OBJECT = "update_object"
    ADD_OBJECT = "add_object"
    CREATE_RECIPIENT = "create_recipient"
    GRANT = "grant"
    RUN_SQL = "run_sql"


_SYMBOLS = {Kind.KEEP: "=", Kind.REMOVE_OBJECT: "-", Kind.UPDATE_OBJECT: "~"}


@dataclass(frozen=True)
class Change:
    kind: Kind
    text: str  # what is printed after the symbol
    subject: str = ""  # schema, share, recipient or SQL statement the change acts on
    obj: SharedObjectSpec | None = None
    recipient: RecipientSpec | None = None
    comment: str = ""  # a new share's comment

    @property
    def line(self) -> str:
        return f"{_SYMBOLS.get(self.kind, '+')} {self.text}"


@dataclass(frozen=True)
class DeployPlan:
    target: str
    steps: tuple[Change, ...]

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(step for step in self.steps if step.kind is not Kind.KEEP)

    def summary(self, verbs: tuple[str, str, str] = ("to add", "to update", "to remove")) -> str:
        changes = self.changes
        if not changes:
            return "nothing to change"
        counts = [sum(1 for c in changes if c.line[0] == symbol) for symbol in "+~-"]
        noun = "change" if len(changes) == 1 else "changes"
        return f"{len(changes)} {noun}: " + ", ".join(f"{n} {verb}" for n, verb in zip(counts, verbs))


def provider_plan(target: str, desired: ProviderDesired, actual: ProviderState) -> DeployPlan:
    _check_prerequisites(desired, actual)
    steps: list[Change] = []
    steps.extend(_system_schema_steps(desired, actual))
    for share, comment in desired.shares:
        steps.extend(_share_steps(share, comment, [o for o in desired.objects if o.share == share], actual))
    for recipient in desired.recipients:
        if recipient.name in actual.recipients:
            steps.append(Change(Kind.KEEP, f"recipient {recipient.name} exists", recipient.name))
        else:
            steps.append(Change(Kind.CREATE_RECIPIENT, f"create recipient {recipient.name} ({recipient.sharing_identifier})",
                                recipient.name, recipient=recipient))
    for share, recipient in desired.grants:
        if (share, recipient) in actual.grants:
            steps.append(Change(Kind.KEEP, f"recipient {recipient} has SELECT on share {share}", share))
        else:
            steps.append(Change(Kind.GRANT, f"grant SELECT on share {share} to recipient {recipient}", share,
                                recipient=RecipientSpec(recipient, "")))
    return DeployPlan(target, tuple(steps))


def _check_prerequisites(desired: ProviderDesired, actual: ProviderState) -> None:
    """Problems only the user can fix, found before any write."""
    for schema in desired.system_schemas:
        decision = decide(schema, actual.system_schemas.get(schema))
        if decision.action is Action.FAIL:
            offered = f" (offered: {', '.join(sorted(actual.system_schemas)) or 'none'})" if schema not in actual.system_schemas else ""
            raise UserError(f"system schema {schema} cannot be enabled: {decision.reason}{offered}")
    if actual.missing_tables:
        names = sorted(actual.missing_tables)
        verb = "does" if len(names) == 1 else "do"
        raise UserError(f"table{'s' if len(names) > 1 else ''} {', '.join(names)} {verb} not exist: run the pipeline first")
    for recipient in desired.recipients:
        existing = actual.recipients.get(recipient.name)
        if existing is not None and existing.lower() != recipient.sharing_identifier.lower():
            raise UserError(f"recipient {recipient.name} exists with sharing identifier {existing or '(none)'}, "
                            f"not {recipient.sharing_identifier}: fix specs/project.yaml or drop the recipient")


def _system_schema_steps(desired: ProviderDesired, actual: ProviderState) -> list[Change]:
    steps = []
    for schema in desired.system_schemas:
        decision = decide(schema, actual.system_schemas[schema])  # FAIL was raised by the prerequisites
        if decision.action is Action.KEEP:
            steps.append(Change(Kind.KEEP, f"system schema {schema} {decision.reason}", schema))
        else:
            note = "" if decision.reason == "available" else f" ({decision.reason})"
            steps.append(Change(Kind.ENABLE_SCHEMA, f"enable system schema {schema}{note}", schema))
    return steps


def _share_steps(share: str, comment: str, wanted: list[SharedObjectSpec], actual: ProviderState) -> list[Change]:
    existing = actual.shares.get(share)
    if existing is None:
        steps = [Change(Kind.CREATE_SHARE, f"create share {share}", share, comment=comment)]
        existing = ()
    else:
        steps = [Change(Kind.KEEP, f"share {share} exists", share)]
    have = {o.name: o for o in existing}
    want = {o.name: o for o in wanted}
    # Removals first: a removed object may free the alias an added one takes.
    for obj in existing:
        if obj.name not in want:
            steps.append(Change(Kind.REMOVE_OBJECT, f"remove {_kind(obj.data_object_type)} {obj.name} from share {share}", share,
                                obj=SharedObjectSpec(share, obj.name, obj.data_object_type, obj.shared_as or "", obj.history)))
    for obj in wanted:
        current = have.get(obj.name)
        if current is not None and _type(current.data_object_type) != _type(obj.data_object_type):
            # The kind changed (e.g. a view became a table): the API cannot alter the type in place.
            steps.append(Change(Kind.REMOVE_OBJECT, f"remove {_kind(current.data_object_type)} {obj.name} from share {share} "
                                f"(now a {obj.kind})", share, obj=obj))
            current = None
        if current is None:
            history = " with history" if obj.history else ""
            steps.append(Change(Kind.ADD_OBJECT, f"add {obj.kind} {obj.name} to share {share} as {obj.shared_as}{history}",
                                share, obj=obj))
            continue
        differences = _differences(current, obj)
        if differences:
            steps.append(Change(Kind.UPDATE_OBJECT, f"alter {obj.kind} {obj.name} in share {share}: {', '.join(differences)}",
                                share, obj=obj))
        else:
            steps.append(Change(Kind.KEEP, f"{obj.kind} {obj.name} shared as {obj.shared_as}", share, obj=obj))
    return steps


def _differences(current: ActualObject, obj: SharedObjectSpec) -> list[str]:
    out = []
    default_alias = ".".join(obj.name.split(".")[1:])
    if (current.shared_as or default_alias) != obj.shared_as:
        out.append(f"alias {current.shared_as or default_alias} -> {obj.shared_as}")
    if obj.history is not None and bool(current.history) != obj.history:
        out.append(f"history {'on' if obj.history else 'off'}")
    if (current.comment or "") != obj.comment:
        out.append("comment")
    return out


def _type(data_object_type: str) -> str:
    return _SAME_TYPE.get(data_object_type, data_object_type)


def _kind(data_object_type: str) -> str:
    return data_object_type.lower().replace("_", " ")


# --- central workspace --------------------------------------------------------------------------------

def central_plan(target: str, project: Project) -> DeployPlan:
    """The recipient statements, each run as is: idempotent by IF NOT EXISTS / CREATE OR REPLACE."""
    steps = [Change(Kind.RUN_SQL, "run " + _first_line(sql), sql) for sql in recipient_statements(project)]
    return DeployPlan(target, tuple(steps))


def _first_line(sql: str) -> str:
    return sql.strip().splitlines()[0]
