"""The queries that turn an event log into the panel, built as SQLGlot expressions.

Nothing here touches a database: each function returns a SQLGlot expression (a view or a
select), so the same definitions can be printed (``--show-sql``) or run on another engine.
The views, in order:

``events_all``
    the event log with its columns renamed to their roles and its timestamps as local
    times of the calendar's zone;
``accounts_all``
    the accounts table likewise (``account_id``, ``segment``, ``started_at``,
    ``churned_at``, then its other columns);
``events_kept``, ``accounts_kept``
    without the excluded accounts and events;
``events``
    the kept events inside the observed span, with their ``period``;
``measures``
    one row per account and period with events: every aggregate of every metric (one
    scan, each aggregate with its own ``FILTER``);
``daily``, ``windowed``
    per account and day, for metrics over a rolling window;
``lifetimes``, ``grid``
    each account's first and last period and whether it churned; one row per account
    and period while it is a customer;

and the panel: the grid joined with the aggregates, thresholds and ratios applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from nsm_sim.events.filters import parse_filter
from nsm_sim.events.load import TreeDefinitions
from nsm_sim.events.schema import WEEKDAYS, InactivityChurn, Measure, MetricDefinition

#: Text timestamps that end with a zone offset (``Z``, ``+02``, ``+02:00``, ``-0500``).
OFFSET_PATTERN = r"(Z|[+-]\d\d(:?\d\d)?)$"
#: A Monday: weekly periods are counted from it (shifted to the calendar's week start).
_WEEK_ORIGIN = dt.datetime(2000, 1, 3)
#: Hidden aggregates of ``measures``: every event, and the churn rule's activity.
ALL_EVENTS = "__events"
ACTIVITY = "__activity"
_TZ_TYPE = "TIMESTAMP WITH TIME ZONE"
_NAIVE_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")


@dataclass(frozen=True)
class Bounds:
    """The span of the panel, in local time of the calendar's zone.

    Attributes
    ----------
    first_period : datetime.datetime
        Start of the first period.
    last_period : datetime.datetime
        Start of the last period.
    observed_until : datetime.datetime
        End of the data (exclusive): later events are left out, and a churn after it is
        not seen (the account is censored).
    lookback : datetime.datetime
        Earliest event a rolling window needs (``first_period`` without windows).
    """

    first_period: dt.datetime
    last_period: dt.datetime
    observed_until: dt.datetime
    lookback: dt.datetime


def col(name: str, table: str | None = None) -> exp.Column:
    """Return a quoted column reference."""
    return exp.column(name, table=table, quoted=True)


def _string(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def timestamp(value: dt.datetime) -> exp.Cast:
    """Return a ``TIMESTAMP`` literal."""
    return exp.cast(_string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)


def _days(n: int) -> exp.Interval:
    return exp.Interval(this=_string(str(n)), unit=exp.Var(this="DAY"))


def step(period: str, n: int = 1) -> exp.Interval:
    """Return the interval of ``n`` periods (weeks or months)."""
    if period == "week":
        return _days(7 * n)
    return exp.Interval(this=_string(str(n)), unit=exp.Var(this="MONTH"))


def week_origin(week_start: str) -> dt.datetime:
    """Return a day on which weekly periods start."""
    return _WEEK_ORIGIN + dt.timedelta(days=WEEKDAYS.index(week_start))


def period_of(value: exp.Expression, period: str, week_start: str) -> exp.Expression:
    """Return the start of the period holding a local timestamp."""
    if period == "week":
        return exp.DateBin(this=_days(7), expression=value, unit=timestamp(week_origin(week_start)))
    return exp.TimestampTrunc(this=value, unit=exp.Var(this="MONTH"))


def local_time(column: exp.Expression, dtype: str, zone: str) -> exp.Expression:
    """Return a column's timestamps as local times of ``zone`` (NULL where unreadable).

    Timestamps with a zone are converted; those without one are taken as local times;
    text is read as ISO 8601, converted when it ends with an offset.
    """
    naive = exp.DataType.Type.TIMESTAMP
    if dtype == _TZ_TYPE:
        return exp.Anonymous(this="timezone", expressions=[_string(zone), column])
    if dtype in _NAIVE_TYPES:
        return exp.cast(column, naive)
    aware = exp.TryCast(this=column, to=exp.DataType.build("TIMESTAMPTZ"))
    converted = exp.Anonymous(this="timezone", expressions=[_string(zone), aware])
    return (
        exp.case()
        .when(has_offset(column), converted)
        .else_(exp.TryCast(this=column, to=exp.DataType.build(naive)))
    )


def has_offset(column: exp.Expression) -> exp.Expression:
    """Return the condition that a text timestamp ends with a zone offset."""
    return exp.RegexpLike(this=column, expression=_string(OFFSET_PATTERN))


def view(name: str, select: exp.Expression) -> exp.Create:
    """Return ``CREATE OR REPLACE TEMPORARY VIEW name AS select``."""
    return exp.Create(
        this=exp.to_table(name),
        kind="VIEW",
        replace=True,
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def attach(path: str, alias: str) -> exp.Attach:
    """Return ``ATTACH 'path' AS alias (READ_ONLY)``."""
    return exp.Attach(
        this=exp.alias_(_string(path), alias),
        expressions=[exp.AttachOption(this=exp.Var(this="READ_ONLY"))],
    )


def file_reader(paths: list[str], kind: str) -> exp.Expression:
    """Return ``read_parquet([...], union_by_name = TRUE)`` (or ``read_csv``) of files."""
    named = exp.EQ(this=exp.column("union_by_name"), expression=exp.true())
    files = exp.Array(expressions=[_string(p) for p in paths])
    return exp.Anonymous(this=f"read_{kind}", expressions=[files, named])


def _renamed(
    roles: dict[str, str | None], columns: dict[str, str], zone: str, times: tuple[str, ...]
) -> list[exp.Expression]:
    """Select each role's column under the role's name, then every column under its own.

    A filter can so name a column by its role (``event``) or as the source does (``name``);
    a source column named like another role is only reachable by its role.
    """
    out: list[exp.Expression] = []
    for role, source in roles.items():
        if source is None or source not in columns:
            continue
        value: exp.Expression = col(source)
        if role in times:
            value = local_time(value, columns[source], zone)
            out.append(exp.alias_(col(source), raw(role), quoted=True))
        out.append(exp.alias_(value, role, quoted=True))
    out += [col(c) for c in columns if c not in roles]
    return out


def raw(role: str) -> str:
    """Return the name under which a time column is kept as the source wrote it."""
    return f"__raw_{role}"


def events_all(
    source: exp.Expression, columns: dict[str, str], roles: dict[str, str | None], zone: str
) -> exp.Select:
    """Select the event log, its role columns renamed, timestamps local to ``zone``."""
    return exp.select(*_renamed(roles, columns, zone, ("timestamp",))).from_(source)


def accounts_all(
    source: exp.Expression, columns: dict[str, str], roles: dict[str, str | None], zone: str
) -> exp.Select:
    """Select the accounts table, its role columns renamed, dates local to ``zone``."""
    times = ("started_at", "churned_at")
    return exp.select(*_renamed(roles, columns, zone, times)).from_(source)


def _excluded_ids(td: TreeDefinitions) -> exp.Expression | None:
    ids = td.definitions.exclude.accounts
    if not ids:
        return None
    as_text = exp.cast(col("account_id"), exp.DataType.Type.VARCHAR)
    return as_text.isin(*[_string(i) for i in ids])


def accounts_kept(td: TreeDefinitions) -> exp.Select:
    """Select the accounts left after the exclusions."""
    select = exp.select("*").from_("accounts_all")
    listed = _excluded_ids(td)
    if listed is not None:
        select = select.where(exp.not_(listed))
    where = td.definitions.exclude.accounts_where
    if where:
        select = select.where(exp.not_(exp.func("coalesce", parse_filter(where), exp.false())))
    return select


def events_kept(td: TreeDefinitions, with_accounts: bool) -> exp.Select:
    """Select the events left after the exclusions (of accounts and of events)."""
    select = exp.select("*").from_("events_all")
    listed = _excluded_ids(td)
    if listed is not None:
        select = select.where(exp.not_(listed))
    if td.definitions.exclude.accounts_where and with_accounts:
        left_out = (
            exp.select(col("account_id"))
            .from_("accounts_all")
            .except_(exp.select(col("account_id")).from_("accounts_kept"))
        )
        select = select.where(exp.not_(col("account_id").isin(query=left_out)))
    where = td.definitions.exclude.events_where
    if where:
        select = select.where(exp.not_(exp.func("coalesce", parse_filter(where), exp.false())))
    return select


def events_in_span(td: TreeDefinitions, bounds: Bounds) -> exp.Select:
    """Select the kept events from what a window needs to the end of the data, with periods."""
    cal = td.definitions.calendar
    period = period_of(col("timestamp"), td.tree.period, cal.week_start)
    return (
        exp.select("*", exp.alias_(period, "period", quoted=True))
        .from_("events_kept")
        .where(col("timestamp") >= timestamp(bounds.lookback))
        .where(col("timestamp") < timestamp(bounds.observed_until))
    )


def matches(measure: Measure | InactivityChurn) -> exp.Expression:
    """Return the condition an event meets to count in a measure."""
    condition = col("event").isin(*[_string(e) for e in measure.event])
    if measure.where:
        condition = exp.and_(condition, exp.paren(parse_filter(measure.where)))
    return condition


def filtered(value: exp.Expression, condition: exp.Expression) -> exp.Filter:
    """Return ``value FILTER (WHERE condition)``."""
    return exp.Filter(this=value, expression=exp.Where(this=condition))


def count_where(condition: exp.Expression) -> exp.Filter:
    """Return ``COUNT(*) FILTER (WHERE condition)``."""
    return filtered(exp.Count(this=exp.Star()), condition)


def aggregate(measure: Measure) -> exp.Expression:
    """Return the aggregate of a measure, filtered to its events."""
    if measure.aggregate == "count":
        value: exp.Expression = exp.Count(this=exp.Star())
    elif measure.aggregate == "unique_users":
        value = exp.Count(this=exp.Distinct(expressions=[col("user_id")]))
    else:
        value = exp.Sum(this=col(measure.column))
    return filtered(value, matches(measure))


def measure_columns(metrics: dict[str, MetricDefinition]) -> dict[str, Measure]:
    """Map each aggregate column of ``measures`` (``metric__role``) to its measure."""
    return {
        f"{name}__{role}": measure
        for name, metric in metrics.items()
        if metric.window is None
        for role, measure in metric.measures.items()
    }


def measures(td: TreeDefinitions, bounds: Bounds) -> exp.Select:
    """Select one row per account and period with events: every aggregate, in one scan."""
    columns = [
        exp.alias_(aggregate(m), name, quoted=True)
        for name, m in measure_columns(td.definitions.metrics).items()
    ]
    columns.append(exp.alias_(exp.Count(this=exp.Star()), ALL_EVENTS, quoted=True))
    churn = td.definitions.churn
    if isinstance(churn, InactivityChurn):
        columns.append(exp.alias_(count_where(matches(churn)), ACTIVITY, quoted=True))
    return (
        exp.select(col("account_id"), col("period"), *columns)
        .from_("events")
        .where(col("period") >= timestamp(bounds.first_period))
        .group_by(col("account_id"), col("period"))
    )


def windowed_metrics(td: TreeDefinitions) -> dict[str, MetricDefinition]:
    """Return the metrics that run over a rolling window."""
    return {n: m for n, m in td.definitions.metrics.items() if m.window is not None}


def daily(td: TreeDefinitions) -> exp.Select:
    """Select, per account and day, each windowed metric's aggregate."""
    windowed = windowed_metrics(td)
    names = sorted({e for m in windowed.values() for e in m.event})
    day = exp.cast(col("timestamp"), exp.DataType.Type.DATE)
    return (
        exp.select(
            col("account_id"),
            exp.alias_(day, "day", quoted=True),
            *[exp.alias_(aggregate(m.measure), n, quoted=True) for n, m in windowed.items()],
        )
        .from_("events")
        .where(col("event").isin(*[_string(e) for e in names]))
        .group_by(col("account_id"), col("day"))
    )


