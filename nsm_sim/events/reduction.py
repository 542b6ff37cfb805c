"""The reduction of a panel inside the query engine: what a fit reads, and only that.

:func:`reduce_table` runs the queries of :mod:`nsm_sim.events.reduce_sql` on a table of
account-periods in a session (DuckDB or Spark) and returns the same
:class:`nsm_sim.data.Reduction` as :func:`nsm_sim.data.reduce_panel` on the rows in memory:
kilobytes come back, never the rows.

The drivers' within transformation
----------------------------------
In memory the logs are residualised on account and period effects by alternating
projections (:func:`nsm_sim.numeric.two_way_effects`). Here the same least-squares residual
comes in closed form (Frisch-Waugh-Lovell): with ``Z~`` the logs less their account means,
``b = D' Z~`` their sums per period and ``G = diag(n_p) - sum_a c_a c_a' / n_a`` (``c_a``
the periods of account ``a``), the residual cross-products are ``Z~'Z~ - b' G^+ b``. An
account's rows are consecutive periods (the data contract), so ``G`` needs only how many
accounts share each (first period, last period): a P x P matrix per segment, whatever the
number of accounts. The residuals sum to zero exactly, so ``sum_y`` and ``sum_x`` are 0
(in memory they are 0 to about 1e-12).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sqlglot import exp

from nsm_sim.data import ChurnCells, DriverStats, Population, Reduction
from nsm_sim.data.cells import LEVEL_BINS, TENURE_BANDS
from nsm_sim.data.panel import MAX_EXAMPLES, MAX_VALUE, MIN_ACCOUNTS, MIN_PERIODS
from nsm_sim.errors import DataError
from nsm_sim.events import reduce_sql as q
from nsm_sim.events import sql
from nsm_sim.events.quantiles import median_from, middle, positions, quantiles_from
from nsm_sim.spec import MetricTree

#: North Star levels per segment of the starting population (as :func:`starting_population`).
POPULATION_BINS = 20
#: Quantiles of the North Star kept for the fit's card.
CARD_QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


def reduce_table(
    session: Any, tree: MetricTree, table: str, *, source: str, within: bool = True
) -> Reduction:
    """Reduce a table of account-periods in a session to what a fit reads.

    Parameters
    ----------
    session : Session
        Runs SQLGlot statements (``run``) and queries (``rows``): DuckDB's
        (:class:`nsm_sim.events.engine.Session`) or Spark's.
    tree : MetricTree
        The tree whose metrics the table holds.
    table : str
        A table or view with ``account_id``, ``period``, the tree's segment column,
        every metric and value column, and ``churned``: the panel's data contract.
    source : str
        What the table came from (kept in the summary).
    within : bool, default True
        Driver statistics within accounts with period effects; ``False``: pooled.

    Returns
    -------
    Reduction
        Equal to :func:`nsm_sim.data.reduce_panel` of the same panel checked in memory, to
        rounding, except the fingerprint (a hash of the reduction, not of the rows) and
        ``churn_cells.row_cell`` (None).

    Raises
    ------
    DataError
        When the table breaks the data contract: rows off the period grid, two rows of an
        account in a period, gaps, churn before an account's last row, missing, negative
        or huge values, too few accounts or periods, metrics that never change, no churn,
        no survivors.
    """
    metrics = [*tree.metrics, *tree.value_columns]
    nodes = list(dict.fromkeys(n for p, kids in tree.children.items() for n in (p, *kids)))
    logged = list(dict.fromkeys([*nodes, tree.north_star]))
    first, last = session.rows(
        exp.select(
            exp.Min(this=_date(sql.col("period"))), exp.Max(this=_date(sql.col("period")))
        ).from_(table)
    )[0]
    if first is None:
        raise DataError(source, ["the panel has no rows"])
    periods = _grid(pd.Timestamp(first), pd.Timestamp(last), tree.period)
    rows = q.rows_table(table, tree.segment, metrics, logged, periods)
    session.run(sql.view(q.ROWS, rows, kind="TABLE"))
    (total,) = session.rows(exp.select(exp.Count(this=exp.Star())).from_(table))[0]
    last_t = len(periods) - 1
    facts, warnings = _check(session, tree, metrics, periods, int(total), source)
    segments = tuple(sorted(facts["segments"]))
    value_at = _order_statistics(session, tree, metrics, facts["rows"])
    ns = tree.north_star
    level = _levels(facts["rows"], value_at[ns], facts["ns_levels"], LEVEL_BINS)
    cells = _cells(session, ns, level, segments, by_period=False)
    period_cells = _cells(session, ns, level, segments, by_period=True)
    stats = _driver_stats(session, tree, nodes, segments, within)
    population = _population(session, tree, segments, last_t)
    summary = _summary(tree, facts, periods, value_at, warnings, source)
    quantiles = quantiles_from(facts["rows"], np.array(list(CARD_QUANTILES.values())), value_at[ns])
    reduction = Reduction(
        tree=tree,
        segments=segments,
        driver_stats=stats,
        churn_cells=cells,
        period_cells=period_cells,
        population=population,
        summary=summary,
        north_star_quantiles=dict(zip(CARD_QUANTILES, map(float, quantiles), strict=True)),
        source=source,
        fingerprint="",
    )
    fingerprint = reduction_fingerprint(reduction)
    summary["fingerprint"] = fingerprint
    return Reduction(**{**reduction.__dict__, "fingerprint": fingerprint})


def _date(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.Type.DATE)


def _grid(first: pd.Timestamp, last: pd.Timestamp, kind: str) -> list[dt.datetime]:
    """Return the periods from the first to the last, weekly or monthly."""
    out, k = [], 0
    while True:
        step = pd.DateOffset(weeks=k) if kind == "week" else pd.DateOffset(months=k)
        period = first + step
        if period > last:
            return out
        out.append(period.to_pydatetime())
        k += 1


# --------------------------------------------------------------------------- the checks


def _check(
    session: Any,
    tree: MetricTree,
    metrics: list[str],
    periods: list[dt.datetime],
    total: int,
    source: str,
) -> tuple[dict[str, Any], list[str]]:
    """Check the rows against the data contract; return their facts and the warnings."""
    last_t = len(periods) - 1
    found = session.rows(q.panel_facts(metrics, last_t, MAX_VALUE))[0]
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
    twice, gaps = (int(v or 0) for v in session.rows(q.account_problems())[0])
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
    per_period = dict(session.rows(q.rows_per_period()))
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
            q.examples(
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
        "segments": dict(session.rows(q.accounts_per_segment())),
        "ns_levels": ([v for _, v, _ in ns_values], int(ns_values[0][2]) if ns_values else 0),
    }
    segments = {s for (s,) in session.rows(exp.select(sql.col("segment")).from_(q.ROWS).distinct())}
    facts["segments"] = {s: int(facts["segments"].get(s, 0)) for s in segments}
    return facts, warnings


# --------------------------------------------------------------------------- quantiles


def _level_quantiles(bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, bins + 1)[1:-1]


def _order_statistics(
    session: Any, tree: MetricTree, metrics: list[str], count: int
) -> dict[str, dict[int, float]]:
    """Fetch every order statistic the quantiles, medians and level bins need, in one query."""
    ns = tree.north_star
    wanted: dict[str, set[int]] = {m: set(middle(count)) for m in metrics}
    q_all = np.r_[list(CARD_QUANTILES.values()), _level_quantiles(LEVEL_BINS)]
    below, above, _ = positions(count, q_all)
    wanted[ns] |= {int(i) for i in (*below, *above)}
    pairs = [(m, pos) for m, found in wanted.items() for pos in sorted(found)]
    values = q.values_of([(sql.string(m), sql.col(m)) for m in metrics])
    out: dict[str, dict[int, float]] = {m: {} for m in metrics}
    for part, pos, v in session.rows(q.order_statistics(values, pairs)):
        out[part][int(pos)] = float(v)
    return out


def _levels(
    count: int, value_at: dict[int, float], distinct: tuple[list, int], bins: int
) -> tuple[list[float], bool]:
    """Return the level bins' levels (exact) or quantile edges, as ``level_bins`` makes them."""
    levels, n_distinct = distinct
    if n_distinct <= bins:
        return [float(v) for v in levels], True
    return _edges(count, value_at, bins)


