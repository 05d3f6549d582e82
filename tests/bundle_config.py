"""The Databricks bundle as the CLI sees it, for tests: load, merge a target, resolve references.

This reproduces, for the parts Tablesmith's bundle uses, what `databricks bundle validate -t T` does
before it talks to a workspace (databricks/cli, bundle/config/root.go `MergeTargetOverrides`,
libs/dyn/merge, bundle/config/mutator/set_variables.go):

- databricks.yml and every file its `include` globs match are merged (maps recursively, sequences
  concatenated, scalars overridden); a resource key defined in two files is an error;
- a target's `bundle`, `workspace`, `resources`, `sync`, `permissions`, `presets` are merged into the
  root; its `variables` overwrite the root's default or lookup (a plain value is a default); `run_as`
  and `mode` overwrite;
- a variable gets its target value, else its default, else its lookup (resolved by name at deploy
  time), else it is an error: no value assigned to required variable.

Resources are then built with the typed models of Databricks' `databricks-bundles` package, which
rejects unknown and misspelt fields. The keys outside `resources` have no model in that package;
they are checked against the field lists of the CLI's own config structs, copied below.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from databricks.bundles.core._resource_type import _ResourceType
from databricks.bundles.core._transform import _variable_regex  # the CLI's reference regex (libs/dyn/dynvar/ref.go)
from databricks.bundles.jobs import JobRunAs

# Field names of the CLI's config structs (databricks/cli bundle/config/*.go, `json:` tags).
ROOT_KEYS = {"bundle", "include", "workspace", "variables", "artifacts", "resources", "targets", "environments",
             "sync", "run_as", "presets", "experimental", "permissions", "scripts", "python"}
TARGET_KEYS = {"default", "mode", "presets", "compute_id", "cluster_id", "bundle", "workspace", "artifacts", "resources",
               "variables", "git", "run_as", "sync", "permissions"}
BUNDLE_KEYS = {"name", "git", "compute_id", "cluster_id", "engine", "deployment", "databricks_cli_version", "uuid"}
WORKSPACE_KEYS = {"host", "profile", "auth_type", "client_id", "google_service_account", "azure_workspace_resource_id",
                  "azure_use_msi", "azure_client_id", "azure_tenant_id", "azure_environment", "azure_login_app_id",
                  "account_id", "workspace_id", "root_path", "file_path", "resource_path", "artifact_path", "state_path"}
PRESETS_KEYS = {"name_prefix", "pipelines_development", "trigger_pause_status", "jobs_max_concurrent_runs",
                "source_linked_deployment", "artifacts_dynamic_version", "tags"}
SYNC_KEYS = {"paths", "include", "exclude"}
PERMISSION_KEYS = {"level", "user_name", "service_principal_name", "group_name"}
PERMISSION_LEVELS = {"CAN_MANAGE", "CAN_VIEW", "CAN_RUN"}  # bundle/permissions: allowedLevels
MODES = {"development", "production"}
VARIABLE_KEYS = {"type", "default", "description", "lookup"}
# bundle/config/variable/lookup.go: the kinds a variable may look up by name.
LOOKUP_KINDS = {"alert", "cluster_policy", "cluster", "dashboard", "instance_pool", "job", "metastore",
                "notification_destination", "pipeline", "query", "service_principal", "warehouse"}
# root.go allowedVariableDefinitions: a target variable given as a map with exactly these keys is a
# full definition; any other value is shorthand for {default: value}.
FULL_OVERRIDES = [{"default", "type", "description"}, {"default", "type"}, {"default", "description"},
                  {"lookup", "description"}, {"default"}, {"lookup"}]
# Substitutions the CLI knows besides var.* and resources.* (bundle/config/bundle.go, workspace.go, User).
BUNDLE_REFS = {"name", "target", "git.branch", "git.commit", "git.origin_url", "uuid", "mode"}
WORKSPACE_REFS = WORKSPACE_KEYS | {"current_user.userName", "current_user.short_name", "current_user.domain_friendly_name",
                                   "current_user.displayName", "current_user.id"}
# bundle/config/mutator/verify_cli_version.go: the accepted constraint syntax.
_VERSION = r"(\d+\.\d+\.\d+(\-\w+)?|\d+\.\d+.\*|\d+\.\*)"
_OPERATOR = r"(>=|<=|>|<|!=)?"
CLI_VERSION_CONSTRAINT = re.compile(rf"^{_OPERATOR} ?{_VERSION}(, {_OPERATOR} {_VERSION})?$")

RESOURCE_TYPES = {t.plural_name: t.resource_type for t in _ResourceType.all()}
LOOKUP_PLACEHOLDER = "<lookup {kind}: {name}>"


class BundleError(AssertionError):
    """The configuration would not validate: a list of 'path: problem' lines."""


@dataclass(frozen=True)
class User:
    """The identity `databricks bundle` runs as (workspace.current_user)."""

    user_name: str = "alice.smith@example.com"
    short_name: str = "alice_smith"


@dataclass
class Bundle:
    root: Path
    config: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # relative path -> its YAML


def merge(a: Any, b: Any) -> Any:
    """libs/dyn/merge.Merge: maps merge recursively (b wins), sequences concatenate, scalars: b."""
    if a is None:
        return copy.deepcopy(b)
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + copy.deepcopy(b)
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        raise BundleError(f"cannot merge {type(a).__name__} with {type(b).__name__}")
    return copy.deepcopy(b)


def load(root: Path) -> Bundle:
    """databricks.yml plus every file its `include` globs match, merged as the CLI merges them."""
    main = yaml.safe_load((root / "databricks.yml").read_text())
    bundle = Bundle(root, {}, {"databricks.yml": main})
    for pattern in main.get("include", ()):
        for path in sorted(root.glob(pattern)):
            bundle.files[path.relative_to(root).as_posix()] = yaml.safe_load(path.read_text()) or {}
    problems, owners = [], {}
    for relative, document in bundle.files.items():
        for kind, items in (document.get("resources") or {}).items():
            for key in items or {}:
                if (kind, key) in owners:
                    problems.append(f"resources.{kind}.{key}: defined in {owners[kind, key]} and {relative}")
                owners[kind, key] = relative
        bundle.config = merge(bundle.config, document)
    if problems:
        raise BundleError("\n".join(problems))
    return bundle


def _unknown(keys, known: set[str], where: str) -> list[str]:
    return [f"{where}.{key}: unknown field" for key in sorted(set(keys) - known)]


def check_structure(config: dict[str, Any]) -> list[str]:
    """The keys outside `resources`, against the CLI's config structs."""
    problems = _unknown(config, ROOT_KEYS, "(root)")
    problems += _unknown(config.get("bundle", {}), BUNDLE_KEYS, "bundle")
    problems += _unknown(config.get("workspace", {}), WORKSPACE_KEYS, "workspace")
    problems += _unknown(config.get("sync", {}), SYNC_KEYS, "sync")
    problems += _unknown(config.get("presets", {}), PRESETS_KEYS, "presets")
    constraint = config.get("bundle", {}).get("databricks_cli_version")
    if constraint is not None and not CLI_VERSION_CONSTRAINT.match(str(constraint)):
        problems.append(f"bundle.databricks_cli_version: invalid version constraint {constraint!r}")
    for name, variable in (config.get("variables") or {}).items():
        if not isinstance(variable, dict):
            problems.append(f"variables.{name}: must be a mapping")
            continue
        problems += _unknown(variable, VARIABLE_KEYS, f"variables.{name}")
        problems += _lookup_problems(variable.get("lookup"), f"variables.{name}.lookup")
    problems += _permission_problems(config.get("permissions") or [], "permissions")
    problems += _run_as_problems(config.get("run_as"), "run_as")
    for name, target in (config.get("targets") or {}).items():
        where = f"targets.{name}"
        problems += _unknown(target, TARGET_KEYS, where)
        if target.get("mode") is not None and target["mode"] not in MODES:
            problems.append(f"{where}.mode: must be development or production, not {target['mode']!r}")
        problems += _unknown(target.get("workspace") or {}, WORKSPACE_KEYS, f"{where}.workspace")
        problems += _unknown(target.get("presets") or {}, PRESETS_KEYS, f"{where}.presets")
        problems += _permission_problems(target.get("permissions") or [], f"{where}.permissions")
        problems += _run_as_problems(target.get("run_as"), f"{where}.run_as")
        for variable, value in (target.get("variables") or {}).items():
            if variable not in (config.get("variables") or {}):
                problems.append(f"{where}.variables.{variable}: variable has not been defined")
            elif isinstance(value, dict) and set(value) in FULL_OVERRIDES:
                problems += _lookup_problems(value.get("lookup"), f"{where}.variables.{variable}.lookup")
    return problems


