"""The CLI shell: exit codes, one-line errors without tracebacks, graph output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import __version__
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = Path(__file__).parent / "base"


def test_validate_passes_on_the_repository_specs(capsys):
    assert main(["validate", "--specs", str(ROOT / "specs")]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_validate_reports_every_error_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = tmp_path / "specs"
    shutil.copytree(BASE, specs)
    for case in ("unknown_key", "bad_type", "cycle"):
        shutil.copytree(Path(__file__).parent / "corpus" / case, specs, dirs_exist_ok=True)
    assert main(["validate", "--specs", "specs"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "specs/billing/typo_key.yaml:" in err and "SPEC_UNKNOWN_KEY" in err
    assert "specs/billing/bad_type.yaml:" in err and "BAD_TYPE" in err
    assert "REFERENCE_CYCLE" in err and "cyc_a -> cyc_b -> cyc_a" in err
    assert err.rstrip().endswith("3 errors found")


@pytest.mark.parametrize("setup", ["missing", "empty", "file"])
def test_validate_on_a_bad_folder_is_a_clear_error(tmp_path, capsys, setup):
    target = tmp_path / "specs"
    if setup == "empty":
        target.mkdir()
    elif setup == "file":
        target.write_text("not a folder")
    assert main(["validate", "--specs", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert {"missing": "SPECS_NOT_FOUND", "empty": "PROJECT_MISSING", "file": "SPECS_NOT_FOUND"}[setup] in err


def test_graph_prints_text_and_mermaid(capsys):
    assert main(["graph", "--specs", str(BASE)]) == 0
    text = capsys.readouterr().out
    assert text.index("base_usage") < text.index("base_daily")  # run order
    assert main(["graph", "--specs", str(BASE), "--format", "mermaid"]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart LR")
    assert "system_billing_usage --> base_usage" in mermaid and "base_usage --> base_daily" in mermaid


def test_version_and_help(capsys):
    assert main(["--version"]) == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 2  # no command: help, and a usage error
