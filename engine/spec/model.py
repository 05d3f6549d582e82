"""Stage: spec. The validated model: frozen, typed data that every later stage consumes.

Nothing here acts; builders live in `engine.spec.build`, behaviour in graph/runtime/render.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from engine.names import REFERENCE
from engine.spec.loader import Location

IDENTIFIER_COLUMNS = ("_account_identifier", "_workspace_identifier")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "incl.")
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def first_sentence(text: str) -> str:
    """The first sentence of a description (its purpose); abbreviations such as e.g. do not end it."""
    text = " ".join(text.split())
    for match in _SENTENCE_END.finditer(text):
        if not text[: match.end()].lower().endswith(_ABBREVIATIONS):
            return text[: match.end()]
    return text


# The central workspace's view of a shared table, from every provider: all_workspaces_<table>.
CONSOLIDATED_PREFIX = "all_workspaces_"



class Pattern(str, enum.Enum):
    STREAM = "stream"
    SNAPSHOT = "snapshot"
    SCD2 = "scd2"
    AGGREGATE = "aggregate"
    VIEW = "view"
    REFERENCE = "reference"
    # Not written in specs: the latest-row table an scd2 spec derives.
    SCD2_CURRENT = "scd2_current"


class Layer(str, enum.Enum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


class OnViolation(str, enum.Enum):
    WARN = "warn"
    DROP = "drop"
    FAIL = "fail"


class Schedule(str, enum.Enum):
    PIPELINE = "pipeline"
    DAILY = "daily"


class DatasetKind(str, enum.Enum):
    """What the table becomes on the pipeline engine."""

    STREAMING_TABLE = "streaming_table"
    MATERIALIZED_VIEW = "materialized_view"
    VIEW = "view"
    TEMPORARY_VIEW = "temporary_view"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    pii: bool = False
    expr: str | None = None
    pii_reason: str | None = None  # why a column computed from PII is not personal data
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Expectation:
    name: str
    expr: str
    on_violation: OnViolation = OnViolation.WARN
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ShareMembership:
    share: str
    alias: str | None = None
    history: bool = False
    include_pii: bool = False
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Scd2Options:
    sequence_by: str
    delete_column: str | None
    current_name: str


@dataclass(frozen=True)
class Retention:
    """Rows whose `column` is more than `days` days old are deleted (daily, outside the pipeline)."""

    days: int
    column: str | None  # None: no column could be derived (a rule reports it)
    default: bool = False  # the bronze default, not written in the spec


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    domain: str
    layer: Layer
    pattern: Pattern
    columns: tuple[Column, ...]
    location: Location
    source: str | None = None
    filter: str | None = None
    query: str | None = None
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    share: tuple[ShareMembership, ...] = ()
    schedule: Schedule = Schedule.PIPELINE
    requires: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    table_properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    scd2: Scd2Options | None = None
    persisted_view: bool = False
    derived_from: str | None = None  # set on the scd2 current table: the history table's name
    rows: tuple[Mapping[str, object], ...] = ()  # reference tables: rows written in the spec
    retention: Retention | None = None  # streaming tables: how long rows are kept (None: every row, forever)
    full_recompute_ok: str | None = None  # refresh.full_recompute_ok: why a full recompute every 15 minutes is accepted

    @property
    def upstream_tables(self) -> tuple[str, ...]:
        """Other spec tables this one reads, sorted."""
        return tuple(sorted(r for r in self.references if not r.startswith("system.")))

    @property
    def system_sources(self) -> tuple[str, ...]:
        return tuple(sorted(r for r in self.references if r.startswith("system.")))

    @property
    def references(self) -> frozenset[str]:
        refs: set[str] = set()
        if self.source:
            refs.add(self.source)
        if self.query:
            refs.update(m.group(1) for m in REFERENCE.finditer(self.query))
        if self.derived_from:
            refs.add(self.derived_from)
        return frozenset(refs)

    @property
    def dataset_kind(self) -> DatasetKind:
        # scd2 history appends new versions of an append-only SCD2 system table: a streaming table.
        if self.pattern in (Pattern.STREAM, Pattern.SCD2):
            return DatasetKind.STREAMING_TABLE
        if self.pattern is Pattern.VIEW:
            return DatasetKind.VIEW if self.persisted_view else DatasetKind.TEMPORARY_VIEW
        return DatasetKind.MATERIALIZED_VIEW

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Declared columns followed by the identifier columns every table carries."""
        return self.columns + IDENTIFIER_COLUMN_DEFS

    @property
    def pii_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii)


IDENTIFIER_COLUMN_DEFS = (
    Column("_account_identifier", "STRING", "Account this row was produced in (project setting account_identifier).", nullable=False),
    Column("_workspace_identifier", "STRING", "Workspace this row was produced in (project setting workspace_identifier).", nullable=False),
)


@dataclass(frozen=True)
class Share:
    name: str
    comment: str = ""


@dataclass(frozen=True)
class Recipient:
    name: str
    sharing_identifier: str
    shares: tuple[str, ...]
    comment: str = ""


@dataclass(frozen=True)
class Provider:
    name: str
    provider: str
    share: str
    catalog: str
    account_identifier: str = ""
    workspace_identifier: str = ""


@dataclass(frozen=True)
class CentralView:
    """A view the central workspace builds over the consolidated views (project.yaml central.views)."""

    name: str
    description: str
    query: str  # ${table}: the consolidated view of a shared table; ${view}: an earlier central view
    location: Location | None = field(default=None, compare=False)

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.group(1) for m in REFERENCE.finditer(self.query)))


