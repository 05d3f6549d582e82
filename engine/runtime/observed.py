"""Stage: runtime. Row and expectation counts measured by the run itself, not by a second pass.

Each local flow carries a named observation (`DataFrame.observe`, built in engine.runtime.flows):
its rows, the rows it keeps, and each expectation's violations, computed by the same Spark job
that writes the table. Open-source pipelines report only flow states to the client, so the warm
server (engine.runtime.server) listens for the end of every SQL execution on its own listener
queue and appends the observations whose name starts with PREFIX to `<folder>/<run id>.jsonl`.
The client reads that file after the run; a last observed query of its own (the end marker) tells
it that every earlier execution has been delivered (one queue, in order).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

PREFIX = "tablesmith|"
END = "__end__"
QUEUE = "tablesmith"  # the listener's own queue: a slow listener never delays Spark's own


def observation_name(run_id: str, table: str) -> str:
    return f"{PREFIX}{run_id}|{table}"


def _parse(name: str) -> tuple[str, str] | None:
    if not name.startswith(PREFIX):
        return None
    run_id, _, table = name[len(PREFIX):].partition("|")
    return (run_id, table) if run_id and table else None


# -- server side -----------------------------------------------------------------------------------

class _SqlExecutionRecorder:
    """A Spark listener (py4j proxy of SparkListenerInterface) that keeps tablesmith observations."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    class Java:
        implements = ["org.apache.spark.scheduler.SparkListenerInterface"]

    def onOtherEvent(self, event: Any) -> None:  # noqa: N802 - the Java interface's name
        try:
            if event.getClass().getSimpleName() != "SparkListenerSQLExecutionEnd":
                return
            execution = event.qe()
            if execution is None:
                return
            entries = execution.observedMetrics().iterator()
            while entries.hasNext():
                entry = entries.next()
                parsed = _parse(entry._1())
                if parsed:
                    run_id, table = parsed
                    line = json.dumps({"table": table, "execution": event.executionId(), "metrics": json.loads(entry._2().json())})
                    with open(self.folder / f"{run_id}.jsonl", "a", encoding="utf-8") as out:
                        out.write(line + "\n")
        except Exception as exc:  # noqa: BLE001 - a listener must never take the server down
            print(f"tablesmith: observation not recorded: {exc}", flush=True)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on"):  # every other SparkListenerInterface callback: nothing to do
            return _ignore
        raise AttributeError(name)


def _ignore(*_: Any) -> None:
    return None


def install(spark_context: Any, folder: Path) -> None:
    """Register the recorder on the server's SparkContext (the server process only)."""
    from pyspark.java_gateway import ensure_callback_server_started

    ensure_callback_server_started(spark_context._gateway)
    spark_context._jsc.sc().listenerBus().addToQueue(_SqlExecutionRecorder(folder), QUEUE)


# -- client side -----------------------------------------------------------------------------------

def collect(spark: Any, folder: Path, run_id: str, timeout: float = 60.0) -> dict[str, dict[str, int]] | None:
    """table -> summed observed metrics of run `run_id` (a streaming flow observes once per batch).

    None when the end marker did not arrive in time (the counts would be incomplete)."""
    from pyspark.sql import functions as F

    spark.range(1).observe(observation_name(run_id, END), F.count(F.lit(1)).alias("n")).collect()
    path = folder / f"{run_id}.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        records = [json.loads(line) for line in lines if line.strip()]
        if any(r["table"] == END for r in records):
            break
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    totals: dict[str, dict[str, int]] = {}
    for record in records:
        if record["table"] == END:
            continue
        sums = totals.setdefault(record["table"], {})
        for key, value in record["metrics"].items():
            sums[key] = sums.get(key, 0) + int(value or 0)
    path.unlink(missing_ok=True)
    return totals
