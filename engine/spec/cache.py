"""Stage: spec. What validating a spec learnt, kept by content so an unchanged spec is not parsed again.

Like dbt's partial parsing and ruff's cache: a spec file whose bytes have not changed since the last
`validate` skips the YAML parse and the JSON Schema check (its data comes from the cache; positions
are worked out only if a later rule reports on it), and a query whose text and upstream columns have
not changed skips sqlglot's lineage analysis. Entries are keyed by a hash of what they were computed
from, so a stale entry is never used: it is simply not found. Only results that passed are kept.

The cache is one JSON file per specs folder under `$TABLESMITH_CACHE_DIR` (default
`$XDG_CACHE_HOME/tablesmith`, else `~/.cache/tablesmith`), never inside the project: it is not
shipped with a repository, and being JSON it can hold no code. `TABLESMITH_CACHE_DIR=off` turns it
off. An unreadable or corrupt cache is ignored; one that cannot be written is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from engine.atomic import write_text

FORMAT = 1
OFF = "off"


def user_cache_root() -> Path:
    """Tablesmith's folder in the user's cache (`$XDG_CACHE_HOME/tablesmith`, else `~/.cache/tablesmith`)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tablesmith"


def cache_dir() -> Path | None:
    configured = os.environ.get("TABLESMITH_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in (OFF, "") else Path(configured)
    return user_cache_root()


@lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """The code and schemas a cached result depends on: any change to them empties the cache."""
    import sqlglot
    import yaml

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{FORMAT} yaml {yaml.__version__} sqlglot {sqlglot.__version__}".encode())
    for path in sorted([*here.glob("*.py"), *(here / "schemas").glob("*.json"), *(here.parent / "sql").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def content_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:40]


class SpecCache:
    """Results by content key; `save` keeps only what this load used, so the file stays bounded."""

    def __init__(self, file: Path | None, entries: dict[str, Any]):
        self.file = file
        self._entries = entries
        self._used: dict[str, Any] = {}
        self._changed = False

    @classmethod
    def disabled(cls) -> SpecCache:
        return cls(None, {})

    @classmethod
    def for_specs(cls, specs_dir: Path) -> SpecCache:
        folder = cache_dir()
        if folder is None:
            return cls.disabled()
        name = hashlib.sha256(str(Path(specs_dir).resolve()).encode()).hexdigest()[:16]
        file = folder / f"specs-{name}.json"
        try:
            stored = json.loads(file.read_bytes())
        except (OSError, ValueError):
            return cls(file, {})
        valid = isinstance(stored, dict) and stored.get("engine") == engine_fingerprint() and isinstance(stored.get("entries"), dict)
        return cls(file, stored["entries"] if valid else {})

    @property
    def enabled(self) -> bool:
        return self.file is not None

    def get(self, key: str) -> Any | None:
        if key in self._entries:
            self._used[key] = self._entries[key]
            return self._entries[key]
        return None

    def put(self, key: str, value: Any) -> None:
        if self.file is not None:
            self._entries[key] = self._used[key] = value
            self._changed = True

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value of `key`, else `compute()` (kept when it is not None)."""
        found = self.get(key)
        if found is not None:
            return found
        value = compute()
        if value is not None:
            self.put(key, value)
        return value

    def save(self) -> None:
        """Write what this load used (atomically), when it differs from what was read."""
        if self.file is None or (not self._changed and len(self._used) == len(self._entries)):
            return
        payload = json.dumps({"engine": engine_fingerprint(), "entries": self._used}, separators=(",", ":"))
        try:
            write_text(self.file, payload, 0o600)  # readers see the old cache or the new one, never half
        except OSError:  # a read-only home or a full disk: the next load parses again
            pass
