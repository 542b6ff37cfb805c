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
``measures`` (a table)
    one row per account and period with events: every aggregate of every metric (one
    scan, each aggregate with its own ``FILTER``);
``lifetimes``, ``grid`` (a table)
    each account's first and last period and whether it churned; one row per account
    and period while it is a customer;
``daily``, ``windowed`` (a table)
    per account and day, for metrics over a rolling window;

and the panel (a table): the grid joined with the aggregates, thresholds and ratios
applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from nsm_sim.events.filters import parse_filter
from nsm_sim.events.load import TreeDefinitions
from nsm_sim.events.schema import InactivityChurn, Measure, MetricDefinition
from nsm_sim.events.sql import (
    col,
    count_where,
    days,
    filtered,
    local_time,
    period_of,
    raw,
    step,
    string,
    timestamp,
)

#: Hidden aggregates of ``measures``: every event, and the churn rule's activity.
ALL_EVENTS = "__events"
ACTIVITY = "__activity"
FIRST_EVENT = "__first_event"
LAST_EVENT = "__last_event"


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


def _renamed(
    roles: dict[str, str | None],
    columns: dict[str, str],
    zone: str,
    times: tuple[str, ...],
    offsets: list[tuple[int, int]] | None = None,
    ids_as_text: bool = False,
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
            value = local_time(value, columns[source], zone, offsets)
            out.append(exp.alias_(col(source), raw(role), quoted=True))
        if role == "account_id" and ids_as_text:
            value = exp.cast(value, exp.DataType.Type.VARCHAR)
        out.append(exp.alias_(value, role, quoted=True))
    out += [col(c) for c in columns if c not in roles]
    return out


def events_all(
    source: exp.Expression,
    columns: dict[str, str],
    roles: dict[str, str | None],
    zone: str,
    offsets: list[tuple[int, int]] | None = None,
    ids_as_text: bool = False,
) -> exp.Select:
    """Select the event log, its role columns renamed, timestamps local to ``zone``."""
    renamed = _renamed(roles, columns, zone, ("timestamp",), offsets, ids_as_text)
    return exp.select(*renamed).from_(source)


def accounts_all(
    source: exp.Expression,
    columns: dict[str, str],
    roles: dict[str, str | None],
    zone: str,
    ids_as_text: bool = False,
) -> exp.Select:
    """Select the accounts table, its role columns renamed, dates local to ``zone``."""
    times = ("started_at", "churned_at")
    return exp.select(*_renamed(roles, columns, zone, times, None, ids_as_text)).from_(source)


def _excluded_ids(td: TreeDefinitions) -> exp.Expression | None:
    ids = td.definitions.exclude.accounts
    if not ids:
        return None
    as_text = exp.cast(col("account_id"), exp.DataType.Type.VARCHAR)
    return as_text.isin(*[string(i) for i in ids])


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
    condition = col("event").isin(*[string(e) for e in measure.event])
    if measure.where:
        condition = exp.and_(condition, exp.paren(parse_filter(measure.where)))
    return condition


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


def matched(column: str) -> str:
    """Return the name of the hidden count of the events an aggregate column matched."""
    return f"__n_{column}"


def match_counts(metrics: dict[str, MetricDefinition]) -> dict[str, str]:
    """Map each aggregate (``metric__role``) to the column of ``measures`` counting its events.

    A count is its own; a distinct count, a sum or a windowed metric has a hidden one.
    """
    return {
        f"{name}__{role}": (
            f"{name}__{role}"
            if measure.aggregate == "count" and metric.window is None
            else matched(f"{name}__{role}")
        )
        for name, metric in metrics.items()
        for role, measure in metric.measures.items()
    }


def measures(td: TreeDefinitions, bounds: Bounds, users: bool) -> exp.Select:
    """Select one row per account and period with events: every aggregate, in one scan.

    Beside the aggregates: the count of events each matched (see :func:`match_counts`),
    every event, the first and last event's time, and the churn rule's activity. Distinct
    users are counted apart, in two steps over their events only (per account, period and
    user, then per account and period): faster than ``COUNT(DISTINCT ...)`` beside the
    other aggregates.

    Parameters
    ----------
    td : TreeDefinitions
    bounds : Bounds
    users : bool
        Whether the event log has a user column.
    """
    metrics = td.definitions.metrics
    values = measure_columns(metrics)
    every = {
        f"{name}__{role}": m
        for name, metric in metrics.items()
        for role, m in metric.measures.items()
    }
    distinct = {n: m for n, m in values.items() if m.aggregate == "unique_users"} if users else {}
    wanted = {name: aggregate(m) for name, m in values.items() if name not in distinct}
    wanted |= {
        column: count_where(matches(every[key]))
        for key, column in match_counts(metrics).items()
        if column != key
    }
    wanted |= {
        ALL_EVENTS: exp.Count(this=exp.Star()),
        FIRST_EVENT: exp.Min(this=col("timestamp")),
        LAST_EVENT: exp.Max(this=col("timestamp")),
    }
    churn = td.definitions.churn
    if isinstance(churn, InactivityChurn):
        wanted[ACTIVITY] = count_where(matches(churn))
    # an aggregate wanted twice (a count that is also a ratio's numerator) is computed once
    first_of: dict[str, str] = {}
    same = {name: first_of.setdefault(value.sql(), name) for name, value in wanted.items()}
    keys = [col("account_id"), col("period")]
    in_span = col("period") >= timestamp(bounds.first_period)
    per_period = (
        exp.select(*keys)
        .select(*[exp.alias_(v, n, quoted=True) for n, v in wanted.items() if same[n] == n])
        .from_("events")
        .where(in_span)
        .group_by(*keys)
    )
    copies = [exp.alias_(col(same[n]), n, quoted=True) for n in wanted if same[n] != n]
    if copies:
        per_period = exp.select("*", *copies).from_(per_period.subquery("once"))
    if not distinct:
        return per_period
    per_user = (
        exp.select(*keys, col("user_id"))
        .select(
            *[
                exp.alias_(exp.func("bool_or", matches(m)), n, quoted=True)
                for n, m in distinct.items()
            ]
        )
        .from_("events")
        .where(in_span)
        .where(exp.not_(col("user_id").is_(exp.null())))
        .where(exp.or_(*[matches(m) for m in distinct.values()]))
        .group_by(*keys, col("user_id"))
    )
    users_per_period = (
        exp.select(*keys)
        .select(*[exp.alias_(count_where(col(n)), n, quoted=True) for n in distinct])
        .from_(per_user.subquery("per_user"))
        .group_by(*keys)
    )
    return (
        exp.select(exp.column(exp.Star(), table="m"), *[col(n, "u") for n in distinct])
        .from_(per_period.subquery("m"))
        .join(users_per_period.subquery("u"), using=["account_id", "period"], join_type="left")
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
        .where(col("event").isin(*[string(e) for e in names]))
        .group_by(col("account_id"), col("day"))
    )


def period_end_day(period: str, table: str | None = None) -> exp.Expression:
    """Return the last day of a grid row's period."""
    after = exp.Add(this=col("period", table), expression=step(period))
    return exp.cast(exp.Sub(this=after, expression=days(1)), exp.DataType.Type.DATE)


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
            start=days(metric.window - 1),
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
            expression=exp.Interval(this=string("1"), unit=exp.Var(this="MICROSECOND")),
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


#: The built panel, kept as a table of the session.
PANEL = "built_panel"


def panel(td: TreeDefinitions) -> exp.Select:
    """Select the panel: the grid with every metric, the segment and ``churned``."""
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
    return select


def sorted_panel() -> exp.Select:
    """Select the built panel (:data:`PANEL`) sorted by account and period."""
    return exp.select("*").from_(PANEL).order_by(col("account_id"), col("period"))
