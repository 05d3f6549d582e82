"""Every error code the engine can emit still fires.

The codes are read from the source of the stages that report spec problems (engine/spec,
engine/sql). Each must be produced by a corpus case (tests/spec/corpus, checked to the file, line
and code by test_corpus.py) or, when a spec folder laid over the base project cannot shape the
problem (the file system: links, sizes, missing or empty folders), by a test in this file.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from engine.spec import SpecError, load_project
from engine.spec.files import MAX_SPEC_BYTES

from tests.spec.test_corpus import CASES, HERE, _expected

ROOT = Path(__file__).resolve().parents[2]
REPORTING_STAGES = (ROOT / "engine" / "spec", ROOT / "engine" / "sql")
_CODE = re.compile(r"\"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\"")

# Upper-case strings in those stages that never reach a user as a code, each with its reason.
_RECODED = "parse_expression's own code: rules.py reports it as FILTER_SYNTAX or COLUMN_EXPR_SYNTAX, by place"
NOT_CODES = {
    "TIMESTAMP_NTZ": "a Spark type name (engine/sql/types.py)",
    "SQL_SYNTAX": _RECODED,
    "SQL_STATEMENTS": _RECODED,
    "SQL_NOT_EXPRESSION": _RECODED,
    "TABLESMITH_CACHE_DIR": "an environment variable (engine/spec/cache.py)",
    "XDG_CACHE_HOME": "an environment variable (engine/spec/cache.py)",
}

# Refresh-cost warnings and the reasons they list (never errors: validate exits 0), each asserted
# by name in the test file given (warnings are not part of the error corpus).
REFRESH_TESTS = "tests/spec/test_refresh_cost.py", "tests/spec/test_refresh_rules.py"
WARNING_CODES = {code: REFRESH_TESTS for code in (
    "MV_FULL_RECOMPUTE", "REFRESH_ACK_UNUSED", "EXPRESSION_NOT_DETERMINISTIC", "NO_SOURCE_TABLE",
    "OPERATOR_NOT_INCREMENTALIZABLE", "ROW_TRACKING_NOT_ENABLED", "SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE",
    "WINDOW_WITHOUT_PARTITION_BY")}

# Codes about the file system, which a corpus folder cannot hold: the test producing each.
FILE_SYSTEM_CODES = {
    "SPECS_NOT_FOUND": "test_file_system_problems_have_their_codes",
    "PROJECT_MISSING": "test_file_system_problems_have_their_codes",
    "NO_SPECS": "test_file_system_problems_have_their_codes",
    "FILE_TOO_LARGE": "test_file_system_problems_have_their_codes",
    "FILE_UNREADABLE": "test_file_system_problems_have_their_codes",
    "SPEC_BROKEN_LINK": "test_file_system_problems_have_their_codes",
    "SPEC_LINKED_FOLDER": "test_file_system_problems_have_their_codes",
    "SPEC_OUTSIDE_FOLDER": "test_file_system_problems_have_their_codes",
    "SPEC_NOT_REGULAR_FILE": "test_file_system_problems_have_their_codes",
    "YAML_TOO_LARGE": "test_file_system_problems_have_their_codes",
    # Needs a folder its reader may not list; root reads every folder, so the test runs as `nobody`.
    "FOLDER_UNREADABLE": "tests/spec/test_hostile_files.py::test_unreadable_domain_folder_is_an_error_not_a_skip",
}


def engine_codes() -> set[str]:
    found: set[str] = set()
    for stage in REPORTING_STAGES:
        for path in stage.rglob("*.py"):
            found.update(_CODE.findall(path.read_text(encoding="utf-8")))
    return found - set(NOT_CODES)


def corpus_codes() -> set[str]:
    return {code for case in CASES for (_, _, code) in _expected(HERE / "corpus" / case)}


def test_every_code_is_produced_by_a_corpus_case_or_a_file_system_test():
    codes = engine_codes()
    assert len(codes) > 80, sorted(codes)  # the scan still finds the codes
    unproduced = sorted(codes - corpus_codes() - set(FILE_SYSTEM_CODES) - set(WARNING_CODES))
    assert not unproduced, f"no corpus case produces {unproduced}: add one under tests/spec/corpus"


def test_every_warning_code_is_asserted_by_its_tests():
    from engine.spec.refresh import UNUSED_ACK_CODE, WARNING_CODE

    assert {WARNING_CODE, UNUSED_ACK_CODE} <= set(WARNING_CODES)
    for code, files in WARNING_CODES.items():
        texts = "".join((ROOT / f).read_text(encoding="utf-8") for f in files)
        named = code in texts or (code == UNUSED_ACK_CODE and "UNUSED_ACK_CODE" in texts) or (code == WARNING_CODE and "WARNING_CODE" in texts)
        assert named, f"{code}: no assertion in {files}"


def test_the_lists_name_only_real_codes():
    codes = engine_codes() | set(NOT_CODES)
    assert set(FILE_SYSTEM_CODES) <= codes and set(NOT_CODES) <= codes
    assert not set(FILE_SYSTEM_CODES) & corpus_codes(), "a corpus case produces it: drop it from FILE_SYSTEM_CODES"
    for code, where in FILE_SYSTEM_CODES.items():
        file, _, test = where.rpartition("::")
        source = (ROOT / file if file else Path(__file__)).read_text(encoding="utf-8")
        assert f"def {test}(" in source and code in source, (code, where)


def _codes(specs: Path) -> set[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        load_project(specs)
    return {(Path(d.file).name, d.code) for d in caught.value.diagnostics}


def test_file_system_problems_have_their_codes(tmp_path):
    assert _codes(tmp_path / "nowhere") == {("nowhere", "SPECS_NOT_FOUND")}
    (tmp_path / "empty").mkdir()
    assert _codes(tmp_path / "empty") == {("project.yaml", "PROJECT_MISSING")}
    (tmp_path / "settings_only").mkdir()
    shutil.copy(HERE / "base" / "project.yaml", tmp_path / "settings_only" / "project.yaml")
    assert _codes(tmp_path / "settings_only") == {("settings_only", "NO_SPECS")}

    specs = tmp_path / "specs"
    shutil.copytree(HERE / "base", specs)
    billing = specs / "billing"
    (billing / "huge.yaml").write_text("# padding\n" * (MAX_SPEC_BYTES // 10 + 1))
    (billing / "gone.yaml").symlink_to(tmp_path / "deleted.yaml")
    (billing / "loop.yaml").symlink_to(billing / "loop.yaml")  # ELOOP: the file cannot be opened
    (tmp_path / "outside.yaml").write_text("name: outside\n")
    (billing / "outside.yaml").symlink_to(tmp_path / "outside.yaml")
    os.mkfifo(billing / "pipe.yaml")
    (tmp_path / "elsewhere").mkdir()
    (specs / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    bomb = ["name: bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (billing / "bomb.yaml").write_text("\n".join(bomb) + "\n")
    assert _codes(specs) == {
        ("huge.yaml", "FILE_TOO_LARGE"), ("gone.yaml", "SPEC_BROKEN_LINK"), ("loop.yaml", "FILE_UNREADABLE"),
        ("outside.yaml", "SPEC_OUTSIDE_FOLDER"), ("pipe.yaml", "SPEC_NOT_REGULAR_FILE"), ("linked", "SPEC_LINKED_FOLDER"),
        ("bomb.yaml", "YAML_TOO_LARGE"),
    }
