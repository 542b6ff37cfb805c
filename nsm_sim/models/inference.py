"""Inference: the fit of the drivers and the retention hazard together, and its tables.

:func:`fit` reduces a checked panel to sufficient statistics and churn cells, samples one PyMC
model holding the driver model of every parent node and the churn hazard
(:mod:`nsm_sim.models.sampling`), draws the integrated-out elasticities and threshold, grades
the trust gates (:mod:`nsm_sim.models.diagnostics`) and writes a card;
:func:`summarise` turns a fit into tables. Bundles are :mod:`nsm_sim.models.bundle`.
"""

from __future__ import annotations

import time
from importlib import metadata

import numpy as np
import pandas as pd
import xarray as xr

from nsm_sim import data as data_mod
from nsm_sim.files import to_jsonable
from nsm_sim.models.bundle import BUNDLE_FILES, Fit, load_bundle, save_bundle, tree_differences
from nsm_sim.models.diagnostics import diagnose, diagnostics_summary
from nsm_sim.models.sampling import DEFAULT_SAMPLER, sample
from nsm_sim.numeric import STAGE_FIT, child_seed, interval, stream
from nsm_sim.spec import MetricTree, edge_label

#: The retention summary's row of the slope and the step together (with a threshold step).
TOGETHER = "slope and step together"

#: Estimation notes shown with the elasticities.
WITHIN_NOTE = "elasticities are estimated within accounts with period effects"
POOLED_NOTE = (
    "elasticities are estimated pooled across accounts (no account or period effects): "
    "account size and common shocks can bias them"
)


def build_fit_model(stats, cells, tree: MetricTree, *, hinge: bool = True):
    """Build the one PyMC model of a fit: every parent's drivers and the retention hazard.

    Parameters
    ----------
    stats : mapping of str to DriverStats
        Driver statistics per parent node.
    cells : ChurnCells
        Churn cells of the North Star.
    tree : MetricTree
        The metric tree.
    hinge : bool, default True
        Hinge at a threshold in the hazard.

    Returns
    -------
    pymc.Model
    """
    import pymc as pm

    from nsm_sim.models.drivers import add_driver_terms, driver_coords
    from nsm_sim.models.retention import add_retention_terms

    with pm.Model(coords=driver_coords(stats, tree)) as model:
        add_driver_terms(stats, tree)
        add_retention_terms(cells, hinge=hinge)
    return model


def _versions() -> dict[str, str]:
    out = {}
    for name in ("nsm-sim", "pymc", "pytensor", "nutpie", "arviz", "numpy"):
        try:
            out[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name.replace("-", "_")] = "unknown"
    return out


def _constant_data(reduction: data_mod.Reduction) -> xr.Dataset:
    """Return the data the trust gates' predictive checks need, kept in the InferenceData."""
    from nsm_sim.models.drivers import reduce_stats

    tree = reduction.tree
    ns = tree.north_star
    r = reduce_stats(reduction.driver_stats[ns])
    kids = list(tree.children[ns])
    g = reduction.period_cells.frame
    ds = xr.Dataset(
        {
            "ppc_period": ("ppc_cell", g["period"].to_numpy(np.int64)),
            "ppc_segment_idx": ("ppc_cell", g["segment_idx"].to_numpy(np.int64)),
            "ppc_x": ("ppc_cell", g["x"].to_numpy(float)),
            "ppc_log_tenure": ("ppc_cell", g["log_tenure"].to_numpy(float)),
            "ppc_at_risk": ("ppc_cell", g["at_risk"].to_numpy(np.int64)),
            "ppc_churned": ("ppc_cell", g["churned"].to_numpy(np.int64)),
        }
    )
    ds["ppc_ns_syy"] = ("segment", r["syy"])
    ds["ppc_ns_sxx"] = (("segment", "ns_child", "ns_child_"), r["sxx"])
    ds["ppc_ns_n_eff"] = ("segment", r["n_eff"])
    ds = ds.assign_coords(segment=list(reduction.segments), ns_child=kids, ns_child_=kids)
    ds.attrs["north_star"] = ns
    ds["ppc_ns_syy"].attrs["parent"] = ns
    return ds


