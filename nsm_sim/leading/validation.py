"""Leading: is the North Star truly leading? Evidence and a verdict per metric.

For the North Star and each candidate metric M, four kinds of evidence:

1. **Predictive power.** The retention hazard of :mod:`nsm_sim.models.retention` (its formula
   :func:`~nsm_sim.models.retention.churn_logit`, its priors and posterior names) with M in place of
   the North Star, fit on the earlier periods only (rows with ``t < cutoff``; the churn
   outcome of such a row is known by ``t + 1 <= cutoff``, so nothing from the scoring periods
   leaks in; the bins come from those rows too) and scored row by row on the later ones:
   log-loss, Brier score and AUC of the posterior predictive churn probability. ``skill`` is
   the relative log-loss improvement over a baseline with segment intercepts and tenure only
   (``1 - log_loss / baseline_log_loss``). In sample, the same model fit on all periods is
   compared by PSIS-LOO (:func:`arviz.compare`); the pointwise log-likelihood is taken per
   *account* (the sum of its rows' Bernoulli log-likelihoods under the fitted cell model), so
   every metric's model is scored on the same units and outcomes and the elpd values are
   comparable (cell-level elpds are not: each metric has its own cells).

   The model is built here (:func:`build_comparison_model`) rather than taken from
   :func:`nsm_sim.models.retention.build_retention_model` for three reasons: every input, the hinge
   switch included, is a data container, so nutpie compiles it once per process and each
   metric, split and hinge variant only swaps data; the intercept is parametrised at each
   segment's mean metric and tenure, which keeps the posterior round when metrics of very
   different scales take turns; and the per-account log-likelihood needs each row's cell
   (:func:`cell_grid`), which :func:`nsm_sim.data.churn_cells` does not return.
2. **Timing.** Cross-lagged (panel Granger) regressions between every pair of metrics on
   ``log1p`` series with account and period effects removed: does M's past (lags ``1..L``)
   predict the other's present beyond the other's own past? Per direction: the sum of the
   lag coefficients, a cluster-robust (by account) Wald F statistic and its p-value. Cross
   correlations of within-account changes (first differences of ``log1p``, period means
   removed, pooled over accounts) at lags ``-L..L`` with a ``+-1.96/sqrt(n)`` band. Sign
   convention: **lag k > 0: the metric leads the North Star by k periods** (its change at
   ``t - k`` correlates with the North Star's change at ``t``); lag k < 0: it follows it.
3. **Within vs between.** ``log1p(M)`` is split into the account's level (its mean net of
   shocks common to all accounts in a period: two-way account and period effects) and the
   deviation from it; both enter a logistic hazard with segment intercepts and
   ``log1p(tenure)``, fit by maximum a posteriori with weak Normal priors and summarised by
   its Laplace approximation (exact per-row Bernoulli likelihood; with tens of thousands of
   rows and a handful of parameters the posterior is Gaussian to the precision reported).
   The account level uses all of the account's rows: the decomposition is descriptive, not
   a forecast.
4. **Threshold.** The North Star's retention model with a hinge at ``tau`` fit next to the one
   without (see :func:`threshold`); when the hinge has the clearly better elpd, the posterior
   of ``tau`` is reported with the retention over ``tree.retention_horizon`` periods of
   account-periods at or above and below it.

Verdict rule
------------
The effects are on the logit of the churn hazard per unit of ``log1p(M)``; an effect is *clear*
when its 99 % interval excludes 0 (``|mean| > 2.58 sd``; the tables show 90 % intervals). A
within effect *backs up* the between effect when it is clear, has the same sign (or the
between effect is not clear) and is at least ``vanity_ratio`` (default 1/4) of it in absolute
size. A metric is *predictive* when its out-of-sample skill is at least ``min_skill`` (default
0.5 %). Metric A *precedes* metric B when A's past predicts B's present (Granger p-value below
``alpha``, default 0.001) and that direction dominates the reverse (its F statistic is at
least ``dominance`` times, default 2, the reverse one). The first rule that applies gives the
verdict:

1. **NO SIGNAL**: neither the within nor the between effect is clear, and the skill is below
   ``min_skill``.
2. **LAGGING**: a predictive metric precedes M, and M precedes none of the others.
3. **VANITY**: the between effect is clear and the within effect does not back it up: M tells
   big accounts from small ones, but its movements within an account say nothing (or the
   opposite) about churn.
4. **LEADING**: the within effect is clear (with the between effect's sign when that is
   clear) and no predictive metric precedes M.
5. **COINCIDENT**: everything else (a signal that moves together with, or in feedback with,
   another predictive metric, or predictive power without a clear effect).

Metrics are ranked by out-of-sample log-loss (lower first), ties broken by elpd (higher first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.sparse as sp
import xarray as xr
from scipy import stats
from scipy.special import expit, log_expit

from nsm_sim.data import ChurnCells, Panel
from nsm_sim.errors import DataError
from nsm_sim.models.retention import churn_logit

#: The sign convention of the lags of :func:`cross_correlations`, stated in every output.
LAG_CONVENTION = (
    "lag k > 0: the metric leads the North Star by k periods (its change at t-k is paired "
    "with the North Star's change at t); lag k < 0: it follows the North Star by |k| periods"
)

VERDICTS = ("LEADING", "COINCIDENT", "LAGGING", "VANITY", "NO SIGNAL")


# --------------------------------------------------------------------------- verdict rule


@dataclass(frozen=True)
class Effect:
    """An effect on the churn logit: posterior mean and standard deviation (Gaussian).

    Attributes
    ----------
    mean, sd : float
    """

    mean: float
    sd: float

    def interval(self, prob: float = 0.9) -> tuple[float, float]:
        """Return the central ``prob`` interval ``(low, high)``."""
        half = float(stats.norm.ppf(0.5 + prob / 2)) * self.sd
        return self.mean - half, self.mean + half

    def clear(self, prob: float = 0.99) -> bool:
        """Whether the central ``prob`` interval excludes 0."""
        low, high = self.interval(prob)
        return bool(low > 0.0 or high < 0.0)

    def to_dict(self, prob: float = 0.9) -> dict[str, float]:
        """Return ``{"mean", "low", "high", "sd"}`` with the ``prob`` interval."""
        low, high = self.interval(prob)
        return {"mean": float(self.mean), "low": low, "high": high, "sd": float(self.sd)}


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of the verdict rule (see the module docstring).

    Attributes
    ----------
    clear_prob : float
        An effect is clear when its central interval of this probability excludes 0
        (0.99: ``|mean| > 2.58 sd``; the tables show 90 % intervals).
    min_skill : float
        Relative out-of-sample log-loss improvement over the segment + tenure baseline from
        which a metric counts as predictive.
    vanity_ratio : float
        A within effect smaller than this fraction of the between effect (absolute sizes)
        does not back the between effect up.
    alpha : float
        Granger p-value below which a direction counts.
    dominance : float
        A direction precedes only when its F statistic is at least this multiple of the
        reverse direction's.
    """

    clear_prob: float = 0.99
    min_skill: float = 0.005
    vanity_ratio: float = 0.25
    alpha: float = 0.001
    dominance: float = 2.0


@dataclass(frozen=True)
class Verdict:
    """A metric's verdict and the sentence that explains it.

    Attributes
    ----------
    label : str
        One of :data:`VERDICTS`.
    why : str
        Plain-language reason, quoting the numbers behind it.
    """

    label: str
    why: str


