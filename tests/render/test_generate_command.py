"""`tablesmith generate` end to end on a copy of the repository's project: add a spec, regenerate, check."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest
import yaml

from engine.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, main
from engine.spec import load_project

REPO = Path(__file__).parent.parent.parent
NEW_TABLE = "render_probe_node_events"  # deliberately unlike any catalog table


@pytest.fixture
def copy(tmp_path) -> Path:
    """The project as committed: specs, generated files, the schema doc and the bundle."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "specs", root / "specs")
    for name in ("generated", "docs"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if (REPO / "databricks.yml").exists():
        shutil.copy(REPO / "databricks.yml", root / "databricks.yml")
    assert main(["generate", "--specs", str(root / "specs")]) == EXIT_OK  # start from what the specs produce
    return root


def add_spec(root: Path) -> str:
    share = load_project(root / "specs").settings.shares[0].name
    (root / "specs" / "compute" / f"{NEW_TABLE}.yaml").parent.mkdir(exist_ok=True)
    (root / "specs" / "compute" / f"{NEW_TABLE}.yaml").write_text(f"""\
name: {NEW_TABLE}
description: Node utilisation samples, appended as they arrive. Used by the render tests.
domain: compute
layer: bronze
pattern: stream
source: system.compute.node_timeline
columns:
  - {{name: workspace_id, type: STRING, nullable: false, description: Workspace id.}}
  - {{name: instance_id, type: STRING, nullable: false, description: Instance id.}}
  - {{name: start_time, type: TIMESTAMP, nullable: false, description: Sample start.}}
  - {{name: cpu_user_percent, type: DOUBLE, description: CPU user time (percent).}}
keys: [workspace_id, instance_id, start_time]
expectations:
  - {{name: cpu_in_range, expr: cpu_user_percent BETWEEN 0 AND 100, on_violation: warn}}
share:
  - {{share: {share}, history: true}}
""")
    return share


def test_a_new_spec_flows_into_every_output(copy):
    share = add_spec(copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert main(["generate", "--specs", str(copy / "specs")]) == EXIT_OK

    schema = (copy / "docs/SCHEMA.md").read_text()
    assert f"### {NEW_TABLE}" in schema and f"[`{NEW_TABLE}`](#{NEW_TABLE})" in schema
    settings = load_project(copy / "specs").settings
    provider = (copy / "generated/sql/delta_sharing_provider.sql").read_text()
    # The provider script names the target's location by the sharing job's parameters.
    assert f"ALTER SHARE `{share}` ADD TABLE `{{{{catalog}}}}`.`{{{{schema}}}}`.`{NEW_TABLE}`" in provider
    recipient = (copy / "generated/sql/delta_sharing_recipient.sql").read_text()
    if any(p.share == share for p in settings.providers):
        assert f"`all_workspaces_{NEW_TABLE}`" in recipient
    data_tests = (copy / "generated/data_tests/compute.sql").read_text()
    assert f"-- test: compute::{NEW_TABLE}::unique_grain" in data_tests
    assert f"-- test: compute::{NEW_TABLE}::cpu_in_range" in data_tests

    # The pipeline resource lists no tables (the notebook loads the specs): the bundle syncs the new spec.
    bundle = yaml.safe_load((copy / "databricks.yml").read_text())
    spec_path = f"specs/compute/{NEW_TABLE}.yaml"
    assert any(fnmatch.fnmatch(spec_path, pattern) for pattern in bundle["sync"]["include"])
    assert main(["generate", "--check", "--specs", str(copy / "specs")]) == EXIT_OK

    # Nothing but generated outputs changed: the spec was the only hand edit.
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    changed = {p.relative_to(copy).as_posix() for p in after if before.get(p) != after[p]}
    assert changed <= {"docs/SCHEMA.md", "databricks.yml"} | {c for c in changed if c.startswith("generated/")}
    assert "generated/data_tests/compute.sql" in changed


def test_check_names_a_hand_edited_file_and_passes_after_generate(copy, capsys):
    schema = copy / "docs/SCHEMA.md"
    schema.write_text(schema.read_text() + "\nhand edit\n")
    capsys.readouterr()
    assert main(["generate", "--check", "--specs", str(copy / "specs")]) == EXIT_CHECK_FAILED
    assert "stale:   docs/SCHEMA.md" in capsys.readouterr().err
    assert main(["generate", "--specs", str(copy / "specs")]) == EXIT_OK
    assert main(["generate", "--check", "--specs", str(copy / "specs")]) == EXIT_OK


def test_check_reports_missing_and_extra_files_and_generate_removes_extras(copy, capsys):
    (copy / "generated/sql/maintenance.sql").unlink()
    orphan = copy / "generated/data_tests/dropped_domain.sql"
    orphan.write_text("-- a domain whose specs were deleted\n")
    cache = copy / "generated/jobs/__pycache__/x.cpython-311.pyc"
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(b"\0")
    capsys.readouterr()
    assert main(["generate", "--check", "--specs", str(copy / "specs")]) == EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "missing: generated/sql/maintenance.sql" in err
    assert "extra:   generated/data_tests/dropped_domain.sql" in err
    assert "__pycache__" not in err
    assert main(["generate", "--specs", str(copy / "specs")]) == EXIT_OK
    assert not orphan.exists() and (copy / "generated/sql/maintenance.sql").exists() and cache.exists()


def test_bad_specs_are_bad_input(tmp_path):
    assert main(["generate", "--specs", str(tmp_path / "nowhere")]) == EXIT_BAD_INPUT


def test_repository_outputs_are_up_to_date():
    """docs/SCHEMA.md, generated/ and databricks.yml in the repository are what the specs produce."""
    assert main(["generate", "--check", "--specs", str(REPO / "specs")]) == EXIT_OK
