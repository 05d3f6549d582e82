"""Shared by every stage. "Did you mean": the one rule for suggesting the closest known name."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The known name nearest to `word` (difflib ratio >= 0.6), or None."""
    matches = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or "" when nothing is close: appended to an error message."""
    return suggestion(closest(word, choices))


def suggestion(match: str | None) -> str:
    """The hint's wording, for a caller that found the match by its own rule."""
    return f" (did you mean '{match}'?)" if match else ""