def period_end_day(period: str, table: str | None = None) -> exp.Expression:
    """Return the last day of a grid row's period."""
    after = exp.Add(this=col("period", table), expression=step(period))
    return exp.cast(exp.Sub(this=after, expression=_days(1)), exp.DataType.Type.DATE)


def windowed(td: TreeDefinitions) -> exp.Select:
    """Select, per grid row, each windowed metric over the days ending on its period's last day."""
    metrics = windowed_metrics(td)
    event_days = exp.select(
        col("account_id"),
        col("day"),
        exp.alias_(exp.false(), "at_end", quoted=True),
        *[col(n) for n in metrics],
    ).from_("daily")
    period_ends = exp.select(
        col("account_id"),
        exp.alias_(period_end_day(td.tree.period), "day", quoted=True),
        exp.alias_(exp.true(), "at_end", quoted=True),
        *[exp.alias_(exp.Literal.number(0), n, quoted=True) for n in metrics],
    ).from_("grid")
    rolling = []
    for name, metric in metrics.items():
        frame = exp.WindowSpec(
            kind="RANGE",
            start=_days(metric.window - 1),
            start_side="PRECEDING",
            end="CURRENT ROW",
        )
        over = exp.Window(
            this=exp.Sum(this=col(name)),
            partition_by=[col("account_id")],
            order=exp.Order(expressions=[exp.Ordered(this=col("day"))]),
            spec=frame,
        )
        rolling.append(exp.alias_(over, name, quoted=True))
    union = exp.union(event_days, period_ends, distinct=False).subquery("days")
    return exp.select(col("account_id"), col("day"), *rolling).from_(union).qualify(col("at_end"))


