"""The retention model in PyMC: cells, the hinge grid, data containers, and reading the draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln, log_expit, logsumexp

from nsm_sim.data import ChurnCells
from nsm_sim.models.retention.hazard import HINGE_WIDTH, PRIORS, churn_logit, prior_scales
from nsm_sim.numeric import logistic_map, weighted_quantile

# --------------------------------------------------------------------------- the hinge grid


def hinge_bounds(cells: ChurnCells) -> tuple[float, float]:
    """Return the prior range of ``hinge_tau``: the 5th and 95th percentile of the metric.

    Parameters
    ----------
    cells : ChurnCells
        The churn cells (rows weighted by ``at_risk``).

    Returns
    -------
    tuple of float
        ``(low, high)`` on the metric's own scale; ``high > low``.
    """
    f = cells.frame
    lo, hi = weighted_quantile(
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


def hinge_grid(cells: ChurnCells, max_points: int = 120, keep: float = 10.0) -> dict[str, Any]:
    """Return the grid over which the threshold ``hinge_tau`` is integrated out.

    The prior range (:func:`hinge_bounds`) is cut into intervals of equal width on the
    ``log1p`` scale, at most ``HINGE_WIDTH`` wide (the smooth step moves by at most its width
    from one point to the next), at most ``max_points`` of them. The profile log likelihood
    of each interval's mid-point is the cells' Binomial likelihood maximised over segment
    intercepts, a common slope, tenure and the jump (:func:`nsm_sim.numeric.logistic_map`).
    Intervals whose profile is more than ``keep`` below the best are dropped: the likelihood
    at any other parameter value is below the profile, so their posterior mass is below about
    ``exp(-keep)`` relative to the rest. This keeps the cost of a gradient proportional to the
    plausible thresholds, not to the prior range.

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
    dict
        ``low`` and ``high`` (G,) (the kept intervals on the metric's scale), ``tau`` (G,)
        (their mid-points on the log1p scale, back on the metric's scale), ``log_weight`` (G,)
        (log prior probability of each interval under ``Uniform(low, high)`` of
        :func:`hinge_bounds`), ``step`` (G, C) (the hinge term ``sigmoid((x - log1p(tau_g)) /
        HINGE_WIDTH)`` of every cell, from :func:`churn_logit`), ``mean_step`` (C,) (its mean
        over the intervals weighted by prior times profile likelihood, used to centre the
        intercepts), ``start`` (the maximum-likelihood ``intercept`` per segment, ``slope``,
        ``tenure_slope`` and ``hinge_jump`` at the best threshold, where every chain starts)
        and ``profile``, a DataFrame of every interval before dropping: ``tau``, ``log_lik``
        (the profile log likelihood) and ``jump`` (the maximum-likelihood jump).
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
    fits = [logistic_map(np.column_stack([base, h]), a["churned"], a["at_risk"]) for h in step]
    profile = np.array([loglik for _, _, loglik in fits])
    best = fits[int(np.argmax(profile))][0]
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
        "profile": pd.DataFrame(
            {"tau": tau, "log_lik": profile, "jump": [beta[-1] for beta, _, _ in fits]}
        ),
    }


#: Distinct levels a metric needs before a threshold step is fit by default: with few levels a
#: step between two of them is the slope said another way (with two, a 0/1 metric, the slope
#: and the step are the same contrast and their posteriors split one effect between them).
HINGE_MIN_LEVELS = 10

#: Expected gain in elpd a step must bring to be on by default (as for the validation's
#: threshold: below 4 an elpd difference is small; Sivula et al. 2020).
HINGE_MIN_ELPD_GAIN = 4.0


def step_evidence(cells: ChurnCells) -> dict[str, Any]:
    """Return whether the data call for a threshold step in the churn model, and why.

    The step is on when the metric has at least :data:`HINGE_MIN_LEVELS` distinct levels and
    the step's expected gain in elpd is above :data:`HINGE_MIN_ELPD_GAIN`: the gain in
    maximum log-likelihood at the best threshold of :func:`hinge_grid` over the smooth model,
    less the two parameters it adds (jump and threshold; Akaike's estimate of the elpd).

    Parameters
    ----------
    cells : ChurnCells
        The churn cells of the metric.

    Returns
    -------
    dict
        ``on`` (bool), ``levels`` (distinct levels of the metric in the cells),
        ``elpd_gain`` (None when too few levels to look) and ``reason`` (a sentence).
    """
    level = cells.frame["level"].to_numpy(float)
    levels = int(np.unique(np.round(level, 9)).size)
    metric = cells.metric or "the metric"
    if levels < HINGE_MIN_LEVELS:
        reason = (
            f"no threshold step: {metric} takes {levels} distinct levels (a step needs "
            f"{HINGE_MIN_LEVELS}; with fewer it only splits the slope's effect)"
        )
        return {"on": False, "levels": levels, "elpd_gain": None, "reason": reason}
    a = _cell_arrays(cells)
    seg = np.eye(len(cells.segments))[a["segment_idx"]]
    base = np.column_stack([seg, a["x"], a["log_tenure"]])
    _, _, smooth = logistic_map(base, a["churned"], a["at_risk"])
    gain = float(hinge_grid(cells)["profile"]["log_lik"].max() - smooth) - 2.0
    on = gain > HINGE_MIN_ELPD_GAIN
    verb = "improves" if on else "does not improve"
    reason = (
        f"threshold step {'on' if on else 'off'}: a step in {metric} {verb} the expected "
        f"elpd by more than {HINGE_MIN_ELPD_GAIN:g} (estimated gain {gain:+.1f})"
    )
    return {"on": bool(on), "levels": levels, "elpd_gain": gain, "reason": reason}


# --------------------------------------------------------------------------- model


def retention_data(cells: ChurnCells, *, hinge: bool = True) -> dict[str, np.ndarray]:
    """Return the values of every data container of the retention model on some cells.

    Parameters
    ----------
    cells : ChurnCells
        Binomial cells of the metric.
    hinge : bool, default True
        Include the hinge grid (:func:`hinge_grid`) and the starting point at its best
        threshold.

    Returns
    -------
    dict of ndarray
        ``churn_segment_idx``, ``churn_x``, ``churn_log_tenure``, ``churn_at_risk``,
        ``churn_churned`` (C,), ``churn_x_ref`` and ``churn_log_tenure_ref`` (S,) (the means
        over each segment's rows the intercept is centred at), ``churn_log_choose`` (the sum
        of the log Binomial coefficients), the slopes' prior scales of
        :func:`~nsm_sim.models.retention.hazard.prior_scales` and, with the hinge,
        ``hinge_grid_step`` (G, C), ``hinge_grid_step_churned`` (G,) (the step times the
        churn events, summed over the cells),
        ``hinge_grid_log_weight`` (G,), ``hinge_step_ref`` (S,) (each segment's mean of the
        grid's ``mean_step``) and the starting point ``churn_start_intercept_c`` (S,),
        ``churn_start_slope``, ``churn_start_tenure_slope``, ``hinge_start_jump``.
    """
    a = _cell_arrays(cells)
    onehot = np.eye(len(cells.segments))[a["segment_idx"]].T * a["at_risk"][None, :]
    w = onehot / np.maximum(onehot.sum(axis=1, keepdims=True), 1.0)
    n, k = a["at_risk"], a["churned"]
    data = {f"churn_{k}": v for k, v in a.items()}
    data.update(
        churn_x_ref=w @ a["x"],
        churn_log_tenure_ref=w @ a["log_tenure"],
        churn_log_choose=np.float64(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))),
        **{
            name: np.float64(value)
            for name, value in prior_scales(a["x"], a["log_tenure"], a["at_risk"]).items()
        },
    )
    if not hinge:
        return data
    grid = hinge_grid(cells)
    start = grid["start"]
    step_ref = w @ grid["mean_step"]
    return {
        **data,
        "hinge_grid_step": grid["step"],
        "hinge_grid_step_churned": grid["step"] @ a["churned"].astype(float),
        "hinge_grid_log_weight": grid["log_weight"],
        "hinge_step_ref": step_ref,
        # the starting point on the model's parameters (the intercept centred per segment)
        "churn_start_intercept_c": start["intercept"]
        + start["slope"] * data["churn_x_ref"]
        + start["tenure_slope"] * data["churn_log_tenure_ref"]
        + start["hinge_jump"] * step_ref,
        "churn_start_slope": np.float64(start["slope"]),
        "churn_start_tenure_slope": np.float64(start["tenure_slope"]),
        "hinge_start_jump": np.float64(start["hinge_jump"]),
    }


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


