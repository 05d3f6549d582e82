"""Each unknown column or STRUCT field validate reports points at the misspelt name itself (its line and
column in the YAML, in a block query, a plain or quoted one-line value), so an editor jumps to it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.spec import SpecError, load_project

HERE = Path(__file__).parent
CODES = ("UNKNOWN_COLUMN", "UNKNOWN_STRUCT_FIELD")


@pytest.mark.parametrize("case", ["unknown_column", "unknown_source_column", "unknown_struct_field"])
def test_the_caret_is_on_the_name(tmp_path, case):
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    shutil.copytree(HERE / "corpus" / case, specs, dirs_exist_ok=True)
    with pytest.raises(SpecError) as caught:
        load_project(specs)
    found = [d for d in caught.value.diagnostics if d.code in CODES]
    assert found
    for diagnostic in found:
        name = re.search(r"'([^']+)' is not a (?:column|field)", diagnostic.message).group(1)
        line = Path(diagnostic.file).read_text().splitlines()[diagnostic.line - 1]
        assert line[diagnostic.col - 1:diagnostic.col - 1 + len(name)] == name, (diagnostic.message, line, diagnostic.col)
