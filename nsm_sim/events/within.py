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

The by-account ``meat`` of the cluster-robust covariance takes a second pass: with the period
effects ``gamma`` (P x V per segment, solved above) and the least-squares estimates known, each
row's ``w = z - gamma_t`` less its account's mean is its two-way residual, so per account the
centred cross-products ``Q_a`` of ``w`` give the scores ``g_a = Q_a[x, y] - Q_a[x, x] b`` and
the engine returns ``sum_a g_a g_a'`` per segment (pooled: ``w`` is ``z`` less the segment's
means, not centred by account). Two small inline tables carry ``gamma`` and ``b`` in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sqlglot import exp

from nsm_sim.data import DriverStats
from nsm_sim.events import reduce_sql as q
from nsm_sim.events import sql
from nsm_sim.events import within_sql as wq
from nsm_sim.spec import MetricTree

#: Matrices less well conditioned than this do not identify the estimates (as in memory).
_SINGULAR = 1e12


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
    periods: list[list[int]] = [[] for _ in range(S)]
    if within:
        session.run(sql.view(q.ACCOUNTS, wq.account_sums(nodes), kind="TABLE"))
        for seg, count, *upper in session.rows(wq.within_products(nodes)):
            n[index[seg]] = count
            products[index[seg]] = _symmetric(upper, V)
        per_period: dict[str, list] = {}
        for seg, t, count, *total in session.rows(wq.period_sums(nodes)):
            per_period.setdefault(seg, []).append((t, count, total))
        lives: dict[str, list] = {}
        scattered = False
        for seg, first, last, rows, accounts in session.rows(wq.lifetimes()):
            lives.setdefault(seg, []).append((first, last, rows, accounts))
            scattered |= rows != last - first + 1
        pairs: dict[str, list] = {}
        if scattered:
            for seg, t1, t2, weight in session.rows(wq.scattered_pairs()):
                pairs.setdefault(seg, []).append((t1, t2, weight))
        effects = {}
        for seg, s in index.items():
            if seg not in per_period:
                continue
            removed, absorbed[s], periods[s], effects[s] = _period_effects(
                per_period[seg], lives[seg], pairs.get(seg, [])
            )
            products[s] -= removed
        shift = [effects.get(s, np.zeros((0, V))) for s in range(S)]
        centred = products
    else:
        for seg, count, *rest in session.rows(wq.pooled_products(nodes)):
            n[index[seg]] = count
            sums[index[seg]] = rest[:V]
            products[index[seg]] = _symmetric(rest[V:], V)
        means = sums / np.maximum(n, 1)[:, None]
        shift = [means[s][None, :] for s in range(S)]
        periods = [[-1] for _ in range(S)]
        centred = products - sums[:, :, None] * means[:, None, :]
    edges = [(nodes.index(p), nodes.index(k)) for p, kids in tree.children.items() for k in kids]
    coefficients, identified = _estimates(centred, n, tree, nodes)
    meat, clusters = _meat(
        session, nodes, segments, edges, within, periods, shift, coefficients, identified
    )
    out = {}
    start = 0
    for parent, kids in tree.children.items():
        y, X = nodes.index(parent), [nodes.index(k) for k in kids]
        own = slice(start, start + len(kids))
        start += len(kids)
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
            meat=meat[:, own, own].copy(),
            clusters=clusters.copy(),
        )
    return out