def lifetimes(td: TreeDefinitions, bounds: Bounds, with_accounts: bool) -> exp.Select:
    """Select each account's first and last period, its segment, and whether it churned."""
    tree, defs = td.tree, td.definitions
    week_start = defs.calendar.week_start
    seen = [col("account_id"), exp.alias_(exp.Min(this=col("period")), "first_seen", quoted=True)]
    if isinstance(defs.churn, InactivityChurn):
        active = filtered(exp.Max(this=col("period")), col(ACTIVITY) > exp.Literal.number(0))
        seen.append(exp.alias_(active, "last_active", quoted=True))
    first_seen = exp.select(*seen).from_("measures").group_by(col("account_id")).subquery("seen")
    if with_accounts:
        base = exp.select("*").from_("accounts_kept").subquery("a")
        start_at = (
            period_of(col("started_at", "a"), tree.period, week_start)
            if defs.source.account_columns.started_at
            else exp.null()
        )
        segment = col("segment", "a") if tree.segment else exp.null()
        churned_at = col("churned_at", "a") if defs.source.account_columns.churned_at else None
    else:
        base = exp.select(col("account_id")).from_("measures").distinct().subquery("a")
        start_at, segment, churned_at = exp.null(), exp.null(), None
    first = timestamp(bounds.first_period)
    last = timestamp(bounds.last_period)
    start = exp.func("greatest", exp.func("coalesce", start_at, col("first_seen", "seen")), first)
    if isinstance(defs.churn, InactivityChurn):
        reference = exp.func("coalesce", col("last_active", "seen"), start)
        reached = exp.Add(this=reference, expression=step(tree.period, defs.churn.periods))
        churned: exp.Expression = reached <= last
        end_if_churned: exp.Expression = reference
    else:
        observed = timestamp(bounds.observed_until)
        churned = exp.and_(churned_at.is_(exp.null()).not_(), churned_at <= observed)
        before = exp.Sub(
            this=churned_at,
            expression=exp.Interval(this=_string("1"), unit=exp.Var(this="MICROSECOND")),
        )
        end_if_churned = period_of(before, tree.period, week_start)
    churned = exp.func("coalesce", churned, exp.false())
    end = exp.case().when(churned, end_if_churned).else_(last)
    return (
        exp.select(
            col("account_id", "a"),
            exp.alias_(segment, "segment", quoted=True),
            exp.alias_(start, "first_period", quoted=True),
            exp.alias_(end, "last_period", quoted=True),
            exp.alias_(churned, "churned", quoted=True),
        )
        .from_(base)
        .join(first_seen, join_type="left", using=["account_id"])
    )


