"""Stage: render. Alert specs -> Databricks SQL alerts (v2) in the bundle.

Each alert counts the rows of its table that match the condition and triggers when the count is
above zero, on a schedule by tier (P1 every 15 min, P2 every 30 min, P3 daily digest time).
Slack and webhook channels notify a workspace notification destination: a bundle variable per alert
looks its id up by display name (the spec's channel.destination, else `tablesmith <owner> <type>`),
so no id is passed at deploy time.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.render import viewmodel as vm
from engine.render.registry import RenderContext, renderer, template
from engine.runtime.queries import alert_condition, quote
from engine.spec.model import Alert, Project

RETRIGGER_SECONDS = {"P1": 3600, "P2": 3600, "P3": 86400}  # re-notify at most hourly (daily for digests)


@dataclass(frozen=True)
class AlertView:
    key: str
    display_name: str
    description: str
    query_lines: tuple[str, ...]
    schedule: str
    retrigger_seconds: int
    user_emails: tuple[str, ...]
    destination_variable: str | None


@dataclass(frozen=True)
class DestinationVariable:
    name: str
    description: str  # quoted
    destination: str  # quoted: the notification destination's display name


@dataclass(frozen=True)
class AlertsView:
    header: str
    alerts: tuple[AlertView, ...]
    variables: tuple[DestinationVariable, ...]


def destination_variable(alert: Alert) -> str | None:
    return None if alert.channel.type == "email" else f"{alert.name}_destination_id"


def destination_name(alert: Alert) -> str:
    """Display name of the workspace notification destination a slack/webhook alert notifies."""
    return alert.channel.destination or f"tablesmith {alert.owner} {alert.channel.type}"


def alerts_view(project: Project) -> AlertsView:
    views, variables = [], []
    for alert in project.alerts:
        variable = destination_variable(alert)
        if variable:
            variables.append(DestinationVariable(
                variable, vm.quoted(f"Id of the notification destination ({alert.channel.type}) alert {alert.name} notifies, found by name."),
                vm.quoted(destination_name(alert))))
        relation = f"`${{var.catalog}}`.`${{var.schema}}`.{quote(alert.table)}"
        views.append(AlertView(
            key=f"tablesmith_alert_{alert.name}",
            display_name=f"[{alert.tier.value}] {alert.name}",
            description=vm.collapse(f"{alert.description} Owner: {alert.owner}. Data may lag {alert.expected_latency_minutes} min."),
            query_lines=(f"SELECT COUNT(*) AS matching_rows FROM {relation}",
                         f"WHERE {vm.collapse(alert_condition(alert, relation))}"),
            schedule=alert.schedule,
            retrigger_seconds=RETRIGGER_SECONDS[alert.tier.value],
            user_emails=alert.channel.to,
            destination_variable=variable,
        ))
    return AlertsView(vm.HEADER, tuple(views), tuple(sorted(variables, key=lambda v: v.name)))


@renderer("alerts", "generated/resources/tablesmith_alerts.yml: Databricks SQL alerts from specs/alerts")
def render_alerts(project: Project, _context: RenderContext) -> dict[str, str]:
    if not project.alerts:
        return {}
    return {"generated/resources/tablesmith_alerts.yml": template("alerts.yml.j2").render(view=alerts_view(project))}
