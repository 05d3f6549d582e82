"""Stage: runtime. Which tables a local re-run must refresh (open-source pipelines recompute every
materialized view on each run, so choosing the refresh set is the lever that makes re-runs cheap).

A table is refreshed when a system table it reads (directly or upstream) gained or changed files,
when its spec changed, or when it was never built; `schedule: daily` tables at most once per UTC
day, as the daily job does on Databricks. A streaming table whose spec changed is reset (rebuilt
from all its input), since an incremental run would apply the new spec to new rows only.
`--select t` refreshes t and everything downstream of it. Tables an unfinished run was changing
(engine.runtime.guard) are refreshed again whatever else changed. Pure functions; no Spark here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine import atomic
from engine.spec.model import DatasetKind, Project, Schedule, Table


@dataclass(frozen=True)
class RunState:
    """What the last successful run consumed."""

    sources: Mapping[str, str] = field(default_factory=dict)  # system table -> files fingerprint
    specs: Mapping[str, str] = field(default_factory=dict)  # table -> spec fingerprint
    daily_built_on: str = ""  # UTC date the daily tables were last refreshed
    source_root: str = ""  # the folder the system tables were read from

    @classmethod
    def load(cls, path: Path) -> "RunState | None":
        try:
            data = json.loads(path.read_text())
            return cls(dict(data["sources"]), dict(data["specs"]), data.get("daily_built_on", ""), data.get("source_root", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no usable state: refresh everything

    def save(self, path: Path) -> None:
        atomic.write_text(path, json.dumps({"sources": dict(self.sources), "specs": dict(self.specs),
                                            "daily_built_on": self.daily_built_on, "source_root": self.source_root},
                                           indent=1, sort_keys=True))


@dataclass(frozen=True)
class Inputs:
    """Every file the last successful run depended on (specs and system table folders), by size and
    mtime: when none changed, a re-run has nothing to do and can say so without loading the specs."""

    specs_dir: str
    specs: str  # files fingerprint of the specs folder
    source_root: str
    extra_conf: Mapping[str, str]
    schema: str
    folders: Mapping[str, str]  # every system table folder the specs name -> files fingerprint

    @classmethod
    def load(cls, path: Path) -> "Inputs | None":
        try:
            data = json.loads(path.read_text())
            return cls(data["specs_dir"], data["specs"], data["source_root"], dict(data["extra_conf"]), data["schema"],
                       dict(data["folders"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        atomic.write_text(path, json.dumps({"specs_dir": self.specs_dir, "specs": self.specs, "source_root": self.source_root,
                                            "extra_conf": dict(self.extra_conf), "schema": self.schema,
                                            "folders": dict(self.folders)}, indent=1, sort_keys=True))

    def unchanged(self, specs_dir: Path, source: Path | None, extra_conf: Mapping[str, str]) -> bool:
        """`source` None: the project's default folder, whichever the last run read."""
        return (self.specs_dir == str(specs_dir.resolve())
                and (source is None or str(source.resolve()) == self.source_root)
                and dict(extra_conf) == dict(self.extra_conf)
                and files_fingerprint(specs_dir) == self.specs
                and all(files_fingerprint(Path(folder)) == fingerprint for folder, fingerprint in self.folders.items()))


def files_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def spec_fingerprint(table: Table) -> str:
    """Everything that shapes the table's content; source locations excluded."""
    return hashlib.sha256(json.dumps(_plain(table), sort_keys=True, default=str).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.name not in ("location", "description")}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RefreshPlan:
    tables: tuple[str, ...] | None  # None: refresh everything
    reasons: Mapping[str, str] = field(default_factory=dict)
    reset: tuple[str, ...] = ()  # streaming tables rebuilt from scratch (checkpoints deleted)

    @property
    def nothing(self) -> bool:
        return self.tables == ()

    def refreshes(self, name: str) -> bool:
        return self.tables is None or name in self.tables


