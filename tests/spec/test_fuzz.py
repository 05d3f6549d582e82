"""Random mutations of valid specs: the validator answers with SpecError or a Project, nothing else."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.spec import SpecError, load_project

HERE = Path(__file__).parent
BASE = HERE / "base"
VALID = (BASE / "billing" / "base_daily.yaml").read_text()

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _paths(document) -> list[tuple]:
    """Every key path of a parsed document, the root first."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,))

    walk(document, ())
    return paths


def _validate(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "specs"
        shutil.copytree(BASE, specs)
        target = specs / "billing" / "base_daily.yaml"
        target.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            load_project(specs)
        except SpecError as exc:
            assert exc.diagnostics, "a SpecError always carries diagnostics"
            for diagnostic in exc.diagnostics:
                assert diagnostic.line >= 1 and diagnostic.code and diagnostic.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_text_mutations_never_crash(data):
    lines = VALID.splitlines(keepends=True)
    operation = data.draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "truncate", "bytes"]))
    index = data.draw(st.integers(0, len(lines) - 1))
    if operation == "delete":
        del lines[index]
    elif operation == "duplicate":
        lines.insert(index, lines[index])
    elif operation == "replace":
        lines[index] = data.draw(st.text(max_size=40)) + "\n"
    elif operation == "insert":
        lines.insert(index, data.draw(st.sampled_from(["  ", "- ", ": ", "\t", "{", "[", "&a ", "*a ", "!!binary ", "<<: *a"])) + lines[index])
    elif operation == "truncate":
        lines = lines[:index]
    else:
        _validate(data.draw(st.binary(max_size=200)))
        return
    _validate("".join(lines))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_structural_mutations_never_crash(data):
    document = yaml.safe_load(VALID)
    paths = _paths(document)
    path = data.draw(st.sampled_from(paths[1:]))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(values)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    _validate(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_and_reference_schema_validators_agree(data):
    """The compiled fast path (fastjsonschema) never accepts what jsonschema rejects, nor the reverse."""
    from engine.spec.schema import TABLE_SCHEMA, _validator, is_valid_shape

    document = yaml.safe_load(VALID)
    paths = _paths(document)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths[1:]))
        parent = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            if data.draw(st.booleans()):
                parent[path[-1]] = data.draw(st.one_of(values, st.sampled_from(["x\n", "ok", "a b", "", "1x", "bad-name"])))
            elif isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation removed or replaced this path
    reference_valid = not any(True for _ in _validator(TABLE_SCHEMA).iter_errors(document))
    assert is_valid_shape(document, TABLE_SCHEMA) == reference_valid, document
