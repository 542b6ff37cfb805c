"""Reductions of a checked panel: sufficient statistics of the drivers, the starting population.

The models never see rows. A parent node and its children reduce to per-segment sufficient
statistics of a Gaussian linear model (:class:`DriverStats`); the projection starts from a
table of cells of the last period (:class:`Population`). Churn reduces to Binomial cells in
:mod:`nsm_sim.data.cells`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from nsm_sim.data.cells import ChurnCells, churn_cells, segment_codes
from nsm_sim.data.panel import Panel
from nsm_sim.data.population import Population, starting_population
from nsm_sim.data.summary import describe
from nsm_sim.numeric import demean_two_way
from nsm_sim.spec import MetricTree


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
    meat : ndarray, shape (S, K, K)
        ``sum_a g_a g_a'`` over the segment's accounts ``a``, with ``g_a = sum_t x_t e_t``
        the account's score at the segment's least-squares estimate (``x`` and ``e`` the
        within-transformed children and residuals; centred on the segment's means when
        pooled): the middle of the cluster-robust (by account) covariance
        ``XtX^-1 meat XtX^-1``. Zero where the estimate is not identified.
    clusters : ndarray, shape (S,)
        Accounts per segment (the clusters of ``meat``).
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
    meat: np.ndarray
    clusters: np.ndarray


# --------------------------------------------------------------------------- reductions


def _absorbed(accounts: np.ndarray, periods: np.ndarray) -> int:
    """Degrees of freedom taken by account and period effects: A + P - connected components."""
    n_a, n_p = int(accounts.max()) + 1, int(periods.max()) + 1
    graph = coo_matrix(
        (np.ones(len(accounts)), (accounts, n_a + periods)), shape=(n_a + n_p, n_a + n_p)
    )
    n_components = connected_components(graph, directed=False)[0]
    return n_a + n_p - n_components


def account_meat(y: np.ndarray, X: np.ndarray, accounts: np.ndarray) -> np.ndarray:
    """Return ``sum_a g_a g_a'``, the scores ``g_a = X_a' e_a`` of least squares summed by account.

    Parameters
    ----------
    y : ndarray, shape (N,)
        The (transformed) outcome.
    X : ndarray, shape (N, K)
        The (transformed) regressors; the estimate is ``lstsq(X, y)``.
    accounts : ndarray of int, shape (N,)
        Account codes ``0..A-1``.

    Returns
    -------
    ndarray, shape (K, K)
        Zero when ``X'X`` is singular (the estimate is not identified).
    """
    xtx = X.T @ X
    K = X.shape[1]
    if len(y) <= K or np.linalg.cond(xtx) >= 1e12:
        return np.zeros((K, K))
    residual = y - X @ np.linalg.solve(xtx, X.T @ y)
    scores = np.zeros((int(accounts.max()) + 1, K))
    np.add.at(scores, accounts, X * residual[:, None])
    return scores.T @ scores


def driver_stats(panel: Panel, parent: str, *, within: bool = True) -> DriverStats:
    """Reduce a parent node and its children to per-segment sufficient statistics.

    ``y = log1p(parent)`` and ``X = log1p(children)`` (children from
    ``panel.tree.children[parent]``, in tree order).

    Parameters
    ----------
    panel : Panel
        A checked panel.
    parent : str
        A parent node of the tree (the North Star or an input with inputs of its own).
    within : bool, default True
        Remove account and period effects within each segment (:func:`demean_two_way`), so
        that account size and shocks common to all accounts do not bias the elasticities;
        ``n_absorbed`` counts the effects removed (accounts + periods - 1 for a connected
        panel). ``False`` gives the raw (pooled) sums.

    Returns
    -------
    DriverStats
        With the by-account ``meat`` of the cluster-robust covariance at each segment's
        least-squares estimate, which the driver model's likelihood is calibrated to.

    Examples
    --------
    >>> from nsm_sim.data import check_frame
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> stats = driver_stats(check_frame(world.panel, world.tree), "active_seats")
    >>> stats.children, stats.XtX.shape
    (('invites_sent', 'seats_activated'), (3, 2, 2))
    """
    children = panel.tree.children.get(parent)
    if not children:
        parents = ", ".join(panel.tree.children)
        raise ValueError(f"{parent!r} is not a parent node of the tree; parents: {parents}")
    f = panel.frame
    y = np.log1p(f[parent].to_numpy(dtype=float))
    X = np.log1p(f[list(children)].to_numpy(dtype=float))
    seg = segment_codes(panel)
    S, K = len(panel.segments), len(children)
    n = np.zeros(S, dtype=np.int64)
    n_absorbed = np.zeros(S, dtype=np.int64)
    sum_y, sum_y2 = np.zeros(S), np.zeros(S)
    sum_x, XtX, Xty = np.zeros((S, K)), np.zeros((S, K, K)), np.zeros((S, K))
    meat, clusters = np.zeros((S, K, K)), np.zeros(S, dtype=np.int64)
    account_codes = pd.factorize(f["account_id"])[0]
    t = f["t"].to_numpy()
    for s in range(S):
        rows = seg == s
        if not rows.any():
            continue
        Z = np.column_stack([y[rows], X[rows]])
        a = pd.factorize(account_codes[rows])[0]
        if within:
            p = pd.factorize(t[rows])[0]
            Z = demean_two_way(Z, a, p)
            n_absorbed[s] = _absorbed(a, p)
        ys, Xs = Z[:, 0], Z[:, 1:]
        n[s] = rows.sum()
        sum_y[s], sum_y2[s] = ys.sum(), ys @ ys
        sum_x[s] = Xs.sum(axis=0)
        XtX[s] = Xs.T @ Xs
        Xty[s] = Xs.T @ ys
        centred = Z if within else Z - Z.mean(axis=0)
        meat[s] = account_meat(centred[:, 0], centred[:, 1:], a)
        clusters[s] = a.max() + 1
    return DriverStats(
        parent=parent,
        children=tuple(children),
        segments=panel.segments,
        within=within,
        n=n,
        n_absorbed=n_absorbed,
        sum_y=sum_y,
        sum_y2=sum_y2,
        sum_x=sum_x,
        XtX=XtX,
        Xty=Xty,
        meat=meat,
        clusters=clusters,
    )


@dataclass(frozen=True)
class Reduction:
    """Everything a fit reads of a panel, and nothing that grows with its rows.

    Built from a checked panel by :func:`reduce_panel`, or by a query engine from an event log
    without bringing the rows into Python; :func:`nsm_sim.models.inference.fit_reduction`
    fits it.

    Attributes
    ----------
    tree : MetricTree
    segments : tuple of str
    driver_stats : dict of str to DriverStats
        Per parent node of the tree.
    churn_cells : ChurnCells
        The North Star's cells (segment x tenure band x level); ``row_cell`` may be empty.
    period_cells : ChurnCells
        The same keyed by period too, for the posterior predictive check of churn per period.
    population : Population
        The accounts alive at the last period.
    summary : dict
        :func:`nsm_sim.data.describe` of the panel (sizes, churn, metric ranges).
    north_star_quantiles : dict
        ``p10``, ``p50`` and ``p90`` of the North Star over account-periods.
    source : str
    fingerprint : str
        A hash of the data's content.
    """

    tree: MetricTree
    segments: tuple[str, ...]
    driver_stats: dict[str, DriverStats]
    churn_cells: ChurnCells
    period_cells: ChurnCells
    population: Population
    summary: dict[str, Any]
    north_star_quantiles: dict[str, float]
    source: str
    fingerprint: str


def reduce_panel(panel: Panel, *, within: bool = True) -> Reduction:
    """Reduce a checked panel to what a fit reads.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    within : bool, default True
        Driver statistics within accounts with period effects (see :func:`driver_stats`).

    Returns
    -------
    Reduction

    Examples
    --------
    >>> from nsm_sim.data import check_frame
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> r = reduce_panel(check_frame(world.panel, world.tree))
    >>> sorted(r.driver_stats), r.summary["rows"] == int(r.churn_cells.frame["at_risk"].sum())
    (['active_seats', 'projects_completed'], True)
    """
    tree = panel.tree
    ns = panel.frame[tree.north_star].to_numpy(dtype=float)
    p10, p50, p90 = np.quantile(ns, [0.1, 0.5, 0.9])
    return Reduction(
        tree=tree,
        segments=panel.segments,
        driver_stats={p: driver_stats(panel, p, within=within) for p in tree.children},
        churn_cells=churn_cells(panel),
        period_cells=churn_cells(panel, by_period=True),
        population=starting_population(panel),
        summary=describe(panel),
        north_star_quantiles={"p10": float(p10), "p50": float(p50), "p90": float(p90)},
        source=panel.source,
        fingerprint=panel.fingerprint,
    )
