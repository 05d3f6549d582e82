"""docs/ARCHITECTURE.md names every engine module with its job, and every duplicated shape it keeps."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _documented_rows() -> dict[str, str]:
    """`engine/...py` -> its job, from the doc's table rows."""
    rows = {}
    for line in DOC.splitlines():
        match = re.match(r"\|\s*`(engine/[^`]+\.py)`\s*\|\s*(.+?)\s*\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_engine_module_is_named_with_its_job():
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "engine").rglob("*.py")
                     if "__pycache__" not in p.parts)
    rows = _documented_rows()
    named_in_text = {m for m in modules if f"`{m}`" in DOC}
    missing = [m for m in modules if m not in rows and m not in named_in_text]
    assert not missing, f"add a line for each to docs/ARCHITECTURE.md: {missing}"
    assert not [m for m, job in rows.items() if len(job) < 10], "each file's job in a line"
    gone = [m for m in rows if not (ROOT / m).is_file()]
    assert not gone, f"docs/ARCHITECTURE.md names files that no longer exist: {gone}"


def test_the_doc_has_its_sections():
    for heading in ("## Stages and their arrows", "## Every file and its job", "## One spec, end to end",
                    "## Recipe: add a pattern", "## Recipe: add a renderer", "## Intended parallels"):
        assert heading in DOC, heading
    assert "engine/cli.py: the only place that wires the stages" in DOC


def test_the_recipes_name_files_that_exist():
    start = DOC.index("## Recipe: add a pattern")
    recipes = DOC[start:DOC.index("## Intended parallels")]
    for path in set(re.findall(r"`((?:engine|tests)/[\w/]+\.(?:py|json))`", recipes)):
        assert (ROOT / path).exists(), path
