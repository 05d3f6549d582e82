"""Shared fixtures: one warm local Spark server per test session, and one pipeline run of the catalog.

Spark's static settings (warehouse, metastore) are fixed when the server starts, so every local
pipeline run in the test session shares one LocalLayout root, each with its own pipeline name
and database. Every test that uses Spark (it requests `local_spark`, directly or through another
fixture, or is marked) gets the `spark` marker: `pytest -m "not spark"` runs the rest without a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent


SPARK_FIXTURES = {"local_spark"}  # every fixture that reads Spark depends on this one


def pytest_collection_modifyitems(items):
    for item in items:
        if SPARK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)


@dataclass
class LocalSpark:
    root: Path
    spark: Any


@pytest.fixture(scope="session")
def local_spark(tmp_path_factory):
    from engine.runtime.local import LocalLayout, local_session, stop

    root = tmp_path_factory.mktemp("tablesmith_local")
    layout = LocalLayout(root)
    yield LocalSpark(root, local_session(layout, echo=lambda _: None))
    stop(layout)


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


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory) -> Path:
    from engine.demo.generator import generate

    source = tmp_path_factory.mktemp("demo_source")
    generate(source)
    return source


@pytest.fixture(scope="session")
def pipeline_output(local_spark: LocalSpark, demo_source: Path) -> PipelineOutput:
    from engine.runtime.local import run_local

    result = run_local(ROOT / "specs", source=demo_source, output=local_spark.root, pipeline_name="catalog")
    return PipelineOutput(local_spark.spark, result.schema, result, demo_source)
