"""Stage: spec. Turn shape-valid documents into frozen model objects (no checks beyond shape here)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from engine.sources.system_tables import SYSTEM_TABLES
from engine.spec.loader import Document, KeyPath
from engine.spec.model import (
    Aggregate,
    Alert,
    AlertWindow,
    CentralView,
    Channel,
    Column,
    Dashboard,
    DashboardDataset,
    DashboardFilter,
    DashboardPage,
    DashboardScope,
    Expectation,
    FilterType,
    Layer,
    Measure,
    OnViolation,
    Pattern,
    ProjectSettings,
    Provider,
    Recipient,
    Retention,
    Schedule,
    Scd2Options,
    Share,
    ShareMembership,
    Table,
    Tier,
    Widget,
    WidgetType,
)

# Bronze streaming tables keep two years unless their spec says otherwise: longer than any system
# table keeps its own rows (365 days at most, 90 for node_timeline), so the copy outlives the source.
DEFAULT_BRONZE_RETENTION_DAYS = 730

DEFAULT_ALERT_SCHEDULES = {
    Tier.P1: "0 0/15 * * * ?",  # every 15 minutes: the first failure matters
    Tier.P2: "0 0/30 * * * ?",
    Tier.P3: "0 0 8 * * ?",  # the daily digest, 08:00 UTC
}


def tables_from_doc(doc: Document) -> list[Table]:
    """One table, or two for an scd2 spec (its history and the derived latest-row table)."""
    d, pos = doc.data, doc.positions
    columns = tuple(
        Column(
            name=c["name"], type=c["type"], description=c["description"],
            nullable=c.get("nullable", True), pii=c.get("pii", False), expr=c.get("expr"), pii_reason=c.get("pii_reason"),
            location=pos.at(("columns", i)),
        )
        for i, c in enumerate(d["columns"])
    )
    scd2 = None
    if "scd2" in d:
        current = d["scd2"].get("current", {})
        scd2 = Scd2Options(
            sequence_by=d["scd2"]["sequence_by"],
            delete_column=d["scd2"].get("delete_column"),
            current_name=current.get("name", _current_name(d["name"])),
        )
    table = Table(
        name=d["name"],
        description=d["description"].strip(),
        domain=d["domain"],
        layer=Layer(d["layer"]),
        pattern=Pattern(d["pattern"]),
        columns=columns,
        location=pos.at(()),
        source=d.get("source"),
        filter=d.get("filter"),
        query=d.get("query"),
        keys=tuple(d.get("keys", ())),
        partition_by=tuple(d.get("partition_by", ())),
        cluster_by=tuple(d.get("cluster_by", ())),
        expectations=tuple(
            Expectation(e["name"], e["expr"], OnViolation(e.get("on_violation", "warn")), pos.at(("expectations", i)))
            for i, e in enumerate(d.get("expectations", ()))
        ),
        share=_memberships(d.get("share", ()), doc, ("share",)),
        schedule=Schedule(d.get("schedule", "pipeline")),
        requires=tuple(d.get("requires", ())),
        tags=MappingProxyType(dict(d.get("tags", {}))),
        table_properties=MappingProxyType(dict(d.get("table_properties", {}))),
        scd2=scd2,
        persisted_view=d.get("view", {}).get("persisted", False),
        rows=tuple(MappingProxyType(dict(row)) for row in d.get("rows", ())),
        retention=_retention(d, columns, scd2),
        full_recompute_ok=d.get("refresh", {}).get("full_recompute_ok"),
    )
    if scd2 is None:
        return [table]
    current = d["scd2"].get("current", {})
    latest = Table(
        name=scd2.current_name,
        description=current.get(
            "description",
            f"Latest version of each entity in {table.name} (one row per {', '.join(table.keys) or 'key'}); deleted entities excluded.",
        ).strip(),
        domain=table.domain,
        layer=Layer.SILVER,
        pattern=Pattern.SCD2_CURRENT,
        columns=tuple(c for c in columns),
        location=pos.at(("scd2", "current")) if "current" in d["scd2"] else pos.at(("scd2",)),
        keys=table.keys,
        share=_memberships(current.get("share", ()), doc, ("scd2", "current", "share")),
        schedule=table.schedule,
        requires=table.requires,
        tags=table.tags,
        scd2=scd2,
        derived_from=table.name,
    )
    return [table, latest]


def _retention(d: dict, columns: tuple[Column, ...], scd2: Scd2Options | None) -> Retention | None:
    """What the spec says, else the bronze default when a time column is known; rules check the rest."""
    pattern, layer = Pattern(d["pattern"]), Layer(d["layer"])
    column = d.get("retention_column") or default_retention_column(pattern, d.get("source"), columns, scd2)
    if "retention_days" in d:
        return Retention(d["retention_days"], column)
    if layer is Layer.BRONZE and pattern in (Pattern.STREAM, Pattern.SCD2) and column is not None:
        return Retention(DEFAULT_BRONZE_RETENTION_DAYS, column, default=True)
    return None


def default_retention_column(pattern: Pattern, source: str | None, columns: tuple[Column, ...],
                             scd2: Scd2Options | None) -> str | None:
    """scd2: the version column; a stream of a system table: the source's event time; only if declared."""
    declared = {c.name for c in columns}
    if pattern is Pattern.SCD2 and scd2 is not None:
        candidate = scd2.sequence_by
    elif pattern is Pattern.STREAM and source in SYSTEM_TABLES:
        candidate = SYSTEM_TABLES[source].time_column
    else:
        candidate = None
    return candidate if candidate in declared else None