def _edges(count: int, value_at: dict[int, float], bins: int) -> tuple[list[float], bool]:
    edges = quantiles_from(count, _level_quantiles(bins), value_at)
    return [float(e) for e in np.unique(edges)], False


# --------------------------------------------------------------------------- cells


def _segment_labels(segments: tuple[str, ...], idx: np.ndarray) -> np.ndarray:
    return np.asarray(segments, dtype=object)[idx].astype(str)


def _cells(
    session: Any,
    metric: str,
    level: tuple[list[float], bool],
    segments: tuple[str, ...],
    *,
    by_period: bool,
) -> ChurnCells:
    """Churn cells as :func:`nsm_sim.data.churn_cells` makes them (without ``row_cell``)."""
    values, exact = level
    expression = q.level_of(sql.col(metric), values, exact)
    found = session.rows(q.cell_sums(metric, expression, TENURE_BANDS, by_period))
    keys = ["period"] if by_period else []
    keys += ["segment", "tenure_band", "level_bin"]
    sums = ["at_risk", "log_tenure", "level", "x", "churned"]
    frame = pd.DataFrame(found, columns=[*keys, *sums])
    index = {s: i for i, s in enumerate(segments)}
    frame["segment_idx"] = frame["segment"].map(index).astype(np.int64)
    order = [*(["period"] if by_period else []), "segment_idx", "tenure_band", "level_bin"]
    frame = frame.sort_values(order, ignore_index=True)
    at_risk = frame["at_risk"].to_numpy(np.int64)
    out = pd.DataFrame({k: frame[k].to_numpy(np.int64) for k in order if k != "level_bin"})
    out.insert(
        len(out.columns) - 2, "segment", _segment_labels(segments, out["segment_idx"].to_numpy())
    )
    for name in ("log_tenure", "level", "x"):
        out[name] = frame[name].to_numpy(float) / np.maximum(at_risk, 1)
    out["at_risk"] = at_risk
    out["churned"] = frame["churned"].to_numpy(np.int64)
    return ChurnCells(metric=metric, segments=segments, frame=out)