def grid(period: str) -> exp.Select:
    """Select one row per account and period from its first to its last period."""
    series = exp.GenerateSeries(
        start=col("first_period"), end=col("last_period"), step=step(period)
    )
    return (
        exp.select(
            col("account_id"),
            col("segment"),
            exp.alias_(exp.Explode(this=series), "period", quoted=True),
            col("last_period"),
            col("churned"),
        )
        .from_("lifetimes")
        .where(col("first_period") <= col("last_period"))
    )


def _metric_value(name: str, metric: MetricDefinition) -> exp.Expression:
    zero = exp.Literal.number(0)
    if metric.window is not None:
        value: exp.Expression = exp.func("coalesce", col(name, "w"), zero)
    elif metric.measure is not None:
        value = exp.func("coalesce", col(f"{name}__value", "m"), zero)
    else:
        numerator = exp.func("coalesce", col(f"{name}__numerator", "m"), zero)
        denominator = exp.func("coalesce", col(f"{name}__denominator", "m"), zero)
        as_double = exp.cast(numerator, exp.DataType.Type.DOUBLE)
        value = exp.Div(this=as_double, expression=exp.func("nullif", denominator, zero))
        if metric.zero_denominator == "zero":
            value = exp.func("coalesce", value, zero)
    if metric.at_least is not None:
        value = exp.case().when(value >= exp.Literal.number(metric.at_least), exp.Literal.number(1))
        value = value.else_(zero)
    return exp.cast(value, exp.DataType.Type.DOUBLE)


