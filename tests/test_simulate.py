"""The Monte Carlo simulator: lifts, exactness against direct computation, invariants."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special, stats
from scipy.special import expit

from nsm_sim.data import Population, check_frame, starting_population
from nsm_sim.errors import BundleError, DataError, SpecError
from nsm_sim.models.retention import churn_logit
from nsm_sim.simulate import (
    MIN_LIFT,
    fixed_posterior,
    pert_parameters,
    posterior_draws,
    sample_lift,
    share_column,
    simulate,
    simulate_sets,
)
from nsm_sim.simulate.plan import make_plan
from nsm_sim.spec import (
    BetaLift,
    Experiment,
    ExperimentLift,
    FixedLift,
    IntervalLift,
    LogNormalLift,
    NormalLift,
    PertLift,
    UniformLift,
    edge_label,
)
from nsm_sim.testing import (
    DEMO_SEGMENTS,
    SEGMENTS,
    demo_tree,
    flat_tree,
    initiative,
    random_posterior,
    scenario,
    small_population,
    small_tree,
)

TREE = small_tree()  # nsm <- a <- (a1, a2); nsm <- b
FLAT = flat_tree()  # nsm <- a


def direct_projection(pop, post, change, horizon, d=0, reach=None):
    """Project cell by cell and period by period with plain Python (the reference).

    ``change(t, s, row)`` is the change of ``log1p(North Star)`` of a cell (``row``) of
    segment index ``s`` in period ``t``: its North Star moves from ``N`` to
    ``(1 + N) exp(change) - 1``. ``reach(s, row)`` is the share of the cell's accounts it
    reaches (the others keep their baseline).
    """
    totals = np.zeros(3)
    for row in pop.frame.itertuples():
        s = post.segments.index(row.segment)
        share = 1.0 if reach is None else reach(s, row)
        for weight, moved in ((share, True), (1.0 - share, False)):
            alive = row.accounts * weight
            for t in range(horizon):
                dx = change(t, s, row) if moved else 0.0
                x = math.log1p(row.north_star) + dx
                logit = churn_logit(
                    x,
                    math.log1p(row.tenure + 1 + t),
                    post.churn_intercept[d, s],
                    post.churn_slope[d, s],
                    post.tenure_slope[d],
                    0.0 if post.hinge_jump is None else post.hinge_jump[d],
                    None if post.hinge_tau is None else post.hinge_tau[d],
                )
                totals[2] += alive * row.value
                if t == horizon - 1:
                    totals[0] += alive * math.expm1(x)
                alive *= 1.0 - float(expit(logit))
            totals[1] += alive
    return totals


def no_change(t, s, row):
    return 0.0


def reached_by_row(scen, post, pop, simulations, seed, i=0):
    """The share of each population row's accounts initiative ``i`` reaches, (N, rows)."""
    plan = make_plan(scen, post, pop, {"all": []}, simulations, seed)
    shares = plan.reached(i, np.arange(simulations), slice(None))
    shares = np.broadcast_to(shares, (simulations, plan.cells.seg.size))
    accounts = pop.frame["accounts"].to_numpy()
    seg = pop.frame["segment_idx"].to_numpy()
    keep = np.flatnonzero(accounts > 0)
    order = keep[np.argsort(seg[keep], kind="stable")]  # the plan's cells, as rows
    out = np.zeros((simulations, len(pop.frame)))
    out[:, order] = shares
    return out


def changes(outcomes, k=None):
    pick = (lambda a: a) if k is None else (lambda a: a[k])
    return np.array(
        [
            pick(outcomes.north_star_change),
            pick(outcomes.retained_accounts),
            pick(outcomes.value),
        ]
    )


# --------------------------------------------------------------------------- lifts


def test_interval_lift_lognormal_has_its_5_and_95_percent_quantiles():
    x = sample_lift(IntervalLift(low=0.02, high=0.10), 400_000, np.random.default_rng(1))
    q5, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    assert q5 == pytest.approx(0.02, rel=0.01)
    assert q95 == pytest.approx(0.10, rel=0.01)
    assert q50 == pytest.approx(math.sqrt(0.02 * 0.10), rel=0.01)  # log-normal: geometric mean
    assert x.min() > 0


