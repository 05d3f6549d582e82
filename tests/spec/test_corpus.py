"""The corpus of bad specs: each case names the file, line and code of every error it must produce.

A case is a folder of spec files laid over a small valid base project (tests/spec/base). Lines
carrying `<-- CODE [CODE…]` (as a YAML or SQL comment) mark where each error must point;
`expect.txt` lists `file line CODE` for files that cannot hold a comment.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.spec import SpecError, load_project

HERE = Path(__file__).parent
CASES = sorted(p.name for p in (HERE / "corpus").iterdir() if p.is_dir())
MARKER = re.compile(r"<-- ((?:[A-Z_]+\s*)+)")


def _expected(case_dir: Path) -> set[tuple[str, int, str]]:
    expected = set()
    for path in case_dir.rglob("*.yaml"):
        rel = path.relative_to(case_dir).as_posix()
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(lines, start=1):
            match = MARKER.search(line)
            if match:
                expected.update((rel, number, code) for code in match.group(1).split())
    listing = case_dir / "expect.txt"
    if listing.exists():
        for line in listing.read_text().splitlines():
            rel, number, code = line.split()
            expected.add((rel, int(number), code))
    return expected


def _project(tmp_path: Path, case: str) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    shutil.copytree(HERE / "corpus" / case, specs, dirs_exist_ok=True)
    (specs / "expect.txt").unlink(missing_ok=True)
    return specs


def test_base_project_is_valid(tmp_path):
    project = load_project(_copy_base(tmp_path))
    assert project.table_names == ("base_usage", "base_daily")


def _copy_base(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    return specs


def test_corpus_is_large_enough():
    codes = {code for case in CASES for (_, _, code) in _expected(HERE / "corpus" / case)}
    assert len(CASES) >= 25 and len(codes) >= 25, (len(CASES), sorted(codes))


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_reports_file_line_and_code(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = _project(tmp_path, case)
    expected = _expected(HERE / "corpus" / case)
    assert expected, f"case {case} marks no expected error"

    with pytest.raises(SpecError) as caught:
        load_project(specs)

    found = {(Path(d.file).relative_to("specs").as_posix(), d.line, d.code) for d in caught.value.diagnostics}
    assert found == expected, caught.value.report()
    for diagnostic in caught.value.diagnostics:
        assert diagnostic.message and diagnostic.col >= 1
        rendered = diagnostic.format()
        assert rendered.startswith(f"{diagnostic.file}:{diagnostic.line}:{diagnostic.col}: {diagnostic.code}:")
