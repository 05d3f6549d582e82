"""Stage: spec. The one error type every bad input becomes: a list of located diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine import escape


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one spec file, at a line and column (1-based)."""

    file: str
    line: int
    col: int
    code: str
    message: str
    key_path: str = ""
    snippet: str = ""
    severity: str = "error"  # "warning": printed by validate, never fails it

    def format(self) -> str:
        """One line per problem plus its snippet; spec text is shown, never interpreted by the terminal."""
        where = f"{self.file}:{self.line}:{self.col}"
        key = f" {escape.one_line(self.key_path)}:" if self.key_path else ""
        level = "warning: " if self.severity == "warning" else ""
        text = f"{where}: {level}{self.code}:{key} {escape.one_line(self.message)}"
        return escape.terminal(text + ("\n" + self.snippet if self.snippet else ""))


class SpecError(Exception):
    """Raised with every diagnostic found in one pass; never raised for a single one early."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(set(diagnostics))
        super().__init__(self.report())

    def report(self) -> str:
        n = len(self.diagnostics)
        body = "\n".join(d.format() for d in self.diagnostics)
        return f"{body}\n{n} error{'s' if n != 1 else ''} found"


def snippet(text: str | None, line: int, col: int, context: int = 1) -> str:
    """A numbered excerpt with a caret under the offending column (dbt / dagster style)."""
    if not text or line < 1:
        return ""
    lines = text.splitlines()
    if line > len(lines):
        return ""
    first, last = max(1, line - context), min(len(lines), line)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        marker = ">" if n == line else " "
        out.append(f"  {marker} {n:>{width}} | {lines[n - 1][:160]}")
    out.append(f"    {' ' * width} | {' ' * max(col - 1, 0)}^")
    return "\n".join(out)


def display_path(path: Path, root: Path | None = None) -> str:
    """Paths in messages are relative to the working directory when possible (clickable in editors)."""
    try:  # the common case, without resolving links: a path under the working directory
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return relative if not relative.startswith("..") else _resolved_display(path, root)


def _resolved_display(path: Path, root: Path | None) -> str:
    folder, name = os.path.split(os.fspath(path))
    if name in ("", ".", ".."):
        return str(path)
    # Worked out once per folder (a thousand specs share a few): the file's own name is appended.
    shown_folder = _folder_display(folder or ".", os.getcwd(), None if root is None else os.fspath(root))
    if shown_folder is None:
        return str(path)
    return name if shown_folder == "." else os.path.join(shown_folder, name)


@lru_cache(maxsize=256)
def _folder_display(folder: str, cwd: str, root: str | None) -> str | None:
    """`folder` resolved, relative to the working directory or else to `root`; None when under neither."""
    try:
        resolved = _resolved(folder)
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): shown as given
        return None
    for base in (_resolved(cwd), Path(root).resolve() if root is not None else None):
        if base is not None and (resolved == base or base in resolved.parents):
            return str(resolved.relative_to(base))
    return None


@lru_cache(maxsize=256)
def _resolved(folder: str) -> Path:
    return Path(folder).resolve()
