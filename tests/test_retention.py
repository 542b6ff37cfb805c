import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import stats as sps
from scipy.special import expit, gammaln, log_expit, logsumexp

from nsm_sim.data import ChurnCells, check_frame, churn_cells
from nsm_sim.data.cells import TENURE_STEP, tenure_edges
from nsm_sim.models import inference
from nsm_sim.models.retention import (
    account_log_likelihood,
    add_retention_terms,
    build_retention_model,
    churn_logit,
    combined_effect,
    expected_hazard,
    expected_retention,
    hinge_bounds,
    hinge_grid,
    retention_data,
    step_evidence,
)
from nsm_sim.models.sampling import Sampler
from nsm_sim.numeric import logistic_map
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


@pytest.mark.parametrize("hinge", [True, False])
def test_binomial_cells_equal_the_per_row_bernoulli_log_density(logins_retention, hinge):
    # exact levels and tenure: a cell's rows alike (logins, the rows before week 8)
    at = logins_retention(hinge)
    got, point, cells = at.churn_cells_logp, at.point, at.cells
    f = at.panel.frame[at.rows]
    seg = pd.Categorical(f["segment"], categories=list(at.panel.segments)).codes

    def per_row(tau):
        # the same parameters on every row (the deterministics at the point)
        logit = churn_logit(
            np.log1p(f["logins"].to_numpy(float)),
            np.log1p(f["tenure"].to_numpy(float)),
            at.churn_intercept[seg],
            at.churn_slope[seg],
            point["tenure_slope"],
            point["hinge_jump"] if hinge else 0.0,
            tau,
        )
        return sps.bernoulli.logpmf(f["churned"].to_numpy(), expit(logit)).sum()

    c = cells.frame
    assert c["at_risk"].sum() == len(f) and (c["at_risk"] > 1).any()
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


