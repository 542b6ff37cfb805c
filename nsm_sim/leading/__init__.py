"""Leading: is the North Star truly leading? Evidence and a verdict per metric.

For the North Star and each candidate metric M, four kinds of evidence, each in its module:

1. **Predictive power** (:mod:`~nsm_sim.leading.predictive`): the retention model of
   :mod:`nsm_sim.models.retention` on M, fit before a cutoff and scored after it, and compared
   in sample by PSIS-LOO over accounts.
2. **Timing** (:mod:`~nsm_sim.leading.timing`): panel Granger tests between every pair of
   metrics and cross-correlations of within-account changes with the North Star.
3. **Within vs between** (:mod:`~nsm_sim.leading.effects`): does churn move with M within an
   account, or only across accounts?
4. **Threshold** (:mod:`~nsm_sim.leading.hinge`): a hinge in the North Star's retention
   model against none.

:mod:`~nsm_sim.leading.rule` reads them into LEADING, COINCIDENT, LAGGING, VANITY or NO
SIGNAL and ranks the metrics; :func:`validate` (:mod:`~nsm_sim.leading.validation`) runs it all
and grades every fit by the trust gates of a fit. A metric that never moves within an account
(a trait) gets no within effect and no timing test, and its verdict says so.
"""

from nsm_sim.leading.effects import within_between
from nsm_sim.leading.hinge import threshold
from nsm_sim.leading.posterior import RetentionSampler
from nsm_sim.leading.predictive import (
    PredictivePower,
    auc,
    baseline_scores,
    brier,
    log_loss,
    predictive_power,
)
from nsm_sim.leading.rule import (
    VERDICTS,
    Effect,
    Verdict,
    VerdictRule,
    precedence,
    rank_and_judge,
    verdict,
)
from nsm_sim.leading.timing import LAG_CONVENTION, cross_correlations, granger
from nsm_sim.leading.validation import Validation, validate

__all__ = [
    "LAG_CONVENTION",
    "VERDICTS",
    "Effect",
    "PredictivePower",
    "RetentionSampler",
    "Validation",
    "Verdict",
    "VerdictRule",
    "auc",
    "baseline_scores",
    "brier",
    "cross_correlations",
    "granger",
    "log_loss",
    "precedence",
    "predictive_power",
    "rank_and_judge",
    "threshold",
    "validate",
    "verdict",
    "within_between",
]