def _fmt(e: Effect) -> str:
    low, high = e.interval(0.9)
    return f"{e.mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def verdict(
    *,
    within: Effect,
    between: Effect,
    skill: float,
    precedes: Sequence[str] = (),
    preceded_by: Sequence[str] = (),
    rule: VerdictRule | None = None,
) -> Verdict:
    """Apply the verdict rule of the module docstring to one metric's numbers.

    Parameters
    ----------
    within, between : Effect
        Effects on the churn logit per unit ``log1p(metric)``: deviation from the account's
        mean, and the account mean.
    skill : float
        ``1 - log_loss / baseline_log_loss`` out of sample.
    precedes : sequence of str
        Metrics this one precedes (see :func:`precedence`).
    preceded_by : sequence of str
        *Predictive* metrics that precede this one.
    rule : VerdictRule, optional
        Thresholds; the defaults when omitted.

    Returns
    -------
    Verdict
        The label and a plain-language reason (effects quoted with 90 % intervals).

    Examples
    --------
    >>> verdict(within=Effect(-0.6, 0.1), between=Effect(-0.8, 0.05), skill=0.03).label
    'LEADING'
    >>> verdict(within=Effect(0.02, 0.1), between=Effect(-0.8, 0.05), skill=0.02).label
    'VANITY'
    >>> verdict(within=Effect(0.02, 0.1), between=Effect(0.01, 0.05), skill=0.0).label
    'NO SIGNAL'
    """
    rule = rule or VerdictRule()
    w, b = within, between
    w_clear, b_clear = w.clear(rule.clear_prob), b.clear(rule.clear_prob)
    agrees = w_clear and (not b_clear or np.sign(w.mean) == np.sign(b.mean))
    effects = f"within-account effect {_fmt(w)}, between-account effect {_fmt(b)}"
    skill_txt = f"out-of-sample skill {100 * skill:+.1f}% over segment and tenure"
    if not w_clear and not b_clear and skill < rule.min_skill:
        return Verdict(
            "NO SIGNAL",
            f"Neither its level across accounts nor its changes within an account tell churn "
            f"apart ({effects}) and it predicts later churn no better than segment and tenure "
            f"({skill_txt}).",
        )
    if preceded_by and not precedes:
        return Verdict(
            "LAGGING",
            f"It moves after {', '.join(preceded_by)} (their past predicts its present, not "
            f"the reverse) and moves before no other metric: what it says about churn it says "
            f"late ({effects}; {skill_txt}).",
        )
    if b_clear and (not agrees or abs(w.mean) < rule.vanity_ratio * abs(b.mean)):
        how = "nothing" if not w_clear else ("the opposite" if not agrees else "little")
        return Verdict(
            "VANITY",
            f"Big accounts differ from small ones on it, but its movements within an account "
            f"say {how} about churn ({effects}): it tracks account size.",
        )
    if agrees and not preceded_by:
        after = f", and it moves before {', '.join(precedes)}" if precedes else ""
        return Verdict(
            "LEADING",
            f"When it moves within an account, churn risk moves with it ({effects}); no other "
            f"predictive metric moves before it{after}; {skill_txt}.",
        )
    if preceded_by:
        reason = (
            f"it moves after {', '.join(preceded_by)} and also before {', '.join(precedes)} "
            f"(feedback)"
        )
    else:
        reason = "its movements within an account are not clearly tied to churn"
    return Verdict(
        "COINCIDENT",
        f"It carries signal ({effects}; {skill_txt}) but {reason}: it moves with churn risk "
        f"rather than ahead of it.",
    )


