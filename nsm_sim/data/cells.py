"""Churn cells: account-periods reduced to Binomial cells (segment x tenure band x level).

One reducer serves every churn model: the fit's retention hazard, the validation's fits of
each metric (and their per-account log-likelihoods, through the row -> cell index) and the
posterior predictive check per period (``by_period=True``).

Tenure bands
------------
:data:`TENURE_BANDS` doubles in width (0, 1, 2-3, 4-7, 8-12, 13-25, 26-51, 52-103, 104+
periods). The hazard is linear in ``log1p(tenure)`` and a cell stands for its rows at their
mean ``log1p(tenure)``, so the error of a band grows with the spread of ``log1p(tenure)``
inside it; bands of equal width on the log scale keep that spread about the same in every
band, where the churn hazard changes fastest (the first weeks) included. On the demo world
(5,000 accounts x 52 weeks) the tenure slope of a maximum-likelihood fit to the cells is
within 0.0020 of the per-row fit with these bands and within 0.0039 with the coarser
(0, 4, 13, 26, 52), for any of the three metrics, at about 1.75 times the cells (625 against
358 for the North Star); the metric's slope is not affected (its error comes from the level
bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data.panel import Panel, check_frame  # noqa: F401  (doctest)
from nsm_sim.errors import hint

#: Left edges of the tenure bands in periods (the last band is open-ended); see the module
#: docstring for the choice.
TENURE_BANDS = (0, 1, 2, 4, 8, 13, 26, 52, 104)

#: Levels of the metric per cell grid (quantile bins when it takes more distinct values).
LEVEL_BINS = 30


@dataclass(frozen=True)
class ChurnCells:
    """Binomial cells of the churn model: segment x tenure band x metric level.

    Attributes
    ----------
    metric : str
        The metric whose level defines the cells.
    segments : tuple of str
    frame : pandas.DataFrame
        One row per non-empty cell: ``period`` (int, with ``by_period`` only), ``segment``
        (str), ``segment_idx`` (int, into ``segments``), ``tenure_band`` (int, index of the
        band in ``tenure_bands``), ``log_tenure`` (mean of ``log1p(tenure)`` in the cell),
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
    tenure_bands: tuple[int, ...] = TENURE_BANDS,
    by_period: bool = False,
) -> ChurnCells:
    """Reduce account-periods to Binomial cells: segment x tenure band x metric level.

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
    tenure_bands : tuple of int, default :data:`TENURE_BANDS`
        Left edges of the tenure bands, in periods, increasing from 0; the last band is
        open-ended.
    by_period : bool, default False
        Key the cells by period too (a ``period`` column, the panel's ``t``, first).

    Returns
    -------
    ChurnCells
        One row per non-empty cell, sorted by (period,) segment, band and level;
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
    bands = np.asarray(tenure_bands)
    if bands.size == 0 or bands[0] != 0 or np.any(np.diff(bands) <= 0):
        raise ValueError(f"tenure_bands must increase from 0, got {tuple(tenure_bands)}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    mask = np.ones(len(f), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if mask.shape != (len(f),):
        raise ValueError(f"rows must be a boolean mask of length {len(f)}, got {mask.shape}")
    values = f[metric].to_numpy(dtype=float)[mask]
    tenure = f["tenure"].to_numpy()[mask]
    keys = {
        "segment_idx": segment_codes(panel)[mask].astype(np.int64),
        "tenure_band": np.searchsorted(bands, tenure, side="right") - 1,
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
