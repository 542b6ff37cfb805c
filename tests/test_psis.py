"""The vectorised PSIS-LOO against ArviZ's own, on the same log-likelihood."""

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from nsm_sim.leading.psis import loo, psis_log_weights


def _fit(seed=0, chains=2, draws=300, accounts=400):
    """A Bernoulli model's posterior draws and per-account log-likelihood.

    Some accounts are outliers (their rows disagree with the rest), so that Pareto k spreads
    from below 0 to above 0.7; one account has no rows (all its log-likelihoods are 0, every
    ratio tied); one has a tail too short to smooth.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(-1.0, 0.15, size=(chains, draws))
    beta = rng.normal(0.8, 0.1, size=(chains, draws))
    rows = rng.integers(1, 30, size=accounts)
    x = rng.normal(size=accounts) * 2
    x[:5] *= 6  # influential accounts
    eta = theta[..., None] + beta[..., None] * x
    k = rng.binomial(rows, 1 / (1 + np.exp(-(-1.0 + 0.8 * x))))
    k[:5] = rows[:5] - k[:5]  # their outcomes reversed
    log_lik = k * eta - rows * np.logaddexp(0.0, eta)
    log_lik[..., 7] = 0.0
    post = xr.Dataset({"theta": (("chain", "draw"), theta), "beta": (("chain", "draw"), beta)})
    coords = {"account": [f"a{i}" for i in range(accounts)]}
    ll = xr.Dataset({"churn": (("chain", "draw", "account"), log_lik)}, coords=coords)
    return az.InferenceData(posterior=post, log_likelihood=ll)


def _with_warnings(compute, idata):
    """``compute(idata)`` and the messages of every warning it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compute(idata)
    return result, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def loos():
    """Per seed of :func:`_fit`: ArviZ's LOO and ours, each with the warnings it raised."""
    fits = {seed: _fit(seed) for seed in (0, 1)}
    return {
        seed: {
            "theirs": _with_warnings(lambda i: az.loo(i, pointwise=True), idata),
            "ours": _with_warnings(loo, idata),
        }
        for seed, idata in fits.items()
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_loo_is_arviz_loo(loos, seed):
    (theirs, theirs_w), (ours, ours_w) = loos[seed]["theirs"], loos[seed]["ours"]
    assert np.nanmax(theirs.pareto_k.values) > 0.7  # the smoothing and its warning are tested
    assert np.any(np.isinf(theirs.pareto_k.values))  # and the tied account's fallback
    for key in ("elpd_loo", "se", "p_loo"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-10, abs=1e-10)
    for key in ("n_samples", "n_data_points", "warning", "scale", "good_k"):
        assert ours[key] == theirs[key]
    np.testing.assert_allclose(ours.loo_i.values, theirs.loo_i.values, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.pareto_k.values, theirs.pareto_k.values, rtol=1e-10)
    assert list(ours.loo_i["account"].values) == list(theirs.loo_i["account"].values)
    assert ours_w == theirs_w


def test_compare_takes_it(loos):
    names = {"a": 0, "b": 1}
    theirs = az.compare({k: loos[seed]["theirs"][0] for k, seed in names.items()}, ic="loo")
    ours = az.compare({k: loos[seed]["ours"][0] for k, seed in names.items()}, ic="loo")
    np.testing.assert_allclose(ours["elpd_diff"], theirs["elpd_diff"], rtol=1e-9)
    np.testing.assert_allclose(ours["dse"], theirs["dse"], rtol=1e-9)


def test_only_the_tail_is_smoothed_and_weights_sum_to_one():
    rng = np.random.default_rng(3)
    samples, reff = 800, 0.8
    ratios = 0.5 * rng.standard_t(3, size=(50, samples))
    log_w, k = psis_log_weights(ratios, reff=reff)
    np.testing.assert_allclose(np.exp(log_w).sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(k))
    tail = int(np.ceil(min(samples / 5, 3 * (samples / reff) ** 0.5)))
    order = np.argsort(ratios, axis=1)
    body, top = order[:, : samples - tail], order[:, samples - tail :]
    shift = np.take_along_axis(log_w - ratios, body, axis=1)
    np.testing.assert_allclose(shift, shift[:, :1] * np.ones_like(shift), atol=1e-10)
    # the smoothed tail keeps its order and changes the raw tail's values
    smoothed = np.take_along_axis(log_w, top, axis=1)
    assert np.all(np.diff(smoothed, axis=1) >= -1e-12)
    assert not np.allclose(smoothed - shift[:, :1], np.take_along_axis(ratios, top, axis=1))