def test_interval_lift_with_a_non_positive_end_is_normal():
    x = sample_lift(IntervalLift(low=-0.04, high=0.08), 400_000, np.random.default_rng(2))
    q5, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    assert (q5, q50, q95) == pytest.approx((-0.04, 0.02, 0.08), abs=0.001)
    assert stats.skew(x) == pytest.approx(0.0, abs=0.02)


def test_degenerate_interval_is_fixed():
    x = sample_lift(IntervalLift(low=0.05, high=0.05), 10, np.random.default_rng(0))
    assert np.all(x == 0.05)


def test_explicit_distributions_have_their_moments():
    rng = np.random.default_rng(3)
    n = 400_000
    normal = sample_lift(NormalLift(distribution="normal", mean=0.03, sd=0.02), n, rng)
    assert (normal.mean(), normal.std()) == pytest.approx((0.03, 0.02), abs=2e-4)
    lognormal = sample_lift(LogNormalLift(distribution="lognormal", median=0.05, sigma=0.4), n, rng)
    assert np.median(lognormal) == pytest.approx(0.05, rel=0.01)
    assert np.std(np.log(lognormal)) == pytest.approx(0.4, rel=0.01)
    beta = sample_lift(BetaLift(distribution="beta", alpha=2, beta=5, scale=0.2), n, rng)
    assert beta.mean() == pytest.approx(0.2 * 2 / 7, rel=0.01)
    assert beta.max() <= 0.2
    uniform = sample_lift(UniformLift(distribution="uniform", low=-0.02, high=0.08), n, rng)
    assert (uniform.min(), uniform.max(), uniform.mean()) == pytest.approx(
        (-0.02, 0.08, 0.03), abs=5e-4
    )
    pert = sample_lift(PertLift(distribution="pert", low=0.0, mode=0.06, high=0.15), n, rng)
    assert pert.mean() == pytest.approx((0.0 + 4 * 0.06 + 0.15) / 6, rel=0.01)  # PERT mean
    a, b = pert_parameters(0.0, 0.06, 0.15)
    assert np.median(pert) == pytest.approx(0.15 * stats.beta(a, b).median(), rel=0.01)
    assert np.all(sample_lift(FixedLift(value=0.07), 5, rng) == 0.07)


def test_lifts_below_minus_100_percent_are_clipped():
    x = sample_lift(
        NormalLift(distribution="normal", mean=-0.5, sd=1.0), 10_000, np.random.default_rng(4)
    )
    assert x.min() == MIN_LIFT
    assert np.mean(x == MIN_LIFT) == pytest.approx(stats.norm.cdf(-0.49), abs=0.02)


def ratio_cdf(q, control, treatment):
    """P(p_t / p_c - 1 <= q) for independent Betas, by numerical integration.

    The integrand (control's density times treatment's distribution function) calls
    ``scipy.special`` directly: a frozen ``scipy.stats`` distribution costs about 50 us a call
    in argument checks, and the root finding below integrates some 60 times.
    """
    (a_c, b_c), (a_t, b_t) = control, treatment
    lo, hi = special.betaincinv(a_c, b_c, [1e-12, 1 - 1e-12])
    log_beta = special.betaln(a_c, b_c)

    def integrand(p):
        density = math.exp((a_c - 1) * math.log(p) + (b_c - 1) * math.log1p(-p) - log_beta)
        return density * special.betainc(a_t, b_t, min((1 + q) * p, 1.0))

    val, _ = integrate.quad(integrand, lo, hi, limit=200)
    return val


def test_ab_lift_posterior_matches_the_beta_binomial_answer():
    lift = ExperimentLift(
        experiment=Experiment(
            control={"n": 5000, "conversions": 400}, treatment={"n": 5000, "conversions": 452}
        )
    )
    control, treatment = (401.0, 4601.0), (453.0, 4549.0)  # Beta(1, 1) priors
    n = 200_000
    x = sample_lift(lift, n, np.random.default_rng(5))
    # exact mean: E[p_t] E[1 / p_c] - 1, with E[1 / p_c] = (a + b - 1) / (a - 1)
    exact_mean = treatment[0] / sum(treatment) * (sum(control) - 1) / (control[0] - 1) - 1
    assert x.mean() == pytest.approx(exact_mean, abs=4 * x.std() / math.sqrt(n))
    for p in (0.05, 0.5, 0.95):
        exact = optimize.brentq(lambda q, p=p: ratio_cdf(q, control, treatment) - p, -0.5, 1.0)
        # Monte Carlo standard error of a quantile: sqrt(p (1 - p) / n) / density
        h = 1e-4
        density = (
            ratio_cdf(exact + h, control, treatment) - ratio_cdf(exact - h, control, treatment)
        ) / (2 * h)
        se = math.sqrt(p * (1 - p) / n) / density
        assert np.quantile(x, p) == pytest.approx(exact, abs=5 * se)


