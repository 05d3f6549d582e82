"""Stage: render. Compare rendered files with the working tree, and write them atomically.

Managed files are the renderers' outputs plus anything under generated/ (a file there that no
renderer produces any more is 'extra': `generate` deletes it, `generate --check` reports it).
Caches that running the generated tests leaves behind are ignored.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

GENERATED_DIR = "generated"
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache"})
IGNORED_SUFFIXES = (".pyc",)


@dataclass(frozen=True)
class Plan:
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    extra: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)

    def describe(self, *, applied: bool = False) -> str:
        """One line per differing file; `applied` words it as what `generate` just did."""
        labels = ("new:     ", "updated: ", "deleted: ") if applied else ("missing: ", "stale:   ", "extra:   ")
        lines = [f"  {labels[0]}{p}" for p in self.missing]
        lines += [f"  {labels[1]}{p}" for p in self.stale]
        lines += [f"  {labels[2]}{p} (no renderer produces it)" for p in self.extra]
        return "\n".join(lines)


def plan(root: Path, outputs: dict[str, str]) -> Plan:
    missing, stale, unchanged = [], [], []
    for relative, text in outputs.items():
        path = root / relative
        if not path.is_file():
            missing.append(relative)
        elif path.read_bytes() != text.encode("utf-8"):
            stale.append(relative)
        else:
            unchanged.append(relative)
    extra = sorted(p for p in _files_under(root, GENERATED_DIR) if p not in outputs)
    return Plan(tuple(missing), tuple(stale), tuple(extra), tuple(unchanged))


def apply(root: Path, outputs: dict[str, str], changes: Plan) -> None:
    for relative in changes.missing + changes.stale:
        write_atomic(root / relative, outputs[relative])
    for relative in changes.extra:
        (root / relative).unlink()
    _remove_empty_dirs(root / GENERATED_DIR)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and os.replace it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _files_under(root: Path, folder: str) -> list[str]:
    base = root / folder
    if not base.is_dir():
        return []
    found = []
    for path in base.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not IGNORED_PARTS & set(relative.parts) and not path.name.endswith(IGNORED_SUFFIXES):
            found.append(relative.as_posix())
    return found


def _remove_empty_dirs(base: Path) -> None:
    if not base.is_dir():
        return
    for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
