"""Hinge: the threshold, a step in churn at a level of the North Star, and what it means.

The North Star's retention model with a hinge at ``tau`` (:mod:`nsm_sim.models.retention`:
``tau`` integrated out over the grid of :func:`~nsm_sim.models.retention.hinge_grid`, chains
started at the grid's best threshold, ``hinge_tau`` drawn from its exact conditional after
sampling) is fit next to the one without and the two are compared by PSIS-LOO over accounts.
When the hinge has the clearly better elpd, the posterior of ``tau`` is reported with the
retention over ``tree.retention_horizon`` periods of account-periods at or above and below it.
A North Star with fewer than :data:`~nsm_sim.models.retention.HINGE_MIN_LEVELS` distinct
levels (a 0/1 North Star has two) gets no hinge fit: a step between two of a few levels is
the slope said another way. The hinge's slope and jump are also reported together
(:func:`~nsm_sim.models.retention.combined_effect`, from the 5th to the 95th percentile of
the North Star), which stays clear when the split between them does not.
"""

from __future__ import annotations

import arviz as az
import numpy as np
from scipy.special import expit

from nsm_sim.data import ChurnCells, Panel, churn_cells
from nsm_sim.leading import psis
from nsm_sim.leading.posterior import (
    THRESHOLD,
    RetentionSampler,
    convergence,
    flat_draws,
    with_account_log_likelihood,
)
from nsm_sim.models.retention import (
    churn_logit,
    combined_effect,
    hinge_bounds,
    step_evidence,
)
from nsm_sim.numeric import interval

#: Level bins of the North Star's cells for the threshold: finer than the fit's, since the
#: likelihood of ``tau`` changes only where a cell's level is. On the 1,500-account test
#: world (seeds 0-7), with tenure bands, 30 bins put the jump's 90 % interval across 0 in 3
#: fits of 8 (a chain in a second region, jump near 0 and ``tau`` anywhere; R-hat up to
#: 1.09), 80 bins in none. With tenures merged only where ``log1p(tenure)`` is flat (seeds
#: 1-7): 50 bins and 80 bins each put it across 0 in 1 fit of 7 (not the same seed), R-hat
#: at most 1.045 and 1.042, the same thresholds; 50 bins take 0.65 times the CPU time.
THRESHOLD_BINS = 50


def retention_split(draws: dict, cells: ChurnCells, horizon: int):
    """Return the retention over ``horizon`` of the cells at or above and below ``hinge_tau``.

    Per draw: the at-risk-weighted mean over the cells at or above (below) the draw's
    ``hinge_tau`` of the product of ``1 - hazard`` over the horizon, each cell's level held and
    tenure growing by one each period.

    Parameters
    ----------
    draws : dict of ndarray
        :func:`nsm_sim.leading.posterior.flat_draws` with the hinge.
    cells : ChurnCells
    horizon : int
        Periods.

    Returns
    -------
    tuple of ndarray, shape (draws,)
        Retention above and below (NaN for a draw with no cell on that side).
    """
    f = cells.frame
    x, n = f["x"].to_numpy(float), f["at_risk"].to_numpy(float)
    seg, tenure = f["segment_idx"].to_numpy(), np.expm1(f["log_tenure"].to_numpy(float))
    # the logit at tenure 0; each period of the horizon adds its tenure term to it
    at_start = churn_logit(
        x[None, :],
        0.0,
        draws["churn_intercept"][:, seg],
        draws["churn_slope"][:, seg],
        0.0,
        draws["hinge_jump"][:, None],
        draws["hinge_tau"][:, None],
    )
    tenure_slope = draws["tenure_slope"][:, None]
    keep = np.ones_like(at_start)
    for k in range(int(horizon)):
        keep *= expit(-(at_start + tenure_slope * np.log1p(tenure + k)[None, :]))
    above = x[None, :] >= np.log1p(draws["hinge_tau"])[:, None]
    w_above, w_below = above * n, (~above) * n
    with np.errstate(invalid="ignore", divide="ignore"):
        r_above = (keep * w_above).sum(axis=1) / w_above.sum(axis=1)
        r_below = (keep * w_below).sum(axis=1) / w_below.sum(axis=1)
    return r_above, r_below


