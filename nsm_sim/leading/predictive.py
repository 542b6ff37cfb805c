"""Predictive power: each metric's retention model scored out of time and compared in sample.

The retention hazard of :mod:`nsm_sim.models.retention` with the metric M in place of the
North Star (cells built on M) is fit on the earlier periods only (rows with ``t < cutoff``;
the churn outcome of such a row is known by ``t + 1 <= cutoff``, so nothing from the scoring
periods leaks in; the level bins come from those rows too) and scored row by row on the later
ones: log-loss, Brier score and AUC of the posterior predictive churn probability, each row at
its own metric value and tenure. ``skill`` is the relative log-loss improvement over a
baseline with segment intercepts and tenure only (``1 - log_loss / baseline_log_loss``), fit
by the same estimator: the same retention model without a metric, sampled on the same rows
and scored the same way, so that skill measures what the metric adds and nothing else.

Tenure beyond the trained range: the scored periods come after the training periods, so some
scored rows are older than any training row (tenure above ``trained_tenure_max``, the
largest tenure before the cutoff). The hazard's tenure term is held at its value at
``trained_tenure_max`` for them, in the metric's model and the baseline alike: the log-linear
tenure term is not extrapolated where no training row was. ``beyond_trained_tenure`` is the
share of scored rows this concerns.

In sample, the same model fit on all periods is compared by PSIS-LOO (:func:`arviz.compare`);
the pointwise log-likelihood is taken per *account* (the sum of its rows' Bernoulli
log-likelihoods under the fitted cell model,
:func:`nsm_sim.models.retention.account_log_likelihood`), so every metric's model is scored on
the same units and outcomes and the elpd values are comparable (cell-level elpds are not:
each metric has its own cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from nsm_sim.data import Panel, churn_cells
from nsm_sim.data.cells import LEVEL_BINS, segment_codes, tenure_cells
from nsm_sim.errors import DataError
from nsm_sim.leading import psis
from nsm_sim.leading.posterior import (
    BASELINE,
    IN_SAMPLE,
    TRAIN,
    RetentionSampler,
    convergence,
    flat_draws,
    with_account_log_likelihood,
)
from nsm_sim.models.retention import churn_logit
from nsm_sim.numeric import name_key


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean Bernoulli log-loss (nats), probabilities clipped to ``[1e-12, 1 - 1e-12]``."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((p - y) ** 2))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = stats.rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Return ``log_loss``, ``brier`` and ``auc`` of probabilities ``p`` for outcomes ``y``."""
    return {"log_loss": log_loss(y, p), "brier": brier(y, p), "auc": auc(y, p)}


def baseline_scores(
    panel: Panel,
    train: np.ndarray,
    *,
    seed: int = 0,
    sampling: RetentionSampler | None = None,
) -> dict[str, float]:
    """Scores of the segment + tenure hazard fit on ``train`` rows, on the others.

    The retention model without a metric (:func:`nsm_sim.data.cells.tenure_cells`), sampled
    with the key ``(BASELINE, 0)`` and scored as every metric's model is (tenure held at the
    largest trained tenure beyond it).

    Parameters
    ----------
    panel : Panel
    train : ndarray of bool
        Rows to fit on; the others are scored.
    seed : int, default 0
    sampling : RetentionSampler, optional

    Returns
    -------
    dict
        ``log_loss``, ``brier``, ``auc`` on the scored rows.
    """
    sampling = sampling or RetentionSampler()
    idata = sampling.sample(
        tenure_cells(panel, rows=train), hinge=False, seed=seed, key=(BASELINE, 0)
    )
    frame = panel.frame
    rows = ~np.asarray(train, dtype=bool)
    p = _predict_rows(idata, panel, np.zeros(int(rows.sum())), rows, trained_tenure(panel, train))
    return scores(frame["churned"].to_numpy(dtype=float)[rows], p)


def trained_tenure(panel: Panel, train: np.ndarray) -> int:
    """Return the largest tenure among the training rows (the hazard's tenure is held there)."""
    return int(panel.frame["tenure"].to_numpy()[np.asarray(train, dtype=bool)].max())


