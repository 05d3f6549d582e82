"""Stage: demo data. Job runs: attempts (repairs), tasks, hourly timeline slices and their usage.

Semantics follow reference §2.5/§2.6: runs longer than an hour are cut into contiguous slices at
UTC clock-hour boundaries; only the last slice of an attempt carries result_state and
termination_code; a repair adds another attempt (more slices, another terminal row) to the same
run_id. Every run finishes before midnight, so one day's output only has that day's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from engine.demo import catalog as C
from engine.demo.ids import DAY, HOUR, UTC, cluster_id, day_start, from_epoch, numeric_id, rng_for
from engine.demo.usage import UsageBuffer, UsageStream, tag_items
from engine.demo.entities import Cluster, Job, TaskDef, Version, World, alive_at
from engine.demo.world import (
    LAKEFLOW_FULL_COLUMNS_SINCE, LAST_DAY_FAILURE_ROLES, SLA_LATE_START_MINUTES, SLA_OVERRUN_FACTOR, SLOWDOWN_FACTOR,
    TASK_RETRY_INTERVAL_SECONDS,
)

# termination_code and job_parameters are NULL on rows before late August 2024 (reference §5.7).
LAKEFLOW_TERMINATION_SINCE = datetime(2024, 8, 26, tzinfo=UTC)

TERMINATION_CODES = {
    "SUCCEEDED": ("SUCCESS",),
    "FAILED": ("RUN_EXECUTION_ERROR", "DRIVER_ERROR", "LIBRARY_INSTALLATION_ERROR", "STORAGE_ACCESS_ERROR"),
    "ERROR": ("CLUSTER_ERROR", "CLOUD_FAILURE", "INTERNAL_ERROR"),
    "TIMED_OUT": ("RUN_EXECUTION_ERROR",),
    "CANCELLED": ("USER_CANCELED",),
    "SKIPPED": ("SKIPPED",),
}
TERMINATION_TYPES = {
    "SUCCESS": "SUCCESS", "SKIPPED": "SUCCESS", "CLUSTER_ERROR": "CLOUD_FAILURE", "CLOUD_FAILURE": "CLOUD_FAILURE",
    "INTERNAL_ERROR": "INTERNAL_ERROR",
}  # everything else: CLIENT_ERROR
UNSUCCESSFUL = ("FAILED", "ERROR", "TIMED_OUT", "CANCELLED", "SKIPPED")
REPAIRABLE = ("FAILED", "ERROR", "TIMED_OUT")
LATEST_END_OF_DAY = DAY - 10 * 60  # runs end by 23:50 UTC
SETUP_SECONDS = {"job_cluster": (150, 420), "all_purpose": (3, 15), "serverless": (15, 60)}  # cluster start dominates


@dataclass(frozen=True)
class TaskAttempt:
    task: TaskDef
    run_id: str
    start: int
    end: int
    state: str | None  # None: still running when the data ends
    termination_code: str | None


@dataclass(frozen=True)
class Attempt:
    number: int
    start: int  # epoch seconds
    end: int  # for a run still in progress: where the data ends
    state: str | None  # None: still running when the data ends (no terminal row yet)
    termination_code: str | None
    job_cluster: Cluster | None  # a new job cluster per attempt (classic job compute)
    cluster_id: str | None  # the job cluster or the all-purpose cluster; None on serverless
    queue_seconds: int
    setup_seconds: int
    cleanup_seconds: int
    tasks: tuple[TaskAttempt, ...]


@dataclass(frozen=True)
class Run:
    job: Job
    run_id: str
    attempts: tuple[Attempt, ...]


def hourly_slices(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut at clock hours; a zero-length run is one zero-length slice."""
    slices, cursor = [], start
    while True:
        boundary = cursor - cursor % HOUR + HOUR
        if end <= boundary:
            slices.append((cursor, end))
            return slices
        slices.append((cursor, boundary))
        cursor = boundary


def runs_of_job(world: World, job: Job, day: date, namespace: str) -> list[Run]:
    runs = []
    for slot, hour in enumerate(job.run_hours):
        rng = rng_for(world.params.seed, namespace, "run", job.index, day, slot)
        start = day_start(day) + hour * HOUR + job.run_minute * 60 + rng.randrange(0, 90)
        if job.role == "sla_miss" and day == world.planted.sla_late_start_day:
            start += SLA_LATE_START_MINUTES * 60  # planted: starts late, so it ends after its deadline
        when = from_epoch(start)
        if when < job.create_time or not alive_at(job.versions, when):
            continue
        tasks = job.tasks_at(when)
        if tasks:
            run_id = numeric_id(16, world.params.seed, namespace, "run", job.workspace.index, job.index, day, slot)
            runs.append(_run(world, job, day, run_id, start, tasks, rng, namespace))
    return runs


