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
- ``churn_slope_z ~ ZeroSumNormal(1)`` over segments and ``churn_slope = mu + sigma * z``
  (non-centred): ``churn_slope_mu`` is then exactly the average of the segments' slopes, so its
  posterior does not widen and narrow with ``sigma`` (with independent ``z`` it does, and with
  three segments that funnel made NUTS diverge: R-hat 1.02 on ``churn_slope_mu``). With a
  single segment ``z`` is a plain ``Normal(0, 1)``.
- ``tenure_slope ~ Normal(0, 1)``: change of the logit per unit of ``log1p(tenure)``.
- ``hinge_jump ~ Normal(0, 1)``: change of the logit at and above the threshold.
- ``hinge_tau ~ Uniform(p5, p95)``: the threshold, on the North Star's own scale, anywhere
  between the 5th and 95th percentile of the observed North Star (rows weighted).

The threshold integrated out
----------------------------
With binned or discrete North Star levels the likelihood of ``hinge_tau`` is flat between
levels with walls of width ``HINGE_WIDTH`` at them: NUTS diverges at the walls and chains
started in different flats do not meet (measured on the synthetic world: R-hat 1.03 and a tail
ESS of 100 for ``hinge_tau`` in 1,200 draws). So the model integrates the threshold out over a
grid (:func:`hinge_grid`: intervals at most ``HINGE_WIDTH`` wide on the log1p scale,
each weighted by its prior probability; intervals the data rule out, by a profile likelihood
more than 10 log units below the best, are dropped; every chain starts at the maximum
likelihood at the best threshold, so that no chain starts in a minor mode): the potential
``churn_cells`` is
``logsumexp_g(log w_g + log Binomial(cells | churn_logit(..., hinge_jump, tau_g)))``. The
sampler then sees only smooth parameters, and :func:`draw_hinge_tau` draws ``hinge_tau`` from
its exact conditional on the grid afterwards (uniformly within the drawn interval).

