"""Stage: render. `generate`: render every output of the specs and write (or only compare) the files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import CheckFailed, UserError
from engine.render import writer
from engine.render.registry import RenderContext, render_all
from engine.spec import load_project


@dataclass(frozen=True)
class Generated:
    files: int  # outputs the specs produce
    changes: writer.FileChanges  # how the files on disk differed from them (before writing)
    seconds: float


def generate(specs: Path, root: Path | None = None, *, check: bool = False) -> Generated:
    """Render every output of the specs under `root` (default: the folder holding `specs`).

    `check`: write nothing, and raise CheckFailed naming every file that differs."""
    started = time.perf_counter()
    root = root if root is not None else specs.resolve().parent
    project = load_project(specs)
    outputs = render_all(project, RenderContext(specs_path=_relative(specs, root)))
    changes = writer.plan(root, outputs)
    if check and not changes.clean:
        raise CheckFailed("generated files differ from what the specs produce (run `tablesmith generate`):\n" + changes.describe())
    if not check:
        writer.apply(root, outputs, changes)
    return Generated(len(outputs), changes, time.perf_counter() - started)


def _relative(specs: Path, root: Path) -> str:
    try:
        return specs.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UserError(f"--specs {specs} must be inside the project root {root}") from None
