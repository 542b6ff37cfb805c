"""The queries that reduce a panel inside the query engine, built as SQLGlot expressions.

They read a table of account-periods (:data:`ROWS`: ``account_id``, ``segment``, ``t``,
``tenure``, ``churned``, each metric as a double and ``log1p`` of the tree's nodes) and
return kilobytes. This module holds the tables, the expression building blocks, the query
that selects the rows, the sums per churn cell and per starting-population cell, and the few
order statistics the quantiles need; :mod:`nsm_sim.events.reduction` runs them and finishes
the sums in numpy. The drivers' sums within accounts are in :mod:`nsm_sim.events.within_sql`,
the checks of the data contract in :mod:`nsm_sim.events.contract_sql`.

Like :mod:`nsm_sim.events.query`, nothing here touches a database, so the same expressions
run on DuckDB and, transpiled, on Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from nsm_sim.events.sql import col, string

#: The account-periods to reduce, and their sums per account (tables of the session).
ROWS = "reduced_rows"
ACCOUNTS = "reduced_accounts"


def log_column(name: str) -> str:
    """Return the column of :data:`ROWS` holding ``log1p`` of a metric."""
    return f"__log__{name}"


def number(value: float | int) -> exp.Expression:
    """Return a number literal that reads back as exactly ``value`` (a double via text)."""
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.cast(string(repr(float(value))), exp.DataType.Type.DOUBLE)


def _log1p(value: exp.Expression) -> exp.Expression:
    return exp.Ln(this=exp.Add(this=exp.Literal.number(1), expression=value))


def _sum(value: exp.Expression) -> exp.Expression:
    return exp.Sum(this=value)


def _count() -> exp.Expression:
    return exp.Count(this=exp.Star())


def _as(value: exp.Expression, name: str) -> exp.Expression:
    """Alias a value built for this one place (not copied)."""
    return exp.alias_(value, name, quoted=True, copy=False)


def _double(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.Type.DOUBLE)


def period_table(periods: Sequence[dt.datetime]) -> exp.Expression:
    """Return an inline table ``(period DATE, t INT)`` of the panel's periods in order."""
    rows = [
        exp.Tuple(
            expressions=[
                exp.cast(string(f"{p:%Y-%m-%d}"), exp.DataType.Type.DATE),
                exp.Literal.number(t),
            ]
        )
        for t, p in enumerate(periods)
    ]
    return exp.Values(
        expressions=rows,
        alias=exp.TableAlias(
            this=exp.to_identifier("k"),
            columns=[exp.to_identifier("period"), exp.to_identifier("t")],
        ),
    )


def rows_table(
    source: str,
    segment: str | None,
    metrics: Sequence[str],
    logged: Sequence[str],
    periods: Sequence[dt.datetime],
) -> exp.Select:
    """Select the account-periods of a panel table with their period index and tenure.

    Parameters
    ----------
    source : str
        The panel table (``account_id``, ``period``, the segment column, the metrics,
        ``churned``).
    segment : str or None
        Its segment column (all rows in segment ``all`` without one).
    metrics : sequence of str
        The metric and value columns, read as doubles.
    logged : sequence of str
        The metrics also kept as ``log1p`` (:func:`log_column`).
    periods : sequence of datetime
        The period grid: a row's ``t`` is its period's index in it (rows off it are dropped,
        and found by :func:`panel_facts`).
    """
    seg = exp.cast(col(segment, "p"), exp.DataType.Type.VARCHAR) if segment else string("all")
    first = exp.Window(this=exp.Min(this=col("t", "k")), partition_by=[col("account_id", "p")])
    last = exp.Window(this=exp.Max(this=col("t", "k")), partition_by=[col("account_id", "p")])
    values = [_as(_double(col(m, "p")), m) for m in metrics]
    logs = [_as(_log1p(_double(col(m, "p"))), log_column(m)) for m in logged]
    return (
        exp.select(
            col("account_id", "p"),
            _as(seg, "segment"),
            col("t", "k"),
            _as(exp.Sub(this=col("t", "k"), expression=first), "tenure"),
            _as(last, "account_last_t"),
            _as(exp.cast(col("churned", "p"), exp.DataType.Type.INT), "churned"),
            *values,
            *logs,
            copy=False,
        )
        .from_(exp.to_table(source).as_("p"), copy=False)
        .join(
            exp.Subquery(this=exp.select(exp.Star()).from_(period_table(periods)), alias="k"),
            on=exp.cast(col("period", "p"), exp.DataType.Type.DATE).eq(col("period", "k")),
            copy=False,
        )
    )


