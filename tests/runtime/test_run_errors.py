"""A query Spark rejects fails the run naming the table, its spec's file:line:col and Spark's own
words, as `validate` names a problem: when the graph does not resolve (every rejected query at
once, before any table is written) and when a flow fails while it runs. Nothing else on stderr:
no JSON log with the JVM's stack trace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import CheckFailed
from engine.runtime.local import run_local

SPECS = Path(__file__).parent / "specs"


def _break(specs: Path, table: str, old: str, new: str) -> tuple[Path, int, int]:
    """Replaces `old` by `new` in the table's spec; the file, and the line and column where `new` starts."""
    spec = next(specs.rglob(f"{table}.yaml"))
    text = spec.read_text()
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    spec.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if new in row)
    return spec, line, text.splitlines()[line - 1].index(new) + 1


def _failed_run(local_spark, specs: Path, source: Path, name: str) -> str:
    with pytest.raises(CheckFailed) as caught:
        run_local(specs, source=source, output=local_spark.root, pipeline_name=name,
                  extra_conf={"tablesmith.schema": name}, echo=lambda _: None)
    return str(caught.value)


def test_every_query_spark_cannot_resolve_is_named_at_its_line(local_spark, tiny_source, tmp_path, capfd):
    # What `validate` cannot know (it checks columns, not functions or types), Spark finds.
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    daily, daily_line, daily_col = _break(specs, "daily_cost", "SUM(u.usage_quantity) AS total_dbus",
                                          "SUM(no_such_function(u.usage_quantity)) AS total_dbus")
    named, named_line, named_col = _break(specs, "cost_by_job_name", "SUM(usage_quantity) AS total_dbus",
                                          "SUM(usage_quantity) + map(1, 1) AS total_dbus")
    capfd.readouterr()
    message = _failed_run(local_spark, specs, tiny_source, "rt_unresolved")

    assert message.startswith("Spark rejected the query of 2 tables:"), message
    assert f"{daily}:{daily_line}:{daily_col + len('SUM(')}: QUERY_UNRESOLVED: query: daily_cost: " \
           "[UNRESOLVED_ROUTINE]" in message, message
    assert "`no_such_function`" in message
    assert f"{named}:{named_line}:{named_col}: QUERY_UNRESOLVED: query: cost_by_job_name: [DATATYPE_MISMATCH" in message, message
    assert f"> {daily_line} | " in message  # the snippet shows the line
    assert "CollectMetrics" not in message and "\tat " not in message  # no plan, no stack trace
    err = capfd.readouterr().err
    assert "JVM stacktrace" not in err and '"level": "ERROR"' not in err, err[-2000:]


def test_a_flow_failing_while_it_runs_is_named_at_the_fragment_spark_marks(local_spark, tiny_source, tmp_path, capfd):
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    daily, line, col = _break(specs, "daily_cost", "SUM(u.usage_quantity) AS total_dbus",
                              "SUM(u.usage_quantity + CAST(u.sku_name AS INT)) AS total_dbus")
    capfd.readouterr()
    message = _failed_run(local_spark, specs, tiny_source, "rt_cast")

    assert message.startswith("the run failed in 1 table:"), message
    cast_col = col + len("SUM(u.usage_quantity + ")
    assert f"{daily}:{line}:{cast_col}: FLOW_FAILED: query: daily_cost: [CAST_INVALID_INPUT]" in message, message
    assert message.splitlines()[-1].index("^") == message.splitlines()[-2].index("CAST(u.sku_name")  # the caret under it
    err = capfd.readouterr().err
    assert "JVM stacktrace" not in err and '"level": "ERROR"' not in err, err[-2000:]
