"""The local server's file system class (engine.runtime.hadoop_fs) against Hadoop's own: the same
files and modes through Hadoop's FileSystem API, without starting a `chmod` process."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from engine.runtime import hadoop_fs
from engine.runtime.layout import LocalLayout

pytestmark = pytest.mark.spark  # javac and a JVM: not among the fast tests

CHECK = Path(__file__).with_name("java") / "LocalFileSystemCheck.java"


def _jars() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "jars" / "*")


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> hadoop_fs.LocalFileSystem:
    file_system = hadoop_fs.local_file_system(tmp_path_factory.mktemp("cache"))
    if file_system.class_path is None:
        pytest.fail(f"the class did not compile: {file_system.why_hadoops}")  # CI installs a JDK
    return file_system


@pytest.fixture(scope="module")
def check_classes(tmp_path_factory, ours) -> Path:
    out = tmp_path_factory.mktemp("check")
    subprocess.run([str(hadoop_fs.find_javac()), "-nowarn", "-cp", _jars(), "-d", str(out), str(CHECK)], check=True)
    return out


def _no_processes(folder: Path, log: Path) -> str:
    """A PATH whose `chmod`, `ls`, `stat` and `readlink` log their call and fail."""
    folder.mkdir()
    for command in ("chmod", "ls", "stat", "readlink"):
        script = folder / command
        script.write_text(f'#!/bin/sh\necho "{command} $*" >> {log}\nexit 1\n')
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def _write(check_classes: Path, class_name: str, class_path: Path | None, root: Path, path: str) -> tuple[subprocess.CompletedProcess, dict]:
    classes = os.pathsep.join(str(p) for p in (check_classes, class_path) if p) + os.pathsep + _jars()
    java = shutil.which("java")
    done = subprocess.run([java, "-cp", classes, "LocalFileSystemCheck", class_name, str(root)],
                          capture_output=True, text=True, env={**os.environ, "PATH": path}, timeout=120)
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))} if root.exists() else {}
    return done, modes


def test_the_same_files_and_modes_as_hadoops_class_and_no_process(tmp_path, ours, check_classes):
    hadoops, hadoop_modes = _write(check_classes, hadoop_fs.HADOOP_CLASS_NAME, None, tmp_path / "hadoop", os.environ["PATH"])
    assert hadoops.returncode == 0, hadoops.stderr
    assert hadoop_modes == {"table": 0o750, "table/other.parquet": 0o600, "table/part=1": 0o711,
                            "table/part=1/data.parquet": 0o640}, hadoop_modes  # umask 027 applied to creations

    log = tmp_path / "processes.log"
    path = _no_processes(tmp_path / "bin", log)
    mine, my_modes = _write(check_classes, hadoop_fs.CLASS_NAME, ours.class_path, tmp_path / "ours", path)
    assert mine.returncode == 0, mine.stderr
    assert f"class {hadoop_fs.CLASS_NAME}" in mine.stdout and "missing: FileNotFoundException" in mine.stdout
    assert my_modes == hadoop_modes
    assert not log.exists(), log.read_text()

    # The same PATH stops Hadoop's class: it would have started processes.
    control, _ = _write(check_classes, hadoop_fs.HADOOP_CLASS_NAME, None, tmp_path / "control", path)
    assert control.returncode != 0 and "chmod" in log.read_text()


def test_compiled_once_then_taken_from_the_cache_without_a_jdk(tmp_path, ours, monkeypatch):
    cache = tmp_path / "cache"
    first = hadoop_fs.local_file_system(cache)
    assert first.class_name == hadoop_fs.CLASS_NAME and first.class_path.is_relative_to(cache)
    compiled = next(first.class_path.rglob("*.class"))
    before = compiled.stat().st_mtime_ns
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert hadoop_fs.find_javac() is None
    assert hadoop_fs.local_file_system(cache) == first and compiled.stat().st_mtime_ns == before
    assert [p.name for p in cache.iterdir()] == ["hadoop-fs"] and len(list((cache / "hadoop-fs").iterdir())) == 1  # no scratch left


def test_without_a_jdk_the_server_keeps_hadoops_class_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    file_system = hadoop_fs.local_file_system()
    assert file_system == hadoop_fs.LocalFileSystem(hadoop_fs.HADOOP_CLASS_NAME, None, file_system.why_hadoops)
    assert "javac" in file_system.why_hadoops
    defaults = LocalLayout(tmp_path).spark_defaults().splitlines()
    assert f"spark.hadoop.fs.file.impl {hadoop_fs.HADOOP_CLASS_NAME}" in defaults
    assert not any(line.startswith("spark.driver.extraClassPath") for line in defaults)


def _user_cache_holding(ours: hadoop_fs.LocalFileSystem, home: Path) -> str:
    """A user cache folder (XDG_CACHE_HOME) already holding the compiled class: no second `javac` run."""
    assert ours.class_path is not None
    shutil.copytree(ours.class_path, home / "tablesmith" / "hadoop-fs" / ours.class_path.name)
    return str(home)


def test_the_server_settings_name_the_compiled_class(tmp_path, monkeypatch, ours):
    monkeypatch.setenv("XDG_CACHE_HOME", _user_cache_holding(ours, tmp_path))
    defaults = LocalLayout(tmp_path / "out").spark_defaults().splitlines()
    file_system = hadoop_fs.local_file_system()
    assert f"spark.hadoop.fs.file.impl {hadoop_fs.CLASS_NAME}" in defaults
    assert f"spark.driver.extraClassPath {file_system.class_path}" in defaults


def test_a_source_that_does_not_compile_leaves_hadoops_class_and_the_compiler_message(tmp_path, monkeypatch, ours):
    broken = tmp_path / "NioLocalFileSystem.java"
    broken.write_text("package tablesmith.hadoop; public class NioLocalFileSystem extends Missing {}\n")
    monkeypatch.setattr(hadoop_fs, "SOURCE", broken)
    file_system = hadoop_fs.local_file_system(tmp_path / "cache")
    assert file_system.class_name == hadoop_fs.HADOOP_CLASS_NAME and file_system.class_path is None
    assert "could not compile" in file_system.why_hadoops and "Missing" in file_system.why_hadoops
    assert not any((tmp_path / "cache" / "hadoop-fs").iterdir())  # nothing half-written


def test_tablesmith_hadoop_fs_asks_for_hadoops_class_even_when_ours_compiles(tmp_path, monkeypatch, ours):
    monkeypatch.setenv("XDG_CACHE_HOME", _user_cache_holding(ours, tmp_path))
    ours_defaults = LocalLayout(tmp_path / "out").spark_defaults()
    assert f"spark.hadoop.fs.file.impl {hadoop_fs.CLASS_NAME}" in ours_defaults.splitlines()
    monkeypatch.setenv(hadoop_fs.CHOICE_ENV, "hadoop")
    file_system = hadoop_fs.local_file_system()
    assert file_system.class_name == hadoop_fs.HADOOP_CLASS_NAME and hadoop_fs.CHOICE_ENV in file_system.why_hadoops
    defaults = LocalLayout(tmp_path / "out").spark_defaults()
    assert f"spark.hadoop.fs.file.impl {hadoop_fs.HADOOP_CLASS_NAME}" in defaults.splitlines() and defaults != ours_defaults
