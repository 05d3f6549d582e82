"""Stage: alerts. Messages per channel: P1/P2 at once, one per alert; P3 gathered into one digest."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from engine.alerts.evaluate import Firing
from engine.errors import UserError
from engine.spec.outbound import redact_url, slack_text, url_problem
from engine.spec.model import Channel

_ENV = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead a checked URL to an unchecked one (e.g. a metadata address)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        raise urllib.error.HTTPError(req.full_url, code, f"redirect refused ({code})", headers, fp)


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


@dataclass(frozen=True)
class Message:
    channel: Channel
    title: str
    payload: dict[str, Any]


def messages(firings: list[Firing]) -> list[Message]:
    out: list[Message] = []
    digest: dict[Channel, list[Firing]] = {}
    for firing in firings:
        if not firing.rows:
            continue  # healthy: silent
        if firing.alert.tier.digest:
            digest.setdefault(firing.alert.channel, []).append(firing)
            continue
        alert = firing.alert
        title = f"[{alert.tier.value}] {alert.name}: {len(firing.rows)} row(s) in {alert.table}"
        out.append(Message(alert.channel, title, _payload(alert.channel, title, [firing])))
    for channel, group in digest.items():
        count = sum(len(f.rows) for f in group)
        title = f"[P3 digest] {count} row(s) across {len(group)} alert(s)"
        out.append(Message(channel, title, _payload(channel, title, group)))
    return out


def _payload(channel: Channel, title: str, firings: list[Firing]) -> dict[str, Any]:
    if channel.type == "slack":
        text = [f"*{slack_text(title)}*"]
        for firing in firings:
            alert = firing.alert
            text.append(f"_{slack_text(alert.name)}_ ({slack_text(alert.owner)}): {slack_text(alert.description)}")
            text.extend(f"• {line}" for line in firing.lines(slack_text))
        return {"text": "\n".join(text)}
    return {
        "title": title,
        "digest": firings[0].alert.tier.digest,
        "alerts": [
            {
                "alert": f.alert.name,
                "tier": f.alert.tier.value,
                "owner": f.alert.owner,
                "table": f.alert.table,
                "description": f.alert.description,
                "expected_latency_minutes": f.alert.expected_latency_minutes,
                "messages": f.lines(),
                "rows": list(f.rows),
            }
            for f in firings
        ],
    }


def resolve_url(channel: Channel, environ: dict[str, str] | None = None,
                resolve: Callable[[str], list[str]] | None = None) -> str:
    """The channel's URL (from its environment variable), refused when unsafe; never echoed whole."""
    environ = os.environ if environ is None else environ
    url = channel.url or ""
    match = _ENV.fullmatch(url)
    if match:
        if not environ.get(match.group(1)):
            raise UserError(f"the {channel.type} channel reads its URL from ${match.group(1)}, which is not set")
        url = environ[match.group(1)].strip()
    problem = url_problem(url, resolve=resolve or _addresses)
    if problem:
        source = f" (from ${match.group(1)})" if match else ""
        raise UserError(f"refusing to post to {redact_url(url)}{source}: the URL {problem}")
    return url


def _addresses(host: str) -> list[str]:
    """Every address `host` resolves to, so a DNS name cannot lead to a metadata address."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except OSError:
        return []


def deliver(message: Message, echo: Callable[[str], None] = print, timeout: float = 10.0) -> bool:
    """POST webhook/slack messages; email is sent by Databricks SQL alerts, so it is only shown here."""
    if message.channel.type == "email":
        echo(f"  email to {', '.join(message.channel.to)}: {message.title} (sent by the Databricks SQL alert; not from a local check)")
        return True
    body = json.dumps(message.payload, sort_keys=True).encode()
    url = resolve_url(message.channel)
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with _NO_REDIRECTS.open(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
        echo(f"  FAILED to post {message.title} to {redact_url(url)}: {str(reason).replace(url, redact_url(url))}")
        return False
    echo(f"  {'posted' if ok else 'FAILED to post'} {message.title} ({message.channel.type})")
    return ok
