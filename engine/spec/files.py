"""Stage: spec. Which files are specs: regular files inside the specs folder, and nothing else.

A spec tree is input an attacker or an unlucky user may shape: a symlink to /proc/self/environ
would echo secrets in error snippets, a FIFO would hang every command, `--specs /` would walk the
whole disk and an unreadable folder would silently drop its tables. So the walk never follows a
link out of the folder, never opens anything but a regular file, refuses a folder without
project.yaml before walking it, and reports every folder it cannot read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.spec.errors import Diagnostic, display_path

PROJECT_FILE = "project.yaml"
ALERTS_FOLDER = "alerts"
DASHBOARDS_FOLDER = "dashboards"
# Folders under specs/ that hold other kinds of spec, not tables.
NON_TABLE_FOLDERS = frozenset({ALERTS_FOLDER, DASHBOARDS_FOLDER})
SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SPEC_BYTES = 1_000_000  # a table spec is a few KB; anything larger is not a spec


@dataclass(frozen=True)
class SpecFiles:
    project: Path | None
    tables: tuple[Path, ...]
    alerts: tuple[Path, ...]
    problems: tuple[Diagnostic, ...]
    dashboards: tuple[Path, ...] = ()


def discover(specs_dir: Path) -> SpecFiles:
    """Every spec file under `specs_dir`, sorted, with a located problem for each one refused."""
    shown = display_path(specs_dir)
    if not specs_dir.is_dir():
        return SpecFiles(None, (), (), (Diagnostic(shown, 1, 1, "SPECS_NOT_FOUND", f"'{shown}' is not a directory of specs"),))
    root = specs_dir.resolve()
    project = specs_dir / PROJECT_FILE
    problem = check_spec_file(project, root)
    if problem is not None:
        return SpecFiles(None, (), (), (problem,))

    problems: list[Diagnostic] = []
    tables: list[Path] = []
    alerts: list[Path] = []
    dashboards: list[Path] = []
    for path in _walk(specs_dir, problems):
        relative = path.relative_to(specs_dir)
        if len(relative.parts) < 2 or relative.parts[0].startswith("."):
            continue  # top-level files are project settings; hidden folders are not specs
        refused = check_spec_file(path, root)
        if refused is not None:
            problems.append(refused)
        elif relative.parts[0] == ALERTS_FOLDER:
            alerts.append(path)
        elif relative.parts[0] == DASHBOARDS_FOLDER:
            dashboards.append(path)
        elif relative.parts[0] not in NON_TABLE_FOLDERS:
            tables.append(path)
    return SpecFiles(project, tuple(sorted(tables)), tuple(sorted(alerts)), tuple(problems), tuple(sorted(dashboards)))


def check_spec_file(path: Path, root: Path) -> Diagnostic | None:
    """None when `path` is a regular, readable file inside `root` (after resolving links)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and stat.S_ISREG(info.st_mode) and info.st_size <= MAX_SPEC_BYTES \
                and root in path.absolute().parents:
            return None  # the common case, without resolving: the walk never enters linked folders
        info = os.stat(path)  # follows links; the target is checked below
    except FileNotFoundError:
        shown = display_path(path)
        if path.is_symlink():
            return Diagnostic(shown, 1, 1, "SPEC_BROKEN_LINK", "symbolic link to a file that does not exist")
        if path.name == PROJECT_FILE:
            return Diagnostic(shown, 1, 1, "PROJECT_MISSING",
                              f"project settings file {PROJECT_FILE} not found in {display_path(path.parent)}: "
                              "--specs must name the folder that holds it")
        return Diagnostic(shown, 1, 1, "FILE_UNREADABLE", "file does not exist")
    except OSError as exc:
        return Diagnostic(display_path(path), 1, 1, "FILE_UNREADABLE", f"cannot read file: {exc.strerror}")
    shown = display_path(path)
    target = path.resolve()
    if target != root and root not in target.parents:
        return Diagnostic(shown, 1, 1, "SPEC_OUTSIDE_FOLDER",
                          f"symbolic link leads outside the specs folder ({display_path(root)}); specs must live inside it")
    if not stat.S_ISREG(info.st_mode):
        return Diagnostic(shown, 1, 1, "SPEC_NOT_REGULAR_FILE", f"not a regular file ({_kind(info.st_mode)}); it is never opened")
    if info.st_size > MAX_SPEC_BYTES:
        return Diagnostic(shown, 1, 1, "FILE_TOO_LARGE", f"{info.st_size:,} bytes; a spec holds at most {MAX_SPEC_BYTES:,}")
    if not os.access(path, os.R_OK):
        return Diagnostic(shown, 1, 1, "FILE_UNREADABLE", "cannot read file: permission denied")
    return None


def _walk(specs_dir: Path, problems: list[Diagnostic]) -> list[Path]:
    """Spec-named entries under `specs_dir`; linked folders are not entered; unreadable ones are reported."""

    def refused(error: OSError) -> None:
        where = display_path(Path(error.filename)) if error.filename else display_path(specs_dir)
        problems.append(Diagnostic(where, 1, 1, "FOLDER_UNREADABLE",
                                   f"cannot list folder: {error.strerror}; its specs would be silently missing"))

    found = []
    for folder, subfolders, names in os.walk(specs_dir, onerror=refused, followlinks=False):
        subfolders.sort()
        for name in subfolders:
            if os.path.islink(os.path.join(folder, name)) and not name.startswith("."):
                problems.append(Diagnostic(display_path(Path(folder, name)), 1, 1, "SPEC_LINKED_FOLDER",
                                           "linked folders are not followed; put the specs in the specs folder"))
        found.extend(Path(folder, name) for name in names if name.endswith(SPEC_SUFFIXES))
    return sorted(found)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"
