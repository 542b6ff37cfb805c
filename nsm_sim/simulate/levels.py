"""The levels of the tree's nodes within each cell of a population, for exact propagation.

A relative lift ``l`` on a node at level ``x`` changes ``log1p(x)`` by
``log1p(x (1 + l)) - log1p(x) = log1p(s (exp(g) - 1))`` with ``g = log1p(l)`` and the
node's **share** ``s = x / (1 + x)``: near 1 for a node far above 1, about a half at 1, so the
same relative lift moves a small count's ``log1p`` much less than a large one's. The
simulator therefore needs, per cell of the population, the shares of the nodes its
initiatives target, and the spread of the North Star within the cell (for the threshold term
of the churn hazard).

A population carries them as optional columns (:data:`SHARE_PREFIX` + node name,
:data:`NORTH_STAR_MIN`, :data:`NORTH_STAR_MAX`); :func:`level_columns` computes them from the
accounts of each cell and :func:`population_with_levels` adds them to the population of a
panel (:func:`nsm_sim.data.starting_population`). Without them, a target's share is taken as
1 (its level far above 1) and the North Star as the same in all of a cell's accounts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from nsm_sim.data import Panel, Population, level_bins, segment_codes, starting_population

#: Column of a node's share ``x / (1 + x)`` in a cell, weighted by ``1 + north_star``.
SHARE_PREFIX = "share:"
#: Columns of the lowest and highest North Star in a cell.
NORTH_STAR_MIN, NORTH_STAR_MAX = "north_star_min", "north_star_max"


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


def population_with_levels(panel: Panel, *, bins: int = 20) -> Population:
    """Return the panel's starting population with the levels of every node in each cell.

    The cells are those of :func:`nsm_sim.data.starting_population` (segment x North Star
    level, from the accounts alive at the last period), with :func:`level_columns` added.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    bins : int, default 20
        North Star cells per segment.

    Returns
    -------
    Population

    Examples
    --------
    >>> from nsm_sim.data import check_frame
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> pop = population_with_levels(check_frame(world.panel, world.tree))
    >>> "share:active_seats" in pop.frame.columns
    True
    """
    population = starting_population(panel, bins=bins)
    f = panel.frame
    tree = panel.tree
    alive = (f["period"] == panel.periods[-1]).to_numpy() & (f["churned"] == 0).to_numpy()
    seg = segment_codes(panel)[alive].astype(np.int64)
    north_star = f[tree.north_star].to_numpy(dtype=float)[alive]
    level = np.zeros(seg.size, dtype=np.int64)
    for s in np.unique(seg):
        in_s = seg == s
        level[in_s] = level_bins(north_star[in_s], bins)
    cell = pd.MultiIndex.from_arrays([seg, level]).factorize(sort=True)[0]
    nodes = {n: f[n].to_numpy(dtype=float)[alive] for n in tree.nodes if n != tree.north_star}
    levels = level_columns(cell, north_star, nodes)
    if len(levels) != len(population.frame):
        raise ValueError("the cells of the population and of its levels differ")
    frame = pd.concat([population.frame.reset_index(drop=True), levels], axis=1)
    return Population(segments=population.segments, frame=frame)
