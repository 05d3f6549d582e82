"""Shared fixtures: one warm local Spark server per test session, and one pipeline run of the catalog.

Spark's static settings (warehouse, metastore) are fixed when the server starts, so every local
pipeline run in the test session shares one LocalLayout root, each with its own pipeline name
and database. Every test that uses Spark (it requests `local_spark`, directly or through another
fixture, or is marked) gets the `spark` marker: `pytest -m "not spark"` runs the rest without a JVM.

The tests without Spark run first; meanwhile a background thread starts the server and, when a
selected test reads the catalog, writes the demo data and runs the catalog once. The Spark
fixtures wait for it, so the JVM's start and the catalog run overlap the fast tests.
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

SPARK_FIXTURES = {"local_spark"}  # every fixture that reads Spark depends on this one


@dataclass
class LocalSpark:
    root: Path
    spark: Any


@dataclass
class PipelineOutput:
    """The catalog (specs/) run once on demo data; the data tests and catalog tests read tables from here."""

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


class SessionSpark:
    """The session's server and catalog run, prepared in a background thread."""

    def __init__(self, with_catalog: bool):
        self.root = Path(tempfile.mkdtemp(prefix="tablesmith_local_"))
        self.with_catalog = with_catalog
        self.spark: Any = None
        self.output: PipelineOutput | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._prepare, name="session-spark", daemon=True)
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

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        from engine.runtime.local import LocalLayout, stop

        self.thread.join()
        stop(LocalLayout(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


_SESSION: list[SessionSpark] = []


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if SPARK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)
    # Modules without Spark first (each module stays whole: module fixtures are set up once).
    with_spark = {item.module.__name__ for item in items if item.get_closest_marker("spark") and getattr(item, "module", None)}
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "__name__", "") in with_spark)


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    used = [set(getattr(item, "fixturenames", ())) for item in session.items]
    if any(SPARK_FIXTURES & names for names in used):
        _SESSION.append(SessionSpark(with_catalog=any({"pipeline_output", "demo_source"} & names for names in used)))


def pytest_sessionfinish(session):
    while _SESSION:
        _SESSION.pop().close()
    if Path(_CACHE_DIR).name.startswith("tablesmith_cache_"):
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def _session_spark() -> SessionSpark:
    if not _SESSION:  # e.g. a test asked for Spark through getfixturevalue
        _SESSION.append(SessionSpark(with_catalog=True))
    _SESSION[0].wait()
    return _SESSION[0]


@pytest.fixture(scope="session")
def local_spark() -> LocalSpark:
    prepared = _session_spark()
    return LocalSpark(prepared.root, prepared.spark)


@pytest.fixture(scope="session")
def demo_source(local_spark) -> Path:
    prepared = _session_spark()
    assert prepared.output is not None
    return prepared.output.source


@pytest.fixture(scope="session")
def pipeline_output(local_spark) -> PipelineOutput:
    prepared = _session_spark()
    assert prepared.output is not None
    return prepared.output
