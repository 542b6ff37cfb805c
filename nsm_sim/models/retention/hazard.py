"""The hazard's formula and priors, and what a posterior says about churn and retention (numpy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

#: Width, on the log1p scale, of the smooth step at the threshold ``hinge_tau``.
HINGE_WIDTH = 0.05

#: Prior scale of a slope, in logits per standard deviation of its covariate (as Bambi and
#: rstanarm scale their default priors): ``slope ~ Normal(0, SLOPE_SCALE / sd(covariate))``.
SLOPE_SCALE = 2.5

#: Prior scale of the spread of the metric's slope across segments, in logits per standard
#: deviation of ``x``: ``churn_slope_sigma ~ HalfNormal(SPREAD_SCALE / sd(x))``.
SPREAD_SCALE = 0.1

#: Priors, written down once (see the package docstring). A scale given as a string is
#: divided by the standard deviation, over the cells (rows weighted), of the covariate named.
PRIORS = {
    "churn_intercept_c": ("Normal", -3.0, 2.0),
    "churn_slope_mu": ("Normal", 0.0, f"{SLOPE_SCALE} / sd(x)"),
    "churn_slope_sigma": ("HalfNormal", f"{SPREAD_SCALE} / sd(x)"),
    "tenure_slope": ("Normal", 0.0, f"{SLOPE_SCALE} / sd(log1p(tenure))"),
    "hinge_jump": ("Normal", 0.0, SLOPE_SCALE),
    "hinge_tau": ("Uniform", "p5", "p95"),
}


def prior_scales(x: np.ndarray, log_tenure: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Return the data-scaled prior standard deviations of the slopes (see :data:`PRIORS`).

    Parameters
    ----------
    x, log_tenure : ndarray
        ``log1p`` of the metric and of tenure per cell.
    weights : ndarray
        Rows per cell.

    Returns
    -------
    dict
        ``churn_slope_prior_sd``, ``churn_slope_sigma_prior_sd`` and
        ``tenure_slope_prior_sd``. A covariate that does not vary counts as one unit wide
        (its slope is then not identified and keeps a prior of ``SLOPE_SCALE``).

    Examples
    --------
    >>> scales = prior_scales(np.array([0.0, np.log(2)]), np.zeros(2), np.ones(2))
    >>> round(scales["churn_slope_prior_sd"], 3)  # a 0/1 metric half the time: sd log(2) / 2
    7.213
    """

    def sd(v):
        w = np.asarray(weights, dtype=float)
        mean = np.average(v, weights=w)
        spread = float(np.sqrt(np.average((v - mean) ** 2, weights=w)))
        return spread if spread > 1e-12 else 1.0

    sd_x, sd_tenure = sd(x), sd(log_tenure)
    return {
        "churn_slope_prior_sd": SLOPE_SCALE / sd_x,
        "churn_slope_sigma_prior_sd": SPREAD_SCALE / sd_x,
        "tenure_slope_prior_sd": SLOPE_SCALE / sd_tenure,
    }


def _log1p(value):
    """``log1p`` of a number, a numpy array or a PyTensor tensor."""
    if type(value).__module__.startswith("pytensor"):
        import pytensor.tensor as pt

        return pt.log1p(value)
    return np.log1p(value)


def churn_logit(
    x, log_tenure, intercept, slope, tenure_slope, hinge_jump=0.0, hinge_tau=None, sigmoid=expit
):
    """Return the logit of the per-period churn hazard.

    Works on numpy arrays (the default) and on PyTensor tensors (pass
    ``sigmoid=pytensor.tensor.sigmoid``); arguments broadcast.

    Parameters
    ----------
    x : array_like
        ``log1p`` of the metric (the North Star) per account per period.
    log_tenure : array_like
        ``log1p`` of tenure in periods.
    intercept, slope, tenure_slope : array_like
        Model parameters (per segment where the caller indexes them so).
    hinge_jump : array_like, default 0
        Change of the logit at and above the threshold.
    hinge_tau : array_like or None
        The threshold on the metric's own scale; ``None`` for no hinge.
    sigmoid : callable
        The logistic function of the array library in use.

    Returns
    -------
    array_like
        The logit of the hazard.

    Examples
    --------
    >>> float(churn_logit(np.log1p(3.0), 0.0, -3.0, -0.5, 0.0))
    -3.6931471805599454
    """
    logit = intercept + slope * x + tenure_slope * log_tenure
    if hinge_tau is not None:
        logit = logit + hinge_jump * sigmoid((x - _log1p(hinge_tau)) / HINGE_WIDTH)
    return logit


def combined_effect(slope, hinge_jump, hinge_tau, low: float, high: float) -> np.ndarray:
    """Return the change of the churn logit from one level of the metric to another.

    Slope and step together: ``churn_logit`` at ``high`` minus at ``low``, the segment and
    tenure held. With a step, the slope and the jump share the metric's effect and their
    posteriors are correlated; their sum is what moving the metric does, and it stays clear
    when neither part is.

    Parameters
    ----------
    slope, hinge_jump, hinge_tau : array_like
        Draws (broadcast together); ``hinge_tau`` None for no step.
    low, high : float
        Levels of the metric, on its own scale.

    Returns
    -------
    ndarray
        The change per draw.

    Examples
    --------
    >>> float(combined_effect(-1.0, -0.5, 0.5, 0.0, 1.0))  # doctest: +ELLIPSIS
    -1.19...
    """
    at = [
        churn_logit(np.log1p(level), 0.0, 0.0, slope, 0.0, hinge_jump, hinge_tau)
        for level in (low, high)
    ]
    return np.asarray(at[1] - at[0], dtype=float)


