"""Timing: does a metric's past predict another's present? Panel Granger and cross-correlations.

Cross-lagged (panel Granger) regressions between every pair of metrics on ``log1p`` series
with account and period effects removed: does M's past (lags ``1..L``) predict the other's
present beyond the other's own past? Per direction: the sum of the lag coefficients, a
cluster-robust (by account) Wald F statistic and its p-value (:func:`granger`). Cross
correlations of within-account changes (first differences of ``log1p``, period means removed,
pooled over accounts) at lags ``-L..L`` with a ``+-1.96/sqrt(n)`` band
(:func:`cross_correlations`). Sign convention (:data:`LAG_CONVENTION`): **lag k > 0: the
metric leads the North Star by k periods** (its change at ``t - k`` correlates with the North
Star's change at ``t``); lag k < 0: it follows it. :func:`nsm_sim.leading.rule.precedence`
reads who precedes whom from the Granger table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from nsm_sim.data.panel import STATIC_SHARE
from nsm_sim.numeric import demean_two_way

#: The sign convention of the lags of :func:`cross_correlations`, stated in every output.
LAG_CONVENTION = (
    "lag k > 0: the metric leads the North Star by k periods (its change at t-k is paired "
    "with the North Star's change at t); lag k < 0: it follows the North Star by |k| periods"
)


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Account codes and integer periods, checking the sort order the kernels rely on."""
    acc = pd.factorize(frame["account_id"], sort=False)[0].astype(np.int64)
    t = frame["t"].to_numpy(dtype=np.int64)
    order_ok = np.all((np.diff(acc) > 0) | ((np.diff(acc) == 0) & (np.diff(t) > 0)))
    if not order_ok:
        raise ValueError("frame must be sorted by account_id then t (as Panel.frame is)")
    return acc, t