def _population(
    session: Any, tree: MetricTree, segments: tuple[str, ...], last_t: int
) -> Population:
    """Return the starting population as :func:`nsm_sim.data.starting_population` makes it."""
    ns = tree.north_star
    alive = q.alive_at_end(last_t)
    counts = dict(
        session.rows(
            exp.select(sql.col("segment"), exp.Count(this=exp.Star()))
            .from_(q.ROWS)
            .where(alive)
            .group_by(sql.col("segment"))
        )
    )
    values = q.values_of([(sql.col("segment"), sql.col(ns))], where=alive)
    distinct: dict[str, list[float]] = {}
    n_distinct: dict[str, int] = {}
    for part, v, d in session.rows(q.distinct_values(values, POPULATION_BINS)):
        distinct.setdefault(part, []).append(float(v))
        n_distinct[part] = int(d)
    wide = [s for s in counts if n_distinct[s] > POPULATION_BINS]
    wanted = []
    for s in wide:
        below, above, _ = positions(counts[s], _level_quantiles(POPULATION_BINS))
        wanted += [(s, int(i)) for i in sorted({*below, *above})]
    value_at: dict[str, dict[int, float]] = {s: {} for s in wide}
    if wanted:
        for part, pos, v in session.rows(q.order_statistics(values, wanted)):
            value_at[part][int(pos)] = float(v)
    case = exp.case()
    for s in counts:
        levels, exact = (
            _edges(counts[s], value_at[s], POPULATION_BINS)
            if s in wide
            else (sorted(distinct[s]), True)
        )
        case = case.when(
            sql.col("segment").eq(sql.string(s)), q.level_of(sql.col(ns), levels, exact)
        )
    level = case.else_(exp.Literal.number(0)) if counts else exp.Literal.number(0)
    value = tree.value if tree.value else None
    found = session.rows(q.population_sums(ns, value, level, last_t))
    frame = pd.DataFrame(
        found, columns=["segment", "level_bin", "accounts", "north_star", "tenure", "value"]
    )
    index = {s: i for i, s in enumerate(segments)}
    frame["segment_idx"] = frame["segment"].map(index).astype(np.int64)
    frame = frame.sort_values(["segment_idx", "level_bin"], ignore_index=True)
    accounts = frame["accounts"].to_numpy(np.int64)
    out = pd.DataFrame(
        {
            "segment": _segment_labels(segments, frame["segment_idx"].to_numpy()),
            "segment_idx": frame["segment_idx"].to_numpy(np.int64),
            "accounts": accounts,
        }
    )
    for name in ("north_star", "tenure", "value"):
        out[name] = frame[name].to_numpy(float) / np.maximum(accounts, 1)
    return Population(segments=segments, frame=out)