# --------------------------------------------------------------------------- exactness


def test_confidence_zero_or_zero_lift_gives_exactly_zero_change():
    post = random_posterior()
    scen = scenario(
        [
            initiative("never", lift={"low": 0.05, "high": 0.2}, confidence=0.0),
            initiative("flat", target="a1", lift=0.0),
            initiative(
                "tiny", target="a2", lift=1e-300, segments=["free"]
            ),  # underflows to no effect
            initiative("nowhere", target="b", lift=0.1, segments=["team"], reach=None, start=20),
        ]
    )
    res = simulate(scen, post, small_population(), simulations=200, seed=1)
    for q in ("north_star_change", "north_star_change_pct", "retained_accounts", "value"):
        assert np.all(res.initiatives.get(q) == 0.0)
        assert np.all(res.portfolio.get(q) == 0.0)


def test_one_level_tree_matches_the_analytic_projection():
    post = fixed_posterior(
        FLAT,
        SEGMENTS,
        elasticity=[[0.6, 0.9]],
        churn_intercept=[-2.0, -2.5],
        churn_slope=[-0.4, -0.7],
        tenure_slope=-0.3,
        hinge_jump=-0.8,
        hinge_tau=3.0,
    )
    pop = small_population()
    scen = scenario([initiative(target="a", lift=0.2, start=2, ramp=3)], tree=FLAT, horizon=10)
    res = simulate(scen, post, pop, simulations=5, seed=0)

    def change(t, s, row):  # no level given for `a`: its share is 1
        share = min(max((t - 2 + 1) / 4, 0.0), 1.0)
        return post.elasticity[0, 0, s] * math.log(1.2) * share

    expected = direct_projection(pop, post, change, 10) - direct_projection(
        pop, post, no_change, 10
    )
    got = changes(res.initiatives, 0)
    assert np.allclose(got, expected[:, None], rtol=1e-10, atol=0)
    assert res.initiatives.north_star_change.mean() > 0
    # without a churn effect the North Star change is the closed form
    post0 = fixed_posterior(FLAT, SEGMENTS, elasticity=0.5, churn_slope=0.0, tenure_slope=0.0)
    res0 = simulate(
        scenario([initiative(lift=0.21)], tree=FLAT, horizon=4), post0, pop, simulations=3
    )
    survive = (1 - expit(-3.0)) ** 3
    closed = (pop.frame.accounts * (1 + pop.frame.north_star)).sum() * survive * (1.21**0.5 - 1)
    assert res0.portfolio.north_star_change == pytest.approx(np.full(3, closed), rel=1e-12)
    assert res0.portfolio.retained_accounts == pytest.approx(np.zeros(3), abs=1e-9)


def test_random_posterior_draws_match_the_direct_projection():
    post = random_posterior(n_draws=4, seed=3)
    pop = small_population()
    scen = scenario(
        [initiative("x", target="a1", lift=0.15, reach=0.6, start=1, ramp=2)], horizon=8
    )
    res = simulate(scen, post, pop, simulations=4, seed=2)
    reached = reached_by_row(scen, post, pop, 4, 2)
    for k, d in enumerate(res.posterior_index):
        path = post.elasticity[d, 0] * post.elasticity[d, 2]  # nsm<-a, a<-a1, per segment

        def change(t, s, row, path=path):
            share = min(max(t / 3, 0.0), 1.0)
            return path[s] * math.log(1.15) * share

        base = direct_projection(pop, post, no_change, 8, d)
        expected = direct_projection(
            pop, post, change, 8, d, reach=lambda s, row, k=k: reached[k, row.Index]
        )
        expected -= base
        assert np.allclose(changes(res.initiatives, 0)[:, k], expected, rtol=1e-9)
        assert res.baseline["retained_accounts"][k] == pytest.approx(base[1], rel=1e-12)


