"""The churn model against reference implementations on the same rows.

- statsmodels ``GLM(Binomial)`` on the churn cells and ``Logit`` on the rows they come from:
  the same coefficients (to 1e-6 relative) and standard errors (1e-5), so the cells lose
  nothing where tenure and the metric's levels are exact.
- The model's posterior mode on a 0/1 North Star at about 20,000 rows: within 2 % of the
  per-row maximum likelihood (statsmodels ``Logit``) with the data-scaled priors, and the
  validation's posterior mean (one slope common to the segments) within 2 % too.
- Out-of-time log-loss of the validation's fits (metric and baseline) within 2 % of a per-row
  statsmodels ``Logit`` with the same covariates, on a world whose churn is defined by
  inactivity and on the demo's kind of world.
- lifelines' ``CoxTimeVaryingFitter`` with tenure as the time scale: the North Star's
  coefficient within 0.1 (and two of its standard errors) of the discrete-time logistic
  hazard's (measured: -0.680 against -0.686, standard error 0.066; a Cox model leaves the
  tenure curve free where ours is linear in ``log1p(tenure)``, and the two links agree only
  while the hazard is small, as it is here: about 1 % per period).
"""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from nsm_sim.data import check_frame, churn_cells
from nsm_sim.leading.posterior import RetentionSampler
from nsm_sim.leading.predictive import cutoff_rows, log_loss, predictive_power
from nsm_sim.models.retention import build_retention_model, retention_data
from nsm_sim.numeric import logistic_map
from nsm_sim.synth import generate_world

sm = pytest.importorskip("statsmodels.api")


def _design(panel, metric=None, tenure_max=None):
    """Segment indicators, ``log1p(metric)`` and ``log1p(tenure)`` per row (no intercept)."""
    f = panel.frame
    codes = pd.Categorical(f["segment"].astype(str), categories=list(panel.segments)).codes
    tenure = f["tenure"].to_numpy(float)
    if tenure_max is not None:
        tenure = np.minimum(tenure, tenure_max)
    columns = [np.eye(len(panel.segments))[codes]]
    if metric:
        columns.append(np.log1p(f[metric].to_numpy(float))[:, None])
    return np.column_stack([*columns, np.log1p(tenure)])


def _cell_design(cells):
    c = cells.frame
    seg = np.eye(len(cells.segments))[c["segment_idx"].to_numpy()]
    return np.column_stack([seg, c["x"].to_numpy(), c["log_tenure"].to_numpy()])


@pytest.fixture(scope="module")
def binary_panel():
    """A 0/1 North Star, 20,828 account-periods (per-row MLE of its slope -0.58, se 0.21)."""
    world = generate_world(accounts=1000, periods=30, seed=0, binary_north_star=True)
    return check_frame(world.panel, world.tree, source="binary north star")