def cutoff_rows(panel: Panel, train_share: float) -> tuple[int, np.ndarray]:
    """Return the cutoff period index and the rows before it, checking both sides have churn.

    Parameters
    ----------
    panel : Panel
    train_share : float
        The cutoff is the period index ``round(train_share * periods)``.

    Returns
    -------
    tuple
        ``(cutoff, train)``: the index and a boolean mask of the rows with ``t < cutoff``.

    Raises
    ------
    DataError
        When one side of the cutoff has no period or no churn event.
    """
    n_periods = len(panel.periods)
    cutoff = int(round(train_share * n_periods))
    t = panel.frame["t"].to_numpy()
    y = panel.frame["churned"].to_numpy()
    train = t < cutoff
    if not (0 < cutoff < n_periods):
        raise DataError(
            panel.source,
            [f"period: {n_periods} periods leave none on one side of the cutoff ({cutoff})"],
        )
    if y[train].sum() < 1 or y[~train].sum() < 1:
        raise DataError(
            panel.source,
            [
                f"churned: {int(y[train].sum())} churn events before the cutoff (period index "
                f"{cutoff}) and {int(y[~train].sum())} after; expected some on both sides"
            ],
        )
    return cutoff, train


def check_metrics(panel: Panel, metrics: Sequence[str] | None) -> list[str]:
    """Return the metrics to judge (default the North Star and the candidates), all columns.

    Parameters
    ----------
    panel : Panel
    metrics : sequence of str or None

    Returns
    -------
    list of str
        Without duplicates, in order.

    Raises
    ------
    DataError
        When a metric is not a column of the panel.
    """
    tree = panel.tree
    metrics = list(dict.fromkeys(metrics or [tree.north_star, *tree.candidates]))
    missing = [m for m in metrics if m not in panel.frame.columns]
    if missing:
        raise DataError(
            panel.source,
            [f"column {m!r}: not in the panel (expected a metric column)" for m in missing],
        )
    return metrics


@dataclass(frozen=True)
class PredictivePower:
    """Out-of-sample scores and in-sample PSIS-LOO of each metric's retention model.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per metric: ``metric``, ``log_loss``, ``brier``, ``auc`` (rows at or after
        the cutoff), ``baseline_log_loss``, ``baseline_auc``, ``trained_tenure_max``,
        ``beyond_trained_tenure`` (see the module docstring), ``skill``, ``elpd_loo``,
        ``elpd_se``, ``p_loo``, ``pareto_k_max``, ``rhat_max``, ``divergences`` (of the
        in-sample fit; of the training fit when ``in_sample`` is off).
    cutoff : int
        First scored period index; fits use rows with ``t < cutoff``.
    predictions : dict
        ``{metric: posterior predictive churn probability of each scored row}``, in frame
        order of the rows with ``t >= cutoff``.
    train_posteriors, posteriors : dict
        ``{metric: InferenceData}`` of the training fits and of the in-sample fits (with a
        per-account ``log_likelihood`` group).
    loo : dict
        ``{metric: ELPDData}`` of the in-sample fits, pointwise.
    """

    scores: pd.DataFrame
    cutoff: int
    predictions: dict
    train_posteriors: dict
    posteriors: dict
    loo: dict