def test_sub_input_lift_reaches_the_north_star_by_the_product_of_elasticities():
    post = fixed_posterior(
        TREE, SEGMENTS, elasticity={("nsm", "a"): 0.7, ("a", "a1"): 0.4}, churn_slope=-0.5
    )
    lift = 0.3
    on_a = math.exp(0.4 * math.log1p(lift)) - 1  # the same log-change of `a` (levels not given)
    on_nsm = math.exp(0.7 * math.log1p(on_a)) - 1
    scen = scenario(
        [
            initiative("deep", target="a1", lift=lift),
            initiative("direct", target="a", lift=on_a),
        ]
    )
    res = simulate(scen, post, small_population(), simulations=3)
    deep, direct = changes(res.initiatives, 0), changes(res.initiatives, 1)
    assert np.allclose(deep, direct, rtol=1e-12)
    # the North Star per account rises by on_nsm; lower churn adds accounts on top
    pct = res.initiatives.north_star_change_pct[0]
    assert np.all(pct > 100 * on_nsm) and np.all(pct < 100 * on_nsm * 1.2)


def test_larger_lift_gives_larger_change_draw_by_draw():
    post = random_posterior(n_draws=30)
    scen = scenario(
        [
            initiative("small", target="a2", lift=0.05),
            initiative("large", target="a2", lift=0.1),
        ]
    )
    res = simulate(scen, post, small_population(), simulations=300, seed=4)
    for q in ("north_star_change", "retained_accounts", "value"):
        small, large = res.initiatives.get(q)
        assert np.all(small > 0) and np.all(large > small)


@settings(max_examples=20, deadline=None, database=None)
@given(
    lift=st.floats(0.0, 0.5),
    extra=st.floats(0.001, 0.5),
    confidence=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_changes_are_monotone_in_the_lift(lift, extra, confidence, seed):
    # the same initiative (same name: same outcomes) with a larger lift, in the same simulations
    post = random_posterior(n_draws=10, seed=seed % 7)
    pop = small_population()
    lo_res, hi_res = (
        simulate(
            scenario([initiative("x", target="b", lift=val, confidence=confidence)], horizon=6),
            post,
            pop,
            simulations=40,
            seed=seed,
        )
        for val in (lift, lift + extra)
    )
    for q in ("north_star_change", "retained_accounts", "value"):
        lo, hi = lo_res.portfolio.get(q), hi_res.portfolio.get(q)
        assert np.all(lo >= 0) and np.all(hi >= lo)
    # the same outcomes: where the larger lift did nothing (it did not work), neither did the other
    idle = hi_res.portfolio.north_star_change == 0
    assert np.all(lo_res.portfolio.north_star_change[idle] == 0)
    assert idle.mean() <= 1 - confidence + 0.5


def test_reach_and_segments_scale_the_north_star_change():
    post = fixed_posterior(TREE, SEGMENTS, elasticity=1.0, churn_slope=0.0)
    pop = small_population()
    scen = scenario(
        [
            initiative("all", target="nsm", lift=0.1),
            initiative("half", target="nsm", lift=0.1, reach=0.5),
            initiative("team", target="nsm", lift=0.1, segments=["team"]),
        ],
        horizon=5,
    )
    res = simulate(scen, post, pop, simulations=2)
    full, half, team = res.initiatives.north_star_change[:, 0]
    # a partial reach hits a share of each cell drawn per simulation: the cells' changes
    # weighted by it
    cells = [Population(pop.segments, pop.frame.iloc[[k]]) for k in range(len(pop.frame))]
    whole = [
        simulate(scen, post, c, simulations=2).initiatives.north_star_change[0, 0] for c in cells
    ]
    reached = reached_by_row(scen, post, pop, 2, 0, i=1)[0]
    assert 0.3 < reached.min() and reached.max() < 0.7 and np.ptp(reached) > 0
    assert half == pytest.approx(reached @ np.array(whole), rel=1e-12)
    assert full == pytest.approx(sum(whole), rel=1e-12)
    share_team = (pop.frame.query("segment == 'team'").eval("accounts * north_star").sum()) / (
        pop.frame.eval("accounts * north_star").sum()
    )
    assert team == pytest.approx(full * share_team, rel=1e-12)


def test_a_partial_reach_hits_a_binomial_share_of_each_cell():
    pop = small_population()
    post = fixed_posterior(TREE, SEGMENTS, elasticity=1.0, churn_slope=0.0)
    scen = scenario([initiative("p", target="nsm", lift=0.1, reach=0.3)], horizon=3)
    reached = reached_by_row(scen, post, pop, 20_000, 5)
    n = pop.frame["accounts"].to_numpy()
    # mean 0.3 and variance 0.3 * 0.7 / n per cell: each account is reached with
    # probability 0.3 (a few cells of 40 accounts clip at 0 a handful of times in 20,000)
    se_mean = np.sqrt(0.21 / n / 20_000)
    assert np.all(np.abs(reached.mean(axis=0) - 0.3) < 4 * se_mean)
    assert reached.var(axis=0) / (0.21 / n) == pytest.approx(np.ones(len(n)), abs=0.05)
    # independent across cells, and across initiatives (a stream per initiative's name)
    corr = np.corrcoef(reached.T)[np.triu_indices(len(n), 1)]
    assert np.abs(corr).max() < 0.05
    other = scenario([initiative("q", target="nsm", lift=0.1, reach=0.3)], horizon=3)
    assert (
        abs(np.corrcoef(reached[:, 0], reached_by_row(other, post, pop, 20_000, 5)[:, 0])[0, 1])
        < 0.05
    )
    # a full reach, or whole segments, has no spread
    full = scenario([initiative("p", target="nsm", lift=0.1, segments=["team"])], horizon=3)
    assert np.ptp(reached_by_row(full, post, pop, 50, 5), axis=0).max() == 0.0


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0])
def test_joint_lifts_multiply_and_overlap_shrinks_them(overlap):
    post = fixed_posterior(TREE, SEGMENTS, elasticity=1.0, churn_slope=0.0)
    scen = scenario(
        [initiative("p", target="a", lift=0.1), initiative("q", target="a", lift=0.05)],
        overlap=overlap,
    )
    res = simulate(scen, post, small_population(), simulations=2)
    single = res.initiatives.north_star_change_pct[:, 0]
    f = small_population().frame
    n, w = f.north_star.to_numpy(), f.accounts.to_numpy()

    def pct(change):  # the North Star moves from n to (1 + n) exp(change) - 1
        return 100 * (w * (1 + n) * np.expm1(change)).sum() / (w * n).sum()

    assert single == pytest.approx([pct(math.log(1.1)), pct(math.log(1.05))], rel=1e-12)
    joint = math.log(1.1) + (1 - overlap) * math.log(1.05)  # a single lift is never shrunk
    assert res.portfolio.north_star_change_pct[0] == pytest.approx(pct(joint), rel=1e-12)


