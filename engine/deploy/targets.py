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
    warehouse: str | None = None  # provider: SQL warehouse (by name) of the bundle's SQL tasks and alerts
    service_principal: str | None = None  # provider: display name of the service principal its bundle runs as

    @property
    def where(self) -> str:
        return self.host or (f"profile {self.profile}" if self.profile else "the default Databricks config")

    def location(self, project: Project) -> tuple[str, str]:
        """Provider: the catalog and schema its pipeline writes to (the target's, else the project's)."""
        return self.catalog or project.settings.catalog, self.schema or project.settings.schema


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
            warehouse=t.get("warehouse"),
            service_principal=t.get("service_principal"),
        )
    return targets


def select_target(project: Project, name: str) -> Target:
    targets = parse_targets(project.settings.targets)
    if name not in targets:
        known = ", ".join(sorted(targets)) or "none (add a targets: mapping to specs/project.yaml)"
        raise UserError(f"unknown target '{name}'; known targets: {known}")
    return targets[name]


def for_target(project: Project, target: Target) -> Project:
    """The project as this target sees it: its identifiers, and on the central workspace its
    catalog/schema overrides (where the consolidated views go).

    A provider's catalog/schema overrides are not written into the settings: they say where its
    pipeline wrote the tables (`Target.location`), while the project's schema stays the name
    recipients see in the share.
    """
    s = project.settings
    changes: dict[str, Any] = {"account_identifier": target.account_identifier,
                               "workspace_identifier": target.workspace_identifier}
    if target.role is Role.CENTRAL:
        changes.update(central_catalog=target.catalog or s.central_catalog,
                       central_schema=target.schema or s.central_schema)
    return dataclasses.replace(project, settings=dataclasses.replace(s, **changes))