@pytest.mark.slow  # two MAP fits of the retention model (compiled logp and gradient)
def test_binning_error_is_small_against_the_exact_per_row_fit():
    """MAP of the binned cells vs MAP of the per-row Bernoulli model (one cell per row).

    The North Star is binned (30 levels) and tenure merged where ``log1p(tenure)`` moves by
    less than ``TENURE_STEP``. Bound: the North Star slope within 0.05 (and 10 %) and the
    tenure slope within 0.02.
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
    assert len(binned.frame) < len(rows) / 5
    fits = {}
    for name, cells in (("exact", exact), ("binned", binned)):
        model = build_retention_model(cells, hinge=False)
        with model:
            fits[name] = pm.find_MAP(progressbar=False, seed=0)
    for term, bound in (("churn_slope_mu", 0.05), ("tenure_slope", 0.02)):
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


@pytest.mark.slow
def test_churn_slope_interval_contains_truth(fitted, world, panel):
    table = inference.summarise(fitted)["retention"]
    ns = world.tree.north_star
    row = table[(table["term"] == ns) & table["segment"].isna()].iloc[0]
    assert row["low"] <= world.truth["churn"]["slope"] <= row["high"]
    odds = table[(table["term"] == f"{ns} odds ratio per e-fold") & table["segment"].isna()]
    post = fitted.idata.posterior
    assert odds.iloc[0]["mean"] == pytest.approx(
        float(np.exp(post["churn_slope_population"]).mean()), rel=1e-9
    )
    # the population row is the segments' slopes averaged by their rows (at risk)
    rows = churn_cells(panel).frame.groupby("segment")["at_risk"].sum()
    weights = rows.reindex([str(s) for s in post["segment"].values]).to_numpy(float)
    by_hand = post["churn_slope"].values @ (weights / weights.sum())
    np.testing.assert_allclose(post["churn_slope_population"].values, by_hand, rtol=1e-12)


# --------------------------------------------------------------------------- any metric, any rows


def test_logp_on_any_metric_is_the_binomial_of_its_cells(logins_retention):
    """The model's likelihood on a candidate metric's cells, by hand (intercept centred)."""
    fresh = logins_retention(False)  # logins, the rows before week 8
    point, got = fresh.point, fresh.churn_cells_logp
    c = fresh.cells.frame
    seg = c["segment_idx"].to_numpy()
    n = c["at_risk"].to_numpy()
    # the centring: each segment's at-risk weighted mean of x and log tenure
    x_ref = (c["x"] * n).groupby(seg).sum().to_numpy() / np.bincount(seg, weights=n)
    lt_ref = (c["log_tenure"] * n).groupby(seg).sum().to_numpy() / np.bincount(seg, weights=n)
    slope, model_intercept = fresh.churn_slope, fresh.churn_intercept
    tenure_slope = point["tenure_slope"]
    intercept = point["churn_intercept_c"] - slope * x_ref - tenure_slope * lt_ref
    assert np.allclose(intercept, model_intercept)
    eta = intercept[seg] + slope[seg] * c["x"].to_numpy() + tenure_slope * c["log_tenure"]
    expected = sps.binom.logpmf(c["churned"], n, expit(eta)).sum()
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("hinge", [False, True])
def test_swapped_data_give_the_model_built_on_them(logins_retention, hinge):
    """Cells of another metric and rows put into a built model: the same logp and start."""
    fresh = logins_retention(hinge)  # logins, the rows before week 8
    first = churn_cells(fresh.panel, bins=12)  # the North Star, every row
    swapped = build_retention_model(first, hinge=hinge)
    pm.set_data(retention_data(fresh.cells, hinge=hinge), model=swapped)
    swapped_start = swapped.initial_point()
    assert swapped_start.keys() == fresh.start.keys()
    for name, value in fresh.start.items():
        np.testing.assert_allclose(swapped_start[name], value, rtol=1e-12)
    assert swapped.compile_logp()(fresh.point) == pytest.approx(fresh.logp, rel=1e-12)


@pytest.mark.slow
def test_one_compiled_model_samples_new_data_as_a_fresh_one(panel):
    first = churn_cells(panel, bins=12)
    other = churn_cells(panel, "logins", bins=20)
    sampler = Sampler(draws=50, tune=50, chains=2)
    model = build_retention_model(first, hinge=False)
    sampler.sample(model, seed=1)
    again = sampler.sample(model, seed=1, data=retention_data(other, hinge=False))
    fresh = Sampler(draws=50, tune=50, chains=2).sample(
        build_retention_model(other, hinge=False), seed=1
    )
    for name in ("churn_slope", "tenure_slope", "churn_intercept"):
        np.testing.assert_array_equal(again.posterior[name].values, fresh.posterior[name].values)


def test_row_cell_maps_every_row_to_its_cell(panel):
    f = panel.frame
    early = (f["t"] < 20).to_numpy()
    cells = churn_cells(panel, "revenue", rows=early, bins=15)
    c, rc = cells.frame, cells.row_cell
    assert (rc[~early] == -1).all() and (rc[early] >= 0).all()
    assert np.array_equal(np.bincount(rc[early], minlength=len(c)), c["at_risk"].to_numpy())
    churned = np.bincount(rc[early], weights=f.loc[early, "churned"], minlength=len(c))
    assert np.array_equal(churned, c["churned"].to_numpy())
    x = np.log1p(f.loc[early, "revenue"].to_numpy(float))
    assert np.allclose(np.bincount(rc[early], weights=x) / c["at_risk"], c["x"])
    seg = pd.Categorical(f["segment"], categories=list(panel.segments)).codes
    assert np.array_equal(c["segment_idx"].to_numpy()[rc[early]], seg[early])
    # tenure merged: a row's cell starts at or before its tenure, within TENURE_STEP on log1p
    tenure = f.loc[early, "tenure"].to_numpy()
    first = c["tenure_band"].to_numpy()[rc[early]]
    assert (first <= tenure).all()
    assert (np.log1p(tenure) - np.log1p(first) <= TENURE_STEP + 1e-12).all()
    lt = np.bincount(rc[early], weights=np.log1p(tenure)) / c["at_risk"]
    assert np.allclose(lt, c["log_tenure"])
    # tenure exact: every row of a cell has the cell's tenure
    exact = churn_cells(panel, "revenue", rows=early, bins=15, tenure_step=0)
    c, rc = exact.frame, exact.row_cell
    assert np.array_equal(c["tenure_band"].to_numpy()[rc[early]], tenure)
    np.testing.assert_allclose(c["log_tenure"].to_numpy()[rc[early]], np.log1p(tenure), 1e-14)


def test_tenure_groups_are_single_where_log_tenure_moves_fast():
    edges = tenure_edges(200)
    assert edges[0] == 0 and (np.diff(edges) > 0).all()
    last = np.r_[edges[1:] - 1, 200]
    # within a group log1p(tenure) moves by at most the step, and a group is as long as it can be
    assert (np.log1p(last) - np.log1p(edges) <= TENURE_STEP + 1e-12).all()
    assert (np.log1p(last[:-1] + 1) - np.log1p(edges[:-1]) > TENURE_STEP).all()
    # a tenure is alone exactly while one period moves log1p(tenure) by more than the step
    single = edges[np.r_[np.diff(edges), 2] == 1]
    fast = np.flatnonzero(np.log1p(np.arange(1, 202)) - np.log1p(np.arange(201)) > TENURE_STEP)
    assert set(fast.tolist()) <= set(single.tolist())
    assert np.array_equal(tenure_edges(12, 0.0), np.arange(13))
    # prefix-consistent: the groups do not depend on how far the data go
    assert np.array_equal(tenure_edges(60), edges[edges <= 60])


def test_merged_tenure_cells_give_the_exact_cells_answers():
    """Cells with tenures merged against one tenure per cell, on churn by inactivity.

    Churn is impossible before 12 weeks, so the hazard moves most with tenure there. The
    maximum-likelihood coefficients on the merged cells (4 times fewer) are within a fifth
    of a standard error of the exact cells', and the out-of-time log-loss within 1.5 %
    (measured here: 0.9 %, 0.14 standard errors of the tenure slope; on other worlds of
    ``benchmarks/RESULTS.md`` 0.0-0.4 %). The rows scored beyond the trained tenure make the
    log-loss sensitive to the tenure slope: a logit linear in ``log1p(tenure)`` is far from
    a hazard that is nil before week 12.
    """
    world = generate_world(
        accounts=1500, periods=52, seed=1, churn="inactivity", inactive_periods=13
    )
    panel = check_frame(world.panel, world.tree, source="inactivity")
    f, segments = panel.frame, len(panel.segments)
    train = (f["t"] < 36).to_numpy()
    y = f["churned"].to_numpy(float)

    def design(c):
        seg = np.eye(segments)[c["segment_idx"].to_numpy()]
        return np.column_stack([seg, c["x"], c["log_tenure"]])

    fits = {}
    for step in (0.0, TENURE_STEP):
        c = churn_cells(panel, tenure_step=step).frame
        beta, cov, _ = logistic_map(design(c), c["churned"], c["at_risk"])
        t = churn_cells(panel, rows=train, tenure_step=step).frame
        beta_t, _, _ = logistic_map(design(t), t["churned"], t["at_risk"])
        fits[step] = (len(c), beta, np.sqrt(np.diag(cov)), beta_t)
    (n_exact, exact, se, exact_t), (n_merged, merged, _, merged_t) = fits.values()
    assert n_merged < n_exact / 3
    assert (np.abs(merged - exact) < 0.2 * se).all()
    codes = pd.Categorical(f["segment"], categories=list(panel.segments)).codes
    tenure = np.minimum(f["tenure"].to_numpy(float), f.loc[train, "tenure"].max())
    rows = np.column_stack(
        [np.eye(segments)[codes], np.log1p(f[panel.tree.north_star]), np.log1p(tenure)]
    )[~train]

    def loss(beta):
        p = expit(rows @ beta)
        return -np.mean(y[~train] * np.log(p) + (1 - y[~train]) * np.log1p(-p))

    assert loss(merged_t) == pytest.approx(loss(exact_t), rel=0.015)


def test_cells_by_period_split_every_cell_by_period(panel):
    by_period = churn_cells(panel, by_period=True)
    pooled = churn_cells(panel)
    c = by_period.frame
    assert list(c.columns[:2]) == ["period", "segment"]
    assert c["at_risk"].sum() == len(panel.frame)
    assert (c.groupby("period")["at_risk"].sum() == panel.frame.groupby("t").size()).all()
    # the period is one more key: each pooled cell is the union of its period cells
    pairs = pd.DataFrame({"period_cell": by_period.row_cell, "cell": pooled.row_cell})
    assert pairs.drop_duplicates()["period_cell"].is_unique  # one pooled cell per period cell


def _fake_posterior(segments, draws=40, seed=0, hinge=False):
    rng = np.random.default_rng(seed)
    post = {
        "churn_intercept": rng.normal(-4, 0.2, (1, draws, segments)),
        "churn_slope": rng.normal(-0.5, 0.1, (1, draws, segments)),
        "tenure_slope": rng.normal(-0.1, 0.05, (1, draws)),
    }
    if hinge:
        post["hinge_jump"] = rng.normal(-0.7, 0.1, (1, draws))
        post["hinge_tau"] = rng.uniform(5, 10, (1, draws))
    return az.from_dict(posterior=post).posterior


@pytest.mark.parametrize("hinge", [False, True])
def test_account_log_likelihood_is_the_sum_of_its_rows_bernoullis(panel, hinge):
    f = panel.frame
    cells = churn_cells(panel, "projects_completed", bins=20)
    post = _fake_posterior(len(panel.segments), hinge=hinge)
    acc = pd.factorize(f["account_id"])[0]
    y = f["churned"].to_numpy(float)
    ll = account_log_likelihood(post, cells, acc, y)
    assert ll.shape == (1, 40, acc.max() + 1)
    # direct: every row at its cell's covariates, one draw
    c, d = cells.frame.iloc[cells.row_cell], 7
    seg = c["segment_idx"].to_numpy()
    eta = churn_logit(
        c["x"].to_numpy(),
        c["log_tenure"].to_numpy(),
        post["churn_intercept"].values[0, d][seg],
        post["churn_slope"].values[0, d][seg],
        post["tenure_slope"].values[0, d],
        post["hinge_jump"].values[0, d] if hinge else 0.0,
        post["hinge_tau"].values[0, d] if hinge else None,
    )
    row_ll = y * log_expit(eta) + (1 - y) * log_expit(-eta)
    np.testing.assert_allclose(ll[0, d], np.bincount(acc, row_ll), rtol=1e-10)


def test_hinge_profile_peaks_at_a_planted_threshold(planted_step_cells):
    grid = hinge_grid(planted_step_cells)
    best = grid["profile"].loc[grid["profile"]["log_lik"].idxmax()]
    assert best["tau"] == pytest.approx(6.0, rel=0.15)
    assert best["jump"] < -0.5
    # the chains start at the best threshold's maximum-likelihood jump, inside the kept grid
    assert grid["start"]["hinge_jump"] == pytest.approx(best["jump"])
    assert grid["low"].min() <= best["tau"] <= grid["high"].max()


# --------------------------------------------------------------------------- the step by evidence


def test_the_step_is_on_only_where_the_data_call_for_it(planted_step_cells):
    smooth = generate_world(3000, 40, seed=4, churn_slope=-0.3, hinge_jump=0.0)
    binary = generate_world(1000, 30, seed=2, binary_north_star=True)
    evidence = {
        name: step_evidence(churn_cells(check_frame(w.panel, w.tree), bins=80))
        for name, w in (("smooth", smooth), ("binary", binary))
    }
    evidence["planted"] = step_evidence(planted_step_cells)
    assert evidence["planted"]["on"] and evidence["planted"]["elpd_gain"] > 20
    assert not evidence["smooth"]["on"] and evidence["smooth"]["elpd_gain"] < 4
    # a 0/1 North Star: two levels, no step to look for
    assert evidence["binary"] == {
        "on": False,
        "levels": 2,
        "elpd_gain": None,
        "reason": evidence["binary"]["reason"],
    }
    assert "2 distinct levels" in evidence["binary"]["reason"]


def test_combined_effect_is_the_logit_difference_between_two_levels():
    rng = np.random.default_rng(1)
    slope, jump, tau = rng.normal(-0.5, 0.1, 50), rng.normal(-0.8, 0.2, 50), rng.uniform(4, 9, 50)
    got = combined_effect(slope, jump, tau, 2.0, 20.0)
    at = [churn_logit(np.log1p(v), 1.3, -3.0, slope, -0.2, jump, tau) for v in (2.0, 20.0)]
    np.testing.assert_allclose(got, at[1] - at[0], rtol=1e-12)
    # without a step it is the slope times the distance in log1p units
    np.testing.assert_allclose(
        combined_effect(slope, 0.0, None, 0.0, 1.0), slope * np.log(2.0), rtol=1e-12
    )


@pytest.mark.slow
def test_a_binary_north_star_gets_no_threshold_fit():
    from nsm_sim.leading.hinge import threshold_fit
    from nsm_sim.leading.posterior import RetentionSampler

    world = generate_world(1000, 30, seed=0, binary_north_star=True)
    panel = check_frame(world.panel, world.tree)
    out, fit = threshold_fit(panel, sampling=RetentionSampler(draws=100, tune=100))
    assert not out["tested"] and not out["supported"]
    assert out["tau"] is None and out["combined"] is None
    assert "2 distinct levels" in out["sentence"]
    assert "hinge_jump" not in fit.posterior  # the smooth model, for the trust gates
    assert "churn" in fit.log_likelihood
