"""Stage: runtime. The local run's public names, for the commands and callers outside the runtime.

    layout.py   where a local run keeps everything (LocalLayout, spark-defaults.conf)
    server.py   the warm local Spark Connect server: started on first use, reused, stopped
    guard.py    crash safety: the run lock, the pending journal, whole replacement
    run.py      plan, register in-process, run, collect the run's own counts
    results.py  states, timings, rows and violations; the summary; RunObserver (progress as it goes)
    quality.py  the `_quality_metrics` table

Anything that reads the local warehouse calls `local_session(LocalLayout(output))`: Derby lets one
process open the metastore, and the warm server holds it, so readers go through the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from engine.runtime.layout import LocalLayout, write_spark_conf
from engine.runtime.results import RunObserver, RunResult, TableResult, summary
from engine.runtime.run import run_local, run_pipeline
from engine.runtime.server import session, stop

__all__ = ["LocalLayout", "RunObserver", "RunResult", "TableResult", "finished_run", "local_session", "run_local", "run_pipeline", "stop", "stop_server",
           "summary", "write_spark_conf"]


def local_session(layout: LocalLayout, echo: Callable[[str], None] = print) -> Any:
    """A Spark session on the local warehouse of `layout.root`, through its warm server (started if needed)."""
    return session(layout, echo)


def stop_server(layout: LocalLayout) -> int | None:
    """Stop the folder's warm Spark server, never under a running pipeline: its pid, or None if none ran."""
    from engine.runtime.guard import RunLock

    if not layout.server_dir.exists():
        return None
    with RunLock(layout, "tablesmith stop"):
        return stop(layout)


def finished_run(output: Path) -> LocalLayout:
    """The layout of a folder a local run has written; a UserError when there is none to read."""
    from engine.errors import UserError

    layout = LocalLayout(output)
    if not layout.metastore.exists():
        raise UserError(f"no local run found in {output}: run `tablesmith run` first")
    return layout