def predictive_power(
    panel: Panel,
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    sampling: RetentionSampler | None = None,
    train_share: float = 0.7,
    bins: int = LEVEL_BINS,
    in_sample: bool = True,
) -> PredictivePower:
    """Fit the retention model on each metric before the cutoff and score it after.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metrics : sequence of str, optional
        Default: the North Star and the candidates.
    seed : int, default 0
        Seed of the fits: metric M's training fit has the key ``(TRAIN, name_key(M))``, its
        in-sample fit ``(IN_SAMPLE, name_key(M))``, the baseline ``(BASELINE, 0)`` (see
        :mod:`nsm_sim.leading.posterior`).
    sampling : RetentionSampler, optional
        Sampler settings and the compiled models; a new one with the defaults when omitted.
    train_share : float, default 0.7
        The cutoff is the period index ``round(train_share * periods)``.
    bins : int, default :data:`~nsm_sim.data.cells.LEVEL_BINS`
        Metric bins of the churn cells (edges from the training rows for the training fit).
    in_sample : bool, default True
        Also fit on all rows and compute PSIS-LOO over accounts.

    Returns
    -------
    PredictivePower
    """
    sampling = sampling or RetentionSampler()
    metrics = check_metrics(panel, metrics)
    cutoff, train = cutoff_rows(panel, train_share)
    frame = panel.frame
    scored = ~train
    yt = frame["churned"].to_numpy(dtype=float)[scored]
    tenure_max = trained_tenure(panel, train)
    beyond = float(np.mean(frame["tenure"].to_numpy()[scored] > tenure_max))
    base = baseline_scores(panel, train, seed=seed, sampling=sampling)
    rows, preds, train_post, posts, loos = [], {}, {}, {}, {}
    for m in metrics:
        cells = churn_cells(panel, m, rows=train, bins=bins)
        train_post[m] = sampling.sample(cells, hinge=False, seed=seed, key=(TRAIN, name_key(m)))
        values = frame[m].to_numpy(dtype=float)[scored]
        p = preds[m] = _predict_rows(train_post[m], panel, values, scored, tenure_max)
        row = {
            "metric": m,
            **scores(yt, p),
            "baseline_log_loss": base["log_loss"],
            "baseline_auc": base["auc"],
            "trained_tenure_max": tenure_max,
            "beyond_trained_tenure": beyond,
        }
        row["skill"] = 1.0 - row["log_loss"] / base["log_loss"]
        diag = convergence(train_post[m], hinge=False)
        if in_sample:
            cells = churn_cells(panel, m, bins=bins)
            full = sampling.sample(cells, hinge=False, seed=seed, key=(IN_SAMPLE, name_key(m)))
            posts[m] = with_account_log_likelihood(full, cells, panel)
            loos[m] = psis.loo(posts[m])
            diag = convergence(full, hinge=False)
            row.update(
                elpd_loo=float(loos[m].elpd_loo),
                elpd_se=float(loos[m].se),
                p_loo=float(loos[m].p_loo),
                pareto_k_max=float(np.max(loos[m].pareto_k)),
            )
        rows.append({**row, **diag})
    return PredictivePower(
        scores=pd.DataFrame(rows),
        cutoff=cutoff,
        predictions=preds,
        train_posteriors=train_post,
        posteriors=posts,
        loo=loos,
    )


def _predict_rows(
    idata: az.InferenceData,
    panel: Panel,
    values: np.ndarray,
    rows: np.ndarray,
    tenure_max: int,
    *,
    max_draws: int = 200,
) -> np.ndarray:
    """Posterior predictive churn probability of each selected row (no hinge).

    Each row at its metric value (``values``, one per selected row) and its tenure, held at
    ``tenure_max`` beyond it. Rows alike in segment, value and tenure share one evaluation, a
    block of them at a time.
    """
    draws = flat_draws(idata, hinge=False)
    n = len(draws["tenure_slope"])
    keep = np.unique(np.linspace(0, n - 1, min(n, max_draws)).round().astype(int))
    intercept, slope = draws["churn_intercept"][keep], draws["churn_slope"][keep]
    tenure_slope = draws["tenure_slope"][keep][:, None]
    rows = np.asarray(rows, dtype=bool)
    tenure = np.minimum(panel.frame["tenure"].to_numpy()[rows], tenure_max)
    keys = np.column_stack([segment_codes(panel)[rows], values, tenure])
    unique, row_of = np.unique(keys, axis=0, return_inverse=True)
    s, x, lt = unique[:, 0].astype(int), np.log1p(unique[:, 1]), np.log1p(unique[:, 2])
    prob = np.empty(len(unique))
    for block in np.array_split(np.arange(len(unique)), max(1, len(unique) // 2048)):
        logit = churn_logit(
            x[block][None, :],
            lt[block][None, :],
            intercept[:, s[block]],
            slope[:, s[block]],
            tenure_slope,
        )
        prob[block] = expit(logit).mean(axis=0)
    return prob[row_of.ravel()]