def _lag_rows(acc: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Row index of the same account ``k`` periods earlier (``k < 0``: later); -1 if none."""
    n = len(acc)
    j = np.arange(n) - k
    ok = (j >= 0) & (j < n)
    jj = np.where(ok, j, 0)
    ok &= (acc[jj] == acc) & (t[jj] == t - k)
    return np.where(ok, jj, -1)


def _group_matrix(codes: np.ndarray) -> sp.csr_matrix:
    n = len(codes)
    return sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, int(codes.max()) + 1))


def granger(
    frame: pd.DataFrame, metrics: Sequence[str], *, lags: int = 4, period_effects: bool = True
) -> pd.DataFrame:
    """Panel Granger tests between every ordered pair of metrics.

    For an effect metric Y and a cause M (both ``log1p``), regress Y's present on lags
    ``1..lags`` of Y and of M, with account effects (and period effects) removed from every
    series over the regression sample (rows with all ``lags`` earlier periods present). The
    test of "M's past predicts Y's present beyond Y's own past" is a cluster-robust (by
    account) Wald test of M's lag coefficients, reported as ``F = W / lags`` with
    ``(lags, accounts - 1)`` degrees of freedom.

    A pair is not tested (``F``, ``p_value`` and the coefficients NaN, ``note`` says why) when
    either metric never moves within an account over the regression sample (its within share,
    :func:`nsm_sim.data.panel.within_share`, below :data:`~nsm_sim.data.panel.STATIC_SHARE`:
    what is left of it is rounding noise), or when the covariance of M's lag coefficients is
    singular (fewer accounts than lags, or lags that are collinear): ``W`` is then undefined.

    Account effects with lagged dependent variables bias the own-lag coefficients by
    O(1/T) (Nickell 1981), and the other metric's lags then pick up a little of the slack:
    with thousands of accounts even that small spurious direction can be significant. Read
    the two directions against each other (:func:`precedence` asks for dominance), not
    either p-value alone.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows sorted by ``account_id`` then ``t`` (as :attr:`Panel.frame`), with the metric
        columns.
    metrics : sequence of str
        Metric columns; every ordered pair is tested.
    lags : int, default 4
        Number of lags L.
    period_effects : bool, default True
        Remove period effects as well as account effects (two-way within transformation).

    Returns
    -------
    pandas.DataFrame
        One row per (cause, effect): ``cause``, ``effect``, ``lags``, ``coef_sum`` (sum of
        the cause's lag coefficients: elasticity of the effect's present to a sustained 1 %
        change of the cause), ``coef_sum_se``, ``F`` (never negative), ``df1``, ``df2``,
        ``p_value``, ``n`` (rows), ``accounts``, ``note`` (empty when tested).

    Raises
    ------
    ValueError
        When ``lags < 1``, when fewer than two accounts have ``lags + 1`` consecutive periods
        (the standard errors are clustered by account: one account leaves ``accounts - 1 = 0``
        degrees of freedom), or when the rows leave no residual degrees of freedom.
    """
    metrics = list(metrics)
    acc, t = _codes(frame)
    L = int(lags)
    if L < 1:
        raise ValueError("lags must be at least 1")
    lag_idx = np.stack([_lag_rows(acc, t, k) for k in range(1, L + 1)], axis=1)
    rows = np.flatnonzero((lag_idx >= 0).all(axis=1))
    g_codes = pd.factorize(acc[rows])[0]
    n_g, n = int(g_codes.max(initial=-1)) + 1, len(rows)
    if n_g < 2:
        raise ValueError(
            f"panel Granger test: {n_g} account(s) with {L + 1} consecutive periods (lags + 1); "
            "expected at least 2: the test's standard errors are clustered by account, and "
            "one account leaves accounts - 1 = 0 denominator degrees of freedom"
        )
    periods = pd.factorize(t[rows])[0] if period_effects else None
    absorbed = n_g + (int(periods.max()) if period_effects else 0)
    if n - 2 * L - absorbed < 1:
        raise ValueError(
            f"panel Granger test: {n} rows leave no residual degrees of freedom after "
            f"{2 * L} lag coefficients and {absorbed} account and period effects; expected "
            "more periods per account or fewer lags"
        )
    z = np.log1p(frame[metrics].to_numpy(dtype=float))
    cols = []
    for m in range(len(metrics)):
        cols.append(z[rows, m][:, None])
        cols.append(z[lag_idx[rows], m])
    Z = demean_two_way(np.concatenate(cols, axis=1), g_codes, periods)
    block = L + 1
    total = ((z[rows] - z[rows].mean(axis=0)) ** 2).sum(axis=0)
    within = (Z[:, ::block] ** 2).sum(axis=0)
    static = within <= STATIC_SHARE * total
    gram = Z.T @ Z
    G = _group_matrix(g_codes)
    out = []
    for e, eff in enumerate(metrics):
        yi = e * block
        for c, cause in enumerate(metrics):
            if c == e:
                continue
            row = {"cause": cause, "effect": eff, "lags": L, "df1": L, "df2": n_g - 1}
            row |= {"n": n, "accounts": n_g}
            fixed = [m for m, k in ((cause, c), (eff, e)) if static[k]]
            if fixed:
                out.append(
                    _untested(
                        row, f"not tested: {' and '.join(fixed)} never moves within an account"
                    )
                )
                continue
            xi = np.r_[np.arange(yi + 1, yi + block), np.arange(c * block + 1, c * block + block)]
            bread = np.linalg.pinv(gram[np.ix_(xi, xi)])
            beta = bread @ gram[xi, yi]
            X = Z[:, xi]
            u = Z[:, yi] - X @ beta
            scores = G.T @ (X * u[:, None])
            scale = n_g / (n_g - 1) * (n - 1) / (n - len(xi))
            V = scale * bread @ (scores.T @ scores) @ bread
            b, Vc = beta[L:], V[L:, L:]
            # rank against the scale of the classical covariance: a robust one of rounding
            # noise (scores that cancel within the clusters) has rank 0, not L
            classical = (u @ u) / n * np.linalg.eigvalsh(bread[L:, L:]).max()
            eig = np.linalg.eigvalsh((Vc + Vc.T) / 2)
            rank = int((eig > 1e-10 * classical).sum()) if classical > 0 else 0
            if rank < L:
                out.append(
                    _untested(
                        row,
                        f"not tested: the covariance of the {L} lag "
                        f"coefficients has rank {rank} (too few accounts, or "
                        "collinear lags)",
                    )
                )
                continue
            F = max(float(b @ np.linalg.pinv(Vc) @ b), 0.0) / L
            row |= {
                "coef_sum": float(b.sum()),
                "coef_sum_se": float(np.sqrt(max(Vc.sum(), 0.0))),
                "F": F,
                "p_value": float(stats.f.sf(F, L, n_g - 1)),
                "note": "",
            }
            out.append(row)
    columns = ["cause", "effect", "lags", "coef_sum", "coef_sum_se", "F", "df1", "df2"]
    return pd.DataFrame(out, columns=[*columns, "p_value", "n", "accounts", "note"])


def _untested(row: dict, note: str) -> dict:
    nan = float("nan")
    return row | {"coef_sum": nan, "coef_sum_se": nan, "F": nan, "p_value": nan, "note": note}


def cross_correlations(
    frame: pd.DataFrame, metrics: Sequence[str], reference: str, *, lags: int = 4
) -> pd.DataFrame:
    """Pooled cross-correlations of within-account changes with a reference metric.

    The change of a metric is the first difference of ``log1p`` between consecutive periods
    of an account, with the period's mean change removed (shocks common to all accounts).
    At lag k the metric's change at ``t - k`` is paired with the reference's change at ``t``
    (see :data:`LAG_CONVENTION`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows sorted by ``account_id`` then ``t``.
    metrics : sequence of str
        Metrics to correlate with ``reference`` (``reference`` itself is skipped).
    reference : str
        Usually the North Star.
    lags : int, default 4
        Lags ``-lags..lags``.

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``lag``, ``corr`` (NaN for a metric whose changes hold less than
        :data:`~nsm_sim.data.panel.STATIC_SHARE` of its variance: it never moves within an
        account), ``band`` (``1.96 / sqrt(n)``), ``n`` (pairs), ``outside``
        (``|corr| > band``).
    """
    acc, t = _codes(frame)
    prev = _lag_rows(acc, t, 1)
    has = prev >= 0
    names = [m for m in metrics if m != reference]
    z = np.log1p(frame[[reference, *names]].to_numpy(dtype=float))
    d = np.full_like(z, np.nan)
    d[has] = z[has] - z[prev[has]]
    d[has] = demean_two_way(d[has], pd.factorize(t[has])[0])  # one-way: each period's mean
    # changes of a metric that never moves within an account are rounding noise: no correlation
    moves = (d[has] ** 2).sum(axis=0) > STATIC_SHARE * ((z - z.mean(axis=0)) ** 2).sum(axis=0)
    out = []
    for k in range(-lags, lags + 1):
        j = _lag_rows(acc, t, abs(k))
        ok = j >= 0
        r, s = np.flatnonzero(ok), j[ok]
        for m, name in enumerate(names, start=1):
            # k >= 0: metric at t-k (row s) with reference at t (row r); k < 0: the reverse
            x, y = (d[s, m], d[r, 0]) if k >= 0 else (d[r, m], d[s, 0])
            fin = np.isfinite(x) & np.isfinite(y)
            x, y = x[fin], y[fin]
            n = len(x)
            if n > 2 and moves[m] and moves[0] and x.std() > 0 and y.std() > 0:
                c = float(np.corrcoef(x, y)[0, 1])
            else:
                c = float("nan")
            band = 1.96 / np.sqrt(n) if n else float("nan")
            out.append(
                {
                    "metric": name,
                    "lag": k,
                    "corr": c,
                    "band": band,
                    "n": n,
                    "outside": abs(c) > band,
                }
            )
    return pd.DataFrame(out).sort_values(["metric", "lag"], ignore_index=True)
