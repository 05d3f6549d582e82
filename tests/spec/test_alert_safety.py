"""Alert specs cannot run code, exhaust memory, leak their webhook secrets or reach metadata
addresses; row values cannot ping a Slack channel. Validate-time checks and delivery both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from engine.alerts.evaluate import Firing
from engine.alerts.notify import Message, deliver, messages, resolve_url
from engine.errors import UserError
from engine.spec import SpecError, load_project
from engine.spec.outbound import parse_message, redact_url, slack_text, url_problem
from engine.spec.model import Channel

FIXTURE = Path(__file__).resolve().parents[1] / "render" / "fixture_specs"
ALERT = {
    "name": "cost_alert",
    "description": "Cost is negative.",
    "table": "daily_cost",
    "condition": "total_cost_usd < 0",
    "tier": "P3",  # daily_cost is built by the daily job: a P1/P2 alert on it is an error
    "owner": "finops",
    "channel": {"type": "webhook", "url": "${COST_HOOK}"},
    "message": "workspace {workspace_id} cost {total_cost_usd}",
}


def _problems(tmp_path: Path, **changes) -> list[tuple[str, str]]:
    specs = tmp_path / "specs"
    shutil.rmtree(specs, ignore_errors=True)
    shutil.copytree(FIXTURE, specs)
    (specs / "alerts").mkdir()
    alert = {**ALERT, **changes}
    (specs / "alerts" / "cost_alert.yaml").write_text(yaml.safe_dump(alert, sort_keys=False))
    try:
        load_project(specs)
    except SpecError as error:
        return [(d.code, d.message) for d in error.diagnostics]
    return []


def test_the_base_alert_is_valid(tmp_path):
    assert _problems(tmp_path) == []


@pytest.mark.parametrize("message", [
    "{workspace_id.__class__.__mro__}",
    "{workspace_id[0]}",
    "{total_cost_usd:>99999999}",
    "{total_cost_usd!r}",
    "cost {",
    "cost }",
    "{}",
])
def test_format_string_tricks_fail_validation(tmp_path, message):
    problems = _problems(tmp_path, message=message)
    assert [code for code, _ in problems] == ["ALERT_MESSAGE_SYNTAX"], problems


def test_literal_braces_and_unknown_columns(tmp_path):
    assert _problems(tmp_path, message="{{literal}} {workspace_id}") == []
    assert [code for code, _ in _problems(tmp_path, message="{nope}")] == ["UNDECLARED_COLUMN"]
    assert parse_message("{{a}} {b}").fill({"b": 1}) == "{a} 1"


@pytest.mark.parametrize("url, fragment", [
    ("http://hooks.example.com/x", "https"),
    ("https://user:hunter2@hooks.example.com/x", "credentials"),
    ("https://169.254.169.254/latest/meta-data", "metadata"),
    ("https://[fe80::1]/x", "link-local"),
    ("https://metadata.google.internal/computeMetadata", "metadata"),
    ("https://0.0.0.0/x", "reserved"),
])
def test_unsafe_literal_urls_fail_validation_without_echoing_the_secret(tmp_path, url, fragment):
    problems = _problems(tmp_path, channel={"type": "webhook", "url": url})
    assert [code for code, _ in problems] == ["ALERT_URL_UNSAFE"], problems
    message = problems[0][1]
    assert fragment in message
    assert "hunter2" not in message and "/x" not in message and "meta-data" not in message


def test_literal_slack_url_is_a_secret_in_the_spec(tmp_path):
    problems = _problems(tmp_path, channel={"type": "slack", "url": "https://hooks.slack.com/services/T1/B2/SECRET"})
    assert [code for code, _ in problems] == ["ALERT_URL_SECRET"] and "SECRET" not in problems[0][1]


def test_http_is_allowed_for_a_loopback_receiver():
    assert url_problem("http://127.0.0.1:8080/hook") is None
    assert url_problem("http://localhost/hook") is None
    assert url_problem("https://hooks.example.com/T/B/x") is None


def test_delivery_refuses_unsafe_urls_from_the_environment():
    channel = Channel(type="webhook", url="${HOOK}")
    with pytest.raises(UserError) as caught:
        resolve_url(channel, {"HOOK": "http://hooks.example.com/T000/SECRET"})
    assert "SECRET" not in str(caught.value) and "https" in str(caught.value)
    with pytest.raises(UserError) as caught:  # a DNS name that resolves to the metadata service
        resolve_url(channel, {"HOOK": "https://innocent.example.com/SECRET"}, resolve=lambda host: ["169.254.169.254"])
    assert "metadata" in str(caught.value) and "SECRET" not in str(caught.value)


def test_malformed_url_error_does_not_echo_its_token():
    assert redact_url("https://hooks.slack.com/services/T1/B2/SECRET") == "https://hooks.slack.com/…"
    assert "SECRET" not in redact_url("ht!tp:/SECRET")
    echoed: list[str] = []
    channel = Channel(type="webhook", url="https://127.0.0.1:1/T1/SECRET")
    assert deliver(Message(channel, "title", {"x": 1}), echo=echoed.append, timeout=2) is False
    assert echoed and "SECRET" not in echoed[0] and "127.0.0.1" in echoed[0]


def test_row_values_cannot_ping_a_slack_channel(tmp_path):
    project = load_project(_specs_with_slack(tmp_path))
    alert = project.alerts[0]
    firing = Firing(alert, ({"workspace_id": "<!channel> & <https://evil|click>", "total_cost_usd": "-1"},))
    (message,) = messages([firing])
    text = message.payload["text"]
    assert "<!channel>" not in text and "<https://evil" not in text
    assert slack_text("<!channel> & <https://evil|click>") in text


def _specs_with_slack(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(FIXTURE, specs)
    (specs / "alerts").mkdir()
    # A page on daily_cost (the daily job's): evaluated once a day after it, not every 15 minutes.
    alert = {**ALERT, "tier": "P1", "schedule": "0 30 2 * * ?", "channel": {"type": "slack", "url": "${SLACK_HOOK}"}}
    (specs / "alerts" / "cost_alert.yaml").write_text(yaml.safe_dump(alert, sort_keys=False))
    return specs


@pytest.mark.parametrize("condition, code", [
    ("total_cost_usd < 0 --", "CONDITION_SYNTAX"),
    ("1=1; DROP TABLE x", "CONDITION_SYNTAX"),
    ("total_cost_usd < '0", "CONDITION_SYNTAX"),
    ("total_cost_usd /* x", "CONDITION_SYNTAX"),
    ("SELECT 1", "CONDITION_SYNTAX"),
])
def test_conditions_are_one_expression(tmp_path, condition, code):
    assert [c for c, _ in _problems(tmp_path, condition=condition)] == [code]
