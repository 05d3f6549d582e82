"""Stage: runtime. What a local run reports: each flow's state and timing from the run's own events,
rows and violations from its observations (engine.runtime.observed), the summary, and the observer
the run reports to as it goes (RunObserver: plain lines by default; the CLI draws its own)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from engine.runtime.layout import LocalLayout
from engine.runtime.queries import FAILED_EXPECTATION_MARKER, ROWS_KEPT

_FLOW_EVENT = re.compile(r"Flow (?P<name>\S+?) (?:is|has) (?P<state>[A-Z_]+)")
_UNRESOLVED_FLOW = re.compile(r"Failed to resolve flow: (?P<name>\S+?)\.?(?:\n|$)")
# Where Spark says its error is, in the SQL text it ran: a failed job quotes the line and marks the
# fragment (1-based position); the analyser appends "; line N pos P" (0-based) to its message.
_SQL_CONTEXT = re.compile(r"\n== SQL \(line (?P<line>\d+), position (?P<pos>\d+)\) ==\n(?P<sql>[^\n]*)\n(?P<marks>[ ^]*)")
_ANALYSIS_POSITION = re.compile(r";? line (?P<line>\d+) pos (?P<pos>\d+)")
_QUOTED_NAME = re.compile(r"`[^`]+`(?:\.`[^`]+`)*")
TERMINAL = ("COMPLETED", "FAILED", "STOPPED", "SKIPPED", "EXCLUDED", "IDLE")
SUCCEEDED = ("COMPLETED", "SKIPPED", "EXCLUDED", "IDLE")  # the terminal states that are no failure


@dataclass
class TableResult:
    name: str
    kind: str
    state: str = "QUEUED"
    seconds: float = 0.0
    rows: int | None = None  # rows written by this run (a streaming table: rows appended)
    violations: dict[str, int] = field(default_factory=dict)
    started: dt.datetime | None = None


@dataclass
class RunResult:
    run_id: str
    layout: LocalLayout
    tables: dict[str, TableResult]
    skipped: dict[str, str]
    failed: bool = False
    error: str = ""
    failed_expectation: str = ""
    failures: dict[str, SparkError] = field(default_factory=dict)  # table -> why its flow failed
    seconds: float = 0.0
    session_seconds: float = 0.0  # connecting to (or starting) the warm Spark server
    flow_seconds: float = 0.0  # registration, graph and flows
    register_seconds: float = 0.0  # of which: registering the tables
    graph_seconds: float = 0.0  # of which: resolving the graph and creating tables, until the first flow event
    prepare_seconds: float = 0.0  # dropping what is rebuilt whole (before the pipeline)
    check_seconds: float = 0.0  # collecting the run's observations and recording them
    schema: str = ""
    refreshed: tuple[str, ...] = ()
    unchanged: int = 0  # tables the run neither registered nor refreshed


def flow_mark(state: str) -> str:
    """How a finished flow is marked in the run's progress: ok, FAILED, or the state in lower case."""
    return {"COMPLETED": "ok", "FAILED": "FAILED"}.get(state, state.lower())


class RunObserver:
    """What a run reports as it goes. The runtime calls only these methods; this default prints plain,
    stable lines through `echo`. A caller draws them otherwise by overriding them (the CLI: live
    progress and a summary table on a terminal), so the runtime needs no terminal library."""

    def __init__(self, echo: Callable[[str], None] = print):
        self.echo = echo

    def note(self, text: str) -> None:
        """A line about the run: what it refreshes, the server starting, a warning."""
        self.echo(text)

    def table_skipped(self, name: str, reason: str) -> None:
        self.echo(f"  - {name:<34} skipped: {reason}")

    def flows_starting(self, tables: Sequence[str]) -> None:
        """The pipeline is about to run the flows of these tables."""

    def flow_started(self, name: str) -> None:
        """A table's flow started running."""

    def flow_finished(self, table: TableResult) -> None:
        self.echo(f"  {flow_mark(table.state):>6} {table.name:<34} {table.seconds:6.1f}s")

    def run_finished(self, result: RunResult) -> None:
        self.echo(summary(result))


class FlowEvents:
    """Folds the engine's event stream into per-table states and timings (the events' own timestamps)."""

    def __init__(self, tables: dict[str, TableResult], observer: RunObserver):
        self.tables = tables
        self.observer = observer
        self.errors: list[str] = []
        self.failures: dict[str, SparkError] = {}

    def on_event(self, message: str, timestamp: dt.datetime) -> None:
        unresolved = _UNRESOLVED_FLOW.match(message)
        if unresolved:  # the graph is checked before any flow runs: each query Spark rejects is named
            name = _table_name(unresolved.group("name"))
            if name in self.tables:
                self.tables[name].state = "FAILED"
                self.failures[name] = spark_error(message)
            self.errors.append(message)
            return
        match = _FLOW_EVENT.search(message)
        if not match:
            if "FAILED" in message or "failed" in message:
                self.errors.append(message)
            return
        name = _table_name(match.group("name"))
        state = match.group("state")
        table = self.tables.get(name)
        if table is None:  # temporary views over system tables
            return
        table.state = state
        if state == "RUNNING" and table.started is None:
            table.started = timestamp
            self.observer.flow_started(name)
        elif state in TERMINAL:
            table.seconds = (timestamp - table.started).total_seconds() if table.started else 0.0
            self.observer.flow_finished(table)
            if state == "FAILED":
                self.errors.append(message)
                self.failures[name] = spark_error(message)

    def all_succeeded(self) -> bool:
        """Every flow of the run ended, none failed or was stopped (what remains is the run's own end)."""
        return bool(self.tables) and not self.errors and all(t.state in SUCCEEDED for t in self.tables.values())

    def failure(self) -> tuple[str, str]:
        """(error line, failed expectation) of a failed run."""
        text = "\n".join(self.errors)
        marker = re.search(FAILED_EXPECTATION_MARKER + r": ([^\n\"]+?\))", text)
        expectation = marker.group(1) if marker else ""
        return expectation or first_error_line(text), expectation


