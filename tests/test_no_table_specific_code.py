"""Adding a table never means writing engine code: no stage names a catalog table."""

from __future__ import annotations

import re
from pathlib import Path

from engine.spec import load_project

ROOT = Path(__file__).resolve().parents[1]
# The demo generator and the source registry name *system* tables, which is their job.
GENERIC_STAGES = ("spec", "graph", "runtime", "render", "deploy", "alerts", "testing", "report", "cli.py", "errors.py")


def test_engine_stages_name_no_catalog_table():
    names = set(load_project(ROOT / "specs").table_names)
    offenders = []
    for stage in GENERIC_STAGES:
        target = ROOT / "engine" / stage
        for path in [target] if target.is_file() else sorted(target.rglob("*")):
            if path.suffix not in (".py", ".j2", ".json"):
                continue
            for literal in re.findall(r"[\"'`]([A-Za-z_][A-Za-z0-9_]*)[\"'`]", path.read_text(encoding="utf-8")):
                if literal in names:
                    offenders.append(f"{path.relative_to(ROOT)}: {literal}")
    assert not offenders, offenders


def test_the_pipeline_notebook_is_generic():
    text = (ROOT / "engine" / "runtime" / "pipeline_notebook.py").read_text(encoding="utf-8")
    names = load_project(ROOT / "specs").table_names
    assert not [n for n in names if re.search(rf"\b{n}\b", text)]
    assert "register_pipeline(spark, conf)" in text


# Column names that are also words of the engine's own vocabulary, each with the reason it may appear.
ENGINE_WORDS = {
    "run_id": "a column of the engine's own _quality_metrics table",
    "workspace_id": "a column every system table has; `tablesmith new` groups a starter aggregate by it",
}


def _spec_keywords() -> set[str]:
    """Every word of the spec language (JSON Schema keys and enum values): `name`, `owner`, `compute`, ..."""
    import json

    keys: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            keys.update(value for value in node.get("enum", []) if isinstance(value, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in (ROOT / "engine" / "spec" / "schemas").glob("*.json"):
        walk(json.loads(schema.read_text(encoding="utf-8")))
    return keys


def test_engine_stages_name_no_catalog_column():
    from engine.spec.model import IDENTIFIER_COLUMNS

    project = load_project(ROOT / "specs")
    columns = {c.name for t in project.tables for c in t.columns} - set(IDENTIFIER_COLUMNS)
    columns -= _spec_keywords() | set(ENGINE_WORDS)
    offenders = []
    for stage in GENERIC_STAGES + ("sql", "sharing.py", "names.py", "escape.py"):
        target = ROOT / "engine" / stage
        for path in [target] if target.is_file() else sorted(target.rglob("*")):
            if path.suffix not in (".py", ".j2", ".json"):
                continue
            for literal in re.findall(r"[\"'`]([A-Za-z_][A-Za-z0-9_]*)[\"'`]", path.read_text(encoding="utf-8")):
                if literal in columns:
                    offenders.append(f"{path.relative_to(ROOT)}: {literal}")
    assert not offenders, offenders
