"""Stage: spec. The compiled manifest: the validated Project as JSON, read back without any check.

    text = dumps(project, specs_path="specs")     # `tablesmith generate` -> generated/manifest.json
    project = read_manifest(Path(".../generated/manifest.json"))   # the pipeline, at start

dbt's manifest.json is the model: the checks (YAML positions, JSON Schema, sqlglot rules) run once,
in `tablesmith validate` / `generate` / CI, and the pipeline reads only their result, with the
standard library. So a Databricks pipeline needs neither jsonschema nor sqlglot, registers exactly
what was validated, and `generate --check` fails when the manifest is older than the specs.

The encoding follows the frozen model (engine.spec.model) field by field, so a field added there
is carried without a change here; `tests/runtime/test_manifest.py` proves the round trip gives the
same Project for every spec folder of the repository.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.spec.loader import Location
from engine.spec.model import Project

MANIFEST_PATH = "generated/manifest.json"  # relative to the project (bundle) root
MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """The manifest is missing, unreadable or from another engine version: regenerate it."""


# --- writing ---------------------------------------------------------------------------------------

def to_manifest(project: Project, specs_path: str = "specs", comment: str = "") -> dict[str, Any]:
    """Plain JSON data. `comment` goes first (JSON has none: e.g. the do-not-edit header). Locations
    name files from the project root (`specs/billing/x.yaml:3:1`) whatever folder `generate` ran
    from, so the file is the same on every machine."""
    specs_root = Path(project.specs_dir).resolve()

    def relocate(location: Location) -> str:
        try:
            relative = Path(location.file).resolve().relative_to(specs_root).as_posix()
            file = f"{specs_path}/{relative}"
        except ValueError:  # not under the specs folder: keep what the loader recorded
            file = location.file
        return f"{file}:{location.line}:{location.col}"  # as diagnostics print it

    encoded = _encode(project, relocate)
    encoded["specs_dir"] = specs_path
    return {
        **({"_comment": comment} if comment else {}),
        "metadata": {
            "manifest_version": MANIFEST_VERSION,
            "generated_by": "tablesmith generate",
            "specs_path": specs_path,
        },
        "project": encoded,
    }


def dumps(project: Project, specs_path: str = "specs", comment: str = "") -> str:
    return json.dumps(to_manifest(project, specs_path, comment), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _encode(value: Any, relocate: typing.Callable[[Location], str]) -> Any:
    if isinstance(value, Location):
        return relocate(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name), relocate) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _encode(item, relocate) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_encode(item, relocate) for item in value]
    return value


# --- reading ---------------------------------------------------------------------------------------

def read_manifest(path: Path) -> Project:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"tablesmith manifest {path} not found: run `tablesmith generate` and deploy the bundle "
                            f"(the pipeline registers the compiled specs in {MANIFEST_PATH})") from None
    except OSError as exc:
        raise ManifestError(f"cannot read tablesmith manifest {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): run `tablesmith generate`") from None
    return from_manifest(data, source=str(path))


def from_manifest(data: Any, source: str = "manifest") -> Project:
    version = data.get("metadata", {}).get("manifest_version") if isinstance(data, dict) else None
    if version != MANIFEST_VERSION:
        raise ManifestError(f"{source}: manifest version {version!r}, this engine reads version {MANIFEST_VERSION}: "
                            f"run `tablesmith generate` with the engine you deploy")
    try:
        return _decode(Project, data["project"], "project")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{source}: not a manifest this engine can read ({exc}): run `tablesmith generate`") from None


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value  # free-form data (e.g. `targets`): JSON values as they were written
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:  # e.g. `str | tuple[str, str]`: the first that fits
            try:
                return _decode(option, value, where)
            except (TypeError, ValueError):
                continue
        return _decode(options[-1], value, where)
    if hint is Location:
        file, line, col = value.rsplit(":", 2)
        return Location(file, int(line), int(col))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object for {hint.__name__}")
        hints = _hints(hint)
        fields = {f.name: f for f in dataclasses.fields(hint) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown field {unknown[0]!r} for {hint.__name__}")
        return hint(**{name: _decode(hints[name], value[name], f"{where}.{name}") for name in fields if name in value})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list")
        item = args[0]
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object")
        return types.MappingProxyType({key: _decode(args[1], item, f"{where}.{key}") for key, item in value.items()})
    if hint in (str, int, float, bool):
        if not isinstance(value, hint):
            raise TypeError(f"{where}: expected {hint.__name__}, found {type(value).__name__}")
        return value
    raise TypeError(f"{where}: the manifest reader does not know the type {hint!r}")
