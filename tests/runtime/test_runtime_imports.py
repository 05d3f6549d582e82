"""The pipeline needs nothing a serverless Databricks pipeline lacks, and no installed package.

A subprocess plays the Databricks pipeline: the bundle's files copied to a folder (as `bundle deploy`
syncs them), the editable install of this project hidden, an import hook that refuses every
top-level module but the standard library and ALLOWED, the real `pyspark.pipelines` decorators
registering into a recording graph registry, and a stand-in `spark` (a Databricks session cannot
run here: it answers conf lookups and catalog probes and records DataFrame calls). It runs the
generic notebook, then calls every registered query function, so imports made lazily at query
time are caught too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.spec.manifest import MANIFEST_PATH, read_manifest
from tests.synced_bundle import HIDE_INSTALLED_ENGINE, ROOT, copy_bundle

# Top-level modules the runtime may import besides the standard library, and why:
ALLOWED = {
    "engine": "the engine itself, synced with the bundle",
    "yaml": "PyYAML: engine.spec.loader (Location) imports it; every Databricks runtime ships it",
    "pyspark": "the pipelines module and the session it runs in",
    "py4j": "imported by pyspark itself (pyspark/__init__ -> pyspark.util, java_gateway); part of every runtime",
}
# Not imported at all: put straight into sys.modules by PyYAML's compiled extension (yaml._yaml);
# and the interpreter's own build data (`sysconfig` imports _sysconfigdata_<abi>_<platform>).
EXTENSION_INTERNALS = ("_cython_", "cython_runtime", "_sysconfigdata_")
# What the checks need and a pipeline must never import (nor pip-install: project pins).
FORBIDDEN = ("jsonschema", "sqlglot", "jinja2", "databricks")

PLAY_PIPELINE = HIDE_INSTALLED_ENGINE + r'''
import json, os, runpy
bundle, allowed, missing_schemas = sys.argv[1], set(json.loads(sys.argv[2])), set(json.loads(sys.argv[3]))
attempts, refused = [], []


def importer():
    frame = sys._getframe(2)
    while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "?") if frame else "?"


class RefuseOthers:
    """Refuses every top-level module that is neither standard library nor allowed."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        attempts.append(top)
        if top in sys.stdlib_module_names or top in allowed or top.startswith("_sysconfigdata"):
            return None  # the normal finders take it from here
        refused.append([name, importer()])
        raise ModuleNotFoundError(f"refused by the runtime import test: {name}", name=name)


started_with = {m.partition(".")[0] for m in sys.modules}
sys.meta_path.insert(0, RefuseOthers())

from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context


class RecordingRegistry(GraphElementRegistry):
    def __init__(self):
        self.outputs, self.flows = [], []

    def register_output(self, output):
        self.outputs.append(output)

    def register_flow(self, flow):
        self.flows.append(flow)

    def register_auto_cdc_flow(self, flow):
        raise AssertionError("the engine registers no AUTO CDC flow")

    def register_sql(self, sql_text, file_path):
        raise AssertionError("the engine registers no SQL file")


class Frame:
    """Stand-in DataFrame / reader: records each call, returns itself."""

    calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            Frame.calls.append(name)
            return self
        return call


class Catalog:
    def tableExists(self, name):
        return name.split(".")[1] not in missing_schemas


class Conf:
    def __init__(self, values):
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)


class Spark:
    def __init__(self, conf):
        self.conf, self.catalog, self.read, self.readStream = Conf(conf), Catalog(), Frame(), Frame()

    def sql(self, text):
        Frame.calls.append("sql")
        return Frame()


spark = Spark({"tablesmith.bundle_root": bundle, "tablesmith.schedule": "pipeline"})
registry = RecordingRegistry()
with graph_element_registration_context(registry):
    runpy.run_path(os.path.join(bundle, "engine", "runtime", "pipeline_notebook.py"),
                   init_globals={"spark": spark}, run_name="tablesmith_pipeline")
for flow in registry.flows:
    flow.func()  # what the engine does when the flow runs

print("REPORT " + json.dumps({
    "engine": sys.modules["engine"].__file__,
    "new_modules": sorted({m.partition(".")[0] for m in sys.modules} - started_with),
    "attempted": sorted(set(attempts)),
    "refused": refused,
    "outputs": [[type(o).__name__, o.name] for o in registry.outputs],
    "flows": len(registry.flows),
    "frame_calls": sorted(set(Frame.calls)),
}))
'''


def _play(tmp_path: Path, missing_schemas: set[str]) -> tuple[dict, str]:
    bundle = copy_bundle(tmp_path / "files")
    run = subprocess.run(
        [sys.executable, "-c", PLAY_PIPELINE, str(bundle), json.dumps(sorted(ALLOWED)), json.dumps(sorted(missing_schemas))],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    [line] = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    report = json.loads(line[len("REPORT "):])
    assert report["engine"] == str(bundle / "engine" / "__init__.py")
    return report, run.stderr


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    return _play(tmp_path_factory.mktemp("pipeline"), missing_schemas={"serving"})


def test_the_notebook_imports_only_the_standard_library_yaml_and_pyspark(played):
    report, _ = played
    assert not [r for r in report["refused"] if r[1].startswith("engine")], report["refused"]
    others = set(report["new_modules"]) - set(sys.stdlib_module_names) - set(ALLOWED)
    internals = {m for m in others if m.startswith(EXTENSION_INTERNALS)}
    assert others == internals, sorted(others)
    assert not {m for m in internals if not m.startswith("_sysconfigdata_")} & set(report["attempted"])
    assert not set(FORBIDDEN) & set(report["attempted"]), "a forbidden module was even tried"
    assert not set(FORBIDDEN) & set(report["new_modules"])


def test_it_registers_the_pipeline_tables_from_the_manifest_it_finds_under_the_bundle_root(played):
    report, stderr = played
    project = read_manifest(ROOT / MANIFEST_PATH)
    pipeline = [t for t in project.tables if t.schedule.value == "pipeline"]
    needs_serving = {t.name for t in pipeline if "serving" in t.requires}
    assert needs_serving, "the catalog has tables over system.serving: the skip path is exercised"
    assert [name for _, name in report["outputs"]] == [t.name for t in pipeline if t.name not in needs_serving]
    assert report["flows"] == len(report["outputs"])
    # Skipped with a reason on stderr (the driver log on Databricks), as the local run prints it.
    for name in needs_serving:
        assert f"tablesmith: skipping {name}: " in stderr
    assert "not found in Unity Catalog); requires schema 'serving'" in stderr
    assert {"sql", "selectExpr", "table", "option"} <= set(report["frame_calls"])  # the query functions ran


def test_a_pipeline_declares_no_dependency_that_a_runtime_would_install():
    """No project pin (pyspark<4.4, databricks-sdk<0.160, the tablesmith package) may reach a runtime."""
    pinned = ("tablesmith", "pyspark", "databricks-sdk", "databricks_sdk", "jsonschema", "sqlglot", "jinja2")
    for path in sorted((ROOT / "generated" / "resources").glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for name, pipeline in (doc.get("resources", {}).get("pipelines") or {}).items():
            libraries = pipeline.get("libraries") or []
            assert not [lib for lib in libraries if set(lib) & {"whl", "pypi", "jar", "maven"}], f"{path.name}: {name}"
            dependencies = ((pipeline.get("environment") or {}).get("dependencies")) or []
            offending = [d for d in dependencies if any(p in str(d).lower() for p in pinned) or str(d).strip() in (".", "-e .")]
            assert not offending, f"{path.name}: pipeline {name} would install {offending}"