The posterior variables (a contract with the simulator): ``churn_intercept`` ("segment",),
``churn_slope`` ("segment",), ``churn_slope_mu``, ``churn_slope_sigma``, ``tenure_slope``, and
with a hinge ``hinge_jump`` and ``hinge_tau`` (scalars; ``hinge_tau`` is added to the posterior
by :func:`draw_hinge_tau`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, logsumexp

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


def _logistic_fit(X: np.ndarray, n: np.ndarray, k: np.ndarray, iters: int = 50):
    """Maximum Binomial log likelihood of a logistic regression and its coefficients (Newton)."""
    beta = np.zeros(X.shape[1])
    ridge = 1e-8 * np.eye(X.shape[1])
    for _ in range(iters):
        p = expit(X @ beta)
        grad = X.T @ (k - n * p)
        hess = (X * (n * p * (1.0 - p))[:, None]).T @ X + ridge
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    eta = X @ beta
    return float(np.sum(k * eta - n * np.logaddexp(0.0, eta))), beta


def hinge_grid(
    cells: ChurnCells, max_points: int = 120, keep: float = 10.0
) -> dict[str, np.ndarray]:
    """Return the grid over which the threshold ``hinge_tau`` is integrated out.

    The prior range (:func:`hinge_bounds`) is cut into intervals of equal width on the
    ``log1p`` scale, at most ``HINGE_WIDTH`` wide (the smooth step moves by at most its width
    from one point to the next), at most ``max_points`` of them. Intervals whose
    profile log likelihood (the cells' Binomial likelihood maximised over segment intercepts,
    a common slope, tenure and the jump, by Newton's method) is more than ``keep`` below the
    best are dropped: the likelihood at any other parameter value is below the profile, so
    their posterior mass is below about ``exp(-keep)`` relative to the rest. This keeps the
    cost of a gradient proportional to the plausible thresholds, not to the prior range.

    Parameters
    ----------
    cells : ChurnCells
        The churn cells.
    max_points : int, default 120
        Largest number of intervals before dropping.
    keep : float, default 10
        Profile log-likelihood margin of the intervals kept.

    Returns
    -------
    dict of ndarray
        ``low`` and ``high`` (G,) (the kept intervals on the North Star's scale), ``tau``
        (G,) (their mid-points on the log1p scale, back on the North Star's scale),
        ``log_weight`` (G,) (log prior probability of each interval under
        ``Uniform(low, high)`` of :func:`hinge_bounds`), ``step`` (G, C) (the hinge term
        ``sigmoid((x - log1p(tau_g)) / HINGE_WIDTH)`` of every cell, from
        :func:`churn_logit`), ``mean_step`` (C,) (its mean over the intervals weighted by
        prior times profile likelihood, used to centre the intercepts) and ``start`` (the
        maximum-likelihood ``intercept`` per segment, ``slope``, ``tenure_slope`` and
        ``hinge_jump`` at the best threshold, where every chain starts).
    """
    lo, hi = hinge_bounds(cells)
    u_lo, u_hi = np.log1p(lo), np.log1p(hi)
    n = int(np.clip(np.ceil((u_hi - u_lo) / HINGE_WIDTH), 2, max_points))
    u_edges = np.linspace(u_lo, u_hi, n + 1)
    edges = np.expm1(u_edges)
    tau = np.expm1(0.5 * (u_edges[:-1] + u_edges[1:]))
    weight = np.diff(edges) / (edges[-1] - edges[0])
    a = _cell_arrays(cells)
    step = churn_logit(a["x"][None, :], 0.0, 0.0, 0.0, 0.0, 1.0, tau[:, None])
    seg = np.eye(len(cells.segments))[a["segment_idx"]]
    base = np.column_stack([seg, a["x"], a["log_tenure"]])
    fits = [_logistic_fit(np.column_stack([base, h]), a["at_risk"], a["churned"]) for h in step]
    profile = np.array([fit[0] for fit in fits])
    best = fits[int(np.argmax(profile))][1]
    kept = profile >= profile.max() - keep
    w = weight[kept]
    # where the data put the threshold (prior x profile likelihood): the hinge term is centred
    # there, which decorrelates the intercepts from the jump (a reparameterisation only)
    post = w * np.exp(profile[kept] - profile.max())
    return {
        "low": edges[:-1][kept],
        "high": edges[1:][kept],
        "tau": tau[kept],
        "log_weight": np.log(w),
        "step": step[kept],
        "mean_step": (post / post.sum()) @ step[kept],
        "start": {
            "intercept": best[: seg.shape[1]],
            "slope": float(best[-3]),
            "tenure_slope": float(best[-2]),
            "hinge_jump": float(best[-1]),
        },
    }


def _log_choose(cells: ChurnCells) -> float:
    a = _cell_arrays(cells)
    n, k = a["at_risk"], a["churned"]
    return float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))


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
        ``churn_slope_sigma``, ``churn_slope_z``, ``churn_slope``, ``tenure_slope`` and the
        observed ``churn_cells`` (Binomial); with a hinge, ``hinge_jump`` and ``churn_cells``
        is the potential with ``hinge_tau`` integrated out (draw it afterwards with
        :func:`draw_hinge_tau`).
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

    start = None
    if hinge:
        grid = hinge_grid(cells)
        start = grid["start"]
        # the starting point on the model's parameters (the intercept centred per segment)
        hinge_at_ref = w @ grid["mean_step"]
        start_c = (
            start["intercept"]
            + start["slope"] * (w @ a["x"])
            + start["tenure_slope"] * (w @ a["log_tenure"])
            + start["hinge_jump"] * hinge_at_ref
        )
    intercept_c = pm.Normal(
        "churn_intercept_c",
        PRIORS["churn_intercept_c"][1],
        PRIORS["churn_intercept_c"][2],
        dims="segment",
        initval=None if start is None else start_c,
    )
    slope_mu = pm.Normal(
        "churn_slope_mu",
        0.0,
        PRIORS["churn_slope_mu"][2],
        initval=None if start is None else start["slope"],
    )
    slope_sigma = pm.HalfNormal("churn_slope_sigma", PRIORS["churn_slope_sigma"][1])
    if len(cells.segments) > 1:
        slope_z = pm.ZeroSumNormal("churn_slope_z", sigma=1.0, dims="segment")
    else:
        slope_z = pm.Normal("churn_slope_z", 0.0, 1.0, dims="segment")
    slope = pm.Deterministic("churn_slope", slope_mu + slope_sigma * slope_z, dims="segment")
    tenure_slope = pm.Normal(
        "tenure_slope",
        0.0,
        PRIORS["tenure_slope"][2],
        initval=None if start is None else start["tenure_slope"],
    )
    jump, hinge_ref = 0.0, 0.0
    if hinge:
        step = pm.Data("hinge_grid_step", grid["step"])
        log_weight = pm.Data("hinge_grid_log_weight", grid["log_weight"])
        mean_step = pm.Data("hinge_grid_mean_step", grid["mean_step"])
        jump = pm.Normal("hinge_jump", 0.0, PRIORS["hinge_jump"][2], initval=start["hinge_jump"])
        hinge_ref = jump * pt.dot(weight, mean_step)
    intercept = pm.Deterministic(
        "churn_intercept",
        intercept_c - slope * x_ref - tenure_slope * lt_ref - hinge_ref,
        dims="segment",
    )
    base = churn_logit(x, log_tenure, intercept[seg], slope[seg], tenure_slope)
    if not hinge:
        pm.Binomial("churn_cells", n=at_risk, logit_p=base, observed=churned)
        return
    # hinge_tau integrated out over the grid: eta[g, c] = churn_logit(..., jump, tau_g)
    eta = base[None, :] + jump * step
    loglik = pt.sum(churned * eta - at_risk * pt.softplus(eta), axis=1)
    log_choose = pm.Data("churn_log_choose", _log_choose(cells))
    pm.Potential("churn_cells", pm.math.logsumexp(log_weight + loglik) + log_choose)


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


