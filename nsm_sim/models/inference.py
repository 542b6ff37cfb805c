"""Inference: diagnostics, the fit, and the fit bundle (sampling is :mod:`nsm_sim.models.sampling`).

Diagnostics
-----------
:func:`diagnose` grades R-hat, bulk and tail ESS, divergences and tree-depth saturation, and
two posterior predictive checks (churn events per period, variation of the North Star per
segment), each PASS / REVIEW / FAIL with its threshold and, where it applies, the worst
parameter. The data the checks need travel in the InferenceData's ``constant_data`` group, so
a loaded bundle can be diagnosed again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from nsm_sim import data as data_mod
from nsm_sim.errors import BundleError
from nsm_sim.models.retention import churn_logit
from nsm_sim.models.sampling import DEFAULT_SAMPLER, sample
from nsm_sim.spec import MetricTree

#: Thresholds of the trust gates: (PASS if better than the first, REVIEW the second, else FAIL).
RHAT_LIMITS = (1.01, 1.05)
ESS_LIMITS = (400.0, 100.0)
DIVERGENCE_REVIEW_SHARE = 0.01
TREE_DEPTH_LIMITS = (0.0, 0.05)

#: Estimation notes shown with the elasticities.
WITHIN_NOTE = "elasticities are estimated within accounts with period effects"
POOLED_NOTE = (
    "elasticities are estimated pooled across accounts (no account or period effects): "
    "account size and common shocks can bias them"
)

#: Files of a fit bundle.
BUNDLE_FILES = ("posterior.nc", "card.json", "population.csv")


# --------------------------------------------------------------------------- diagnostics


def _grade_upper(value: float, limits: tuple[float, float]) -> str:
    if not np.isfinite(value):
        return "FAIL"
    return "PASS" if value < limits[0] else "REVIEW" if value < limits[1] else "FAIL"


def _grade_lower(value: float, limits: tuple[float, float]) -> str:
    if not np.isfinite(value):
        return "FAIL"
    return "PASS" if value > limits[0] else "REVIEW" if value > limits[1] else "FAIL"


def _worst(ds: xr.Dataset, pick) -> tuple[float, str]:
    """Worst value of a per-parameter diagnostic and the parameter's label."""
    best_val, best_name = None, ""
    for name, da in ds.data_vars.items():
        vals = np.asarray(da.values, dtype=float)
        if vals.size == 0 or np.all(np.isnan(vals)):
            continue
        flat = np.nanargmax(vals) if pick == "max" else np.nanargmin(vals)
        v = float(vals.reshape(-1)[flat])
        if best_val is None or (v > best_val if pick == "max" else v < best_val):
            idx = np.unravel_index(flat, vals.shape) if vals.ndim else ()
            labels = [str(da.coords[d].values[i]) for d, i in zip(da.dims, idx, strict=True)]
            best_val = v
            best_name = f"{name}[{', '.join(labels)}]" if labels else name
    return (np.nan if best_val is None else best_val), best_name


def _tree_depth_flags(stats: xr.Dataset) -> np.ndarray | None:
    for name in ("maxdepth_reached", "reached_max_treedepth"):
        if name in stats:
            return np.asarray(stats[name].values, dtype=bool)
    return None


def _predictive_grade(observed, predicted, what: str) -> tuple[str, str, float]:
    """Grade groups whose observed value should fall inside predictive bands.

    ``predicted`` has draws on its first axis, groups on the second.
    """
    observed = np.asarray(observed, dtype=float)
    lo90, hi90 = np.quantile(predicted, [0.05, 0.95], axis=0)
    lo99, hi99 = np.quantile(predicted, [0.005, 0.995], axis=0)
    out90 = (observed < lo90) | (observed > hi90)
    out99 = (observed < lo99) | (observed > hi99)
    n = observed.size
    share90 = float(out90.mean()) if n else 0.0
    allowed99 = max(1, int(np.ceil(0.02 * n)))
    if out99.sum() <= allowed99 and share90 <= 0.2:
        status = "PASS"
    elif out99.mean() <= 0.1:
        status = "REVIEW"
    else:
        status = "FAIL"
    detail = (
        f"{int(n - out90.sum())}/{n} {what} inside the predictive 90% band, "
        f"{int(out99.sum())} outside the 99% band"
    )
    return status, detail, 1.0 - share90


