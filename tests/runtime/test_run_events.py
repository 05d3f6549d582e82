"""The engine's event stream folded into table states: when a run's outcome is known before the
engine reports the run itself (engine.runtime.results.FlowEvents.all_succeeded, used by
engine.runtime.run to stop waiting for the engine's last poll). Messages as the engine writes them."""

import datetime as dt

from engine.runtime.results import FlowEvents, RunObserver, TableResult

AT = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def events_for(*names: str) -> FlowEvents:
    return FlowEvents({name: TableResult(name, "materialized_view") for name in names}, RunObserver(lambda _: None))


def say(events: FlowEvents, table: str, state: str, seconds: float = 0.0) -> None:
    verb = "has" if state in ("COMPLETED", "FAILED") else "is"
    events.on_event(f"Flow spark_catalog.monitoring.{table} {verb} {state}.", AT + dt.timedelta(seconds=seconds))


def test_a_run_succeeded_only_once_its_last_flow_completed():
    events = events_for("bronze", "summary")
    assert not events.all_succeeded()  # nothing reported yet
    for table in ("bronze", "summary"):
        say(events, table, "QUEUED")
    say(events, "bronze", "RUNNING")
    say(events, "bronze", "COMPLETED", 1.0)
    say(events, "summary", "RUNNING", 2.0)
    assert not events.all_succeeded()
    say(events, "summary", "COMPLETED", 3.5)
    assert events.all_succeeded()
    assert events.tables["summary"].seconds == 1.5


def test_excluded_and_idle_flows_do_not_hold_a_run_open():
    events = events_for("upstream_stream", "once", "view")
    say(events, "upstream_stream", "EXCLUDED")
    say(events, "once", "IDLE")
    say(events, "view", "RUNNING")
    assert not events.all_succeeded()
    say(events, "view", "COMPLETED", 1.0)
    assert events.all_succeeded()


def test_a_failed_or_stopped_flow_means_the_run_is_waited_for():
    failed = events_for("bronze", "summary")
    say(failed, "bronze", "RUNNING")
    say(failed, "bronze", "FAILED", 1.0)
    say(failed, "summary", "SKIPPED", 1.0)
    assert not failed.all_succeeded()
    assert failed.errors

    stopped = events_for("bronze")
    say(stopped, "bronze", "RUNNING")
    say(stopped, "bronze", "STOPPED", 1.0)
    assert not stopped.all_succeeded()


def test_an_error_outside_any_flow_means_the_run_is_waited_for():
    events = events_for("bronze")
    say(events, "bronze", "RUNNING")
    events.on_event("Pipeline execution failed.", AT)
    say(events, "bronze", "COMPLETED", 1.0)
    assert not events.all_succeeded()


def test_flows_of_views_the_run_does_not_report_are_ignored():
    events = events_for("summary")
    say(events, "_system_billing_usage", "RUNNING")  # a temporary view over a system table
    say(events, "summary", "RUNNING")
    say(events, "summary", "COMPLETED", 1.0)
    assert events.all_succeeded()
