"""Stage: spec. What leaves the machine: alert message templates and outbound URLs (webhooks,
workspace hosts). Checked at validate time, applied again when connecting or posting.

Messages are not Python format strings (`{x.__class__}` walks objects, `{x:>99999999}` allocates
per row, `cost {` crashes when the alert fires): a message is text with `{column}` placeholders
and `{{` / `}}` for literal braces, nothing else. Webhook URLs are secrets and a way out of the
network: https only (http for loopback test receivers), no credentials inside, never a
link-local or cloud metadata address, and shown redacted in every message.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Mapping

_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Addresses that answer with cloud credentials (AWS IPv4/IPv6, Alibaba, GCP / Azure by name).
METADATA_HOSTS = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "metadata.google.internal",
                            "metadata", "metadata.azure.internal"})
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class MessageTemplate:
    parts: tuple[tuple[str, bool], ...]  # (text, is_placeholder)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(text for text, is_placeholder in self.parts if is_placeholder)

    def fill(self, row: Mapping[str, object], escape: Callable[[str], str] = str) -> str:
        """The message for one row; each value goes through the channel's `escape` (Slack, HTML)."""
        out = []
        for text, is_placeholder in self.parts:
            if not is_placeholder:
                out.append(text)
            elif text in row:
                out.append(escape("NULL" if row[text] is None else str(row[text])))
            else:
                out.append("{" + text + "}")
        return "".join(out)


def parse_message(text: str) -> MessageTemplate:
    """`{column}` placeholders and `{{`/`}}` escapes; ValueError naming the first problem otherwise."""
    parts: list[tuple[str, bool]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(char)
            i += 2
        elif char == "{":
            end = text.find("}", i + 1)
            name = text[i + 1:end] if end != -1 else ""
            if end == -1:
                raise ValueError(f"'{{' at position {i + 1} is never closed (write '{{{{' for a literal brace)")
            if not _PLACEHOLDER.fullmatch(name):
                raise ValueError(f"'{{{name}}}' is not a placeholder: only {{column}} is allowed "
                                 "(no attribute access, index or format spec)")
            if literal:
                parts.append(("".join(literal), False))
                literal = []
            parts.append((name, True))
            i = end + 1
        elif char == "}":
            raise ValueError(f"'}}' at position {i + 1} closes nothing (write '}}}}' for a literal brace)")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append(("".join(literal), False))
    return MessageTemplate(tuple(parts))


def url_problem(url: str, *, resolve: Callable[[str], list[str]] | None = None) -> str | None:
    """Why a webhook URL must not be used, or None. `resolve` (host -> addresses) checks DNS too."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.username is not None or parts.password is not None:
        return "carries credentials (user:password@); put the secret in an environment variable"
    if not host:
        return "has no host"
    addresses = [host] + (resolve(host) if resolve else [])
    loopback = all(_is_loopback(a) for a in addresses)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        return "must use https (plain http is allowed only for a loopback test receiver)"
    for address in addresses:
        if address.lower() in METADATA_HOSTS:
            return f"points at a cloud metadata address ({address})"
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            continue
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return f"points at a link-local, multicast or reserved address ({address})"
    return None


def redact_url(url: str) -> str:
    """scheme://host/… : a webhook's path and query are its secret."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme:
        return "<malformed URL>"
    port = ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        pass
    return f"{parts.scheme}://{host}{port}/…"


def slack_text(text: str) -> str:
    """Slack's documented escaping: &, < and > only, so row values cannot ping (<!channel>) or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _is_loopback(address: str) -> bool:
    if address.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
