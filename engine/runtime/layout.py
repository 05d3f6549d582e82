"""Stage: runtime. Where a local run keeps everything, under one folder (default .tablesmith/).

Warehouse, metastore, Spark settings, the warm server's files and the run lock belong to the
folder; several pipelines (`name`) can share them, each with its own checkpoints and run state.
Also writes the `spark-pipelines` project a user can run with the upstream CLI (the run itself
registers in-process and does not read it).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from engine.atomic import write_text
from engine.runtime import hadoop_fs
from engine.spec import manifest
from engine.spec.model import Project

NOTEBOOK = Path(__file__).with_name("pipeline_notebook.py")
LOCAL_CATALOG = "spark_catalog"  # the local server's session catalog (its Hive metastore)

LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.hms.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hms.level = off
"""


@dataclass(frozen=True)
class LocalLayout:
    root: Path
    name: str = "pipeline"
    # The run reads at least LARGE_INPUT_BYTES of system-table files: its server gets the full JIT
    # (engine.runtime.run decides it from the source folder; a server started otherwise restarts).
    # None: not known (a reader of the tables): the running server is reused whichever JIT it has.
    large_input: bool | None = None

    @property
    def pipeline_dir(self) -> Path:
        return self.root / self.name

    @property
    def spec_file(self) -> Path:
        return self.pipeline_dir / "spark-pipeline.yml"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def metastore(self) -> Path:
        return self.root / "metastore_db"

    @property
    def storage(self) -> Path:
        return self.root / "storage" / self.name

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    def server_temp(self, instance: str | None = None) -> Path:
        """The server JVM's temporary files (`java.io.tmpdir`: Spark's block manager and artifacts, Hive's
        session folders, extracted native libraries), one folder per server instance. Hive never removes
        its session folders and a killed JVM removes nothing: kept here, they go with the server."""
        folder = self.server_dir / "tmp"
        return folder / instance if instance else folder

    def state_file(self, database: str) -> Path:
        """What the last successful run of this pipeline consumed (engine.runtime.refresh)."""
        return self.state_dir / f"{self.name}-{database}.json"

    def inputs_file(self) -> Path:
        """Every input file of the pipeline's last successful run (engine.runtime.refresh.Inputs)."""
        return self.state_dir / f"{self.name}.inputs.json"

    def pending_file(self, database: str) -> Path:
        """Written before a run changes tables, removed when it finished (engine.runtime.guard)."""
        return self.state_dir / f"{self.name}-{database}.pending.json"

    def table_dir(self, database: str, table: str) -> Path:
        return self.warehouse / f"{database.lower()}.db" / table.lower()

    def checkpoints(self, database: str, table: str) -> Path:
        """Every checkpoint of one streaming table (the engine's layout: catalog/database/table/flow/version)."""
        return self.storage / "_checkpoints" / LOCAL_CATALOG / database / table

    def spark_defaults(self) -> str:
        # Static settings go here, not on the command line: spark-submit drops --conf groups
        # past the tenth entry when handing them to the Python client (docs/ARCHITECTURE.md).
        return "\n".join([
            "spark.sql.catalogImplementation hive",
            f"spark.sql.warehouse.dir {self.warehouse.resolve()}",
            f"spark.hadoop.javax.jdo.option.ConnectionURL jdbc:derby:;databaseName={self.metastore.resolve()};create=true",
            # Derby skips fsync: a killed process loses nothing the OS has, only a machine crash could.
            # The JIT: see LOCAL_JVM_OPTIONS and SCALE_JVM_OPTIONS.
            f"spark.driver.extraJavaOptions -Dderby.system.home={self.root.resolve()} -Dderby.system.durability=test "
            + self.jvm_options(),
            "spark.ui.enabled false",
            "spark.ui.showConsoleProgress false",
            "spark.sql.session.timeZone UTC",
            "spark.sql.shuffle.partitions 2",  # one per core: local tables are small; fewer tasks and files
            "spark.driver.memory 2g",
            # Spark keeps 100 compiled query classes by default: a re-run recompiled most of the
            # catalog's; with room for all of them a one-more-day re-run used ~17% less server CPU.
            "spark.sql.codegen.cache.maxEntries 5000",
            "spark.sql.ui.explainMode simple",  # each query's plan text for the status listener; 'formatted' cost ~5% of a re-run
            # Memory pages of sorts, aggregations and broadcast hash maps (default heap/cores/16: 16 MB per tiny
            # broadcast): the heap left after a full GC fell from ~900 MB to ~500 MB, cold run -15% CPU.
            "spark.buffer.pageSize 1m",
            # Without Hadoop's native library the local file system forks `chmod` for each file and folder it
            # creates, `ls -ld` and `readlink` to read permissions and links (~900 processes per re-run, none now):
            # a raw file system (no .crc beside every file) setting permissions through Java (engine.runtime.hadoop_fs),
            *_file_system_settings(),
            "spark.hadoop.hive.warehouse.subdir.inherit.perms false",  # Hive read each new table's parent (`ls -ld`)
            "spark.hadoop.fs.AbstractFileSystem.file.impl org.apache.hadoop.fs.local.RawLocalFs",
            "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs false",  # no _SUCCESS file per write
            "spark.sql.truncateTable.ignorePermissionAcl.enabled true",  # TRUNCATE keeps no permission (ls + chmod)
            # checkpoint files renamed with FileSystem (FileContext resolves links with `readlink`); local renames are atomic
            "spark.sql.streaming.checkpointFileManagerClass "
            "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
            "",
        ])


    def sized_for(self, source_folders: Iterable[Path]) -> "LocalLayout":
        """This layout with `large_input` set from the size of the system-table folders a run reads."""
        return dataclasses.replace(self, large_input=input_bytes(source_folders) >= LARGE_INPUT_BYTES)

    def jvm_options(self) -> str:
        """The JIT and GC of the server: TABLESMITH_JVM_OPTIONS when set, else chosen by the input's size."""
        return os.environ.get("TABLESMITH_JVM_OPTIONS", SCALE_JVM_OPTIONS if self.large_input else LOCAL_JVM_OPTIONS)