@dataclass(frozen=True)
class ProjectSettings:
    name: str
    catalog: str
    schema: str
    account_identifier: str
    workspace_identifier: str
    shares: tuple[Share, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    providers: tuple[Provider, ...] = ()
    central_catalog: str = "monitoring_central"
    central_schema: str = "consolidated"
    central_views: tuple[CentralView, ...] = ()
    source_root: str = ".tablesmith/source"
    source_tables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    targets: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    location: Location | None = None

    @property
    def mounted_shares(self) -> frozenset[str]:
        """Shares some provider's catalog mounts in the central workspace: their tables get consolidated views."""
        return frozenset(p.share for p in self.providers)


class Tier(str, enum.Enum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def digest(self) -> bool:
        return self is Tier.P3


@dataclass(frozen=True)
class Channel:
    type: str  # slack | webhook | email
    url: str | None = None
    to: tuple[str, ...] = ()
    destination: str | None = None


@dataclass(frozen=True)
class AlertWindow:
    """Only rows whose `column` is within `days` days of its latest value in the table (anchored on the
    data, not the clock), so an alert on a history table fires for recent rows only."""

    column: str
    days: int


@dataclass(frozen=True)
class Alert:
    """A condition over one table's rows; each matching row alerts (P3: in a daily digest)."""

    name: str
    description: str
    table: str
    condition: str
    tier: Tier
    owner: str
    channel: Channel
    columns: tuple[str, ...]
    message: str | None
    expected_latency_minutes: int
    schedule: str
    location: Location | None = field(default=None, compare=False)
    within: AlertWindow | None = None


# --- dashboards ----------------------------------------------------------------------------------

# The column the consolidated views (CONSOLIDATED_PREFIX) add: which provider a row comes from.
SOURCE_WORKSPACE_COLUMN = "source_workspace"


class DashboardScope(str, enum.Enum):
    WORKSPACE = "workspace"  # ${table} reads the table in the target's catalog and schema
    CENTRAL = "central"  # ${table} reads all_workspaces_<table> in the central catalog and schema


class FilterType(str, enum.Enum):
    DATE_RANGE = "date_range"  # a DATE range: :p.min and :p.max
    SINGLE_SELECT = "single_select"  # one STRING: :p


class WidgetType(str, enum.Enum):
    COUNTER = "counter"
    LINE = "line"
    BAR = "bar"
    AREA = "area"
    PIE = "pie"
    TABLE = "table"
    TEXT = "text"

    @property
    def is_chart(self) -> bool:
        return self in (WidgetType.LINE, WidgetType.BAR, WidgetType.AREA, WidgetType.PIE)


class Aggregate(str, enum.Enum):
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    NONE = "none"


@dataclass(frozen=True)
class DatasetColumn:
    """One output column of a dataset's query, as sqlglot derives it; `type` in Databricks SQL."""

    name: str
    type: str


@dataclass(frozen=True)
class DashboardDataset:
    name: str
    title: str
    query: str  # as written: tables as ${table}, parameters as :name
    location: Location | None = field(default=None, compare=False)
    columns: tuple[DatasetColumn, ...] = ()  # derived at validation
    parameters: tuple[str, ...] = ()  # parameter keywords the query uses, sorted

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(sorted({m.group(1) for m in REFERENCE.finditer(self.query)}))

    def column(self, name: str) -> DatasetColumn | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)


@dataclass(frozen=True)
class DashboardFilter:
    parameter: str
    type: FilterType
    title: str
    default: str | tuple[str, str]  # single_select: the value; date_range: (min, max)
    values_dataset: str | None = None
    values_field: str | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Measure:
    field: str
    agg: Aggregate = Aggregate.SUM
    title: str | None = None


@dataclass(frozen=True)
class Widget:
    name: str
    type: WidgetType
    title: str | None = None
    dataset: str | None = None
    x: str | None = None
    bin: str | None = None  # day | week | month
    y: Measure | None = None
    value: Measure | None = None
    color: str | None = None
    columns: tuple[str, ...] = ()
    format: str | None = None  # number | currency | percent
    markdown: str | None = None
    width: int | None = None
    height: int | None = None
    location: Location | None = field(default=None, compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every dataset field the widget names."""
        named = [self.x, self.color, *(m.field for m in (self.y, self.value) if m), *self.columns]
        return tuple(f for f in named if f)


@dataclass(frozen=True)
class DashboardPage:
    name: str
    title: str
    widgets: tuple[Widget, ...]


@dataclass(frozen=True)
class Dashboard:
    """Datasets (SQL over catalog tables), pages of widgets, global filters bound to parameters."""

    name: str
    title: str
    description: str
    scope: DashboardScope
    filters: tuple[DashboardFilter, ...]
    datasets: tuple[DashboardDataset, ...]
    pages: tuple[DashboardPage, ...]
    location: Location | None = field(default=None, compare=False)

    def dataset(self, name: str) -> DashboardDataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(sorted({t for d in self.datasets for t in d.tables}))

    def bound_datasets(self, parameter: str) -> tuple[DashboardDataset, ...]:
        """The datasets a filter on `parameter` binds to: those whose query uses it."""
        return tuple(d for d in self.datasets if parameter in d.parameters)


@dataclass(frozen=True)
class Project:
    """Everything validated: settings, tables in topological order, and the graph over them."""

    settings: ProjectSettings
    tables: tuple[Table, ...]  # topological order, ties broken by name
    specs_dir: str
    alerts: tuple[Alert, ...] = ()
    dashboards: tuple[Dashboard, ...] = ()

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def downstream(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(t.name for t in self.tables if name in t.upstream_tables))
