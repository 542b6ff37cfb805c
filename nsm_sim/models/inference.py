"""Inference: the fit of the drivers and the retention hazard together, and its tables.

:func:`fit` reduces a checked panel to sufficient statistics and churn cells, samples one PyMC
model holding the driver model of every parent node and the churn hazard
(:mod:`nsm_sim.models.sampling`), draws the integrated-out elasticities and threshold, grades
the trust gates (:mod:`nsm_sim.models.diagnostics`) and writes a card;
:func:`summarise` (:mod:`nsm_sim.models.summary`) turns a fit into tables. Bundles are
:mod:`nsm_sim.models.bundle`.
"""

from __future__ import annotations

import time
from importlib import metadata

import numpy as np
import xarray as xr

from nsm_sim import data as data_mod
from nsm_sim.files import to_jsonable
from nsm_sim.models.bundle import BUNDLE_FILES, Fit, load_bundle, save_bundle, tree_differences
from nsm_sim.models.diagnostics import diagnose, diagnostics_summary
from nsm_sim.models.sampling import DEFAULT_SAMPLER, sample
from nsm_sim.models.summary import TOGETHER, summarise
from nsm_sim.numeric import STAGE_FIT, child_seed, stream
from nsm_sim.spec import MetricTree

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


def population_slope(posterior: xr.Dataset, cells) -> xr.DataArray:
    """Return the churn slope of the population observed: the segments' slopes averaged by rows.

    As for the elasticities (``elasticity_population``), this is what the data say about the
    accounts observed; ``churn_slope_mu``, the mean the segments' slopes are drawn from, is
    mostly the prior on their spread when there are few segments (with one, it is not
    identified apart from that spread).

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``churn_slope`` ("chain", "draw", "segment").
    cells : ChurnCells
        The fit's churn cells (their ``at_risk`` rows weight the segments).

    Returns
    -------
    xarray.DataArray
        ``churn_slope_population`` ("chain", "draw").
    """
    rows = cells.frame.groupby("segment_idx")["at_risk"].sum()
    rows = rows.reindex(range(len(cells.segments)), fill_value=0).to_numpy(float)
    weights = xr.DataArray(rows / rows.sum(), dims="segment")
    return (posterior["churn_slope"] * weights).sum("segment").rename("churn_slope_population")


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
        low_rank=True,  # the slopes and the jump move together: a quarter fewer leapfrog steps
    )
    t_sample = time.perf_counter() - t1
    drawn = draw_elasticities(stats, tree, idata.posterior, seed=stream(seed, STAGE_FIT, 1))
    if hinge:
        drawn["hinge_tau"] = draw_hinge_tau(cells, idata.posterior, seed=stream(seed, STAGE_FIT, 2))
    drawn["churn_slope_population"] = population_slope(idata.posterior, cells)
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
    "population_slope",
    "sample",
    "save_bundle",
    "summarise",
    "tree_differences",
]
