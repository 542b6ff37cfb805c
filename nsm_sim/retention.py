"""Retention: the North Star as a predictor of churn (discrete-time logistic hazard).

For an account alive in period t::

    logit P(churn after t) = intercept[s] + slope[s] * x + tenure_slope * log1p(tenure)
                             + hinge_jump * sigmoid((x - log1p(hinge_tau)) / HINGE_WIDTH)

with ``x = log1p(north_star)``. Retention over h periods is the product of ``1 - hazard``.

The likelihood is a Binomial over cells (segment x tenure band x North Star level) from
:class:`~nsm_sim.data.ChurnCells`: exact where the metric takes few distinct values (each cell
then holds rows with one ``x`` and one tenure), binned otherwise; ``tests/test_retention.py``
measures the binning error against the per-row Bernoulli fit.

Priors (weakly informative, on the logit scale)
-----------------------------------------------
- ``churn_intercept_c[s] ~ Normal(-3, 2)``: the churn logit of segment s at the panel's average
  account-period (mean ``log1p`` North Star, mean ``log1p`` tenure, average hinge term): a
  per-period churn of a few per cent, with room from 0.1 % to 50 %. The intercept of the
  formula, ``churn_intercept = churn_intercept_c - slope * mean_x - tenure_slope *
  mean_log_tenure - hinge_jump * mean_hinge``, is a deterministic of it; centring takes out
  the strong posterior correlation between intercept and slopes.
- ``churn_slope_mu ~ Normal(0, 1)``: change of the churn logit per unit of ``log1p`` North
  Star (per e-fold); pooled across segments.
- ``churn_slope_sigma ~ HalfNormal(0.1)``: spread of the slope across segments (a tenth of a
  logit per e-fold).
- ``churn_slope_z[s] ~ Normal(0, 1)`` and ``churn_slope = mu + sigma * z`` (non-centred).
- ``tenure_slope ~ Normal(0, 1)``: change of the logit per unit of ``log1p(tenure)``.
- ``hinge_jump ~ Normal(0, 1)``: change of the logit at and above the threshold.
- ``hinge_tau ~ Uniform(p5, p95)``: the threshold, on the North Star's own scale, anywhere
  between the 5th and 95th percentile of the observed North Star (rows weighted).

The posterior variables (a contract with the simulator): ``churn_intercept`` ("segment",),
``churn_slope`` ("segment",), ``churn_slope_mu``, ``churn_slope_sigma``, ``tenure_slope``, and
with a hinge ``hinge_jump`` and ``hinge_tau`` (scalars).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit

from nsm_sim.data import ChurnCells

#: Width, on the log1p scale, of the smooth step at the threshold ``hinge_tau``.
HINGE_WIDTH = 0.05

#: Prior scales, written down once (see the module docstring).
PRIORS = {
    "churn_intercept_c": ("Normal", -3.0, 2.0),
    "churn_slope_mu": ("Normal", 0.0, 1.0),
    "churn_slope_sigma": ("HalfNormal", 0.1),
    "tenure_slope": ("Normal", 0.0, 1.0),
    "hinge_jump": ("Normal", 0.0, 1.0),
    "hinge_tau": ("Uniform", "p5", "p95"),
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
        ``log1p`` of the North Star per account per period.
    log_tenure : array_like
        ``log1p`` of tenure in periods.
    intercept, slope, tenure_slope : array_like
        Model parameters (per segment where the caller indexes them so).
    hinge_jump : array_like, default 0
        Change of the logit at and above the threshold.
    hinge_tau : array_like or None
        The threshold on the North Star's own scale; ``None`` for no hinge.
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


# --------------------------------------------------------------------------- model


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    order = np.argsort(values)
    v, w = values[order], weights[order].astype(float)
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cum, v)


def hinge_bounds(cells: ChurnCells) -> tuple[float, float]:
    """Return the prior range of ``hinge_tau``: the 5th and 95th percentile of the North Star.

    Parameters
    ----------
    cells : ChurnCells
        The churn cells (rows weighted by ``at_risk``).

    Returns
    -------
    tuple of float
        ``(low, high)`` on the North Star's own scale; ``high > low``.
    """
    f = cells.frame
    lo, hi = _weighted_quantile(
        f["level"].to_numpy(float), f["at_risk"].to_numpy(float), [0.05, 0.95]
    )
    if not hi > lo:
        hi = lo + max(1.0, abs(lo)) * 0.1
    return float(lo), float(hi)


def _cell_arrays(cells: ChurnCells) -> dict[str, np.ndarray]:
    f = cells.frame
    return {
        "segment_idx": f["segment_idx"].to_numpy(np.int64),
        "x": f["x"].to_numpy(float),
        "log_tenure": f["log_tenure"].to_numpy(float),
        "at_risk": f["at_risk"].to_numpy(np.int64),
        "churned": f["churned"].to_numpy(np.int64),
    }


def _logistic_fit(X: np.ndarray, n: np.ndarray, k: np.ndarray, iters: int = 30) -> float:
    """Maximum Binomial log likelihood of a logistic regression (Newton, small ridge)."""
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        eta = X @ beta
        p = expit(eta)
        grad = X.T @ (k - n * p) - 1e-6 * beta
        hess = (X * (n * p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    eta = X @ beta
    return float(np.sum(k * eta - n * np.logaddexp(0.0, eta)))


def initial_hinge_tau(cells: ChurnCells, n_grid: int = 40) -> float:
    """Return the threshold of highest profile likelihood, a starting point for sampling.

    The hinge makes the likelihood of ``hinge_tau`` flat between observed North Star levels
    with steep walls at them, so chains started at different levels may not meet. All chains
    start at the maximum of the profile likelihood over a grid (each grid point: a logistic
    regression with segment intercepts, a common slope, tenure and the hinge, by Newton).

    Parameters
    ----------
    cells : ChurnCells
        The churn cells.
    n_grid : int, default 40
        Grid points, evenly spaced on the log1p scale within :func:`hinge_bounds`.

    Returns
    -------
    float
        The threshold on the North Star's own scale.
    """
    a = _cell_arrays(cells)
    lo, hi = hinge_bounds(cells)
    seg = np.eye(len(cells.segments))[a["segment_idx"]]
    base = np.column_stack([seg, a["x"], a["log_tenure"]])
    grid = np.expm1(np.linspace(np.log1p(lo), np.log1p(hi), n_grid + 2)[1:-1])
    best, best_tau = -np.inf, float(grid[len(grid) // 2])
    for tau in grid:
        h = expit((a["x"] - np.log1p(tau)) / HINGE_WIDTH)
        ll = _logistic_fit(np.column_stack([base, h]), a["at_risk"], a["churned"])
        if ll > best:
            best, best_tau = ll, float(tau)
    return best_tau


def retention_coords(cells: ChurnCells) -> dict[str, list[str]]:
    """Return the model coordinates the retention terms use (``segment``).

    Parameters
    ----------
    cells : ChurnCells
        The churn cells.

    Returns
    -------
    dict
        Coordinates for :class:`pymc.Model`.
    """
    return {"segment": list(cells.segments)}


def add_retention_terms(cells: ChurnCells, *, hinge: bool = True) -> None:
    """Add the discrete-time hazard model to the current :class:`pymc.Model`.

    Parameters
    ----------
    cells : ChurnCells
        Binomial cells of the North Star (e.g. from :func:`nsm_sim.data.churn_cells`).
    hinge : bool, default True
        Add the hinge at a threshold ``hinge_tau``.

    Returns
    -------
    None
        Adds ``churn_intercept_c``, ``churn_intercept``, ``churn_slope_mu``,
        ``churn_slope_sigma``, ``churn_slope_z``, ``churn_slope``, ``tenure_slope`` (and
        ``hinge_jump``, ``hinge_tau``) and the observed ``churn_cells`` (Binomial).
    """
    import pymc as pm
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    if "segment" in model.coords:
        if list(model.coords["segment"]) != list(cells.segments):
            raise ValueError("churn cells and model disagree on the segments")
    else:
        model.add_coord("segment", list(cells.segments))
    a = _cell_arrays(cells)
    seg = pm.Data("churn_segment_idx", a["segment_idx"])
    x = pm.Data("churn_x", a["x"])
    log_tenure = pm.Data("churn_log_tenure", a["log_tenure"])
    at_risk = pm.Data("churn_at_risk", a["at_risk"])
    churned = pm.Data("churn_churned", a["churned"])

    # per-segment weights of the cells: the intercept is centred at each segment's average
    n_seg = len(cells.segments)
    onehot = np.eye(n_seg)[a["segment_idx"]].T * a["at_risk"][None, :]  # (S, cells)
    w = onehot / np.maximum(onehot.sum(axis=1, keepdims=True), 1.0)
    x_ref = pm.Data("churn_x_ref", w @ a["x"])
    lt_ref = pm.Data("churn_log_tenure_ref", w @ a["log_tenure"])
    weight = pm.Data("churn_weight", w)

    intercept_c = pm.Normal(
        "churn_intercept_c",
        PRIORS["churn_intercept_c"][1],
        PRIORS["churn_intercept_c"][2],
        dims="segment",
    )
    slope_mu = pm.Normal("churn_slope_mu", 0.0, PRIORS["churn_slope_mu"][2])
    slope_sigma = pm.HalfNormal("churn_slope_sigma", PRIORS["churn_slope_sigma"][1])
    slope_z = pm.Normal("churn_slope_z", 0.0, 1.0, dims="segment")
    slope = pm.Deterministic("churn_slope", slope_mu + slope_sigma * slope_z, dims="segment")
    tenure_slope = pm.Normal("tenure_slope", 0.0, PRIORS["tenure_slope"][2])
    jump, tau, hinge_ref = 0.0, None, 0.0
    if hinge:
        lo, hi = hinge_bounds(cells)
        jump = pm.Normal("hinge_jump", 0.0, PRIORS["hinge_jump"][2])
        tau = pm.Uniform(
            "hinge_tau",
            pm.Data("hinge_tau_low", lo),
            pm.Data("hinge_tau_high", hi),
            initval=initial_hinge_tau(cells),
        )
        hinge_ref = jump * pt.dot(weight, pt.sigmoid((x - pt.log1p(tau)) / HINGE_WIDTH))
    intercept = pm.Deterministic(
        "churn_intercept",
        intercept_c - slope * x_ref - tenure_slope * lt_ref - hinge_ref,
        dims="segment",
    )
    logit_p = churn_logit(
        x, log_tenure, intercept[seg], slope[seg], tenure_slope, jump, tau, sigmoid=pt.sigmoid
    )
    pm.Binomial("churn_cells", n=at_risk, logit_p=logit_p, observed=churned)


def build_retention_model(cells: ChurnCells, *, hinge: bool = True):
    """Build the discrete-time hazard model of churn on the North Star.

    Parameters
    ----------
    cells : ChurnCells
        Binomial cells of the North Star.
    hinge : bool, default True
        Add the hinge at a threshold ``hinge_tau``.

    Returns
    -------
    pymc.Model
        The model; see the module docstring for its variables and priors.
    """
    import pymc as pm

    with pm.Model(coords=retention_coords(cells)) as model:
        add_retention_terms(cells, hinge=hinge)
    return model


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
