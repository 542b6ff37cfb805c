"""Simulated initiatives against the counterfactual truth of the synthetic world.

The truth is the same world rerun with the same seed and the lift applied
(:func:`nsm_sim.synth.counterfactual`). With the world's own parameters the simulator must
reproduce it (the propagation is exact up to the population's snapshot of levels); with a
posterior fitted on the world's first periods, its mean must be within 10 % of the truth, its
90 % intervals must cover the truth as often as 90 % intervals do, and its ranking of ten
initiatives must be the truth's. The worlds' seeds were not used while developing.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nsm_sim import synth
from nsm_sim.data import (
    NORTH_STAR_MAX,
    NORTH_STAR_MIN,
    SHARE_PREFIX,
    Population,
    check_frame,
    starting_population,
)
from nsm_sim.models import inference
from nsm_sim.simulate import fixed_posterior, posterior_draws
from nsm_sim.synth import Intervention, counterfactual, generate_world
from nsm_sim.testing import COUNTERFACTUAL_INITIATIVES, counterfactual_comparison

ACCOUNTS, PERIODS, START = 2500, 36, 30
#: Worlds of the fitted checks and of the checks at the true parameters.
FITTED_SEEDS = (83, 97, 113)
TRUE_SEEDS = (61, 71)


def _world(seed, accounts=ACCOUNTS):
    world = {"accounts": accounts, "periods": PERIODS, "seed": seed}
    w = generate_world(**world)
    cut = w.panel[w.panel["period"] < np.sort(w.panel["period"].unique())[START]]
    return world, w, check_frame(cut, w.tree)


def _true_posterior(w, segments):
    churn = w.truth["churn"]
    return fixed_posterior(
        w.tree,
        segments,
        elasticity=w.truth["elasticities"],
        churn_intercept=[churn["intercept"][s] for s in segments],
        churn_slope=churn["slope"],
        tenure_slope=churn["tenure_slope"],
        hinge_jump=churn["hinge_jump"],
        hinge_tau=churn["hinge_tau"],
    )


# --------------------------------------------------------------------------- the truth


def test_counterfactual_changes_nothing_without_a_lift_and_starts_at_the_baseline():
    world = {"accounts": 800, "periods": 20, "seed": 5}
    none = counterfactual(Intervention("boards_shared", 0.0, start=15), **world)
    assert (none["north_star_change"] == 0).all() and (none["retained_change"] == 0).all()
    assert list(none["period"]) == list(range(15, 20)) and list(none["t"]) == list(range(5))
    # in expectation over churn the cohort is whole in the first period: the panel's total
    panel = generate_world(**world).panel
    dates = np.sort(panel["period"].unique())
    before = panel[(panel["period"] == dates[14]) & (panel["churned"] == 0)]["account_id"]
    first = panel[(panel["period"] == dates[15]) & panel["account_id"].isin(before)]
    assert none["north_star_base"].iloc[0] == pytest.approx(first["projects_completed"].sum())
    assert none.attrs["cohort"] == len(before)


def test_counterfactual_is_reproducible_and_keyed_by_the_initiative():
    world = {"accounts": 800, "periods": 20, "seed": 5}
    iv = Intervention("invites_sent", 0.3, start=12, reach=0.5, ramp=2, name="a")
    a, b = counterfactual(iv, **world), counterfactual(iv, **world)
    pd.testing.assert_frame_equal(a, b)
    other = counterfactual(Intervention("invites_sent", 0.3, 12, 0.5, 2, name="b"), **world)
    assert not np.allclose(a["north_star_change"], other["north_star_change"])
    # the ramp: (1 + lift) ** (1/3, 2/3, 1, 1, ...) on the reached accounts
    growth = a["north_star_change"].to_numpy() / a["north_star_base"].to_numpy()
    assert growth[0] < growth[1] < growth[2] and growth[2] > 0


def test_counterfactual_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="hazard"):
        counterfactual(Intervention("a", 0.1, 5), accounts=50, periods=10, churn="inactivity")
    with pytest.raises(ValueError, match="not a node"):
        counterfactual(Intervention("logins", 0.1, 5), accounts=50, periods=10)
    with pytest.raises(ValueError, match="start"):
        counterfactual(Intervention("boards_shared", 0.1, 0), accounts=50, periods=10)


def level_columns_of(population: Population) -> list[str]:
    """The columns of a population that carry the levels within its cells."""
    return [
        c
        for c in population.frame.columns
        if c in (NORTH_STAR_MIN, NORTH_STAR_MAX) or str(c).startswith(SHARE_PREFIX)
    ]


def _read_only_draws(setup):
    """``setup`` of the synthetic world, drawing each world's random numbers once.

    A counterfactual reruns its world on the world's own draws (common random numbers), so
    the ten interventions of one world share them; they are made read-only, so that no
    intervention can change what the next one sees.
    """

    @functools.cache
    def once(*args, **options):
        tree, opt, draws = setup(*args, **options)
        for value in vars(draws).values():
            for array in value.values() if isinstance(value, dict) else [value]:
                if isinstance(array, np.ndarray):
                    array.flags.writeable = False
        return tree, opt, draws

    return once


@pytest.mark.parametrize("seed", TRUE_SEEDS)
def test_at_the_true_parameters_the_simulator_reproduces_the_truth(seed, monkeypatch):
    # both comparisons below set their simulations against the same truths: compute each once,
    # and each world's random numbers once for its ten interventions
    monkeypatch.setattr(synth, "counterfactual", functools.cache(synth.counterfactual))
    module = importlib.import_module("nsm_sim.synth.counterfactual")
    monkeypatch.setattr(module, "setup", _read_only_draws(module.setup))
    world, w, panel = _world(seed, accounts=6000)
    post = _true_posterior(w, panel.segments)
    population = starting_population(panel)
    exact = counterfactual_comparison(world, START, post, population)
    full = exact["reach"] == 1.0
    assert exact.loc[full, "error"].abs().max() < 0.02, exact[["name", "truth", "mean"]]
    # a partial reach's truth is one draw of which accounts are reached (a few per cent);
    # the simulator gives its expectation
    assert exact.loc[~full, "error"].abs().max() < 0.06, exact[["name", "truth", "mean"]]
    # without the levels of the inputs, small inputs are overstated (the old log approximation)
    plain = Population(
        population.segments, population.frame.drop(columns=level_columns_of(population))
    )
    levels_unknown = counterfactual_comparison(world, START, post, plain)
    small = exact["target"].eq("integrations_connected")
    assert (levels_unknown.loc[small, "error"] > 0.2).all()


# --------------------------------------------------------------------------- fitted


@pytest.fixture(scope="module", params=FITTED_SEEDS)
def fitted_comparison(request):
    """One fit per world on its first 30 weeks (small, as the fits of the test suite)."""
    world, w, panel = _world(request.param)
    fit = inference.fit(panel, draws=250, tune=250, chains=2, seed=1)
    post = posterior_draws(fit.idata, w.tree)
    return counterfactual_comparison(world, START, post, starting_population(panel))


@pytest.fixture(scope="module")
def all_comparisons():
    return []


@pytest.mark.slow
def test_fitted_simulation_matches_the_counterfactual_truth(fitted_comparison, all_comparisons):
    table = fitted_comparison
    all_comparisons.append(table)
    assert len(table) == len(COUNTERFACTUAL_INITIATIVES) == 10
    assert table["error"].abs().max() < 0.10, table[["name", "truth", "mean", "error"]]
    # the ranking of the ten initiatives is the truth's
    assert stats.spearmanr(table["mean"], table["truth"]).statistic >= 0.9


@pytest.mark.slow
def test_fitted_intervals_cover_the_truth_as_90_percent_intervals_do(all_comparisons):
    # the intervals carry the posterior and which accounts a partial reach hits (drawn per
    # simulation from each cell's accounts); without the reach's draw they covered 21 of 30
    if len(all_comparisons) < len(FITTED_SEEDS):
        pytest.skip("needs the comparisons of every world (run the whole file)")
    table = pd.concat(all_comparisons, ignore_index=True)
    covered = int(((table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])).sum())
    # 30 intervals that each cover with probability 0.9 cover 23 or more of them with
    # probability 0.992 (binomial(30, 0.9): P(X <= 22) = 0.0078), so this fails by chance
    # about once in 130 worlds; intervals that covered 80 % would pass only 76 % of the time
    assert covered >= 23, table[["name", "truth", "q05", "q95"]]
    # the partial reaches, whose truth is one draw of the accounts reached, are covered as
    # often as the rest: 12 intervals at 90 % cover 9 or more with probability 0.97
    partial = table[table["reach"] < 1.0]
    within = (partial["q05"] <= partial["truth"]) & (partial["truth"] <= partial["q95"])
    assert int(within.sum()) >= 9, partial[["name", "truth", "q05", "q95"]]
