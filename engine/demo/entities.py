"""Stage: demo data. The entities of the simulated account, as frozen dataclasses (data only).

`world.build_world` creates them; the simulation and the table writers read them. SCD2 entities
carry their change history as a tuple of `Version`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Mapping

from engine.demo import catalog as C
from engine.errors import UserError


@dataclass(frozen=True)
class Params:
    workspaces: int
    days: int
    jobs: int
    seed: int
    scale: float
    end_date: date  # exclusive: the window is [end_date - days, end_date)

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days)

    def window(self) -> list[date]:
        return [self.start_date + timedelta(days=i) for i in range(self.days)]

    def day_at(self, fraction: float) -> date:
        """The day a given fraction of the way through the window."""
        return self.start_date + timedelta(days=min(self.days - 1, int(self.days * fraction)))

    def validate(self) -> None:
        if self.workspaces < 2:
            raise UserError("workspaces must be >= 2 (one of them is in another region)")
        if self.days < 14:
            raise UserError("days must be >= 14 so the planted cases fit in the window")
        if self.jobs < 12:
            raise UserError("jobs must be >= 12 so every planted job role gets a job (11 roles, 1 remote job)")
        if self.scale <= 0:
            raise UserError("scale must be > 0")


@dataclass(frozen=True)
class Workspace:
    index: int
    workspace_id: str
    name: str
    url: str
    create_time: datetime
    is_remote: bool  # in another cloud region: global tables only (billing.usage, workspaces_latest)
    people: tuple[C.Person, ...]


@dataclass(frozen=True)
class ClusterSpec:
    driver_node: str
    worker_node: str
    workers: int  # fixed size, or the typical size of an autoscaling cluster
    photon: bool
    dbr_version: str
    autoscale: tuple[int, int] | None = None

    @property
    def dbu_per_hour(self) -> float:
        return C.NODE_TYPE[self.driver_node].dbu_per_hour + self.workers * C.NODE_TYPE[self.worker_node].dbu_per_hour


@dataclass(frozen=True)
class Version:
    """One SCD2 row's worth of state; `attrs` holds the entity-specific fields."""

    change_time: datetime
    attrs: Mapping[str, object]
    delete_time: datetime | None = None


def version_at(versions: tuple[Version, ...], when: datetime) -> Version | None:
    current = None
    for version in versions:
        if version.change_time <= when:
            current = version
    return current


def alive_at(versions: tuple[Version, ...], when: datetime) -> bool:
    version = version_at(versions, when)
    return version is not None and version.delete_time is None


@dataclass(frozen=True)
class TaskDef:
    key: str
    depends_on: tuple[str, ...]
    level: int  # tasks of one level run in parallel, levels run in order
    created: datetime
    deleted: datetime | None = None
    timeout_seconds: int = 3600


@dataclass(frozen=True)
class Job:
    workspace: Workspace
    job_id: str
    index: int
    role: str | None  # a planted case (see PlantedCases), or None
    compute: str  # "job_cluster" | "all_purpose" | "serverless"
    cluster_spec: ClusterSpec | None
    all_purpose_cluster_id: str | None
    run_hours: tuple[int, ...]
    run_minute: int
    typical_minutes: float
    failure_rate: float
    run_as: str  # user email or service principal application id
    creator: C.Person
    versions: tuple[Version, ...]  # attrs: name, tags, timeout_seconds, paused, description
    tasks: tuple[TaskDef, ...]
    run_type: str = "JOB_RUN"
    trigger_type: str = "CRON"
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def create_time(self) -> datetime:
        return self.versions[0].change_time

    def name_at(self, when: datetime) -> str:
        version = version_at(self.versions, when) or self.versions[0]
        return str(version.attrs["name"])

    def tags_at(self, when: datetime) -> Mapping[str, str]:
        version = version_at(self.versions, when) or self.versions[0]
        return version.attrs["tags"]  # type: ignore[return-value]

    def tasks_at(self, when: datetime) -> tuple[TaskDef, ...]:
        return tuple(t for t in self.tasks if t.created <= when and (t.deleted is None or when < t.deleted))


@dataclass(frozen=True)
class Cluster:
    workspace: Workspace
    cluster_id: str
    kind: str  # "all_purpose" | "pipeline" | "job" | "spike"
    source: str  # cluster_source: UI | API | JOB | PIPELINE
    owner: str
    versions: tuple[Version, ...]  # attrs: name, spec, auto_termination_minutes, tags
    index: int = 0
    over_provisioned: bool = False

    def spec_at(self, when: datetime) -> ClusterSpec:
        version = version_at(self.versions, when) or self.versions[0]
        return version.attrs["spec"]  # type: ignore[return-value]

    def tags_at(self, when: datetime) -> Mapping[str, str]:
        version = version_at(self.versions, when) or self.versions[0]
        return version.attrs["tags"]  # type: ignore[return-value]