def _current_name(name: str) -> str:
    for suffix in ("_bronze", "_history"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + "_current"
    return name + "_current"


def _memberships(items: Any, doc: Document, path: KeyPath) -> tuple[ShareMembership, ...]:
    return tuple(
        ShareMembership(
            share=m["share"], alias=m.get("alias"), history=m.get("history", False),
            include_pii=m.get("include_pii", False), location=doc.positions.at(path + (i,)),
        )
        for i, m in enumerate(items)
    )


def settings_from_doc(doc: Document) -> ProjectSettings:
    d = doc.data
    central = d.get("central", {})
    sources = d.get("sources", {})
    return ProjectSettings(
        name=d.get("name", "tablesmith"),
        catalog=d["catalog"],
        schema=d["schema"],
        account_identifier=str(d["account_identifier"]),
        workspace_identifier=str(d["workspace_identifier"]),
        shares=tuple(Share(s["name"], s.get("comment", "")) for s in d.get("shares", ())),
        recipients=tuple(
            Recipient(r["name"], r["sharing_identifier"], tuple(r["shares"]), r.get("comment", ""))
            for r in d.get("recipients", ())
        ),
        providers=tuple(
            Provider(
                name=p["name"], provider=p["provider"], share=p["share"],
                catalog=p.get("catalog", f"{p['name']}_monitoring"),
                account_identifier=p.get("account_identifier", ""),
                workspace_identifier=p.get("workspace_identifier", ""),
            )
            for p in d.get("providers", ())
        ),
        central_catalog=central.get("catalog", "monitoring_central"),
        central_schema=central.get("schema", "consolidated"),
        central_views=tuple(
            CentralView(v["name"], v["description"], v["query"], doc.positions.at(("central", "views", i)))
            for i, v in enumerate(central.get("views", ()))
        ),
        source_root=sources.get("local_root", ".tablesmith/source"),
        source_tables=MappingProxyType(dict(sources.get("tables", {}))),
        targets=MappingProxyType(dict(d.get("targets", {}))),
        location=doc.positions.at(()),
    )


def alert_from_doc(doc: Document, keys: tuple[str, ...]) -> Alert:
    """`keys`: the alerted table's keys, sent with each row when the spec names no columns."""
    d = doc.data
    tier = Tier(d["tier"])
    channel = d["channel"]
    return Alert(
        name=d["name"],
        description=d["description"].strip(),
        table=d["table"],
        condition=d["condition"].strip(),
        tier=tier,
        owner=d["owner"],
        channel=Channel(channel["type"], channel.get("url"), tuple(channel.get("to", ())), channel.get("destination")),
        columns=tuple(d.get("columns", keys)),
        message=d.get("message"),
        expected_latency_minutes=d.get("expected_latency_minutes", 15),
        schedule=d.get("schedule", DEFAULT_ALERT_SCHEDULES[tier]),
        location=doc.positions.at(()),
        within=AlertWindow(d["within"]["column"], d["within"]["days"]) if "within" in d else None,
    )


DEFAULT_DATE_RANGE = ("now-30d/d", "now/d")  # Lakeview's relative dates: the last 30 days up to today
ALL_VALUES = "<ALL>"  # the single-select default that means "no filter" (datasets test `:p = '<ALL>' OR ...`)


def dashboard_from_doc(doc: Document) -> Dashboard:
    """The dashboard as written; datasets' columns and parameters are derived by the rules (sqlglot)."""
    d, pos = doc.data, doc.positions
    filters = []
    for i, f in enumerate(d.get("filters", ())):
        kind = FilterType(f["type"])
        default = f.get("default")
        if kind is FilterType.DATE_RANGE:
            default = (default["min"], default["max"]) if isinstance(default, dict) else DEFAULT_DATE_RANGE
        elif not isinstance(default, str):
            default = ALL_VALUES
        values = f.get("values", {})
        filters.append(DashboardFilter(f["parameter"], kind, f["title"], default, values.get("dataset"), values.get("field"),
                                       pos.at(("filters", i))))
    datasets = tuple(DashboardDataset(ds["name"], ds["title"], ds["query"], pos.at(("datasets", i, "query")))
                     for i, ds in enumerate(d["datasets"]))
    pages = tuple(
        DashboardPage(page["name"], page["title"], tuple(
            _widget(w, f"{page['name']}_{j + 1}", pos.at(("pages", i, "widgets", j))) for j, w in enumerate(page["widgets"])
        ))
        for i, page in enumerate(d["pages"])
    )
    return Dashboard(
        name=d["name"], title=d["title"], description=d["description"].strip(),
        scope=DashboardScope(d.get("scope", "workspace")), filters=tuple(filters), datasets=datasets, pages=pages,
        location=pos.at(()),
    )


def _measure(m: dict | None) -> Measure | None:
    if m is None:
        return None
    return Measure(m["field"], Aggregate(m.get("agg", "sum")), m.get("title"))


def _widget(w: dict, default_name: str, location) -> Widget:
    return Widget(
        name=w.get("name", default_name), type=WidgetType(w["type"]), title=w.get("title"), dataset=w.get("dataset"),
        x=w.get("x"), bin=w.get("bin"), y=_measure(w.get("y")), value=_measure(w.get("value")), color=w.get("color"),
        columns=tuple(w.get("columns", ())), format=w.get("format"), markdown=w.get("markdown"),
        width=w.get("width"), height=w.get("height"), location=location,
    )