def diagnose(idata: az.InferenceData, *, seed: int = 0, max_draws: int = 400) -> pd.DataFrame:
    """Grade a fit: sampling diagnostics and posterior predictive checks.

    Thresholds: R-hat < 1.01 PASS, < 1.05 REVIEW, else FAIL; bulk and tail ESS > 400 PASS,
    > 100 REVIEW; divergences 0 PASS, < 1 % of draws REVIEW; tree-depth saturation 0 PASS,
    < 5 % REVIEW. Predictive checks (when the InferenceData holds their data in
    ``constant_data``, as fits of :func:`fit` do): churn events per period and the variation
    of ``log1p`` North Star per segment; PASS when at most 20 % of the groups are outside the
    predictive 90 % band and at most ``max(1, 2 %)`` of them outside the 99 % band (what a
    calibrated model gives by chance), REVIEW when at most 10 % are outside the 99 % band,
    else FAIL.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``posterior`` and ``sample_stats``.
    seed : int, default 0
        Randomness of the predictive draws.
    max_draws : int, default 400
        Posterior draws used by the predictive checks (evenly thinned).

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check``, ``value``, ``threshold``, ``status`` (PASS, REVIEW or
        FAIL), ``parameter`` (the worst one, or "") and ``detail`` (a sentence).
    """
    post = idata.posterior
    rows: list[dict[str, Any]] = []
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    total = n_chains * n_draws

    rhat = az.rhat(post) if n_chains > 1 else None
    if rhat is not None:
        v, name = _worst(rhat, "max")
        rows.append(
            {
                "check": "r_hat",
                "value": v,
                "threshold": "< 1.01 PASS, < 1.05 REVIEW",
                "status": _grade_upper(v, RHAT_LIMITS),
                "parameter": name,
                "detail": f"largest R-hat {v:.3f} ({name})",
            }
        )
    for method in ("bulk", "tail"):
        v, name = _worst(az.ess(post, method=method), "min")
        rows.append(
            {
                "check": f"ess_{method}",
                "value": v,
                "threshold": "> 400 PASS, > 100 REVIEW",
                "status": _grade_lower(v, ESS_LIMITS),
                "parameter": name,
                "detail": f"smallest {method} ESS {v:.0f} ({name})",
            }
        )
    stats = idata.get("sample_stats")
    if stats is not None and "diverging" in stats:
        div = int(np.asarray(stats["diverging"].values, dtype=bool).sum())
        share = div / max(total, 1)
        status = "PASS" if div == 0 else "REVIEW" if share < DIVERGENCE_REVIEW_SHARE else "FAIL"
        rows.append(
            {
                "check": "divergences",
                "value": float(div),
                "threshold": "0 PASS, < 1% of draws REVIEW",
                "status": status,
                "parameter": "",
                "detail": f"{div} divergent transitions in {total} draws ({share:.2%})",
            }
        )
    flags = _tree_depth_flags(stats) if stats is not None else None
    if flags is not None:
        share = float(flags.mean())
        status = (
            "PASS"
            if share <= TREE_DEPTH_LIMITS[0]
            else "REVIEW"
            if share < TREE_DEPTH_LIMITS[1]
            else "FAIL"
        )
        rows.append(
            {
                "check": "tree_depth",
                "value": share,
                "threshold": "0 PASS, < 5% of draws at the maximum depth REVIEW",
                "status": status,
                "parameter": "",
                "detail": f"{share:.1%} of draws reached the maximum tree depth",
            }
        )
    rows.extend(_predictive_checks(idata, seed=seed, max_draws=max_draws))
    return pd.DataFrame(
        rows, columns=["check", "value", "threshold", "status", "parameter", "detail"]
    )