@dataclass(frozen=True)
class Warehouse:
    workspace: Workspace
    warehouse_id: str
    index: int
    owner: str
    versions: tuple[Version, ...]  # attrs: name, type, size, min_clusters, max_clusters, auto_stop_minutes, tags

    def attrs_at(self, when: datetime) -> Mapping[str, object]:
        return (version_at(self.versions, when) or self.versions[0]).attrs


@dataclass(frozen=True)
class Pipeline:
    workspace: Workspace
    pipeline_id: str
    index: int
    cluster: Cluster
    run_as: str
    created_by: str
    continuous: bool
    edition: str  # CORE | ADVANCED
    versions: tuple[Version, ...]  # attrs: name, tags, development


@dataclass(frozen=True)
class ServedEntity:
    workspace: Workspace
    endpoint_id: str
    endpoint_name: str
    served_entity_id: str
    entity_type: str  # CUSTOM_MODEL | FOUNDATION_MODEL | EXTERNAL_MODEL
    billing: str | None  # "dbu" hourly, "token" per token, or None (external provider bills)
    dbu_per_hour: float
    tracked: bool  # usage tracking on: rows in serving.endpoint_usage
    created_by: str
    versions: tuple[Version, ...]  # attrs: served_entity_name, entity_name, entity_version, config_version, ...


@dataclass(frozen=True)
class VectorSearchEndpoint:
    workspace: Workspace
    endpoint_id: str
    endpoint_name: str
    dbu_per_hour: float


@dataclass(frozen=True)
class Notebook:
    workspace: Workspace
    notebook_id: str
    path: str
    user: C.Person
    index: int
    budget_policy_id: str | None  # serverless usage carries the policy's tags when set


@dataclass(frozen=True)
class Experiment:
    workspace: Workspace
    experiment_id: str
    name: str
    owner: C.Person
    create_time: datetime
    delete_time: datetime | None


@dataclass(frozen=True)
class PriceRow:
    sku: C.Sku
    start: datetime
    end: datetime | None
    price: float
    promotional_price: float | None


@dataclass(frozen=True)
class PlantedCases:
    """The planted cases (the traps a test looks for: failures, anomalies, SLA misses), chosen once per world."""

    failing_job: Job
    long_running_job: Job
    repaired_job: Job
    serverless_job: Job
    all_purpose_job: Job
    misbilled_job: Job  # its planted correction restates the sku (jobs -> jobs photon)
    deleted_jobs: tuple[Job, ...]
    created_in_window_job: Job | None
    failing_streak_days: tuple[date, ...]
    first_failure_job: Job  # tier P1: only its run on `last_day` fails (a streak of 1)
    digest_failure_job: Job  # tier P3: only its run on `last_day` fails (a streak of 1)
    last_day: date  # jobs other than the failing, first_failure and digest_failure jobs succeed on it
    slowdown_job: Job  # its runs on `slow_days` take SLOWDOWN_FACTOR x its usual duration
    slow_days: tuple[date, ...]
    sla_job: Job  # tags sla_max_duration_minutes / sla_deadline_utc; misses them on two known days
    sla_overrun_day: date  # the run takes too long (and so also ends after the deadline)
    sla_late_start_day: date  # the run starts late and ends after the deadline (duration normal)
    repair_day: date
    over_provisioned_cluster: Cluster
    deleted_cluster: Cluster | None
    spike_workspace: Workspace
    spike_day: date
    spike_cluster: Cluster
    price_change_at: datetime
    same_sku_correction_day: date
    other_sku_correction_day: date
    retraction_only_day: date
    job_name_since: date
    denied_user: C.Person
    node_timeline_days: tuple[date, ...]
    # Job health (issue 14): untagged, team by its owner in the catalog's team reference rows; still
    # running when the data ends (past 80 % of its SLA reference duration); on `task_retry_day` its first task fails once and is retried.
    sla_risk_job: Job | None = None
    task_retry_day: date | None = None


@dataclass(frozen=True)
class World:
    params: Params
    workspaces: tuple[Workspace, ...]
    service_principals: tuple[str, ...]
    jobs: tuple[Job, ...]
    clusters: tuple[Cluster, ...]  # all-purpose, pipeline and spike clusters (job clusters come per run)
    warehouses: tuple[Warehouse, ...]
    pipelines: tuple[Pipeline, ...]
    served_entities: tuple[ServedEntity, ...]
    vector_search: tuple[VectorSearchEndpoint, ...]
    notebooks: tuple[Notebook, ...]
    experiments: tuple[Experiment, ...]
    prices: tuple[PriceRow, ...]
    planted: PlantedCases

    @property
    def home_workspaces(self) -> tuple[Workspace, ...]:
        return tuple(w for w in self.workspaces if not w.is_remote)

    def price(self, sku: C.Sku, when: datetime) -> float:
        for row in self.prices:
            if row.sku == sku and row.start <= when and (row.end is None or when < row.end):
                return row.promotional_price if row.promotional_price is not None else row.price
        raise LookupError(f"no list price for {sku.name} at {when}")