def _indicator_sum(conditions: list[exp.Expression]) -> exp.Expression:
    if not conditions:
        return exp.Literal.number(0)
    terms = [
        exp.case()
        .when(c, exp.Literal.number(1), copy=False)
        .else_(exp.Literal.number(0), copy=False)
        for c in conditions
    ]
    total = terms[0]
    for term in terms[1:]:
        total = exp.Add(this=total, expression=term)
    return exp.Paren(this=total)


def level_of(value: exp.Expression, levels: Sequence[float], exact: bool) -> exp.Expression:
    """Return a row's level bin, as :func:`nsm_sim.data.level_bins` computes it.

    ``exact``: the index of the value among the distinct ``levels``; else the number of
    quantile edges ``levels`` at or below the value.
    """
    if exact:
        return _indicator_sum([value > number(v) for v in levels])
    return _indicator_sum([value >= number(v) for v in levels])


def tenure_group(edges: Sequence[int]) -> exp.Expression:
    """Return a row's tenure group, its first tenure, as :func:`nsm_sim.data.churn_cells` does.

    ``edges`` are :func:`nsm_sim.data.cells.tenure_edges`: the first tenure of each group.
    """
    case = exp.case()
    for edge in sorted(edges, reverse=True)[:-1]:
        case = case.when(
            col("tenure") >= exp.Literal.number(int(edge)),
            exp.Literal.number(int(edge)),
            copy=False,
        )
    return case.else_(exp.Literal.number(0), copy=False)


def cell_sums(
    metric: str, level: exp.Expression, by_period: bool, tenure_edges: Sequence[int]
) -> exp.Select:
    """Select the churn cells' sums: per (period,) segment, tenure group and level bin.

    After the keys: the rows, the sums of the metric, of its ``log1p``, of ``log1p(tenure)``
    and of the churn events.
    """
    keys = [_as(col("t"), "period")] if by_period else []
    keys += [
        col("segment"),
        _as(tenure_group(tenure_edges), "tenure_band"),
        _as(level, "level_bin"),
    ]
    grouped = [exp.Literal.number(i + 1) for i in range(len(keys))]
    return (
        exp.select(
            *keys,
            _count(),
            _sum(col(metric)),
            _sum(col(log_column(metric))),
            _sum(_log1p(_double(col("tenure")))),
            _sum(col("churned")),
            copy=False,
        )
        .from_(exp.to_table(ROWS), copy=False)
        .group_by(*grouped, copy=False)
    )


def alive_at_end(last_t: int) -> exp.Expression:
    """Return the condition of a row of an account alive at the last period."""
    return exp.and_(
        col("t").eq(exp.Literal.number(last_t)), col("churned").eq(exp.Literal.number(0))
    )


def population_sums(
    north_star: str,
    value: str | None,
    level: exp.Expression,
    last_t: int,
    nodes: Sequence[str] = (),
) -> exp.Select:
    """Select the starting population's sums: per segment and North Star level bin.

    After the count and the sums of the North Star, tenure and value: the lowest and highest
    North Star, the sum of ``1 + N`` and, per node, of ``(1 + N) x / (1 + x)`` (the levels
    of :func:`nsm_sim.data.level_columns`).
    """
    worth = col(value) if value else exp.Literal.number(0)

    def one_plus(name: str) -> exp.Expression:
        return exp.Paren(this=exp.Add(this=exp.Literal.number(1), expression=_double(col(name))))

    shares = [
        _sum(
            exp.Div(
                this=exp.Mul(this=one_plus(north_star), expression=_double(col(node))),
                expression=one_plus(node),
            )
        )
        for node in nodes
    ]
    return (
        exp.select(
            col("segment"),
            _as(level, "level_bin"),
            _count(),
            _sum(col(north_star)),
            _sum(_double(col("tenure"))),
            _sum(_double(worth)),
            exp.Min(this=_double(col(north_star))),
            exp.Max(this=_double(col(north_star))),
            _sum(one_plus(north_star)),
            *shares,
            copy=False,
        )
        .from_(exp.to_table(ROWS), copy=False)
        .where(alive_at_end(last_t), copy=False)
        .group_by(exp.Literal.number(1), exp.Literal.number(2), copy=False)
    )