def test_ramp_shapes_the_trajectory():
    post = fixed_posterior(TREE, SEGMENTS, elasticity=1.0, churn_slope=0.0)
    pop = small_population()
    share = np.clip((np.arange(9) - 2 + 1) / 4, 0, 1)
    res = simulate(
        scenario([initiative(target="nsm", lift=0.2, start=2, ramp=3)], horizon=9),
        post,
        pop,
        simulations=2,
    )
    ratio = res.portfolio_path[0] / res.baseline_path[0]
    assert ratio == pytest.approx(1.2**share, rel=1e-12)
    traj = res.trajectory()
    assert set(traj.series) == {"baseline", "portfolio"}
    assert len(traj) == 18 and {"q05", "q50", "q95", "mean"} <= set(traj.columns)
    # one segment only: the other keeps its baseline path
    free = simulate(
        scenario(
            [initiative(target="nsm", lift=0.2, start=2, ramp=3, segments=["free"])], horizon=9
        ),
        post,
        pop,
        simulations=2,
    )
    survive = (1 - expit(-3.0)) ** np.arange(9)
    cells = pop.frame.query("segment == 'free'")
    free_path = (cells.accounts * cells.north_star).sum() * survive
    gain = free.portfolio_path[0] - free.baseline_path[0]
    assert gain == pytest.approx(free_path * (1.2**share - 1), rel=1e-9, abs=1e-9)
    assert free.portfolio.north_star_change[0] == pytest.approx(gain[-1], rel=1e-12)


