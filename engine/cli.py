"""Stage: cli. The one place that wires the stages together: every `tablesmith` command, on click.

The stages return data or raise the errors of engine/errors.py (and SpecError); only this module
parses arguments, prints, and turns errors into exit codes: 0 ok, 1 a check failed (e.g. stale
generated files), 2 bad input (specs, arguments), 3 an unexpected failure (`--debug` shows its
traceback). No stage imports this module (tests/test_architecture.py).

Output: on a terminal, `rich` draws the run's live progress and the summary tables; otherwise
(pipes, CI, tests) every command prints the same plain, greppable lines, with no colour codes.
Stages are imported inside the commands, so `tablesmith validate` never pays for Spark or the SDK.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import click

from engine import __version__, escape
from engine.errors import CheckFailed, UserError
from engine.spec import SpecError, load_project, validate_project

if TYPE_CHECKING:
    from rich.console import Console

    from engine.runtime.results import RunObserver

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
DEFAULT_OUTPUT = Path(".tablesmith")
PATH = click.Path(path_type=Path)


class IsoDate(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


ISO_DATE = IsoDate()


def specs_option(fn: Callable) -> Callable:
    return click.option("--specs", type=PATH, default=Path("specs"), show_default=True, help="directory of specs")(fn)


def output_option(help_text: str) -> Callable[[Callable], Callable]:
    return click.option("--output", type=PATH, default=DEFAULT_OUTPUT, show_default=True, help=help_text)


# --- output: plain lines when piped, rich on a terminal ------------------------------------------

def say(text: str = "") -> None:
    """One plain line on stdout, flushed (a failure that follows belongs to the line before it)."""
    click.echo(text)


def stdout_is_terminal() -> bool:
    """Rich output only for a person at a terminal: a pipe or a CI log gets plain lines even when
    FORCE_COLOR is set (the lines are a contract; colours are not)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def console() -> "Console":
    """A console on the current stdout: rich on a terminal; elsewhere no colour codes and no wrapping."""
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False, emoji=False, force_terminal=stdout_is_terminal())


