"""Stage: spec. The one shape check: the JSON Schemas shipped in this package.

Every jsonschema error becomes a located Diagnostic with a stable code. Nothing else in the
engine checks shape; semantic rules (engine.spec.rules) run only on documents that pass.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

import fastjsonschema

from engine.spec.errors import Diagnostic
from engine.spec.loader import Document
from engine.names import did_you_mean

if TYPE_CHECKING:  # jsonschema is imported only to explain a spec that fails (a fifth of a fresh start-up)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

TABLE_SCHEMA = "table.schema.json"
PROJECT_SCHEMA = "project.schema.json"
ALERT_SCHEMA = "alert.schema.json"
DASHBOARD_SCHEMA = "dashboard.schema.json"

_CODES = {
    "required": "SPEC_MISSING_KEY",
    "additionalProperties": "SPEC_UNKNOWN_KEY",
    "enum": "SPEC_BAD_VALUE",
    "type": "SPEC_WRONG_TYPE",
    "minItems": "SPEC_EMPTY",
    "minLength": "SPEC_EMPTY",
    "uniqueItems": "SPEC_DUPLICATE_ITEM",
}
_TYPE_NAMES = {"string": "a string", "array": "a list", "object": "a mapping", "boolean": "true or false",
               "integer": "a whole number", "number": "a number", "null": "nothing"}


def schema_text(name: str) -> str:
    return resources.files("engine.spec").joinpath("schemas", name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern compiled with ECMA-262 semantics, as editors apply it.

    In ECMA-262 `$` (without the multiline flag) matches only at the very end; Python's `$` also
    matches before a final newline, so `^[a-z]+$` would accept "emea\\n" and let a newline into
    generated SQL. Unescaped `$` outside character classes becomes `\\Z`.
    """
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        elif char == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(char)
    return re.compile("".join(out))


def _ecma_pattern(validator, pattern, instance, schema):
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator, validators

    schema = json.loads(schema_text(name))
    Draft202012Validator.check_schema(schema)
    return validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})(schema)


@lru_cache(maxsize=None)
def _compiled(name: str) -> Callable[[Any], Any]:
    """The same schema compiled to Python by fastjsonschema: ~20x faster on the common, valid case.

    fastjsonschema speaks draft-07, which has every keyword these schemas use; patterns are given
    in their ECMA-262 meaning (Python's `\\Z` for `$`) so both engines agree on what matches.
    """
    schema = json.loads(schema_text(name), object_hook=_ecma_patterns)
    schema = _inline_refs(schema, schema.get("$defs", {}), ())
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema, use_default=False)  # the data stays as written: defaults live in build.py


_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})


def _inline_refs(node: Any, defs: dict[str, Any], expanding: tuple[str, ...]) -> Any:
    """Every `#/$defs/x` reference replaced by a copy of its definition.

    fastjsonschema compiles a reference into a function call that formats the item's error name
    (`data.columns[3]`) before checking it, whether or not it fails: a third of the check's time on
    a 37-column spec. Inlined, the check runs in the loop itself and names are built only on failure.
    A recursive definition keeps its reference; siblings of a reference other than annotations
    still apply (2020-12 semantics), through allOf.
    """
    if isinstance(node, list):
        return [_inline_refs(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    name = ref[len("#/$defs/"):] if isinstance(ref, str) and ref.startswith("#/$defs/") else None
    if name is None or name not in defs or name in expanding:
        return {key: _inline_refs(value, defs, expanding) for key, value in node.items()}
    target = _inline_refs(defs[name], defs, (*expanding, name))
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    if set(siblings) <= _ANNOTATIONS:
        return {**target, **siblings}
    return {"allOf": [target, _inline_refs(siblings, defs, expanding)]}


def _ecma_patterns(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("pattern"), str):
        node = {**node, "pattern": ecma_regex(node["pattern"]).pattern}
    return node


def is_valid_shape(data: Any, schema_name: str) -> bool:
    try:
        _compiled(schema_name)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def validate_shape(doc: Document, schema_name: str) -> list[Diagnostic]:
    if not isinstance(doc.data, dict):
        kind = _describe(doc.data)
        return [doc.positions.diagnostic((), "SPEC_NOT_MAPPING", f"expected a mapping of spec keys, found {kind}")]
    if is_valid_shape(doc.data, schema_name):
        return []  # jsonschema below only explains what is wrong, with every error located
    diagnostics = []
    for error in _validator(schema_name).iter_errors(doc.data):
        diagnostics.extend(_to_diagnostics(doc, error))
    return diagnostics


def _to_diagnostics(doc: Document, error: ValidationError) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    positions = doc.positions
    kind = error.validator
    code = _CODES.get(kind, "SPEC_SCHEMA")
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        out = []
        for extra in sorted(set(error.instance) - set(allowed)):
            hint = did_you_mean(extra, allowed)
            out.append(positions.diagnostic(path + (extra,), code, f"unknown key '{extra}'{hint}; allowed: {', '.join(allowed)}", key=True))
        return out
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [positions.diagnostic(path, code, f"missing required key '{missing}'", key=bool(path))]
    if kind == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = did_you_mean(str(error.instance), choices)
        return [positions.diagnostic(path, code, f"'{error.instance}' is not allowed{hint}; expected one of: {', '.join(choices)}")]
    if kind == "type":
        expected = error.validator_value
        expected_text = " or ".join(_TYPE_NAMES.get(t, t) for t in (expected if isinstance(expected, list) else [expected]))
        return [positions.diagnostic(path, code, f"expected {expected_text}, found {_describe(error.instance)}")]
    if kind == "pattern":
        if "A-Za-z_" in error.validator_value and "system" not in error.validator_value:
            return [positions.diagnostic(path, "BAD_IDENTIFIER",
                                         f"{_quoted(error.instance)} is not a plain SQL identifier (letters, digits and _, not starting with a digit); it goes into generated DDL")]
        return [positions.diagnostic(path, "SPEC_BAD_FORMAT", f"{_quoted(error.instance)} does not match the expected form {error.validator_value}")]
    if kind == "not":  # a reserved value; the subschema's description says why
        reason = error.schema.get("description")
        return [positions.diagnostic(path, code, f"{_quoted(error.instance)} is reserved" + (f": {reason}" if reason else ""))]
    if kind in ("minItems", "minLength"):
        return [positions.diagnostic(path, code, "must not be empty")]
    if kind == "uniqueItems":
        return [positions.diagnostic(path, code, "list items must be unique")]
    return [positions.diagnostic(path, code, error.message)]


def _quoted(text: str) -> str:
    """'text', or Python's repr when it holds a newline or control character (made visible, not collapsed)."""
    return repr(text) if not text.isprintable() else f"'{text}'"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ('{value[:40]}')"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


