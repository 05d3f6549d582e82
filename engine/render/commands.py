"""Stage: render. `tablesmith generate` and `tablesmith new`, registered with the CLI."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.cli import EXIT_OK, CheckFailed, UserError, command, specs_argument
from engine.spec import load_project


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    specs_argument(parser)
    parser.add_argument("--root", type=Path, default=None,
                        help="project root the files are written under (default: the folder holding --specs)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming every file that differs from what the specs produce")


@command("generate", "render docs/SCHEMA.md, generated/** and databricks.yml from the specs", _generate_arguments)
def cmd_generate(args: argparse.Namespace) -> int:
    from engine.render import writer
    from engine.render.registry import RenderContext, render_all

    started = time.perf_counter()
    specs = Path(args.specs)
    root = Path(args.root) if args.root else specs.resolve().parent
    project = load_project(specs)
    outputs = render_all(project, RenderContext(specs_path=_relative(specs, root)))
    changes = writer.plan(root, outputs)
    elapsed = time.perf_counter() - started
    if args.check:
        if not changes.clean:
            raise CheckFailed("generated files differ from what the specs produce (run `tablesmith generate`):\n" + changes.describe())
        print(f"ok: {len(outputs)} generated files up to date ({elapsed:.2f}s)")
        return EXIT_OK
    writer.apply(root, outputs, changes)
    print(f"generated {len(outputs)} files: {len(changes.missing)} new, {len(changes.stale)} updated, "
          f"{len(changes.extra)} deleted, {len(changes.unchanged)} unchanged ({time.perf_counter() - started:.2f}s)")
    if not changes.clean:
        print(changes.describe(applied=True))
    return EXIT_OK


def _relative(specs: Path, root: Path) -> str:
    try:
        return specs.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UserError(f"--specs {specs} must be inside the project root {root}") from None


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.render.scaffold import DOMAINS, PATTERNS

    parser.add_argument("table", help="name of the new table (a SQL identifier)")
    parser.add_argument("--pattern", required=True, choices=PATTERNS)
    parser.add_argument("--domain", required=True, choices=DOMAINS)
    parser.add_argument("--source", help="system table (system.<schema>.<table>) or another spec's table to read")
    specs_argument(parser)


@command("new", "write a commented starter spec specs/<domain>/<table>.yaml that passes validate", _new_arguments)
def cmd_new(args: argparse.Namespace) -> int:
    from engine.render.scaffold import write_starter

    path = write_starter(Path(args.specs), args.table, args.pattern, args.domain, args.source)
    print(f"wrote {path}: fill in the TODOs, then run `tablesmith validate` and `tablesmith generate`")
    return EXIT_OK