def _lookup_problems(lookup: Any, where: str) -> list[str]:
    if lookup is None:
        return []
    if not isinstance(lookup, dict) or len(lookup) != 1:
        return [f"{where}: exactly one lookup field must be provided"]
    return _unknown(lookup, LOOKUP_KINDS, where)


def _permission_problems(permissions: list, where: str) -> list[str]:
    problems = []
    for i, permission in enumerate(permissions):
        problems += _unknown(permission, PERMISSION_KEYS, f"{where}[{i}]")
        if permission.get("level") not in PERMISSION_LEVELS:
            problems.append(f"{where}[{i}].level: must be one of {sorted(PERMISSION_LEVELS)}")
        if sum(1 for key in ("user_name", "service_principal_name", "group_name") if permission.get(key)) != 1:
            problems.append(f"{where}[{i}]: exactly one of user_name, service_principal_name, group_name")
    return problems


def _run_as_problems(run_as: Any, where: str) -> list[str]:
    if run_as is None:
        return []
    try:
        parsed = JobRunAs.from_dict(copy.deepcopy(run_as))  # the top-level run_as is a jobs.JobRunAs
    except Exception as exc:  # noqa: BLE001 - the package raises ValueError/TypeError; report any
        return [f"{where}: {exc}"]
    if bool(parsed.user_name) == bool(parsed.service_principal_name):
        return [f"{where}: run_as section must specify exactly one identity"]
    return []


