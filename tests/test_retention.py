import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import stats as sps
from scipy.special import expit, gammaln, logsumexp

from nsm_sim.data import ChurnCells, check_frame, churn_cells
from nsm_sim.models import inference
from nsm_sim.models.retention import (
    add_retention_terms,
    build_retention_model,
    churn_logit,
    expected_hazard,
    expected_retention,
    hinge_bounds,
    hinge_grid,
)
from nsm_sim.synth import generate_world


def test_churn_logit_is_the_same_on_numpy_and_pytensor():
    rng = np.random.default_rng(0)
    x, lt = rng.uniform(0, 4, 50), rng.uniform(0, 3, 50)
    args = (x, lt, -3.0, -0.4, -0.2, -0.7, 7.5)
    numpy_value = churn_logit(*args)
    tensors = [pt.as_tensor(np.asarray(a, dtype=float)) for a in args]
    tensor_value = churn_logit(*tensors, sigmoid=pt.sigmoid).eval()
    np.testing.assert_allclose(numpy_value, tensor_value, rtol=1e-12)
    # the hinge is a smooth step at log1p(tau)
    assert churn_logit(np.log1p(7.5), 0.0, 0.0, 0.0, 0.0, -0.7, 7.5) == pytest.approx(-0.35)


def _few_levels_panel():
    """A panel whose North Star takes 6 distinct values: cells are exact."""
    world = generate_world(accounts=300, periods=12, seed=4)
    frame = world.panel.copy()
    ns = world.tree.north_star
    frame[ns] = np.minimum(np.floor(frame[ns] / 5.0), 5.0)
    return check_frame(frame, world.tree, source="few levels")


@pytest.mark.parametrize("hinge", [True, False])
def test_binomial_cells_equal_the_per_row_bernoulli_log_density(hinge):
    panel = _few_levels_panel()
    max_tenure = int(panel.frame["tenure"].max())
    cells = churn_cells(panel, tenure_bands=tuple(range(max_tenure + 1)))
    model = build_retention_model(cells, hinge=hinge)
    point = model.initial_point()
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0.0, 0.2, np.shape(v)) for k, v in point.items()}
    got = model.compile_logp(vars=[model["churn_cells"]], jacobian=False)(point)
    # the same parameters on every row
    # the parameters at that point (deterministics as functions of the value variables)
    values = [
        model.compile_fn(
            model.replace_rvs_by_values([model[n]])[0],
            inputs=model.value_vars,
            on_unused_input="ignore",
            point_fn=True,
        )(point)
        for n in ("churn_intercept", "churn_slope", "tenure_slope")
        + (("hinge_jump",) if hinge else ())
    ]
    f = panel.frame
    seg = pd.Categorical(f["segment"], categories=list(panel.segments)).codes

    def per_row(tau):
        logit = churn_logit(
            np.log1p(f[panel.tree.north_star].to_numpy(float)),
            np.log1p(f["tenure"].to_numpy(float)),
            values[0][seg],
            values[1][seg],
            values[2],
            values[3] if hinge else 0.0,
            tau,
        )
        return sps.bernoulli.logpmf(f["churned"].to_numpy(), expit(logit)).sum()

    c = cells.frame
    log_choose = (
        gammaln(c["at_risk"] + 1)
        - gammaln(c["churned"] + 1)
        - gammaln(c["at_risk"] - c["churned"] + 1)
    ).sum()
    if hinge:  # hinge_tau integrated out over the grid: the same sum at every grid point
        grid = hinge_grid(cells)
        pairs = zip(grid["log_weight"], grid["tau"], strict=True)
        expected = logsumexp([w + per_row(t) for w, t in pairs])
    else:
        expected = per_row(None)
    assert got - log_choose == pytest.approx(expected, rel=1e-10)


