"""Churn cells: account-periods reduced to Binomial cells (segment x tenure x level).

One reducer serves every churn model: the fit's retention hazard, the validation's fits of
each metric (and their per-account log-likelihoods, through the row -> cell index) and the
posterior predictive check per period (``by_period=True``).

Tenure is exact
---------------
Every cell holds rows of one tenure (in periods), so a cell's ``log_tenure`` is the
``log1p(tenure)`` of each of its rows, not an average: the Binomial likelihood of the cells
is the per-row Bernoulli likelihood wherever the metric's level is exact too. Averaging tenure
inside bands biased the tenure slope where churn depends sharply on tenure (churn defined by
N periods of inactivity is impossible before tenure N - 1, and a band mixing tenures on both
sides stands for none of them). The cells grow with the periods (at most segments x
tenures x level bins: 4,680 for the demo world's 3 plans x 52 weeks x 30 levels) and stay
flat in rows; the query engine makes the same cells
(:func:`nsm_sim.events.reduce_sql.cell_sums`). Coarser ``tenure_bands`` remain an option of
:func:`churn_cells` (an approximation: each band's mean ``log1p(tenure)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data.panel import Panel, check_frame  # noqa: F401  (doctest)
from nsm_sim.errors import hint

#: Levels of the metric per cell grid (quantile bins when it takes more distinct values).
LEVEL_BINS = 30


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
        (str), ``segment_idx`` (int, into ``segments``), ``tenure_band`` (int: the tenure in
        periods, or the index of the band with coarser ``tenure_bands``), ``log_tenure``
        (``log1p(tenure)``; the mean over the band's rows with bands),
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


def churn_cells(
    panel: Panel,
    metric: str | None = None,
    *,
    rows: np.ndarray | pd.Series | None = None,
    bins: int = LEVEL_BINS,
    tenure_bands: tuple[int, ...] | None = None,
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
    tenure_bands : tuple of int, optional
        Left edges of coarser tenure bands, in periods, increasing from 0 (the last band is
        open-ended; each cell then stands for its rows at their mean ``log1p(tenure)``);
        exact tenure by default.
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
        panel, metric, f[metric].to_numpy(dtype=float), rows, bins, tenure_bands, by_period
    )


def tenure_cells(panel: Panel, *, rows: np.ndarray | pd.Series | None = None) -> ChurnCells:
    """Reduce account-periods to Binomial cells of segment x tenure only (no metric).

    The cells of the churn model without a metric (``x`` and ``level`` are 0): the baseline
    that each metric's model is scored against, fit by the same estimator.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    rows : array_like of bool, optional
        Rows of ``panel.frame`` to use; all rows by default.

    Returns
    -------
    ChurnCells
        With ``metric`` ``""``; otherwise as :func:`churn_cells`.
    """
    return _cells(panel, "", np.zeros(len(panel.frame)), rows, 1, None, False)


def _cells(
    panel: Panel,
    metric: str,
    metric_values: np.ndarray,
    rows: np.ndarray | pd.Series | None,
    bins: int,
    tenure_bands: tuple[int, ...] | None,
    by_period: bool,
) -> ChurnCells:
    f = panel.frame
    mask = np.ones(len(f), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if mask.shape != (len(f),):
        raise ValueError(f"rows must be a boolean mask of length {len(f)}, got {mask.shape}")
    values = metric_values[mask]
    tenure = f["tenure"].to_numpy()[mask].astype(np.int64)
    if tenure_bands is None:
        band = tenure
    else:
        bands = np.asarray(tenure_bands)
        if bands.size == 0 or bands[0] != 0 or np.any(np.diff(bands) <= 0):
            raise ValueError(f"tenure_bands must increase from 0, got {tuple(tenure_bands)}")
        band = np.searchsorted(bands, tenure, side="right") - 1
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
    if tenure_bands is None:
        out["log_tenure"] = np.log1p(out["tenure_band"].to_numpy(float))
    else:
        out["log_tenure"] = cell_mean(np.log1p(tenure.astype(float)))
    out["level"] = cell_mean(values)
    out["x"] = cell_mean(np.log1p(values))
    out["at_risk"] = at_risk.astype(np.int64)
    churned = np.bincount(cell, weights=f["churned"].to_numpy(float)[mask], minlength=n_cells)
    out["churned"] = np.rint(churned).astype(np.int64)
    row_cell = np.full(len(f), -1, dtype=np.int64)
    row_cell[mask] = cell
    return ChurnCells(metric=metric, segments=panel.segments, frame=out, row_cell=row_cell)