def _estimates(
    centred: np.ndarray, rows: np.ndarray, tree: MetricTree, nodes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the least-squares estimates (S, E) in edge order, and which are identified (S, E).

    ``centred`` (S, V, V) are the cross-products the estimates solve (within: residualised;
    pooled: centred on the segment's means); a parent's estimates are identified when it has
    more rows than children and its children's matrix is invertible (as in memory).
    """
    S = centred.shape[0]
    E = sum(len(kids) for kids in tree.children.values())
    coefficients, identified = np.zeros((S, E)), np.zeros((S, E), dtype=bool)
    start = 0
    for parent, kids in tree.children.items():
        y, X = nodes.index(parent), [nodes.index(k) for k in kids]
        own = slice(start, start + len(kids))
        start += len(kids)
        for s in range(S):
            xtx = centred[s][np.ix_(X, X)]
            if rows[s] > len(X) and np.linalg.cond(xtx) < _SINGULAR:
                coefficients[s, own] = np.linalg.solve(xtx, centred[s][X, y])
                identified[s, own] = True
    return coefficients, identified


def _period_effects(
    per_period: list[tuple[int, int, list[float]]],
    lives: list[tuple[int, int, int, int]],
    pairs: list[tuple[int, int, float]],
) -> tuple[np.ndarray, int, list[int], np.ndarray]:
    """Return what the period effects remove, the effects absorbed, the periods and the effects.

    What they remove is ``b' G^+ b``; the effects ``G^+ b`` are P x V, for the periods present
    in order.

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
    return b.T @ effects, accounts + P - components, present, effects


def _meat(
    session: Any,
    nodes: list[str],
    segments: tuple[str, ...],
    edges: list[tuple[int, int]],
    within: bool,
    periods: list[list[int]],
    shift: list[np.ndarray],
    coefficients: np.ndarray,
    identified: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return per segment ``sum_a g_a g_a'`` by edge (S, E, E) and the accounts (S,).

    One query (see the module docstring); ``shift[s]`` holds per period of ``periods[s]``
    (pooled: one row, period -1) what ``w`` removes from the logs. Products of edges of
    different parents, and of estimates not identified, are zero.
    """
    V, S, E = len(nodes), len(segments), len(edges)
    # Every node below is built where it is used and each builder extends its own select
    # (copy=False): a tree with as many sums as pairs of nodes is not copied at each step.

    def key() -> list[exp.Column]:
        return [sql.col("segment", "r"), *([sql.col("t", "r")] if within else [])]

    def w(v: int) -> exp.Expression:
        log = sql.col(q.log_column(nodes[v]), "r")
        return exp.Paren(this=exp.Sub(this=log, expression=sql.col(f"g{v}", "k")))

    shift_rows = [
        [sql.string(seg), *([exp.Literal.number(t)] if within else []), *map(q.number, row)]
        for s, seg in enumerate(segments)
        for t, row in zip(periods[s], shift[s], strict=True)
    ]
    shift_columns = ["segment", *(["t"] if within else []), *[f"g{v}" for v in range(V)]]
    pairs = [(i, j) for i in range(V) for j in range(i, V)]
    per_account = (
        exp.select(
            key()[0],
            sql.col("account_id", "r"),
            _alias(exp.Count(this=exp.Star()), "n"),
            *[_alias(exp.Sum(this=w(v)), f"w{v}") for v in range(V)],
            *[
                _alias(exp.Sum(this=exp.Mul(this=w(i), expression=w(j))), f"ww{i}_{j}")
                for i, j in pairs
            ],
            copy=False,
        )
        .from_(exp.to_table(q.ROWS).as_("r"), copy=False)
        .join(
            _inline(shift_rows, shift_columns, "k"),
            on=exp.and_(*[c.eq(sql.col(c.name, "k")) for c in key()], copy=False),
            copy=False,
        )
        .group_by(key()[0], sql.col("account_id", "r"), copy=False)
    )

    def centred(i: int, j: int) -> exp.Expression:
        i, j = min(i, j), max(i, j)
        total = sql.col(f"ww{i}_{j}", "a")
        if not within:
            return total
        means = exp.Div(
            this=exp.Mul(this=sql.col(f"w{i}", "a"), expression=sql.col(f"w{j}", "a")),
            expression=sql.col("n", "a"),
        )
        return exp.Paren(this=exp.Sub(this=total, expression=means))

    scores = []
    for e, (y, x) in enumerate(edges):
        score = centred(x, y)
        for f, (parent, other) in enumerate(edges):
            if parent == y:
                term = exp.Mul(this=centred(x, other), expression=sql.col(f"b{f}", "c"))
                score = exp.Sub(this=score, expression=term)
        scores.append(_alias(score, f"s{e}"))
    coefficient_rows = [
        [sql.string(seg), *map(q.number, coefficients[s])] for s, seg in enumerate(segments)
    ]
    coefficient_columns = ["segment", *[f"b{e}" for e in range(E)]]
    per_score = (
        exp.select(sql.col("segment", "a"), *scores, copy=False)
        .from_(per_account.subquery("a", copy=False), copy=False)
        .join(
            _inline(coefficient_rows, coefficient_columns, "c"),
            on=sql.col("segment", "a").eq(sql.col("segment", "c")),
            copy=False,
        )
    )
    same_parent = [(e, f) for e in range(E) for f in range(e, E) if edges[e][0] == edges[f][0]]
    query = (
        exp.select(
            sql.col("segment"),
            exp.Count(this=exp.Star()),
            *[
                exp.Sum(this=exp.Mul(this=sql.col(f"s{e}"), expression=sql.col(f"s{f}")))
                for e, f in same_parent
            ],
            copy=False,
        )
        .from_(per_score.subquery("g", copy=False), copy=False)
        .group_by(sql.col("segment"), copy=False)
    )
    index = {seg: i for i, seg in enumerate(segments)}
    meat = np.zeros((S, E, E))
    clusters = np.zeros(S, dtype=np.int64)
    for seg, count, *products in session.rows(query):
        s = index[seg]
        clusters[s] = count
        for (e, f), value in zip(same_parent, products, strict=True):
            meat[s, e, f] = meat[s, f, e] = value
    meat *= identified[:, :, None] & identified[:, None, :]
    return meat, clusters


def _alias(value: exp.Expression, name: str) -> exp.Expression:
    """Alias a value built for this one place (not copied)."""
    return exp.alias_(value, name, quoted=True, copy=False)


def _inline(rows: list[list[exp.Expression]], columns: list[str], alias: str) -> exp.Subquery:
    """Return an inline table of literal rows as a subquery ``alias``."""
    values = exp.Values(
        expressions=[exp.Tuple(expressions=row) for row in rows],
        alias=exp.TableAlias(
            this=exp.to_identifier("v"), columns=[exp.to_identifier(c) for c in columns]
        ),
    )
    return exp.Subquery(this=exp.select("*").from_(values, copy=False), alias=alias)
