"""Stage: runtime. Crash safety of local runs: one run at a time, and a killed run repaired by the next.

- **Run lock.** `<root>/state/run.lock`, held (flock) for the whole run, with the holder's pid: a
  second run on the same folder stops with a clear error instead of writing the same metastore and
  tables. The kernel drops the lock of a dead process, so a stale lock is simply taken over.
- **Pending journal.** Before a run changes any table it writes `<pipeline>-<schema>.pending.json`
  (the tables it will rewrite or reset, its pid and server); a successful run deletes it. The next
  run finds a journal left behind, refreshes (and resets) those tables again, and restarts the warm
  server if the dead run had started its flows there (they may still be executing).
- **Whole replacement.** Open-source Spark 4.3 pipelines refresh a materialized view with
  `TRUNCATE TABLE` then an append. On a partitioned Parquet table, TRUNCATE deletes only the
  partitions the metastore lists, so files a killed run had committed to a partition it had not yet
  registered survive and are read again with the re-run's rows (the duplicated newest day). The
  run therefore deletes the whole folder of every partitioned materialized view it refreshes before
  the engine's TRUNCATE (which recreates the listed partitions empty) and append; the table stays
  registered, since dropping it costs the metastore a delete per partition and the engine a create
  and an add per partition again. A view whose spec changed is dropped (the engine refuses to change
  an existing table's partitioning) and created afresh. Resetting a streaming table (full refresh,
  changed spec) drops it and deletes its checkpoints: the engine's own full refresh TRUNCATEs, which
  on a partitioned streaming table deletes nothing and leaves the file sink's log
  (`_spark_metadata`) claiming the new batches are already written.
- **Streaming tables** are exactly-once without help: the file sink writes files, then records them
  in `_spark_metadata`, then commits the checkpoint; the table is read through that log, so files of
  a batch killed before its log entry are never read, and the re-run writes the batch again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.atomic import write_text
from engine.runtime.layout import LocalLayout
from engine.runtime.queries import quote


class RunLock:
    """Exclusive use of an output folder by one run (or by `tablesmith stop`)."""

    def __init__(self, layout: LocalLayout, purpose: str = "tablesmith run"):
        self.path = layout.state_dir / "run.lock"
        self.purpose = purpose
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        from engine.errors import UserError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise UserError(f"another run is using {self.path.parent.parent} ({holder}); wait for it to finish, "
                            f"or use another --output") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.purpose}, pid {os.getpid()}, since {time.strftime('%H:%M:%S')}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *_: Any) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class Pending:
    """What an unfinished run was changing."""

    run_id: str
    pid: int
    server_pid: int
    refresh: tuple[str, ...] | None  # None: every table
    reset: tuple[str, ...] = field(default_factory=tuple)  # streaming tables rebuilt from scratch
    flows_started: bool = False  # the server was running its flows (False again once a failed run ended)

    @classmethod
    def load(cls, path: Path) -> "Pending | None":
        try:
            data = json.loads(path.read_text())
            refresh = data["refresh"]
            return cls(str(data["run_id"]), int(data["pid"]), int(data["server_pid"]),
                       None if refresh is None else tuple(refresh), tuple(data.get("reset", ())), bool(data["flows_started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(asdict(self), indent=1))

    @property
    def orphaned(self) -> bool:
        """The run's process died while the server executed its flows (the server may still be)."""
        if not self.flows_started:
            return False
        try:
            os.kill(self.pid, 0)
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False


def stop_orphaned_flows(layout: LocalLayout, pending: "Pending | None", echo: Callable[[str], None]) -> bool:
    """A run killed while its flows ran leaves them running in the server, which would go on writing
    under the next run: stop that server (the next command starts a fresh one). True if stopped."""
    from engine.runtime import server

    if pending is None or not pending.orphaned:
        return False
    running = server.running(layout)
    if running is None or running.pid != pending.server_pid:
        return False  # that server died with the run
    echo("the last run was killed while the server ran its flows: restarting the local Spark server")
    server.stop(layout)
    return True


def prepare(spark: Any, layout: LocalLayout, schema: str, rebuild: Iterable[str], drop: Iterable[str],
            reset: Iterable[str], partitioned: Iterable[str] = ()) -> None:
    """Make the refresh replace whole: drop the materialized views it rebuilds that are in `drop`
    (changed specs) and the streaming tables it resets (with their checkpoints), which the engine
    creates afresh; delete the folder of the `partitioned` views it rebuilds (the engine's TRUNCATE
    deletes only the partitions the metastore lists). An unpartitioned table needs nothing: TRUNCATE
    deletes its whole folder. A folder with no table (left by a killed run before it registered the
    table) is removed: the engine would refuse the location."""
    registered = {row.tableName.lower() for row in spark.sql(f"SHOW TABLES IN {quote(schema)}").collect()}
    rebuild = set(rebuild)
    dropped = (set(drop) & rebuild) | set(reset)
    emptied = set(partitioned) & rebuild
    for name in sorted(dropped & registered):
        spark.sql(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(name)}")
    for name in sorted(rebuild | dropped):
        folder = layout.table_dir(schema, name)
        if (name.lower() not in registered or name in dropped or name in emptied) and folder.exists():
            shutil.rmtree(folder)
    for name in sorted(set(reset)):
        shutil.rmtree(layout.checkpoints(schema, name), ignore_errors=True)