def precedence(
    timing: pd.DataFrame, predictive: Sequence[str], rule: VerdictRule | None = None
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Read who precedes whom from a Granger table.

    Parameters
    ----------
    timing : pandas.DataFrame
        The output of :func:`granger` (columns ``cause``, ``effect``, ``F``, ``p_value``).
    predictive : sequence of str
        The metrics that count as predictive (skill at least ``rule.min_skill``).
    rule : VerdictRule, optional
        ``alpha`` and ``dominance``.

    Returns
    -------
    dict
        ``{metric: (precedes, preceded_by)}``, ``preceded_by`` restricted to predictive
        metrics, each sorted.
    """
    rule = rule or VerdictRule()
    f = {(r.cause, r.effect): (r.F, r.p_value) for r in timing.itertuples(index=False)}
    metrics = sorted(set(timing["cause"]) | set(timing["effect"]))

    def prec(a: str, c: str) -> bool:
        fa, pa = f[(a, c)]
        fr, _ = f[(c, a)]
        return bool(pa < rule.alpha and fa >= rule.dominance * fr)

    out = {}
    for m in metrics:
        others = [o for o in metrics if o != m and (m, o) in f]
        out[m] = (
            tuple(o for o in others if prec(m, o)),
            tuple(o for o in others if o in predictive and prec(o, m)),
        )
    return out


# --------------------------------------------------------------------------- panel kernels


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


def _demean(Z: np.ndarray, groups: Sequence[np.ndarray], iters: int = 500) -> np.ndarray:
    """Remove group effects (one or two-way, alternating projections) from the columns of Z."""
    Z = np.array(Z, dtype=float, copy=True)
    mats = []
    for g in groups:
        g = pd.factorize(g)[0]
        G = _group_matrix(g)
        mats.append((G, np.asarray(G.sum(axis=0)).ravel()))
    for _ in range(iters if len(mats) > 1 else 1):
        shift = 0.0
        for G, cnt in mats:
            means = (G.T @ Z) / cnt[:, None]
            Z -= G @ means
            shift = max(shift, float(np.abs(means).max()))
        if shift < 1e-10:
            break
    return Z


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
        change of the cause), ``coef_sum_se``, ``F``, ``df1``, ``df2``, ``p_value``, ``n``
        (rows), ``accounts``.
    """
    metrics = list(metrics)
    acc, t = _codes(frame)
    L = int(lags)
    if L < 1:
        raise ValueError("lags must be at least 1")
    lag_idx = np.stack([_lag_rows(acc, t, k) for k in range(1, L + 1)], axis=1)
    rows = np.flatnonzero((lag_idx >= 0).all(axis=1))
    z = np.log1p(frame[metrics].to_numpy(dtype=float))
    cols = []
    for m in range(len(metrics)):
        cols.append(z[rows, m][:, None])
        cols.append(z[lag_idx[rows], m])
    Z = np.concatenate(cols, axis=1)
    groups = [acc[rows]] + ([t[rows]] if period_effects else [])
    Z = _demean(Z, groups)
    gram = Z.T @ Z
    block = L + 1
    g_codes = pd.factorize(acc[rows])[0]
    G = _group_matrix(g_codes)
    n_g = G.shape[1]
    n = len(rows)
    out = []
    for e, eff in enumerate(metrics):
        yi = e * block
        for c, cause in enumerate(metrics):
            if c == e:
                continue
            xi = np.r_[np.arange(yi + 1, yi + block), np.arange(c * block + 1, c * block + block)]
            XtX = gram[np.ix_(xi, xi)]
            Xty = gram[xi, yi]
            k = len(xi)
            bread = np.linalg.pinv(XtX)
            beta = bread @ Xty
            X = Z[:, xi]
            u = Z[:, yi] - X @ beta
            scores = G.T @ (X * u[:, None])
            meat = scores.T @ scores
            scale = n_g / max(n_g - 1, 1) * (n - 1) / max(n - k, 1)
            V = scale * bread @ meat @ bread
            b = beta[L:]
            Vc = V[L:, L:]
            W = float(b @ np.linalg.pinv(Vc) @ b)
            F = W / L
            out.append(
                {
                    "cause": cause,
                    "effect": eff,
                    "lags": L,
                    "coef_sum": float(b.sum()),
                    "coef_sum_se": float(np.sqrt(max(Vc.sum(), 0.0))),
                    "F": F,
                    "df1": L,
                    "df2": n_g - 1,
                    "p_value": float(stats.f.sf(F, L, max(n_g - 1, 1))),
                    "n": n,
                    "accounts": n_g,
                }
            )
    return pd.DataFrame(out)


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
        ``metric``, ``lag``, ``corr``, ``band`` (``1.96 / sqrt(n)``), ``n`` (pairs),
        ``outside`` (``|corr| > band``).
    """
    acc, t = _codes(frame)
    prev = _lag_rows(acc, t, 1)
    has = prev >= 0
    names = [m for m in metrics if m != reference]
    z = np.log1p(frame[[reference, *names]].to_numpy(dtype=float))
    d = np.full_like(z, np.nan)
    d[has] = z[has] - z[prev[has]]
    d[has] = _demean(d[has], [t[has]])
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
            if n > 2 and x.std() > 0 and y.std() > 0:
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


# --------------------------------------------------------------------------- logistic (Laplace)


def _logistic_map(
    X: np.ndarray, y: np.ndarray, prior_sd: np.ndarray, *, tol: float = 1e-9, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """MAP of a Bernoulli-logit regression with Normal(0, prior_sd) priors, and its covariance.

    Newton's method on the exact log posterior; the covariance is the inverse of the negative
    Hessian at the mode (Laplace approximation).
    """
    k = X.shape[1]
    P = np.diag(1.0 / np.asarray(prior_sd, dtype=float) ** 2)
    beta = np.zeros(k)
    H = P
    for _ in range(max_iter):
        p = expit(X @ beta)
        w = p * (1 - p)
        grad = X.T @ (y - p) - P @ beta
        H = (X * w[:, None]).T @ X + P
        step = np.linalg.solve(H, grad)
        beta = beta + step
        if np.abs(step).max() < tol:
            break
    p = expit(X @ beta)
    H = (X * (p * (1 - p))[:, None]).T @ X + P
    return beta, np.linalg.inv(H)


def _segment_tenure_design(frame: pd.DataFrame, segments: Sequence[str]) -> np.ndarray:
    seg = pd.Categorical(frame["segment"].astype(str), categories=list(segments)).codes
    S = np.eye(len(segments))[seg]
    return np.column_stack([S, np.log1p(frame["tenure"].to_numpy(dtype=float))])


def account_period_effects(
    z: np.ndarray, accounts: np.ndarray, periods: np.ndarray, *, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``z`` into account effects, period effects and the residual (two-way, exact).

    Least squares of ``z = a[account] + g[period] + r`` by alternating updates (backfitting)
    until no effect moves by more than ``tol``; exact for unbalanced panels. ``g`` is
    normalised to mean 0 over rows.

    Parameters
    ----------
    z : ndarray, shape (n,)
    accounts, periods : ndarray of int, shape (n,)
        Codes ``0..A-1`` and ``0..P-1``.
    tol : float, default 1e-10

    Returns
    -------
    tuple of ndarray
        ``a[accounts]``, ``g[periods]`` and ``r``, each shape (n,); ``z = a + g + r``.

    Examples
    --------
    >>> a, g, r = account_period_effects(
    ...     np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    >>> a.round(6) + 0.0, g.round(6) + 0.0, r.round(6) + 0.0
    (array([1.5, 1.5, 3.5, 3.5]), array([-0.5,  0.5, -0.5,  0.5]), array([0., 0., 0., 0.]))
    """
    n_a, n_p = int(accounts.max()) + 1, int(periods.max()) + 1
    c_a = np.bincount(accounts, minlength=n_a)
    c_p = np.bincount(periods, minlength=n_p)
    a, g = np.zeros(n_a), np.zeros(n_p)
    for _ in range(100_000):
        a_new = np.bincount(accounts, z - g[periods], n_a) / c_a
        g_new = np.bincount(periods, z - a_new[accounts], n_p) / np.maximum(c_p, 1)
        step = max(np.abs(a_new - a).max(), np.abs(g_new - g).max())
        a, g = a_new, g_new
        if step < tol:
            break
    shift = g[periods].mean()
    a_row, g_row = a[accounts] + shift, g[periods] - shift
    return a_row, g_row, z - a_row - g_row


def within_between(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    segments: Sequence[str],
    *,
    prob: float = 0.9,
    prior_sd: float = 10.0,
) -> pd.DataFrame:
    """Within- and between-account effects of each metric on the churn hazard.

    ``log1p(metric)`` is split by :func:`account_period_effects` into the account's level
    (its mean net of shocks common to all accounts in a period), the period shock and the
    within-account deviation. The account level (centred) and the deviation enter a
    logistic hazard with segment intercepts and ``log1p(tenure)``, fit on every row (exact
    Bernoulli likelihood) by Newton's method with Normal(0, ``prior_sd``) priors; intervals
    from the Laplace approximation.

    The period shocks are left out on purpose: an account's plain mean depends on the
    periods it was observed in, and so on when it churned; with a common trend in the metric
    that alone makes churn rows look high or low against the account's mean and invents
    within and between effects where there are none.

    Parameters
    ----------
    frame : pandas.DataFrame
        A panel frame (``account_id``, ``t``, ``segment``, ``tenure``, ``churned``, metrics).
    metrics : sequence of str
    segments : sequence of str
        Segment labels (one intercept each).
    prob : float, default 0.9
        Interval probability of the ``_low`` and ``_high`` columns.
    prior_sd : float, default 10
        Prior scale of every coefficient (weak).

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``within_mean``, ``within_low``, ``within_high``, ``within_sd``,
        ``between_mean``, ``between_low``, ``between_high``, ``between_sd``.
    """
    acc = pd.factorize(frame["account_id"])[0]
    per = pd.factorize(frame["t"])[0]
    base = _segment_tenure_design(frame, segments)
    y = frame["churned"].to_numpy(dtype=float)
    out = []
    for m in metrics:
        z = np.log1p(frame[m].to_numpy(dtype=float))
        level, _, dev = account_period_effects(z, acc, per)
        X = np.column_stack([base, level - level.mean(), dev])
        beta, cov = _logistic_map(X, y, np.full(X.shape[1], prior_sd))
        sd = np.sqrt(np.diag(cov))
        row = {"metric": m}
        for name, k in (("within", -1), ("between", -2)):
            e = Effect(float(beta[k]), float(sd[k]))
            row.update({f"{name}_{key}": v for key, v in e.to_dict(prob).items()})
        out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- scores


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean Bernoulli log-loss (nats), probabilities clipped to ``[1e-12, 1 - 1e-12]``."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((p - y) ** 2))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = stats.rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def baseline_scores(
    frame: pd.DataFrame, segments: Sequence[str], train: np.ndarray
) -> dict[str, float]:
    """Scores of a segment + ``log1p(tenure)`` logistic hazard fit on ``train`` rows, on the rest.

    Parameters
    ----------
    frame : pandas.DataFrame
    segments : sequence of str
    train : ndarray of bool
        Rows to fit on; the others are scored.

    Returns
    -------
    dict
        ``log_loss``, ``brier``, ``auc`` on the scored rows.
    """
    X = _segment_tenure_design(frame, segments)
    y = frame["churned"].to_numpy(dtype=float)
    beta, _ = _logistic_map(X[train], y[train], np.full(X.shape[1], 10.0))
    p = expit(X[~train] @ beta)
    yt = y[~train]
    return {"log_loss": log_loss(yt, p), "brier": brier(yt, p), "auc": auc(yt, p)}


# --------------------------------------------------------------------------- cells

#: Lower edges of the tenure bands (periods): 0, 1, 2-3, 4-7, 8-12, 13-25, 26-51, 52-103, 104+.
TENURE_EDGES = (0, 1, 2, 4, 8, 13, 26, 52, 104)


