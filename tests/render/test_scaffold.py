"""`tablesmith new`: a starter spec per pattern that validates as written, and refusals that help."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.render.scaffold import PATTERNS
from engine.spec import load_project

HERE = Path(__file__).parent


@pytest.fixture
def specs(tmp_path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(HERE / "fixture_specs", target)
    return target


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_writes_a_valid_commented_spec(specs, pattern):
    assert main(["new", f"starter_{pattern}", "--pattern", pattern, "--domain", "audit", "--specs", str(specs)]) == EXIT_OK
    path = specs / "audit" / f"starter_{pattern}.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=") and "TODO" in text
    table = load_project(specs).table(f"starter_{pattern}")
    assert table.pattern.value == pattern and table.domain == "audit"
    assert main(["validate", "--specs", str(specs)]) == EXIT_OK


@pytest.mark.parametrize("pattern, source", [
    ("stream", "usage_bronze"),  # a streaming spec table
    ("snapshot", "node_types"),
    ("aggregate", "daily_cost"),
    ("view", "system.compute.node_timeline"),
    ("scd2", "system.compute.warehouses"),
])
def test_sources_can_be_system_tables_or_specs(specs, pattern, source):
    assert main(["new", "starter", "--pattern", pattern, "--domain", "compute", "--source", source, "--specs", str(specs)]) == EXIT_OK
    table = load_project(specs).table("starter")
    assert source in table.references or "${" + source + "}" in (table.query or "")


def test_columns_carry_pii_and_keys_from_a_spec_source(specs):
    assert main(["new", "usage_copy", "--pattern", "stream", "--domain", "billing", "--source", "usage_bronze", "--specs", str(specs)]) == EXIT_OK
    table = load_project(specs).table("usage_copy")
    assert table.pii_columns == ("run_as",) and table.keys == ("record_id",)


@pytest.mark.parametrize("args, message", [
    (["starter", "--pattern", "stream", "--source", "system.billing.list_prices"], "does not support streaming reads"),
    (["starter", "--pattern", "scd2", "--source", "system.billing.usage"], "not a slowly changing table"),
    (["starter", "--pattern", "stream", "--source", "daily_cost"], "needs a streaming table"),
    (["starter", "--pattern", "snapshot", "--source", "system.billing.usge"], "did you mean 'system.billing.usage'"),
    (["usage_bronze", "--pattern", "stream"], "already exists"),
    (["1bad", "--pattern", "stream"], "not a valid table name"),
])
def test_refusals_explain_themselves(specs, capsys, args, message):
    assert main(["new", *args, "--domain", "billing", "--specs", str(specs)]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_never_overwrites_an_existing_file(specs, capsys):
    existing = specs / "audit" / "kept.yaml"
    existing.parent.mkdir()
    existing.write_text("# not a table yet\n")
    assert main(["new", "kept", "--pattern", "stream", "--domain", "audit", "--specs", str(specs)]) == EXIT_BAD_INPUT
    assert existing.read_text() == "# not a table yet\n"
    assert "never overwrites" in capsys.readouterr().err
