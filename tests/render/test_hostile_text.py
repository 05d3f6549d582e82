"""Hostile spec text never becomes code in anything `generate` writes.

Every spec field that reaches an output is filled with attacker-chosen text (newlines, quotes,
comment markers, ANSI escapes, HTML). Either `validate` rejects it, or the generated files have the
same structure as with harmless text: the same SQL token types (sqlglot's Databricks tokenizer,
which drops comments, so a newline escaping a `--` comment shows up as new tokens), the same YAML
shape, the same Markdown lines. No spark needed.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlglot.dialects.databricks import Databricks

from engine import escape
from engine.render.registry import render_all
from engine.spec import SpecError, load_project

FIXTURE = Path(__file__).parent / "fixture_specs"
BENIGN = "plain text"
DATABRICKS = Databricks()

# Where a value lands in the fixture project: (file relative to specs/, key path).
FIELDS = {
    "table description": ("billing/daily_cost.yaml", ("description",)),
    "column description": ("billing/daily_cost.yaml", ("columns", 2, "description")),
    "expectation name": ("billing/daily_cost.yaml", ("expectations", 0, "name")),
    "share comment": ("project.yaml", ("shares", 0, "comment")),
    "recipient comment": ("project.yaml", ("recipients", 0, "comment")),
    "provider name": ("project.yaml", ("providers", 0, "name")),
    "provider account": ("project.yaml", ("providers", 0, "account_identifier")),
    "workspace identifier": ("project.yaml", ("workspace_identifier",)),
    "catalog": ("project.yaml", ("catalog",)),
    "central schema": ("project.yaml", ("central", "schema")),
}

PAYLOADS = [
    "emea\n",
    "x';DROP TABLE main.monitoring.PWNED;--",
    "x\n;DROP TABLE main.monitoring.PWNED;--",
    "a`b\nDROP TABLE t; --",
    "*/ DROP TABLE t; /*",
    "x\\' ; SELECT 1 --",
    "\x1b[32mok\x1b[0m",
    "<script>alert(1)</script>| --- |",
    "line\u2028DROP TABLE t",
    "\r\nGRANT ALL PRIVILEGES ON CATALOG main TO `everyone`",
]
HOSTILE_CHARS = st.sampled_from(list("\n\r\t'\"`\\;-*/<>|&{}$#%\x1b\x00\u2028 ") + ["--", "/*", "*/", "DROP", "SELECT"])
hostile_text = st.one_of(
    st.sampled_from(PAYLOADS),
    st.lists(st.one_of(HOSTILE_CHARS, st.text(st.characters(blacklist_categories=("Cs",)), max_size=4)),
             min_size=1, max_size=12).map("".join),
)


def _write_project(tmp: Path, field: str, value: str) -> Path:
    specs = tmp / "specs"
    if specs.exists():
        shutil.rmtree(specs)
    shutil.copytree(FIXTURE, specs)
    relative, path = FIELDS[field]
    target = specs / relative
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return specs


def _render(tmp: Path, field: str, value: str) -> dict[str, str] | None:
    try:
        project = load_project(_write_project(tmp, field, value))
    except SpecError:
        return None  # rejected with located diagnostics: nothing is generated
    return render_all(project)


def _sql_shape(text: str) -> list[str]:
    return [token.token_type.name for token in DATABRICKS.tokenize(text)] if text else []


def _yaml_shape(node):
    if isinstance(node, dict):
        return {key: _yaml_shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_yaml_shape(value) for value in node]
    return type(node).__name__


def _assert_same_structure(hostile: dict[str, str], benign: dict[str, str], value: str) -> None:
    assert sorted(hostile) == sorted(benign)
    for path, text in hostile.items():
        if path.endswith(".sql"):
            assert _sql_shape(text) == _sql_shape(benign[path]), f"{path}: hostile text changed the SQL tokens ({value!r})"
        elif path.endswith((".yml", ".yaml")):
            assert _yaml_shape(yaml.safe_load(text)) == _yaml_shape(yaml.safe_load(benign[path])), f"{path}: YAML shape changed ({value!r})"
        elif path.endswith(".md"):
            assert text.count("\n") == benign[path].count("\n"), f"{path}: hostile text added lines ({value!r})"
            assert text.count("<") == benign[path].count("<"), f"{path}: raw HTML from spec text ({value!r})"
        assert "\x1b" not in text, f"{path}: raw escape character from spec text"


@pytest.fixture(scope="module")
def benign_outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("benign")
    outputs = {}
    for field in FIELDS:
        value = BENIGN.replace(" ", "_") if field in ("provider name", "catalog", "central schema", "expectation name") else BENIGN.replace(" ", "-")
        rendered = _render(tmp, field, value)
        assert rendered is not None, f"the benign value of {field} must validate"
        outputs[field] = rendered
    return outputs


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_known_payloads_are_rejected_or_inert(field, payload, benign_outputs, tmp_path):
    rendered = _render(tmp_path, field, payload)
    if rendered is not None:
        _assert_same_structure(rendered, benign_outputs[field], payload)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), value=hostile_text)
def test_generated_hostile_text_is_rejected_or_inert(field, value, benign_outputs, tmp_path_factory):
    assume(value != "")  # an empty comment is omitted: a different statement, not an injection
    tmp = tmp_path_factory.mktemp("hostile")
    rendered = _render(tmp, field, value)
    if rendered is not None:
        _assert_same_structure(rendered, benign_outputs[field], value)


def test_trailing_newline_in_an_identifier_is_rejected(tmp_path):
    """The reported injection: `emea\\n` used to pass because `$` matched before a final newline."""
    with pytest.raises(SpecError) as caught:
        load_project(_write_project(tmp_path, "provider name", "emea\n"))
    [problem] = caught.value.diagnostics
    assert problem.code in ("BAD_IDENTIFIER", "SPEC_BAD_FORMAT")
    assert problem.file.endswith("project.yaml") and problem.line > 1
    assert "\n" not in problem.format().splitlines()[0]


def test_block_scalar_identifier_is_rejected(tmp_path):
    specs = _write_project(tmp_path, "catalog", "fixture_cat")
    project_file = specs / "project.yaml"
    project_file.write_text(project_file.read_text(encoding="utf-8").replace("catalog: fixture_cat", "catalog: |\n  fixture_cat"), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_project(specs)
    assert any(d.code == "BAD_IDENTIFIER" for d in caught.value.diagnostics)


@pytest.mark.parametrize("text", ["a\nb", "x\r\n-- y", "p\u2028q", "\x1b[2J"])
def test_sql_comment_is_one_line(text):
    assert "\n" not in escape.sql_comment(text) and "\r" not in escape.sql_comment(text)
    assert "\u2028" not in escape.sql_comment(text) and "\x1b" not in escape.sql_comment(text)


def test_terminal_shows_escape_sequences_as_text():
    shown = escape.terminal("\x1b[32mok\x1b[0m\nnext")
    assert "\x1b" not in shown and shown.endswith("\nnext") and "\\x1b[32mok" in shown


def test_identifier_with_newline_is_refused():
    with pytest.raises(ValueError):
        escape.sql_identifier("ok", "bad\nname")
    assert escape.sql_identifier("a`b") == "`a``b`"
