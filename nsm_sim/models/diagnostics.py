"""Diagnostics: the trust gates of a fit.

:func:`diagnose` grades R-hat, bulk and tail ESS, divergences and tree-depth saturation, and
two posterior predictive checks (churn events per period, variation of the North Star per
segment), each PASS / REVIEW / FAIL with its threshold and, where it applies, the worst
parameter. The data the checks need travel in the InferenceData's ``constant_data`` group, so
a loaded bundle can be diagnosed again.
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from nsm_sim.files import to_jsonable
from nsm_sim.models.retention import churn_logit

#: Thresholds of the trust gates: (PASS if better than the first, REVIEW the second, else FAIL).
RHAT_LIMITS = (1.01, 1.05)
ESS_LIMITS = (400.0, 100.0)
DIVERGENCE_REVIEW_SHARE = 0.01
TREE_DEPTH_LIMITS = (0.0, 0.05)
#: A parameter whose draws spread less than this (relative to ``max(1, |mean|)``) has a
#: degenerate interval: the sampler did not move it, whatever the data say.
DEGENERATE_SPREAD = 1e-9


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
    < 5 % REVIEW; a parameter whose draws do not move (spread under 1e-9 of ``max(1, |mean|)``,
    an interval of width zero) FAIL. Predictive checks (when the InferenceData holds their data in
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

    with np.errstate(invalid="ignore", divide="ignore"):  # a stuck parameter: its own gate
        rhat = az.rhat(post) if n_chains > 1 else None
        ess = {method: az.ess(post, method=method) for method in ("bulk", "tail")}
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
        v, name = _worst(ess[method], "min")
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
    rows.append(_degenerate_check(post))
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


def _degenerate_check(post: xr.Dataset) -> dict[str, Any]:
    """FAIL when some parameter's draws do not move (an interval of width zero)."""
    stuck: list[str] = []
    for name, da in post.data_vars.items():
        values = np.asarray(da.values, dtype=float).reshape(da.shape[0] * da.shape[1], -1)
        spread = np.nanstd(values, axis=0)
        scale = np.maximum(1.0, np.abs(np.nanmean(values, axis=0)))
        flat = np.flatnonzero(~(spread > DEGENERATE_SPREAD * scale))
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        shape = [da.sizes[d] for d in dims]
        for index in flat:
            labels = [
                str(da.coords[d].values[i]) if d in da.coords else str(i)
                for d, i in zip(dims, np.unravel_index(index, shape), strict=True)
            ]
            stuck.append(f"{name}[{', '.join(labels)}]" if labels else name)
    detail = (
        f"{len(stuck)} parameter(s) whose draws do not move, so their intervals have width "
        f"zero: {', '.join(stuck[:5])}{' ...' if len(stuck) > 5 else ''}"
        if stuck
        else "every parameter's draws spread"
    )
    return {
        "check": "degenerate_intervals",
        "value": float(len(stuck)),
        "threshold": "0 PASS, else FAIL",
        "status": "FAIL" if stuck else "PASS",
        "parameter": stuck[0] if stuck else "",
        "detail": detail,
    }


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
        "checks": to_jsonable(checks),
    }
