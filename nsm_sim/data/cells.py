"""Churn cells: account-periods reduced to Binomial cells (segment x tenure x level).

One reducer serves every churn model: the fit's retention hazard, the validation's fits of
each metric (and their per-account log-likelihoods, through the row -> cell index) and the
posterior predictive check per period (``by_period=True``).

Tenure: single where it matters, merged where the hazard is flat
----------------------------------------------------------------
The hazard depends on tenure through ``log1p(tenure)``, which moves fast at short tenure and
slowly later: from week 0 to week 1 it moves by 0.69, from week 40 to week 41 by 0.024. The
cells keep every tenure on its own while one period moves ``log1p(tenure)`` by more than
:data:`TENURE_STEP`, and merge adjacent tenures into groups over which ``log1p(tenure)``
moves by at most :data:`TENURE_STEP` (:func:`tenure_edges`: with 0.25, tenures 0, 1, 2 alone,
then 3-4, 5-6, 7-9, 10-13, 14-18, 19-24, 25-32, 33-42, 43-56, ...: 12 groups for 52 weeks).
Each cell carries the mean ``log1p(tenure)`` of its rows (``log_tenure``), so the Binomial
likelihood of a cell is the per-row Bernoulli likelihood of its rows with every row's
``log1p(tenure)`` replaced by its cell's mean.

The approximation error is bounded: every row's ``log1p(tenure)`` is within ``TENURE_STEP``
of its cell's, so its churn logit is off by at most ``|tenure_slope| * TENURE_STEP`` (0.035
at the demo's tenure slope of -0.14; 0.65 at a tenure slope of 2.6, but only at tenures
above the single ones, where such a world's hazard has levelled off). Because the cell's
covariate is its rows' mean, the first-order terms cancel in the cell's log-likelihood: what
is left is second order, at most ``p (1 - p) tenure_slope**2 TENURE_STEP**2 / 8`` per row in
expectation (``p`` the hazard). Measured against the exact cells (one tenure per cell;
``tenure_step=0``) on the demo world and on worlds with churn by inactivity after 6 and 13
weeks: see ``benchmarks/RESULTS.md`` ("Cost: the cells grow with the tenures") and
``tests/test_retention.py``.

Exact tenure in every cell (``tenure_step=0``) gives the per-row Bernoulli likelihood
wherever the metric's level is exact too (a test checks it against statsmodels' ``Logit`` on
the rows); it costs 4 times the cells of the merged tenures on a year of weeks (4,558 against
1,070 for the demo world: segments x tenures x level bins), and the gradient's cost
grows with the cells. The query engine makes the same cells
(:func:`nsm_sim.events.reduce_sql.cell_sums`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data.panel import Panel, check_frame  # noqa: F401  (doctest)
from nsm_sim.errors import hint

#: Levels of the metric per cell grid (quantile bins when it takes more distinct values).
LEVEL_BINS = 30

#: Largest change of ``log1p(tenure)`` within a tenure group of the cells (see the module
#: docstring); 0 keeps every tenure on its own.
TENURE_STEP = 0.25


@dataclass(frozen=True)
class ChurnCells:
    """Binomial cells of the churn model: segment x tenure x metric level.

    Attributes
    ----------
    metric : str
        The metric whose level defines the cells.
    segments : tuple of str
    frame : pandas.DataFrame
        One row per non-empty cell: ``period`` (int, with ``by_period`` only), ``segment``
        (str), ``segment_idx`` (int, into ``segments``), ``tenure_band`` (int: the first
        tenure, in periods, of the cell's tenure group; its tenure when tenure is exact),
        ``log_tenure`` (the mean ``log1p(tenure)`` of its rows),
        ``level`` (mean metric value), ``x`` (mean of ``log1p(metric)``), ``at_risk`` (rows)
        and ``churned`` (churn events).
    row_cell : ndarray of int or None
        The cell (row of ``frame``) of each row of the panel's frame, -1 for rows left out;
        None for cells not made by :func:`churn_cells`.
    """

    metric: str
    segments: tuple[str, ...]
    frame: pd.DataFrame
    row_cell: np.ndarray | None = None


def segment_codes(panel: Panel) -> np.ndarray:
    """Return the index of each row's segment in ``panel.segments``.

    Parameters
    ----------
    panel : Panel

    Returns
    -------
    ndarray of int, shape (rows,)
    """
    return pd.Categorical(panel.frame["segment"], categories=list(panel.segments)).codes


def level_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Return a bin index per value: exact levels when there are at most ``bins``, else quantiles.

    Parameters
    ----------
    values : ndarray
    bins : int

    Returns
    -------
    ndarray of int
    """
    levels = np.unique(values)
    if levels.size <= bins:
        return np.searchsorted(levels, values)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


def tenure_edges(max_tenure: int, step: float = TENURE_STEP) -> np.ndarray:
    """Return the first tenure of each tenure group of the churn cells, up to ``max_tenure``.

    Groups are made greedily from tenure 0: a group starting at ``a`` takes every following
    tenure ``b`` with ``log1p(b) - log1p(a) <= step`` (at least ``a`` itself). The groups do
    not depend on the data, only on ``step``, so cells of any rows (and the query engine's)
    share them.

    Parameters
    ----------
    max_tenure : int
        The largest tenure to cover.
    step : float, default :data:`TENURE_STEP`
        Largest change of ``log1p(tenure)`` within a group; 0 gives every tenure its own.

    Returns
    -------
    ndarray of int
        Increasing, from 0; a tenure's group is ``searchsorted(edges, tenure, "right") - 1``.

    Examples
    --------
    >>> tenure_edges(51).tolist()
    [0, 1, 2, 3, 5, 7, 10, 14, 19, 25, 33, 43]
    >>> tenure_edges(4, 0.0).tolist()
    [0, 1, 2, 3, 4]
    """
    if step < 0:
        raise ValueError(f"step must be at least 0, got {step}")
    edges, start = [0], 0
    while True:
        # the last tenure b with log1p(b) <= log1p(start) + step (the 1e-9: rounding)
        end = max(start, int(np.floor((1.0 + start) * np.exp(step) - 1.0 + 1e-9)))
        start = end + 1
        if start > max_tenure:
            return np.asarray(edges, dtype=np.int64)
        edges.append(start)


def churn_cells(
    panel: Panel,
    metric: str | None = None,
    *,
    rows: np.ndarray | pd.Series | None = None,
    bins: int = LEVEL_BINS,
    tenure_step: float = TENURE_STEP,
    by_period: bool = False,
) -> ChurnCells:
    """Reduce account-periods to Binomial cells: segment x tenure x metric level.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metric : str, optional
        The metric whose level defines the cells; the North Star by default.
    rows : array_like of bool, optional
        Rows of ``panel.frame`` to use (e.g. the earlier periods only, for fitting before
        scoring on later ones); all rows by default. The level bins come from these rows.
    bins : int, default :data:`LEVEL_BINS`
        Levels of the metric: each distinct value when there are at most ``bins`` of them
        (exact), else ``bins`` quantile bins of the selected rows.
    tenure_step : float, default :data:`TENURE_STEP`
        Tenures are merged into groups over which ``log1p(tenure)`` moves by at most this
        (:func:`tenure_edges`; each cell stands for its rows at their mean
        ``log1p(tenure)``); 0: every tenure in cells of its own (exact).
    by_period : bool, default False
        Key the cells by period too (a ``period`` column, the panel's ``t``, first).

    Returns
    -------
    ChurnCells
        One row per non-empty cell, sorted by (period,) segment, tenure and level;
        ``at_risk`` sums to the selected rows and ``churned`` to their churn events;
        ``row_cell`` maps every row of ``panel.frame`` to its cell.

    Examples
    --------
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> panel = check_frame(world.panel, world.tree)
    >>> cells = churn_cells(panel)
    >>> int(cells.frame["at_risk"].sum()) == len(panel.frame)
    True
    >>> bool((cells.frame["at_risk"].to_numpy() == np.bincount(cells.row_cell)).all())
    True
    """
    metric = metric or panel.tree.north_star
    f = panel.frame
    if metric not in f:
        raise ValueError(f"{metric!r} is not a metric of the panel{hint(metric, f.columns)}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    return _cells(
        panel, metric, f[metric].to_numpy(dtype=float), rows, bins, tenure_step, by_period
    )


def tenure_cells(
    panel: Panel,
    *,
    rows: np.ndarray | pd.Series | None = None,
    tenure_step: float = TENURE_STEP,
) -> ChurnCells:
    """Reduce account-periods to Binomial cells of segment x tenure only (no metric).

    The cells of the churn model without a metric (``x`` and ``level`` are 0): the baseline
    that each metric's model is scored against, fit by the same estimator.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    rows : array_like of bool, optional
        Rows of ``panel.frame`` to use; all rows by default.
    tenure_step : float, default :data:`TENURE_STEP`
        As for :func:`churn_cells`.

    Returns
    -------
    ChurnCells
        With ``metric`` ``""``; otherwise as :func:`churn_cells`.
    """
    return _cells(panel, "", np.zeros(len(panel.frame)), rows, 1, tenure_step, False)


def _cells(
    panel: Panel,
    metric: str,
    metric_values: np.ndarray,
    rows: np.ndarray | pd.Series | None,
    bins: int,
    tenure_step: float,
    by_period: bool,
) -> ChurnCells:
    f = panel.frame
    mask = np.ones(len(f), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if mask.shape != (len(f),):
        raise ValueError(f"rows must be a boolean mask of length {len(f)}, got {mask.shape}")
    values = metric_values[mask]
    tenure = f["tenure"].to_numpy()[mask].astype(np.int64)
    edges = tenure_edges(int(tenure.max()) if tenure.size else 0, tenure_step)
    band = edges[np.searchsorted(edges, tenure, side="right") - 1]  # the group's first tenure
    keys = {
        "segment_idx": segment_codes(panel)[mask].astype(np.int64),
        "tenure_band": band,
        "level_bin": level_bins(values, bins) if values.size else np.zeros(0, np.int64),
    }
    if by_period:
        keys = {"period": f["t"].to_numpy(np.int64)[mask], **keys}
    key_frame = pd.DataFrame(keys)
    cell = key_frame.groupby(list(keys), sort=True).ngroup().to_numpy(np.int64)
    n_cells = int(cell.max()) + 1 if cell.size else 0
    at_risk = np.bincount(cell, minlength=n_cells)

    def cell_mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=v, minlength=n_cells) / np.maximum(at_risk, 1)

    first = np.unique(cell, return_index=True)[1]
    out = key_frame.iloc[first].drop(columns="level_bin").reset_index(drop=True)
    out.insert(
        len(out.columns) - 2,
        "segment",
        np.asarray(panel.segments, dtype=object)[out["segment_idx"]].astype(str),
    )
    out["log_tenure"] = cell_mean(np.log1p(tenure.astype(float)))
    out["level"] = cell_mean(values)
    out["x"] = cell_mean(np.log1p(values))
    out["at_risk"] = at_risk.astype(np.int64)
    churned = np.bincount(cell, weights=f["churned"].to_numpy(float)[mask], minlength=n_cells)
    out["churned"] = np.rint(churned).astype(np.int64)
    row_cell = np.full(len(f), -1, dtype=np.int64)
    row_cell[mask] = cell
    return ChurnCells(metric=metric, segments=panel.segments, frame=out, row_cell=row_cell)
