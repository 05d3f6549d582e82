"""Shared fixtures: warm local Spark servers, one of them holding the catalog's run.

Spark's static settings (warehouse, metastore) are fixed when a server starts, and a run holds its
output folder for its whole length, so there are two roots, each with its own server:
- the session server (`local_spark`): the tests that build their own small pipelines and tables,
  each under its own pipeline name and database;
- the catalog server (`pipeline_output`, `demo_source`): the demo data written and the catalog run
  once, which the catalog, data and report tests read.
Every test that uses Spark (it requests one of those fixtures, directly or through another, or is
marked) gets the `spark` marker: `pytest -m "not spark"` runs the rest without a JVM.

The suite runs on two pytest-xdist workers (pyproject.toml): every reader of the catalog is in one
group and every test with its own pipelines in another, each run whole by one worker, which starts
that group's server when its first test asks; each module without Spark is a group of its own,
run by whichever worker is free. A worker holding the catalog lends its server to the few catalog
tests that also build small tables. In one process (`-n 0`) both servers are prepared in background
threads from the end of collection, the tests without Spark run first, then those on the session
server, then the catalog's readers, so the catalog run overlaps everything before it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent
# The spec cache (engine/spec/cache.py) of this session: warm loads in the tests, nothing in ~/.cache.
# Made once, by the first process (pytest-xdist's workers inherit it): `setdefault(key, mkdtemp())` made a
# folder in every worker that nothing removed.
if "TABLESMITH_CACHE_DIR" not in os.environ:
    os.environ["TABLESMITH_CACHE_DIR"] = tempfile.mkdtemp(prefix="tablesmith_cache_")
_CACHE_DIR = os.environ["TABLESMITH_CACHE_DIR"]

SPARK_FIXTURES = {"local_spark"}  # the session server: tests that build their own tables
CATALOG_FIXTURES = {"pipeline_output", "demo_source"}  # the catalog run, on its own server


@dataclass
class LocalSpark:
    root: Path
    spark: Any


@dataclass
class PipelineOutput:
    """The catalog (specs/) run once on demo data on its own server; the data, catalog and report tests read it."""

    spark: Any
    schema: str
    result: Any
    source: Path

    @property
    def skipped(self) -> dict[str, str]:
        return self.result.skipped

    def table(self, name: str) -> Any:
        return self.spark.read.table(f"`{self.schema}`.`{name}`")

    def quality_metrics(self) -> dict[tuple[str, str], int]:
        from engine.runtime import quality

        return quality.latest(self.spark, self.schema)


class Prepared:
    """One warm local Spark server with its own root, started in a background thread at collection;
    `with_catalog`: the demo data is written and the catalog run there too."""

    def __init__(self, prefix: str, with_catalog: bool):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.with_catalog = with_catalog
        self.spark: Any = None
        self.output: PipelineOutput | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._prepare, name=f"prepare-{prefix}", daemon=True)
        self.thread.start()

    def _prepare(self) -> None:
        from engine.runtime.local import LocalLayout, local_session, run_local

        try:
            self.spark = local_session(LocalLayout(self.root), echo=lambda _: None)
            if self.with_catalog:
                from engine.demo.generator import generate

                source = self.root / "demo_source"
                generate(source)
                result = run_local(ROOT / "specs", source=source, output=self.root, pipeline_name="catalog", echo=lambda _: None)
                self.output = PipelineOutput(self.spark, result.schema, result, source)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test that needs it
            self.error = exc

    def wait(self) -> "Prepared":
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self

    def close(self) -> None:
        from engine.runtime.local import LocalLayout, stop

        self.thread.join()
        stop(LocalLayout(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


# Two servers, so the catalog run (minutes) goes on while the tests that bring their own small
# pipelines run on the other: a run holds its output folder's lock for its whole length.
_PREPARED: dict[str, Prepared] = {}
SESSION, CATALOG = "session", "catalog"


def _kind(item) -> int:
    """0: no Spark; 1: the session server only; 2: reads the catalog run."""
    names = set(getattr(item, "fixturenames", ()))
    return 2 if CATALOG_FIXTURES & names else 1 if SPARK_FIXTURES & names or item.get_closest_marker("spark") else 0


def _module(item) -> str:
    return getattr(getattr(item, "module", None), "__name__", "")


def _worker() -> bool:
    """Running as a pytest-xdist worker (`-n`, the project's default: pyproject.toml addopts)."""
    return "PYTEST_XDIST_WORKER" in os.environ


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker and before xdist names the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if (SPARK_FIXTURES | CATALOG_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)
    kinds: dict[str, int] = {}
    for item in items:
        kinds[_module(item)] = max(kinds.get(_module(item), 0), _kind(item))
    # Under xdist (--dist loadgroup) a group runs whole on one worker: the catalog's readers on one,
    # the tests with their own small pipelines on another, each module without Spark on whichever
    # is free (module fixtures set up once). Each worker then starts only the server it needs.
    for item in items:
        kind = kinds[_module(item)]
        item.add_marker(pytest.mark.xdist_group(CATALOG if kind == 2 else SESSION if kind == 1 else _module(item)))
    # One process: modules without Spark first, then those with their own small pipelines, then
    # the catalog's readers, by when its run is done. Workers: the two server groups first, so the
    # scheduler hands them out at once and the modules without Spark fill the gaps.
    order = {2: 0, 1: 1, 0: 2} if _worker() else {0: 0, 1: 1, 2: 2}
    items.sort(key=lambda item: order[kinds[_module(item)]])


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook, in the controlling process
def pytest_xdist_node_collection_finished(node, ids):
    if node.config.getvalue("dist") == "loadgroup" and any("@" not in nodeid for nodeid in ids):
        # Without its group a test is scheduled alone: the catalog would be run once per worker.
        pytest.exit("pytest-xdist did not apply the xdist_group marks (pytest-xdist issue #1386, with pytest 9.2): "
                    "install the versions pyproject.toml names (pip install -e '.[test]'), or run with -n 0", returncode=4)


def pytest_collection_finish(session):
    if session.config.option.collectonly or _worker():  # a worker starts its server when a test needs it
        return
    used = [set(getattr(item, "fixturenames", ())) for item in session.items]
    if any(CATALOG_FIXTURES & names for names in used):
        _PREPARED[CATALOG] = Prepared("tablesmith_catalog_", with_catalog=True)
    if any(SPARK_FIXTURES & names for names in used):
        _PREPARED[SESSION] = Prepared("tablesmith_local_", with_catalog=False)


def pytest_sessionfinish(session):
    for prepared in _PREPARED.values():
        prepared.close()
    _PREPARED.clear()
    # The process that made the folder removes it, last: not a worker while the other may still use it.
    if Path(_CACHE_DIR).name.startswith("tablesmith_cache_") and "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def _prepared(which: str) -> Prepared:
    if which not in _PREPARED:  # e.g. a test asked for Spark through getfixturevalue
        _PREPARED[which] = Prepared(f"tablesmith_{'local' if which == SESSION else which}_", with_catalog=which == CATALOG)
    return _PREPARED[which].wait()


@pytest.fixture(scope="session")
def local_spark() -> LocalSpark:
    # A worker holding the catalog lends its server once the catalog's run is done (a few catalog
    # tests also build small tables of their own): one JVM per worker.
    which = CATALOG if _worker() and SESSION not in _PREPARED and CATALOG in _PREPARED else SESSION
    prepared = _prepared(which)
    return LocalSpark(prepared.root, prepared.spark)


@pytest.fixture(scope="session")
def demo_source() -> Path:
    output = _prepared(CATALOG).output
    assert output is not None
    return output.source


@pytest.fixture(scope="session")
def pipeline_output() -> PipelineOutput:
    output = _prepared(CATALOG).output
    assert output is not None
    return output
