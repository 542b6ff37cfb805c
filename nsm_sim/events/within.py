"""Driver statistics in the query engine: the within transformation in closed form.

In memory the logs are residualised on account and period effects by alternating
projections (:func:`nsm_sim.numeric.two_way_effects`). Here the same least-squares residual
comes in closed form (Frisch-Waugh-Lovell): with ``Z~`` the logs less their account means,
``b = D' Z~`` their sums per period and ``G = diag(n_p) - sum_a c_a c_a' / n_a`` (``c_a``
the periods of account ``a``), the residual cross-products are ``Z~'Z~ - b' G^+ b``. An
account's rows are consecutive periods (the data contract), so ``G`` needs only how many
accounts share each (first period, last period): a P x P matrix per segment, whatever the
number of accounts (an account whose rows in a segment skip periods, because it moved to
another segment and back, adds its pairs of periods instead). The residuals sum to zero
exactly, so ``sum_y`` and ``sum_x`` are 0 (in memory they are 0 to about 1e-12).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from nsm_sim.data import DriverStats
from nsm_sim.events import reduce_sql as q
from nsm_sim.events import sql
from nsm_sim.spec import MetricTree


def _symmetric(upper: list[float], size: int) -> np.ndarray:
    out = np.zeros((size, size))
    out[np.triu_indices(size)] = upper
    return out + np.triu(out, 1).T


def driver_stats(
    session: Any,
    tree: MetricTree,
    nodes: list[str],
    segments: tuple[str, ...],
    within: bool,
) -> dict[str, DriverStats]:
    """Return per parent node the driver statistics of :func:`nsm_sim.data.driver_stats`.

    Parameters
    ----------
    session : Session
        Holding the table :data:`nsm_sim.events.reduce_sql.ROWS`.
    tree : MetricTree
    nodes : list of str
        Every parent and child, in the order of the logs' columns.
    segments : tuple of str
        Sorted segment labels.
    within : bool
        Within accounts with period effects; ``False``: the raw (pooled) sums.

    Returns
    -------
    dict of str to DriverStats
    """
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
