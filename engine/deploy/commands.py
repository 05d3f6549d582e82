"""Stage: deploy. `tablesmith deploy plan|apply --target X`, registered with the CLI.

plan reads the workspace and prints the diff; apply computes the same diff and executes it,
printing each change. Both re-read the workspace, so apply is safe to re-run.
"""

from __future__ import annotations

import argparse
import dataclasses

from engine.cli import EXIT_OK, UserError, command, specs_argument


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="deploy_action", metavar="ACTION", required=True)
    for name, help_text in (("plan", "print what apply would change; change nothing"),
                            ("apply", "make the target workspace match the specs, printing each change")):
        child = actions.add_parser(name, help=help_text, description=help_text)
        child.add_argument("--target", required=True, help="a target from specs/project.yaml `targets:`")
        specs_argument(child)
        child.add_argument("--warehouse-id", help="SQL warehouse for the central workspace's statements (overrides the target's)")


@command("deploy", "plan/apply shares, recipients and system schemas (provider) or catalogs and views (central)", _arguments)
def cmd_deploy(args: argparse.Namespace) -> int:
    # Lazy imports: databricks.sdk takes ~2 s to import; other commands should not pay for it.
    from engine.deploy import plan as planning
    from engine.deploy.targets import Role, for_target, select_target
    from engine.deploy.workspace import Workspace
    from engine.spec import load_project

    project = load_project(args.specs)
    target = select_target(project, args.target)
    if args.warehouse_id:
        target = dataclasses.replace(target, warehouse_id=args.warehouse_id)
    project = for_target(project, target)
    if target.role is Role.CENTRAL and not target.warehouse_id:
        raise UserError(f"target {target.name} is central and has no warehouse_id: "
                        "set it under targets in specs/project.yaml or pass --warehouse-id")

    workspace = Workspace.connect(target, quiet=not getattr(args, "debug", False))
    if target.role is Role.PROVIDER:
        catalog, schema = target.location(project)
        desired = planning.provider_desired(project, catalog, schema)
        plan = planning.provider_plan(target.name, desired, workspace.provider_state(desired))
        where = f"{catalog}.{schema}"
    else:
        workspace.check_access()  # fail on credentials now, not at the first statement
        plan = planning.central_plan(target.name, project)
        where = f"warehouse {target.warehouse_id}"
    print(f"target {target.name} ({target.role.value}, {target.account_identifier}/{target.workspace_identifier}) "
          f"at {target.where}: {where}", flush=True)

    if args.deploy_action == "plan":
        for step in plan.steps:
            print(step.line)
        print(f"plan: {plan.summary()}")
        return EXIT_OK
    if not plan.changes:
        print("nothing to change")
        return EXIT_OK
    for change in plan.changes:
        print(change.line, flush=True)  # before the call: a failure then follows the line it belongs to
        workspace.apply(change)
    print(f"applied {plan.summary(('added', 'updated', 'removed'))}")
    return EXIT_OK