def _planned_states(world: World, job: Job, day: date, rng) -> tuple[str | None, bool]:
    """(state of the first attempt, None while it still runs; whether it gets repaired)."""
    planted = world.planted
    if job.role == "sla_at_risk" and day == planted.last_day:
        return None, False  # planted: still running when the data ends
    if job.role == "failing" and day >= planted.failing_streak_days[0]:
        return "FAILED", False  # the trailing failure streak (continues on appended days)
    if job.role in ("first_failure", "digest_failure") and day == planted.last_day:
        return ("ERROR" if job.role == "first_failure" else "FAILED"), False  # a streak of one
    if job.role == "repaired" and day == planted.repair_day:
        return "FAILED", True
    if day == planted.last_day and job.role not in LAST_DAY_FAILURE_ROLES:
        return "SUCCEEDED", False  # only the planted failures are current at the end of the window
    if rng.random() >= job.failure_rate:
        return "SUCCEEDED", False
    state = rng.choices(UNSUCCESSFUL, (55, 15, 10, 12, 8))[0]
    return state, state in REPAIRABLE and rng.random() < 0.35


def _run(world: World, job: Job, day: date, run_id: str, start: int, tasks: tuple[TaskDef, ...], rng,
         namespace: str) -> Run:
    day_end = day_start(day) + LATEST_END_OF_DAY
    planted = world.planted
    if job.role == "long_running":
        duration = rng.uniform(150, 200) * 60
    elif job.role == "sla_miss":  # a narrow band well inside its SLA, except on the planted overrun day
        duration = job.typical_minutes * 60 * rng.uniform(0.85, 1.15)
        if day == planted.sla_overrun_day:
            duration = job.typical_minutes * 60 * SLA_OVERRUN_FACTOR
    else:
        duration = job.typical_minutes * 60 * rng.lognormvariate(0, 0.2)
    if job.role == "slowdown" and day in planted.slow_days:
        duration = job.typical_minutes * 60 * SLOWDOWN_FACTOR  # planted: the latest runs are much slower
    duration = int(max(120, min(duration, day_end - start)))
    state, repaired = _planned_states(world, job, day, rng)
    levels = sorted({t.level for t in tasks})
    if state == "SKIPPED":
        first = _attempt(world, job, run_id, 1, start, start, state, (), rng, namespace)
        return Run(job, run_id, (first,))
    if state is None:  # its slices up to the end of the data; the tasks of its last level still run
        running = _attempt(world, job, run_id, 1, start, day_end, None, _level_plan(tasks, levels, levels[-1], None),
                           rng, namespace)
        return Run(job, run_id, (running,))
    fail_level = levels[-1] if job.role in ("failing", "repaired") else rng.choice(levels)
    if state == "SUCCEEDED":
        first_end, ran_levels = start + duration, levels
    else:
        share = 1.0 if state == "TIMED_OUT" else rng.uniform(0.3, 0.9)
        first_end = start + max(60, int(duration * share))
        ran_levels = [lvl for lvl in levels if lvl <= fail_level]
    first = _attempt(world, job, run_id, 1, start, first_end, state,
                     _level_plan(tasks, ran_levels, fail_level if state != "SUCCEEDED" else None, state), rng, namespace)
    if job.role == "sla_at_risk" and day == planted.task_retry_day and state == "SUCCEEDED":
        first = _with_task_retry(world, first, run_id, namespace)
    attempts = [first]
    repair_start = first_end + rng.randrange(600, 2400)
    remaining = [lvl for lvl in levels if lvl >= fail_level]
    repair_duration = int(max(300, duration * len(remaining) / len(levels) * rng.lognormvariate(0, 0.15)))
    if repaired and repair_start + repair_duration <= day_end:
        repair_state = "SUCCEEDED" if job.role == "repaired" or rng.random() < 0.85 else "FAILED"
        failing = None if repair_state == "SUCCEEDED" else remaining[-1]
        attempts.append(_attempt(world, job, run_id, 2, repair_start, repair_start + repair_duration, repair_state,
                                 _level_plan(tasks, remaining, failing, repair_state), rng, namespace))
    return Run(job, run_id, tuple(attempts))


def _level_plan(tasks, levels, failing_level, state) -> tuple[tuple[TaskDef, str], ...]:
    """(task, final state) for the tasks an attempt runs, in level order."""
    task_states = []
    for level in levels:
        for task in sorted((t for t in tasks if t.level == level), key=lambda t: t.key):
            task_states.append((task, state if level == failing_level else "SUCCEEDED"))
    return tuple(task_states)