def test_same_seed_same_numbers_whatever_the_chunks_and_threads():
    post = random_posterior(n_draws=40)
    scen = scenario(
        [
            initiative("a", target="a1", lift={"low": 0.02, "high": 0.1}, confidence=0.6, ramp=2),
            initiative(
                "b",
                target="b",
                lift={"distribution": "pert", "low": -0.02, "mode": 0.05, "high": 0.1},
                reach=0.7,
                start=3,
            ),
            initiative(
                "c", target="a", lift={"low": -0.05, "high": 0.1}, segments=["team"], confidence=0.9
            ),
        ],
        overlap=0.3,
    )
    pop = small_population()
    runs = [
        simulate(scen, post, pop, simulations=257, seed=11, chunk_size=cs, n_jobs=nj)
        for cs, nj in [(None, 1), (7, 1), (64, 2), (1000, 2)]
    ]
    for other in runs[1:]:
        for q in ("north_star_change", "north_star_change_pct", "retained_accounts", "value"):
            assert np.array_equal(runs[0].initiatives.get(q), other.initiatives.get(q))
            assert np.array_equal(runs[0].portfolio.get(q), other.portfolio.get(q))
        assert np.array_equal(runs[0].portfolio_path, other.portfolio_path)
    different = simulate(scen, post, pop, simulations=257, seed=12)
    assert not np.array_equal(runs[0].portfolio.value, different.portfolio.value)


def test_a_set_of_one_is_the_initiative_alone_and_outcomes_do_not_depend_on_the_others():
    post = random_posterior(n_draws=20)
    a = initiative("a", target="a1", lift={"low": 0.02, "high": 0.1}, confidence=0.5)
    b = initiative("b", target="b", lift={"low": 0.01, "high": 0.2}, confidence=0.5, start=2)
    pop = small_population()
    res = simulate(scenario([a, b]), post, pop, simulations=100, seed=3)
    alone = simulate(scenario([a]), post, pop, simulations=100, seed=3)
    assert np.array_equal(res.initiatives.value[0], alone.portfolio.value)
    sets = simulate_sets(
        scenario([a, b]), post, pop, {"a": ["a"], "ab": ["a", "b"]}, simulations=100, seed=3
    )
    assert np.array_equal(sets["a"].value, res.initiatives.value[0])
    assert np.array_equal(sets["ab"].value, res.portfolio.value)
    assert np.array_equal(res.simulate_set(["b", "a"]).value, res.portfolio.value)
    # a set's North Star path ends at the baseline plus its change, and is the portfolio's
    kept = res.simulate_set(["a", "b"], keep_path=True)
    assert res.simulate_set(["a"]).north_star_path is None
    np.testing.assert_allclose(
        kept.north_star_path[:, -1] - res.baseline["north_star"], kept.north_star_change
    )
    assert np.array_equal(kept.north_star_path, res.portfolio_path)
    only_a = res.simulate_set(["a"], keep_path=True).north_star_path
    traj = res.trajectory(extra={"a only": only_a})
    assert list(dict.fromkeys(traj.series)) == ["baseline", "portfolio", "a only"]
    assert traj.query("series == 'a only'")["mean"].to_numpy() == pytest.approx(only_a.mean(0))


def test_posterior_draws_are_chosen_without_replacement_when_enough():
    post = random_posterior(n_draws=30)
    scen = scenario([initiative()])
    few = simulate(scen, post, small_population(), simulations=30)
    assert sorted(few.posterior_index) == list(range(30))
    many = simulate(scen, post, small_population(), simulations=100)
    assert many.posterior_index.max() < 30


def test_value_is_zero_without_a_value_column():
    res = simulate(
        scenario([initiative()]), random_posterior(), small_population(value=False), simulations=20
    )
    assert not res.has_value
    assert np.all(res.portfolio.value == 0)
    assert np.all(res.portfolio.retained_accounts > 0)


def test_summary_dict_and_progress():
    calls = []
    res = simulate(
        scenario([initiative("a"), initiative("b", target="b", effort=2)]),
        random_posterior(),
        small_population(),
        simulations=50,
        chunk_size=20,
        n_jobs=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(20, 50), (40, 50), (50, 50)]
    table = res.summary()
    assert list(table.name) == ["a", "b", "portfolio"]
    assert table.effort.tolist() == [1.0, 2.0, 3.0]
    assert table.value_per_effort.iloc[1] == pytest.approx(table.value_mean.iloc[1] / 2)
    out = res.to_dict()
    assert [i["name"] for i in out["initiatives"]] == ["a", "b"]
    assert (out["simulations"], out["seed"]) == (50, 0) and "draws" not in out
    for block in (*out["initiatives"], out["portfolio"]):
        for q in ("north_star_change", "north_star_change_pct", "retained_accounts", "value"):
            assert set(block[q]) == {"mean", "median", "p5", "p95", "p_positive"}
    assert out["portfolio"]["value"]["mean"] == pytest.approx(res.portfolio.value.mean())


