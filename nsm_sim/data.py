"""The panel: load, check against a metric tree, derive tenure, reduce to sufficient statistics.

The models never see rows. A parent node and its children reduce to per-segment sufficient
statistics of a Gaussian linear model (:class:`DriverStats`); churn reduces to Binomial cells
(:class:`ChurnCells`); the projection starts from a table of cells of the last period
(:class:`Population`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.spec import MetricTree

#: Segment label used when the tree names no segment column.
ALL_SEGMENTS = "all"


@dataclass(frozen=True)
class Panel:
    """A checked panel: one row per account per period while the account is a customer.

    Attributes
    ----------
    frame : pandas.DataFrame
        Sorted by ``account_id`` then ``period``. Columns: ``account_id``, ``period``
        (Timestamp), ``segment`` (str; ``"all"`` when the tree has no segment column), one
        column per metric of the tree and per candidate, ``churned`` (0/1), the value column
        if any, ``t`` (period index, 0 for the first period of the panel) and ``tenure``
        (periods since the account's first row, 0 on that row).
    tree : MetricTree
        The tree the panel was checked against.
    source : str
        The file it came from.
    segments : tuple of str
        Segment labels, sorted.
    periods : pandas.DatetimeIndex
        The period grid, first to last.
    fingerprint : str
        A hash of the panel's content.
    """

    frame: pd.DataFrame
    tree: MetricTree
    source: str
    segments: tuple[str, ...]
    periods: pd.DatetimeIndex
    fingerprint: str


@dataclass(frozen=True)
class DriverStats:
    """Per-segment sufficient statistics of ``y = log1p(parent)`` on ``X = log1p(children)``.

    With ``within=True`` ``y`` and ``X`` are residualised on account and period effects
    (two-way within transformation) before the sums are taken, so the model has no
    intercept; otherwise they are raw and the model has an intercept per segment.

    Attributes
    ----------
    parent : str
    children : tuple of str
    segments : tuple of str
    within : bool
    n : ndarray, shape (S,)
        Rows per segment.
    n_absorbed : ndarray, shape (S,)
        Fixed effects absorbed by the within transformation (0 when pooled), for degrees of
        freedom.
    sum_y, sum_y2 : ndarray, shape (S,)
    sum_x : ndarray, shape (S, K)
    XtX : ndarray, shape (S, K, K)
    Xty : ndarray, shape (S, K)
    """

    parent: str
    children: tuple[str, ...]
    segments: tuple[str, ...]
    within: bool
    n: np.ndarray
    n_absorbed: np.ndarray
    sum_y: np.ndarray
    sum_y2: np.ndarray
    sum_x: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray


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
        ``segments``), ``tenure_band`` (int), ``log_tenure`` (mean of ``log1p(tenure)`` in the
        cell), ``level`` (mean metric value), ``x`` (mean of ``log1p(metric)``), ``at_risk``
        (rows) and ``churned`` (churn events).
    """

    metric: str
    segments: tuple[str, ...]
    frame: pd.DataFrame


@dataclass(frozen=True)
class Population:
    """The accounts alive at the end of the panel, grouped into cells for the projection.

    Attributes
    ----------
    segments : tuple of str
    frame : pandas.DataFrame
        One row per cell (segment x North Star level): ``segment`` (str), ``segment_idx``
        (int), ``accounts`` (alive at the last period), ``north_star`` (mean North Star per
        account per period), ``tenure`` (mean tenure, periods) and ``value`` (mean value per
        account per period; 0 when the tree names no value column).
    """

    segments: tuple[str, ...]
    frame: pd.DataFrame