def draw_hinge_tau(cells: ChurnCells, posterior, seed=0, chunk: int = 100):
    """Draw ``hinge_tau`` for every posterior draw of a model that integrated it out.

    For each draw of the other parameters the grid interval of the threshold is drawn with
    probability proportional to its prior weight times the likelihood of the cells at its
    mid-point, then the threshold uniformly within the interval (the prior is uniform on the
    North Star's scale and the likelihood is taken as constant within an interval).

    Parameters
    ----------
    cells : ChurnCells
        The cells the model was fitted to.
    posterior : xarray.Dataset
        With ``churn_intercept`` and ``churn_slope`` ("chain", "draw", "segment"),
        ``tenure_slope`` and ``hinge_jump`` ("chain", "draw").
    seed : int or numpy.random.Generator, default 0
        Randomness of the draws.
    chunk : int, default 100
        Draws evaluated at once (memory: ``chunk x grid x cells`` floats).

    Returns
    -------
    xarray.DataArray
        ``hinge_tau`` ("chain", "draw").
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    grid = hinge_grid(cells)
    a = _cell_arrays(cells)

    def flat(name):
        da = posterior[name]
        dims = ("chain", "draw", *[d for d in da.dims if d not in ("chain", "draw")])
        v = da.transpose(*dims).values
        return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

    intercept, slope = flat("churn_intercept"), flat("churn_slope")
    tenure, jump = flat("tenure_slope"), flat("hinge_jump")
    n_draws = intercept.shape[0]
    seg = a["segment_idx"]
    out = np.empty(n_draws)
    for start in range(0, n_draws, chunk):
        sl = slice(start, min(start + chunk, n_draws))
        base = churn_logit(
            a["x"][None, :],
            a["log_tenure"][None, :],
            intercept[sl][:, seg],
            slope[sl][:, seg],
            tenure[sl][:, None],
        )
        eta = base[:, None, :] + jump[sl][:, None, None] * grid["step"][None]
        loglik = np.sum(a["churned"] * eta - a["at_risk"] * np.logaddexp(0.0, eta), axis=-1)
        logp = grid["log_weight"][None, :] + loglik
        prob = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        cum = np.cumsum(prob, axis=1)
        g = (cum < rng.random((cum.shape[0], 1)) * cum[:, -1:]).sum(axis=1)
        g = np.minimum(g, len(grid["tau"]) - 1)
        lo, hi = grid["low"][g], grid["high"][g]
        out[sl] = lo + (hi - lo) * rng.random(len(g))
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    return xr.DataArray(
        out.reshape(n_chain, n_draw),
        dims=("chain", "draw"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values},
        name="hinge_tau",
    )


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