def values_of(
    parts: Sequence[tuple[exp.Expression, exp.Expression]], where: exp.Expression | None = None
) -> exp.Expression:
    """Select ``(part, v)`` over the rows: for each ``(part, value)`` pair, one after another.

    A part is a label (a string literal) or a column (the segment, say).
    """
    selects = []
    for part, value in parts:
        select = exp.select(_as(part, "part"), _as(_double(value), "v"))
        select = select.from_(exp.to_table(ROWS), copy=False)
        if where is not None:
            select = select.where(where)  # copied: one condition for every part
        selects.append(select)
    union: exp.Expression = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False, copy=False)
    return union


def distinct_values(values: exp.Expression, limit: int) -> exp.Select:
    """Select per part its smallest ``limit`` distinct values and how many there are.

    Rows ``(part, v, distinct)``: ``distinct`` is the part's number of distinct values.
    """
    # ``values`` is the caller's (it may be queried again): copied into the subquery
    per_value = (
        exp.select(col("part"), col("v"))
        .from_(values.subquery("x"), copy=False)
        .group_by(col("part"), exp.column("v"), copy=False)
    )
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col("part")],
        order=exp.Order(expressions=[exp.Ordered(this=col("v"))]),
    )
    total = exp.Window(this=_count(), partition_by=[col("part")])
    ranked = exp.select(col("part"), col("v"), _as(rank, "k"), _as(total, "distinct")).from_(
        per_value.subquery("d", copy=False), copy=False
    )
    return (
        exp.select(col("part"), col("v"), col("distinct"))
        .from_(ranked.subquery("r", copy=False), copy=False)
        .where(col("k") <= exp.Literal.number(limit), copy=False)
    )


def order_statistics(values: exp.Expression, wanted: Sequence[tuple[str, int]]) -> exp.Select:
    """Select the value at each wanted sorted position of each part: rows ``(part, pos, v)``.

    The values are counted per distinct value and accumulated in order (one pass and a sort
    of the distinct values, not of the rows).
    """
    # ``values`` is the caller's (it may be queried again): copied into the subquery
    per_value = (
        exp.select(col("part"), col("v"), _as(_count(), "c"))
        .from_(values.subquery("x"), copy=False)
        .group_by(col("part"), col("v"), copy=False)
    )
    running = exp.Window(
        this=exp.Sum(this=col("c")),
        partition_by=[col("part")],
        order=exp.Order(expressions=[exp.Ordered(this=col("v"))]),
        spec=exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        ),
    )
    cumulative = exp.select(col("part"), col("v"), col("c"), _as(running, "upto")).from_(
        per_value.subquery("d", copy=False), copy=False
    )
    table = exp.Values(
        expressions=[
            exp.Tuple(expressions=[string(part), exp.Literal.number(pos)]) for part, pos in wanted
        ],
        alias=exp.TableAlias(
            this=exp.to_identifier("w"),
            columns=[exp.to_identifier("part"), exp.to_identifier("pos")],
        ),
    )
    return (
        exp.select(col("part", "w"), col("pos", "w"), col("v", "s"))
        .from_(exp.Subquery(this=exp.select(exp.Star()).from_(table), alias="w"), copy=False)
        .join(
            cumulative.subquery("s", copy=False),
            on=exp.and_(
                col("part", "s").eq(col("part", "w")),
                col("pos", "w") >= exp.Sub(this=col("upto", "s"), expression=col("c", "s")),
                col("pos", "w") < col("upto", "s"),
                copy=False,
            ),
            copy=False,
        )
    )
