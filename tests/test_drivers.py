from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from fixtures_models import compile_at
from scipy import stats as sps

from nsm_sim.data import check_frame, demean_two_way, driver_stats
from nsm_sim.models import inference
from nsm_sim.models.drivers import (
    build_driver_model,
    draw_elasticities,
    edge_priors,
    reduce_stats,
)
from nsm_sim.models.elasticities import elasticity_conditionals
from nsm_sim.spec import MetricTree, edge_label
from nsm_sim.synth import generate_world


@pytest.fixture(scope="module")
def small():
    world = generate_world(accounts=120, periods=8, seed=5)
    return check_frame(world.panel, world.tree, source="small world")


def _rows(panel, parent, within):
    """y and X per segment, residualised on account and period effects when within."""
    f = panel.frame
    kids = list(panel.tree.children[parent])
    out = {}
    for s in panel.segments:
        sub = f[f["segment"] == s]
        Z = np.column_stack(
            [np.log1p(sub[parent].to_numpy(float)), np.log1p(sub[kids].to_numpy(float))]
        )
        if within:
            a = sub["account_id"].factorize()[0]
            p = sub["t"].factorize()[0]
            Z = demean_two_way(Z, a, p, tol=1e-13)
        out[s] = (Z[:, 0], Z[:, 1:])
    return out


def _point(model, rng, start=None):
    """A fixed point on the unconstrained scale, away from the initial point (``start``)."""
    point = model.initial_point() if start is None else start
    return {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in point.items()}


def _terms(model, tree):
    """Each parent's likelihood term (the potentials ``driver_loglik_<parent>``), per segment."""
    return model.logp(
        vars=[model[f"driver_loglik_{parent}"] for parent in tree.children],
        jacobian=False,
        sum=False,
    )


@pytest.fixture(scope="module")
def calibrated_marginal(small):
    """The marginal model of the tree with EXPERIMENTS, built and compiled once.

    ``at(point)`` gives, from one compiled function, the log density and its gradient (both
    without the Jacobian) and then each parent's term (:func:`_terms`).
    """
    tree = calibrated(small.tree)
    stats = {p: driver_stats(small, p) for p in tree.children}
    model = build_driver_model(stats, tree, marginal=True)
    outs = [model.logp(jacobian=False), model.dlogp(jacobian=False), *_terms(model, tree)]
    return SimpleNamespace(
        tree=tree, stats=stats, model=model, start=model.initial_point(), at=compile_at(model, outs)
    )


@pytest.fixture(scope="module")
def explicit_terms(small):
    """Each parent's term of the model with explicit elasticities, at a point (compiled once).

    Its likelihood does not involve the priors, so the experiments do not change it.
    """
    tree = small.tree
    stats = {p: driver_stats(small, p) for p in tree.children}
    model = build_driver_model(stats, tree, marginal=False)
    return compile_at(model, _terms(model, tree))


@pytest.mark.parametrize("within", [True, False])
def test_sufficient_statistics_give_the_per_row_gaussian_log_density(small, within):
    """model.compile_logp of the potentials equals scipy's per-row normal log density."""
    tree = small.tree
    stats = {p: driver_stats(small, p, within=within) for p in tree.children}
    model = build_driver_model(stats, tree, marginal=False, cluster_robust=False)
    point = _point(model, np.random.default_rng(0))
    sigma = np.exp(point["driver_sigma_log__"])
    b = (
        point["elasticity_mu"][:, None]
        + np.exp(point["elasticity_tau_log__"])[:, None] * point["elasticity_z"]
    )
    edges = [edge_label(p, c) for p, c in tree.edges]
    potentials = [model[f"driver_loglik_{parent}"] for parent in tree.children]
    logps = model.compile_logp(vars=potentials, jacobian=False, sum=False)(point)
    for j, parent in enumerate(tree.children):
        got = np.sum(logps[j])
        rows = _rows(small, parent, within)
        st = stats[parent]
        expected = 0.0
        for s_idx, s in enumerate(small.segments):
            y, X = rows[s]
            bs = np.array([b[edges.index(edge_label(parent, c)), s_idx] for c in st.children])
            mean = X @ bs
            if not within:
                a_c = point["driver_intercept"][j, s_idx]
                mean = mean + a_c - bs @ X.mean(axis=0)
            expected += sps.norm.logpdf(y, mean, sigma[j, s_idx]).sum()
            if within:  # the fixed effects took n_absorbed degrees of freedom
                expected += 0.5 * st.n_absorbed[s_idx] * np.log(2 * np.pi * sigma[j, s_idx] ** 2)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)