def add_retention_terms(
    cells: ChurnCells, *, hinge: bool = True, segment_slopes: bool = True
) -> None:
    """Add the discrete-time hazard model to the current :class:`pymc.Model`.

    Parameters
    ----------
    cells : ChurnCells
        Binomial cells of the metric (from :func:`nsm_sim.data.churn_cells`).
    hinge : bool, default True
        Add the hinge at a threshold ``hinge_tau``.
    segment_slopes : bool, default True
        Each segment's slope partially pooled around ``churn_slope_mu``; False for one slope
        common to every segment (``churn_slope`` then repeats ``churn_slope_mu``, and there
        is no ``churn_slope_sigma`` or ``churn_slope_z``).

    Returns
    -------
    None
        Adds the data containers of :func:`retention_data`, ``churn_intercept_c``,
        ``churn_intercept``, ``churn_slope_mu``, ``churn_slope_sigma``, ``churn_slope_z``,
        ``churn_slope``, ``tenure_slope`` and the potential ``churn_cells``: the cells'
        Binomial log-likelihood (its coefficients from the data, not recomputed at every
        gradient); with a hinge, ``hinge_jump``, and ``churn_cells`` has ``hinge_tau``
        integrated out (draw it afterwards with :func:`draw_hinge_tau`). With a hinge the
        chains start at the data's ``churn_start_*`` and ``hinge_start_jump``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    if "segment" in model.coords:
        if list(model.coords["segment"]) != list(cells.segments):
            raise ValueError("churn cells and model disagree on the segments")
    else:
        model.add_coord("segment", list(cells.segments))
    d = {name: pm.Data(name, value) for name, value in retention_data(cells, hinge=hinge).items()}

    _, mean, sd = PRIORS["churn_intercept_c"]
    intercept_c = pm.Normal(
        "churn_intercept_c", mean, sd, dims="segment", initval=d.get("churn_start_intercept_c")
    )
    slope_mu = pm.Normal(
        "churn_slope_mu", 0.0, d["churn_slope_prior_sd"], initval=d.get("churn_start_slope")
    )
    if segment_slopes:
        slope_sigma = pm.HalfNormal("churn_slope_sigma", d["churn_slope_sigma_prior_sd"])
        if len(cells.segments) > 1:
            slope_z = pm.ZeroSumNormal("churn_slope_z", sigma=1.0, dims="segment")
        else:
            slope_z = pm.Normal("churn_slope_z", 0.0, 1.0, dims="segment")
        slope_dev = slope_sigma * slope_z
    else:
        slope_dev = pt.zeros(len(cells.segments))
    slope = pm.Deterministic("churn_slope", slope_mu + slope_dev, dims="segment")
    tenure_slope = pm.Normal(
        "tenure_slope",
        0.0,
        d["tenure_slope_prior_sd"],
        initval=d.get("churn_start_tenure_slope"),
    )
    _, mean, sd = PRIORS["hinge_jump"]
    jump = pm.Normal("hinge_jump", mean, sd, initval=d["hinge_start_jump"]) if hinge else 0.0
    hinge_ref = jump * d["hinge_step_ref"] if hinge else 0.0
    intercept = pm.Deterministic(
        "churn_intercept",
        intercept_c
        - slope * d["churn_x_ref"]
        - tenure_slope * d["churn_log_tenure_ref"]
        - hinge_ref,
        dims="segment",
    )
    seg, at_risk, churned = d["churn_segment_idx"], d["churn_at_risk"], d["churn_churned"]
    base = churn_logit(
        d["churn_x"], d["churn_log_tenure"], intercept[seg], slope[seg], tenure_slope
    )
    if not hinge:
        loglik = pt.sum(churned * base - at_risk * pt.softplus(base))
        pm.Potential("churn_cells", loglik + d["churn_log_choose"])
        return
    # hinge_tau integrated out over the grid: eta[g, c] = churn_logit(..., jump, tau_g); the
    # events' term is linear in eta, so its grid part is the data's step @ churned
    eta = base[None, :] + jump * d["hinge_grid_step"]
    events = pt.sum(churned * base) + jump * d["hinge_grid_step_churned"]
    loglik = events - pt.sum(at_risk * pt.softplus(eta), axis=1)
    pm.Potential(
        "churn_cells",
        pm.math.logsumexp(d["hinge_grid_log_weight"] + loglik) + d["churn_log_choose"],
    )


def build_retention_model(cells: ChurnCells, *, hinge: bool = True, segment_slopes: bool = True):
    """Build the discrete-time hazard model of churn on a metric.

    Parameters
    ----------
    cells : ChurnCells
        Binomial cells of the metric (the North Star by default of
        :func:`nsm_sim.data.churn_cells`).
    hinge : bool, default True
        Add the hinge at a threshold ``hinge_tau``.
    segment_slopes : bool, default True
        Slopes per segment, partially pooled; False for one common slope
        (:func:`add_retention_terms`).

    Returns
    -------
    pymc.Model
        The model; see the module docstring for its variables and priors.
    """
    import pymc as pm

    # the cells are checked counts and every parameter is inside its support by its transform:
    # no bound checks at every gradient
    with pm.Model(coords=retention_coords(cells), check_bounds=False) as model:
        add_retention_terms(cells, hinge=hinge, segment_slopes=segment_slopes)
    return model


def _flat_draws(posterior, name: str) -> np.ndarray:
    """Return a posterior variable with chains and draws stacked on the first axis."""
    da = posterior[name]
    dims = ("chain", "draw", *[d for d in da.dims if d not in ("chain", "draw")])
    v = da.transpose(*dims).values
    return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])


def draw_hinge_tau(cells: ChurnCells, posterior, seed=0, chunk: int = 100):
    """Draw ``hinge_tau`` for every posterior draw of a model that integrated it out.

    For each draw of the other parameters the grid interval of the threshold is drawn with
    probability proportional to its prior weight times the likelihood of the cells at its
    mid-point, then the threshold uniformly within the interval (the prior is uniform on the
    metric's scale and the likelihood is taken as constant within an interval).

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
    intercept, slope = (
        _flat_draws(posterior, "churn_intercept"),
        _flat_draws(posterior, "churn_slope"),
    )
    tenure, jump = _flat_draws(posterior, "tenure_slope"), _flat_draws(posterior, "hinge_jump")
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


def account_log_likelihood(
    posterior, cells: ChurnCells, accounts: np.ndarray, churned: np.ndarray
) -> np.ndarray:
    """Return the log-likelihood of each account's rows per posterior draw.

    Each row counts as a Bernoulli trial at its cell's covariates (the cells' Binomial
    likelihood split by account, without the binomial coefficients), so the sum over accounts
    is the cells' log-likelihood up to a constant, and models of different metrics (different
    cells) are scored on the same units and outcomes.

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``churn_intercept`` and ``churn_slope`` ("chain", "draw", "segment") and
        ``tenure_slope``; with ``hinge_jump`` and ``hinge_tau`` the hinge counts.
    cells : ChurnCells
        The cells of the fit, with their ``row_cell`` (from :func:`nsm_sim.data.churn_cells`).
    accounts : ndarray of int, shape (rows,)
        Account code ``0..A-1`` of each row of the panel's frame.
    churned : ndarray, shape (rows,)
        Churn event (0/1) of each row.

    Returns
    -------
    ndarray, shape (chain, draw, A)
        Rows outside the cells (``row_cell == -1``) count for nothing.
    """
    import scipy.sparse as sp

    if cells.row_cell is None:
        raise ValueError("the cells carry no row -> cell index (make them with churn_cells)")
    a = _cell_arrays(cells)
    seg = a["segment_idx"]
    hinge = "hinge_tau" in posterior and "hinge_jump" in posterior
    eta = churn_logit(
        a["x"][None, :],
        a["log_tenure"][None, :],
        _flat_draws(posterior, "churn_intercept")[:, seg],
        _flat_draws(posterior, "churn_slope")[:, seg],
        _flat_draws(posterior, "tenure_slope")[:, None],
        _flat_draws(posterior, "hinge_jump")[:, None] if hinge else 0.0,
        _flat_draws(posterior, "hinge_tau")[:, None] if hinge else None,
    )  # (draws, cells)
    ok = cells.row_cell >= 0
    n_accounts = int(np.max(accounts)) + 1
    where = (np.asarray(accounts)[ok], cells.row_cell[ok])
    shape = (n_accounts, eta.shape[1])
    rows = sp.csr_matrix((np.ones(ok.sum()), where), shape=shape)
    events = sp.csr_matrix((np.asarray(churned, dtype=float)[ok], where), shape=shape)
    events.eliminate_zeros()  # the rows that churned only
    log_lik = rows @ log_expit(-eta).T + events @ (log_expit(eta) - log_expit(-eta)).T
    return np.asarray(log_lik).T.reshape(posterior.sizes["chain"], posterior.sizes["draw"], -1)
