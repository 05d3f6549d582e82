"""The file system as an attacker or an unlucky user shapes it: links out, FIFOs, alias bombs,
unreadable folders, the whole disk, and outputs linked elsewhere. Each is a clean, located error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "render" / "fixture_specs"


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "specs")
    return tmp_path


def _validate(specs: Path, capsys) -> tuple[int, str]:
    code = main(["validate", "--specs", str(specs)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_link_leaving_the_specs_folder_is_refused_and_never_read(project, capsys):
    secret = project / "secret.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    (project / "specs" / "billing" / "leak.yaml").symlink_to(secret)
    code, out = _validate(project / "specs", capsys)
    assert code == 2
    assert "SPEC_OUTSIDE_FOLDER" in out and "leak.yaml:1:1" in out
    assert "hunter2" not in out


def test_link_inside_the_specs_folder_is_followed(project, capsys):
    specs = project / "specs"
    (specs / "billing" / "daily_cost.yaml").rename(specs / "daily_cost.txt")
    (specs / "billing" / "daily_cost.yaml").symlink_to(specs / "daily_cost.txt")
    code, out = _validate(specs, capsys)
    assert code == 0, out


def test_fifo_named_like_a_spec_does_not_hang(project):
    alerts = project / "specs" / "alerts"
    alerts.mkdir()
    os.mkfifo(alerts / "stuck.yaml")
    started = time.monotonic()
    result = _cli("validate", "--specs", "specs", cwd=project, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "SPEC_NOT_REGULAR_FILE" in result.stderr and "stuck.yaml" in result.stderr
    assert time.monotonic() - started < 60


def test_alias_bomb_is_a_clean_error(project, capsys):
    lines = ["name: bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (project / "specs" / "billing" / "bomb.yaml").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    code, out = _validate(project / "specs", capsys)
    assert code == 2 and "YAML_TOO_LARGE" in out and "bomb.yaml:" in out
    assert time.monotonic() - started < 30


def test_whole_disk_is_not_walked(capsys):
    started = time.monotonic()
    code, out = _validate(Path("/"), capsys)
    assert code == 2 and "PROJECT_MISSING" in out
    assert time.monotonic() - started < 5


def _validate_dropping_root(specs: str, queue) -> None:
    """In a fresh interpreter (spawned: forking a process with Spark's gRPC threads is unsafe), drop
    root and run `validate`: root reads every folder, so a permission error needs another user."""
    import contextlib
    import io

    from engine.cli import main as cli_main

    os.environ["TABLESMITH_CACHE_DIR"] = "off"  # a cold load imports every module a cold validate needs
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        cli_main(["validate", "--specs", str(FIXTURE)])  # as root: every module validate needs is imported
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["validate", "--specs", specs])
    queue.put((code, captured.getvalue()))


def _validate_as_nobody(specs: Path) -> tuple[int, str]:
    """`validate` as user `nobody`: exit code and stderr."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_validate_dropping_root, args=(str(specs), queue))
    child.start()
    try:
        return queue.get(timeout=120)
    finally:
        child.join(timeout=30)


def test_unreadable_domain_folder_is_an_error_not_a_skip():
    project = Path(tempfile.mkdtemp(prefix="tablesmith_unreadable_"))  # /tmp: reachable by `nobody`
    shutil.copytree(FIXTURE, project / "specs")
    for path in [project, *project.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (project / "specs" / "compute").chmod(0o000)
    try:
        code, err = _validate_as_nobody(project / "specs")
    finally:
        (project / "specs" / "compute").chmod(0o755)
        shutil.rmtree(project)
    assert code == 2, err
    assert "FOLDER_UNREADABLE" in err and "compute" in err


def test_generate_refuses_an_output_folder_linked_outside(project, capsys):
    elsewhere = project.parent / f"{project.name}_elsewhere"
    elsewhere.mkdir()
    bystander = elsewhere / "delta_sharing_provider.sql"
    bystander.write_text("-- someone else's file\n")
    (project / "generated").mkdir()
    (project / "generated" / "sql").symlink_to(elsewhere, target_is_directory=True)
    code = main(["generate", "--specs", str(project / "specs")])
    err = capsys.readouterr().err
    assert code == 2 and "outside the project root" in err
    assert bystander.read_text() == "-- someone else's file\n"
    assert not (project / "docs").exists(), "nothing is written when one output is refused"


def test_generate_changes_nothing_when_one_file_cannot_be_written(project, capsys):
    assert main(["generate", "--specs", str(project / "specs")]) == 0
    schema_doc = project / "docs" / "SCHEMA.md"
    before = schema_doc.read_text()
    (project / "specs" / "billing" / "daily_cost.yaml").write_text(
        (project / "specs" / "billing" / "daily_cost.yaml").read_text().replace("Daily cost per workspace", "Daily spend per workspace"))
    shutil.rmtree(project / "generated" / "sql")
    (project / "generated" / "sql").write_text("a file where a folder belongs\n")
    capsys.readouterr()
    code = main(["generate", "--specs", str(project / "specs")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing was changed" in err
    assert schema_doc.read_text() == before
    assert not list(project.rglob("*.tmp")), "staged files are cleaned up"