def threshold_fit(
    panel: Panel,
    *,
    seed: int = 0,
    sampling: RetentionSampler | None = None,
    bins: int = THRESHOLD_BINS,
) -> tuple[dict, az.InferenceData]:
    """Return :func:`threshold`'s answer and the hinge model's fit (with its log-likelihood).

    Parameters
    ----------
    panel : Panel
    seed : int, default 0
    sampling : RetentionSampler, optional
    bins : int, default :data:`THRESHOLD_BINS`
        As for :func:`threshold`.

    Returns
    -------
    tuple
        The dict of :func:`threshold` and the hinge model's InferenceData (the smooth
        model's when the North Star has too few levels for a hinge).
    """
    sampling = sampling or RetentionSampler()
    frame = panel.frame
    tree = panel.tree
    ns = tree.north_star
    cells = churn_cells(panel, ns, bins=bins)
    evidence = step_evidence(cells)
    smooth = sampling.sample(cells, hinge=False, seed=seed, key=(THRESHOLD, 1))
    smooth = with_account_log_likelihood(smooth, cells, panel)
    horizon, period = tree.retention_horizon, tree.period
    common = {"metric": ns, "horizon": int(horizon), "period": period, "bins": int(bins)}
    if evidence["elpd_gain"] is None:  # too few levels for a step
        out = {
            **common,
            "supported": False,
            "tested": False,
            "tau": None,
            "jump": None,
            "combined": None,
            "elpd_diff": None,
            "elpd_diff_se": None,
            "retention_above": None,
            "retention_below": None,
            "share_above": None,
            "sentence": f"No threshold in {ns}: {evidence['reason']}.",
            **convergence(smooth, hinge=False),
        }
        return out, smooth
    fit = sampling.sample(cells, hinge=True, seed=seed, key=(THRESHOLD, 0))
    fit = with_account_log_likelihood(fit, cells, panel)
    d = psis.loo(fit).loo_i.to_numpy() - psis.loo(smooth).loo_i.to_numpy()
    elpd_diff, elpd_diff_se = float(d.sum()), float(np.sqrt(len(d) * np.var(d)))
    draws = flat_draws(fit, hinge=True)
    r_above, r_below = retention_split(draws, cells, horizon)
    tau = interval(draws["hinge_tau"])
    jump = interval(draws["hinge_jump"])
    low_level, high_level = hinge_bounds(cells)
    slope_mu = fit.posterior["churn_slope_mu"].to_numpy().reshape(-1)
    combined = {
        "from": low_level,
        "to": high_level,
        **interval(
            combined_effect(
                slope_mu, draws["hinge_jump"], draws["hinge_tau"], low_level, high_level
            )
        ),
    }
    fin_a, fin_b = np.isfinite(r_above), np.isfinite(r_below)
    ra = interval(r_above[fin_a]) if fin_a.any() else None
    rb = interval(r_below[fin_b]) if fin_b.any() else None
    supported = bool(elpd_diff > max(4.0, elpd_diff_se) and (jump["high"] < 0 or jump["low"] > 0))
    share = float((frame[ns].to_numpy(dtype=float) >= tau["mean"]).mean())
    together = (
        f" Slope and step together: from {low_level:.3g} to {high_level:.3g} {ns} the churn "
        f"logit changes by {combined['mean']:+.2f} (90% interval {combined['low']:+.2f} to "
        f"{combined['high']:+.2f})."
    )
    if supported and ra and rb:
        sentence = (
            f"Accounts at or above {tau['mean']:.3g} {ns} per {period} "
            f"(90% interval {tau['low']:.3g}-{tau['high']:.3g}; {100 * share:.0f}% of "
            f"account-{period}s) retain at {100 * ra['mean']:.0f}% over {horizon} {period}s, "
            f"those below at {100 * rb['mean']:.0f}%." + together
        )
    else:
        sentence = (
            f"No threshold in {ns}: a hinge does not fit clearly better than a smooth effect "
            f"(elpd difference {elpd_diff:+.1f} +- {elpd_diff_se:.1f}; needs more than 4 and "
            f"than its standard error, with a clear jump)."
        )
    out = {
        **common,
        "supported": supported,
        "tested": True,
        "tau": tau,
        "jump": jump,
        "combined": combined,
        "elpd_diff": elpd_diff,
        "elpd_diff_se": elpd_diff_se,
        "retention_above": ra,
        "retention_below": rb,
        "share_above": share,
        "sentence": sentence,
        **convergence(fit, hinge=True),
    }
    return out, fit


def threshold(
    panel: Panel,
    *,
    seed: int = 0,
    sampling: RetentionSampler | None = None,
    bins: int = THRESHOLD_BINS,
) -> dict:
    """Fit the North Star's threshold: a hinge at ``tau`` against none, and what it means.

    Both models are fit on all rows over a fine grid of the North Star (``bins`` quantile
    bins: ``tau`` is only resolved between neighbouring cells' levels) and compared by
    PSIS-LOO over accounts. The hinge is *supported* when its elpd exceeds the smooth
    model's by more than 4 and more than the standard error of the difference (below 4 an
    elpd difference is small and its standard error unreliable; Sivula et al. 2020) and the
    jump's 90 % interval excludes 0. Retention over ``tree.retention_horizon`` periods is the
    at-risk-weighted mean over the cells at or above (below) ``tau`` of the product of
    ``1 - hazard`` over the horizon, the cell's level held and tenure growing by one each
    period, per posterior draw.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    seed : int, default 0
        Seed of the fits: keys ``(THRESHOLD, 0)`` (hinge) and ``(THRESHOLD, 1)`` (smooth),
        see :mod:`nsm_sim.leading.posterior`.
    sampling : RetentionSampler, optional
        Sampler settings and the compiled models; a new one with the defaults when omitted.
    bins : int, default :data:`THRESHOLD_BINS`
        Level bins of the North Star's cells.

    Returns
    -------
    dict
        ``metric``, ``supported``, ``tested`` (False when the North Star has fewer than
        :data:`~nsm_sim.models.retention.HINGE_MIN_LEVELS` distinct levels: no hinge is fit
        and the values below are None), ``tau`` and ``jump`` (``mean``, ``low``, ``high``;
        90 %), ``combined`` (slope and jump together: the change of the churn logit ``from``
        the North Star's 5th ``to`` its 95th percentile, with ``mean``, ``low``, ``high``),
        ``elpd_diff``, ``elpd_diff_se``, ``horizon``, ``period``, ``retention_above``,
        ``retention_below`` (mean, low, high, or None), ``share_above`` (share of
        account-periods at or above the mean ``tau``), ``sentence``, ``bins``,
        ``rhat_max``, ``divergences``.
    """
    out, _ = threshold_fit(panel, seed=seed, sampling=sampling, bins=bins)
    return out