def panel(td: TreeDefinitions) -> exp.Select:
    """Select the panel: the grid with every metric, the segment and ``churned``, sorted."""
    tree, metrics = td.tree, td.definitions.metrics
    columns: list[exp.Expression] = [
        col("account_id", "g"),
        exp.alias_(exp.cast(col("period", "g"), exp.DataType.Type.DATE), "period", quoted=True),
    ]
    if tree.segment:
        columns.append(exp.alias_(col("segment", "g"), tree.segment, quoted=True))
    for name in (*tree.metrics, *tree.value_columns):
        columns.append(exp.alias_(_metric_value(name, metrics[name]), name, quoted=True))
    last_row = exp.and_(col("period", "g").eq(col("last_period", "g")), col("churned", "g"))
    churned = exp.case().when(last_row, exp.Literal.number(1)).else_(exp.Literal.number(0))
    columns.append(exp.alias_(churned, "churned", quoted=True))
    select = (
        exp.select(*columns)
        .from_(exp.to_table("grid").as_("g"))
        .join(
            exp.to_table("measures").as_("m"),
            on=exp.and_(
                col("account_id", "g").eq(col("account_id", "m")),
                col("period", "g").eq(col("period", "m")),
            ),
            join_type="left",
        )
    )
    if windowed_metrics(td):
        select = select.join(
            exp.to_table("windowed").as_("w"),
            on=exp.and_(
                col("account_id", "g").eq(col("account_id", "w")),
                period_end_day(tree.period, "g").eq(col("day", "w")),
            ),
            join_type="left",
        )
    return select.order_by(col("account_id", "g"), col("period", "g"))
