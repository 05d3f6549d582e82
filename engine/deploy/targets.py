"""Stage: deploy. Deployment targets from specs/project.yaml `targets:` (shape: project.schema.json).

A target names one workspace and its role. Provider workspaces run the pipeline and share its
tables; the central workspace mounts every provider's share and builds the consolidated views.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import UserError
from engine.spec.model import Project


class Role(str, enum.Enum):
    PROVIDER = "provider"
    CENTRAL = "central"


@dataclass(frozen=True)
class Target:
    name: str
    role: Role
    account_identifier: str
    workspace_identifier: str
    host: str | None = None  # None: the SDK's config chain (profile, DATABRICKS_HOST, ...)
    profile: str | None = None  # a section of ~/.databrickscfg
    catalog: str | None = None
    schema: str | None = None
    warehouse_id: str | None = None  # central: where the SQL statements run

    @property
    def where(self) -> str:
        return self.host or (f"profile {self.profile}" if self.profile else "the default Databricks config")


def parse_targets(raw: Mapping[str, Any]) -> dict[str, Target]:
    """The shape is already checked by the JSON Schema; this only builds the dataclasses."""
    targets = {}
    for name, t in raw.items():
        targets[name] = Target(
            name=name,
            role=Role(t["role"]),
            account_identifier=str(t["account_identifier"]),
            workspace_identifier=str(t["workspace_identifier"]),
            host=t.get("host"),
            profile=t.get("profile"),
            catalog=t.get("catalog"),
            schema=t.get("schema"),
            warehouse_id=t.get("warehouse_id"),
        )
    return targets


def select_target(project: Project, name: str) -> Target:
    targets = parse_targets(project.settings.targets)
    if name not in targets:
        known = ", ".join(sorted(targets)) or "none (add a targets: mapping to specs/project.yaml)"
        raise UserError(f"unknown target '{name}'; known targets: {known}")
    return targets[name]


def for_target(project: Project, target: Target) -> Project:
    """The project as this target sees it: its identifiers and catalog/schema overrides applied.

    On a provider, catalog/schema are where the pipeline wrote the tables; on the central workspace
    they are where the consolidated views go (central_catalog/central_schema).
    """
    s = project.settings
    changes: dict[str, Any] = {"account_identifier": target.account_identifier,
                               "workspace_identifier": target.workspace_identifier}
    if target.role is Role.PROVIDER:
        changes.update(catalog=target.catalog or s.catalog, schema=target.schema or s.schema)
    else:
        changes.update(central_catalog=target.catalog or s.central_catalog,
                       central_schema=target.schema or s.central_schema)
    return dataclasses.replace(project, settings=dataclasses.replace(s, **changes))
