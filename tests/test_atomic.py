"""engine.atomic: every writer's one rule (whole file or none, same folder, mode kept or given)."""

from __future__ import annotations

import os
import stat

import pytest

from engine import atomic


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    atomic.write_text(target, "one\n")
    atomic.write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
    assert _mode(target) == 0o644


def test_mode_is_given_or_kept(tmp_path):
    secret = tmp_path / "server.json"
    atomic.write_text(secret, "{}", mode=0o600)
    assert _mode(secret) == 0o600
    atomic.write_text(secret, "{\"token\": 1}")  # no mode: the existing file's is kept
    assert _mode(secret) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table" / "part-00000.parquet"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic.staged_file(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(target.parent) == ["part-00000.parquet"]


def test_staged_files_are_hidden_until_replaced(tmp_path):
    target = tmp_path / "a.txt"
    staged = atomic.stage_bytes(target, b"data")
    assert staged.name.startswith(".") and staged.parent == tmp_path and not target.exists()
    os.replace(staged, target)
    assert target.read_bytes() == b"data"


def test_replace_directory_swaps_a_folder_whole(tmp_path):
    target = tmp_path / "out" / "billing" / "usage"
    target.mkdir(parents=True)
    (target / "old.parquet").write_text("old")
    with atomic.scratch_directory(tmp_path / "out") as scratch:
        assert scratch.parent == tmp_path and scratch.name.startswith(".out.staging-")
        new = scratch / "billing" / "usage"
        new.mkdir(parents=True)
        (new / "new.parquet").write_text("new")
        atomic.replace_directory(new, target, scratch / ".retired" / "usage")
    assert [p.name for p in target.iterdir()] == ["new.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the scratch folder is gone
