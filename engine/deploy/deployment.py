"""Stage: deploy. One deployment: the target chosen, its workspace connected, the plan computed.

`prepare` reads the workspace and computes the diff; `apply` executes it, change by change. Both
re-read the workspace, so apply is safe to re-run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from engine.deploy import plan as planning
from engine.deploy.plan import Change, DeployPlan
from engine.deploy.targets import Role, Target, for_target, select_target
from engine.deploy.workspace import Workspace
from engine.errors import UserError
from engine.spec.model import Project


@dataclass(frozen=True)
class Deployment:
    target: Target
    location: str  # where the target's objects are: `catalog.schema` (provider) or its SQL warehouse (central)
    plan: DeployPlan
    workspace: Workspace


def prepare(project: Project, target_name: str, *, warehouse_id: str | None = None, quiet: bool = True) -> Deployment:
    """Connect to the target's workspace and compute what would change; change nothing."""
    target = select_target(project, target_name)
    if warehouse_id:
        target = dataclasses.replace(target, warehouse_id=warehouse_id)
    project = for_target(project, target)
    if target.role is Role.CENTRAL and not target.warehouse_id:
        raise UserError(f"target {target.name} is central and has no warehouse_id: "
                        "set it under targets in specs/project.yaml or pass --warehouse-id")
    workspace = Workspace.connect(target, quiet=quiet)
    if target.role is Role.PROVIDER:
        catalog, schema = target.location(project)
        desired = planning.provider_desired(project, catalog, schema)
        plan = planning.provider_plan(target.name, desired, workspace.provider_state(desired))
        return Deployment(target, f"{catalog}.{schema}", plan, workspace)
    workspace.check_access()  # fail on credentials now, not at the first statement
    return Deployment(target, f"warehouse {target.warehouse_id}", planning.central_plan(target.name, project), workspace)


def apply(deployment: Deployment, before_each: Callable[[Change], None] = lambda change: None) -> None:
    """Execute the plan's changes in order; `before_each` is told of a change before its call, so a
    failure follows the change it belongs to."""
    for change in deployment.plan.changes:
        before_each(change)
        deployment.workspace.apply(change)