def fit(
    panel: data_mod.Panel,
    *,
    within: bool = True,
    hinge: bool | str = "auto",
    sampler: str = DEFAULT_SAMPLER,
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> Fit:
    """Fit the drivers of every parent node and the retention hazard of a panel, together.

    One PyMC model (one compile) holds the driver model of every parent node
    (:mod:`nsm_sim.models.drivers`, likelihood from sufficient statistics) and the discrete-time
    hazard of churn on the North Star (:mod:`nsm_sim.models.retention`, Binomial cells). The
    elasticities and the threshold are integrated out while sampling and drawn from their
    exact conditionals afterwards (:func:`nsm_sim.models.drivers.draw_elasticities`,
    :func:`nsm_sim.models.retention.draw_hinge_tau`).

    Parameters
    ----------
    panel : Panel
        A checked panel.
    within : bool, default True
        Estimate elasticities within accounts with period effects; ``False``: pooled.
    hinge : bool or "auto", default "auto"
        Threshold step in the hazard: ``"auto"`` turns it on only where
        :func:`nsm_sim.models.retention.step_evidence` says the data call for it (enough
        distinct levels of the North Star and a gain in expected elpd); ``True`` or
        ``False`` decide. The choice and its reason are in the card (``hinge_choice``).
    sampler : {"nutpie", "pymc"}, default "nutpie"
        See :func:`sample`.
    draws, tune : int, default 500
        Per chain.
    chains : int, default 4
        Chains.
    seed : int, default 0
        The fit's seed: the sampler, the elasticity and threshold draws and the predictive
        checks each take their own stream of it (:func:`nsm_sim.numeric.stream`).
    progress : bool, default False
        Show the sampler's progress bar.

    Returns
    -------
    Fit
        With :func:`diagnose`'s table, a card and the forecast's history table.
    """
    from nsm_sim.forecast.history import panel_history  # the forecast imports the models

    t0 = time.perf_counter()
    reduction = data_mod.reduce_panel(panel, within=within)
    result = fit_reduction(
        reduction,
        hinge=hinge,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress=progress,
        reduce_seconds=time.perf_counter() - t0,
    )
    result.history = panel_history(panel).frame
    return result


def fit_reduction(
    reduction: data_mod.Reduction,
    *,
    hinge: bool | str = "auto",
    sampler: str = DEFAULT_SAMPLER,
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    seed: int = 0,
    progress: bool = False,
    reduce_seconds: float = 0.0,
) -> Fit:
    """Fit the models from a panel's reduction (no rows needed): see :func:`fit`.

    Parameters
    ----------
    reduction : nsm_sim.data.Reduction
        From :func:`nsm_sim.data.reduce_panel` or a query engine.
    hinge, sampler, draws, tune, chains, seed, progress
        As for :func:`fit`.
    reduce_seconds : float, default 0
        Time the reduction took, for the card.

    Returns
    -------
    Fit
    """
    from nsm_sim.models.drivers import draw_elasticities
    from nsm_sim.models.retention import draw_hinge_tau

    t0 = time.perf_counter() - reduce_seconds
    tree = reduction.tree
    stats = reduction.driver_stats
    cells = reduction.churn_cells
    choice = hinge_choice(cells, hinge)
    hinge = choice["on"]
    population = reduction.population
    within = next(iter(stats.values())).within
    const = _constant_data(reduction)
    t_reduce = reduce_seconds

    model = build_fit_model(stats, cells, tree, hinge=hinge)
    t1 = time.perf_counter()
    idata = sample(
        model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=child_seed(seed, STAGE_FIT, 0),
        progress=progress,
    )
    t_sample = time.perf_counter() - t1
    drawn = draw_elasticities(stats, tree, idata.posterior, seed=stream(seed, STAGE_FIT, 1))
    if hinge:
        drawn["hinge_tau"] = draw_hinge_tau(cells, idata.posterior, seed=stream(seed, STAGE_FIT, 2))
    idata.posterior = idata.posterior.assign(drawn)
    if "constant_data" in idata.groups():  # PyMC's sampler stores the model's pm.Data
        merged = xr.merge([idata.constant_data, const], compat="override")
        merged.attrs.update(const.attrs)
        idata.constant_data = merged
    else:
        idata.add_groups({"constant_data": const})
    t2 = time.perf_counter()
    checks = diagnose(idata, seed=stream(seed, STAGE_FIT, 3))
    t_diag = time.perf_counter() - t2

    summary = reduction.summary
    levels = reduction.north_star_quantiles
    pop = population.frame
    ref_tenure = (
        float(np.median(np.repeat(pop["tenure"].to_numpy(), pop["accounts"].to_numpy())))
        if len(pop)
        else 0.0
    )
    card = {
        "kind": "nsm-sim fit",
        "tree": tree.model_dump(mode="json"),
        "tree_fingerprint": tree.fingerprint(),
        "data_fingerprint": reduction.fingerprint,
        "source": reduction.source,
        "rows": int(summary["rows"]),
        "accounts": int(summary["accounts"]),
        "periods": int(summary["periods"]["count"]),
        "segments": list(reduction.segments),
        "versions": _versions(),
        "seed": int(seed),
        "sampler": sampler,
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "within": bool(within),
        "estimation": WITHIN_NOTE if within else POOLED_NOTE,
        "hinge": bool(hinge),
        "hinge_choice": choice,
        "north_star_levels": dict(levels),
        "reference_tenure": ref_tenure,
        "diagnostics": diagnostics_summary(checks),
        "seconds": {
            "data_reduction": round(t_reduce, 3),
            "compile_and_sample": round(t_sample, 3),
            "diagnostics": round(t_diag, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
        "panel": summary,
    }
    card = to_jsonable(card)
    return Fit(
        idata=idata,
        tree=tree,
        panel=card["panel"],
        card=card,
        population=population,
        diagnostics=checks,
    )


def hinge_choice(cells, hinge: bool | str = "auto") -> dict:
    """Return whether the fit's hazard has the threshold step, and why.

    Parameters
    ----------
    cells : ChurnCells
        The North Star's churn cells.
    hinge : bool or {"auto", "on", "off"}, default "auto"
        ``"auto"``: on where :func:`nsm_sim.models.retention.step_evidence` says the data
        call for it; otherwise as asked.

    Returns
    -------
    dict
        ``requested`` ("auto", "on" or "off"), ``on`` (bool), ``reason`` (a sentence),
        ``levels`` and ``elpd_gain`` (None when not looked at, or too few levels).

    Raises
    ------
    ValueError
        For any other ``hinge``.
    """
    from nsm_sim.models.retention import step_evidence

    if isinstance(hinge, bool):
        requested = "on" if hinge else "off"
    else:
        requested = str(getattr(hinge, "value", hinge))  # a str or an enum of them
    if requested not in ("auto", "on", "off"):
        raise ValueError(f"hinge must be 'auto', 'on' or 'off' (or a bool), got {hinge!r}")
    if requested != "auto":
        return {
            "requested": requested,
            "on": requested == "on",
            "reason": f"threshold step {requested}: as asked (--hinge {requested})",
            "levels": None,
            "elpd_gain": None,
        }
    evidence = step_evidence(cells)
    return {"requested": "auto", **evidence}


# --------------------------------------------------------------------------- summaries


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
        metric); ``<north star> odds ratio per e-fold`` (``exp(slope)``: the odds of churn
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
    slope_mu = _samples(post, "churn_slope_mu").values
    for i, s in enumerate(segments):
        add("intercept", intercept[:, i], s)
    add(ns, slope_mu)
    for i, s in enumerate(segments):
        add(ns, slope[:, i], s)
    odds = f"{ns} odds ratio per e-fold"
    add(odds, np.exp(slope_mu))
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
        together = combined_effect(slope_mu, params["hinge_jump"], params["hinge_tau"], low, high)
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


__all__ = [
    "BUNDLE_FILES",
    "POOLED_NOTE",
    "TOGETHER",
    "WITHIN_NOTE",
    "Fit",
    "build_fit_model",
    "diagnose",
    "diagnostics_summary",
    "fit",
    "fit_reduction",
    "hinge_choice",
    "load_bundle",
    "sample",
    "save_bundle",
    "summarise",
    "tree_differences",
]