def _table_name(flow: str) -> str:
    """`spark_catalog`.`monitoring`.`t` or 'spark_catalog.monitoring.t' -> t."""
    return flow.strip("'").split(".")[-1].strip("`")


@dataclass(frozen=True)
class SparkError:
    """Why Spark failed a flow: its own message, and where in the SQL text it ran, when it says."""

    message: str  # error class and text, one line
    line: int | None = None  # 1-based line of the SQL text
    fragment: str = ""  # the part of that line it points at ("" when it does not say)
    position: int | None = None  # 0-based column on that line, when it says
    resolving: bool = False  # found while checking the graph, before any flow read a row


def spark_error(event: str) -> SparkError:
    """The error of a flow event ("Flow 'x' has FAILED.\\nError: ..." or "Failed to resolve flow: 'x'...")."""
    resolving = event.startswith("Failed to resolve flow")
    text = event.split("\nError: ", 1)[1] if "\nError: " in event else event
    context = _SQL_CONTEXT.search(text)
    if context:
        marks = context.group("marks")
        start, end = marks.find("^"), marks.rfind("^") + 1
        fragment = context.group("sql")[start:end].strip() if start >= 0 else ""
        return SparkError(text[:context.start()].strip().splitlines()[0], int(context.group("line")), fragment,
                          int(context.group("pos")) - 1, resolving)
    first = text.strip().splitlines()[0] if text.strip() else event
    position = _ANALYSIS_POSITION.search(first)
    if position:
        message = first[:position.start()].strip()
        named = _QUOTED_NAME.search(message)  # e.g. the column it cannot resolve
        fragment = named.group(0).split(".")[-1].strip("`") if named else ""
        return SparkError(message, int(position.group("line")), fragment, int(position.group("pos")), resolving)
    return SparkError(first[:600], None, "", None, resolving)


def first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("at ") and "JVM stacktrace" not in line:
            return line[:400]
    return "pipeline run failed"


def apply_observations(result: RunResult, observed: Mapping[str, Mapping[str, int]] | None,
                       metrics: Mapping[tuple[str, str], tuple[str, int, int]]) -> None:
    for name, table in result.tables.items():
        if name not in result.refreshed:
            table.state = "UNCHANGED"
        elif observed is not None and table.kind != "temporary_view":
            table.rows = observed.get(name, {}).get(ROWS_KEPT, 0)
    for (name, rule), (_, violations, _) in metrics.items():
        result.tables[name].violations[rule] = violations


SUMMARY_COLUMNS = ("table", "kind", "rows", "seconds", "expectation violations")


def summary_rows(result: RunResult) -> list[tuple[str, str, str, str, str]]:
    """One row per table of the run (SUMMARY_COLUMNS), then the skipped tables."""
    rows = []
    for name, table in result.tables.items():
        if table.state == "UNCHANGED":
            written = "unchanged"
        elif table.rows is None:
            written = "-"
        else:
            written = f"+{table.rows}" if table.kind == "streaming_table" else str(table.rows)
        violations = ", ".join(f"{rule}={count}" for rule, count in sorted(table.violations.items()) if count) or "-"
        rows.append((name, table.kind, written, f"{table.seconds:.1f}", violations))
    rows.extend((name, "skipped", "-", "-", reason) for name, reason in result.skipped.items())
    return rows


def summary_notes(result: RunResult) -> list[str]:
    """The lines under the table: tables left alone, where the time went, where the tables are."""
    notes = [f"{result.unchanged} other tables unchanged (nothing they read changed)"] if result.unchanged else []
    notes.append(
        f"done in {result.seconds:.1f}s (Spark start {result.session_seconds:.1f}s, prepare {result.prepare_seconds:.1f}s, "
        f"pipeline {result.flow_seconds:.1f}s [register {result.register_seconds:.1f}s, graph {result.graph_seconds:.1f}s], "
        f"row counts and expectations {result.check_seconds:.1f}s). "
        f"Rows: written by this run (+ appended to a streaming table). "
        f"Tables: database `{result.schema}` in {result.layout.warehouse} (Hive metastore {result.layout.metastore}, "
        f"served by the warm local Spark server: `tablesmith stop` ends it); "
        f"quality metrics in `{result.schema}`.`_quality_metrics`."
    )
    return notes


def summary(result: RunResult) -> str:
    """The summary as plain text: fixed-width columns, one table a line."""
    lines = [f"{'table':<36} {'kind':<18} {'rows':>10} {'seconds':>8}  expectation violations"]
    for name, kind, rows, seconds, violations in summary_rows(result):
        lines.append(f"{name:<36} {kind:<18} {rows:>10} {seconds:>8}  {violations}")
    return "\n".join(lines + summary_notes(result))
