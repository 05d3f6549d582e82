"""Stage: demo data. The simulated account: workspaces, jobs, clusters, warehouses, pipelines, serving
endpoints, notebooks and experiments, with their change histories and the planted cases.

`build_world` is a pure function of the generator parameters. Entity-level randomness is keyed by
the entity (see ids.py), so `scale` adds entities without changing existing ones, and the planted
cases never depend on `scale`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta

from engine.demo import catalog as C
from engine.demo.entities import (
    Cluster, ClusterSpec, Experiment, Job, Notebook, Params, Pipeline, PlantedCases, PriceRow, ServedEntity, TaskDef,
    VectorSearchEndpoint, Version, Warehouse, Workspace, World,
)
from engine.demo.ids import UTC, at, cluster_id, hex_id, numeric_id, rng_for, uuid_id

# Columns added to lakeflow tables in early December 2025 are NULL on rows emitted before this.
LAKEFLOW_FULL_COLUMNS_SINCE = datetime(2025, 12, 5, tzinfo=UTC)
# usage_metadata.job_name has been filled for job compute since September 2025.
JOB_NAME_DOCUMENTED_SINCE = date(2025, 9, 1)
FAILING_STREAK_RUNS = 3  # the failing job's trailing streak: its last 3 runs (one a day) FAILED
SLOW_RUNS = 2  # the slowdown job's last 2 runs take SLOWDOWN_FACTOR x its usual duration
SLOWDOWN_FACTOR = 2.6
SLOWDOWN_TYPICAL_MINUTES = 40.0
SLA_TYPICAL_MINUTES = 30.0  # the SLA job: usually 25-35 min, starting at 04:10 UTC, done by about 04:46
SLA_MAX_DURATION_MINUTES = 45  # its job tags `sla_max_duration_minutes` ...
SLA_DEADLINE_UTC = "05:00"  # ... and `sla_deadline_utc`
SLA_OVERRUN_FACTOR = 1.8  # one run takes 54 min: a duration breach (and, ending after 05:00, a deadline breach)
SLA_LATE_START_MINUTES = 40  # the last run starts 40 min late: a normal duration, but it ends after the deadline
# The SLA-risk job (issue 14): untagged, its team comes from the catalog's team reference rows by its owner; it runs at 22:00
# UTC for about an hour, within the 120 minutes its SLA reference row allows, but on the last day it is still running
# when the data ends (23:50), about 110 minutes in: past 80 % of its SLA, not yet breached.
SLA_RISK_START_HOUR = 22
SLA_RISK_TYPICAL_MINUTES = 60.0
SLA_RISK_MAX_DURATION_MINUTES = 120  # its row in the catalog's SLA reference table (specs/jobs/)
TASK_RETRY_INTERVAL_SECONDS = 60  # the planted task retry starts this long after its first attempt failed
# Planted job tiers (tags['tier']); every other tagged job gets a random P1/P2/P3.
PLANTED_TIERS = {"failing": "P2", "first_failure": "P1", "digest_failure": "P3", "slowdown": "P2", "sla_miss": "P3"}
# Jobs whose planted failures happen on the last day; every other job succeeds on that day.
LAST_DAY_FAILURE_ROLES = ("failing", "first_failure", "digest_failure")
NODE_TIMELINE_DAYS = 2  # per-minute node metrics are generated for the last days of the window only
NODE_TIMELINE_CLUSTERS_PER_KIND = 3  # ... and for at most this many all-purpose/pipeline clusters per workspace
# Fleet per home-region workspace at scale 1; `scale` multiplies these (and so billing.usage).
ALL_PURPOSE_PER_WORKSPACE = 4
WAREHOUSES_PER_WORKSPACE = 4
PIPELINES_PER_WORKSPACE = 2
NOTEBOOKS_PER_WORKSPACE = 8


# --- building ----------------------------------------------------------------------------------

def _count(base: float, scale: float) -> int:
    return max(1, round(base * scale))


def detailed(index: int, base: int, scale: float) -> bool:
    """Whether the index-th entity of a workspace gets per-event detail (query history, notebook
    commands): all of them up to scale 1, then a number growing with sqrt(scale), so that a large
    `scale` inflates billing.usage without making the event tables dominate the run time."""
    return index < max(base, math.ceil(base * math.sqrt(scale)))


def build_world(params: Params) -> World:
    params.validate()
    seed = params.seed
    workspaces = _workspaces(params)
    service_principals = tuple(uuid_id(seed, "sp", name) for name in C.SERVICE_PRINCIPAL_NAMES)
    clusters = _all_purpose_clusters(params, workspaces)
    jobs = _jobs(params, workspaces, clusters, service_principals)
    pipelines = _pipelines(params, workspaces, service_principals)
    planted = _planted_cases(params, workspaces, jobs, clusters)
    spike_cluster = planted.spike_cluster
    return World(
        params=params,
        workspaces=workspaces,
        service_principals=service_principals,
        jobs=jobs,
        clusters=clusters + tuple(p.cluster for p in pipelines) + (spike_cluster,),
        warehouses=_warehouses(params, workspaces),
        pipelines=pipelines,
        served_entities=_served_entities(params, workspaces, service_principals),
        vector_search=_vector_search(params, workspaces),
        notebooks=_notebooks(params, workspaces),
        experiments=_experiments(params, workspaces),
        prices=_prices(params, planted.price_change_at),
        planted=planted,
    )


def _workspaces(params: Params) -> tuple[Workspace, ...]:
    seed, result = params.seed, []
    for index in range(params.workspaces):
        remote = index == params.workspaces - 1
        rng = rng_for(seed, "workspace", index)
        name = C.REMOTE_WORKSPACE_NAME if remote else C.WORKSPACE_NAMES[index % len(C.WORKSPACE_NAMES)]
        if not remote and index >= len(C.WORKSPACE_NAMES):
            name = f"{name}-{index}"
        people = tuple(
            C.Person(
                email=f"{first.lower()}.{last.lower()}@{C.EMAIL_DOMAIN}",
                user_id=numeric_id(16, seed, "user", first, last),
                display_name=f"{first} {last}",
                team=team,
            )
            for offset, (first, last, team) in enumerate(C.PEOPLE_NAMES)
            if (offset + index) % 3 != 2 or index == 0  # everyone works in the first workspace
        )
        created = datetime(2024, 1, 15, tzinfo=UTC) + timedelta(days=rng.randrange(0, 400), seconds=rng.randrange(86400))
        result.append(
            Workspace(
                index=index,
                workspace_id=numeric_id(16, seed, "workspace", index),
                name=name,
                url=f"https://dbc-{hex_id(8, seed, 'url', index)}-{hex_id(4, seed, 'url2', index)}.cloud.databricks.com",
                create_time=created,
                is_remote=remote,
                people=people,
            )
        )
    return tuple(result)


def _deleted(versions: list[Version], when: datetime) -> list[Version]:
    """The history up to `when`, closed by a deletion row (nothing changes after a delete)."""
    kept = sorted((v for v in versions if v.change_time < when), key=lambda v: v.change_time)
    return kept + [Version(when, kept[-1].attrs, delete_time=when)]


def _team_tags(team: str, tier: str | None = None) -> dict[str, str]:
    tags = {"team": team, "cost_center": C.COST_CENTERS[team]}
    if tier:
        tags["tier"] = tier
    return tags


def _random_spec(rng, *, photon: bool | None = None, autoscale_ok: bool = True) -> ClusterSpec:
    worker = rng.choice(("i3.xlarge", "m5d.xlarge", "m5d.2xlarge", "r5d.xlarge", "c5d.2xlarge"))
    driver = worker if rng.random() < 0.7 else "m5d.xlarge"
    workers = rng.choice((1, 2, 2, 3, 4, 6))
    autoscale = (max(1, workers - 1), workers * 2) if autoscale_ok and rng.random() < 0.3 else None
    return ClusterSpec(
        driver_node=driver,
        worker_node=worker,
        workers=workers,
        photon=rng.random() < 0.3 if photon is None else photon,
        dbr_version=rng.choice(("15.4.x-scala2.12", "16.4.x-scala2.12", "17.3.x-scala2.13")),
        autoscale=autoscale,
    )


def _before_window(rng, params: Params, earliest: datetime = datetime(2025, 3, 1, tzinfo=UTC)) -> datetime:
    """A random moment between `earliest` and ten days before the window starts."""
    latest = at(params.start_date) - timedelta(days=10)
    span = max(1, int((latest - earliest).total_seconds()))
    return earliest + timedelta(seconds=rng.randrange(span))


def _in_window(rng, params: Params, lo: float = 0.1, hi: float = 0.9) -> datetime:
    day = params.day_at(lo + (hi - lo) * rng.random())
    return at(day, rng.randrange(8, 18), rng.randrange(60), rng.randrange(60))


def _all_purpose_clusters(params: Params, workspaces: tuple[Workspace, ...]) -> tuple[Cluster, ...]:
    seed, result = params.seed, []
    home = [w for w in workspaces if not w.is_remote]
    for ws in workspaces:
        count = _count(2 if ws.is_remote else ALL_PURPOSE_PER_WORKSPACE, params.scale)
        for index in range(count):
            rng = rng_for(seed, "ap-cluster", ws.index, index)
            created = _before_window(rng, params, datetime(2025, 6, 1, tzinfo=UTC))
            over_provisioned = ws.index == 0 and index == 0
            owner = rng.choice(ws.people)
            if over_provisioned:
                spec = ClusterSpec("r5d.4xlarge", "r5d.4xlarge", 12, False, "16.4.x-scala2.12")
                name, tags = "shared-analytics-xl", _team_tags("analytics")
            else:
                spec = _random_spec(rng)
                name = f"{owner.email.split('.')[0]}-{rng.choice(('dev', 'exploration', 'adhoc', 'team'))}-{index}"
                tags = _team_tags(owner.team) if rng.random() < 0.7 else {}
            first = Version(created, {"name": name, "spec": spec, "tags": tags,
                                      "auto_termination_minutes": rng.choice((30, 60, 120))})
            versions = [first]
            if index == 1 and ws.index == 0:  # resized inside the window
                bigger = replace(spec, workers=spec.workers + 2)
                versions.append(Version(_in_window(rng, params, 0.3, 0.6), {**first.attrs, "spec": bigger}))
            elif not over_provisioned and rng.random() < 0.3:  # renamed inside the window
                versions.append(Version(_in_window(rng, params), {**first.attrs, "name": f"{name}-renamed"}))
            if ws == home[-1] and index == ALL_PURPOSE_PER_WORKSPACE - 1:  # deleted inside the window
                when = at(params.day_at(0.55), 19, 5)
                versions = _deleted(versions, when)
            result.append(
                Cluster(
                    workspace=ws,
                    cluster_id=cluster_id(created, seed, "ap", ws.index, index),
                    kind="all_purpose",
                    source=rng.choice(("UI", "UI", "API")),
                    owner=owner.email,
                    versions=tuple(versions),
                    index=index,
                    over_provisioned=over_provisioned,
                )
            )
    return tuple(result)


_PLANTED_ROLES = ("failing", "long_running", "repaired", "serverless", "all_purpose", "misbilled",
                  "first_failure", "digest_failure", "slowdown", "sla_miss", "sla_at_risk")
_ONE_RUN_A_DAY = ("failing", "long_running", "repaired", "misbilled", "first_failure", "digest_failure", "slowdown",
                  "sla_miss", "sla_at_risk")
_FIXED_RUN_MINUTE = {"long_running": 40, "sla_miss": 10, "sla_at_risk": 0}
_NEVER_FAIL_AT_RANDOM = ("failing", "repaired", "misbilled", "long_running", "first_failure", "digest_failure",
                         "slowdown", "sla_miss", "sla_at_risk")


def _jobs(
    params: Params, workspaces: tuple[Workspace, ...], clusters: tuple[Cluster, ...], sps: tuple[str, ...]
) -> tuple[Job, ...]:
    home = [w for w in workspaces if not w.is_remote]
    remote = [w for w in workspaces if w.is_remote]
    remote_count = max(1, params.jobs // 8)
    placements = [remote[0]] * remote_count + [home[i % len(home)] for i in range(params.jobs - remote_count)]
    # Interleave so remote jobs are not all first; the order only decides names and roles.
    placements = placements[remote_count:] + placements[:remote_count]
    roles: list[str | None] = list(_PLANTED_ROLES) + [None] * (params.jobs - len(_PLANTED_ROLES))
    unplanted = [i for i, ws in enumerate(placements) if not ws.is_remote and i >= len(_PLANTED_ROLES)]
    lifecycle = {}
    if len(unplanted) >= 3:
        lifecycle = {unplanted[-1]: "deleted_early", unplanted[-2]: "deleted_late", unplanted[-3]: "created_in_window"}
    jobs = []
    for index, ws in enumerate(placements):
        role = roles[index] if not ws.is_remote else None
        jobs.append(_job(params, ws, index, role, lifecycle.get(index), clusters, sps))
    return tuple(jobs)


def _job(params, ws, index, role, lifecycle, clusters, sps) -> Job:
    seed = params.seed
    rng = rng_for(seed, "job", index)
    creator = rng.choice(ws.people)
    name = C.JOB_NAMES[index % len(C.JOB_NAMES)] + ("" if index < len(C.JOB_NAMES) else f"_{index}")
    compute = {"serverless": "serverless", "all_purpose": "all_purpose"}.get(role or "", "job_cluster")
    if role is None:
        compute = rng.choices(("job_cluster", "serverless", "all_purpose"), (0.6, 0.25, 0.15))[0]
    if ws.is_remote and compute == "serverless":
        compute = "job_cluster"  # serverless SKUs are regional; keep the remote workspace on classic compute
    per_day = 1 if role in _ONE_RUN_A_DAY else rng.choice((1, 1, 1, 2, 4, 12))
    if role == "serverless":
        per_day = 4
    step = 24 // per_day
    # The last scheduled start is before 23:00, so every run (and a repair) ends before midnight.
    first_hour = 1 if role == "long_running" else rng.randrange(0, min(step - 1, 20))
    run_hours = tuple(first_hour + k * step for k in range(per_day))
    typical = 170.0 if role == "long_running" else min(150.0, max(8.0, rng.lognormvariate(3.4, 0.6)))
    if per_day > 1:
        typical = min(typical, step * 60 * 0.5)
    if role == "slowdown":  # early in the day, so even its slow runs end long before midnight
        run_hours, typical = (3,), SLOWDOWN_TYPICAL_MINUTES
    elif role == "sla_miss":
        run_hours, typical = (4,), SLA_TYPICAL_MINUTES
    elif role == "sla_at_risk":
        run_hours, typical = (SLA_RISK_START_HOUR,), SLA_RISK_TYPICAL_MINUTES
    ap_cluster = None
    if compute == "all_purpose":
        ap_cluster = next(c for c in clusters if c.workspace == ws and c.index == 0).cluster_id
    spec = _random_spec(rng, photon=False if role == "misbilled" else None, autoscale_ok=False)
    team = creator.team if rng.random() < 0.85 else rng.choice(C.TEAMS)
    tags = _team_tags(team, rng.choice(("P1", "P2", "P3"))) if (role or rng.random() < 0.75) else {}
    if role in PLANTED_TIERS:
        tags["tier"] = PLANTED_TIERS[role]
    if role == "sla_miss":
        tags.update(sla_max_duration_minutes=str(SLA_MAX_DURATION_MINUTES), sla_deadline_utc=SLA_DEADLINE_UTC)
    if role == "sla_at_risk":
        tags = {}  # planted: untagged, so its team comes from the team reference rows (its owner's row)
    run_as = creator.email if rng.random() < 0.5 else rng.choice(sps)
    created = _before_window(rng, params)
    if role == "sla_at_risk":  # after the Dec 2025 rollout: its rows carry creator_user_name (the owner's email)
        created = at(params.start_date - timedelta(days=60), 9, 30, 5)
    if lifecycle == "created_in_window":
        created = at(params.day_at(0.3), 10, 17, 3)
    first = Version(created, {
        "name": name, "tags": tags, "timeout_seconds": rng.choice((0, 3600, 7200, 14400)) if role != "long_running" else 21600,
        "paused": False, "description": f"{name.replace('_', ' ').capitalize()} pipeline owned by {team}.",
    })
    versions = [first]
    if created < LAKEFLOW_FULL_COLUMNS_SINCE and rng.random() < 0.5:
        # Edited after the lakeflow column rollout: its latest row has trigger/paused/... populated.
        when = LAKEFLOW_FULL_COLUMNS_SINCE + timedelta(days=rng.randrange(1, 60), seconds=rng.randrange(86400))
        if when < at(params.start_date):
            versions.append(Version(when, {**first.attrs, "timeout_seconds": first.attrs["timeout_seconds"] or 3600}))
    if role is None and rng.random() < 0.35:
        versions.append(Version(_in_window(rng, params), {**versions[-1].attrs, "name": f"{name}_v2"}))
    if role is None and not tags and rng.random() < 0.5:
        versions.append(Version(_in_window(rng, params, 0.5, 0.95), {**versions[-1].attrs, "tags": _team_tags(team)}))
    if lifecycle in ("deleted_early", "deleted_late"):
        when = at(params.day_at(0.4 if lifecycle == "deleted_early" else 0.7), 15, 42, 11)
        versions = _deleted(versions, when)
    versions.sort(key=lambda v: v.change_time)
    tasks = _tasks(rng, created, versions)
    return Job(
        workspace=ws,
        job_id=numeric_id(15, seed, "job", ws.index, index),
        index=index,
        role=role,
        compute=compute,
        cluster_spec=spec if compute == "job_cluster" else None,
        all_purpose_cluster_id=ap_cluster,
        run_hours=run_hours,
        run_minute=_FIXED_RUN_MINUTE[role] if role in _FIXED_RUN_MINUTE else rng.randrange(60),
        typical_minutes=typical,
        failure_rate=0.0 if role in _NEVER_FAIL_AT_RANDOM else rng.uniform(0.02, 0.12),
        run_as=run_as,
        creator=creator,
        versions=tuple(versions),
        tasks=tasks,
        run_type="SUBMIT_RUN" if role is None and rng.random() < 0.08 else "JOB_RUN",
        parameters={"env": "prod"} if rng.random() < 0.5 else {},
    )


def _tasks(rng, created: datetime, versions: list[Version]) -> tuple[TaskDef, ...]:
    count = rng.choice((1, 2, 3, 3, 4))
    keys = sorted(rng.sample(C.TASK_KEYS[:-2], count), key=C.TASK_KEYS.index)  # ingest before publish
    tasks, previous = [], ()
    for level, key in enumerate(keys):
        tasks.append(TaskDef(key=key, depends_on=previous, level=level, created=created))
        previous = (key,)
    if len(versions) > 1 and versions[1].delete_time is None and rng.random() < 0.4:
        # A config change that adds a checks task after the last one.
        change = versions[1].change_time
        tasks.append(TaskDef("quality_checks", previous, len(keys), change, timeout_seconds=900))
    deleted = versions[-1].delete_time
    if deleted:
        tasks = [replace(t, deleted=deleted) for t in tasks]
    return tuple(tasks)


def _warehouses(params: Params, workspaces: tuple[Workspace, ...]) -> tuple[Warehouse, ...]:
    seed, result = params.seed, []
    for ws in workspaces:
        for index in range(_count(1 if ws.is_remote else WAREHOUSES_PER_WORKSPACE, params.scale)):
            rng = rng_for(seed, "warehouse", ws.index, index)
            kind = "SERVERLESS" if ws.is_remote or index % 2 == 1 else "PRO"
            size = "SMALL" if kind == "PRO" else rng.choice(("X_SMALL", "SMALL", "MEDIUM"))
            owner = rng.choice(ws.people)
            attrs = {
                "name": f"{owner.team}-{kind.lower()}-{index}", "type": kind, "size": size, "channel": "CURRENT",
                "min_clusters": 1, "max_clusters": rng.choice((1, 2, 4)), "auto_stop_minutes": 10 if kind == "SERVERLESS" else 45,
                "tags": _team_tags(owner.team) if rng.random() < 0.8 else {},
            }
            versions = [Version(_before_window(rng, params), attrs)]
            if ws.index == 0 and index == 0:  # resized inside the window
                versions.append(Version(at(params.day_at(0.5), 9, 12, 40), {**attrs, "size": "MEDIUM", "max_clusters": 3}))
            result.append(
                Warehouse(ws, hex_id(16, seed, "warehouse", ws.index, index), index, owner.email, tuple(versions))
            )
    return tuple(result)


def _home_entities(params: Params, workspaces: tuple[Workspace, ...], kind: str, count: int):
    """(workspace, index, rng) for `count` entities of `kind` in each home workspace, each with its own seed."""
    for ws in workspaces:
        if ws.is_remote:
            continue
        for index in range(count):
            yield ws, index, rng_for(params.seed, kind, ws.index, index)


def _pipelines(params: Params, workspaces: tuple[Workspace, ...], sps: tuple[str, ...]) -> tuple[Pipeline, ...]:
    seed, result = params.seed, []
    for ws, index, rng in _home_entities(params, workspaces, "pipeline", _count(PIPELINES_PER_WORKSPACE, params.scale)):
        continuous = ws.index == 0 and index == 0
        owner = rng.choice(ws.people)
        created = _before_window(rng, params)
        topic = rng.choice(("orders", "events", "inventory", "payments"))
        name = f"{topic}_{'stream' if continuous else 'batch'}_dlt_{ws.index}_{index}"
        tags = _team_tags(owner.team) if rng.random() < 0.7 else {}
        spec = ClusterSpec("i3.xlarge", "i3.xlarge", 2 if continuous else rng.choice((1, 2, 3)), False, "dlt:16.4.x")
        cluster = Cluster(
            workspace=ws,
            cluster_id=cluster_id(created, seed, "pipeline-cluster", ws.index, index),
            kind="pipeline",
            source="PIPELINE",
            owner=owner.email,
            versions=(Version(created, {"name": f"dlt-execution-{name}", "spec": spec,
                                        "auto_termination_minutes": 0, "tags": tags}),),
            index=index,
        )
        versions = [Version(created, {"name": name, "tags": tags, "development": False})]
        if rng.random() < 0.3:
            versions.append(Version(_in_window(rng, params), {"name": f"{name}_v2", "tags": tags, "development": False}))
        result.append(
            Pipeline(
                workspace=ws, pipeline_id=uuid_id(seed, "pipeline", ws.index, index), index=index, cluster=cluster,
                run_as=rng.choice(sps) if rng.random() < 0.6 else owner.email, created_by=owner.email,
                continuous=continuous, edition="ADVANCED" if continuous else "CORE", versions=tuple(versions),
            )
        )
    return tuple(result)


def _served_entities(params: Params, workspaces: tuple[Workspace, ...], sps: tuple[str, ...]) -> tuple[ServedEntity, ...]:
    seed = params.seed
    home = [w for w in workspaces if not w.is_remote]
    main, second = home[0], home[-1]
    owner = main.people[3].email

    def entity(ws, endpoint_name, entity_type, billing, dbu, tracked, versions):
        return ServedEntity(
            workspace=ws, endpoint_id=hex_id(32, seed, "endpoint", endpoint_name),
            endpoint_name=endpoint_name, served_entity_id=hex_id(32, seed, "served-entity", endpoint_name),
            entity_type=entity_type, billing=billing, dbu_per_hour=dbu, tracked=tracked, created_by=owner,
            versions=tuple(versions),
        )

    created = at(params.start_date - timedelta(days=120), 14, 3, 9)
    custom = {"entity_name": "main.ml.churn_model", "entity_version": "3", "served_entity_name": "churn_model-3",
              "config_version": 1, "task": None, "min_concurrency": 4, "max_concurrency": 8}
    fm = {"entity_name": "system.ai.databricks-meta-llama-3-3-70b-instruct", "entity_version": "1",
          "served_entity_name": "databricks-meta-llama-3-3-70b-instruct", "config_version": 1, "task": "llm/v1/chat"}
    external = {"entity_name": "gpt-4o", "entity_version": None, "served_entity_name": "gpt-4o",
                "config_version": 1, "task": "llm/v1/chat", "provider": "openai"}
    fraud = {"entity_name": "main.risk.fraud_scorer", "entity_version": "7", "served_entity_name": "fraud_scorer-7",
             "config_version": 2, "task": None, "min_concurrency": 0, "max_concurrency": 4}
    new_version = {**custom, "entity_version": "4", "served_entity_name": "churn_model-4", "config_version": 2}
    deleted_at = at(params.day_at(0.6), 16, 20)
    return (
        entity(main, "churn-predictor", "CUSTOM_MODEL", "dbu", 4.0, False,
               [Version(created, custom), Version(at(params.day_at(0.45), 11, 5), new_version)]),
        entity(main, "llm-chat", "FOUNDATION_MODEL", "token", 0.0, True, [Version(created + timedelta(days=20), fm)]),
        entity(main, "openai-gateway", "EXTERNAL_MODEL", None, 0.0, True, [Version(created + timedelta(days=35), external)]),
        entity(second, "fraud-scorer", "CUSTOM_MODEL", "dbu", 2.0, False,
               [Version(created - timedelta(days=60), fraud), Version(deleted_at, fraud, delete_time=deleted_at)]),
    )


def _vector_search(params: Params, workspaces: tuple[Workspace, ...]) -> tuple[VectorSearchEndpoint, ...]:
    main = workspaces[0]
    return (VectorSearchEndpoint(main, hex_id(32, params.seed, "vs", 0), "vs-docs-search", 4.0),)


def _notebooks(params: Params, workspaces: tuple[Workspace, ...]) -> tuple[Notebook, ...]:
    seed, result = params.seed, []
    for ws, index, rng in _home_entities(params, workspaces, "notebook", _count(NOTEBOOKS_PER_WORKSPACE, params.scale)):
        user = ws.people[index % len(ws.people)]
        topic = rng.choice(("eda", "model-dev", "adhoc-analysis", "data-checks", "prototype"))
        result.append(
            Notebook(
                workspace=ws, notebook_id=numeric_id(16, seed, "notebook", ws.index, index),
                path=f"/Users/{user.email}/{topic}-{index}", user=user, index=index,
                budget_policy_id=uuid_id(seed, "budget-policy", user.team) if rng.random() < 0.5 else None,
            )
        )
    return tuple(result)


def _experiments(params: Params, workspaces: tuple[Workspace, ...]) -> tuple[Experiment, ...]:
    seed, result = params.seed, []
    for ws, index, rng in _home_entities(params, workspaces, "experiment", 2):
        owner = rng.choice([p for p in ws.people if p.team == "ml-platform"] or list(ws.people))
        deleted = at(params.day_at(0.85), 12, 0) if (ws.index == 0 and index == 1) else None
        result.append(
            Experiment(
                workspace=ws, experiment_id=numeric_id(16, seed, "experiment", ws.index, index),
                name=f"/Users/{owner.email}/{('churn', 'demand-forecast')[index]}-experiments",
                owner=owner, create_time=_before_window(rng, params, datetime(2025, 9, 2, tzinfo=UTC)),
                delete_time=deleted,
            )
        )
    return tuple(result)


def _prices(params: Params, price_change_at: datetime) -> tuple[PriceRow, ...]:
    since = min(datetime(2023, 1, 1, tzinfo=UTC), at(params.start_date) - timedelta(days=365))
    rows = []
    for key, sku in C.SKUS.items():
        if key == C.PRICE_CHANGE_SKU:
            rows.append(PriceRow(sku, since, price_change_at, sku.price, None))
            rows.append(PriceRow(sku, price_change_at, None, C.PRICE_CHANGE_NEW_PRICE, None))
        else:
            rows.append(PriceRow(sku, since, None, sku.price, sku.promotional_price))
    return tuple(rows)


def _planted_cases(params: Params, workspaces, jobs, clusters) -> PlantedCases:
    by_role = {job.role: job for job in jobs if job.role}
    deleted = tuple(j for j in jobs if j.versions[-1].delete_time is not None)
    created_in_window = next((j for j in jobs if j.create_time >= at(params.start_date)), None)
    end = params.end_date
    spike_day = end - timedelta(days=4)
    while spike_day.weekday() >= 5:  # a weekday, so the spike stands out against weekday spend
        spike_day -= timedelta(days=1)
    home = [w for w in workspaces if not w.is_remote]
    spike_ws = home[-1]
    spike_created = at(spike_day, 5, 48, 12)
    # An untagged, oversized cluster someone started for a backfill and deleted the next morning.
    spike_attrs = {
        "name": "backfill-xl-tmp", "spec": ClusterSpec("i3.4xlarge", "i3.4xlarge", 40, True, "16.4.x-scala2.12"),
        "auto_termination_minutes": 0, "tags": {},
    }
    spike_deleted = at(spike_day + timedelta(days=1), 9, 30)
    spike_cluster = Cluster(
        workspace=spike_ws,
        cluster_id=cluster_id(spike_created, params.seed, "spike"),
        kind="spike",
        source="UI",
        owner=spike_ws.people[1].email,
        versions=(Version(spike_created, spike_attrs), Version(spike_deleted, spike_attrs, delete_time=spike_deleted)),
    )
    start = params.start_date
    job_name_since = JOB_NAME_DOCUMENTED_SINCE
    if not (start < job_name_since < end):
        job_name_since = params.day_at(1 / 3)  # keep a NULL era inside the window (see docs/SOURCES.md)
    denied_user = home[0].people[5 % len(home[0].people)]
    deleted_cluster = next((c for c in clusters if c.versions[-1].delete_time is not None), None)
    return PlantedCases(
        failing_job=by_role["failing"],
        long_running_job=by_role["long_running"],
        repaired_job=by_role["repaired"],
        serverless_job=by_role["serverless"],
        all_purpose_job=by_role["all_purpose"],
        misbilled_job=by_role["misbilled"],
        deleted_jobs=deleted,
        created_in_window_job=created_in_window,
        failing_streak_days=tuple(end - timedelta(days=k) for k in range(FAILING_STREAK_RUNS, 0, -1)),
        first_failure_job=by_role["first_failure"],
        digest_failure_job=by_role["digest_failure"],
        last_day=end - timedelta(days=1),
        slowdown_job=by_role["slowdown"],
        slow_days=tuple(end - timedelta(days=k) for k in range(SLOW_RUNS, 0, -1)),
        sla_job=by_role["sla_miss"],
        sla_overrun_day=params.day_at(0.5),
        sla_late_start_day=end - timedelta(days=1),
        repair_day=params.day_at(1 / 3),
        over_provisioned_cluster=next(c for c in clusters if c.over_provisioned),
        deleted_cluster=deleted_cluster,
        spike_workspace=spike_ws,
        spike_day=spike_day,
        spike_cluster=spike_cluster,
        price_change_at=at(params.day_at(2 / 3)),
        same_sku_correction_day=params.day_at(0.25),
        other_sku_correction_day=params.day_at(0.5),
        retraction_only_day=params.day_at(0.75),
        job_name_since=job_name_since,
        denied_user=denied_user,
        node_timeline_days=tuple(end - timedelta(days=k) for k in range(NODE_TIMELINE_DAYS, 0, -1)),
        sla_risk_job=by_role["sla_at_risk"],
        task_retry_day=params.day_at(0.5),
    )
