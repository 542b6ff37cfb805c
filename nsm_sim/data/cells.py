"""Churn cells: account-periods reduced to Binomial cells (segment x tenure band x level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data.panel import Panel, check_frame  # noqa: F401  (doctest)
from nsm_sim.errors import hint


@dataclass(frozen=True)
class ChurnCells:
    """Binomial cells of the churn model: segment x tenure band x metric level.

    Attributes
    ----------
    metric : str
        The metric whose level defines the cells.
    segments : tuple of str
    frame : pandas.DataFrame
        One row per non-empty cell: ``segment`` (str), ``segment_idx`` (int, into
        ``segments``), ``tenure_band`` (int, index of the band in ``tenure_bands``),
        ``log_tenure`` (mean of ``log1p(tenure)`` in the
        cell), ``level`` (mean metric value), ``x`` (mean of ``log1p(metric)``), ``at_risk``
        (rows) and ``churned`` (churn events).
    """

    metric: str
    segments: tuple[str, ...]
    frame: pd.DataFrame


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
    bins: int = 30,
    tenure_bands: tuple[int, ...] = (0, 4, 13, 26, 52),
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
        scoring on later ones); all rows by default.
    bins : int, default 30
        Levels of the metric: each distinct value when there are at most ``bins`` of them
        (exact), else ``bins`` quantile bins of the selected rows.
    tenure_bands : tuple of int, default (0, 4, 13, 26, 52)
        Left edges of the tenure bands, in periods, increasing from 0; the last band is
        open-ended.

    Returns
    -------
    ChurnCells
        One row per non-empty cell; ``at_risk`` sums to the selected rows and ``churned`` to
        their churn events.

    Examples
    --------
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> panel = check_frame(world.panel, world.tree)
    >>> int(churn_cells(panel).frame["at_risk"].sum()) == len(panel.frame)
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
    cells = pd.DataFrame(
        {
            "segment_idx": segment_codes(panel)[mask].astype(np.int64),
            "tenure_band": np.searchsorted(bands, tenure, side="right") - 1,
            "level_bin": level_bins(values, bins) if values.size else np.zeros(0, np.int64),
            "log_tenure": np.log1p(tenure),
            "level": values,
            "x": np.log1p(values),
            "churned": f["churned"].to_numpy()[mask],
        }
    )
    out = (
        cells.groupby(["segment_idx", "tenure_band", "level_bin"], sort=True)
        .agg(
            log_tenure=("log_tenure", "mean"),
            level=("level", "mean"),
            x=("x", "mean"),
            at_risk=("churned", "size"),
            churned=("churned", "sum"),
        )
        .reset_index()
        .drop(columns="level_bin")
    )
    out.insert(0, "segment", np.asarray(panel.segments, dtype=object)[out["segment_idx"]])
    out["segment"] = out["segment"].astype(str)
    out = out.astype({"at_risk": np.int64, "churned": np.int64})
    return ChurnCells(metric=metric, segments=panel.segments, frame=out)