def test_glm_binomial_on_the_cells_is_the_logit_on_the_rows(binary_panel):
    panel = binary_panel
    cells = churn_cells(panel, tenure_step=0)  # one tenure per cell: the rows' covariates
    c = cells.frame
    assert len(c) < len(panel.frame) / 50
    y = panel.frame["churned"].to_numpy(float)
    rows = sm.Logit(y, _design(panel, panel.tree.north_star)).fit(disp=0)
    endog = np.column_stack([c["churned"], c["at_risk"] - c["churned"]])
    glm = sm.GLM(endog, _cell_design(cells), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(glm.params, rows.params, rtol=1e-6)
    np.testing.assert_allclose(glm.bse, rows.bse, rtol=1e-5)  # Logit's stopping tolerance
    ours, _, _ = logistic_map(_cell_design(cells), c["churned"], c["at_risk"])
    np.testing.assert_allclose(ours, rows.params, rtol=1e-6)


@pytest.mark.slow
def test_a_binary_north_stars_slope_is_the_per_row_maximum_likelihood(binary_panel):
    """Posterior mode within 2 % of the MLE; a fixed Normal(0, 1) prior shrank it more."""
    panel = binary_panel
    assert 18_000 <= len(panel.frame) <= 24_000
    ns = panel.tree.north_star
    y = panel.frame["churned"].to_numpy(float)
    mle = sm.Logit(y, _design(panel, ns)).fit(disp=0).params[len(panel.segments)]
    model = build_retention_model(churn_cells(panel), hinge=False)
    with model:
        scaled = float(pm.find_MAP(progressbar=False, seed=0)["churn_slope_mu"])
        pm.set_data({"churn_slope_prior_sd": 1.0})
        fixed = float(pm.find_MAP(progressbar=False, seed=0)["churn_slope_mu"])
    assert mle < -0.4  # a clear effect, so that 2 % means something
    assert scaled == pytest.approx(mle, rel=0.02)
    assert abs(fixed - mle) > 2 * abs(scaled - mle)


@pytest.mark.slow
def test_the_validations_posterior_mean_is_the_per_row_maximum_likelihood(binary_panel):
    """The validation's model (one slope common to the segments) at 8,000 draws.

    Measured: posterior mean -0.5783 against the MLE's -0.5775 (+0.1 %); the Monte Carlo
    standard error of the mean is about 0.4 % of the effect.
    """
    panel = binary_panel
    ns = panel.tree.north_star
    y = panel.frame["churned"].to_numpy(float)
    mle = sm.Logit(y, _design(panel, ns)).fit(disp=0).params[len(panel.segments)]
    sampling = RetentionSampler(draws=2000, tune=500, chains=4)
    idata = sampling.sample(churn_cells(panel), hinge=False, seed=3, key=(0, 0))
    slope = idata.posterior["churn_slope_mu"].to_numpy().ravel()
    assert slope.mean() == pytest.approx(mle, rel=0.02)


def test_prior_scales_follow_the_metrics_spread(binary_panel):
    data = retention_data(churn_cells(binary_panel, tenure_step=0), hinge=False)
    x = np.log1p(binary_panel.frame[binary_panel.tree.north_star].to_numpy(float))
    assert data["churn_slope_prior_sd"] == pytest.approx(2.5 / x.std(), rel=1e-9)
    assert data["churn_slope_sigma_prior_sd"] == pytest.approx(0.1 / x.std(), rel=1e-9)
    tenure = np.log1p(binary_panel.frame["tenure"].to_numpy(float))
    assert data["tenure_slope_prior_sd"] == pytest.approx(2.5 / tenure.std(), rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [{"churn": "inactivity", "inactive_periods": 13}, {}],
    ids=["inactivity", "hazard"],
)
def test_out_of_time_log_loss_is_the_per_row_logits(options):
    world = generate_world(accounts=2000, periods=52, seed=0, **options)
    panel = check_frame(world.panel, world.tree)
    ns = panel.tree.north_star
    _, train = cutoff_rows(panel, 0.7)
    sampling = RetentionSampler(draws=200, tune=200)
    row = predictive_power(panel, [ns], sampling=sampling, in_sample=False).scores.iloc[0]
    tenure_max = int(panel.frame["tenure"].to_numpy()[train].max())
    assert row["trained_tenure_max"] == tenure_max
    y = panel.frame["churned"].to_numpy(float)
    for metric, ours in ((ns, row["log_loss"]), (None, row["baseline_log_loss"])):
        X = _design(panel, metric, tenure_max)
        reference = sm.Logit(y[train], X[train]).fit(disp=0, maxiter=200).predict(X[~train])
        assert ours == pytest.approx(log_loss(y[~train], reference), rel=0.02), metric


def test_the_cox_model_agrees_on_the_north_stars_coefficient():
    lifelines = pytest.importorskip("lifelines")
    world = generate_world(accounts=1500, periods=30, seed=5)
    panel = check_frame(world.panel, world.tree)
    f = panel.frame
    ns = panel.tree.north_star
    cells = churn_cells(panel)
    logistic, _, _ = logistic_map(
        _cell_design(cells), cells.frame["churned"], cells.frame["at_risk"]
    )
    codes = pd.Categorical(f["segment"].astype(str), categories=list(panel.segments)).codes
    long = pd.DataFrame(
        {
            "id": pd.factorize(f["account_id"])[0],
            "start": f["tenure"].to_numpy(float),
            "stop": f["tenure"].to_numpy(float) + 1.0,
            "event": f["churned"].to_numpy(bool),
            "x": np.log1p(f[ns].to_numpy(float)),
            **{f"segment_{k}": (codes == k).astype(float) for k in range(1, len(panel.segments))},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cox = lifelines.CoxTimeVaryingFitter().fit(
            long, id_col="id", start_col="start", stop_col="stop", event_col="event"
        )
    slope = logistic[len(panel.segments)]
    assert cox.params_["x"] == pytest.approx(slope, abs=0.1)
    assert abs(cox.params_["x"] - slope) < 2 * cox.standard_errors_["x"]