EXPERIMENTS = [
    {
        "name": "Seat invite test",
        "input": "active_seats",
        "input_lift": "8%",
        "parent_lift": {"low": "3%", "high": "6%"},
    },
    {
        "name": "Invite reminder",
        "input": "invites_sent",
        "input_lift": "20%",
        "parent_lift": {"low": "4%", "high": "9%"},
    },
    {
        "name": "Invite reminder, again",
        "input": "invites_sent",
        "input_lift": "-10%",
        "parent_lift": {"low": "-6%", "high": "-1%"},
    },
]


def calibrated(tree, experiments=EXPERIMENTS):
    return MetricTree.model_validate({**tree.model_dump(), "experiments": experiments})


@pytest.mark.parametrize("with_experiments", [False, True])
def test_integrated_likelihood_is_the_exact_marginal(
    small, calibrated_marginal, explicit_terms, with_experiments
):
    """log p(data | tau, sigma) = log L(b) + log p(b | mu) + log p(mu) - log p(mu, b | data)."""
    rng = np.random.default_rng(1)
    # one compiled function per model, giving each parent's term
    if with_experiments:
        tree, stats = calibrated_marginal.tree, calibrated_marginal.stats
        point = _point(calibrated_marginal.model, rng, calibrated_marginal.start)
        marginal_logp = calibrated_marginal.at(point)[2:]
    else:
        tree = small.tree
        stats = {p: driver_stats(small, p) for p in tree.children}
        marginal = build_driver_model(stats, tree, marginal=True)
        point = _point(marginal, rng)
        marginal_logp = compile_at(marginal, _terms(marginal, tree))(point)
    prior = edge_priors(tree)
    tau = np.exp(point["elasticity_tau_log__"])
    sigma = np.exp(point["driver_sigma_log__"])
    explicit_logp = explicit_terms
    start = 0
    for j, parent in enumerate(tree.children):
        r = reduce_stats(stats[parent])
        S, K = r["bhat"].shape
        t = tau[start : start + K]
        mu = rng.normal(0.3, 0.1, K)
        b = mu + rng.normal(0.0, 0.05, (S, K))
        # the explicit model's likelihood at (b, sigma): z = (b - mu) / tau
        z = np.zeros((len(tree.edges), S))
        z[start : start + K] = ((b - mu) / t).T
        mu_all = np.zeros(len(tree.edges))
        mu_all[start : start + K] = mu
        pt_explicit = {
            "elasticity_mu": mu_all,
            "elasticity_tau_log__": point["elasticity_tau_log__"],
            "elasticity_z": z,
            "driver_sigma_log__": point["driver_sigma_log__"],
        }
        loglik_b = np.sum(explicit_logp(pt_explicit)[j])
        edges = slice(start, start + K)
        # the data see the level mu + bias: Normal(mean, var + bias_var)
        m0, v0 = prior["mean"][edges], prior["var"][edges] + prior["bias_var"][edges]
        log_prior = sps.norm.logpdf(b, mu, t).sum() + sps.norm.logpdf(mu, m0, np.sqrt(v0)).sum()
        cond = elasticity_conditionals(r, t[None], sigma[j][None], mu[None], m0, v0)
        log_post = sps.multivariate_normal(cond["mu_mean"][0], cond["mu_cov"][0]).logpdf(mu)
        for s in range(S):
            log_post += sps.multivariate_normal(cond["b_mean"][0, s], cond["b_cov"][0, s]).logpdf(
                b[s]
            )
        got = np.sum(marginal_logp[j])
        assert got == pytest.approx(loglik_b + log_prior - log_post, rel=1e-8, abs=1e-6)
        start += K


