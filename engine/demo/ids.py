"""Stage: demo data. Deterministic randomness and identifiers.

Every random choice is drawn from a generator keyed by what it is about (seed, entity, day), never
from one shared stream. That keeps the data byte-identical for the same arguments, keeps an
entity's behaviour unchanged when `scale` adds more entities, and lets one day be re-simulated on
its own (facts, append_day).
"""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta, timezone

import numpy as np

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600
DAY = 86400


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()


def rng_for(*parts: object) -> random.Random:
    """A Python RNG keyed by `parts` (seed first); independent of every other key."""
    return random.Random(int.from_bytes(_digest(*parts), "big"))


def np_rng_for(*parts: object) -> np.random.Generator:
    """A numpy RNG keyed by `parts`, for vectorised draws (node timeline)."""
    return np.random.default_rng(int.from_bytes(_digest(*parts), "big"))


def numeric_id(digits: int, *parts: object) -> str:
    """A decimal id of exactly `digits` digits (workspace, job and run ids are such strings)."""
    low = 10 ** (digits - 1)
    return str(low + int.from_bytes(_digest(*parts), "big") % (9 * low))


def hex_id(length: int, *parts: object) -> str:
    """Up to 32 lowercase hex digits derived from `parts` (endpoint, entity and instance ids)."""
    return _digest(*parts).hex()[:length]


def uuid_id(*parts: object) -> str:
    """A UUID-shaped (version 4 layout) id derived from `parts`."""
    h = _digest(*parts).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def uuid_prefix(*parts: object) -> str:
    """The first four groups of a UUID; callers append a 12-hex-digit counter (fast unique ids)."""
    return uuid_id(*parts)[:24]


def cluster_id(created: datetime, *parts: object) -> str:
    """Databricks cluster id layout: MMDD-HHMMSS-xxxxxxxx."""
    return f"{created:%m%d-%H%M%S}-{hex_id(8, *parts)}"


def to_epoch(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return int((value - EPOCH).total_seconds())


def from_epoch(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def day_start(day: date) -> int:
    return to_epoch(day)


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
