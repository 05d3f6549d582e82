"""The compiled manifest: what the pipeline registers is exactly what `tablesmith validate` built."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.runtime.entry import manifest_path
from engine.spec import load_project
from engine.spec.manifest import MANIFEST_PATH, ManifestError, dumps, from_manifest, read_manifest

ROOT = Path(__file__).resolve().parents[2]
# Every valid spec folder of the repository (the catalog first).
SPEC_FOLDERS = ["specs", "tests/runtime/specs", "tests/render/fixture_specs", "tests/spec/base"]


@pytest.mark.parametrize("folder", SPEC_FOLDERS)
def test_round_trip_gives_the_same_project(folder, monkeypatch):
    monkeypatch.chdir(ROOT)  # the loader records file paths as seen from the working directory
    project = load_project(Path(folder))
    again = from_manifest(json.loads(dumps(project, specs_path=folder)))
    assert again == project
    # Equality skips a few fields (locations of columns, expectations, shares, alerts): compare those too.
    assert [[c.location for c in t.columns] for t in again.tables] == [[c.location for c in t.columns] for t in project.tables]
    assert [a.location for a in again.alerts] == [a.location for a in project.alerts]
    assert [t.name for t in again.tables] == [t.name for t in project.tables]  # run order kept


def test_the_committed_manifest_is_the_catalog(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert read_manifest(ROOT / MANIFEST_PATH) == load_project(Path("specs"))


def test_the_manifest_does_not_depend_on_where_generate_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    here = dumps(load_project(Path("specs")))
    monkeypatch.chdir(tmp_path)
    assert dumps(load_project(ROOT / "specs")) == here


def test_a_field_added_to_the_model_is_carried_or_refused(monkeypatch):
    monkeypatch.chdir(ROOT)
    data = json.loads(dumps(load_project(Path("tests/runtime/specs"))))
    data["project"]["tables"][0]["new_field"] = 1
    with pytest.raises(ManifestError, match=r"unknown field 'new_field' for Table.*tablesmith generate"):
        from_manifest(data)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match=r"manifest .*manifest.json not found: run `tablesmith generate` and deploy the bundle"):
        read_manifest(tmp_path / "generated" / "manifest.json")


def test_broken_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"metadata": ')
    with pytest.raises(ManifestError, match=r"manifest.json:1:\d+: not JSON"):
        read_manifest(path)


def test_manifest_from_another_engine_version(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    data = json.loads(dumps(load_project(Path("tests/runtime/specs"))))
    data["metadata"]["manifest_version"] = 99
    with pytest.raises(ManifestError, match="manifest version 99, this engine reads version 1"):
        from_manifest(data)
    data["metadata"]["manifest_version"] = 1
    data["project"]["tables"][0]["pattern"] = "no_such_pattern"
    with pytest.raises(ManifestError, match="not a manifest this engine can read"):
        from_manifest(data)


def test_where_the_pipeline_finds_the_manifest():
    assert manifest_path({"tablesmith.manifest": "/x/m.json", "tablesmith.bundle_root": "/b"}) == Path("/x/m.json")
    # The bundle's pipelines set only bundle_root: the manifest is where `generate` wrote it.
    assert manifest_path({"tablesmith.bundle_root": "/Workspace/b/files"}) == Path("/Workspace/b/files") / MANIFEST_PATH
    with pytest.raises(ValueError, match="must set tablesmith.manifest .* or tablesmith.bundle_root"):
        manifest_path({"tablesmith.specs_dir": "/Workspace/b/files/specs"})


def test_settings_overrides_apply_to_the_manifest_project(monkeypatch):
    from engine.runtime.entry import with_overrides

    monkeypatch.chdir(ROOT)
    project = read_manifest(ROOT / MANIFEST_PATH)
    changed = with_overrides(project, {"tablesmith.catalog": "dev_cat", "tablesmith.schema": "dev_alice", "tablesmith.mode": "x"})
    assert (changed.settings.catalog, changed.settings.schema) == ("dev_cat", "dev_alice")
    assert dataclasses.replace(changed, settings=project.settings) == project
