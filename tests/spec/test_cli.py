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


def test_demo_data_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "demo"), "--days", "3"]) == 2
    err = capsys.readouterr().err
    assert err == "error: days must be >= 14 so the planted cases fit in the window\n"
    assert main(["demo-data", "--out", str(tmp_path / "demo"), "--end-date", "11/01/2026"]) == 2
    assert "'11/01/2026' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_every_command_lists_its_options_in_help(capsys):
    for command, options in ((["run"], ("--select", "--full-refresh", "--source", "--output")),
                             (["demo-data"], ("--out", "--append-day", "--scale")),
                             (["generate"], ("--check", "--root")), (["new"], ("--pattern", "--domain")),
                             (["report"], ("--open", "--as-of", "--report-dir")),
                             (["alerts", "check"], ("--dry-run", "--fail-on-alert")),
                             (["deploy", "plan"], ("--target", "--warehouse-id")), (["stop"], ("--output",))):
        assert main([*command, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: tablesmith {' '.join(command)} ") and all(o in out for o in options), out


def test_off_a_terminal_tables_are_the_plain_lines_even_with_force_color(capsys, monkeypatch):
    from engine import cli

    monkeypatch.setenv("FORCE_COLOR", "1")
    cli.show_table(("tier", "alert"), [("P1", "x" * 120)], ["P1 " + "x" * 120])
    assert capsys.readouterr().out == "P1 " + "x" * 120 + "\n"  # no colour codes, no wrap at 80 columns


def test_on_a_terminal_the_run_draws_progress_and_a_summary_table(capsys, monkeypatch, tmp_path):
    from engine import cli
    from engine.runtime.local import LocalLayout, RunResult, TableResult

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    observer = cli._rich_run_observer()
    tables = {"usage_raw": TableResult("usage_raw", "streaming_table"), "daily_cost": TableResult("daily_cost", "materialized_view")}
    observer.flows_starting(list(tables))
    observer.flow_started("usage_raw")
    tables["usage_raw"].state, tables["usage_raw"].seconds, tables["usage_raw"].rows = "COMPLETED", 1.5, 7
    observer.flow_finished(tables["usage_raw"])
    tables["daily_cost"].state, tables["daily_cost"].violations = "FAILED", {"bounded": 2}
    observer.flow_finished(tables["daily_cost"])
    observer.run_finished(RunResult("abc", LocalLayout(tmp_path), tables, {"old": "no source"}, schema="rt"))
    out = capsys.readouterr().out
    assert "\x1b[" in out  # a terminal: styled
    plain = __import__("re").sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "ok usage_raw" in " ".join(plain.split()) and "FAILED daily_cost" in " ".join(plain.split())
    row = next(line for line in plain.splitlines() if "usage_raw" in line and "streaming_table" in line)
    assert "+7" in row and "│" in row  # the summary is a drawn table
    assert any("bounded=2" in line for line in plain.splitlines())
    assert "done in" in plain and "no source" in plain


def test_run_takes_every_select_option_and_comma_lists(tmp_path, capsys):
    """`--select a --select b,c` selects a, b and c (click alone would keep only the last option);
    unknown names stop the run before any data is read or Spark starts."""
    (tmp_path / "source").mkdir()
    code = main(["run", "--specs", "specs", "--source", str(tmp_path / "source"), "--output", str(tmp_path / "out"),
                 "--select", "no_such_a", "--select", "billing_summary, no_such_b", "--select", "no_such_a,cost_by_skus"])
    assert code == 2
    assert capsys.readouterr().err == ("error: --select names unknown tables: cost_by_skus (did you mean 'cost_by_sku'?), "
                                       "no_such_a, no_such_b\n")
    assert not (tmp_path / "out" / "server").exists()


def test_an_unknown_select_stops_before_demo_data_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the catalog's source_root, .tablesmith/source, is relative to it
    code = main(["run", "--specs", str(ROOT / "specs"), "--output", str(tmp_path / "out"), "--select", "jobs_curent"])
    assert code == 2
    assert capsys.readouterr().err == "error: --select names unknown tables: jobs_curent (did you mean 'jobs_current'?)\n"
    assert not (tmp_path / ".tablesmith").exists() and not (tmp_path / "out").exists()
