"""The queries from the per-period aggregates to the panel, built as SQLGlot expressions.

They follow the views of :mod:`nsm_sim.events.query` (``measures`` above all):

``lifetimes``, ``grid`` (a table)
    each account's first and last period and whether it churned; one row per account
    and period while it is a customer;
``daily``, ``windowed`` (a table)
    per account and day, for metrics over a rolling window;

and the panel (a table, :data:`PANEL`): the grid joined with the aggregates, thresholds and
ratios applied.
"""

from __future__ import annotations

from sqlglot import exp

from nsm_sim.events.load import TreeDefinitions
from nsm_sim.events.query import ACTIVITY, Bounds, aggregate
from nsm_sim.events.schema import InactivityChurn, MetricDefinition
from nsm_sim.events.sql import (
    col,
    days,
    filtered,
    period_of,
    step,
    string,
    timestamp,
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
