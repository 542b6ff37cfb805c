"""Validation: is the North Star truly leading? Evidence and a verdict per metric.

:func:`validate` gathers, for the North Star and each candidate metric, the evidence of
:mod:`~nsm_sim.leading.timing` (panel Granger, cross-correlations),
:mod:`~nsm_sim.leading.effects` (within vs between accounts),
:mod:`~nsm_sim.leading.predictive` (out-of-time scores, PSIS-LOO) and
:mod:`~nsm_sim.leading.hinge` (the North Star's hinge), and judges each metric by the
rule of :mod:`~nsm_sim.leading.rule`. Every churn model of a run is the one retention model
of :mod:`nsm_sim.models.retention`, compiled once per structure and sampled on each metric's
cells in turn (:class:`~nsm_sim.leading.posterior.RetentionSampler`); each fit is graded by
the trust gates of a fit (:func:`nsm_sim.models.diagnostics.diagnose`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from nsm_sim.alongside import SecondProcess, alongside
from nsm_sim.data import Panel
from nsm_sim.data.cells import LEVEL_BINS
from nsm_sim.defaults import VALIDATION_CHAINS, VALIDATION_DRAWS, VALIDATION_TUNE
from nsm_sim.errors import DataError
from nsm_sim.files import to_jsonable
from nsm_sim.leading.effects import within_between
from nsm_sim.leading.hinge import THRESHOLD_BINS, threshold_fit
from nsm_sim.leading.posterior import HAZARD_VARS, HINGE_VARS, RetentionSampler
from nsm_sim.leading.predictive import check_metrics, cutoff_rows, predictive_power
from nsm_sim.leading.rule import VerdictRule, rank_and_judge, summary_text
from nsm_sim.leading.timing import LAG_CONVENTION, cross_correlations, granger
from nsm_sim.models.diagnostics import diagnose, diagnostics_summary

#: Names of a validation's fits in its trust gates: the training fit and the in-sample fit of
#: each metric, and the North Star's hinge model (its smooth model when it has too few levels
#: for a hinge).
TRAINING_FIT, IN_SAMPLE_FIT = "training", "all periods"
THRESHOLD_FIT, SMOOTH_FIT = "threshold (hinge)", "threshold (smooth)"


@dataclass(frozen=True)
class Validation:
    """The answer to "is the North Star truly leading?".

    Attributes
    ----------
    north_star : str
    metrics : pandas.DataFrame
        One row per metric, best rank first: ``metric``, ``verdict``, ``rank``,
        out-of-sample ``log_loss``, ``brier``, ``auc``, ``skill`` (relative log-loss gain over
        ``baseline_log_loss``), in-sample ``elpd_loo``, ``elpd_se``, ``elpd_diff`` (to the
        best), ``p_loo``, ``pareto_k_max``, ``within_*`` and ``between_*`` (``mean``, ``low``,
        ``high``, ``sd``), ``precedes``, ``preceded_by`` (comma-separated), ``why``,
        ``rhat_max``, ``divergences``.
    timing : pandas.DataFrame
        :func:`~nsm_sim.leading.granger` for every ordered pair of metrics.
    cross_correlations : pandas.DataFrame
        :func:`~nsm_sim.leading.cross_correlations` of every metric with the North Star
        (sign convention: :data:`~nsm_sim.leading.LAG_CONVENTION`).
    within_between : pandas.DataFrame
        :func:`~nsm_sim.leading.within_between`.
    checks : pandas.DataFrame
        The trust gates of every fit (:func:`nsm_sim.models.diagnostics.diagnose`): ``fit``
        (:data:`TRAINING_FIT`, :data:`IN_SAMPLE_FIT`, :data:`THRESHOLD_FIT` or
        :data:`SMOOTH_FIT`), ``metric``,
        then ``check``, ``value``, ``threshold``, ``status``, ``parameter``, ``detail``.
    comparison : pandas.DataFrame
        :func:`arviz.compare` of the in-sample fits (PSIS-LOO over accounts).
    threshold : dict
        :func:`~nsm_sim.leading.threshold`.
    summary : str
        Plain-language summary: the North Star's verdict, one line per metric, the threshold.
    settings : dict
        Cutoff, lags, bins, sampler settings, :data:`LAG_CONVENTION` and the verdict rule.
    timings : dict
        Seconds per stage.
    posteriors : dict
        In-sample fits per metric (with a ``log_likelihood`` group) and ``"hinge"``.
    """

    north_star: str
    metrics: pd.DataFrame
    timing: pd.DataFrame
    cross_correlations: pd.DataFrame
    within_between: pd.DataFrame
    checks: pd.DataFrame
    comparison: pd.DataFrame
    threshold: dict
    summary: str
    settings: dict
    timings: dict
    posteriors: dict

    def verdicts(self) -> dict[str, str]:
        """Return ``{metric: verdict}``."""
        return dict(zip(self.metrics["metric"], self.metrics["verdict"], strict=True))

    def diagnostics(self) -> dict:
        """Return the trust gates: the worst status, the warnings, one summary per fit.

        Returns
        -------
        dict
            ``{"status": worst of every fit, "warnings": [one line per check that is not
            PASS, naming its fit], "fits": [{"fit", "metric", "status", "max_rhat",
            "min_ess_bulk", "min_ess_tail", "divergences", "tree_depth_saturation"}, ...],
            "checks": every check as a record}``.
        """
        fits, warnings = [], []
        for (fit, metric), checks in self.checks.groupby(["fit", "metric"], sort=False):
            one = diagnostics_summary(checks.drop(columns=["fit", "metric"]))
            fits.append({"fit": fit, "metric": metric, **{k: one[k] for k in _FIT_KEYS}})
            warnings += [f"{metric} ({fit}) {w}" for w in one["warnings"]]
        order = {"PASS": 0, "REVIEW": 1, "FAIL": 2}
        worst = max((f["status"] for f in fits), key=order.__getitem__, default="PASS")
        return {
            "status": worst,
            "warnings": warnings,
            "fits": to_jsonable(fits),
            "checks": to_jsonable(self.checks),
        }

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of the metrics, timing, threshold, settings and summary.

        Returns
        -------
        dict
            ``{"north_star", "metrics": [{"metric", "verdict", "rank", "why", "log_loss",
            "brier", "auc", "skill", "baseline_log_loss", "elpd_loo", "elpd_se",
            "elpd_diff", "trained_tenure_max", "beyond_trained_tenure", "within": {"mean",
            "low", "high"}, "between": {...}, "precedes", "preceded_by", "static",
            "within_share", ...}, ...], "timing": [...],
            "cross_correlations": [...], "threshold": {...}, "diagnostics": {...} (see
            :meth:`diagnostics`), "settings": {...}, "timings": {...}, "summary": str}``.
            NaN becomes None.
        """
        numbers = (
            "log_loss",
            "brier",
            "auc",
            "skill",
            "baseline_log_loss",
            "elpd_loo",
            "elpd_se",
            "elpd_diff",
            "pareto_k_max",
            "rhat_max",
            "divergences",
            "trained_tenure_max",
            "beyond_trained_tenure",
        )
        metrics = [
            {
                "metric": r["metric"],
                "verdict": r["verdict"],
                "rank": int(r["rank"]),
                "why": r["why"],
                **{k: r[k] for k in numbers},
                **{
                    side: {k: r[f"{side}_{k}"] for k in ("mean", "low", "high")}
                    for side in ("within", "between")
                },
                "precedes": [m for m in r["precedes"].split(", ") if m],
                "preceded_by": [m for m in r["preceded_by"].split(", ") if m],
                "static": bool(r["static"]),
                "within_share": r["within_share"],
            }
            for r in self.metrics.to_dict("records")
        ]
        return {
            "north_star": self.north_star,
            "metrics": to_jsonable(metrics),
            "timing": to_jsonable(self.timing),
            "cross_correlations": to_jsonable(self.cross_correlations),
            "threshold": to_jsonable(self.threshold),
            "diagnostics": self.diagnostics(),
            "settings": to_jsonable(self.settings),
            "timings": to_jsonable(self.timings),
            "summary": self.summary,
        }


