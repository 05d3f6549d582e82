"""The spec cache changes how fast specs load, never what loading them says.

A warm load (every file that passed before comes from the cache, its positions found only when a
rule reports on it) must give the same Project, the same locations and the same diagnostics as a
cold one; a changed file is read again; a corrupt or foreign cache is ignored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.spec import SpecError, load_project
from engine.spec.cache import SpecCache, engine_fingerprint
from tests.spec.test_corpus import CASES, HERE, _project

ROOT = HERE.parents[1]


def _load(specs: Path):
    try:
        return load_project(specs), None
    except SpecError as exc:
        return None, [d.format() for d in exc.diagnostics]


def _locations(project) -> list[tuple]:
    out = []
    for table in project.tables:
        out.append((table.name, table.location.file, table.location.line, table.location.col))
        for item in (*table.columns, *table.expectations, *table.share):
            loc = item.location
            out.append((table.name, getattr(item, "name", getattr(item, "share", "")), loc.file, loc.line, loc.col))
    return out


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", str(folder))
    return folder


def test_warm_catalog_equals_cold(tmp_path, cache_dir, monkeypatch):
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", "off")
    cold = load_project(specs)
    assert not cache_dir.exists()
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", str(cache_dir))
    load_project(specs)  # fills the cache
    [cache_file] = cache_dir.glob("specs-*.json")
    entries = json.loads(cache_file.read_text())["entries"]
    assert len(entries) > len(cold.tables)  # documents, and the lineage of the queries reading PII
    warm = load_project(specs)
    assert warm == cold
    assert _locations(warm) == _locations(cold)
    assert warm.settings == cold.settings and warm.dashboards == cold.dashboards and warm.alerts == cold.alerts


@pytest.mark.parametrize("case", CASES)
def test_warm_bad_specs_report_exactly_what_cold_ones_do(case, tmp_path, cache_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = _project(tmp_path, case)
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", "off")
    _, cold = _load(specs)
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", str(cache_dir))
    _load(specs)
    _, warm = _load(specs)
    assert cold and warm == cold


def test_a_changed_file_is_read_again(tmp_path, cache_dir):
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    assert load_project(specs).table("base_daily").description
    spec = next(specs.rglob("base_daily.yaml"))
    spec.write_text(spec.read_text().replace("\ncolumns:", "\ncolums:", 1))
    _, errors = _load(specs)
    assert errors and any("colums" in line for line in errors), errors


@pytest.mark.parametrize("stored", [b"{not json", b'{"engine": "another engine", "entries": {"x": 1}}', b"[]"])
def test_a_corrupt_or_foreign_cache_is_ignored(tmp_path, cache_dir, stored):
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    load_project(specs)
    [cache_file] = cache_dir.glob("specs-*.json")
    cache_file.write_bytes(stored)
    assert load_project(specs).table_names == ("base_usage", "base_daily")
    assert json.loads(cache_file.read_text())["engine"] == engine_fingerprint()  # rewritten whole


def test_only_files_that_passed_are_kept(tmp_path, cache_dir):
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    broken = next(specs.rglob("base_daily.yaml"))
    broken.write_text(broken.read_text() + "\nunknown_key: 1\n")
    _, errors = _load(specs)
    assert errors
    cache = SpecCache.for_specs(specs)
    stored = json.loads(cache.file.read_text())["entries"]
    assert not any(isinstance(value, dict) and value.get("name") == "base_daily" for value in stored.values())
    assert any(isinstance(value, dict) and value.get("name") == "base_usage" for value in stored.values())


def test_an_unwritable_cache_folder_changes_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TABLESMITH_CACHE_DIR", str(blocker / "cache"))
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    assert load_project(specs).table_names == load_project(specs).table_names