@dataclass(frozen=True)
class CellGrid:
    """Binomial cells on a fixed grid (segment x tenure band x metric bin), empty cells kept.

    ``row_cell`` maps each row of the frame to its cell, which is what the per-account
    log-likelihood needs; the model is given the non-empty cells only (a compiled nutpie
    model accepts data of any length, so one compilation serves every metric).

    Attributes
    ----------
    metric : str
    segments : tuple of str
    bins : int
        Metric bins per segment x tenure band (some may be empty).
    edges : ndarray
        Inner bin edges on the ``log1p`` scale (at most ``bins - 1``), from the grid's rows.
    row_cell : ndarray of int
        Cell of each row of the frame; -1 for rows not in the grid.
    segment_idx, x, log_tenure, level, at_risk, churned : ndarray
        Per cell: segment index, mean ``log1p(metric)``, mean ``log1p(tenure)``, mean metric,
        rows and churn events (empty cells: ``at_risk = 0`` and nominal covariates).
    """

    metric: str
    segments: tuple[str, ...]
    bins: int
    edges: np.ndarray
    row_cell: np.ndarray
    segment_idx: np.ndarray
    x: np.ndarray
    log_tenure: np.ndarray
    level: np.ndarray
    at_risk: np.ndarray
    churned: np.ndarray

    def to_churn_cells(self) -> ChurnCells:
        """Return the non-empty cells as a :class:`~nsm_sim.data.ChurnCells`."""
        n_tb = len(self.at_risk) // (len(self.segments) * self.bins)
        keep = self.at_risk > 0
        cell = np.arange(len(self.at_risk))
        frame = pd.DataFrame(
            {
                "segment": np.asarray(self.segments, dtype=object)[self.segment_idx],
                "segment_idx": self.segment_idx,
                "tenure_band": (cell // self.bins) % n_tb,
                "log_tenure": self.log_tenure,
                "level": self.level,
                "x": self.x,
                "at_risk": self.at_risk,
                "churned": self.churned,
            }
        )[keep].reset_index(drop=True)
        return ChurnCells(metric=self.metric, segments=self.segments, frame=frame)


def _bin_edges(x: np.ndarray, bins: int) -> np.ndarray:
    u = np.unique(x)
    if len(u) <= bins:
        return (u[1:] + u[:-1]) / 2.0
    return np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def cell_grid(
    frame: pd.DataFrame,
    metric: str,
    segments: Sequence[str],
    *,
    rows: np.ndarray | None = None,
    bins: int = 32,
    tenure_edges: Sequence[int] = TENURE_EDGES,
) -> CellGrid:
    """Reduce rows of a panel frame to Binomial cells on a fixed grid.

    The metric is binned by quantiles of ``log1p(metric)`` over ``rows`` (exact values when
    it takes at most ``bins`` distinct values); tenure by ``tenure_edges``.

    Parameters
    ----------
    frame : pandas.DataFrame
        A panel frame (``segment``, ``tenure``, ``churned``, the metric).
    metric : str
        The metric that defines the cells' level.
    segments : sequence of str
        Segment labels (the grid's first axis).
    rows : ndarray of bool, optional
        The rows to reduce (default all); the bin edges come from these rows only.
    bins : int, default 32
        Metric bins.
    tenure_edges : sequence of int
        Lower edges of the tenure bands, starting at 0.

    Returns
    -------
    CellGrid
        ``len(segments) * len(tenure_edges) * bins`` cells.
    """
    n = len(frame)
    rows = np.ones(n, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    level = frame[metric].to_numpy(dtype=float)
    x = np.log1p(level)
    tenure = frame["tenure"].to_numpy(dtype=float)
    lt = np.log1p(tenure)
    seg = pd.Categorical(frame["segment"].astype(str), categories=list(segments)).codes
    edges = _bin_edges(x[rows], bins) if rows.any() else np.array([])
    n_tb = len(tenure_edges)
    tb = np.clip(np.searchsorted(np.asarray(tenure_edges), tenure, side="right") - 1, 0, n_tb - 1)
    b = np.searchsorted(edges, x, side="right")
    cell = (seg.astype(np.int64) * n_tb + tb) * bins + b
    n_cells = len(segments) * n_tb * bins
    ok = rows & (seg >= 0)
    c = cell[ok]
    at_risk = np.bincount(c, minlength=n_cells)
    churned = np.bincount(c, weights=frame["churned"].to_numpy(dtype=float)[ok], minlength=n_cells)
    denom = np.maximum(at_risk, 1)
    fill_x = float(np.mean(x[ok])) if ok.any() else 0.0
    grid_idx = np.arange(n_cells)
    nominal_lt = np.log1p(np.asarray(tenure_edges, dtype=float))[(grid_idx // bins) % n_tb]
    mean_x = np.where(at_risk > 0, np.bincount(c, weights=x[ok], minlength=n_cells) / denom, fill_x)
    mean_lt = np.where(
        at_risk > 0, np.bincount(c, weights=lt[ok], minlength=n_cells) / denom, nominal_lt
    )
    mean_level = np.where(
        at_risk > 0, np.bincount(c, weights=level[ok], minlength=n_cells) / denom, np.expm1(fill_x)
    )
    return CellGrid(
        metric=metric,
        segments=tuple(segments),
        bins=int(bins),
        edges=edges,
        row_cell=np.where(ok, cell, -1),
        segment_idx=grid_idx // (n_tb * bins),
        x=mean_x,
        log_tenure=mean_lt,
        level=mean_level,
        at_risk=at_risk.astype(np.int64),
        churned=np.rint(churned).astype(np.int64),
    )


# --------------------------------------------------------------------------- model


def _grid_data(grid: CellGrid, *, hinge: bool) -> dict:
    """Return the data containers of :func:`build_comparison_model` for one grid."""
    lo, hi = _tau_range(grid.x, grid.at_risk)
    start = _profile_tau(grid) if hinge else (lo + hi) / 2
    u = np.clip((start - lo) / (hi - lo), 1e-3, 1 - 1e-3)
    n = grid.at_risk.sum()
    rate = (grid.churned.sum() + 0.5) / (n + 1.0)
    S = len(grid.segments)
    n_s = np.bincount(grid.segment_idx, weights=grid.at_risk, minlength=S)
    overall = float(np.sum(grid.x * grid.at_risk) / max(n, 1))
    sum_x = np.bincount(grid.segment_idx, weights=grid.x * grid.at_risk, minlength=S)
    centre = np.where(n_s > 0, sum_x / np.maximum(n_s, 1), overall)
    keep = grid.at_risk > 0  # empty cells add nothing to the likelihood: leave them out
    return {
        "x": grid.x[keep],
        "log_tenure": grid.log_tenure[keep],
        "segment_idx": grid.segment_idx[keep],
        "at_risk": grid.at_risk[keep],
        "churned": grid.churned[keep],
        "x_centre": centre.astype(np.float64),
        "log_tenure_centre": np.float64(np.sum(grid.log_tenure * grid.at_risk) / max(n, 1)),
        "base_logit": np.float64(np.log(rate / (1 - rate))),
        "use_hinge": np.float64(1.0 if hinge else 0.0),
        "tau_log_low": np.float64(lo),
        "tau_log_high": np.float64(hi),
        "tau_shift": np.float64(np.log(u / (1 - u))),
    }


def build_comparison_model(grid: CellGrid, *, hinge: bool = False) -> pm.Model:
    """Build the retention model over a cell grid, every input a swappable data container.

    The hazard is :func:`nsm_sim.models.retention.churn_logit` with the posterior names of the
    retention contract (``churn_intercept``, ``churn_slope``, ``churn_slope_mu``,
    ``churn_slope_sigma``, ``tenure_slope``, ``hinge_jump``, ``hinge_tau``). The hinge is
    switched by the data container ``use_hinge`` (0 or 1), not by the structure, so one
    compiled model fits every metric with and without a hinge; without it ``hinge_jump`` and
    ``hinge_tau`` do not touch the likelihood and are dropped from the posterior.

    Parameters
    ----------
    grid : CellGrid
        Initial data (the data of any other grid can be swapped in).
    hinge : bool, default False
        Initial value of ``use_hinge``.

    Returns
    -------
    pymc.Model
        Data containers ``x``, ``log_tenure``, ``segment_idx``, ``at_risk``, ``churned``,
        ``x_centre`` (per segment), ``log_tenure_centre``, ``base_logit``, ``use_hinge``,
        ``tau_log_low``, ``tau_log_high``, ``tau_shift``.

    Notes
    -----
    The priors are those of :mod:`nsm_sim.models.retention` except for the intercept, which is
    parametrised at the segment's mean metric and the mean tenure (``churn_level[s] ~
    Normal(base_logit, 1.5)``, ``base_logit`` the logit of the overall churn rate) so that
    it is nearly uncorrelated with the slopes: ``churn_slope[s] = mu + sigma * z[s]`` with
    ``mu ~ Normal(0, 1)``, ``sigma ~ HalfNormal(0.2)``; ``tenure_slope ~ Normal(0, 1)``;
    ``hinge_jump ~ Normal(0, 1)``; ``log1p(hinge_tau)`` uniform between ``tau_log_low`` and
    ``tau_log_high`` (5th and 95th percentiles of the metric). Chains start at the threshold
    of highest profile likelihood (``tau_shift``, see :func:`profile_threshold`).
    """
    data = _grid_data(grid, hinge=hinge)
    with pm.Model(coords={"segment": list(grid.segments)}) as model:
        d = {name: pm.Data(name, value) for name, value in data.items()}
        level = pm.Normal("churn_level", d["base_logit"], 1.5, dims="segment")
        slope_mu = pm.Normal("churn_slope_mu", 0.0, 1.0)
        slope_sigma = pm.HalfNormal("churn_slope_sigma", 0.2)
        slope_z = pm.Normal("churn_slope_z", 0.0, 1.0, dims="segment")
        slope = pm.Deterministic("churn_slope", slope_mu + slope_sigma * slope_z, dims="segment")
        tenure_slope = pm.Normal("tenure_slope", 0.0, 1.0)
        jump = pm.Normal("hinge_jump", 0.0, 1.0)
        # hinge_position ~ Uniform(0, 1), written as expit(z) with z standard logistic and
        # z = offset + tau_shift: the sampler starts at offset ~ 0, i.e. at the threshold of
        # highest profile likelihood, since chains started apart may never meet (the
        # likelihood of tau is flat between neighbouring cells' levels, steep at them)
        z = pm.Flat("hinge_offset") + d["tau_shift"]
        pm.Potential("hinge_position_prior", -z - 2.0 * pt.softplus(-z))
        position = pm.Deterministic("hinge_position", pt.sigmoid(z))
        log_tau = d["tau_log_low"] + (d["tau_log_high"] - d["tau_log_low"]) * position
        tau = pm.Deterministic("hinge_tau", pt.expm1(log_tau))
        intercept = pm.Deterministic(
            "churn_intercept",
            level - slope * d["x_centre"] - tenure_slope * d["log_tenure_centre"],
            dims="segment",
        )
        s = d["segment_idx"]
        logit = churn_logit(
            d["x"],
            d["log_tenure"],
            intercept[s],
            slope[s],
            tenure_slope,
            d["use_hinge"] * jump,
            tau,
            sigmoid=pt.sigmoid,
        )
        pm.Binomial("churn", n=d["at_risk"], logit_p=logit, observed=d["churned"])
    return model


def _tau_range(x: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """5 % and 95 % weighted quantiles of ``x``: the support of ``log1p(hinge_tau)``."""
    w = np.asarray(weights, dtype=float)
    if w.sum() <= 0:
        return float(np.min(x)), float(np.max(x)) + 1e-6
    order = np.argsort(x)
    cw = np.cumsum(w[order]) / w.sum()
    lo = float(x[order][np.searchsorted(cw, 0.05)])
    hi = float(x[order][min(np.searchsorted(cw, 0.95), len(x) - 1)])
    return lo, max(hi, lo + 1e-6)


def _binomial_map(
    X: np.ndarray, n: np.ndarray, k: np.ndarray, prior_sd: float = 10.0, iters: int = 50
) -> tuple[np.ndarray, float]:
    """MAP of a Binomial-logit regression (Newton) and its log-likelihood at the MAP."""
    beta = np.zeros(X.shape[1])
    P = np.eye(X.shape[1]) / prior_sd**2
    for _ in range(iters):
        p = expit(X @ beta)
        grad = X.T @ (k - n * p) - P @ beta
        H = (X * (n * p * (1 - p))[:, None]).T @ X + P
        step = np.linalg.solve(H, grad)
        beta = beta + step
        if np.abs(step).max() < 1e-8:
            break
    eta = X @ beta
    return beta, float(np.sum(k * log_expit(eta) + (n - k) * log_expit(-eta)))


def profile_threshold(grid: CellGrid, *, points: int = 60) -> pd.DataFrame:
    """Profile log-likelihood of the hinge threshold over a grid of values.

    For each ``tau`` (evenly spaced in ``log1p`` between the 5th and 95th percentiles of the
    metric) a Binomial logistic regression on the cells with segment intercepts, a common
    slope on ``log1p(metric)``, ``log1p(tenure)`` and the hinge term of
    :func:`nsm_sim.models.retention.churn_logit` is maximised by Newton's method.

    Parameters
    ----------
    grid : CellGrid
    points : int, default 60

    Returns
    -------
    pandas.DataFrame
        ``tau`` (the metric's own scale), ``log_tau`` (``log1p``), ``jump`` and ``log_lik``.
    """
    lo, hi = _tau_range(grid.x, grid.at_risk)
    keep = grid.at_risk > 0
    x, lt = grid.x[keep], grid.log_tenure[keep]
    n, k = grid.at_risk[keep].astype(float), grid.churned[keep].astype(float)
    base = np.column_stack([np.eye(len(grid.segments))[grid.segment_idx[keep]], x, lt])
    rows = []
    for log_tau in np.linspace(lo, hi, points):
        h = churn_logit(x, 0.0, 0.0, 0.0, 0.0, 1.0, np.expm1(log_tau))
        beta, ll = _binomial_map(np.column_stack([base, h]), n, k)
        rows.append({"tau": np.expm1(log_tau), "log_tau": log_tau, "jump": beta[-1], "log_lik": ll})
    return pd.DataFrame(rows)


def _profile_tau(grid: CellGrid) -> float:
    prof = profile_threshold(grid)
    return float(prof["log_tau"].iloc[int(np.argmax(prof["log_lik"].to_numpy()))])


#: Compiled comparison models, by (segments, sampler): compiled once per process.
_COMPILED: dict[tuple, object] = {}


def _compiled(segments: tuple[str, ...], sampler: str):
    key = (tuple(segments), sampler)
    if key not in _COMPILED:
        S = len(segments)
        one = np.ones(S, dtype=np.int64)
        dummy = CellGrid(
            metric="",
            segments=tuple(segments),
            bins=1,
            edges=np.array([]),
            row_cell=np.array([], dtype=np.int64),
            segment_idx=np.arange(S),
            x=np.zeros(S),
            log_tenure=np.zeros(S),
            level=np.zeros(S),
            at_risk=one,
            churned=0 * one,
        )
        model = build_comparison_model(dummy)
        if sampler == "nutpie":
            import nutpie

            _COMPILED[key] = nutpie.compile_pymc_model(model)
        else:
            _COMPILED[key] = model
    return _COMPILED[key]


@dataclass(frozen=True)
class Sampling:
    """Sampler settings shared by every fit of a validation.

    Attributes
    ----------
    sampler : {"nutpie", "pymc"}
        nutpie compiles the comparison model once per process (per set of segments) and
        swaps the data between fits; "pymc" uses ``pm.set_data`` and ``pm.sample``.
    draws, tune, chains : int
    progress : bool
    """

    sampler: str = "nutpie"
    draws: int = 300
    tune: int = 300
    chains: int = 2
    progress: bool = False

    def __post_init__(self):
        if self.sampler not in ("nutpie", "pymc"):
            raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {self.sampler!r}")

    def fit(self, grid: CellGrid, *, hinge: bool, seed: int) -> az.InferenceData:
        """Sample the comparison model on a grid.

        Parameters
        ----------
        grid : CellGrid
        hinge : bool
            Switch the hinge on.
        seed : int

        Returns
        -------
        arviz.InferenceData
        """
        data = _grid_data(grid, hinge=hinge)
        kw = {"draws": int(self.draws), "tune": int(self.tune), "chains": int(self.chains)}
        compiled = _compiled(grid.segments, self.sampler)
        if self.sampler == "nutpie":
            import nutpie

            return nutpie.sample(
                compiled.with_data(**data), seed=seed, progress_bar=self.progress, **kw
            )
        with compiled:
            pm.set_data(data)
            return pm.sample(
                random_seed=seed,
                progressbar=self.progress,
                compute_convergence_checks=False,
                **kw,
            )


def _draws(idata: az.InferenceData, hinge: bool) -> dict[str, np.ndarray]:
    post = idata.posterior
    names = ["churn_intercept", "churn_slope", "tenure_slope"]
    names += ["hinge_jump", "hinge_tau"] if hinge else []
    flat = {n: post[n].to_numpy().reshape(-1, *post[n].shape[2:]) for n in names}
    if not hinge:
        flat["hinge_jump"] = np.zeros_like(flat["tenure_slope"])
    return flat


def _logit(draws: dict, x, log_tenure, seg, hinge: bool) -> np.ndarray:
    """Churn logit per draw (rows) and cell or row (columns)."""
    return churn_logit(
        x[None, :],
        log_tenure[None, :],
        draws["churn_intercept"][:, seg],
        draws["churn_slope"][:, seg],
        draws["tenure_slope"][:, None],
        draws["hinge_jump"][:, None],
        draws["hinge_tau"][:, None] if hinge else None,
    )


def _account_log_lik(
    idata: az.InferenceData, grid: CellGrid, frame_acc: np.ndarray, churned: np.ndarray, hinge
) -> np.ndarray:
    """Log-likelihood per account and draw: the sum of its rows' Bernoulli terms in its cells.

    Returns an array (chain, draw, account).
    """
    draws = _draws(idata, hinge)
    eta = _logit(draws, grid.x, grid.log_tenure, grid.segment_idx, hinge)
    lp1, lp0 = log_expit(eta), log_expit(-eta)
    ok = grid.row_cell >= 0
    n_acc = int(frame_acc.max()) + 1
    shape = (n_acc, len(grid.x))
    R = sp.csr_matrix((np.ones(ok.sum()), (frame_acc[ok], grid.row_cell[ok])), shape=shape)
    E = sp.csr_matrix((churned[ok], (frame_acc[ok], grid.row_cell[ok])), shape=shape)
    ll = np.asarray(R @ lp0.T + E @ (lp1 - lp0).T)
    c, d = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    return ll.T.reshape(c, d, n_acc)


def _attach_log_lik(
    idata: az.InferenceData, ll: np.ndarray, accounts, *, hinge: bool = True
) -> az.InferenceData:
    """Attach the per-account log-likelihood; without a hinge drop its (prior-only) draws."""
    ds = xr.Dataset(
        {"churn": (("chain", "draw", "account"), ll)},
        coords={
            "chain": idata.posterior["chain"].to_numpy(),
            "draw": idata.posterior["draw"].to_numpy(),
            "account": np.asarray(accounts, dtype=object),
        },
    )
    idata = idata.copy()
    if not hinge:
        idata.posterior = idata.posterior.drop_vars(
            ["hinge_jump", "hinge_tau", "hinge_position", "hinge_offset"], errors="ignore"
        )
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups(log_likelihood=ds)
    return idata


def _predict_rows(
    idata: az.InferenceData, frame: pd.DataFrame, metric: str, segments, rows, *, max_draws=200
) -> np.ndarray:
    """Posterior predictive churn probability of each selected row (no hinge)."""
    draws = _draws(idata, hinge=False)
    n = len(draws["tenure_slope"])
    keep = np.unique(np.linspace(0, n - 1, min(n, max_draws)).round().astype(int))
    draws = {k: v[keep] for k, v in draws.items()}
    sub = frame.loc[rows]
    seg = pd.Categorical(sub["segment"].astype(str), categories=list(segments)).codes
    x = np.log1p(sub[metric].to_numpy(dtype=float))
    lt = np.log1p(sub["tenure"].to_numpy(dtype=float))
    return expit(_logit(draws, x, lt, seg, hinge=False)).mean(axis=0)


def _diagnostics(idata: az.InferenceData, hinge: bool) -> dict[str, float]:
    names = ["churn_intercept", "churn_slope", "tenure_slope"]
    if hinge:
        names += ["hinge_jump", "hinge_tau"]
    rhat = az.rhat(idata, var_names=names)
    rmax = max(float(np.nanmax(rhat[v].to_numpy())) for v in names)
    div = int(idata.sample_stats["diverging"].sum()) if "sample_stats" in idata.groups() else 0
    return {"rhat_max": rmax, "divergences": div}


# --------------------------------------------------------------------------- stages


def _summary(v: np.ndarray, prob: float = 0.9) -> dict[str, float]:
    lo, hi = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
    return {"mean": float(np.mean(v)), "low": float(lo), "high": float(hi)}


def _cutoff(panel: Panel, train_share: float) -> tuple[int, np.ndarray]:
    n_periods = len(panel.periods)
    cutoff = int(round(train_share * n_periods))
    t = panel.frame["t"].to_numpy()
    y = panel.frame["churned"].to_numpy()
    train = t < cutoff
    if not (0 < cutoff < n_periods):
        raise DataError(
            panel.source,
            [f"period: {n_periods} periods leave none on one side of the cutoff ({cutoff})"],
        )
    if y[train].sum() < 1 or y[~train].sum() < 1:
        raise DataError(
            panel.source,
            [
                f"churned: {int(y[train].sum())} churn events before the cutoff (period index "
                f"{cutoff}) and {int(y[~train].sum())} after; expected some on both sides"
            ],
        )
    return cutoff, train


def _check_metrics(panel: Panel, metrics: Sequence[str] | None) -> list[str]:
    tree = panel.tree
    metrics = list(dict.fromkeys(metrics or [tree.north_star, *tree.candidates]))
    missing = [m for m in metrics if m not in panel.frame.columns]
    if missing:
        raise DataError(
            panel.source,
            [f"column {m!r}: not in the panel (expected a metric column)" for m in missing],
        )
    return metrics


@dataclass(frozen=True)
class PredictivePower:
    """Out-of-sample scores and in-sample PSIS-LOO of each metric's retention model.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per metric: ``metric``, ``log_loss``, ``brier``, ``auc`` (rows at or after
        the cutoff), ``baseline_log_loss``, ``skill``, ``elpd_loo``, ``elpd_se``, ``p_loo``,
        ``pareto_k_max``, ``rhat_max``, ``divergences`` (of the in-sample fit; of the
        training fit when ``in_sample`` is off).
    cutoff : int
        First scored period index; fits use rows with ``t < cutoff``.
    predictions : dict
        ``{metric: posterior predictive churn probability of each scored row}``, in frame
        order of the rows with ``t >= cutoff``.
    train_posteriors, posteriors : dict
        ``{metric: InferenceData}`` of the training fits and of the in-sample fits (with a
        per-account ``log_likelihood`` group).
    loo : dict
        ``{metric: ELPDData}`` of the in-sample fits, pointwise.
    """

    scores: pd.DataFrame
    cutoff: int
    predictions: dict
    train_posteriors: dict
    posteriors: dict
    loo: dict


def predictive_power(
    panel: Panel,
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    sampling: Sampling | None = None,
    train_share: float = 0.7,
    bins: int = 32,
    in_sample: bool = True,
) -> PredictivePower:
    """Fit the retention model on each metric before the cutoff and score it after.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metrics : sequence of str, optional
        Default: the North Star and the candidates.
    seed : int, default 0
        Fit ``i`` of metric ``j`` uses ``seed + 2 * j + i``.
    sampling : Sampling, optional
        Sampler settings.
    train_share : float, default 0.7
        The cutoff is the period index ``round(train_share * periods)``.
    bins : int, default 32
        Metric bins of the cell grids (edges from the training rows for the training fit).
    in_sample : bool, default True
        Also fit on all rows and compute PSIS-LOO over accounts.

    Returns
    -------
    PredictivePower
    """
    sampling = sampling or Sampling()
    metrics = _check_metrics(panel, metrics)
    cutoff, train = _cutoff(panel, train_share)
    frame = panel.frame
    y = frame["churned"].to_numpy(dtype=float)
    base = baseline_scores(frame, panel.segments, train)
    acc = pd.factorize(frame["account_id"])[0]
    accounts = pd.unique(frame["account_id"])
    rows, preds, train_post, posts, loos = [], {}, {}, {}, {}
    for j, m in enumerate(metrics):
        grid = cell_grid(frame, m, panel.segments, rows=train, bins=bins)
        fit = sampling.fit(grid, hinge=False, seed=seed + 2 * j)
        train_post[m] = fit.copy()
        train_post[m].posterior = fit.posterior.drop_vars(
            ["hinge_jump", "hinge_tau", "hinge_position", "hinge_offset"]
        )
        p = preds[m] = _predict_rows(fit, frame, m, panel.segments, ~train)
        yt = y[~train]
        row = {
            "metric": m,
            "log_loss": log_loss(yt, p),
            "brier": brier(yt, p),
            "auc": auc(yt, p),
            "baseline_log_loss": base["log_loss"],
            "baseline_auc": base["auc"],
        }
        row["skill"] = 1.0 - row["log_loss"] / base["log_loss"]
        diag = _diagnostics(fit, hinge=False)
        if in_sample:
            fg = cell_grid(frame, m, panel.segments, bins=bins)
            full = sampling.fit(fg, hinge=False, seed=seed + 2 * j + 1)
            ll = _account_log_lik(full, fg, acc, y, hinge=False)
            posts[m] = _attach_log_lik(full, ll, accounts, hinge=False)
            loos[m] = az.loo(posts[m], pointwise=True)
            diag = _diagnostics(full, hinge=False)
            row.update(
                elpd_loo=float(loos[m].elpd_loo),
                elpd_se=float(loos[m].se),
                p_loo=float(loos[m].p_loo),
                pareto_k_max=float(np.max(loos[m].pareto_k)),
            )
        rows.append({**row, **diag})
    return PredictivePower(
        scores=pd.DataFrame(rows),
        cutoff=cutoff,
        predictions=preds,
        train_posteriors=train_post,
        posteriors=posts,
        loo=loos,
    )


def _retention_split(draws: dict, grid: CellGrid, horizon: int):
    """Retention over ``horizon`` of the cells at or above and below tau, per draw."""
    occupied = grid.at_risk > 0
    x, n = grid.x[occupied], grid.at_risk[occupied].astype(float)
    tenure = np.expm1(grid.log_tenure[occupied])
    keep = np.ones((len(draws["tenure_slope"]), len(x)))
    for k in range(int(horizon)):  # the level held, tenure growing by one each period
        eta = _logit(draws, x, np.log1p(tenure + k), grid.segment_idx[occupied], hinge=True)
        keep *= expit(-eta)
    above = x[None, :] >= np.log1p(draws["hinge_tau"])[:, None]
    w_above, w_below = above * n, (~above) * n
    with np.errstate(invalid="ignore", divide="ignore"):
        r_above = (keep * w_above).sum(axis=1) / w_above.sum(axis=1)
        r_below = (keep * w_below).sum(axis=1) / w_below.sum(axis=1)
    return r_above, r_below


def _threshold_fit(
    panel: Panel, *, seed: int, sampling: Sampling, bins: int
) -> tuple[dict, az.InferenceData]:
    frame = panel.frame
    tree = panel.tree
    ns = tree.north_star
    y = frame["churned"].to_numpy(dtype=float)
    acc = pd.factorize(frame["account_id"])[0]
    accounts = pd.unique(frame["account_id"])
    grid = cell_grid(frame, ns, panel.segments, bins=bins)
    fit = sampling.fit(grid, hinge=True, seed=seed)
    fit = _attach_log_lik(fit, _account_log_lik(fit, grid, acc, y, hinge=True), accounts)
    none = sampling.fit(grid, hinge=False, seed=seed + 1)
    none = _attach_log_lik(
        none, _account_log_lik(none, grid, acc, y, hinge=False), accounts, hinge=False
    )
    d = az.loo(fit, pointwise=True).loo_i.to_numpy() - az.loo(none, pointwise=True).loo_i.to_numpy()
    elpd_diff, elpd_diff_se = float(d.sum()), float(np.sqrt(len(d) * np.var(d)))
    draws = _draws(fit, hinge=True)
    horizon, period = tree.retention_horizon, tree.period
    r_above, r_below = _retention_split(draws, grid, horizon)
    tau = _summary(draws["hinge_tau"])
    jump = _summary(draws["hinge_jump"])
    fin_a, fin_b = np.isfinite(r_above), np.isfinite(r_below)
    ra = _summary(r_above[fin_a]) if fin_a.any() else None
    rb = _summary(r_below[fin_b]) if fin_b.any() else None
    supported = bool(elpd_diff > max(4.0, elpd_diff_se) and (jump["high"] < 0 or jump["low"] > 0))
    share = float((frame[ns].to_numpy(dtype=float) >= tau["mean"]).mean())
    if supported and ra and rb:
        sentence = (
            f"Accounts at or above {tau['mean']:.3g} {ns} per {period} "
            f"(90% interval {tau['low']:.3g}-{tau['high']:.3g}; {100 * share:.0f}% of "
            f"account-{period}s) retain at {100 * ra['mean']:.0f}% over {horizon} {period}s, "
            f"those below at {100 * rb['mean']:.0f}%."
        )
    else:
        sentence = (
            f"No threshold in {ns}: a hinge does not fit clearly better than a smooth effect "
            f"(elpd difference {elpd_diff:+.1f} +- {elpd_diff_se:.1f}; needs more than 4 and "
            f"than its standard error, with a clear jump)."
        )
    out = {
        "metric": ns,
        "supported": supported,
        "tau": tau,
        "jump": jump,
        "elpd_diff": elpd_diff,
        "elpd_diff_se": elpd_diff_se,
        "horizon": int(horizon),
        "period": period,
        "retention_above": ra,
        "retention_below": rb,
        "share_above": share,
        "sentence": sentence,
        "bins": int(bins),
        **_diagnostics(fit, hinge=True),
    }
    return out, fit


def threshold(
    panel: Panel, *, seed: int = 0, sampling: Sampling | None = None, bins: int = 80
) -> dict:
    """Fit the North Star's threshold: a hinge at ``tau`` against none, and what it means.

    Both models are fit on all rows over a fine grid of the North Star (``bins`` quantile
    bins: ``tau`` is only resolved between neighbouring cells' levels) and compared by
    PSIS-LOO over accounts. The hinge is *supported* when its elpd exceeds the smooth
    model's by more than 4 and more than the standard error of the difference (below 4 an
    elpd difference is small and its standard error unreliable; Sivula et al. 2020) and the
    jump's 90 % interval excludes 0. Retention over ``tree.retention_horizon`` periods is the
    at-risk-weighted mean over the cells at or above (below) ``tau`` of the product of
    ``1 - hazard`` over the horizon, the cell's level held and tenure growing by one each
    period, per posterior draw.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    seed : int, default 0
    sampling : Sampling, optional
    bins : int, default 80

    Returns
    -------
    dict
        ``metric``, ``supported``, ``tau`` and ``jump`` (``mean``, ``low``, ``high``; 90 %),
        ``elpd_diff``, ``elpd_diff_se``, ``horizon``, ``period``, ``retention_above``,
        ``retention_below`` (mean, low, high, or None), ``share_above`` (share of
        account-periods at or above the mean ``tau``), ``sentence``, ``bins``,
        ``rhat_max``, ``divergences``.
    """
    out, _ = _threshold_fit(panel, seed=seed, sampling=sampling or Sampling(), bins=bins)
    return out


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True)
class Validation:
    """The answer to "is the North Star truly leading?".

    Attributes
    ----------
    north_star : str
    metrics : pandas.DataFrame
        One row per metric, best rank first: ``metric``, ``verdict``, ``rank``,
        out-of-sample ``log_loss``, ``brier``, ``auc``, ``skill`` (relative log-loss gain over
        ``baseline_log_loss``), in-sample ``elpd_loo``, ``elpd_se``, ``elpd_diff`` (to the
        best), ``p_loo``, ``pareto_k_max``, ``within_*`` and ``between_*`` (``mean``, ``low``,
        ``high``, ``sd``), ``precedes``, ``preceded_by`` (comma-separated), ``why``,
        ``rhat_max``, ``divergences``.
    timing : pandas.DataFrame
        :func:`granger` for every ordered pair of metrics.
    cross_correlations : pandas.DataFrame
        :func:`cross_correlations` of every metric with the North Star (sign convention:
        :data:`LAG_CONVENTION`).
    within_between : pandas.DataFrame
        :func:`within_between`.
    comparison : pandas.DataFrame
        :func:`arviz.compare` of the in-sample fits (PSIS-LOO over accounts).
    threshold : dict
        :func:`threshold`.
    summary : str
        Plain-language summary: the North Star's verdict, one line per metric, the threshold.
    settings : dict
        Cutoff, lags, bins, sampler settings, :data:`LAG_CONVENTION` and the verdict rule.
    timings : dict
        Seconds per stage.
    posteriors : dict
        In-sample fits per metric (with a ``log_likelihood`` group) and ``"hinge"``.
    """

    north_star: str
    metrics: pd.DataFrame
    timing: pd.DataFrame
    cross_correlations: pd.DataFrame
    within_between: pd.DataFrame
    comparison: pd.DataFrame
    threshold: dict
    summary: str
    settings: dict
    timings: dict
    posteriors: dict

    def verdicts(self) -> dict[str, str]:
        """Return ``{metric: verdict}``."""
        return dict(zip(self.metrics["metric"], self.metrics["verdict"], strict=True))

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of the metrics, timing, threshold, settings and summary.

        Returns
        -------
        dict
            ``{"north_star", "metrics": [{"metric", "verdict", "rank", "why", "log_loss",
            "brier", "auc", "skill", "baseline_log_loss", "elpd_loo", "elpd_se",
            "elpd_diff", "within": {"mean", "low", "high"}, "between": {...}, "precedes",
            "preceded_by", ...}, ...], "timing": [...], "cross_correlations": [...],
            "threshold": {...}, "settings": {...}, "timings": {...}, "summary": str}``.
            NaN becomes None.
        """
        numbers = (
            "log_loss",
            "brier",
            "auc",
            "skill",
            "baseline_log_loss",
            "elpd_loo",
            "elpd_se",
            "elpd_diff",
            "pareto_k_max",
            "rhat_max",
            "divergences",
        )
        metrics = []
        for r in self.metrics.to_dict("records"):
            metrics.append(
                {
                    "metric": r["metric"],
                    "verdict": r["verdict"],
                    "rank": int(r["rank"]),
                    "why": r["why"],
                    **{k: _num(r[k]) for k in numbers},
                    "within": {k: _num(r[f"within_{k}"]) for k in ("mean", "low", "high")},
                    "between": {k: _num(r[f"between_{k}"]) for k in ("mean", "low", "high")},
                    "precedes": [m for m in r["precedes"].split(", ") if m],
                    "preceded_by": [m for m in r["preceded_by"].split(", ") if m],
                }
            )
        return {
            "north_star": self.north_star,
            "metrics": metrics,
            "timing": _records(self.timing),
            "cross_correlations": _records(self.cross_correlations),
            "threshold": _jsonable(self.threshold),
            "settings": _jsonable(self.settings),
            "timings": _jsonable(self.timings),
            "summary": self.summary,
        }


def _num(v):
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if np.isfinite(v) else None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (bool, np.bool_, int, np.integer, float, np.floating)):
        return _num(obj)
    return str(obj)


def _records(df: pd.DataFrame) -> list[dict]:
    return [_jsonable(r) for r in df.to_dict("records")]


def rank_and_judge(
    scores: pd.DataFrame,
    effects: pd.DataFrame,
    timing: pd.DataFrame,
    rule: VerdictRule | None = None,
) -> pd.DataFrame:
    """Join the evidence per metric, apply :func:`verdict` and rank.

    Parameters
    ----------
    scores : pandas.DataFrame
        :attr:`PredictivePower.scores` (``metric``, ``log_loss``, ``skill``, ``elpd_loo``...).
    effects : pandas.DataFrame
        :func:`within_between`.
    timing : pandas.DataFrame
        :func:`granger` (may be empty for a single metric).
    rule : VerdictRule, optional

    Returns
    -------
    pandas.DataFrame
        The metrics table of :class:`Validation`, ranked by out-of-sample log-loss (lower
        first), ties by ``elpd_loo`` (higher first).
    """
    rule = rule or VerdictRule()
    table = scores.merge(effects, on="metric")
    if "elpd_loo" not in table:
        table["elpd_loo"] = np.nan
    table["elpd_diff"] = table["elpd_loo"].max() - table["elpd_loo"]
    predictive = list(table.loc[table["skill"] >= rule.min_skill, "metric"])
    prec = precedence(timing, predictive, rule) if len(timing) else {}
    labels, whys, pre, preby = [], [], [], []
    for r in table.itertuples(index=False):
        precedes, preceded_by = prec.get(r.metric, ((), ()))
        v = verdict(
            within=Effect(r.within_mean, r.within_sd),
            between=Effect(r.between_mean, r.between_sd),
            skill=r.skill,
            precedes=precedes,
            preceded_by=preceded_by,
            rule=rule,
        )
        labels.append(v.label)
        whys.append(v.why)
        pre.append(", ".join(precedes))
        preby.append(", ".join(preceded_by))
    table["verdict"] = labels
    table["precedes"] = pre
    table["preceded_by"] = preby
    table["why"] = whys
    table = table.sort_values(["log_loss", "elpd_loo"], ascending=[True, False])
    table["rank"] = np.arange(1, len(table) + 1)
    first = ["metric", "verdict", "rank", "log_loss", "brier", "auc", "skill", "elpd_loo"]
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def validate(
    panel: Panel,
    *,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    sampler: str = "nutpie",
    progress: bool = False,
    lags: int = 4,
    train_share: float = 0.7,
    bins: int = 32,
    hinge_bins: int = 80,
    rule: VerdictRule | None = None,
) -> Validation:
    """Is the North Star truly leading? Evidence and a verdict for it and each candidate.

    Runs :func:`granger` and :func:`cross_correlations` (timing), :func:`within_between`,
    :func:`predictive_power` and :func:`threshold`, then :func:`rank_and_judge`.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metrics : sequence of str, optional
        Metrics to judge; default the North Star and the tree's candidates.
    seed : int, default 0
        Seed of the fits (each fit its own offset from it).
    draws, tune, chains : int
        Sampler settings of each fit.
    sampler : {"nutpie", "pymc"}
        nutpie compiles the model once per process and swaps the data between fits.
    progress : bool, default False
        Show sampler progress.
    lags : int, default 4
        Lags of the Granger regressions and of the cross-correlations.
    train_share : float, default 0.7
        Share of periods used to fit the predictive models; the rest are scored.
    bins : int, default 32
        Metric bins of the cell grids of the metric comparison.
    hinge_bins : int, default 80
        Metric bins of the North Star's grid for the threshold.
    rule : VerdictRule, optional
        Verdict thresholds.

    Returns
    -------
    Validation

    Raises
    ------
    DataError
        When a metric is not a column, or there are too few periods or churn events to fit
        before the cutoff and score after it.
    """
    import time

    rule = rule or VerdictRule()
    sampling = Sampling(sampler=sampler, draws=draws, tune=tune, chains=chains, progress=progress)
    metrics = _check_metrics(panel, metrics)
    ns = panel.tree.north_star
    n_periods = len(panel.periods)
    if n_periods < lags + 3:
        raise DataError(
            panel.source, [f"period: {n_periods} periods; expected at least {lags + 3} (lags + 3)"]
        )
    cutoff, _ = _cutoff(panel, train_share)
    frame = panel.frame
    clock = {}

    t0 = time.perf_counter()
    timing = granger(frame, metrics, lags=lags) if len(metrics) > 1 else pd.DataFrame()
    xcorr = cross_correlations(frame, metrics, ns, lags=lags)
    clock["timing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    effects = within_between(frame, metrics, panel.segments)
    clock["within_between"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    power = predictive_power(
        panel, metrics, seed=seed, sampling=sampling, train_share=train_share, bins=bins
    )
    clock["predictive"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    thr, hinge_fit = _threshold_fit(
        panel, seed=seed + 2 * len(metrics), sampling=sampling, bins=hinge_bins
    )
    clock["threshold"] = time.perf_counter() - t0

    table = rank_and_judge(power.scores, effects, timing, rule)
    comparison = az.compare(power.loo, ic="loo") if len(power.loo) > 1 else pd.DataFrame()
    settings = {
        "metrics": metrics,
        "cutoff_period_index": cutoff,
        "cutoff_period": str(panel.periods[cutoff].date()),
        "train_rows": int((frame["t"] < cutoff).sum()),
        "test_rows": int((frame["t"] >= cutoff).sum()),
        "lags": int(lags),
        "bins": int(bins),
        "hinge_bins": int(hinge_bins),
        "sampler": sampler,
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "seed": int(seed),
        "lag_convention": LAG_CONVENTION,
        "rule": dict(rule.__dict__),
    }
    clock["total"] = sum(clock.values())
    return Validation(
        north_star=ns,
        metrics=table,
        timing=timing,
        cross_correlations=xcorr,
        within_between=effects,
        comparison=comparison,
        threshold=thr,
        summary=_summary_text(ns, table, thr),
        settings=settings,
        timings=clock,
        posteriors={**power.posteriors, "hinge": hinge_fit},
    )


def _summary_text(ns: str, table: pd.DataFrame, thr: dict) -> str:
    v = table.set_index("metric")
    lines = [f"North Star {ns}: {v.loc[ns, 'verdict']}."] if ns in v.index else []
    for r in table.itertuples(index=False):
        lines.append(
            f"{r.rank}. {r.metric}: {r.verdict} (log-loss {r.log_loss:.4f}, AUC {r.auc:.3f}, "
            f"skill {100 * r.skill:+.1f}%). {r.why}"
        )
    lines.append(thr["sentence"])
    lines.append(f"Cross-correlation lags: {LAG_CONVENTION}.")
    return "\n".join(lines)