# --------------------------------------------------------------------------- drivers


def _symmetric(upper: list[float], size: int) -> np.ndarray:
    out = np.zeros((size, size))
    out[np.triu_indices(size)] = upper
    return out + np.triu(out, 1).T


def _driver_stats(
    session: Any,
    tree: MetricTree,
    nodes: list[str],
    segments: tuple[str, ...],
    within: bool,
) -> dict[str, DriverStats]:
    """Per parent node, the driver statistics of :func:`nsm_sim.data.driver_stats`."""
    V, S = len(nodes), len(segments)
    index = {s: i for i, s in enumerate(segments)}
    n = np.zeros(S, dtype=np.int64)
    absorbed = np.zeros(S, dtype=np.int64)
    sums = np.zeros((S, V))
    products = np.zeros((S, V, V))
    if within:
        session.run(sql.view(q.ACCOUNTS, q.account_sums(nodes), kind="TABLE"))
        for seg, count, *upper in session.rows(q.within_products(nodes)):
            n[index[seg]] = count
            products[index[seg]] = _symmetric(upper, V)
        per_period: dict[str, list] = {}
        for seg, t, count, *total in session.rows(q.period_sums(nodes)):
            per_period.setdefault(seg, []).append((t, count, total))
        lives: dict[str, list] = {}
        scattered = False
        for seg, first, last, rows, accounts in session.rows(q.lifetimes()):
            lives.setdefault(seg, []).append((first, last, rows, accounts))
            scattered |= rows != last - first + 1
        pairs: dict[str, list] = {}
        if scattered:
            for seg, t1, t2, weight in session.rows(q.scattered_pairs()):
                pairs.setdefault(seg, []).append((t1, t2, weight))
        for seg, s in index.items():
            if seg not in per_period:
                continue
            removed, absorbed[s] = _period_effects(per_period[seg], lives[seg], pairs.get(seg, []))
            products[s] -= removed
    else:
        for seg, count, *rest in session.rows(q.pooled_products(nodes)):
            n[index[seg]] = count
            sums[index[seg]] = rest[:V]
            products[index[seg]] = _symmetric(rest[V:], V)
    out = {}
    for parent, kids in tree.children.items():
        y, X = nodes.index(parent), [nodes.index(k) for k in kids]
        out[parent] = DriverStats(
            parent=parent,
            children=tuple(kids),
            segments=segments,
            within=within,
            n=n.copy(),
            n_absorbed=absorbed.copy(),
            sum_y=sums[:, y].copy(),
            sum_y2=products[:, y, y].copy(),
            sum_x=sums[:, X].copy(),
            XtX=products[:, X][:, :, X].copy(),
            Xty=products[:, X, y].copy(),
        )
    return out


