"""Drivers: the metric tree as elasticities (hierarchical log-log model).

For every parent node P of the tree with children C_1..C_K and every segment s::

    log1p(P[i,t]) = a[s] + sum_k b[s,k] * log1p(C_k[i,t]) + e[i,t],   e ~ Normal(0, sigma[s])
    b[s,k] ~ Normal(mu_k, tau_k)

``b[s,k]`` is an elasticity: +1 % in C_k moves P by about b % in segment s. Segments pool
partially towards the population elasticity ``mu_k``.

The likelihood from sufficient statistics
-----------------------------------------
The model never sees rows. The Gaussian likelihood of each parent and segment is evaluated
exactly from the sums of :class:`~nsm_sim.data.DriverStats`::

    log L = -n_eff/2 * log(2 pi sigma^2) - SSR / (2 sigma^2)
    SSR   = sum_y2 - 2 b'Xty + b'XtX b                      (within: no intercept)

so the cost of a gradient does not depend on the number of rows. By default the statistics are
within-account with period effects (two-way within transformation), which removes account size
and shocks common to all accounts; then ``n_eff = n - n_absorbed`` (the likelihood of the
residualised rows with the degrees of freedom the fixed effects took). In the pooled variant
each segment has an intercept, parameterised at the segment's mean of the children
(``driver_intercept`` is the fitted ``log1p(P)`` at ``mean(log1p(C))``), which makes it
orthogonal to the elasticities::

    SSR = Syy - 2 b'Sxy + b'Sxx b + n (mean_y - a)^2       (pooled; centred sums)

Sampling: the elasticities integrated out
-----------------------------------------
The elasticities and their population means integrate out in closed form
(:mod:`nsm_sim.models.elasticities`): the sampler sees only the spreads ``tau``, the residual
scales ``sigma`` (and the pooled intercepts), and :func:`draw_elasticities` draws ``mu`` and
``b`` from their exact conditionals afterwards.

Priors (weakly informative, on the log1p scale)
-----------------------------------------------
- ``elasticity_mu[e] ~ Normal(0, 1)``: population elasticity of edge e; log-log elasticities
  are of order one, the sign is left to the data. Past experiments sharpen it (below).
- ``elasticity_tau[e] ~ HalfNormal(0.2)``: spread of the elasticity across segments; segments
  are expected to differ by tenths, not by units.
- ``elasticity[e, s] ~ Normal(mu_e, tau_e)``.
- ``driver_sigma[p, s] ~ HalfNormal(1)``: residual standard deviation of ``log1p(P)``.
- ``driver_intercept[p, s] ~ Normal(0, 5)`` (pooled only).

Calibration by experiments
--------------------------
Elasticities from observational data are associations: a cause that moves an input and its
parent together biases them. A past experiment that moved an input C by a known relative lift
``x`` and measured its parent's lift with a 90 % interval ``[l, h]`` measures the causal
population elasticity of the edge (:func:`edge_priors`)::

    e  = (log(1 + l) + log(1 + h)) / 2 / log(1 + x)
    se = (log(1 + h) - log(1 + l)) / (2 * 1.645) / |log(1 + x)|
    e ~ Normal(mu, se)

On a calibrated edge the data measure ``mu + delta`` and ``b[s] + delta``, with an unknown
bias ``delta ~ Normal(0, 0.5)`` shared by the segments; the experiment fixes the level, the
data the differences between segments. Everything stays Gaussian, so the sampler still sees
only ``tau`` and ``sigma``: ``mu ~ Normal(m, v)`` with ``1 / v = 1 + sum 1 / se^2`` and ``m =
v * sum e / se^2`` (the experiments' own marginal density does not depend on the sampled
parameters), the observed level ``nu = mu + delta ~ Normal(m, v + 0.25)`` takes the place of
``mu`` in the integrated likelihood, and :func:`draw_elasticities` splits each draw of ``nu``
into ``mu`` and ``delta`` and returns the causal ``b[s] = b_observed[s] - delta``. An
uncalibrated edge has no bias term: its observational elasticity is taken as causal.

Intervals under serial correlation
----------------------------------
Residuals of one account are rarely independent over periods. The likelihood's curvature in
the elasticities is calibrated to the cluster-robust (by account) covariance of the
estimates (:mod:`nsm_sim.models.elasticities` says how and why this approach), so the
intervals of ``b`` have the width a cluster-robust panel regression gives.

The population row
------------------
``elasticity_mu`` is the mean of the distribution the segments' elasticities are drawn from;
with one segment (or few) the data say little about it and its interval is mostly the prior
on the spread ``tau``. What the data say about the population observed is
``elasticity_population = sum_s w_s b[s]`` with ``w_s`` the segments' shares of rows: with
one segment it is that segment's elasticity, with its cluster-robust interval.

Posterior variables (names and dims are a contract with the simulator): ``elasticity``
("edge", "segment"), ``elasticity_mu`` ("edge",), ``elasticity_population`` ("edge",)
(drawn with ``elasticity``), ``elasticity_tau`` ("edge",),
``driver_sigma`` ("parent", "segment"), and with pooled statistics ``driver_intercept``
("parent", "segment"). Edge labels are ``"parent<-child"`` in ``tree.edges`` order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from nsm_sim.data import DriverStats
from nsm_sim.models.elasticities import (
    MU_PRIOR_VAR,
    elasticity_conditionals,
    marginal_bhat_logp,
    reduce_stats,
    sqrtm_psd,
)
from nsm_sim.numeric import Z_90
from nsm_sim.spec import MetricTree, edge_label

#: Prior scales, written down once (see the module docstring).
PRIORS = {
    "elasticity_mu": ("Normal", 0.0, MU_PRIOR_VAR**0.5),
    "elasticity_bias": ("Normal", 0.0, 0.5),
    "elasticity_tau": ("HalfNormal", 0.2),
    "driver_sigma": ("HalfNormal", 1.0),
    "driver_intercept": ("Normal", 0.0, 5.0),
}


def _check_stats(stats: Mapping[str, DriverStats], tree: MetricTree) -> tuple[str, ...]:
    parents = tuple(tree.children)
    missing = [p for p in parents if p not in stats]
    if missing:
        raise ValueError(f"driver statistics missing for parent(s) {missing}")
    segments = stats[parents[0]].segments
    within = stats[parents[0]].within
    for p in parents:
        st = stats[p]
        if tuple(st.children) != tuple(tree.children[p]):
            raise ValueError(
                f"driver statistics of {p!r} are for children {st.children}, "
                f"the tree has {tree.children[p]}"
            )
        if tuple(st.segments) != tuple(segments) or st.within != within:
            raise ValueError("driver statistics disagree on segments or on within/pooled")
    return tuple(segments)


def edge_priors(tree: MetricTree) -> dict[str, np.ndarray]:
    """Return the prior of every population elasticity, calibrated by the tree's experiments.

    Parameters
    ----------
    tree : MetricTree
        The metric tree and its ``experiments``.

    Returns
    -------
    dict
        In ``tree.edges`` order: ``mean`` (E,) and ``var`` (E,) of the causal population
        elasticity ``elasticity_mu`` given the experiments, ``bias_var`` (E,) (the prior
        variance of the observational bias: 0.25 on calibrated edges, 0 elsewhere), and
        ``experiments`` (E,) (a tuple of the names of the experiments that calibrate each
        edge, empty when none does). The observed level ``mu + bias`` is
        ``Normal(mean, var + bias_var)``.

    Examples
    --------
    >>> from nsm_sim.spec import MetricTree, edge_label
    >>> tree = MetricTree(name="t", north_star="n", inputs={"a": [], "b": []}, experiments=[
    ...     {"name": "A/B", "input": "a", "input_lift": "10%",
    ...      "parent_lift": {"low": "1%", "high": "9%"}}])
    >>> p = edge_priors(tree)
    >>> p["experiments"], round(float(p["mean"][0]), 3), float(p["mean"][1])
    ([('A/B',), ()], 0.476, 0.0)
    """
    calibration = list(tree.calibration.values())
    precision = np.full(len(calibration), 1.0 / MU_PRIOR_VAR)
    weighted = np.zeros(len(calibration))
    for k, experiments in enumerate(calibration):
        for exp in experiments:
            log_x = np.log1p(exp.input_lift)
            lo, hi = np.log1p(exp.parent_lift.low), np.log1p(exp.parent_lift.high)
            se = (hi - lo) / (2.0 * Z_90) / abs(log_x)
            precision[k] += 1.0 / se**2
            weighted[k] += 0.5 * (lo + hi) / log_x / se**2
    bias_var = PRIORS["elasticity_bias"][2] ** 2
    return {
        "mean": weighted / precision,
        "var": 1.0 / precision,
        "bias_var": np.array([bias_var if exps else 0.0 for exps in calibration]),
        "experiments": [tuple(e.name for e in exps) for exps in calibration],
    }


def driver_coords(stats: Mapping[str, DriverStats], tree: MetricTree) -> dict[str, list[str]]:
    """Return the model coordinates the driver terms use: ``edge``, ``parent``, ``segment``.

    Parameters
    ----------
    stats : mapping of str to DriverStats
        Sufficient statistics per parent node.
    tree : MetricTree
        The metric tree.

    Returns
    -------
    dict
        Coordinates for :class:`pymc.Model`.
    """
    segments = _check_stats(stats, tree)
    return {
        "edge": [edge_label(p, c) for p, c in tree.edges],
        "parent": list(tree.children),
        "segment": list(segments),
    }


def add_driver_terms(
    stats: Mapping[str, DriverStats],
    tree: MetricTree,
    *,
    marginal: bool = True,
    cluster_robust: bool = True,
) -> None:
    """Add the driver model of every parent node to the current :class:`pymc.Model`.

    The statistics enter as ``pm.Data`` so that a compiled model can be reused with new data
    of the same shapes.

    Parameters
    ----------
    stats : mapping of str to DriverStats
        Sufficient statistics per parent node (all within, or all pooled).
    tree : MetricTree
        The metric tree; gives the parents, their children and the edge order.
    marginal : bool, default True
        Integrate the elasticities out (sample ``elasticity_tau`` and ``driver_sigma`` only;
        draw ``elasticity_mu`` and ``elasticity`` afterwards with :func:`draw_elasticities`).
        ``False`` samples the explicit non-centred model (``elasticity_z``,
        ``elasticity_mu`` and the deterministic ``elasticity``).
    cluster_robust : bool, default True
        Calibrate the likelihood to the cluster-robust (by account) covariance of the
        estimates (:func:`reduce_stats`).

    Returns
    -------
    None
        Adds the variables and one ``driver_loglik_<parent>`` potential per parent.
    """
    _check_stats(stats, tree)
    model = pm.modelcontext(None)
    for name, values in driver_coords(stats, tree).items():
        if name not in model.coords:
            model.add_coord(name, values)
        elif list(model.coords[name]) != list(values):
            raise ValueError(f"model coordinate {name!r} differs from the driver statistics'")
    parents = list(tree.children)
    within = stats[parents[0]].within

    prior = edge_priors(tree)
    level_var = prior["var"] + prior["bias_var"]  # the level the data see: mu + bias
    tau = pm.HalfNormal("elasticity_tau", PRIORS["elasticity_tau"][1], dims="edge")
    if not marginal:
        mu = pm.Normal("elasticity_mu", prior["mean"], np.sqrt(level_var), dims="edge")
        z = pm.Normal("elasticity_z", 0.0, 1.0, dims=("edge", "segment"))
        b_all = pm.Deterministic(
            "elasticity", mu[:, None] + tau[:, None] * z, dims=("edge", "segment")
        )
    sigma = pm.HalfNormal("driver_sigma", PRIORS["driver_sigma"][1], dims=("parent", "segment"))
    if not within:
        intercept = pm.Normal(
            "driver_intercept", 0.0, PRIORS["driver_intercept"][2], dims=("parent", "segment")
        )

    reduced = {p: reduce_stats(stats[p], cluster_robust=cluster_robust) for p in parents}
    if marginal:
        integrated = _integrated_terms(reduced, sigma, tau, prior["mean"], level_var)
    start = 0
    for j, p in enumerate(parents):
        r = reduced[p]
        S, K = r["bhat"].shape
        rows = slice(start, start + K)
        start += K
        s2 = sigma[j] ** 2
        if marginal:
            df = pm.Data(f"driver_{p}_df", r["df"])
            ssr = pm.Data(f"driver_{p}_ssr_min", r["ssr_min"])
            logdet = pm.Data(f"driver_{p}_logdet_sxx", r["logdet_sxx"])
            loglik = pt.sum(-0.5 * df * pt.log(2.0 * np.pi * s2) - ssr / (2.0 * s2) - 0.5 * logdet)
            loglik = loglik + integrated[j]
        else:
            b = b_all[rows].T  # (S, K)
            n_eff = pm.Data(f"driver_{p}_n_eff", r["n_eff"])
            syy = pm.Data(f"driver_{p}_syy", r["lik_syy"])
            sxy = pm.Data(f"driver_{p}_sxy", r["lik_sxy"])
            sxx = pm.Data(f"driver_{p}_sxx", r["lik_sxx"])
            ssr = (
                syy
                - 2.0 * pt.sum(b * sxy, axis=-1)
                + pt.sum(b[:, :, None] * sxx * b[:, None, :], axis=(-2, -1))
            )
            loglik = pt.sum(-0.5 * n_eff * pt.log(2.0 * np.pi * s2) - ssr / (2.0 * s2))
        if not within:
            n = pm.Data(f"driver_{p}_n", r["n"])
            mean_y = pm.Data(f"driver_{p}_mean_y", r["mean_y"])
            loglik = loglik - pt.sum(n * (mean_y - intercept[j]) ** 2 / (2.0 * s2))
        pm.Potential(f"driver_loglik_{p}", loglik)


def _integrated_terms(reduced: Mapping[str, dict], sigma, tau, level_mean, level_var):
    """Return the integrated likelihood of every parent (J,) from one `MarginalBhatLogp`."""
    sizes = [r["bhat"].shape[1] for r in reduced.values()]
    J, S, K = len(sizes), next(iter(reduced.values()))["bhat"].shape[0], max(sizes)
    bhat = np.zeros((J, S, K))
    sxx_inv = np.zeros((J, S, K, K))
    mu_mean, mu_var = np.zeros((J, K)), np.ones((J, K))
    parent_idx, child_idx = [], []
    for j, r in enumerate(reduced.values()):
        k = sizes[j]
        bhat[j, :, :k] = r["bhat"]
        sxx_inv[j, :, :k, :k] = r["sxx_inv"]
        parent_idx += [j] * k
        child_idx += list(range(k))
    # every parent's edges, in tree order, into its padded row (see _marginal_logp_and_grad)
    mu_mean[parent_idx, child_idx] = level_mean
    mu_var[parent_idx, child_idx] = level_var
    tau2 = pt.set_subtensor(pt.ones((J, K))[parent_idx, child_idx], tau**2)
    return marginal_bhat_logp(
        pm.Data("driver_bhat", bhat),
        pm.Data("driver_sxx_inv", sxx_inv),
        sigma**2,
        tau2,
        pm.Data("driver_mu_prior_mean", mu_mean),
        pm.Data("driver_mu_prior_var", mu_var),
        sizes,
    )


def build_driver_model(
    stats: Mapping[str, DriverStats],
    tree: MetricTree,
    *,
    marginal: bool = True,
    cluster_robust: bool = True,
) -> pm.Model:
    """Build the hierarchical driver model of every parent node of ``tree``.

    Parameters
    ----------
    stats : mapping of str to DriverStats
        Sufficient statistics per parent node, e.g. from :func:`nsm_sim.data.driver_stats`.
    tree : MetricTree
        The metric tree.
    marginal : bool, default True
        Integrate the elasticities out; see :func:`add_driver_terms`.
    cluster_robust : bool, default True
        Calibrate the likelihood to the cluster-robust covariance; see :func:`add_driver_terms`.

    Returns
    -------
    pymc.Model
        The model; see the module docstring for its variables and priors.
    """
    with pm.Model(coords=driver_coords(stats, tree)) as model:
        add_driver_terms(stats, tree, marginal=marginal, cluster_robust=cluster_robust)
    return model


def draw_elasticities(
    stats: Mapping[str, DriverStats],
    tree: MetricTree,
    posterior: xr.Dataset,
    seed=0,
    *,
    cluster_robust: bool = True,
) -> xr.Dataset:
    """Draw the elasticities for every posterior draw of the marginal model.

    For each draw of ``elasticity_tau`` and ``driver_sigma``: ``mu`` from its Gaussian
    conditional given the data, then ``b`` given ``mu`` (both exact); the population
    elasticity is the rows' average of ``b`` over the segments.

    Parameters
    ----------
    stats : mapping of str to DriverStats
        The statistics the model was fitted to.
    tree : MetricTree
        The metric tree.
    posterior : xarray.Dataset
        The posterior group, with ``elasticity_tau`` ("chain", "draw", "edge") and
        ``driver_sigma`` ("chain", "draw", "parent", "segment").
    seed : int or numpy.random.Generator, default 0
        Randomness of the draws.
    cluster_robust : bool, default True
        As the model was built (:func:`add_driver_terms`).

    Returns
    -------
    xarray.Dataset
        ``elasticity_mu`` ("chain", "draw", "edge"), ``elasticity`` ("chain", "draw",
        "edge", "segment") and ``elasticity_population`` ("chain", "draw", "edge"), with the
        posterior's coordinates.
    """
    rng = np.random.default_rng(seed)
    tau_all = posterior["elasticity_tau"].transpose("chain", "draw", "edge")
    sigma_all = posterior["driver_sigma"].transpose("chain", "draw", "parent", "segment")
    C, D = tau_all.shape[:2]
    segments = _check_stats(stats, tree)
    S = len(segments)
    E = len(tree.edges)
    mu_out = np.empty((C * D, E))
    b_out = np.empty((C * D, E, S))
    prior = edge_priors(tree)
    start = 0
    for j, p in enumerate(tree.children):
        r = reduce_stats(stats[p], cluster_robust=cluster_robust)
        K = r["bhat"].shape[1]
        tau = tau_all.values.reshape(C * D, E)[:, start : start + K]
        sigma = sigma_all.values.reshape(C * D, -1, S)[:, j, :]
        edges = slice(start, start + K)
        m, v, bias_var = prior["mean"][edges], prior["var"][edges], prior["bias_var"][edges]
        cond = elasticity_conditionals(r, tau, sigma, prior_mean=m, prior_var=v + bias_var)
        level = cond["mu_mean"] + np.einsum(
            "dij,dj->di", sqrtm_psd(cond["mu_cov"]), rng.standard_normal((C * D, K))
        )
        cond = elasticity_conditionals(r, tau, sigma, level)
        b = cond["b_mean"] + np.einsum(
            "dsij,dsj->dsi", sqrtm_psd(cond["b_cov"]), rng.standard_normal((C * D, S, K))
        )
        # mu | level: the experiments' Normal(m, v) against the bias' Normal(0, bias_var)
        share = v / (v + bias_var)
        mu = m + share * (level - m) + np.sqrt(share * bias_var) * rng.standard_normal(level.shape)
        mu_out[:, start : start + K] = mu
        b_out[:, start : start + K, :] = np.swapaxes(b - (level - mu)[:, None, :], 1, 2)
        start += K
    rows = np.asarray(stats[tree.north_star].n, dtype=float)
    population = b_out @ (rows / rows.sum())
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        "edge": [edge_label(p, c) for p, c in tree.edges],
        "segment": list(segments),
    }
    return xr.Dataset(
        {
            "elasticity_mu": (("chain", "draw", "edge"), mu_out.reshape(C, D, E)),
            "elasticity": (("chain", "draw", "edge", "segment"), b_out.reshape(C, D, E, S)),
            "elasticity_population": (("chain", "draw", "edge"), population.reshape(C, D, E)),
        },
        coords=coords,
    )


def pooled_intercept(stats: DriverStats, intercept_c, b) -> np.ndarray:
    """Return the raw intercept ``a`` of the pooled model from its centred parameterisation.

    Parameters
    ----------
    stats : DriverStats
        Pooled statistics of one parent.
    intercept_c : array_like, shape (..., S)
        ``driver_intercept`` of that parent (fitted ``log1p(P)`` at the mean children).
    b : array_like, shape (..., S, K)
        Elasticities of that parent's children.

    Returns
    -------
    ndarray, shape (..., S)
        ``a = intercept_c - b' mean_x``.
    """
    mean_x = reduce_stats(stats)["mean_x"]
    return np.asarray(intercept_c) - np.sum(np.asarray(b) * mean_x, axis=-1)