# --------------------------------------------------------------------------- inputs


def test_posterior_draws_reads_inference_data_in_tree_order():
    tree = demo_tree()
    labels = [edge_label(p, c) for p, c in tree.edges]
    rng = np.random.default_rng(0)
    segs = list(DEMO_SEGMENTS)
    elast = rng.normal(size=(2, 5, len(labels), 3))
    idata = az.from_dict(
        posterior={
            "elasticity": elast[:, :, ::-1],  # stored in reverse edge order
            "churn_intercept": rng.normal(size=(2, 5, 3)),
            "churn_slope": rng.normal(size=(2, 5, 3)),
            "tenure_slope": rng.normal(size=(2, 5)),
            "hinge_jump": rng.normal(size=(2, 5)),
            "hinge_tau": rng.uniform(1, 5, size=(2, 5)),
        },
        coords={"edge": labels[::-1], "segment": segs},
        dims={
            "elasticity": ["edge", "segment"],
            "churn_intercept": ["segment"],
            "churn_slope": ["segment"],
        },
    )
    post = posterior_draws(idata, tree)
    assert post.elasticity.shape == (10, len(labels), 3)
    assert post.segments == tuple(segs)
    assert np.array_equal(post.elasticity, elast.reshape(10, len(labels), 3))
    assert post.hinge_tau.shape == (10,)
    bad = tree.model_copy(update={"inputs": {"active_seats": [], "boards_shared": []}})
    with pytest.raises(BundleError, match="do not match"):
        posterior_draws(idata, bad)


def test_bad_inputs_raise_input_errors():
    post = random_posterior()
    pop = small_population()
    with pytest.raises(DataError, match="north_star"):
        simulate(
            scenario([initiative()]),
            post,
            Population(SEGMENTS, pop.frame.drop(columns="north_star")),
        )
    frame = pop.frame.copy()
    frame.loc[0, "segment"] = "gold"
    with pytest.raises(DataError, match="gold"):
        simulate(scenario([initiative()]), post, Population(SEGMENTS, frame))
    with pytest.raises(SpecError, match=r"initiatives\[0\].segments"):
        simulate(scenario([initiative(segments=["gold"])]), post, pop)
    with pytest.raises(BundleError, match="do not match"):
        simulate(scenario([initiative()], tree=FLAT), post, pop)


# --------------------------------------------------------------------------- levels


def _one_cell(north_star, **columns):
    row = {"segment": "free", "segment_idx": 0, "accounts": 100.0, "north_star": north_star}
    return Population(("free",), pd.DataFrame([{**row, "tenure": 5.0, "value": 1.0, **columns}]))