def _with_task_retry(world: World, attempt: Attempt, run_id: str, namespace: str) -> Attempt:
    """Planted: the attempt's first task fails once and its retry (a new task run of the same job run
    and task_key) succeeds, so the job run itself succeeds on its first attempt."""
    task = attempt.tasks[0]
    failed_end = task.start + (task.end - task.start) * 2 // 5
    failed = replace(task, end=failed_end, state="FAILED", termination_code="RUN_EXECUTION_ERROR")
    retried = replace(task, run_id=numeric_id(16, world.params.seed, namespace, "task-retry", run_id, task.task.key),
                      start=failed_end + TASK_RETRY_INTERVAL_SECONDS)
    return replace(attempt, tasks=(failed, retried) + attempt.tasks[1:])


def _attempt(world, job, run_id, number, start, end, state, task_plan, rng, namespace) -> Attempt:
    seed = world.params.seed
    code = rng.choice(TERMINATION_CODES[state]) if state is not None else None
    setup = rng.randrange(*SETUP_SECONDS[job.compute])
    queue = rng.randrange(30, 300) if rng.random() < 0.05 else 0
    cleanup = rng.randrange(10, 60) if state is not None else 0  # a running attempt has not reached cleanup
    if end - start < setup + queue + cleanup + 60:
        setup, queue, cleanup = 0, 0, 0
    job_cluster = None
    cluster = job.all_purpose_cluster_id if state != "SKIPPED" else None
    if job.compute == "job_cluster" and state != "SKIPPED":
        job_cluster = _job_cluster(world, job, run_id, number, start, namespace)
        cluster = job_cluster.cluster_id
    tasks = []
    if task_plan:
        levels = sorted({task.level for task, _ in task_plan})
        begin, finish = start + queue + setup, end - cleanup
        bounds = [begin + (finish - begin) * i // len(levels) for i in range(len(levels) + 1)]
        for task, task_state in task_plan:
            i = levels.index(task.level)
            task_code = code if task_state == state else "SUCCESS"
            tasks.append(TaskAttempt(task, numeric_id(16, seed, namespace, "task", run_id, number, task.key),
                                     bounds[i], bounds[i + 1], task_state, task_code))
    return Attempt(number, start, end, state, code, job_cluster, cluster, queue, setup, cleanup, tuple(tasks))


def _job_cluster(world: World, job: Job, run_id: str, attempt: int, start: int, namespace: str) -> Cluster:
    created = from_epoch(start)
    attrs = {"name": f"job-{job.job_id}-run-{run_id}", "spec": job.cluster_spec, "auto_termination_minutes": None,
             "tags": dict(job.tags_at(created))}
    return Cluster(
        workspace=job.workspace,
        cluster_id=cluster_id(created, world.params.seed, namespace, "job-cluster", run_id, attempt),
        kind="job",
        source="JOB",
        owner=job.run_as,
        versions=(Version(created, attrs),),
    )


# --- rows ---------------------------------------------------------------------------------------

def _compute_struct(job: Job, cluster: str | None) -> list[dict]:
    if job.compute == "serverless":
        return [{"type": "SERVERLESS", "cluster_id": None, "warehouse_id": None}]
    return [{"type": "CLASSIC", "cluster_id": cluster, "warehouse_id": None}]


def timeline_slices(start: int, end: int, state: str | None) -> list[tuple[int, int, bool]]:
    """(slice start, slice end, is the terminal row): only the last hourly row of a run or task carries its
    result, and one still running (state None) has no terminal row yet."""
    slices = hourly_slices(start, end)
    return [(s, e, i == len(slices) - 1 and state is not None) for i, (s, e) in enumerate(slices)]


def _eras(began: datetime) -> tuple[bool, bool]:
    """(all columns populated, termination columns populated) for a row that began at `began`."""
    return began >= LAKEFLOW_FULL_COLUMNS_SINCE, began >= LAKEFLOW_TERMINATION_SINCE


def timeline_rows(run: Run) -> list[dict]:
    """system.lakeflow.job_run_timeline rows of one run (all attempts)."""
    job, rows = run.job, []
    for attempt in run.attempts:
        began = from_epoch(attempt.start)
        full, termination_era = _eras(began)
        for slice_start, slice_end, last in timeline_slices(attempt.start, attempt.end, attempt.state):
            rows.append({
                "account_id": C.ACCOUNT_ID, "workspace_id": job.workspace.workspace_id, "job_id": job.job_id,
                "run_id": run.run_id, "period_start_time": from_epoch(slice_start), "period_end_time": from_epoch(slice_end),
                "trigger_type": "ONETIME" if job.run_type == "SUBMIT_RUN" else job.trigger_type,
                "result_state": attempt.state if last else None,
                "run_type": job.run_type, "run_name": job.name_at(began),
                "compute_ids": ([attempt.cluster_id] if attempt.cluster_id else []) if termination_era else None,
                "termination_code": attempt.termination_code if last and termination_era else None,
                "job_parameters": {k: {"value": v} for k, v in job.parameters.items()} if termination_era else None,
                "source_task_run_id": None, "root_task_run_id": None,
                "compute": _compute_struct(job, attempt.cluster_id) if full and attempt.state != "SKIPPED" else None,
                "termination_type": TERMINATION_TYPES.get(attempt.termination_code, "CLIENT_ERROR") if last and full else None,
                "setup_duration_seconds": attempt.setup_seconds if last and full else None,
                "queue_duration_seconds": attempt.queue_seconds if last and full else None,
                "run_duration_seconds": attempt.end - attempt.start if last and full else None,
                "cleanup_duration_seconds": attempt.cleanup_seconds if last and full else None,
                "execution_duration_seconds": (
                    attempt.end - attempt.start - attempt.setup_seconds - attempt.queue_seconds - attempt.cleanup_seconds
                ) if last and full else None,
            })
    return rows


def task_rows(run: Run) -> list[dict]:
    """system.lakeflow.job_task_run_timeline rows of one run."""
    job, rows = run.job, []
    for attempt in run.attempts:
        for task in attempt.tasks:
            began = from_epoch(task.start)
            full, termination_era = _eras(began)
            for slice_start, slice_end, last in timeline_slices(task.start, task.end, task.state):
                rows.append({
                    "account_id": C.ACCOUNT_ID, "workspace_id": job.workspace.workspace_id, "job_id": job.job_id,
                    "run_id": task.run_id,
                    "job_run_id": run.run_id if termination_era else None,
                    "parent_run_id": run.run_id if termination_era else None,
                    "period_start_time": from_epoch(slice_start), "period_end_time": from_epoch(slice_end),
                    "task_key": task.task.key,
                    "compute_ids": [attempt.cluster_id] if attempt.cluster_id else [],
                    "result_state": task.state if last else None,
                    "termination_code": task.termination_code if last and termination_era else None,
                    "compute": _compute_struct(job, attempt.cluster_id) if full else None,
                    "termination_type": TERMINATION_TYPES.get(task.termination_code, "CLIENT_ERROR") if last and full else None,
                    "task_parameters": dict(job.parameters) if full else None,
                    "setup_duration_seconds": (attempt.setup_seconds if task.task.level == 0 else 0) if last and full else None,
                    "cleanup_duration_seconds": 0 if last and full else None,
                    "execution_duration_seconds": task.end - task.start if last and full else None,
                })
    return rows


def add_run_usage(buffer: UsageBuffer, world: World, run: Run, namespace: str) -> None:
    """billing.usage rows of a run on job compute or serverless (all-purpose usage is the cluster's)."""
    job = run.job
    ws = job.workspace.workspace_id
    stream = buffer.stream("run", run.run_id)
    for attempt in run.attempts:
        if attempt.end <= attempt.start:
            continue
        began = from_epoch(attempt.start)
        tags = tag_items(job.tags_at(began))
        name = job.name_at(began)
        if job.compute == "job_cluster":
            spec = job.cluster_spec
            named = began.date() >= world.planted.job_name_since  # job_name NULL era on job compute
            stream.add_hourly(
                ws, "jobs_photon" if spec.photon else "jobs", attempt.start, attempt.end, spec.dbu_per_hour, tags,
                cluster_id=attempt.cluster_id, job_id=job.job_id, job_run_id=run.run_id, node_type=spec.worker_node,
                job_name=name if named else None, run_as=job.run_as,
            )
        elif job.compute == "serverless":
            _serverless_run_usage(stream, world, run, attempt, tags, name, namespace)


def _serverless_run_usage(stream: UsageStream, world, run, attempt, tags, name, namespace) -> None:
    """Serverless bills several rows per hour for one run (reference §2.1f)."""
    job = run.job
    rate = rng_for(world.params.seed, "serverless-rate", job.index).uniform(4, 12)
    rng = rng_for(world.params.seed, namespace, "serverless-usage", run.run_id, attempt.number)
    hour = attempt.start - attempt.start % HOUR
    while hour < attempt.end:
        overlap = min(attempt.end, hour + HOUR) - max(attempt.start, hour)
        if overlap > 0:
            weights = [rng.uniform(0.2, 1.0) for _ in range(rng.randint(2, 5))]
            total = rate * overlap / HOUR
            for weight in weights:
                stream.add(job.workspace.workspace_id, "jobs_serverless", hour, total * weight / sum(weights), tags,
                           job_id=job.job_id, job_run_id=run.run_id, job_name=name, run_as=job.run_as)
        hour += HOUR
