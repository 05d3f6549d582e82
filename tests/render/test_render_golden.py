"""Golden files: every renderer over the fixed spec set in fixture_specs/, byte for byte.

Regenerate after an intended change with:  TABLESMITH_UPDATE_GOLDEN=1 pytest tests/render/test_render_golden.py
Golden files are stored as golden/<renderer>/<output path>.golden (the suffix keeps pytest from
collecting the generated test modules).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.render.registry import RenderContext, all_renderers, render_all
from engine.render.viewmodel import HEADER
from engine.spec import load_project

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
SUFFIX = ".golden"
UPDATE = os.environ.get("TABLESMITH_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def project():
    return load_project(HERE / "fixture_specs")


@pytest.mark.parametrize("name", sorted(all_renderers()))
def test_renderer_matches_golden_files(project, name):
    outputs = all_renderers()[name].render(project, RenderContext())
    folder = GOLDEN / name
    if UPDATE:
        _update(folder, outputs)
    stored = {p.relative_to(folder).as_posix()[: -len(SUFFIX)]: p for p in folder.rglob(f"*{SUFFIX}")}
    assert sorted(stored) == sorted(outputs), f"renderer '{name}' now produces a different set of files"
    for path, text in outputs.items():
        assert stored[path].read_bytes() == text.encode("utf-8"), f"{path} differs from {stored[path]} (TABLESMITH_UPDATE_GOLDEN=1 to accept)"


def test_every_output_starts_with_the_do_not_edit_header(project):
    for path, text in render_all(project).items():
        first_lines = text.splitlines()[:2]  # a Databricks notebook must keep its marker on line 1
        assert any(HEADER in line for line in first_lines), path
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path} must end with exactly one newline"


def test_rendering_is_byte_stable(project):
    assert render_all(project) == render_all(load_project(HERE / "fixture_specs"))


def _update(folder: Path, outputs: dict[str, str]) -> None:
    for old in folder.rglob(f"*{SUFFIX}"):
        old.unlink()
    for path, text in outputs.items():
        target = folder / (path + SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
