"""Tables of a fit: the elasticities and the churn model, means and 90 % intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from nsm_sim.models.bundle import Fit
from nsm_sim.numeric import interval
from nsm_sim.spec import edge_label

#: The retention summary's row of the slope and the step together (with a threshold step).
TOGETHER = "slope and step together"


def _mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    summary = interval(values)
    return summary["mean"], summary["low"], summary["high"]


def _samples(post: xr.Dataset, name: str) -> xr.DataArray:
    return post[name].stack(sample=("chain", "draw")).transpose("sample", ...)


def summarise(fit: Fit) -> dict[str, pd.DataFrame]:
    """Tables of a fit: elasticities and the churn model, means and 90 % intervals.

    Parameters
    ----------
    fit : Fit
        A fit (from :func:`fit` or :func:`load_bundle`).

    Returns
    -------
    dict of pandas.DataFrame
        ``"drivers"``: ``parent``, ``child``, ``segment`` (None for the population
        elasticity: the segments' elasticities averaged by their account-periods, or for an
        edge that experiments calibrate the population mean they measured),
        ``mean``, ``low``, ``high`` and ``calibrated_by`` (the experiments of the tree that
        calibrate the edge, ``"; "``-joined; empty when none does).
        ``"retention"``: ``term``, ``segment`` (None for population terms), ``mean``,
        ``low``, ``high`` and ``north_star`` (the level, for retention rows). Terms:
        ``intercept``; the North Star's slope on ``log1p`` (named after the North Star
        metric; its population row is :func:`population_slope`); ``<north star> odds ratio
        per e-fold`` (``exp(slope)``: the odds of churn
        when ``log1p`` of the North Star grows by one);
        ``tenure``; ``hinge_jump`` and ``hinge_tau`` with a hinge, and ``slope and step
        together (LOW to HIGH)``: the change of the churn logit from the North Star's p10 to
        its p90 (:func:`~nsm_sim.models.retention.combined_effect` of the population slope,
        jump and threshold), which stays clear when the split between slope and step does
        not; ``retention over H periods
        at p10 / p50 / p90`` of the observed North Star (accounts of the reference tenure).
    """
    from nsm_sim.models.retention import combined_effect, expected_retention

    post = fit.idata.posterior
    tree = fit.tree
    ns = tree.north_star
    rows = []
    # The population row: the segments' elasticities averaged by their rows; an edge that
    # experiments calibrate keeps the population mean they measured (as do older bundles).
    mu = _samples(post, "elasticity_mu")
    averaged = _samples(post, "elasticity_population") if "elasticity_population" in post else mu
    b = _samples(post, "elasticity")
    for (parent, child), experiments in tree.calibration.items():
        label = edge_label(parent, child)
        names = "; ".join(e.name for e in experiments)
        edge = {"parent": parent, "child": child, "calibrated_by": names}
        population = mu if experiments else averaged
        m, lo, hi = _mean_interval(population.sel(edge=label).values)
        rows.append({**edge, "segment": None, "mean": m, "low": lo, "high": hi})
        for s in b["segment"].values:
            m, lo, hi = _mean_interval(b.sel(edge=label, segment=s).values)
            rows.append({**edge, "segment": str(s), "mean": m, "low": lo, "high": hi})
    columns = ["parent", "child", "segment", "mean", "low", "high", "calibrated_by"]
    drivers = pd.DataFrame(rows, columns=columns)

    rows = []
    segments = [str(s) for s in post["segment"].values]

    def add(term, values, segment=None, level=np.nan):
        m, lo, hi = _mean_interval(values)
        rows.append(
            {
                "term": term,
                "segment": segment,
                "mean": m,
                "low": lo,
                "high": hi,
                "north_star": level,
            }
        )

    intercept = _samples(post, "churn_intercept").values
    slope = _samples(post, "churn_slope").values
    # the population row: the segments' slopes averaged by their rows (older bundles: the mean
    # the segments' slopes are drawn from)
    name = "churn_slope_population" if "churn_slope_population" in post else "churn_slope_mu"
    slope_pop = _samples(post, name).values
    for i, s in enumerate(segments):
        add("intercept", intercept[:, i], s)
    add(ns, slope_pop)
    for i, s in enumerate(segments):
        add(ns, slope[:, i], s)
    odds = f"{ns} odds ratio per e-fold"
    add(odds, np.exp(slope_pop))
    for i, s in enumerate(segments):
        add(odds, np.exp(slope[:, i]), s)
    add("tenure", _samples(post, "tenure_slope").values)
    params = {
        "churn_intercept": intercept,
        "churn_slope": slope,
        "tenure_slope": _samples(post, "tenure_slope").values,
    }
    if "hinge_tau" in post:
        params["hinge_jump"] = _samples(post, "hinge_jump").values
        params["hinge_tau"] = _samples(post, "hinge_tau").values
        add("hinge_jump", params["hinge_jump"])
        add("hinge_tau", params["hinge_tau"])
    horizon = tree.retention_horizon
    levels = fit.card.get("north_star_levels", {})
    if "hinge_tau" in post and {"p10", "p90"} <= set(levels):
        low, high = float(levels["p10"]), float(levels["p90"])
        together = combined_effect(slope_pop, params["hinge_jump"], params["hinge_tau"], low, high)
        add(f"{TOGETHER} ({low:.3g} to {high:.3g})", together)
    tenure = float(fit.card.get("reference_tenure", 0.0))
    for i, s in enumerate(segments):
        for q in ("p10", "p50", "p90"):
            if q not in levels:
                continue
            level = float(levels[q])
            values = expected_retention(params, level, horizon, segment=i, tenure=tenure)
            add(f"retention over {horizon} periods at {q}", values, s, level)
    retention = pd.DataFrame(rows, columns=["term", "segment", "mean", "low", "high", "north_star"])
    return {"drivers": drivers, "retention": retention}


__all__ = ["TOGETHER", "summarise"]
