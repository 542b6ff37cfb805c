"""Retention: a metric as a predictor of churn (discrete-time logistic hazard).

For an account alive in period t::

    logit P(churn after t) = intercept[s] + slope[s] * x + tenure_slope * log1p(tenure)
                             + hinge_jump * sigmoid((x - log1p(hinge_tau)) / HINGE_WIDTH)

with ``x = log1p(metric)``: the North Star in the fit, any candidate metric in the validation
(:mod:`nsm_sim.leading`). Retention over h periods is the product of ``1 - hazard``.

The likelihood is a Binomial over cells (segment x tenure x metric level) from
:func:`nsm_sim.data.churn_cells`: tenure is single in every cell where ``log1p(tenure)`` moves
fast (short tenure) and merged where it moves by less than
:data:`~nsm_sim.data.cells.TENURE_STEP` (each cell at its rows' mean ``log1p(tenure)``; the
error bound is in :mod:`nsm_sim.data.cells`), and the metric is exact where it takes few
distinct values, binned otherwise; ``tests/test_retention.py`` measures the error of both
against the exact cells and the per-row fit (with ``tenure_step=0`` and exact levels the
cells' likelihood is the per-row Bernoulli likelihood). Every input of the model is a data
container (:func:`retention_data`), starting values and prior scales included, so a model
compiled once samples the cells of another metric or of other rows once their
:func:`retention_data` are set into it
(``pm.set_data``; :class:`nsm_sim.models.sampling.Sampler` does it).
:func:`account_log_likelihood` gives the log-likelihood of each account's rows under a
posterior, for leave-one-account-out comparisons.

Priors (weakly informative, on the logit scale, slopes scaled to the data)
--------------------------------------------------------------------------
A slope's prior is scaled to the spread of its covariate, as Bambi and rstanarm scale their
default priors: ``Normal(0, 2.5 / sd)``, 2.5 logits per standard deviation of the covariate
(``sd`` over the cells, rows weighted; :func:`prior_scales`). A fixed ``Normal(0, 1)`` on the
slope of ``log1p(metric)`` shrank the slope of a 0/1 metric (which spans 0.69 log1p units)
by about 11 % against the per-row maximum likelihood at 20,000 rows; scaled, the prior is
wide for every metric's units and the posterior follows the data.

- ``churn_intercept_c[s] ~ Normal(-3, 2)``: the churn logit of segment s at its average
  account-period (mean ``x``, mean ``log1p`` tenure, average hinge term): a per-period churn
  of a few per cent, with room from 0.1 % to 50 %. The intercept of the formula,
  ``churn_intercept = churn_intercept_c - slope * mean_x - tenure_slope * mean_log_tenure -
  hinge_jump * mean_hinge`` (means over the segment's rows), is a deterministic of it;
  centring takes out the strong posterior correlation between intercept and slopes, whatever
  the metric's scale.
- ``churn_slope_mu ~ Normal(0, 2.5 / sd(x))``: change of the churn logit per unit of ``x``
  (per e-fold of the metric); pooled across segments.
- ``churn_slope_sigma ~ HalfNormal(0.1 / sd(x))``: spread of the slope across segments (a
  tenth of a logit per standard deviation of ``x``).
- ``churn_slope_z ~ ZeroSumNormal(1)`` over segments and ``churn_slope = mu + sigma * z``
  (non-centred): ``churn_slope_mu`` is then exactly the average of the segments' slopes, so its
  posterior does not widen and narrow with ``sigma`` (with independent ``z`` it does, and with
  three segments that funnel made NUTS diverge: R-hat 1.02 on ``churn_slope_mu``). With a
  single segment ``z`` is a plain ``Normal(0, 1)``.
- ``tenure_slope ~ Normal(0, 2.5 / sd(log1p(tenure)))``: change of the logit per unit of
  ``log1p(tenure)``.
- ``hinge_jump ~ Normal(0, 2.5)``: change of the logit at and above the threshold (the step
  goes from 0 to 1).
- ``hinge_tau ~ Uniform(p5, p95)``: the threshold, on the metric's own scale, anywhere
  between the 5th and 95th percentile of the observed metric (rows weighted).

The step by evidence
--------------------
:func:`step_evidence` says whether the data call for the step: a metric with fewer than
:data:`HINGE_MIN_LEVELS` distinct levels gets none (with two levels, a 0/1 metric, slope and
step are one contrast), and otherwise the step must raise the expected elpd by more than
:data:`HINGE_MIN_ELPD_GAIN`. With a step, :func:`combined_effect` reports slope and step
together (the change of the churn logit between two levels of the metric), so an effect the
two share is never hidden by the split. The fit asks it by default (``nsm-sim fit --hinge
auto``; :func:`nsm_sim.models.inference.hinge_choice`) and keeps its reason in the card.

The threshold integrated out
----------------------------
With binned or discrete levels the likelihood of ``hinge_tau`` is flat between levels with
walls of width ``HINGE_WIDTH`` at them: NUTS diverges at the walls and chains started in
different flats do not meet (measured on the synthetic world: R-hat 1.03 and a tail ESS of
100 for ``hinge_tau`` in 1,200 draws). So the model integrates the threshold out over a grid
(:func:`hinge_grid`: intervals at most ``HINGE_WIDTH`` wide on the log1p scale, each weighted
by its prior probability; intervals the data rule out, by a profile likelihood more than 10
log units below the best, are dropped; every chain starts at the maximum likelihood at the
best threshold, so that no chain starts in a minor mode): the potential ``churn_cells`` is
``logsumexp_g(log w_g + log Binomial(cells | churn_logit(..., hinge_jump, tau_g)))``. The
sampler then sees only smooth parameters, and :func:`draw_hinge_tau` draws ``hinge_tau`` from
its exact conditional on the grid afterwards (uniformly within the drawn interval). The same
grid's profile likelihood locates a threshold without sampling.

The posterior variables (a contract with the simulator): ``churn_intercept`` ("segment",),
``churn_slope`` ("segment",), ``churn_slope_mu``, ``churn_slope_sigma``, ``tenure_slope``, and
with a hinge ``hinge_jump`` and ``hinge_tau`` (scalars; ``hinge_tau`` is added to the posterior
by :func:`draw_hinge_tau`).
"""

from nsm_sim.models.retention.hazard import (
    HINGE_WIDTH,
    PRIORS,
    SLOPE_SCALE,
    SPREAD_SCALE,
    churn_logit,
    combined_effect,
    expected_hazard,
    expected_retention,
    prior_scales,
    retention_curve,
)
from nsm_sim.models.retention.model import (
    HINGE_MIN_ELPD_GAIN,
    HINGE_MIN_LEVELS,
    account_log_likelihood,
    add_retention_terms,
    build_retention_model,
    draw_hinge_tau,
    hinge_bounds,
    hinge_grid,
    retention_coords,
    retention_data,
    step_evidence,
)

__all__ = [
    "HINGE_MIN_ELPD_GAIN",
    "HINGE_MIN_LEVELS",
    "HINGE_WIDTH",
    "PRIORS",
    "SLOPE_SCALE",
    "SPREAD_SCALE",
    "account_log_likelihood",
    "add_retention_terms",
    "build_retention_model",
    "churn_logit",
    "combined_effect",
    "draw_hinge_tau",
    "expected_hazard",
    "expected_retention",
    "hinge_bounds",
    "hinge_grid",
    "prior_scales",
    "retention_coords",
    "retention_curve",
    "retention_data",
    "step_evidence",
]