def _threshold_timed(
    panel: Panel, seed: int, sampling: RetentionSampler | dict, bins: int
) -> tuple[dict, az.InferenceData, float]:
    """:func:`threshold_fit` and its seconds; ``sampling`` may be a sampler's options."""
    if isinstance(sampling, dict):  # in a second process: a sampler of its own
        sampling = RetentionSampler(**sampling)
    t0 = time.perf_counter()
    thr, fit = threshold_fit(panel, seed=seed, sampling=sampling, bins=bins)
    if "log_likelihood" in fit.groups():  # read by the threshold; not needed after it
        del fit.log_likelihood
    return thr, fit, time.perf_counter() - t0


def validate(
    panel: Panel,
    *,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    draws: int = VALIDATION_DRAWS,
    tune: int = VALIDATION_TUNE,
    chains: int = VALIDATION_CHAINS,
    sampler: str = "nutpie",
    progress: bool = False,
    lags: int = 4,
    train_share: float = 0.7,
    bins: int = LEVEL_BINS,
    hinge_bins: int = THRESHOLD_BINS,
    rule: VerdictRule | None = None,
    sampling: RetentionSampler | None = None,
    workers: int = 1,
    second_process: SecondProcess | None = None,
) -> Validation:
    """Is the North Star truly leading? Evidence and a verdict for it and each candidate.

    Runs :func:`~nsm_sim.leading.granger` and :func:`~nsm_sim.leading.cross_correlations`
    (timing), :func:`~nsm_sim.leading.within_between`, :func:`~nsm_sim.leading.predictive_power`
    and :func:`~nsm_sim.leading.threshold`, then :func:`~nsm_sim.leading.rank_and_judge`.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metrics : sequence of str, optional
        Metrics to judge; default the North Star and the tree's candidates.
    seed : int, default 0
        Seed of the fits (each fit its own stream of it: see
        :mod:`nsm_sim.leading.posterior`).
    draws, tune, chains : int
        Sampler settings of each fit.
    sampler : {"nutpie", "pymc"}
        NUTS back-end (:mod:`nsm_sim.models.sampling`); either way the retention model is
        built once per structure and each fit swaps its cells into it.
    progress : bool, default False
        Show sampler progress.
    lags : int, default 4
        Lags of the Granger regressions and of the cross-correlations.
    train_share : float, default 0.7
        Share of periods used to fit the predictive models; the rest are scored.
    bins : int, default :data:`~nsm_sim.data.cells.LEVEL_BINS`
        Level bins of each metric's churn cells in the metric comparison (the fit's).
    hinge_bins : int, default :data:`~nsm_sim.leading.hinge.THRESHOLD_BINS`
        Level bins of the North Star's churn cells for the threshold.
    rule : VerdictRule, optional
        Verdict thresholds.
    sampling : RetentionSampler, optional
        Sampler settings and the models compiled under them, e.g. to share compilations
        between validations; when given, ``sampler``, ``draws``, ``tune``, ``chains`` and
        ``progress`` are its own.
    workers : int, default 1
        Processes that fit: with 2, the threshold's fits run in a second process (started
        with ``spawn``) while this one fits the metrics, each stage keeping about one core
        busy (``nsm-sim validate`` does so on two cores or more). The numbers are the same
        either way (each fit has its own seed). A script that asks for 2 must start its work
        under ``if __name__ == "__main__":``, as for any ``spawn`` start.
    second_process : SecondProcess, optional
        A second process already started (:class:`~nsm_sim.alongside.SecondProcess`, e.g.
        importing this module while the caller reads its data): the threshold's fits run
        there, whatever ``workers`` says.

    Returns
    -------
    Validation

    Raises
    ------
    DataError
        When a metric is not a column, or there are too few periods or churn events to fit
        before the cutoff and score after it.
    """
    rule = rule or VerdictRule()
    sampling = sampling or RetentionSampler(
        sampler, draws=draws, tune=tune, chains=chains, progress=progress
    )
    metrics = check_metrics(panel, metrics)
    ns = panel.tree.north_star
    n_periods = len(panel.periods)
    if n_periods < lags + 3:
        raise DataError(
            panel.source, [f"period: {n_periods} periods; expected at least {lags + 3} (lags + 3)"]
        )
    cutoff, _ = cutoff_rows(panel, train_share)
    frame = panel.frame
    clock = {}

    # in a second process the threshold's fits get a sampler of their own (same settings); it
    # starts first, as it has the longest way to go (its imports, compilations and two fits)
    second = second_process if second_process is not None else workers > 1
    threshold_work = functools.partial(
        _threshold_timed, panel, seed, sampling.options() if second else sampling, hinge_bins
    )
    with alongside(threshold_work, second_process=second) as threshold_result:
        t0 = time.perf_counter()
        timing = granger(frame, metrics, lags=lags) if len(metrics) > 1 else pd.DataFrame()
        xcorr = cross_correlations(frame, metrics, ns, lags=lags)
        clock["timing"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        effects = within_between(frame, metrics, panel.segments, reference=ns)
        clock["within_between"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        power = predictive_power(
            panel, metrics, seed=seed, sampling=sampling, train_share=train_share, bins=bins
        )
        clock["predictive"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        thr, hinge_fit, threshold_seconds = threshold_result()
        clock["threshold"] = threshold_seconds
        clock["threshold_wait"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fits = {(TRAINING_FIT, m): power.train_posteriors[m] for m in metrics}
    fits |= {(IN_SAMPLE_FIT, m): power.posteriors[m] for m in metrics}
    threshold_name = THRESHOLD_FIT if thr.get("tested", True) else SMOOTH_FIT
    checks = trust_gates({**fits, (threshold_name, ns): hinge_fit})
    clock["trust_gates"] = time.perf_counter() - t0

    table = rank_and_judge(power.scores, effects, timing, rule)
    comparison = az.compare(power.loo, ic="loo") if len(power.loo) > 1 else pd.DataFrame()
    settings = {
        "metrics": metrics,
        "cutoff_period_index": cutoff,
        "cutoff_period": str(panel.periods[cutoff].date()),
        "train_rows": int((frame["t"] < cutoff).sum()),
        "test_rows": int((frame["t"] >= cutoff).sum()),
        "lags": int(lags),
        "bins": int(bins),
        "hinge_bins": int(hinge_bins),
        **sampling.settings(),
        "seed": int(seed),
        "lag_convention": LAG_CONVENTION,
        "rule": dict(rule.__dict__),
    }
    clock["total"] = sum(clock.values())
    return Validation(
        north_star=ns,
        metrics=table,
        timing=timing,
        cross_correlations=xcorr,
        within_between=effects,
        checks=checks,
        comparison=comparison,
        threshold=thr,
        summary=f"{summary_text(ns, table, thr)}\n{gates_sentence(checks)}",
        settings=settings,
        timings=clock,
        posteriors={**power.posteriors, "hinge": hinge_fit},
    )


#: The hinge's variables NUTS samples (``hinge_tau`` is drawn after sampling).
SAMPLED_HINGE_VARS = tuple(v for v in HINGE_VARS if v != "hinge_tau")

_FIT_KEYS = (
    "status",
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "divergences",
    "tree_depth_saturation",
)


def trust_gates(fits: dict[tuple[str, str], az.InferenceData]) -> pd.DataFrame:
    """Grade each fit of a validation (:func:`nsm_sim.models.diagnostics.diagnose`).

    R-hat, ESS and degenerate draws are graded on the variables NUTS samples that the
    validation reads (:data:`~nsm_sim.leading.posterior.HAZARD_VARS` and ``hinge_jump``;
    ``hinge_tau`` is drawn from its exact conditional after sampling, on a grid, and may
    rightly sit on one value); divergences and tree depth are the whole fit's.

    Parameters
    ----------
    fits : dict
        ``{(fit, metric): InferenceData}``.

    Returns
    -------
    pandas.DataFrame
        ``fit``, ``metric`` and the columns of :func:`~nsm_sim.models.diagnostics.diagnose`,
        one row per check of each fit.
    """
    tables = []
    for (fit, metric), idata in fits.items():
        read = [v for v in (*HAZARD_VARS, *SAMPLED_HINGE_VARS) if v in idata.posterior]
        graded = az.InferenceData(posterior=idata.posterior[read], sample_stats=idata.sample_stats)
        tables.append(diagnose(graded).assign(fit=fit, metric=metric))
    table = pd.concat(tables, ignore_index=True)
    return table[["fit", "metric", *[c for c in table.columns if c not in ("fit", "metric")]]]


def gates_sentence(checks: pd.DataFrame) -> str:
    """Return one line on the trust gates of a validation's fits (:func:`trust_gates`).

    Parameters
    ----------
    checks : pandas.DataFrame

    Returns
    -------
    str
        How many fits pass, and the worst R-hat, ESS and the divergences over all of them.
    """
    fits = checks.groupby(["fit", "metric"], sort=False)["status"]
    order = {"PASS": 0, "REVIEW": 1, "FAIL": 2}
    worst = fits.agg(lambda s: max(s, key=order.__getitem__)).value_counts()
    counts = ", ".join(f"{worst[k]} {k}" for k in order if k in worst)
    value = checks.groupby("check")["value"]
    rhat, ess = value.max().get("r_hat", np.nan), value.min().get("ess_bulk", np.nan)
    div = int(value.sum().get("divergences", 0))
    return (
        f"Trust gates of the {fits.ngroups} fits: {counts} (largest R-hat {rhat:.3f}, "
        f"smallest bulk ESS {ess:.0f}, {div} divergent transitions in all)."
    )
