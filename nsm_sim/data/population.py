"""The starting population: the accounts alive at the end of the panel, in cells.

Each cell (segment x North Star level) carries what the projection needs of its accounts:
their number, mean North Star, tenure and value, the range of the North Star (for the
threshold of the churn hazard) and, for every other node of the tree, its **share**
``x / (1 + x)`` weighted by ``1 + North Star``. A relative lift ``l`` on a node at level ``x``
changes ``log1p(x)`` by ``log1p(x (1 + l)) - log1p(x) = log1p(s (exp(g) - 1))`` with
``g = log1p(l)`` and ``s = x / (1 + x)``: near 1 for a node far above 1, a half at 1, so the
same relative lift moves a small count's ``log1p`` much less than a large one's
(:mod:`nsm_sim.simulate.changes`). Query engines build the same cells
(:mod:`nsm_sim.events.reduction`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data.cells import level_bins, segment_codes
from nsm_sim.data.panel import Panel

#: Column of a node's share ``x / (1 + x)`` in a cell, weighted by ``1 + north_star``.
SHARE_PREFIX = "share:"
#: Columns of the lowest and highest North Star in a cell.
NORTH_STAR_MIN, NORTH_STAR_MAX = "north_star_min", "north_star_max"


@dataclass(frozen=True)
class Population:
    """The accounts alive at the end of the panel, grouped into cells for the projection.

    Attributes
    ----------
    segments : tuple of str
    frame : pandas.DataFrame
        One row per cell (segment x North Star level): ``segment`` (str), ``segment_idx``
        (int), ``accounts`` (alive at the last period), ``north_star`` (mean North Star per
        account per period), ``tenure`` (mean tenure, periods), ``value`` (mean value per
        account per period; 0 when the tree names no value column) and, when built from a
        panel, :data:`NORTH_STAR_MIN`, :data:`NORTH_STAR_MAX` and a share column per node
        other than the North Star (:func:`share_column`). Without them a node's share is
        taken as 1 and the North Star as the same in all of a cell's accounts.
    """

    segments: tuple[str, ...]
    frame: pd.DataFrame


def share_column(node: str) -> str:
    """Return the population column holding a node's share.

    Parameters
    ----------
    node : str

    Returns
    -------
    str

    Examples
    --------
    >>> share_column("seats")
    'share:seats'
    """
    return SHARE_PREFIX + node


def level_columns(
    cell: np.ndarray, north_star: np.ndarray, nodes: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Reduce accounts to their cells' shares of each node and range of the North Star.

    A cell's share of a node is ``sum (1 + N) x / (1 + x) / sum (1 + N)`` over its accounts
    (``N`` the North Star, ``x`` the node): weighted so that the change of the cell's North
    Star total is exact when the node's path to the North Star has elasticity 1, and exact to
    second order in the spread of the shares otherwise.

    Parameters
    ----------
    cell : ndarray of int, shape (accounts,)
        The cell of each account, ``0 .. C - 1`` (every cell holds an account).
    north_star : ndarray, shape (accounts,)
    nodes : mapping of str to ndarray, shape (accounts,)
        Levels of the nodes (>= 0).

    Returns
    -------
    pandas.DataFrame
        One row per cell, in cell order: :data:`NORTH_STAR_MIN`, :data:`NORTH_STAR_MAX` and a
        share column per node (:func:`share_column`).
    """
    cells = int(cell.max()) + 1 if cell.size else 0
    weight = 1.0 + north_star
    total = np.bincount(cell, weight, minlength=cells)
    out = {
        NORTH_STAR_MIN: pd.Series(north_star).groupby(cell).min().to_numpy(),
        NORTH_STAR_MAX: pd.Series(north_star).groupby(cell).max().to_numpy(),
    }
    for node, x in nodes.items():
        x = np.asarray(x, dtype=float)
        out[share_column(node)] = np.bincount(cell, weight * x / (1.0 + x), minlength=cells) / total
    return pd.DataFrame(out)


def starting_population(panel: Panel, *, bins: int = 20) -> Population:
    """Group the accounts alive at the last period into cells for the projection.

    Alive accounts are the rows of the last period with ``churned == 0``. Within each
    segment they are grouped by the North Star: each distinct level when there are at most
    ``bins``, else ``bins`` quantile bins.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    bins : int, default 20
        North Star cells per segment.

    Returns
    -------
    Population
        ``accounts`` sums to the accounts alive at the last period; with the levels of
        :func:`level_columns` for every node of the tree.

    Examples
    --------
    >>> from nsm_sim.data import check_frame
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> pop = starting_population(check_frame(world.panel, world.tree))
    >>> list(pop.frame.columns)[:6]
    ['segment', 'segment_idx', 'accounts', 'north_star', 'tenure', 'value']
    >>> "share:active_seats" in pop.frame.columns
    True
    """
    f = panel.frame
    tree = panel.tree
    alive = (f["period"] == panel.periods[-1]).to_numpy() & (f["churned"] == 0).to_numpy()
    seg = segment_codes(panel)[alive].astype(np.int64)
    north_star = f[tree.north_star].to_numpy(dtype=float)[alive]
    value = f[tree.value].to_numpy(dtype=float)[alive] if tree.value else np.zeros(alive.sum())
    level = np.zeros(seg.size, dtype=np.int64)
    for s in np.unique(seg):
        in_s = seg == s
        level[in_s] = level_bins(north_star[in_s], bins)
    cells = pd.DataFrame(
        {
            "segment_idx": seg,
            "level_bin": level,
            "north_star": north_star,
            "tenure": f["tenure"].to_numpy(dtype=float)[alive],
            "value": value,
        }
    )
    out = (
        cells.groupby(["segment_idx", "level_bin"], sort=True)
        .agg(
            accounts=("north_star", "size"),
            north_star=("north_star", "mean"),
            tenure=("tenure", "mean"),
            value=("value", "mean"),
        )
        .reset_index()
        .drop(columns="level_bin")
    )
    out.insert(0, "segment", np.asarray(panel.segments, dtype=object)[out["segment_idx"]])
    out["segment"] = out["segment"].astype(str)
    out["accounts"] = out["accounts"].astype(np.int64)
    cell = pd.MultiIndex.from_arrays([seg, level]).factorize(sort=True)[0]
    nodes = {n: f[n].to_numpy(dtype=float)[alive] for n in tree.nodes if n != tree.north_star}
    levels = level_columns(cell, north_star, nodes)
    frame = pd.concat([out.reset_index(drop=True), levels], axis=1)
    return Population(segments=panel.segments, frame=frame)
