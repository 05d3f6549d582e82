"""Fixtures shared by the catalog tests: the planted cases of the demo data."""

from __future__ import annotations

import pytest

from engine.demo.facts import facts


@pytest.fixture(scope="session")
def demo_facts():
    """What the default demo data plants (the same defaults the `demo_source` fixture uses)."""
    return facts()
