"""Stage: render. Compare rendered files with the working tree, and write them atomically.

Managed files are the renderers' outputs plus anything under generated/ (a file there that no
renderer produces any more is 'extra': `generate` deletes it, `generate --check` reports it).
Caches that running the generated tests leaves behind are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine import atomic
from engine.errors import UserError

GENERATED_DIR = "generated"
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache"})
IGNORED_SUFFIXES = (".pyc",)


@dataclass(frozen=True)
class FileChanges:
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


def plan(root: Path, outputs: dict[str, str]) -> FileChanges:
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
    return FileChanges(tuple(missing), tuple(stale), tuple(extra), tuple(unchanged))


def apply(root: Path, outputs: dict[str, str], changes: FileChanges) -> None:
    """Replace every changed file together: all are staged first, so a failure changes nothing.

    Every path is checked to resolve inside the project root first: a `generated/` linked
    elsewhere must not let `generate` write (or delete) outside the project.
    """
    targets = {relative: inside_root(root, relative) for relative in changes.missing + changes.stale + changes.extra}
    staged: list[tuple[Path, Path]] = []
    try:
        for relative in changes.missing + changes.stale:
            staged.append((atomic.stage_bytes(targets[relative], outputs[relative].encode("utf-8")), targets[relative]))
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise UserError(f"cannot write {exc.filename or root}: {exc.strerror}; nothing was changed") from None
    for temporary, target in staged:
        os.replace(temporary, target)
    for relative in changes.extra:
        targets[relative].unlink()
    _remove_empty_dirs(root / GENERATED_DIR)


def inside_root(root: Path, relative: str) -> Path:
    """root/relative, refused (UserError) when it resolves outside the root through a link or '..'."""
    base = root.resolve()
    target = root / relative
    resolved = target.parent.resolve() / target.name
    if base not in resolved.parents or target.is_symlink():
        raise UserError(f"refusing to write {target}: it resolves to {resolved.resolve()}, outside the project root {base}")
    return target


def _files_under(root: Path, folder: str) -> list[str]:
    base = root / folder
    if not base.is_dir():
        return []
    found = []
    for folder, _, names in os.walk(base, followlinks=False):  # a linked folder is never entered
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root)
            if path.is_file() and not IGNORED_PARTS & set(relative.parts) and not name.endswith(IGNORED_SUFFIXES + (".tmp",)):
                found.append(relative.as_posix())
    return sorted(found)


def _remove_empty_dirs(base: Path) -> None:
    if not base.is_dir():
        return
    for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
