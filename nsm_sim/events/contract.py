"""The panel's data contract, checked in the query engine on the rows it reduces.

The rules of :func:`nsm_sim.data.check_frame` that a reduction depends on, each counted by
a query (examples fetched only for the warning): every row on the period grid, one row per
account and period, no gaps, churn only on an account's last row, values present, >= 0 and
below 1e15, enough accounts and periods, rows in every period, metrics that vary, some
churn and some survivors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from nsm_sim.data.cells import LEVEL_BINS
from nsm_sim.data.panel import MAX_EXAMPLES, MAX_VALUE, MIN_ACCOUNTS, MIN_PERIODS
from nsm_sim.errors import DataError
from nsm_sim.events import contract_sql as cq
from nsm_sim.events import reduce_sql as q
from nsm_sim.events import sql
from nsm_sim.spec import MetricTree


def check_rows(
    session: Any,
    tree: MetricTree,
    metrics: list[str],
    periods: list[dt.datetime],
    total: int,
    source: str,
) -> tuple[dict[str, Any], list[str]]:
    """Check the rows of :data:`reduce_sql.ROWS` against the data contract.

    Parameters
    ----------
    session : Session
    tree : MetricTree
    metrics : list of str
        The metric and value columns.
    periods : list of datetime
        The period grid.
    total : int
        Rows of the source table (those off the grid are not in the reduced rows).
    source : str

    Returns
    -------
    tuple
        The facts (``rows``, ``accounts``, ``churned``, ``alive``, ``ranges`` per metric,
        accounts per ``segments``, the North Star's first distinct values ``ns_levels``)
        and the warnings (accounts that stop early without churning).

    Raises
    ------
    DataError
        With every rule broken.
    """
    last_t = len(periods) - 1
    found = session.rows(cq.panel_facts(metrics, last_t, MAX_VALUE))[0]
    rows, accounts, churned, alive, vanished = (int(v or 0) for v in found[:5])
    ranges: dict[str, tuple[float, float]] = {}
    problems: list[str] = []
    if total > rows:
        problems.append(
            f"period: {total - rows:,} row(s) off the {tree.period}ly grid of the first period "
            f"{periods[0]:%Y-%m-%d}; expected every date on it"
        )
    for i, m in enumerate(metrics):
        low, high, missing, negative, huge = found[5 + 5 * i : 10 + 5 * i]
        ranges[m] = (low, high)
        for count, what in ((missing, "missing"), (negative, "negative"), (huge, "huge")):
            if count:
                problems.append(
                    f"{m}: {int(count):,} row(s) with a {what} value; expected a number >= 0 "
                    f"and below {MAX_VALUE:.0e} in every row"
                )
        if m in tree.metrics and missing == 0 and low == high and rows:
            problems.append(
                f"{m}: the same value ({low:g}) in all {rows:,} rows; a metric that never "
                "changes carries no information; expected values that vary"
            )
    twice, gaps = (int(v or 0) for v in session.rows(cq.account_problems())[0])
    if twice:
        problems.append(f"account_id, period: {twice:,} account(s) with duplicate rows")
    if gaps:
        problems.append(f"period: {gaps:,} account(s) with a gap inside their rows")
    early = session.rows(
        exp.select(exp.Count(this=exp.Star()))
        .from_(q.ROWS)
        .where(
            exp.and_(
                sql.col("churned").neq(exp.Literal.number(0)),
                sql.col("t") < sql.col("account_last_t"),
            )
        )
    )[0][0]
    if early:
        problems.append(f"churned: churned=1 with later rows of the same account in {early} row(s)")
    if accounts < MIN_ACCOUNTS:
        problems.append(f"account_id: only {accounts} account(s); expected at least {MIN_ACCOUNTS}")
    if len(periods) < MIN_PERIODS:
        problems.append(f"period: only {len(periods)} period(s); expected at least {MIN_PERIODS}")
    per_period = dict(session.rows(cq.rows_per_period()))
    empty = [t for t in range(len(periods)) if not per_period.get(t)]
    if empty:
        problems.append(
            f"period: {len(empty):,} period(s) without any row between the first and the last "
            f"(from {periods[empty[0]]:%Y-%m-%d}); expected rows in every period"
        )
    if rows and not churned:
        problems.append("churned: no account churns; the churn model needs churn")
    if rows and not alive:
        problems.append("churned: every account of the last period churns; none to project")
    if problems:
        raise DataError(source, problems)
    warnings = []
    if vanished:
        shown = session.rows(
            cq.examples(
                exp.and_(
                    sql.col("t").eq(sql.col("account_last_t")),
                    sql.col("t") < exp.Literal.number(last_t),
                    sql.col("churned").eq(exp.Literal.number(0)),
                ),
                MAX_EXAMPLES,
            )
        )
        named = ", ".join(f"({a}, {periods[t]:%Y-%m-%d})" for a, t in shown)
        first = f", first {MAX_EXAMPLES}" if vanished > MAX_EXAMPLES else ""
        warnings.append(
            f"churned: last row of an account that stops before the last period "
            f"{periods[-1]:%Y-%m-%d} with churned = 0 in {vanished} row(s){first} (account, "
            f"period): {named}; expected rows up to the last period while an account is a "
            "customer, and churned = 1 on its last row if it left; these accounts are taken "
            "as lost to follow-up (censored), not as churn"
        )
    ns_values = session.rows(
        q.distinct_values(q.values_of([(sql.string("ns"), sql.col(tree.north_star))]), LEVEL_BINS)
    )
    facts = {
        "rows": rows,
        "accounts": accounts,
        "churned": churned,
        "alive": alive,
        "ranges": ranges,
        "segments": dict(session.rows(cq.accounts_per_segment())),
        "ns_levels": ([v for _, v, _ in ns_values], int(ns_values[0][2]) if ns_values else 0),
    }
    segments = {s for (s,) in session.rows(exp.select(sql.col("segment")).from_(q.ROWS).distinct())}
    facts["segments"] = {s: int(facts["segments"].get(s, 0)) for s in segments}
    return facts, warnings
