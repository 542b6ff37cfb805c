"""The queries behind the drivers' sufficient statistics, built as SQLGlot expressions.

They read :data:`~nsm_sim.events.reduce_sql.ROWS` and the per-account sums
(:data:`~nsm_sim.events.reduce_sql.ACCOUNTS`, from :func:`account_sums`) and return, per
segment, the cross-products of the logs less their account means, the same sums per period,
the accounts per lifetime and, for accounts whose rows are not consecutive, the pairs of
periods they share; or, for the pooled variant, the raw sums and cross-products.
:mod:`nsm_sim.events.within` runs them and finishes the two-way demeaning in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from nsm_sim.events.reduce_sql import ACCOUNTS, ROWS, _as, _count, _double, _sum, log_column
from nsm_sim.events.sql import col


def account_sums(nodes: Sequence[str]) -> exp.Select:
    """Select per segment and account: rows, first and last period, the sums of the logs."""
    return (
        exp.select(
            col("segment"),
            col("account_id"),
            _as(_count(), "n"),
            _as(exp.Min(this=col("t")), "first_t"),
            _as(exp.Max(this=col("t")), "last_t"),
            *[_as(_sum(col(log_column(v))), log_column(v)) for v in nodes],
            copy=False,
        )
        .from_(exp.to_table(ROWS), copy=False)
        .group_by(col("segment"), col("account_id"), copy=False)
    )


def _centered(nodes: Sequence[str]) -> exp.Select:
    """Select each row's logs less its account's mean (within its segment)."""
    centered = [
        _as(
            exp.Sub(
                this=col(log_column(v), "r"),
                expression=exp.Div(this=col(log_column(v), "a"), expression=col("n", "a")),
            ),
            log_column(v),
        )
        for v in nodes
    ]
    return (
        exp.select(col("segment", "r"), col("t", "r"), *centered, copy=False)
        .from_(exp.to_table(ROWS).as_("r"), copy=False)
        .join(
            exp.to_table(ACCOUNTS).as_("a"),
            on=exp.and_(
                col("segment", "r").eq(col("segment", "a")),
                col("account_id", "r").eq(col("account_id", "a")),
                copy=False,
            ),
            copy=False,
        )
    )


def _products(nodes: Sequence[str]) -> list[exp.Expression]:
    return [
        _sum(exp.Mul(this=col(log_column(a)), expression=col(log_column(b))))
        for i, a in enumerate(nodes)
        for b in nodes[i:]
    ]


def within_products(nodes: Sequence[str]) -> exp.Select:
    """Select per segment: rows and the cross-products of the logs less their account means.

    The products are the upper triangle of the ``nodes`` x ``nodes`` matrix, row by row.
    """
    return (
        exp.select(col("segment"), _count(), *_products(nodes), copy=False)
        .from_(_centered(nodes).subquery("c", copy=False), copy=False)
        .group_by(col("segment"), copy=False)
    )


def period_sums(nodes: Sequence[str]) -> exp.Select:
    """Select per segment and period: rows and the sums of the logs less their account means."""
    return (
        exp.select(
            col("segment"),
            col("t"),
            _count(),
            *[_sum(col(log_column(v))) for v in nodes],
            copy=False,
        )
        .from_(_centered(nodes).subquery("c", copy=False), copy=False)
        .group_by(col("segment"), col("t"), copy=False)
    )


def lifetimes() -> exp.Select:
    """Select per segment and (first, last, rows): the accounts with that lifetime."""
    keys = [col("segment"), col("first_t"), col("last_t"), col("n")]
    return exp.select(*keys, _count()).from_(ACCOUNTS).group_by(*keys)


def scattered_pairs() -> exp.Select:
    """Select per segment and pair of periods the sum of ``1 / rows`` over the accounts in both.

    Only for accounts whose rows in a segment are not consecutive periods (an account that
    moves between segments and back); the others are counted by :func:`lifetimes`.
    """
    scattered = exp.select(col("segment"), col("account_id"), col("n")).from_(ACCOUNTS)
    scattered = scattered.where(
        col("n").neq(
            exp.Add(
                this=exp.Sub(this=col("last_t"), expression=col("first_t")),
                expression=exp.Literal.number(1),
            )
        )
    )
    same = [
        col("segment", "r").eq(col("segment", "a")),
        col("account_id", "r").eq(col("account_id", "a")),
    ]
    other = [
        col("segment", "o").eq(col("segment", "a")),
        col("account_id", "o").eq(col("account_id", "a")),
    ]
    return (
        exp.select(
            col("segment", "a"),
            _as(col("t", "r"), "t1"),
            _as(col("t", "o"), "t2"),
            _sum(exp.Div(this=exp.Literal.number("1.0"), expression=_double(col("n", "a")))),
        )
        .from_(scattered.subquery("a"))
        .join(exp.to_table(ROWS).as_("r"), on=exp.and_(*same))
        .join(exp.to_table(ROWS).as_("o"), on=exp.and_(*other))
        .group_by(col("segment", "a"), col("t", "r"), col("t", "o"))
    )


def pooled_products(nodes: Sequence[str]) -> exp.Select:
    """Select per segment: rows, the sums of the logs and their cross-products (raw)."""
    return (
        exp.select(
            col("segment"),
            _count(),
            *[_sum(col(log_column(v))) for v in nodes],
            *_products(nodes),
            copy=False,
        )
        .from_(exp.to_table(ROWS), copy=False)
        .group_by(col("segment"), copy=False)
    )