# For the loop (small data, many queries): the JIT stops at C1. A local run is hundreds of small, short
# queries, and C2 compiling them took a core of two (cold catalog run ~40% faster measured); C1-only
# needs a larger code cache (the 48 MB default filled and killed the JVM). The parallel collector: its
# threads run only while the application is stopped, so both cores shorten each pause (a cold demo
# run's GC 5.4 s -> 2.1 s, the run ~9% faster; docs/PERFORMANCE.md). TABLESMITH_JVM_OPTIONS replaces
# the policy (e.g. "-XX:+UseSerialGC"); the server restarts on a change.
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseParallelGC"
# For millions of rows per table (docs/PERFORMANCE.md, bench_scale.py): the default tiered JIT. C1-only
# code is slow in the per-row loops (Parquet encoding, row copies: Unsafe.copyMemory's checks are not
# compiled away without C2), and the compile time C2 costs is small against them.
SCALE_JVM_OPTIONS = "-XX:ReservedCodeCacheSize=240m -XX:+UseSerialGC"
# System-table Parquet a run reads from which the server gets SCALE_JVM_OPTIONS: the demo data is
# a few MB; the billing tables of 2M usage rows read ~50 MB, of 10M ~240 MB (docs/PERFORMANCE.md).
LARGE_INPUT_BYTES = 32 * 2**20


def _file_system_settings() -> list[str]:
    file_system = hadoop_fs.local_file_system()
    settings = [f"spark.hadoop.fs.file.impl {file_system.class_name}"]
    if file_system.class_path is not None:
        settings.append(f"spark.driver.extraClassPath {file_system.class_path}")
    return settings


def input_bytes(folders: Iterable[Path]) -> int:
    """Bytes of the Parquet files under these source folders (what decides `LocalLayout.large_input`)."""
    return sum(f.stat().st_size for folder in folders if folder.is_dir() for f in folder.rglob("*.parquet") if f.is_file())


def write_spark_conf(layout: LocalLayout) -> None:
    write_text(layout.conf_dir / "spark-defaults.conf", layout.spark_defaults())
    write_text(layout.conf_dir / "log4j2.properties", LOG4J)


def pipeline_conf(project: Project, layout: LocalLayout, source_root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pipeline configuration the registration reads (the bundle sets the same keys on Databricks)."""
    return {
        "tablesmith.mode": "local",
        "tablesmith.manifest": str((layout.pipeline_dir / "manifest.json").resolve()),
        "tablesmith.source_root": str(source_root.resolve()),
        "tablesmith.schema": project.settings.schema,
        "tablesmith.schedule": "all",
        **(extra or {}),
    }


def write_project(project: Project, layout: LocalLayout, conf: Mapping[str, str], specs_dir: Path) -> None:
    """The same pipeline as a `spark-pipelines` project (spec, the generic notebook, its manifest).

    `tablesmith run` registers in-process and never reads these; they let the upstream CLI run the
    same graph: `tablesmith stop; SPARK_CONF_DIR=<out>/conf spark-pipelines run --spec <out>/<name>/spark-pipeline.yml`.
    """
    write_text(layout.pipeline_dir / "manifest.json", manifest.dumps(project, _posix_relative(specs_dir, Path.cwd())))
    spec = {
        "name": project.settings.name,
        "storage": layout.storage.resolve().as_uri(),
        "database": conf["tablesmith.schema"],
        "configuration": {"spark.sql.session.timeZone": "UTC", **conf},
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }
    write_text(layout.spec_file, json.dumps(spec, indent=2, sort_keys=True) + "\n")  # JSON is YAML
    write_text(layout.pipeline_dir / "transformations" / "tablesmith_pipeline.py", NOTEBOOK.read_text(encoding="utf-8"))


def _posix_relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
