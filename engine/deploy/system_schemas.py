"""Stage: deploy. The one rule for a system schema's state: keep it, enable it, or stop.

    decide("lakeflow", "AVAILABLE")  ->  Decision(action=Action.ENABLE, ...)

Used by `tablesmith deploy plan|apply` (engine/deploy/plan.py) and by the enable-system-schemas
job notebook (generated/jobs/enable_system_schemas.py), which imports this module from the bundle
root synced to the workspace: the standard library only, so the two can never disagree.

States as the API documents them (databricks-sdk `SystemSchemaInfo.state`, a string;
docs.databricks.com/api/workspace/systemschemas): AVAILABLE (can be enabled; an empty string
means the same), ENABLE_INITIALIZED (being enabled), ENABLE_COMPLETED (enabled),
DISABLE_INITIALIZED (being disabled), UNAVAILABLE (cannot be enabled at the moment), MANAGED
(Databricks enables it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Action(str, enum.Enum):
    KEEP = "keep"  # enabled, or being enabled: nothing to do
    ENABLE = "enable"
    FAIL = "fail"  # only the user (or Databricks) can change this


@dataclass(frozen=True)
class Decision:
    schema: str
    state: str  # as listed; "" = available
    action: Action
    reason: str


_RULES: dict[str, tuple[Action, str]] = {
    "ENABLE_COMPLETED": (Action.KEEP, "already enabled"),
    "MANAGED": (Action.KEEP, "already enabled (managed by Databricks)"),
    "ENABLE_INITIALIZED": (Action.KEEP, "being enabled (ENABLE_INITIALIZED)"),
    "AVAILABLE": (Action.ENABLE, "available"),
    "": (Action.ENABLE, "available"),
    # Being disabled while the tables need it: ask for it again (the API answers if it cannot).
    "DISABLE_INITIALIZED": (Action.ENABLE, "being disabled (DISABLE_INITIALIZED)"),
    "UNAVAILABLE": (Action.FAIL, "its state is UNAVAILABLE"),
}
DOCUMENTED_STATES = frozenset(state for state in _RULES if state)


def state_name(raw: Any) -> str:
    """The state as the API spells it, whether the SDK gives a string, an enum, or None."""
    if raw is None:
        return ""
    return str(getattr(raw, "value", raw))


def decide(schema: str, state: Any) -> Decision:
    """`state`: the listed state, or None when this metastore does not list the schema."""
    if state is None:
        return Decision(schema, "", Action.FAIL, "this metastore does not offer it")
    name = state_name(state)
    action, reason = _RULES.get(name, (Action.FAIL, f"its state is {name}, which this engine does not know"))
    return Decision(schema, name, action, reason)