@pytest.mark.parametrize("level", [0.2, 1.0, 4.0, 50.0])
def test_a_lift_moves_log1p_of_its_target_at_the_level_it_has(level):
    post = fixed_posterior(FLAT, ["free"], elasticity=0.6, churn_slope=0.0, tenure_slope=0.0)
    pop = _one_cell(3.0, **{share_column("a"): level / (1 + level)})
    res = simulate(scenario([initiative(lift=0.2)], tree=FLAT, horizon=3), post, pop, simulations=2)
    d = 0.6 * (math.log1p(level * 1.2) - math.log1p(level))
    survive = (1 - expit(-3.0)) ** 2
    expected = 100.0 * survive * (4.0 * math.expm1(d))  # (1 + N) (exp(d) - 1), N = 3
    assert res.portfolio.north_star_change[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("north_star", [0.3, 1.0, 20.0])
def test_a_lift_on_the_north_star_is_the_lift_at_any_level(north_star):
    post = fixed_posterior(FLAT, ["free"], churn_slope=0.0, tenure_slope=0.0)
    res = simulate(
        scenario([initiative(target="nsm", lift=0.15)], tree=FLAT, horizon=2),
        post,
        _one_cell(north_star),
        simulations=2,
    )
    assert res.portfolio.north_star_change_pct == pytest.approx([15.0, 15.0], rel=1e-12)


def test_the_threshold_acts_on_the_accounts_that_cross_it():
    # one cell spread over [4, 9] against the same accounts as 400 cells of one level each
    post = fixed_posterior(
        FLAT, ["free"], elasticity=1.0, churn_slope=-0.2, hinge_jump=-0.8, hinge_tau=7.0
    )
    lo, hi = math.log1p(4.0), math.log1p(9.0)
    levels = np.expm1(lo + (hi - lo) * (np.arange(400) + 0.5) / 400)
    fine = Population(
        ("free",),
        pd.DataFrame(
            {
                "segment": "free",
                "segment_idx": 0,
                "accounts": 1.0,
                "north_star": levels,
                "tenure": 5.0,
                "value": 1.0,
            }
        ),
    )
    mean = float(np.expm1(np.log1p(levels).mean()))
    spread = _one_cell(mean, north_star_min=4.0, north_star_max=9.0)
    point = _one_cell(mean)
    scen = scenario([initiative(target="nsm", lift=0.1)], tree=FLAT, horizon=20)
    retained = {
        name: simulate(scen, post, pop, simulations=1).portfolio.retained_accounts[0]
        for name, pop in {"fine": fine, "spread": spread, "point": point}.items()
    }
    retained["fine"] *= 100 / 400  # the one cell holds 100 accounts
    assert retained["spread"] == pytest.approx(retained["fine"], rel=0.03)
    # at the cell's mean level every account sits a few step widths below the threshold and
    # moves toward it: the Jensen gap the spread removes
    assert retained["point"] > 1.5 * retained["fine"]


@pytest.mark.parametrize(
    ("jump", "tau", "low", "high"),
    [(6.0, 1.0, 0.0, 1.0), (4.0, 1.0, 0.3, 0.8), (-4.0, 0.5, 0.5, 5.0)],
)
def test_a_large_step_at_a_low_threshold_keeps_every_projection_finite(jump, tau, low, high):
    # the spread's second-order expansion leaves its range here (below 0 for the first): the
    # mean of exp(jump * step) is held between min(1, exp(jump)) and max(1, exp(jump))
    post = fixed_posterior(
        FLAT, ["free"], elasticity=1.0, churn_slope=-0.2, hinge_jump=jump, hinge_tau=tau
    )
    levels = np.expm1(np.linspace(math.log1p(low), math.log1p(high), 401))
    mean = float(np.expm1(np.log1p(levels).mean()))
    spread = _one_cell(mean, north_star_min=low, north_star_max=high)
    scen = scenario([initiative(target="nsm", lift=0.3)], tree=FLAT, horizon=20)
    res = simulate(scen, post, spread, simulations=2)
    for q in ("north_star_change", "retained_accounts", "value"):
        assert np.isfinite(res.portfolio.get(q)).all(), q
    assert np.isfinite(res.baseline_path).all() and (res.baseline_path > 0).all()


def test_the_starting_population_carries_the_levels_of_each_cell(world):
    panel = check_frame(world.panel, world.tree)
    pop = starting_population(panel)
    assert (
        pop.frame["accounts"].sum()
        == ((panel.frame["period"] == panel.periods[-1]) & (panel.frame["churned"] == 0)).sum()
    )
    for node in world.tree.nodes[1:]:
        share = pop.frame[share_column(node)]
        assert ((share > 0) & (share < 1)).all()
    assert (pop.frame["north_star_min"] <= pop.frame["north_star"]).all()
    assert (pop.frame["north_star"] <= pop.frame["north_star_max"]).all()
    # the first cell by hand: shares of active_seats weighted by 1 + North Star
    f = panel.frame
    last = f[(f["period"] == panel.periods[-1]) & (f["churned"] == 0)]
    first = last[last["segment"] == pop.frame["segment"].iloc[0]]
    first = first[first["projects_completed"] <= pop.frame["north_star_max"].iloc[0]]
    x, w = first["active_seats"], 1 + first["projects_completed"]
    assert pop.frame[share_column("active_seats")].iloc[0] == pytest.approx(
        (w * x / (1 + x)).sum() / w.sum()
    )
