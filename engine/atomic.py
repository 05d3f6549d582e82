"""The one rule for writing a file or a folder: whole or not at all.

A file is written to a hidden temporary file in its own folder (same filesystem, so the rename is
atomic), flushed to disk, then renamed over the target: a reader or a killed process never sees
half a file. A folder is built beside its target and swapped in with renames. Standard library
only: the local runtime and the report use it as well as `generate`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DEFAULT_MODE = 0o644


def write_text(path: Path, text: str, mode: int | None = None) -> None:
    """`text` (UTF-8) at `path`, atomically; `mode`: None keeps an existing file's mode, else 0o644."""
    write_bytes(path, text.encode("utf-8"), mode)


def write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    os.replace(stage_bytes(path, data, mode), path)


def stage_bytes(path: Path, data: bytes, mode: int | None = None) -> Path:
    """`data` in a temporary file beside `path`, flushed to disk; the caller os.replace()s it into place.

    For writers that stage several files before replacing any (all or nothing across files).
    """
    with staged_file(path, mode, replace=False) as temporary:
        temporary.write_bytes(data)
    return temporary


@contextmanager
def staged_file(path: Path, mode: int | None = None, *, replace: bool = True) -> Iterator[Path]:
    """A temporary path beside `path` for a library that writes files itself (e.g. Parquet); on a
    clean exit it is flushed to disk and renamed over `path` (`replace=False`: left for the caller).

    The name starts with '.', so Spark and the engine skip it while it is being written. It is
    created with mode 0o600 and given its final mode only when written, so a secret never shows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    final_mode = mode if mode is not None else (path.stat().st_mode & 0o777 if path.exists() else DEFAULT_MODE)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _fsync(temporary)
        os.chmod(temporary, final_mode)
        if replace:
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def scratch_directory(beside: Path) -> Iterator[Path]:
    """An empty folder next to `beside` (same filesystem, so its contents rename into place); removed at the end."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{beside.name}.staging-", dir=beside.parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def replace_directory(source: Path, target: Path, retired: Path) -> None:
    """Move the folder `source` to `target`, replacing an older `target` (moved to `retired`, then
    deleted): a reader sees the old folder or the new one, never a mix. All three on one filesystem."""
    target.parent.mkdir(parents=True, exist_ok=True)
    moved_aside = False
    if target.exists():
        retired.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, retired)
        moved_aside = True
    os.replace(source, target)
    if moved_aside:
        shutil.rmtree(retired, ignore_errors=True)


def _fsync(path: Path) -> None:
    # Flushed before the rename: after a machine crash the target is the old file or the new one.
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())
