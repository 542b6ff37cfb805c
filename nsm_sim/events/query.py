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
and then, in :mod:`nsm_sim.events.panel_query`, the views from ``measures`` to the panel
(lifetimes, the grid of account-periods, windowed metrics, the panel itself).
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
    filtered,
    local_time,
    period_of,
    raw,
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
