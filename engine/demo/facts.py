"""Stage: demo data. The planted cases of a demo dataset, as plain values tests and checks can assert.

`facts(...)` rebuilds the same world the generator builds and re-simulates only the days it needs,
so the facts always describe exactly what `generate(...)` with the same arguments wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from engine.demo import catalog as C
from engine.demo.runs import runs_of_job
from engine.demo.simulate import BASE, SPEND_DROP_FACTOR, simulate_day, spend_drop
from engine.demo.usage import Correction
from engine.demo.entities import Params, World
from engine.demo.world import (
    FAILING_STREAK_RUNS, SLA_DEADLINE_UTC, SLA_MAX_DURATION_MINUTES, SLA_RISK_MAX_DURATION_MINUTES, SLOWDOWN_FACTOR,
    build_world,
)
from engine.demo.ids import from_epoch

DEFAULT_END_DATE = date(2026, 11, 1)


@dataclass(frozen=True)
class JobRef:
    workspace_id: str
    job_id: str
    name: str
    tier: str | None = None  # tags['tier'] of the job's latest version (P1, P2, P3), if any


@dataclass(frozen=True)
class DemoFacts:
    account_id: str
    start_date: date  # first day with data
    end_date: date  # exclusive: the day after the last day with data
    workspace_ids: tuple[str, ...]
    home_workspace_ids: tuple[str, ...]  # in the home region: present in regional tables
    remote_workspace_id: str  # other region: usage and workspaces_latest only
    # jobs
    failing_job: JobRef  # its last `failing_streak_length` runs FAILED (tier P2)
    failing_streak_length: int
    failing_streak_run_ids: tuple[str, ...]
    first_failure_job: JobRef  # tier P1: earlier runs succeeded, its last run ended in ERROR (a streak of 1)
    first_failure_run_id: str
    digest_failure_job: JobRef  # tier P3: earlier runs succeeded, its last run FAILED (a streak of 1)
    digest_failure_run_id: str
    last_day: date  # every other job's runs on this day (the window's last) SUCCEEDED
    slowdown_job: JobRef  # its last runs (`slow_run_ids`) take `slowdown_factor` x its usual duration
    slow_run_ids: tuple[str, ...]
    slowdown_factor: float
    sla_job: JobRef  # job tags sla_max_duration_minutes and sla_deadline_utc (end of run, UTC)
    sla_max_duration_minutes: int
    sla_deadline_utc: str  # "HH:MM"
    sla_duration_breach_run_ids: tuple[str, ...]  # ran longer than the maximum
    sla_deadline_breach_run_ids: tuple[str, ...]  # ended after the deadline of the day it started
    long_running_job: JobRef  # every run spans >= 3 hourly timeline rows
    repaired_job: JobRef
    repaired_run_id: str  # FAILED, then repaired to SUCCEEDED (two terminal rows)
    repair_date: date
    serverless_job: JobRef  # several usage rows per hour per run
    all_purpose_job: JobRef  # runs on an all-purpose cluster: its usage has no job_id
    misbilled_job: JobRef
    deleted_job_ids: tuple[str, ...]
    created_in_window_job_id: str | None
    # compute
    all_purpose_cluster_ids: tuple[str, ...]  # every workspace, including the remote one and the spike cluster
    over_provisioned_cluster_id: str  # CPU about 5-10 % in node_timeline
    deleted_cluster_id: str | None
    node_timeline_dates: tuple[date, ...]
    # cost
    spike_workspace_id: str
    spike_date: date  # that workspace's cost is about 5x normal
    spike_cluster_id: str
    price_change_sku: str
    price_change_time: datetime  # old row ends, new row starts (midnight UTC)
    old_price: float
    new_price: float
    promotional_sku: str  # pricing.effective_list.default != pricing.default
    corrections: tuple[Correction, ...]
    job_name_populated_from: date  # usage_metadata.job_name is NULL on job-compute rows before this
    # access
    denied_user_email: str
    restricted_table: str
    # names of record and spend drops (issue 14)
    deleted_billed_job: JobRef | None  # deleted after it ran: billed with its job_id, its latest version has delete_time
    # (None in worlds too small to plant deleted jobs, like `deleted_cluster_id`)
    spend_drop_workspace_id: str
    spend_drop_date: date  # that workspace's usage is `spend_drop_factor` x what it would have been
    spend_drop_factor: float
    # job health (issue 14)
    sla_risk_job: JobRef  # untagged; its only team rule is its owner's row in the catalog's team reference table (job_owner)
    sla_risk_owner_email: str  # the job's creator (creator_user_name)
    sla_risk_run_id: str  # started at 22:00 on last_day, still running (no terminal row) when the data ends
    sla_risk_run_start: datetime
    sla_risk_max_duration_minutes: int  # its row in the catalog's SLA reference table (specs/jobs/)
    data_end_time: datetime  # where the job timelines end: the latest period_end_time of any run
    task_retry_job: JobRef
    task_retry_run_id: str  # a job run that SUCCEEDED on its first attempt ...
    task_retry_task_key: str  # ... although this task of it failed once and was retried
    task_retry_task_run_ids: tuple[str, str]  # (the FAILED task run, the SUCCEEDED retry)

    def correction(self, kind: str) -> Correction:
        return next(c for c in self.corrections if c.kind == kind)


def facts(workspaces: int = 3, days: int = 45, jobs: int = 24, seed: int = 7,
          end_date: date = DEFAULT_END_DATE) -> DemoFacts:
    """The planted cases of `generate(..., workspaces, days, jobs, seed, end_date)` at any scale >= 1."""
    world = build_world(Params(workspaces, days, jobs, seed, 1.0, end_date))
    return facts_of(world)


def _ref(job) -> JobRef:
    latest = job.versions[-1].attrs
    return JobRef(job.workspace.workspace_id, job.job_id, str(latest["name"]), latest["tags"].get("tier"))


def _run_ids(world: World, job, day: date) -> list[str]:
    return [run.run_id for run in runs_of_job(world, job, day, BASE)]


def facts_of(world: World) -> DemoFacts:
    planted = world.planted
    corrections = []
    for day in (planted.same_sku_correction_day, planted.other_sku_correction_day, planted.retraction_only_day):
        corrections.extend(simulate_day(world, day, BASE).corrections)
    streak_runs = tuple(rid for day in planted.failing_streak_days for rid in _run_ids(world, planted.failing_job, day))
    slow_runs = tuple(rid for day in planted.slow_days for rid in _run_ids(world, planted.slowdown_job, day))
    overrun = tuple(_run_ids(world, planted.sla_job, planted.sla_overrun_day))
    late = tuple(_run_ids(world, planted.sla_job, planted.sla_late_start_day))
    price_rows = [p for p in world.prices if p.sku == C.SKUS[C.PRICE_CHANGE_SKU]]
    risk_job = planted.sla_risk_job
    (risk_run,) = runs_of_job(world, risk_job, planted.last_day, BASE)
    (retry_run,) = runs_of_job(world, risk_job, planted.task_retry_day, BASE)
    failed_task, retried_task = retry_run.attempts[0].tasks[:2]
    promotional = next(p.sku.name for p in world.prices if p.promotional_price is not None)
    return DemoFacts(
        account_id=C.ACCOUNT_ID,
        start_date=world.params.start_date,
        end_date=world.params.end_date,
        workspace_ids=tuple(w.workspace_id for w in world.workspaces),
        home_workspace_ids=tuple(w.workspace_id for w in world.home_workspaces),
        remote_workspace_id=next(w.workspace_id for w in world.workspaces if w.is_remote),
        failing_job=_ref(planted.failing_job),
        failing_streak_length=FAILING_STREAK_RUNS,
        failing_streak_run_ids=streak_runs,
        first_failure_job=_ref(planted.first_failure_job),
        first_failure_run_id=_run_ids(world, planted.first_failure_job, planted.last_day)[0],
        digest_failure_job=_ref(planted.digest_failure_job),
        digest_failure_run_id=_run_ids(world, planted.digest_failure_job, planted.last_day)[0],
        last_day=planted.last_day,
        slowdown_job=_ref(planted.slowdown_job),
        slow_run_ids=slow_runs,
        slowdown_factor=SLOWDOWN_FACTOR,
        sla_job=_ref(planted.sla_job),
        sla_max_duration_minutes=SLA_MAX_DURATION_MINUTES,
        sla_deadline_utc=SLA_DEADLINE_UTC,
        sla_duration_breach_run_ids=overrun,
        sla_deadline_breach_run_ids=tuple(sorted(set(overrun) | set(late))),
        long_running_job=_ref(planted.long_running_job),
        repaired_job=_ref(planted.repaired_job),
        repaired_run_id=_run_ids(world, planted.repaired_job, planted.repair_day)[0],
        repair_date=planted.repair_day,
        serverless_job=_ref(planted.serverless_job),
        all_purpose_job=_ref(planted.all_purpose_job),
        misbilled_job=_ref(planted.misbilled_job),
        deleted_job_ids=tuple(j.job_id for j in planted.deleted_jobs),
        created_in_window_job_id=planted.created_in_window_job.job_id if planted.created_in_window_job else None,
        all_purpose_cluster_ids=tuple(c.cluster_id for c in world.clusters if c.kind in ("all_purpose", "spike")),
        over_provisioned_cluster_id=planted.over_provisioned_cluster.cluster_id,
        deleted_cluster_id=planted.deleted_cluster.cluster_id if planted.deleted_cluster else None,
        node_timeline_dates=planted.node_timeline_days,
        spike_workspace_id=planted.spike_workspace.workspace_id,
        spike_date=planted.spike_day,
        spike_cluster_id=planted.spike_cluster.cluster_id,
        price_change_sku=C.SKUS[C.PRICE_CHANGE_SKU].name,
        price_change_time=planted.price_change_at,
        old_price=price_rows[0].price,
        new_price=price_rows[1].price,
        promotional_sku=promotional,
        corrections=tuple(corrections),
        job_name_populated_from=planted.job_name_since,
        denied_user_email=planted.denied_user.email,
        restricted_table=C.RESTRICTED_TABLE,
        deleted_billed_job=_deleted_billed_job(world),
        spend_drop_workspace_id=spend_drop(world)[0],
        spend_drop_date=spend_drop(world)[1],
        spend_drop_factor=SPEND_DROP_FACTOR,
        sla_risk_job=_ref(risk_job),
        sla_risk_owner_email=risk_job.creator.email,
        sla_risk_run_id=risk_run.run_id,
        sla_risk_run_start=from_epoch(risk_run.attempts[0].start),
        sla_risk_max_duration_minutes=SLA_RISK_MAX_DURATION_MINUTES,
        data_end_time=from_epoch(risk_run.attempts[0].end),
        task_retry_job=_ref(risk_job),
        task_retry_run_id=retry_run.run_id,
        task_retry_task_key=failed_task.task.key,
        task_retry_task_run_ids=(failed_task.run_id, retried_task.run_id),
    )


def _deleted_billed_job(world: World) -> JobRef | None:
    """The job deleted last in a home-region workspace: it ran (and was billed) for most of the window."""
    home = [j for j in world.planted.deleted_jobs if not j.workspace.is_remote]
    if not home:
        return None
    return _ref(max(home, key=lambda j: j.versions[-1].delete_time))