def for_target(bundle: Bundle, target: str) -> dict[str, Any]:
    """root.go MergeTargetOverrides: the configuration `-t target` deploys (references unresolved)."""
    config = copy.deepcopy(bundle.config)
    targets = config.pop("targets", {}) or {}
    if target not in targets:
        raise BundleError(f"{target}: no such target; targets are {sorted(targets)}")
    override = targets[target] or {}
    for key in ("bundle", "workspace", "artifacts", "resources", "sync", "permissions", "presets"):
        if key in override:
            config[key] = merge(config.get(key), override[key])
    variables = config.setdefault("variables", {})
    for name, value in (override.get("variables") or {}).items():
        if not (isinstance(value, dict) and set(value) in FULL_OVERRIDES):
            value = {"default": value}  # rewriteShorthands
        definition = variables.setdefault(name, {})
        if "default" in value:
            definition["default"], definition["lookup"] = value["default"], None
        if "lookup" in value:
            definition["lookup"], definition["default"] = value["lookup"], None
    if "run_as" in override:
        config["run_as"] = copy.deepcopy(override["run_as"])
    config.setdefault("bundle", {})["target"] = target
    if "mode" in override:
        config["bundle"]["mode"] = override["mode"]
    return config


def variable_values(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """set_variables.go: default, else the lookup (its value is known only at deploy), else an error."""
    values, problems = {}, []
    for name, definition in (config.get("variables") or {}).items():
        if definition.get("default") is not None:
            values[name] = definition["default"]
        elif definition.get("lookup"):
            (kind, lookup_name), = definition["lookup"].items()
            values[name] = LOOKUP_PLACEHOLDER.format(kind=kind, name=lookup_name)
        else:
            problems.append(f"variables.{name}: no value assigned to required variable {name} "
                            f"(it would need --var {name}=...)")
    return values, problems


def references(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ${...} reference in a configuration tree: (where, reference path)."""
    if isinstance(value, dict):
        return [r for key, item in value.items() for r in references(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [r for i, item in enumerate(value) for r in references(item, f"{path}[{i}]")]
    if isinstance(value, str):
        return [(path, match.group(1)) for match in _variable_regex.finditer(value)]
    return []


def reference_problems(config: dict[str, Any]) -> list[str]:
    """Every reference names something that exists: a declared variable, a bundle or workspace field,
    or a resource of this bundle and one of its fields (id, url or a field of its typed model)."""
    variables = config.get("variables") or {}
    resources = config.get("resources") or {}
    problems = []
    for where, ref in references({k: v for k, v in config.items() if k != "targets"}):
        head, _, rest = ref.partition(".")
        if head == "var":
            name = rest.split(".")[0].split("[")[0]
            if name not in variables:
                problems.append(f"{where}: ${{{ref}}} names no declared variable")
        elif head == "bundle":
            if rest not in BUNDLE_REFS:
                problems.append(f"{where}: ${{{ref}}} is not a bundle field")
        elif head == "workspace":
            if rest not in WORKSPACE_REFS:
                problems.append(f"{where}: ${{{ref}}} is not a workspace field")
        elif head == "resources":
            parts = rest.split(".")
            if len(parts) < 3:
                problems.append(f"{where}: ${{{ref}}} must be resources.<kind>.<key>.<field>")
                continue
            kind, key, attribute = parts[0], parts[1], parts[2].split("[")[0]
            model = RESOURCE_TYPES.get(kind)
            if model is None or key not in (resources.get(kind) or {}):
                problems.append(f"{where}: ${{{ref}}} names no resource of this bundle")
            elif attribute not in {"id", "url"} | {f.name for f in dataclasses.fields(model)}:
                problems.append(f"{where}: ${{{ref}}}: {model.__name__} has no field {attribute}")
        else:
            problems.append(f"{where}: ${{{ref}}} is not a known kind of reference")
    return problems


def resolve(config: dict[str, Any], user: User = User()) -> dict[str, Any]:
    """Substitute var.*, bundle.* and workspace.* as the CLI does at validate (lookups become a
    placeholder naming them; resources.* stay: their values exist only after deploy)."""
    values, problems = variable_values(config)
    if problems:
        raise BundleError("\n".join(problems))
    name, target = config["bundle"]["name"], config["bundle"]["target"]
    home = f"/Workspace/Users/{user.user_name}"
    known = {"bundle.name": name, "bundle.target": target,
             "workspace.current_user.userName": user.user_name, "workspace.current_user.short_name": user.short_name}
    root_path = (config.get("workspace") or {}).get("root_path") or f"{home}/.bundle/{name}/{target}"
    root_path = _substitute(root_path, known, values)
    known.update({"workspace.root_path": root_path, "workspace.file_path": f"{root_path}/files"})
    return _substitute({k: v for k, v in config.items() if k != "variables"}, known, values)


def _substitute(value: Any, known: dict[str, str], variables: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, known, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, known, variables) for v in value]
    if not isinstance(value, str):
        return value
    for _ in range(10):  # variables may reference other variables or workspace fields
        def replace(match: re.Match) -> str:
            ref = match.group(1)
            if ref.startswith("var."):
                return str(variables[ref[4:]])
            return known.get(ref, match.group(0))

        new = _variable_regex.sub(replace, value)
        if new == value:
            return value
        value = new
    raise BundleError(f"reference cycle in {value!r}")


def typed_resources(config: dict[str, Any]) -> tuple[dict[tuple[str, str], Any], list[str]]:
    """Each resource built with databricks-bundles' model for its kind (unknown fields rejected)."""
    built, problems = {}, []
    for kind, items in (config.get("resources") or {}).items():
        model = RESOURCE_TYPES.get(kind)
        if model is None:
            problems.append(f"resources.{kind}: not a resource kind of databricks-bundles")
            continue
        for key, value in (items or {}).items():
            try:
                built[kind, key] = model.from_dict(copy.deepcopy(value))
            except Exception as exc:  # noqa: BLE001 - ValueError/TypeError/KeyError from the models
                problems.append(f"resources.{kind}.{key}: {exc}")
    return built, problems