def show_table(columns: Sequence[str], rows: Iterable[Sequence[str]], plain: Iterable[str], *,
               title: str | None = None, styles: Sequence[str | None] = (), numeric: Sequence[int] = ()) -> None:
    """`rows` as a rich table on a terminal; elsewhere the `plain` lines the scripts and tests read."""
    if not stdout_is_terminal():
        for line in plain:
            say(line)
        return
    from rich.table import Table

    out = console()
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, style=styles[index] if index < len(styles) else None,
                         justify="right" if index in numeric else "left")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _rich_run_observer() -> "RunObserver":
    """Live per-table progress while the flows run, and the summary as a table, on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.runtime.results import SUMMARY_COLUMNS, RunObserver, flow_mark, summary_notes, summary_rows

    out = console()

    class LiveRun(RunObserver):
        def __init__(self) -> None:
            super().__init__(lambda text: out.print(text, markup=False))
            self.progress: Progress | None = None
            self.running: list[str] = []

        def flows_starting(self, tables: Sequence[str]) -> None:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=out, transient=True)
            self.task = self.progress.add_task("starting", total=len(tables))
            self.progress.start()

        def flow_started(self, name: str) -> None:
            self.running.append(name)
            self._describe()

        def flow_finished(self, table) -> None:
            if table.name in self.running:
                self.running.remove(table.name)
            style = {"COMPLETED": "green", "FAILED": "bold red"}.get(table.state, "yellow")
            out.print(f"  [{style}]{flow_mark(table.state):>6}[/] {escape.terminal(table.name):<34} {table.seconds:6.1f}s")
            if self.progress is not None:
                self.progress.advance(self.task)
                self._describe()

        def _describe(self) -> None:
            if self.progress is not None:
                shown = ", ".join(self.running[:3]) + (f" +{len(self.running) - 3}" if len(self.running) > 3 else "")
                self.progress.update(self.task, description=f"running {shown}" if shown else "waiting")

        def close(self) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

        def run_finished(self, result) -> None:
            self.close()
            show_table(SUMMARY_COLUMNS, summary_rows(result), (), title=f"run {result.run_id}",
                       styles=(None, "dim", "cyan", None, "yellow"), numeric=(2, 3))
            for note in summary_notes(result):
                out.print(note, markup=False)

    return LiveRun()


# --- the commands ---------------------------------------------------------------------------------

class _Command(click.Command):
    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or (self.help or "").strip().splitlines()[0]  # whole: the listing wraps it


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups are _Groups too
    get_short_help_str = _Command.get_short_help_str


@click.group(name="tablesmith", cls=_Group, help="Monitoring tables for Databricks system tables, from YAML specs.",
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, "--version", prog_name="tablesmith", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="show tracebacks of unexpected errors")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.obj = {"debug": debug}


@cli.command(help="check every spec: shape, references, cycles, columns; all errors at once")
@specs_option
@click.option("--refresh", "list_refresh", is_flag=True,
              help="also list how Databricks refreshes each materialized view of the 15-minute pipeline")
def validate(specs: Path, list_refresh: bool) -> None:
    from engine.spec.refresh import pipeline_materialized_views, refresh_summary

    started = time.perf_counter()
    project, warnings = validate_project(specs)
    elapsed = time.perf_counter() - started
    for warning in warnings:  # refresh cost and the like: reported, never failing
        click.echo(warning.format(), err=True)
    dashboards = f", {len(project.dashboards)} dashboards" if project.dashboards else ""
    noted = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    say(f"ok: {len(project.tables)} tables{dashboards} valid in {specs}{noted} ({elapsed:.2f}s)")
    views = pipeline_materialized_views(project.tables)
    say(refresh_summary(project.tables, views) + ("" if list_refresh else " (`--refresh` lists each)"))
    if list_refresh:
        for assessment in views:
            where = assessment.table.location
            say(escape.terminal(escape.one_line(f"{where.file}:{where.line}: {assessment.table.name}: {assessment.explained}")))


@cli.command(help="print the table graph in run order (text or Mermaid)")
@specs_option
@click.option("--format", "shape", type=click.Choice(["text", "mermaid"]), default="text", show_default=True)
def graph(specs: Path, shape: str) -> None:
    from engine.graph.show import mermaid, text

    project = load_project(specs)
    say(mermaid(project) if shape == "mermaid" else text(project))


@cli.command(help="run the tables locally on Spark Declarative Pipelines (re-runs refresh only what changed)")
@specs_option
@click.option("--source", type=PATH, default=None,
              help="folder of system tables laid out as <schema>/<table>/ (default: demo data, generated if missing)")
@output_option("where tables, metastore and checkpoints live")
@click.option("--full-refresh", is_flag=True, help="reset streaming checkpoints and rebuild every table")
@click.option("--select", multiple=True, metavar="TABLES",
              help="tables to refresh, with everything downstream of them: comma-separated, or the option repeated")
def run(specs: Path, source: Path | None, output: Path, full_refresh: bool, select: tuple[str, ...]) -> None:
    from engine.runtime.local import LocalLayout, RunObserver, run_local
    from engine.runtime.run import NOTHING_CHANGED, check_selection, nothing_changed

    # Every --select counts (click keeps only the last value of a plain option).
    selected = list(dict.fromkeys(name.strip() for value in select for name in value.split(",") if name.strip()))
    if not selected and not full_refresh and nothing_changed(LocalLayout(output), specs, source):
        say(NOTHING_CHANGED)  # no spec or source file changed since the last run: not even a validation
        return
    project = load_project(specs)  # bad specs stop here, before any data or JVM
    check_selection(project, selected)
    if source is None:
        source = _demo_source(Path(project.settings.source_root))
    observer = _rich_run_observer() if stdout_is_terminal() else RunObserver(say)
    try:
        run_local(specs, project=project, source=source, output=output, full_refresh=full_refresh, select=selected,
                  observer=observer)
    finally:
        getattr(observer, "close", lambda: None)()


def _demo_source(source: Path) -> Path:
    """The project's source folder, with the demo system tables written into it if it holds none
    (the runtime never imports the demo generator: it is asked here)."""
    if not any(source.glob("*/*/*.parquet")):
        from engine.demo.generator import generate

        say(f"no source data in {source}: writing demo system tables there (tablesmith demo-data)")
        generate(source)
    return source


@cli.command(help="stop the warm local Spark server of an output folder (it also stops by itself when idle)")
@output_option("where tables, metastore and checkpoints live")
def stop(output: Path) -> None:
    from engine.runtime.local import LocalLayout, stop_server

    layout = LocalLayout(output)
    if not layout.server_dir.exists():
        say(f"no local Spark server for {output}")
        return
    pid = stop_server(layout)
    say(f"stopped the local Spark server for {output} (pid {pid})" if pid else f"no local Spark server running for {output}")


@cli.command("demo-data", help="write deterministic synthetic Databricks system tables (Parquet, no Spark needed)")
@click.option("--out", type=PATH, default=DEFAULT_OUTPUT / "source", show_default=True,
              help="folder to write <schema>/<table>/ Parquet into")
@click.option("--workspaces", type=int, default=3, show_default=True)
@click.option("--days", type=int, default=45, show_default=True)
@click.option("--jobs", type=int, default=24, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True, help="multiplies billing.usage volume (90 = ~1M rows)")
@click.option("--end-date", type=ISO_DATE, default="2026-11-01", show_default=True, help="day after the last day of data")
@click.option("--append-day", type=ISO_DATE, default=None,
              help="instead, add one new file per streamable event table with that day's rows")
def demo_data(out: Path, workspaces: int, days: int, jobs: int, seed: int, scale: float, end_date: dt.date,
              append_day: dt.date | None) -> None:
    from engine.demo import generator

    common = dict(workspaces=workspaces, days=days, jobs=jobs, seed=seed, scale=scale, end_date=end_date)
    started = time.perf_counter()
    counts = generator.append_day(out, append_day, **common) if append_day else generator.generate(out, **common)
    say(f"wrote {sum(counts.values()):,} rows in {len(counts)} tables to {out} "
        f"({counts['system.billing.usage']:,} usage rows, {time.perf_counter() - started:.1f}s)")


@cli.command(help="render docs/SCHEMA.md, generated/** and databricks.yml from the specs")
@specs_option
@click.option("--root", type=PATH, default=None, help="project root the files are written under (default: the folder holding --specs)")
@click.option("--check", is_flag=True, help="write nothing; exit 1 naming every file that differs from what the specs produce")
def generate(specs: Path, root: Path | None, check: bool) -> None:
    from engine.render.generate import generate as render

    done = render(specs, root, check=check)
    changes = done.changes
    if check:
        say(f"ok: {done.files} generated files up to date ({done.seconds:.2f}s)")
        return
    say(f"generated {done.files} files: {len(changes.missing)} new, {len(changes.stale)} updated, "
        f"{len(changes.extra)} deleted, {len(changes.unchanged)} unchanged ({done.seconds:.2f}s)")
    if not changes.clean:
        say(changes.describe(applied=True))


def _scaffold_choices(name: str) -> list[str]:
    from engine.render import scaffold

    return list(getattr(scaffold, name))


@cli.command(help="write a commented starter spec specs/<domain>/<table>.yaml that passes validate")
@click.argument("table")
@click.option("--pattern", required=True, type=click.Choice(_scaffold_choices("PATTERNS")))
@click.option("--domain", required=True, type=click.Choice(_scaffold_choices("DOMAINS")))
@click.option("--source", default=None, help="system table (system.<schema>.<table>) or another spec's table to read")
@specs_option
def new(table: str, pattern: str, domain: str, source: str | None, specs: Path) -> None:
    from engine.render.scaffold import write_starter

    path = write_starter(specs, table, pattern, domain, source)
    say(f"wrote {path}: fill in the TODOs, then run `tablesmith validate` and `tablesmith generate`")


@cli.command(help="run every dashboard (specs/dashboards) on a local run's tables and write a static HTML report")
@specs_option
@output_option("the local run's folder (as for `tablesmith run`)")
@click.option("--report-dir", type=PATH, default=None, help="where the report goes (default: <output>/report)")
@click.option("--as-of", type=ISO_DATE, default=None,
              help="the day relative dates (now-30d/d) count from (default: the newest data read, at most today)")
@click.option("--open", "open_browser", is_flag=True, help="open the report's index in a web browser")
@click.pass_context
def report(ctx: click.Context, specs: Path, output: Path, report_dir: Path | None, as_of: dt.date | None,
           open_browser: bool) -> None:
    from engine.report.build import report_local_run

    project = load_project(specs)
    if not project.dashboards:
        say(f"no dashboard specs in {specs}/dashboards")
        return
    folder = report_dir or output / "report"
    result = report_local_run(project, output, folder, as_of)
    show_table(("dashboard", "page"), ((name, str(path)) for name, path in result.pages.items()),
               (f"  {name:<28} {path}" for name, path in result.pages.items()))
    say(f"wrote {result.index} ({len(result.pages)} dashboards, offline: plotly.js is in {folder})")
    if open_browser:
        import webbrowser

        webbrowser.open(result.index.resolve().as_uri())
    if result.errors:
        say(f"{result.errors} widget(s) could not run their query: see the report")
        ctx.exit(EXIT_CHECK_FAILED)


@cli.group(help="evaluate alert specs (specs/alerts) on a local run's output and notify")
def alerts() -> None:
    pass


@alerts.command("check", help="evaluate every alert on a local run's tables and notify its channel")
@specs_option
@output_option("the local run's folder")
@click.option("--dry-run", is_flag=True, help="print the messages instead of sending them")
@click.option("--fail-on-alert", is_flag=True, help="exit 1 when any alert fired")
@click.pass_context
def alerts_check(ctx: click.Context, specs: Path, output: Path, dry_run: bool, fail_on_alert: bool) -> None:
    from engine.alerts.evaluate import evaluate_local_run
    from engine.alerts.notify import deliver, messages

    project = load_project(specs)
    if not project.alerts:
        say(f"no alert specs in {specs}/alerts")
        return
    checked = evaluate_local_run(project, output)
    for name in checked.missing:
        say(f"skipping alerts on {name}: the table was not built")
    states = [(f.alert.tier.value, f.alert.name, f"FIRED ({len(f.rows)} rows)" if f.rows else "ok") for f in checked.firings]
    show_table(("tier", "alert", "state"), states, (f"{tier} {name:<36} {state}" for tier, name, state in states),
               styles=("bold", None, "yellow"))
    failures = 0
    for message in messages(list(checked.firings)):
        if dry_run:
            say(f"  would send {message.title} via {message.channel.type}")
        elif not deliver(message, echo=say):
            failures += 1
    if failures or (fail_on_alert and any(f.rows for f in checked.firings)):
        ctx.exit(EXIT_CHECK_FAILED)


@cli.group(help="plan/apply shares, recipients and system schemas (provider) or catalogs and views (central)")
def deploy() -> None:
    pass


def _deploy_options(fn: Callable) -> Callable:
    fn = click.option("--warehouse-id", default=None,
                      help="SQL warehouse for the central workspace's statements (overrides the target's)")(fn)
    fn = specs_option(fn)
    return click.option("--target", required=True, help="a target from specs/project.yaml `targets:`")(fn)


def _deployment(ctx: click.Context, target: str, specs: Path, warehouse_id: str | None):
    # Imported here: databricks.sdk takes ~2 s to import; other commands should not pay for it.
    from engine.deploy.deployment import prepare

    deployment = prepare(load_project(specs), target, warehouse_id=warehouse_id, quiet=not ctx.find_root().obj["debug"])
    chosen = deployment.target
    say(f"target {chosen.name} ({chosen.role.value}, {chosen.account_identifier}/{chosen.workspace_identifier}) "
        f"at {chosen.where}: {deployment.location}")
    return deployment


@deploy.command("plan", help="print what apply would change; change nothing")
@_deploy_options
@click.pass_context
def deploy_plan(ctx: click.Context, target: str, specs: Path, warehouse_id: str | None) -> None:
    plan = _deployment(ctx, target, specs, warehouse_id).plan
    show_table(("", "change"), ((step.line[0], step.text) for step in plan.steps), (step.line for step in plan.steps),
               styles=("bold",))
    say(f"plan: {plan.summary()}")


@deploy.command("apply", help="make the target workspace match the specs, printing each change")
@_deploy_options
@click.pass_context
def deploy_apply(ctx: click.Context, target: str, specs: Path, warehouse_id: str | None) -> None:
    from engine.deploy.deployment import apply

    deployment = _deployment(ctx, target, specs, warehouse_id)
    if not deployment.plan.changes:
        say("nothing to change")
        return
    apply(deployment, lambda change: say(change.line))  # before the call: a failure then follows its line
    say(f"applied {deployment.plan.summary(('added', 'updated', 'removed'))}")


# --- entry point ------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (never a traceback for bad input)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # no command: the help, and a usage error
        say(cli.get_help(click.Context(cli, info_name="tablesmith", **cli.context_settings)))
        return EXIT_BAD_INPUT
    ctx: click.Context | None = None
    try:
        with cli.make_context("tablesmith", args) as ctx:
            cli.invoke(ctx)
        return EXIT_OK
    except click.exceptions.Exit as exc:  # --help, --version, or a command's own exit code
        return exc.exit_code
    except click.ClickException as exc:  # a bad argument: click names it and shows the usage
        exc.show()
        return EXIT_BAD_INPUT
    except SpecError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except UserError as exc:
        print(escape.terminal(f"error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CheckFailed as exc:
        print(escape.terminal(f"check failed: {exc}"), file=sys.stderr)
        return EXIT_CHECK_FAILED
    except (KeyboardInterrupt, click.Abort):
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: the reader left, nothing to report
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become a message
        if ctx is not None and ctx.params.get("debug"):
            raise
        print(escape.terminal(f"internal error: {type(exc).__name__}: {exc}\n(run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover - `python -m engine.cli`
    sys.exit(main())
