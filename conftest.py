"""Shared fixtures: two warm local Spark servers per test session, one of them holding the catalog's run.

Spark's static settings (warehouse, metastore) are fixed when a server starts, and a run holds its
output folder for its whole length, so the session has two roots, each with its own server:
- the session server (`local_spark`): the tests that build their own small pipelines and tables,
  each under its own pipeline name and database;
- the catalog server (`pipeline_output`, `demo_source`): the demo data written and the catalog run
  once, which the catalog, data and report tests read.
Every test that uses Spark (it requests one of those fixtures, directly or through another, or is
marked) gets the `spark` marker: `pytest -m "not spark"` runs the rest without a JVM.

Both are prepared in background threads from the end of collection. The tests without Spark run
first, then those on the session server, then the catalog's readers: the catalog run (minutes)
overlaps everything before it, and the fixtures wait for what they need.
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
_CACHE_DIR = os.environ.setdefault("TABLESMITH_CACHE_DIR", tempfile.mkdtemp(prefix="tablesmith_cache_"))

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


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if (SPARK_FIXTURES | CATALOG_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)
    # Modules without Spark first, then those with their own small pipelines, then the catalog's
    # readers: by then its run is done. Each module stays whole (module fixtures are set up once).
    kinds: dict[str, int] = {}
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "")
        kinds[module] = max(kinds.get(module, 0), _kind(item))
    items.sort(key=lambda item: kinds[getattr(getattr(item, "module", None), "__name__", "")])


def pytest_collection_finish(session):
    if session.config.option.collectonly:
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
    if Path(_CACHE_DIR).name.startswith("tablesmith_cache_"):
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def _prepared(which: str) -> Prepared:
    if which not in _PREPARED:  # e.g. a test asked for Spark through getfixturevalue
        _PREPARED[which] = Prepared(f"tablesmith_{'local' if which == SESSION else which}_", with_catalog=which == CATALOG)
    return _PREPARED[which].wait()


@pytest.fixture(scope="session")
def local_spark() -> LocalSpark:
    prepared = _prepared(SESSION)
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
