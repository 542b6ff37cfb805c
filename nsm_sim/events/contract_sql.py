"""The queries that check a reduced panel against the data contract, as SQLGlot expressions.

They read :data:`~nsm_sim.events.reduce_sql.ROWS` and return one row of facts (sizes, churn,
each metric's range and bad values), the accounts per segment, the accounts with duplicate
periods or gaps, the rows per period and the first rows that break a rule, as examples for
the message. :mod:`nsm_sim.events.contract` runs them and words the errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from nsm_sim.events.reduce_sql import ROWS, _as, _count, _sum, alive_at_end, number
from nsm_sim.events.sql import col


def panel_facts(metrics: Sequence[str], last_t: int, max_value: float) -> exp.Select:
    """Select the panel's sizes, churn and, per metric, its range and its bad values.

    One row: rows, accounts, churned rows, rows alive at the last period, accounts whose
    last row is before the last period without churning, then per metric: min, max, rows
    missing, negative, and at or above ``max_value``.
    """
    last_row = col("t").eq(col("account_last_t"))
    vanished = exp.and_(
        last_row,
        col("t") < exp.Literal.number(last_t),
        col("churned").eq(exp.Literal.number(0)),
    )
    per_metric: list[exp.Expression] = []
    for m in metrics:
        value = col(m)
        per_metric += [
            exp.Min(this=value),
            exp.Max(this=value),
            _count_if(value.is_(exp.null())),
            _count_if(value < exp.Literal.number(0)),
            _count_if(value >= number(max_value)),
        ]
    return exp.select(
        _count(),
        exp.Count(this=exp.Distinct(expressions=[col("account_id")])),
        _sum(col("churned")),
        _count_if(alive_at_end(last_t)),
        _count_if(vanished),
        *per_metric,
    ).from_(ROWS)


def _count_if(condition: exp.Expression) -> exp.Expression:
    return _sum(exp.case().when(condition, exp.Literal.number(1)).else_(exp.Literal.number(0)))


def accounts_per_segment() -> exp.Select:
    """Select per segment the accounts whose last row is in it."""
    return (
        exp.select(col("segment"), _count())
        .from_(ROWS)
        .where(col("t").eq(col("account_last_t")))
        .group_by(col("segment"))
    )


def account_problems() -> exp.Select:
    """Select the accounts with two rows in a period, and those with gaps between their rows."""
    per_account = (
        exp.select(
            _as(_count(), "n"),
            _as(exp.Count(this=exp.Distinct(expressions=[col("t")])), "d"),
            _as(exp.Min(this=col("t")), "first_t"),
            _as(exp.Max(this=col("t")), "last_t"),
        )
        .from_(ROWS)
        .group_by(col("account_id"))
    )
    span = exp.Add(
        this=exp.Sub(this=col("last_t"), expression=col("first_t")),
        expression=exp.Literal.number(1),
    )
    return exp.select(_count_if(col("n").neq(col("d"))), _count_if(col("d").neq(span))).from_(
        per_account.subquery("a")
    )


def rows_per_period() -> exp.Select:
    """Select per period index its rows."""
    return exp.select(col("t"), _count()).from_(ROWS).group_by(col("t"))


def examples(condition: exp.Expression, limit: int) -> exp.Select:
    """Select ``(account_id, t)`` of the first rows meeting a condition."""
    return (
        exp.select(col("account_id"), col("t"))
        .from_(ROWS)
        .where(condition)
        .order_by(col("account_id"), col("t"))
        .limit(limit)
    )
