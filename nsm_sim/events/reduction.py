"""The reduction of a panel inside the query engine: what a fit reads, and only that.

:func:`reduce_table` runs the queries of :mod:`nsm_sim.events.reduce_sql` on a table of
account-periods in a session (DuckDB or Spark) and returns the same
:class:`nsm_sim.data.Reduction` as :func:`nsm_sim.data.reduce_panel` on the rows in memory:
kilobytes come back, never the rows. :func:`reduce_events` builds the panel of a tree
file's events in the engine first (:func:`nsm_sim.events.engine.prepare`);
:func:`reduce_panel_file` reads a panel's files. The drivers' statistics are
:mod:`nsm_sim.events.within`'s, the data contract :mod:`nsm_sim.events.contract`'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlglot import exp

from nsm_sim.data import (
    NORTH_STAR_MAX,
    NORTH_STAR_MIN,
    ChurnCells,
    Population,
    Reduction,
    share_column,
)
from nsm_sim.data.cells import LEVEL_BINS, tenure_edges
from nsm_sim.errors import DataError, hint
from nsm_sim.events import panel_query, sql
from nsm_sim.events import reduce_sql as q
from nsm_sim.events.contract import check_rows
from nsm_sim.events.engine import MEMORY_LIMIT, built_source, open_session, prepare, reader_of
from nsm_sim.events.load import TreeDefinitions, load_definitions
from nsm_sim.events.quantiles import median_from, middle, positions, quantiles_from
from nsm_sim.events.within import driver_stats
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
    facts, warnings = check_rows(session, tree, metrics, periods, int(total), source)
    segments = tuple(sorted(facts["segments"]))
    value_at = _order_statistics(session, tree, metrics, facts["rows"])
    ns = tree.north_star
    level = _levels(facts["rows"], value_at[ns], facts["ns_levels"], LEVEL_BINS)
    edges = tenure_edges(last_t)
    cells = _cells(session, ns, level, segments, edges, by_period=False)
    period_cells = _cells(session, ns, level, segments, edges, by_period=True)
    stats = driver_stats(session, tree, nodes, segments, within)
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
    return dataclasses.replace(reduction, fingerprint=fingerprint)


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
    edges: np.ndarray,
    *,
    by_period: bool,
) -> ChurnCells:
    """Churn cells as :func:`nsm_sim.data.churn_cells` makes them (without ``row_cell``)."""
    values, exact = level
    expression = q.level_of(sql.col(metric), values, exact)
    found = session.rows(q.cell_sums(metric, expression, by_period, [int(e) for e in edges]))
    keys = ["period"] if by_period else []
    keys += ["segment", "tenure_band", "level_bin"]
    sums = ["at_risk", "level", "x", "log_tenure", "churned"]
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
            sql.col("segment").eq(sql.string(s)),
            q.level_of(sql.col(ns), levels, exact),
            copy=False,
        )
    level = case.else_(exp.Literal.number(0), copy=False) if counts else exp.Literal.number(0)
    value = tree.value if tree.value else None
    nodes = [n for n in tree.nodes if n != ns]
    found = session.rows(q.population_sums(ns, value, level, last_t, nodes))
    sums = ["accounts", "north_star", "tenure", "value", "min", "max", "weight"]
    frame = pd.DataFrame(found, columns=["segment", "level_bin", *sums, *nodes])
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
    out[NORTH_STAR_MIN] = frame["min"].to_numpy(float)
    out[NORTH_STAR_MAX] = frame["max"].to_numpy(float)
    for node in nodes:
        out[share_column(node)] = frame[node].to_numpy(float) / frame["weight"].to_numpy(float)
    return Population(segments=segments, frame=out)


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
    """Hash a reduction: its counts, levels and order statistics exactly, its sums rounded.

    Engines add in different orders, so their sums differ in the last digits (about 1e-12
    relative); rounded to 20 significant bits (about six digits; binary, so that means of
    decimal amounts do not fall on the boundaries) and the per-period cells by their counts
    only, the same data give the same hash on DuckDB and on Spark but for a sum within
    1e-12 of a rounding boundary (about one reduction in a thousand).

    Parameters
    ----------
    reduction : Reduction

    Returns
    -------
    str
        16 hexadecimal digits.
    """

    def rounded(values: Any) -> list[int]:
        mantissa, exponent = np.frexp(np.ravel(np.asarray(values, dtype=float)))
        return np.rint(mantissa * 2**20).astype(np.int64).tolist() + exponent.tolist()

    def integers(frame: pd.DataFrame) -> list[list[int]]:
        return [frame[c].tolist() for c in frame.columns if frame[c].dtype.kind == "i"]

    summary = {k: v for k, v in reduction.summary.items() if k not in ("source", "fingerprint")}
    content: dict[str, Any] = {"summary": summary, "segments": reduction.segments}
    for parent, stats in reduction.driver_stats.items():
        content[parent] = {
            "n": stats.n.tolist(),
            "absorbed": stats.n_absorbed.tolist(),
            "sums": rounded(np.r_[stats.sum_y2, np.ravel(stats.XtX), np.ravel(stats.Xty)]),
        }
    cells = reduction.churn_cells.frame
    content["cells"] = integers(cells)
    content["cell_means"] = rounded(cells[["log_tenure", "level", "x"]].to_numpy())
    content["periods"] = integers(reduction.period_cells.frame)
    population = reduction.population.frame
    content["population"] = integers(population)
    content["population_means"] = rounded(population[["north_star", "tenure", "value"]])
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def reduce_events(
    tree: str | Path | TreeDefinitions,
    *,
    within: bool = True,
    engine: str = "duckdb",
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
) -> Reduction:
    """Build the panel of a tree file's events and reduce it, all in the engine.

    The build is :func:`build_panel`'s (every check of the source included); the panel
    stays in the engine and :func:`nsm_sim.events.reduction.reduce_table` reduces it, so
    only the reduction (kilobytes) comes back.

    Parameters
    ----------
    tree : str, Path or TreeDefinitions
        A tree file with ``source`` and ``metrics``.
    within : bool, default True
        Driver statistics within accounts with period effects; ``False``: pooled.
    engine, memory_limit, threads
        As for :func:`build_panel`.

    Returns
    -------
    Reduction
        What :func:`nsm_sim.data.reduce_panel` returns for the built panel.
    """
    td = tree if isinstance(tree, TreeDefinitions) else load_definitions(tree)
    with open_session(engine, str(td.path), memory_limit, threads) as session:
        prepare(session, td)
        source = built_source(td)
        return reduce_table(session, td.tree, panel_query.PANEL, source=source, within=within)


def reduce_panel_file(
    data: str | Path,
    tree: MetricTree,
    *,
    within: bool = True,
    engine: str = "duckdb",
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
) -> Reduction:
    """Reduce a panel file (or files: a glob, or a lake's URIs on Spark) in the engine.

    Parameters
    ----------
    data : str or Path
        Parquet or CSV files of the panel's data contract (see :mod:`nsm_sim.data.panel`).
    tree : MetricTree
        The tree the panel holds the metrics of.
    within, engine, memory_limit, threads
        As for :func:`reduce_events`.

    Returns
    -------
    Reduction

    Raises
    ------
    DataError
        When a column is missing, or the rows break the data contract.
    """
    source = str(data)
    with open_session(engine, source, memory_limit, threads) as session:
        reader, types = reader_of(session, str(data), Path.cwd(), "--data", "panel_db", source)
        wanted = ["account_id", "period", *([tree.segment] if tree.segment else [])]
        wanted += [*tree.metrics, *tree.value_columns, "churned"]
        missing = [c for c in wanted if c not in types]
        if missing:
            raise DataError(
                source,
                [f"{c}: missing column{hint(c, list(types))}" for c in missing],
            )
        session.run(sql.view("panel_source", exp.select("*").from_(reader)))
        return reduce_table(session, tree, "panel_source", source=source, within=within)