def test_integrated_likelihood_gradient_matches_finite_differences(calibrated_marginal):
    """The model's gradient (the Op's analytic one) against central differences."""
    model = calibrated_marginal.model

    def logp(point):
        return calibrated_marginal.at(point)[0]

    point = _point(model, np.random.default_rng(2), calibrated_marginal.start)
    grad = calibrated_marginal.at(point)[1]
    names = [v.name for v in model.value_vars]
    sizes = [point[n].size for n in names]
    numeric, h = [], 1e-6
    for n in names:
        for i in range(point[n].size):
            up, down = dict(point), dict(point)
            up[n] = point[n].copy().ravel()
            down[n] = point[n].copy().ravel()
            up[n][i] += h
            down[n][i] -= h
            up[n], down[n] = up[n].reshape(point[n].shape), down[n].reshape(point[n].shape)
            numeric.append((logp(up) - logp(down)) / (2 * h))
    assert len(numeric) == sum(sizes) == grad.size
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_experiments_update_the_population_elasticity_as_evidence():
    """Each experiment is a Normal measurement of mu: its estimate and standard error."""
    tree = calibrated(generate_world(accounts=60, periods=8, seed=1).tree)
    prior = edge_priors(tree)
    labels = [edge_label(p, c) for p, c in tree.edges]
    z = sps.norm.ppf(0.95)

    def evidence(x, low, high):  # the measured elasticity and its standard error
        lo, hi = np.log1p(low), np.log1p(high)
        return (lo + hi) / 2 / np.log1p(x), (hi - lo) / (2 * z) / abs(np.log1p(x))

    # one experiment: Normal(0, 1) prior times Normal(e | mu, se)
    e, se = evidence(0.08, 0.03, 0.06)
    k = labels.index("projects_completed<-active_seats")
    assert prior["var"][k] == pytest.approx(1 / (1 + se**-2))
    assert prior["mean"][k] == pytest.approx(prior["var"][k] * e / se**2)
    assert prior["experiments"][k] == ("Seat invite test",)
    # two experiments on one edge: precisions add (one raised the input, one lowered it)
    (e1, s1), (e2, s2) = evidence(0.2, 0.04, 0.09), evidence(-0.1, -0.06, -0.01)
    k = labels.index("active_seats<-invites_sent")
    assert 1 / prior["var"][k] == pytest.approx(1 + s1**-2 + s2**-2)
    assert prior["mean"][k] == pytest.approx(prior["var"][k] * (e1 / s1**2 + e2 / s2**2))
    # edges without an experiment keep the weakly informative prior
    for k, label in enumerate(labels):
        if label.startswith("projects_completed<-") and "active_seats" not in label:
            assert (prior["mean"][k], prior["var"][k], prior["experiments"][k]) == (0.0, 1.0, ())
    # a calibrated edge's observational level carries a bias of prior sd 0.5, the others none
    assert list(prior["bias_var"]) == [0.25 if names else 0.0 for names in prior["experiments"]]


def test_a_precise_experiment_sets_the_level_and_keeps_the_segments_differences(small):
    tree = small.tree
    stats = {p: driver_stats(small, p) for p in tree.children}
    draws, S, E = 4000, len(small.segments), len(tree.edges)
    post = xr.Dataset(
        {
            "elasticity_tau": (("chain", "draw", "edge"), np.full((1, draws, E), 0.05)),
            "driver_sigma": (
                ("chain", "draw", "parent", "segment"),
                np.full((1, draws, len(tree.children), S), 0.2),
            ),
        },
        coords={"chain": [0], "draw": np.arange(draws)},
    )
    precise = {**EXPERIMENTS[1], "parent_lift": {"low": "1%", "high": "1.01%"}}
    measured = np.log1p(0.01005) / np.log1p(0.2)  # about 0.055; the data say about 0.35
    plain = draw_elasticities(stats, tree, post, seed=3)
    cal = draw_elasticities(stats, calibrated(tree, [precise]), post, seed=3)
    edge = "active_seats<-invites_sent"
    mu_plain = plain["elasticity_mu"].sel(edge=edge).values.ravel()
    mu_cal = cal["elasticity_mu"].sel(edge=edge).values.ravel()
    assert abs(mu_plain.mean() - measured) > 0.2
    assert mu_cal.mean() == pytest.approx(measured, abs=2e-3)
    assert mu_cal.std() < 0.1 * mu_plain.std()
    # every segment moves by the same bias: the data keep the differences between segments
    b_plain = plain["elasticity"].sel(edge=edge).mean(("chain", "draw")).values
    b_cal = cal["elasticity"].sel(edge=edge).mean(("chain", "draw")).values
    shift = b_cal - b_plain
    assert shift == pytest.approx(np.full(S, measured - mu_plain.mean()), abs=0.01)
    # the uncalibrated edges keep their distribution (within Monte Carlo error)
    for other in plain["edge"].values:
        if other != edge:
            a = plain["elasticity"].sel(edge=other).values
            b = cal["elasticity"].sel(edge=other).values
            assert np.abs(a.mean() - b.mean()) < 4 * a.std() / np.sqrt(draws) + 1e-3