def downstream_closure(project: Project, names: Iterable[str]) -> list[str]:
    """`names` and every table that reads them, directly or not, in run order."""
    wanted = set(names)
    for table in project.tables:  # topological order
        if any(u in wanted for u in table.upstream_tables):
            wanted.add(table.name)
    return [t.name for t in project.tables if t.name in wanted]


def plan_run(
    project: Project,
    active: Iterable[str],
    previous: RunState | None,
    current: RunState,
    today: str,
    *,
    select: Iterable[str] = (),
    full_refresh: bool = False,
    unfinished: tuple[tuple[str, ...] | None, tuple[str, ...]] | None = None,
) -> RefreshPlan:
    """The plan of one run: `--full-refresh`, `--select`, or what changed since `previous`;
    `unfinished`: (refresh, reset) of a run that did not finish, done again."""
    active = list(active)
    streaming = {t.name for t in project.tables if t.dataset_kind is DatasetKind.STREAMING_TABLE and t.name in active}
    if full_refresh:
        return RefreshPlan(None, {"*": "full refresh"}, tuple(sorted(streaming)))
    if previous is not None and previous.source_root and previous.source_root != current.source_root:
        # Streaming checkpoints remember files by path: another folder would be read again in full.
        return RefreshPlan(None, {"*": f"source folder changed (was {previous.source_root})"}, tuple(sorted(streaming)))
    select = list(select)
    if select:
        chosen = downstream_closure(project, select)
        plan = RefreshPlan(_selectable(project, chosen, active), {n: "selected" if n in select else "downstream of a selected table" for n in chosen})
    else:
        plan = plan_refresh(project, active, previous, current, today)
    if unfinished is None:
        return plan
    again, again_reset = unfinished
    if again is None or plan.tables is None:
        tables = None
    else:
        redo = downstream_closure(project, [*again, *again_reset])
        tables = _selectable(project, list(plan.tables) + redo, active)
        plan = RefreshPlan(tables, {**{n: "unfinished last run" for n in redo}, **plan.reasons}, plan.reset)
    reset = tuple(sorted((set(plan.reset) | set(again_reset)) & streaming))
    reasons = dict(plan.reasons) if tables is not None else {"*": "the last run did not finish"}
    return RefreshPlan(tables, reasons, reset)


def _selectable(project: Project, names: Iterable[str], active: Iterable[str]) -> tuple[str, ...]:
    wanted, active = set(names), set(active)
    return tuple(t.name for t in project.tables
                 if t.name in wanted and t.name in active and t.dataset_kind is not DatasetKind.TEMPORARY_VIEW)


def plan_refresh(
    project: Project,
    active: Iterable[str],
    previous: RunState | None,
    current: RunState,
    today: str,
) -> RefreshPlan:
    active = set(active)
    if previous is None:
        return RefreshPlan(None, {"*": "first run"})
    reasons: dict[str, str] = {}
    for table in project.tables:  # topological order: upstream reasons are known first
        if table.name not in active:
            continue
        changed = [s for s in table.system_sources if previous.sources.get(s) != current.sources.get(s)]
        upstream = [u for u in table.upstream_tables if u in reasons]
        if table.name not in previous.specs:
            reasons[table.name] = "new table"
        elif previous.specs[table.name] != current.specs.get(table.name):
            reasons[table.name] = "spec changed"
        elif changed:
            reasons[table.name] = f"new data in {changed[0]}"
        elif upstream:
            reasons[table.name] = f"upstream {upstream[0]} refreshed"
    for table in project.tables:
        if table.name in reasons and table.schedule is Schedule.DAILY and previous.daily_built_on == today \
                and reasons[table.name] not in ("new table", "spec changed"):
            del reasons[table.name]  # built today already: the daily job runs once a day
    reset = tuple(t.name for t in project.tables if reasons.get(t.name) == "spec changed"
                  and t.dataset_kind is DatasetKind.STREAMING_TABLE)
    return RefreshPlan(_selectable(project, reasons, active), reasons, reset)
