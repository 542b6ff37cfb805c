import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit

from nsm_sim.numeric import (
    Z_90,
    Z_99,
    child_seed,
    demean_two_way,
    interval,
    logistic_map,
    name_key,
    stream,
    two_way_effects,
    weighted_quantile,
)


def _unbalanced_panel(rng, accounts=40, periods=12):
    rows = [(a, t) for a in range(accounts) for t in range(periods) if rng.random() < 0.8]
    acc = np.array([r[0] for r in rows])
    per = np.array([r[1] for r in rows])
    return acc, per


def test_two_way_effects_equal_the_dummy_regression():
    rng = np.random.default_rng(0)
    acc, per = _unbalanced_panel(rng)
    z = rng.normal(size=(len(acc), 2)) + acc[:, None] * 0.3 - per[:, None] * 0.1
    a, g, r = two_way_effects(z, acc, per)
    dummies = np.column_stack([np.eye(acc.max() + 1)[acc], np.eye(per.max() + 1)[per][:, 1:]])
    fitted = dummies @ np.linalg.lstsq(dummies, z, rcond=None)[0]
    np.testing.assert_allclose(r, z - fitted, atol=1e-8)
    np.testing.assert_allclose(a + g + r, z, atol=1e-12)
    assert abs(g.mean()) < 1e-12
    np.testing.assert_allclose(demean_two_way(z, acc, per), r)


def test_one_way_demeaning_removes_account_means():
    rng = np.random.default_rng(1)
    acc, _ = _unbalanced_panel(rng)
    z = rng.normal(size=len(acc)) + acc
    r = demean_two_way(z, acc)
    np.testing.assert_allclose(np.bincount(acc, r), 0.0, atol=1e-10)


def test_logistic_map_is_the_maximum_of_the_log_posterior():
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(300), rng.normal(size=(300, 2))])
    y = (rng.random(300) < expit(X @ np.array([-0.5, 1.0, -0.7]))).astype(float)
    prior_sd = np.array([5.0, 1.0, 1.0])

    def neg_log_post(b):
        eta = X @ b
        return -(y @ eta - np.logaddexp(0, eta).sum()) + 0.5 * np.sum((b / prior_sd) ** 2)

    reference = optimize.minimize(neg_log_post, np.zeros(3), method="BFGS", tol=1e-10).x
    beta, cov, loglik = logistic_map(X, y, prior_sd=prior_sd)
    np.testing.assert_allclose(beta, reference, atol=1e-5)
    eta = X @ beta
    assert loglik == pytest.approx(y @ eta - np.logaddexp(0, eta).sum())
    # Laplace covariance: the inverse Hessian of the negative log posterior at the mode
    p = expit(eta)
    hessian = (X * (p * (1 - p))[:, None]).T @ X + np.diag(1 / prior_sd**2)
    np.testing.assert_allclose(cov, np.linalg.inv(hessian), rtol=1e-8)


def test_binomial_cells_give_the_bernoulli_rows_fit():
    rng = np.random.default_rng(3)
    level = rng.integers(0, 5, size=2000)
    X_rows = np.column_stack([np.ones(2000), level])
    y = (rng.random(2000) < expit(-2 + 0.4 * level)).astype(float)
    rows = logistic_map(X_rows, y)
    n = np.bincount(level)
    k = np.bincount(level, weights=y)
    cells = logistic_map(np.column_stack([np.ones(5), np.arange(5)]), k, n)
    np.testing.assert_allclose(rows[0], cells[0], atol=1e-8)
    np.testing.assert_allclose(rows[1], cells[1], rtol=1e-6)


def test_weighted_quantile_with_equal_weights_is_the_hazen_quantile():
    x = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    assert weighted_quantile(x, np.ones(5), 0.5) == pytest.approx(3.0)
    # integer weights are repetitions
    w = np.array([1, 3, 1, 1, 1])
    repeated = np.repeat(x, w)
    assert weighted_quantile(x, w, 0.5) == pytest.approx(np.median(repeated))


def test_interval_and_z_values():
    draws = np.random.default_rng(4).normal(size=200_000)
    summary = interval(draws)
    assert summary["low"] == pytest.approx(-Z_90, abs=0.02)
    assert summary["high"] == pytest.approx(Z_90, abs=0.02)
    assert interval(draws, 0.99)["high"] == pytest.approx(Z_99, abs=0.05)


def test_streams_are_spawned_children():
    children = np.random.SeedSequence(11).spawn(3)
    for i, child in enumerate(children):
        assert stream(11, i).random() == np.random.default_rng(child).random()
    assert stream(11, 0).random() != stream(11, 1).random()
    assert child_seed(11, 0) != child_seed(11, 1)
    assert child_seed(11, 0) == child_seed(11, 0)
    assert name_key("Invite nudges") == name_key("Invite nudges") != name_key("Board templates")