def _thinned(post: xr.Dataset, name: str, max_draws: int) -> np.ndarray:
    da = post[name].stack(sample=("chain", "draw")).transpose("sample", ...)
    step = max(1, da.sizes["sample"] // max_draws)
    return np.asarray(da.values[::step], dtype=float)


def _predictive_checks(idata, *, seed: int, max_draws: int) -> list[dict[str, Any]]:
    const = idata.get("constant_data")
    post = idata.posterior
    rng = np.random.default_rng(seed)
    rows = []
    if const is not None and "ppc_churned" in const and "churn_intercept" in post:
        intercept = _thinned(post, "churn_intercept", max_draws)
        slope = _thinned(post, "churn_slope", max_draws)
        tenure = _thinned(post, "tenure_slope", max_draws)
        hinge = "hinge_tau" in post
        seg = const["ppc_segment_idx"].values.astype(int)
        logit = churn_logit(
            const["ppc_x"].values[None, :],
            const["ppc_log_tenure"].values[None, :],
            intercept[:, seg],
            slope[:, seg],
            tenure[:, None],
            _thinned(post, "hinge_jump", max_draws)[:, None] if hinge else 0.0,
            _thinned(post, "hinge_tau", max_draws)[:, None] if hinge else None,
        )
        at_risk = const["ppc_at_risk"].values.astype(np.int64)
        events = rng.binomial(at_risk[None, :], expit(logit))
        period = const["ppc_period"].values.astype(int)
        n_periods = int(period.max()) + 1
        predicted = np.stack([np.bincount(period, e, n_periods) for e in events])
        observed = np.bincount(period, const["ppc_churned"].values, n_periods)
        status, detail, value = _predictive_grade(observed, predicted, "periods")
        rows.append(
            {
                "check": "ppc_churn_per_period",
                "value": value,
                "threshold": "<= 20% of periods outside the 90% band and <= max(1, 2%) outside "
                "the 99% band PASS; <= 10% outside the 99% band REVIEW",
                "status": status,
                "parameter": "",
                "detail": "churn events per period: " + detail,
            }
        )
    if const is not None and "ppc_ns_syy" in const and "elasticity" in post:
        edges = [e for e in post["edge"].values if str(e).startswith(f"{_ns_parent(const)}<-")]
        b = (
            post["elasticity"]
            .sel(edge=edges)
            .stack(sample=("chain", "draw"))
            .transpose("sample", "segment", "edge")
            .values
        )
        sigma = (
            post["driver_sigma"]
            .sel(parent=_ns_parent(const))
            .stack(sample=("chain", "draw"))
            .transpose("sample", "segment")
            .values
        )
        step = max(1, b.shape[0] // max_draws)
        b, sigma = b[::step], sigma[::step]
        sxx = const["ppc_ns_sxx"].values
        n_eff = const["ppc_ns_n_eff"].values
        fitted = np.einsum("dsk,skl,dsl->ds", b, sxx, b)
        mean = fitted + n_eff * sigma**2
        sd = np.sqrt(4.0 * sigma**2 * fitted + 2.0 * n_eff * sigma**4)
        predicted = mean + sd * rng.standard_normal(mean.shape)
        status, detail, value = _predictive_grade(const["ppc_ns_syy"].values, predicted, "segments")
        rows.append(
            {
                "check": "ppc_north_star_per_segment",
                "value": value,
                "threshold": "<= 20% of segments outside the 90% band and <= 1 outside the 99% "
                "band PASS; <= 10% outside the 99% band REVIEW",
                "status": status,
                "parameter": "",
                "detail": "sum of squares of log1p(North Star) per segment: " + detail,
            }
        )
    return rows


def _ns_parent(const: xr.Dataset) -> str:
    return str(const.attrs.get("north_star", const["ppc_ns_syy"].attrs.get("parent", "")))


def diagnostics_summary(checks: pd.DataFrame) -> dict[str, Any]:
    """Condense :func:`diagnose`'s table into the numbers a fit card records.

    Parameters
    ----------
    checks : pandas.DataFrame
        The output of :func:`diagnose`.

    Returns
    -------
    dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``tree_depth_saturation``, ``status`` (the worst status), ``warnings`` (one line per
        check that is not PASS) and ``checks`` (the table as records).
    """

    def value(name):
        hit = checks.loc[checks["check"] == name, "value"]
        return float(hit.iloc[0]) if len(hit) else None

    order = {"PASS": 0, "REVIEW": 1, "FAIL": 2}
    worst = max(checks["status"], key=order.__getitem__) if len(checks) else "PASS"
    warnings = [
        f"{r.check}: {r.status} — {r.detail}" for r in checks.itertuples() if r.status != "PASS"
    ]
    div = value("divergences")
    return {
        "max_rhat": value("r_hat"),
        "min_ess_bulk": value("ess_bulk"),
        "min_ess_tail": value("ess_tail"),
        "divergences": None if div is None else int(div),
        "tree_depth_saturation": value("tree_depth"),
        "status": worst,
        "warnings": warnings,
        "checks": json.loads(checks.to_json(orient="records")),
    }


# --------------------------------------------------------------------------- the fit


@dataclass
class Fit:
    """A fitted drivers + retention model of one panel.

    Attributes
    ----------
    idata : arviz.InferenceData
        ``posterior`` (the variables of :mod:`nsm_sim.models.drivers` and
        :mod:`nsm_sim.models.retention`),
        ``sample_stats`` and ``constant_data`` (what the predictive checks need).
    tree : MetricTree
        The metric tree.
    panel : dict
        Summary of the panel (:func:`nsm_sim.data.describe`; from the card when loaded).
    card : dict
        What the fit is: tree and its fingerprint, data fingerprint, sizes, versions, seed,
        sampler settings, estimation, diagnostics summary, timings (JSON-serialisable).
    population : Population
        The accounts alive at the end of the panel, for the projection.
    diagnostics : pandas.DataFrame
        :func:`diagnose`'s table.
    """

    idata: az.InferenceData
    tree: MetricTree
    panel: dict
    card: dict
    population: data_mod.Population
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)


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


def _period_cells(panel: data_mod.Panel, bins: int = 30) -> xr.Dataset:
    """Churn cells per period (period x segment x tenure band x North Star bin) for the PPC."""
    f = panel.frame
    ns = f[panel.tree.north_star].to_numpy(dtype=float)
    levels = np.unique(ns)
    if levels.size <= bins:
        level_bin = np.searchsorted(levels, ns)
    else:
        edges = np.unique(np.quantile(ns, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        level_bin = np.searchsorted(edges, ns, side="right")
    tenure = f["tenure"].to_numpy()
    band = np.searchsorted(np.array([0, 4, 13, 26, 52]), tenure, side="right") - 1
    seg = pd.Categorical(f["segment"], categories=list(panel.segments)).codes
    frame = pd.DataFrame(
        {
            "period": f["t"].to_numpy(np.int64),
            "segment_idx": seg.astype(np.int64),
            "band": band,
            "level_bin": level_bin,
            "x": np.log1p(ns),
            "log_tenure": np.log1p(tenure),
            "churned": f["churned"].to_numpy(np.int64),
        }
    )
    g = (
        frame.groupby(["period", "segment_idx", "band", "level_bin"], sort=True)
        .agg(
            x=("x", "mean"),
            log_tenure=("log_tenure", "mean"),
            at_risk=("churned", "size"),
            churned=("churned", "sum"),
        )
        .reset_index()
    )
    return xr.Dataset(
        {
            "ppc_period": ("ppc_cell", g["period"].to_numpy(np.int64)),
            "ppc_segment_idx": ("ppc_cell", g["segment_idx"].to_numpy(np.int64)),
            "ppc_x": ("ppc_cell", g["x"].to_numpy(float)),
            "ppc_log_tenure": ("ppc_cell", g["log_tenure"].to_numpy(float)),
            "ppc_at_risk": ("ppc_cell", g["at_risk"].to_numpy(np.int64)),
            "ppc_churned": ("ppc_cell", g["churned"].to_numpy(np.int64)),
        }
    )


def _constant_data(panel, stats, cells) -> xr.Dataset:
    from nsm_sim.models.drivers import reduce_stats

    tree = panel.tree
    ns = tree.north_star
    r = reduce_stats(stats[ns])
    kids = list(tree.children[ns])
    ds = _period_cells(panel)
    ds["ppc_ns_syy"] = ("segment", r["syy"])
    ds["ppc_ns_sxx"] = (("segment", "ns_child", "ns_child_"), r["sxx"])
    ds["ppc_ns_n_eff"] = ("segment", r["n_eff"])
    ds = ds.assign_coords(segment=list(panel.segments), ns_child=kids, ns_child_=kids)
    ds.attrs["north_star"] = ns
    ds["ppc_ns_syy"].attrs["parent"] = ns
    return ds


def _weighted_quantiles(values, weights, qs) -> list[float]:
    order = np.argsort(values)
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(np.interp(q, cum, v)) for q in qs]


def fit(
    panel: data_mod.Panel,
    *,
    within: bool = True,
    hinge: bool = True,
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
    hinge : bool, default True
        Hinge at a threshold in the hazard.
    sampler : {"nutpie", "pymc"}, default "nutpie"
        See :func:`sample`.
    draws, tune : int, default 500
        Per chain.
    chains : int, default 4
        Chains.
    seed : int, default 0
        Seed of the sampler, of the elasticity draws and of the predictive checks.
    progress : bool, default False
        Show the sampler's progress bar.

    Returns
    -------
    Fit
        With :func:`diagnose`'s table and a card.
    """
    from nsm_sim.models.drivers import draw_elasticities
    from nsm_sim.models.retention import draw_hinge_tau

    t0 = time.perf_counter()
    tree = panel.tree
    stats = {p: data_mod.driver_stats(panel, p, within=within) for p in tree.children}
    cells = data_mod.churn_cells(panel)
    population = data_mod.starting_population(panel)
    const = _constant_data(panel, stats, cells)
    t_reduce = time.perf_counter() - t0

    model = build_fit_model(stats, cells, tree, hinge=hinge)
    t1 = time.perf_counter()
    idata = sample(
        model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed, progress=progress
    )
    t_sample = time.perf_counter() - t1
    drawn = draw_elasticities(stats, tree, idata.posterior, seed=seed)
    if hinge:
        drawn["hinge_tau"] = draw_hinge_tau(cells, idata.posterior, seed=seed + 1)
    idata.posterior = idata.posterior.assign(drawn)
    if "constant_data" in idata.groups():  # PyMC's sampler stores the model's pm.Data
        merged = xr.merge([idata.constant_data, const], compat="override")
        merged.attrs.update(const.attrs)
        idata.constant_data = merged
    else:
        idata.add_groups({"constant_data": const})
    t2 = time.perf_counter()
    checks = diagnose(idata, seed=seed)
    t_diag = time.perf_counter() - t2

    summary = data_mod.describe(panel)
    ns = panel.frame[tree.north_star].to_numpy(dtype=float)
    levels = np.quantile(ns, [0.1, 0.5, 0.9])
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
        "data_fingerprint": panel.fingerprint,
        "source": panel.source,
        "rows": int(len(panel.frame)),
        "accounts": int(panel.frame["account_id"].nunique()),
        "periods": int(len(panel.periods)),
        "segments": list(panel.segments),
        "versions": _versions(),
        "seed": int(seed),
        "sampler": sampler,
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "within": bool(within),
        "estimation": WITHIN_NOTE if within else POOLED_NOTE,
        "hinge": bool(hinge),
        "north_star_levels": {"p10": levels[0], "p50": levels[1], "p90": levels[2]},
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
    card = json.loads(json.dumps(card, default=_json_default))
    return Fit(
        idata=idata,
        tree=tree,
        panel=card["panel"],
        card=card,
        population=population,
        diagnostics=checks,
    )


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- summaries


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    lo, hi = np.quantile(values, [0.05, 0.95])
    return float(values.mean()), float(lo), float(hi)


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
        elasticity), ``mean``, ``low``, ``high`` and ``calibrated_by`` (the experiments of
        the tree that calibrate the edge, ``"; "``-joined; empty when none does).
        ``"retention"``: ``term``, ``segment`` (None for population terms), ``mean``,
        ``low``, ``high`` and ``north_star`` (the level, for retention rows). Terms:
        ``intercept``; the North Star's slope on ``log1p`` (named after the North Star
        metric); ``<north star> odds ratio per e-fold`` (``exp(slope)``: the odds of churn
        when ``log1p`` of the North Star grows by one);
        ``tenure``; ``hinge_jump`` and ``hinge_tau`` with a hinge; ``retention over H periods
        at p10 / p50 / p90`` of the observed North Star (accounts of the reference tenure).
    """
    from nsm_sim.models.retention import expected_retention

    post = fit.idata.posterior
    tree = fit.tree
    ns = tree.north_star
    rows = []
    mu = _samples(post, "elasticity_mu")
    b = _samples(post, "elasticity")
    for (parent, child), experiments in tree.calibration.items():
        label = f"{parent}<-{child}"
        names = "; ".join(e.name for e in experiments)
        edge = {"parent": parent, "child": child, "calibrated_by": names}
        m, lo, hi = _interval(mu.sel(edge=label).values)
        rows.append({**edge, "segment": None, "mean": m, "low": lo, "high": hi})
        for s in b["segment"].values:
            m, lo, hi = _interval(b.sel(edge=label, segment=s).values)
            rows.append({**edge, "segment": str(s), "mean": m, "low": lo, "high": hi})
    columns = ["parent", "child", "segment", "mean", "low", "high", "calibrated_by"]
    drivers = pd.DataFrame(rows, columns=columns)

    rows = []
    segments = [str(s) for s in post["segment"].values]

    def add(term, values, segment=None, level=np.nan):
        m, lo, hi = _interval(values)
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


# --------------------------------------------------------------------------- bundles


def save_bundle(fit: Fit, out_dir: str | os.PathLike) -> Path:
    """Write a fit bundle: ``posterior.nc``, ``card.json`` and ``population.csv``.

    Everything is written into a temporary folder beside ``out_dir`` first. A new
    ``out_dir`` is then created by one rename; into an existing one each file is moved by
    ``os.replace`` (the card last), so no file is ever half-written and other files in the
    folder are left alone. A failure leaves ``out_dir`` as it was.

    Parameters
    ----------
    fit : Fit
        The fit.
    out_dir : path
        The bundle folder.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        idata = fit.idata
        idata.to_netcdf(str(tmp / "posterior.nc"))
        fit.population.frame.to_csv(tmp / "population.csv", index=False)
        (tmp / "card.json").write_text(json.dumps(fit.card, indent=2, default=_json_default))
        if not out.exists():
            os.rename(tmp, out)
            return out
        for name in ("posterior.nc", "population.csv", "card.json"):
            os.replace(tmp / name, out / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def tree_differences(a: MetricTree, b: MetricTree) -> list[str]:
    """Describe how two metric trees differ (nodes, edges, candidates, settings).

    Parameters
    ----------
    a, b : MetricTree
        The tree of the bundle and the tree asked for.

    Returns
    -------
    list of str
        One line per difference; empty when the trees are the same.
    """
    out = []
    for what, ea, eb in (
        ("nodes", set(a.nodes), set(b.nodes)),
        ("candidates", set(a.candidates), set(b.candidates)),
    ):
        if ea - eb:
            out.append(f"{what} only in the fit: {sorted(ea - eb)}")
        if eb - ea:
            out.append(f"{what} only in the tree: {sorted(eb - ea)}")
    ea = {f"{p}<-{c}" for p, c in a.edges}
    eb = {f"{p}<-{c}" for p, c in b.edges}
    if set(a.nodes) == set(b.nodes) and ea != eb:
        out.append(f"edges only in the fit: {sorted(ea - eb)}; only in the tree: {sorted(eb - ea)}")
    for name in ("north_star", "segment", "period", "value", "retention_horizon", "name"):
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out.append(f"{name}: {va!r} in the fit, {vb!r} in the tree")
    if not out and a.fingerprint() != b.fingerprint():
        out.append("the trees differ in their order of inputs or candidates")
    return out


def load_bundle(directory: str | os.PathLike, tree: MetricTree | None = None) -> Fit:
    """Load a fit bundle written by :func:`save_bundle`.

    Parameters
    ----------
    directory : path
        The bundle folder.
    tree : MetricTree, optional
        The tree the bundle must have been fitted on (e.g. a scenario's); refused otherwise.

    Returns
    -------
    Fit

    Raises
    ------
    BundleError
        A file is missing or damaged, or the bundle's tree differs from ``tree`` (the message
        names the nodes that differ).
    """
    d = Path(directory)
    source = str(d)
    if not d.is_dir():
        raise BundleError(source, ["not a folder (expected a fit bundle written by `nsm-sim fit`)"])
    missing = [n for n in BUNDLE_FILES if not (d / n).is_file()]
    if missing:
        raise BundleError(source, [f"{n}: missing" for n in missing])
    try:
        card = json.loads((d / "card.json").read_text())
        bundle_tree = MetricTree.model_validate(card["tree"])
    except Exception as exc:  # noqa: BLE001 - any damage is reported the same way
        raise BundleError(
            source, [f"card.json: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    if card.get("tree_fingerprint") != bundle_tree.fingerprint():
        raise BundleError(source, ["card.json: the tree fingerprint does not match its tree"])
    if tree is not None and tree.fingerprint() != bundle_tree.fingerprint():
        diffs = tree_differences(bundle_tree, tree)
        raise BundleError(
            source,
            [f"fitted on a different metric tree ({bundle_tree.name!r}): {d_}" for d_ in diffs],
        )
    try:
        idata = az.from_netcdf(str(d / "posterior.nc"))
        for group in idata.groups():
            idata[group].load()
        post = idata.posterior
        need = ["elasticity", "churn_intercept", "churn_slope", "tenure_slope"]
        absent = [v for v in need if v not in post]
        if absent:
            raise ValueError(f"posterior lacks {absent}")
    except Exception as exc:  # noqa: BLE001
        raise BundleError(
            source, [f"posterior.nc: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    try:
        frame = pd.read_csv(d / "population.csv")
        need_cols = {"segment", "segment_idx", "accounts", "north_star", "tenure", "value"}
        if not need_cols <= set(frame.columns):
            raise ValueError(f"columns {sorted(need_cols - set(frame.columns))} missing")
        frame["segment"] = frame["segment"].astype(str)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(
            source, [f"population.csv: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    population = data_mod.Population(segments=tuple(card.get("segments", ())), frame=frame)
    checks = pd.DataFrame(
        card.get("diagnostics", {}).get("checks", []),
        columns=["check", "value", "threshold", "status", "parameter", "detail"],
    )
    return Fit(
        idata=idata,
        tree=bundle_tree,
        panel=card.get("panel", {}),
        card=card,
        population=population,
        diagnostics=checks,
    )
