"""Within vs between: does churn move with a metric within an account, or across accounts only.

``log1p(M)`` is split into the account's level (its mean net of shocks common to all accounts
in a period: two-way account and period effects, :func:`nsm_sim.numeric.two_way_effects`) and
the deviation from it; both enter a logistic hazard with segment intercepts and
``log1p(tenure)``, fit by maximum a posteriori with weak Normal priors and summarised by its
Laplace approximation (:func:`nsm_sim.numeric.logistic_map`; exact per-row Bernoulli
likelihood: with tens of thousands of rows and a handful of parameters the posterior is
Gaussian to the precision reported). The account level uses all of the account's rows: the
decomposition is descriptive, not a forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nsm_sim.data.panel import STATIC_SHARE
from nsm_sim.leading.rule import Effect
from nsm_sim.numeric import logistic_map, two_way_effects


def segment_tenure_design(frame: pd.DataFrame, segments: Sequence[str]) -> np.ndarray:
    """Return the design of the segment + tenure hazard: segment indicators and ``log1p(tenure)``.

    Parameters
    ----------
    frame : pandas.DataFrame
        A panel frame (``segment``, ``tenure``).
    segments : sequence of str
        Segment labels (one column each).

    Returns
    -------
    ndarray, shape (rows, len(segments) + 1)
    """
    seg = pd.Categorical(frame["segment"].astype(str), categories=list(segments)).codes
    return np.column_stack(
        [np.eye(len(segments))[seg], np.log1p(frame["tenure"].to_numpy(dtype=float))]
    )


def within_between(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    segments: Sequence[str],
    *,
    prob: float = 0.9,
    prior_sd: float = 10.0,
    reference: str | None = None,
) -> pd.DataFrame:
    """Within- and between-account effects of each metric on the churn hazard.

    ``log1p(metric)`` is split by :func:`nsm_sim.numeric.two_way_effects` into the account's level
    (its mean net of shocks common to all accounts in a period), the period shock and the
    within-account deviation. The account level (centred) and the deviation enter a
    logistic hazard with segment intercepts and ``log1p(tenure)``, fit on every row (exact
    Bernoulli likelihood) by Newton's method with Normal(0, ``prior_sd``) priors; intervals
    from the Laplace approximation.

    A *static* metric, whose deviations hold less than
    :data:`~nsm_sim.data.panel.STATIC_SHARE` of its variance (it never moves within an
    account; what is left is rounding noise), gets no within effect (NaN): the hazard has its
    account level only, whose effect compares kinds of accounts.

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
    reference : str, optional
        A metric column (usually the North Star) whose account levels each metric's are
        correlated with (``level_corr``): does the metric track how big accounts are on it?

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``within_mean``, ``within_low``, ``within_high``, ``within_sd``,
        ``between_mean``, ``between_low``, ``between_high``, ``between_sd``,
        ``within_share`` (share of the variance of ``log1p(metric)`` within accounts beyond
        period shocks), ``static``, ``level_corr`` (NaN without ``reference`` and for the
        reference itself).
    """
    acc = pd.factorize(frame["account_id"])[0]
    per = pd.factorize(frame["t"])[0]
    first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
    base = segment_tenure_design(frame, segments)
    y = frame["churned"].to_numpy(dtype=float)
    ref_level = None
    if reference is not None:
        ref_level = two_way_effects(np.log1p(frame[reference].to_numpy(dtype=float)), acc, per)[0]
    out = []
    for m in metrics:
        z = np.log1p(frame[m].to_numpy(dtype=float))
        level, _, dev = two_way_effects(z, acc, per)
        total = float(((z - z.mean()) ** 2).sum())
        share = float((dev**2).sum() / total) if total > 0 else 0.0
        static = share < STATIC_SHARE
        X = np.column_stack([base, level - level.mean(), *([] if static else [dev])])
        beta, cov, _ = logistic_map(X, y, prior_sd=prior_sd)
        sd = np.sqrt(np.diag(cov))
        k = base.shape[1]
        row = {"metric": m}
        for name, j in (("within", k + 1), ("between", k)):
            e = Effect(float(beta[j]), float(sd[j])) if j < len(beta) else Effect(np.nan, np.nan)
            row.update({f"{name}_{key}": v for key, v in e.to_dict(prob).items()})
        corr = np.nan
        if ref_level is not None and m != reference:
            a, b = level[first], ref_level[first]
            corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else np.nan
        out.append(row | {"within_share": share, "static": static, "level_corr": corr})
    return pd.DataFrame(out)