def _period_effects(
    per_period: list[tuple[int, int, list[float]]],
    lives: list[tuple[int, int, int, int]],
    pairs: list[tuple[int, int, float]],
) -> tuple[np.ndarray, int]:
    """Return ``b' G^+ b`` (what the period effects remove) and the effects absorbed.

    ``per_period``: (t, rows, sums less account means); ``lives``: (first t, last t, rows,
    accounts) per lifetime; ``pairs``: (t1, t2, sum of 1/rows) of accounts with gaps in the
    segment.
    """
    present = sorted(t for t, _, _ in per_period)
    at = {t: i for i, t in enumerate(present)}
    P = len(present)
    b = np.zeros((P, len(per_period[0][2])))
    G = np.zeros((P, P))
    for t, count, total in per_period:
        b[at[t]] = total
        G[at[t], at[t]] = count
    shared = np.zeros((P + 1, P + 1))
    linked = np.zeros((P + 1, P + 1), dtype=np.int64)
    accounts = 0
    for first, last, rows, count in lives:
        accounts += count
        if rows != last - first + 1:
            continue
        i, j = at[first], at[last] + 1
        for grid, w in ((shared, count / rows), (linked, count)):
            grid[i, i] += w
            grid[i, j] -= w
            grid[j, i] -= w
            grid[j, j] += w
    shared = shared.cumsum(0).cumsum(1)[:P, :P]
    linked = linked.cumsum(0).cumsum(1)[:P, :P]
    for t1, t2, weight in pairs:
        shared[at[t1], at[t2]] += weight
        linked[at[t1], at[t2]] += 1
    G -= shared
    components = connected_components(csr_matrix(linked > 0), directed=False)[0]
    effects = np.linalg.lstsq(G, b, rcond=None)[0]
    return b.T @ effects, accounts + P - components


# --------------------------------------------------------------------------- summary


def _role(tree: MetricTree, metric: str) -> str:
    if metric == tree.north_star:
        return "north_star"
    if metric in tree.nodes:
        return "input"
    if metric in tree.candidates:
        return "candidate"
    return "value"


def _summary(
    tree: MetricTree,
    facts: dict[str, Any],
    periods: list[dt.datetime],
    value_at: dict[str, dict[int, float]],
    warnings: list[str],
    source: str,
) -> dict[str, Any]:
    """Return what :func:`nsm_sim.data.describe` says of the panel."""
    rows, accounts, events = facts["rows"], facts["accounts"], facts["churned"]
    metrics = {
        m: {
            "role": _role(tree, m),
            "min": float(low),
            "median": median_from(rows, value_at[m]),
            "max": float(high),
        }
        for m, (low, high) in facts["ranges"].items()
    }
    return {
        "source": source,
        "fingerprint": "",
        "rows": rows,
        "accounts": accounts,
        "periods": {
            "first": f"{periods[0]:%Y-%m-%d}",
            "last": f"{periods[-1]:%Y-%m-%d}",
            "count": len(periods),
            "kind": tree.period,
        },
        "segments": {s: int(facts["segments"][s]) for s in sorted(facts["segments"])},
        "churn": {
            "events": events,
            "account_periods": rows,
            "rate_per_period": events / rows,
            "accounts_churned": events,
            "share_of_accounts_churned": events / accounts,
            "accounts_alive_at_end": facts["alive"],
        },
        "metrics": metrics,
        "warnings": list(warnings),
    }


def reduction_fingerprint(reduction: Reduction) -> str:
    """Hash a reduction: its counts exactly, its sums to nine significant digits.

    The same data give the same hash on any engine (their sums differ in the last digits).

    Parameters
    ----------
    reduction : Reduction

    Returns
    -------
    str
        16 hexadecimal digits.
    """

    def rounded(values: Any) -> list[str]:
        return [f"{float(v):.9g}" for v in np.ravel(values)]

    summary = {k: v for k, v in reduction.summary.items() if k not in ("source", "fingerprint")}
    content: dict[str, Any] = {"summary": summary, "segments": reduction.segments}
    for parent, stats in reduction.driver_stats.items():
        content[parent] = {
            "n": stats.n.tolist(),
            "absorbed": stats.n_absorbed.tolist(),
            "sums": rounded(np.r_[stats.sum_y2, np.ravel(stats.XtX), np.ravel(stats.Xty)]),
        }
    for name, cells in (("cells", reduction.churn_cells), ("periods", reduction.period_cells)):
        content[name] = [
            cells.frame[c].tolist() for c in cells.frame.columns if cells.frame[c].dtype.kind == "i"
        ]
        content[name + "_means"] = rounded(cells.frame[["log_tenure", "level", "x"]].to_numpy())
    content["population"] = reduction.population.frame["accounts"].tolist()
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