def test_drawn_elasticities_follow_the_ols_estimates(small):
    """With tiny residual noise the conditional draws sit on the per-segment OLS estimates."""
    import xarray as xr

    tree = small.tree
    stats = {p: driver_stats(small, p) for p in tree.children}
    posterior = xr.Dataset(
        {
            "elasticity_tau": (("chain", "draw", "edge"), np.full((1, 50, len(tree.edges)), 0.5)),
            "driver_sigma": (("chain", "draw", "parent", "segment"), np.full((1, 50, 2, 3), 1e-4)),
        },
        coords={
            "chain": [0],
            "draw": np.arange(50),
            "edge": [edge_label(p, c) for p, c in tree.edges],
            "parent": list(tree.children),
            "segment": list(small.segments),
        },
    )
    drawn = draw_elasticities(stats, tree, posterior, seed=0)
    assert drawn["elasticity"].dims == ("chain", "draw", "edge", "segment")
    # the population row: the segments' elasticities averaged with their shares of rows
    rows = stats[tree.north_star].n
    np.testing.assert_allclose(
        drawn["elasticity_population"].values, drawn["elasticity"].values @ (rows / rows.sum())
    )
    b = drawn["elasticity"].mean(("chain", "draw"))
    for parent in tree.children:
        r = reduce_stats(stats[parent])
        for k, child in enumerate(tree.children[parent]):
            np.testing.assert_allclose(
                b.sel(edge=edge_label(parent, child)).values, r["bhat"][:, k], atol=1e-3
            )


def test_population_elasticities_recover_truth(fitted, world):
    """The population row is the rows' average of the segments' draws, near the truth.

    One world's 90 % intervals are not asked to hold the truth here (their coverage over many
    worlds is ``benchmarks/recovery.py``'s): pooled over segments they are narrow, and on this
    world projects_completed<-active_seats is 0.608 [0.604, 0.613] against a truth of 0.6.
    """
    drivers = inference.summarise(fitted)["drivers"]
    pop = drivers[drivers["segment"].isna()]
    assert len(pop) == len(world.tree.edges)
    post = fitted.idata.posterior["elasticity_population"]
    for row in pop.itertuples():
        label = edge_label(row.parent, row.child)
        truth = world.truth["elasticities"][label]
        draws = post.sel(edge=label).values.ravel()
        assert row.mean == pytest.approx(draws.mean())
        assert row.low < row.mean < row.high
        assert abs(row.mean - truth) < 0.02, (label, row.low, truth, row.high)


def test_pooled_estimates_show_the_size_bias_that_within_avoids(panel, world, fitted):
    """Account size drives parents and children: pooled elasticities are biased upward."""
    tree = panel.tree
    stats = {p: driver_stats(panel, p, within=False) for p in tree.children}
    model = build_driver_model(stats, tree)
    idata = inference.sample(model, draws=200, tune=200, chains=2, seed=3)
    pooled = draw_elasticities(stats, tree, idata.posterior, seed=3)["elasticity_mu"]
    within = fitted.idata.posterior["elasticity_mu"]
    for p, c in tree.edges:
        e = edge_label(p, c)
        truth = world.truth["elasticities"][e]
        assert float(pooled.sel(edge=e).mean()) > truth + 0.05, e
        assert abs(float(within.sel(edge=e).mean()) - truth) < 0.03, e
