"""Adding a table never means writing engine code: nothing under engine/ names a catalog table or column.

Every table (and central view) and every column declared in specs/ is looked for under all of
engine/ (Python, templates, JSON schemas, SQL):
- a table name anywhere, as a word (comments and docstrings too); a name inside a dotted system
  table name (`system.billing.list_prices`) is the system table's, not the catalog's;
- a column name in code: a quoted or back-quoted literal in a .py or .json file, or any word of a
  template (its text is the output). engine/demo and engine/sources name *system* tables and their
  columns, which is their job, so only table names are checked there. The few column names that
  are also words of the engine's own vocabulary are allowed below, each with its reason.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from engine.spec import load_project
from engine.spec.model import IDENTIFIER_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
CHECKED_SUFFIXES = (".py", ".j2", ".json", ".sql", ".yaml", ".yml")
# Their job is naming system tables and columns: column names are not checked there.
SYSTEM_STAGES = ("demo", "sources")

# Column names that are also words of the engine's own vocabulary, each with the reason it may appear.
ENGINE_WORDS = {
    "run_id": "a column of the engine's own _quality_metrics table",
    "workspace_id": "a column every system table has; `tablesmith new` groups a starter aggregate by it",
}
# Fields of the Databricks bundle / Jobs API schema that the bundle templates must spell, and that
# system tables (system.lakeflow.*, system.access.audit) also expose as columns.
BUNDLE_WORDS = {
    "task": "a job's task (Jobs API)",
    "task_key": "a job task's key (Jobs API)",
    "job_id": "run_job_task.job_id (Jobs API)",
    "notebook_path": "notebook_task.notebook_path (Jobs API)",
    "timeout_seconds": "a job's timeout (Jobs API)",
    "run_as": "a bundle target's run_as",
    "user_email": "an alert subscription's user_email (Alerts API)",
}

_QUOTED = re.compile(r"[\"'`]([A-Za-z_][A-Za-z0-9_]*)[\"'`]")
_WORD = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\b")


@cache
def _project():
    return load_project(ROOT / "specs")


def catalog_tables(project) -> set[str]:
    return set(project.table_names) | {view.name for view in project.settings.central_views}


def _spec_keywords() -> set[str]:
    """Every word of the spec language (JSON Schema keys and enum values): `name`, `owner`, `compute`, ..."""
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

    for schema in (ENGINE / "spec" / "schemas").glob("*.json"):
        walk(json.loads(schema.read_text(encoding="utf-8")))
    return keys


def catalog_columns(project) -> set[str]:
    columns = {c.name for t in project.tables for c in t.columns} - set(IDENTIFIER_COLUMNS)
    return columns - _spec_keywords() - set(ENGINE_WORDS) - set(BUNDLE_WORDS)


def engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*") if p.is_file() and p.suffix in CHECKED_SUFFIXES and "__pycache__" not in p.parts)


def offences(path: Path, tables: set[str], columns: set[str], engine: Path = ENGINE) -> list[str]:
    relative = path.relative_to(engine.parent).as_posix()
    system_stage = path.relative_to(engine).parts[0] in SYSTEM_STAGES
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        found += [f"{relative}:{number}: table {w}" for w in _WORD.findall(line) if w in tables]
        if system_stage:
            continue
        words = _WORD.findall(line) if path.suffix == ".j2" else _QUOTED.findall(line)
        found += [f"{relative}:{number}: column {w}" for w in words if w in columns]
    return found


def test_the_check_sees_what_it_looks_for(tmp_path):
    """A table name in a comment, a column in a literal or in template text; in demo code only the table."""
    engine = tmp_path / "engine"
    for relative, text in {"render/planted.py": "# reads cost_by_sku\nCOLUMN = 'total_cost_usd'\nlocal = total_cost_usd\n",
                           "render/templates/planted.sql.j2": "SELECT total_cost_usd FROM {{ t }}\n",
                           "demo/planted.py": "ROW = {'total_cost_usd': 1}  # feeds cost_by_sku\nSOURCE = 'system.billing.cost_by_sku'\n"}.items():
        (engine / relative).parent.mkdir(parents=True, exist_ok=True)
        (engine / relative).write_text(text, encoding="utf-8")
    found = [o for path in sorted(engine.rglob("*.*")) for o in offences(path, {"cost_by_sku"}, {"total_cost_usd"}, engine)]
    assert found == ["engine/demo/planted.py:1: table cost_by_sku", "engine/render/planted.py:1: table cost_by_sku",
                     "engine/render/planted.py:2: column total_cost_usd",
                     "engine/render/templates/planted.sql.j2:1: column total_cost_usd"]


def test_engine_names_no_catalog_table_or_column():
    project = _project()
    tables, columns = catalog_tables(project), catalog_columns(project)
    assert {"cost_by_sku", "all_workspaces_costs"} <= tables and {"usage_date", "total_cost_usd"} <= columns
    found = [o for path in engine_files() for o in offences(path, tables, columns)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("word", sorted(ENGINE_WORDS | BUNDLE_WORDS))
def test_every_allowed_word_is_still_a_catalog_column(word):
    """An allow-list entry for a column no spec declares any more would hide nothing: remove it."""
    assert word in {c.name for t in _project().tables for c in t.columns}


def test_the_pipeline_notebook_is_generic():
    text = (ENGINE / "runtime" / "pipeline_notebook.py").read_text(encoding="utf-8")
    names = _project().table_names
    assert not [n for n in names if re.search(rf"\b{n}\b", text)]
    assert "register_pipeline(spark, conf)" in text
