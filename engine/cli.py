"""Stage: cli. A thin shell over the stages, with one exit path for user errors.

Exit codes: 0 ok, 1 a check failed (e.g. stale generated files), 2 bad input (specs, arguments).
`--debug` shows the traceback of an unexpected failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from engine import __version__, escape
from engine.errors import CheckFailed, UserError
from engine.spec import SpecError, load_project, validate_project

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[Handler, Configure, str]] = {}


def specs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", type=Path, default=Path("specs"), help="directory of specs (default: specs)")


def command(name: str, help_text: str, configure: Configure = specs_argument) -> Callable[[Handler], Handler]:
    """Register a subcommand: its handler, how to configure its arguments, and its help line."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, configure, help_text)
        return fn

    return register


@command("validate", "check every spec: shape, references, cycles, columns; all errors at once")
def cmd_validate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    project, warnings = validate_project(args.specs)
    elapsed = time.perf_counter() - started
    for warning in warnings:  # refresh cost and the like: reported, never failing
        print(warning.format(), file=sys.stderr)
    dashboards = f", {len(project.dashboards)} dashboards" if project.dashboards else ""
    noted = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    print(f"ok: {len(project.tables)} tables{dashboards} valid in {args.specs}{noted} ({elapsed:.2f}s)")
    return EXIT_OK


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    specs_argument(parser)
    parser.add_argument("--format", choices=("text", "mermaid"), default="text")


@command("graph", "print the table graph in run order (text or Mermaid)", _graph_arguments)
def cmd_graph(args: argparse.Namespace) -> int:
    from engine.graph.show import mermaid, text

    project = load_project(args.specs)
    print(mermaid(project) if args.format == "mermaid" else text(project))
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    _load_optional_commands()
    parser = argparse.ArgumentParser(prog="tablesmith", description="Monitoring tables for Databricks system tables, from YAML specs.")
    parser.add_argument("--version", action="version", version=f"tablesmith {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, configure, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        configure(child)
        child.set_defaults(handler=fn)
    return parser


# Each stage registers its own subcommands with @command in its `commands` module.
COMMAND_MODULES = ("engine.demo.commands", "engine.runtime.commands", "engine.render.commands", "engine.deploy.commands",
                   "engine.alerts.commands", "engine.report.commands")


def _load_optional_commands() -> None:
    """Commands of later stages register themselves on import; they import heavy modules lazily."""
    import importlib

    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):  # a stage not installed in this checkout
                raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except SpecError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except UserError as exc:
        print(escape.terminal(f"error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CheckFailed as exc:
        print(escape.terminal(f"check failed: {exc}"), file=sys.stderr)
        return EXIT_CHECK_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: the reader left, nothing to report
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become a message
        if args.debug:
            raise
        print(escape.terminal(f"internal error: {type(exc).__name__}: {exc}\n(run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover - `python -m engine.cli`
    # Stage command modules register into `engine.cli`, not into this __main__ copy of it.
    from engine.cli import main as registered_main

    sys.exit(registered_main())
