"""Timing against statsmodels: the panel Granger test on the same rows, two ways.

1. ``grangercausalitytests`` on one series (the accounts one after another) and
   :func:`nsm_sim.leading.granger` without period effects see the same regression rows, and
   the same coefficients, when the panel is built so that (a) each account's first ``lags``
   values are the previous account's last ones (the rows statsmodels forms across a join are
   then rows of the next account) and (b) every account has the same mean in every window of
   its rows (its last ``lags`` values repeat its first ones and its middle is shifted to a
   common mean), so removing account means is removing one constant. Coefficients and their
   sum agree to 1e-10; the cluster-robust (by account) Wald F of statsmodels' OLS of those
   rows, without its small-sample correction, times ours, agrees to 1e-8.
2. statsmodels OLS with account and period dummies and errors clustered by account (the
   two-way form computed by default): coefficient sums to 1e-10 and F to 1e-8, after the
   one difference stated: statsmodels' small-sample factor counts every dummy among the
   parameters, ours only the lag coefficients (``G/(G-1) (n-1)/(n-2L)``).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.tsa.stattools import grangercausalitytests

from nsm_sim import leading as L

LAGS = 2


def ar_pair(rng, length, lead=1):
    """x is AR(1); y follows x by ``lead`` periods (and its own past)."""
    e, v = rng.normal(0, 1, (2, length + 50))
    x, y = np.zeros(length + 50), np.zeros(length + 50)
    for t in range(1, length + 50):
        x[t] = 0.5 * x[t - 1] + e[t]
        y[t] = 0.3 * y[t - 1] + 0.4 * x[t - lead] + v[t]
    return x[50:], y[50:]


def chained_panel(accounts=25, middle=40, seed=0):
    """A panel whose Granger rows are those of one series of its accounts end to end.

    Returns the panel (``x``, ``y`` stored as ``expm1`` of the series) and the series.
    """
    rng = np.random.default_rng(seed)
    join = rng.normal(0, 0.3, (2, LAGS))  # each account's first and last LAGS values
    level = 3.0
    series, blocks = [join.T], []
    for _ in range(accounts):
        x, y = ar_pair(rng, middle)
        body = 0.3 * np.column_stack([x, y])
        # every window of middle + LAGS rows has the same mean: the join's values repeat
        body += (level * (middle + LAGS) - join.sum(axis=1)) / middle - body.mean(axis=0)
        blocks.append(np.vstack([join.T, body, join.T]))
        series += [body, join.T]
    chain = np.vstack(series)
    frame = pd.DataFrame(
        {
            "account_id": np.repeat([f"a{i:03d}" for i in range(accounts)], middle + 2 * LAGS),
            "t": np.tile(np.arange(middle + 2 * LAGS), accounts),
            "x": np.expm1(np.vstack(blocks)[:, 0]),
            "y": np.expm1(np.vstack(blocks)[:, 1]),
        }
    )
    return frame, chain


def cluster_f(result, columns, groups, scale=1.0):
    """Wald F of ``columns`` with a cluster-robust covariance (no small-sample factor)."""
    robust = result.get_robustcov_results(cov_type="cluster", groups=groups, use_correction=False)
    b = robust.params[columns]
    V = robust.cov_params()[np.ix_(columns, columns)] * scale
    return float(b @ np.linalg.solve(V, b)) / len(columns)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_granger_equals_grangercausalitytests_on_the_same_rows(seed):
    frame, chain = chained_panel(seed=seed)
    ours = L.granger(frame, ["x", "y"], lags=LAGS, period_effects=False)
    ours = ours.set_index(["cause", "effect"])
    n_accounts = frame["account_id"].nunique()
    rows_per_account = len(frame) // n_accounts - LAGS
    groups = np.repeat(np.arange(n_accounts), rows_per_account)
    classical = {}
    for cause, effect, order in (("x", "y", [1, 0]), ("y", "x", [0, 1])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # its verbose argument
            tests = grangercausalitytests(chain[:, order], maxlag=[LAGS])
        classical[cause] = tests[LAGS][0]["ssr_ftest"][1]
        unrestricted = tests[LAGS][1][1]  # effect on its lags, the cause's lags, a constant
        row = ours.loc[(cause, effect)]
        assert unrestricted.nobs == row["n"] == n_accounts * rows_per_account
        cause_lags = np.arange(LAGS, 2 * LAGS)
        assert row["coef_sum"] == pytest.approx(unrestricted.params[cause_lags].sum(), abs=1e-10)
        # ours: cluster-robust with G/(G-1) (n-1)/(n-2L); statsmodels' without its factor
        n, G = row["n"], row["accounts"]
        factor = G / (G - 1) * (n - 1) / (n - 2 * LAGS)
        f_ref = cluster_f(unrestricted, cause_lags, groups, scale=factor)
        assert row["F"] == pytest.approx(f_ref, rel=1e-8)
        assert row["p_value"] == pytest.approx(stats.f.sf(f_ref, LAGS, G - 1), rel=1e-6)
    # x leads y: both tests find that direction and not the reverse (classical F included)
    assert ours.loc[("x", "y"), "p_value"] < 1e-6 and classical["x"] < 1e-6
    assert ours.loc[("y", "x"), "p_value"] > 1e-3 and classical["y"] > 1e-3


def test_two_way_granger_equals_dummy_variable_ols_with_clustered_errors():
    rng = np.random.default_rng(4)
    accounts, periods = 40, 14
    size = rng.normal(0, 1, accounts)
    shock = np.cumsum(rng.normal(0, 0.2, periods))
    pairs = [ar_pair(rng, periods) for _ in range(accounts)]
    x = np.array([p[0] for p in pairs]) * 0.3 + size[:, None] + shock + 3
    y = np.array([p[1] for p in pairs]) * 0.3 + 2 * size[:, None] + shock + 3
    frame = pd.DataFrame(
        {
            "account_id": np.repeat([f"a{i:03d}" for i in range(accounts)], periods),
            "t": np.tile(np.arange(periods), accounts),
            "x": np.expm1(x.ravel()),
            "y": np.expm1(y.ravel()),
        }
    )
    ours = L.granger(frame, ["x", "y"], lags=LAGS).set_index(["cause", "effect"])
    z = np.log1p(frame[["x", "y"]].to_numpy())
    acc = np.repeat(np.arange(accounts), periods)
    t = frame["t"].to_numpy()
    rows = np.flatnonzero(t >= LAGS)
    dummies = np.column_stack(
        [np.eye(accounts)[acc[rows]], np.eye(periods)[t[rows]][:, LAGS + 1 :]]
    )
    for cause, effect in (("x", "y"), ("y", "x")):
        c, e = ("x", "y").index(cause), ("x", "y").index(effect)
        lagged = [z[rows - k] for k in range(1, LAGS + 1)]
        X = np.column_stack([lg[:, e] for lg in lagged] + [lg[:, c] for lg in lagged] + [dummies])
        fit = sm.OLS(z[rows, e], X).fit()
        row = ours.loc[(cause, effect)]
        cause_lags = np.arange(LAGS, 2 * LAGS)
        assert row["coef_sum"] == pytest.approx(fit.params[cause_lags].sum(), abs=1e-10)
        n, G = row["n"], row["accounts"]
        factor = G / (G - 1) * (n - 1) / (n - 2 * LAGS)
        assert row["F"] == pytest.approx(
            cluster_f(fit, cause_lags, acc[rows], scale=factor), rel=1e-8
        )
        # statsmodels' own corrected F differs by its count of parameters only
        corrected = fit.get_robustcov_results(cov_type="cluster", groups=acc[rows])
        wald = corrected.wald_test(np.eye(X.shape[1])[cause_lags], use_f=True, scalar=True)
        k_all = X.shape[1]
        assert row["F"] == pytest.approx(
            float(wald.statistic) * (n - 2 * LAGS) / (n - k_all), rel=1e-6
        )
        assert wald.df_denom == G - 1 == row["df2"]