def test_binning_error_is_small_against_the_exact_per_row_fit():
    """MAP of the binned cells vs MAP of the per-row Bernoulli model (one cell per row).

    Bound: the North Star slope within 0.05 (and 10 %) and the tenure slope within 0.05.
    """
    world = generate_world(accounts=800, periods=30, seed=8)
    panel = check_frame(world.panel, world.tree, source="binning")
    f = panel.frame
    ns = f[panel.tree.north_star].to_numpy(float)
    rows = pd.DataFrame(
        {
            "segment": f["segment"].astype(str).to_numpy(),
            "segment_idx": pd.Categorical(f["segment"], categories=list(panel.segments)).codes,
            "tenure_band": 0,
            "log_tenure": np.log1p(f["tenure"].to_numpy(float)),
            "level": ns,
            "x": np.log1p(ns),
            "at_risk": 1,
            "churned": f["churned"].to_numpy(),
        }
    )
    exact = ChurnCells(panel.tree.north_star, panel.segments, rows)
    binned = churn_cells(panel)
    assert len(binned.frame) < len(rows) / 20
    fits = {}
    for name, cells in (("exact", exact), ("binned", binned)):
        model = build_retention_model(cells, hinge=False)
        with model:
            fits[name] = pm.find_MAP(progressbar=False, seed=0)
    for term, bound in (("churn_slope_mu", 0.05), ("tenure_slope", 0.05)):
        a, b = float(fits["exact"][term]), float(fits["binned"][term])
        assert abs(a - b) < bound, (term, a, b)
    a, b = float(fits["exact"]["churn_slope_mu"]), float(fits["binned"]["churn_slope_mu"])
    assert abs(a - b) <= 0.1 * abs(a) + 1e-9


def test_expected_retention_is_the_product_of_survival():
    params = {
        "churn_intercept": np.array([[-3.0, -4.0]]),
        "churn_slope": np.array([[-0.5, -0.3]]),
        "tenure_slope": np.array([-0.1]),
        "hinge_jump": np.array([-0.7]),
        "hinge_tau": np.array([7.5]),
    }
    levels = np.array([1.0, 7.5, 20.0])
    got = expected_retention(params, levels, horizon=5, segment=1, tenure=2.0)
    expected = np.ones(3)
    for k in range(5):
        logit = churn_logit(np.log1p(levels), np.log1p(2.0 + k), -4.0, -0.3, -0.1, -0.7, 7.5)
        expected = expected * (1 - expit(logit))
    np.testing.assert_allclose(got[0], expected, rtol=1e-12)
    assert np.all(np.diff(got[0]) > 0)  # more North Star, more retention
    assert expected_hazard(params, levels, segment=0).shape == (1, 3)


def test_hinge_prior_spans_the_observed_north_star(panel):
    cells = churn_cells(panel)
    lo, hi = hinge_bounds(cells)
    ns = panel.frame[panel.tree.north_star].to_numpy(float)
    assert lo == pytest.approx(np.quantile(ns, 0.05), rel=0.3)
    assert hi == pytest.approx(np.quantile(ns, 0.95), rel=0.3)


def test_retention_terms_join_an_existing_model(panel):
    cells = churn_cells(panel)
    with pm.Model(coords={"segment": list(panel.segments)}) as model:
        add_retention_terms(cells, hinge=False)
    assert "hinge_tau" not in model.named_vars
    assert model.named_vars_to_dims["churn_slope"] == ("segment",)


def test_churn_slope_interval_contains_truth(fitted, world):
    table = inference.summarise(fitted)["retention"]
    ns = world.tree.north_star
    row = table[(table["term"] == ns) & table["segment"].isna()].iloc[0]
    assert row["low"] <= world.truth["churn"]["slope"] <= row["high"]
    odds = table[(table["term"] == f"{ns} odds ratio per e-fold") & table["segment"].isna()]
    assert odds.iloc[0]["mean"] == pytest.approx(
        float(np.exp(fitted.idata.posterior["churn_slope_mu"]).mean()), rel=1e-9
    )