# --------------------------------------------------------------------------- numpy helpers


def expected_hazard(
    params: Mapping[str, np.ndarray], north_star_levels, segment: int = 0, tenure=0.0
) -> np.ndarray:
    """Return the per-period churn hazard at given North Star levels.

    Parameters
    ----------
    params : mapping of str to ndarray
        Posterior values by variable name (``churn_intercept``, ``churn_slope``,
        ``tenure_slope`` and, with a hinge, ``hinge_jump`` and ``hinge_tau``). Per-segment
        arrays have the segment on their last axis; leading axes (e.g. draws) broadcast.
    north_star_levels : array_like
        North Star per account per period.
    segment : int, default 0
        Index of the segment.
    tenure : float or array_like, default 0
        Tenure in periods.

    Returns
    -------
    ndarray
        Shape ``leading + levels.shape`` (tenure broadcast against the levels).
    """
    levels = np.asarray(north_star_levels, dtype=float)
    lead = np.asarray(params["tenure_slope"], dtype=float).shape

    def expand(v):
        return np.asarray(v, dtype=float).reshape(lead + (1,) * levels.ndim)

    intercept = expand(np.asarray(params["churn_intercept"])[..., segment])
    slope = expand(np.asarray(params["churn_slope"])[..., segment])
    hinge = "hinge_tau" in params and "hinge_jump" in params
    logit = churn_logit(
        np.log1p(levels),
        np.log1p(np.asarray(tenure, dtype=float)),
        intercept,
        slope,
        expand(params["tenure_slope"]),
        expand(params["hinge_jump"]) if hinge else 0.0,
        expand(params["hinge_tau"]) if hinge else None,
    )
    return expit(logit)


def expected_retention(
    params: Mapping[str, np.ndarray],
    north_star_levels,
    horizon: int,
    segment: int = 0,
    tenure=0.0,
) -> np.ndarray:
    """Return retention over ``horizon`` periods at given North Star levels.

    Retention is the product over the periods of ``1 - hazard``, the North Star held at its
    level and tenure growing by one each period.

    Parameters
    ----------
    params : mapping of str to ndarray
        Posterior values by variable name; see :func:`expected_hazard`.
    north_star_levels : array_like
        North Star per account per period.
    horizon : int
        Periods.
    segment : int, default 0
        Index of the segment.
    tenure : float, default 0
        Tenure in periods at the start.

    Returns
    -------
    ndarray
        Probability of still being a customer after ``horizon`` periods, shape
        ``leading + levels.shape``.

    Examples
    --------
    >>> p = {"churn_intercept": np.array([-3.0]), "churn_slope": np.array([0.0]),
    ...      "tenure_slope": np.array(0.0)}
    >>> round(float(expected_retention(p, 1.0, horizon=2)), 6) == round(float(expit(3.0)) ** 2, 6)
    True
    """
    levels = np.asarray(north_star_levels, dtype=float)
    survival = 1.0
    for k in range(int(horizon)):
        survival = survival * (1.0 - expected_hazard(params, levels, segment, tenure + k))
    return np.asarray(survival)


def retention_curve(posterior: Any, population: Any, horizon: int, n_levels: int = 40):
    """Return retention over ``horizon`` periods by North Star level, mean and 90 % interval.

    The population's accounts weight the segments and its mean tenure is the starting tenure.

    Parameters
    ----------
    posterior : nsm_sim.simulate.PosteriorDraws
        Flattened posterior draws (``churn_intercept``, ``churn_slope``, ``tenure_slope``,
        ``hinge_jump``, ``hinge_tau`` as attributes).
    population : nsm_sim.data.Population
        The accounts alive at the last period.
    horizon : int
        Periods.
    n_levels : int
        Levels between the population's 2nd and 98th percentile of the North Star.

    Returns
    -------
    pandas.DataFrame
        ``level``, ``mean``, ``low``, ``high``.
    """
    pop = population.frame
    lo, hi = np.percentile(pop["north_star"], [2, 98])
    levels = np.linspace(max(lo, 0.0), hi, n_levels)
    weights = pop.groupby("segment_idx")["accounts"].sum()
    w = np.zeros(len(posterior.segments))
    w[weights.index.to_numpy()] = weights.to_numpy()
    w = w / w.sum()
    tenure = float(np.average(pop["tenure"], weights=pop["accounts"]))
    log_tenure = np.log1p(tenure + 1 + np.arange(horizon))  # (H,)
    x = np.log1p(levels)[None, :, None, None]  # (1, L, 1, 1)
    jump = 0.0 if posterior.hinge_jump is None else posterior.hinge_jump[:, None, None, None]
    tau = None if posterior.hinge_tau is None else posterior.hinge_tau[:, None, None, None]
    logit = churn_logit(
        x,
        log_tenure[None, None, None, :],
        posterior.churn_intercept[:, None, :, None],
        posterior.churn_slope[:, None, :, None],
        posterior.tenure_slope[:, None, None, None],
        jump,
        tau,
    )  # (D, L, S, H)
    retained = np.prod(1.0 - expit(logit), axis=-1) @ w  # (D, L)
    low, high = np.percentile(retained, [5, 95], axis=0)
    return pd.DataFrame({"level": levels, "mean": retained.mean(0), "low": low, "high": high})
