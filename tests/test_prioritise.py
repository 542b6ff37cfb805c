"""Ranking, the portfolio integer program against brute force, EVPI, comparisons."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest
from rich.console import Console

from nsm_sim.output.terminal import render_comparison
from nsm_sim.prioritise import (
    NO_VALUE_NOTE,
    best_portfolio,
    compare,
    evpi,
    p_top_k,
    prioritise,
    rank,
    tail_mean,
)
from nsm_sim.simulate import fixed_posterior, simulate
from nsm_sim.testing import (
    SEGMENTS,
    initiative,
    random_portfolio_instance,
    random_posterior,
    scenario,
    small_population,
    small_tree,
)


def feasible_subsets(scen):
    names = [i.name for i in scen.initiatives]
    for bits in itertools.product([0, 1], repeat=len(names)):
        chosen = {n for n, b in zip(names, bits, strict=True) if b}
        effort = sum(i.effort for i in scen.initiatives if i.name in chosen)
        if effort > scen.capacity + 1e-9:
            continue
        ok = all(
            (i.name not in chosen) or (set(i.requires) <= chosen and not (set(i.excludes) & chosen))
            for i in scen.initiatives
        )
        if ok:
            yield np.array(bits, dtype=bool)


# --------------------------------------------------------------------------- portfolio


@pytest.mark.parametrize("risk_aversion", [0.0, 0.4, 1.0])
def test_integer_program_equals_brute_force(risk_aversion):
    rng = np.random.default_rng(int(risk_aversion * 10))
    for _ in range(25):
        n = int(rng.integers(2, 9))
        scen, values = random_portfolio_instance(rng, n)
        alpha = float(rng.choice([0.1, 0.25, 0.33]))
        best = -np.inf
        for mask in feasible_subsets(scen):
            total = values[mask].sum(axis=0)
            obj = total.mean()
            if risk_aversion > 0:
                obj = obj - risk_aversion * (total.mean() - tail_mean(total, alpha))
            best = max(best, obj)
        port = best_portfolio(scen, values, risk_aversion=risk_aversion, alpha=alpha)
        assert port.objective_value == pytest.approx(best, rel=1e-7, abs=1e-7)
        # the reported selection is feasible and achieves the optimum
        chosen = np.array([i.name in port.selected for i in scen.initiatives])
        assert any(np.array_equal(chosen, m) for m in feasible_subsets(scen))
        total = values[chosen].sum(axis=0)
        again = total.mean() - risk_aversion * (total.mean() - tail_mean(total, alpha))
        assert again == pytest.approx(best, rel=1e-7, abs=1e-7)
        assert port.effort <= scen.capacity + 1e-9


def test_tail_mean_counts_the_boundary_draw_by_its_fraction():
    x = np.array([4.0, 1.0, 3.0, 2.0, 10.0])
    assert tail_mean(x, 0.4) == pytest.approx(1.5)
    assert tail_mean(x, 0.5) == pytest.approx((1 + 2 + 0.5 * 3) / 2.5)
    assert tail_mean(x, 1.0) == pytest.approx(x.mean())


def test_fifty_initiatives_solve_quickly_and_respect_capacity():
    rng = np.random.default_rng(7)
    inis = [
        initiative(f"i{k}", target="a", lift=0.1, effort=float(rng.integers(1, 13)))
        for k in range(50)
    ]
    scen = scenario(inis, capacity=100)
    values = rng.normal(rng.uniform(-1, 5, 50)[:, None], 2.0, (50, 2000))
    port = best_portfolio(scen, values)
    assert port.effort <= 100
    # an exact knapsack: no unchosen initiative fits in what is left with positive value
    left = 100 - port.effort
    means = values.mean(axis=1)
    for k, ini in enumerate(inis):
        if ini.name not in port.selected and ini.effort <= left:
            assert means[k] <= 0


# --------------------------------------------------------------------------- EVPI


def brute_evpi(values, scen, i):
    """E[max over portfolios with v_i known] - max over portfolios, by enumeration."""
    means = values.mean(axis=1)
    masks = list(feasible_subsets(scen))
    base = max(means[m].sum() for m in masks)
    informed = []
    for d in range(values.shape[1]):
        vals = means.copy()
        vals[i] = values[i, d]
        informed.append(max(vals[m].sum() for m in masks))
    return np.mean(informed) - base


def test_evpi_equals_brute_force_and_is_never_negative():
    rng = np.random.default_rng(3)
    for _ in range(10):
        scen, values = random_portfolio_instance(rng, int(rng.integers(2, 7)))
        got = evpi(values, scen)
        assert np.all(got >= 0)
        for i in range(values.shape[0]):
            assert got[i] == pytest.approx(brute_evpi(values, scen, i), abs=1e-9)
        alone = evpi(values)
        expected = np.maximum(values, 0).mean(axis=1) - np.maximum(values.mean(axis=1), 0)
        assert alone == pytest.approx(expected, abs=1e-12)


def test_evpi_is_zero_without_uncertainty_and_positive_with_it():
    post = fixed_posterior(small_tree(), SEGMENTS, elasticity=0.6, churn_slope=-0.4)
    scen = scenario(
        [
            initiative("known", target="a1", lift=0.05, effort=3),
            initiative(
                "unsure",
                target="b",
                lift={"low": -0.1, "high": 0.15},
                confidence=0.6,
                effort=3,
            ),
            initiative("rival", target="b", lift=0.02, effort=4),
        ],
        capacity=7,
    )
    res = simulate(scen, post, small_population(), simulations=400, seed=1)
    out = prioritise(res)
    table = out.evpi.set_index("name")
    assert table.loc["known", "evpi"] == 0.0
    assert table.loc["known", "evpi_alone"] == 0.0
    assert table.loc["unsure", "evpi"] > 0
    assert table.loc["unsure", "evpi_alone"] > 0
    assert out.evpi.name.iloc[0] == "unsure"  # the one to test first


# --------------------------------------------------------------------------- ranking


def test_rank_sorts_by_value_per_effort_and_p_top_k_sums_to_k():
    scen = scenario(
        [
            initiative("cheap", target="a1", lift={"low": 0.01, "high": 0.05}, effort=1),
            initiative("big", target="a", lift={"low": 0.05, "high": 0.2}, effort=6),
            initiative("coin", target="b", lift=0.1, confidence=0.5, effort=2),
            initiative("bad", target="b", lift={"low": -0.1, "high": 0.0}, effort=2),
        ]
    )
    res = simulate(scen, random_posterior(), small_population(), simulations=300, seed=2)
    table = rank(res, k=2)
    assert table.value_per_effort.is_monotonic_decreasing
    assert table["p_top2"].sum() == pytest.approx(2.0)
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table.set_index("name").loc["bad", "expected_value"] < 0
    assert table.attrs["quantity"] == "value" and table.attrs["note"] is None
    values = res.initiatives.value / res.effort[:, None]
    # exact: average top-2 membership over every order of breaking ties (all permutations)
    perms = list(itertools.permutations(range(4)))
    direct = np.zeros(4)
    for col in values.T:
        for perm in perms:
            order = sorted(range(4), key=lambda i, perm=perm, col=col: (-col[i], perm[i]))
            direct[order[:2]] += 1 / len(perms)
    direct /= values.shape[1]
    by_name = dict(zip(res.names, direct, strict=True))
    assert table["p_top2"].to_numpy() == pytest.approx([by_name[n] for n in table.name])


def test_p_top_k_shares_ties():
    values = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert p_top_k(values, 1) == pytest.approx([(0.5 + 1 / 3) / 2, (0.5 + 1 / 3) / 2, (1 / 3) / 2])


def test_value_falls_back_to_retained_accounts_and_says_so():
    scen = scenario([initiative("x", target="a", lift=0.1, effort=2)])
    res = simulate(scen, random_posterior(), small_population(value=False), simulations=100)
    out = prioritise(res)
    assert out.quantity == "retained_accounts" and out.note == NO_VALUE_NOTE
    assert out.ranking.expected_value.iloc[0] == pytest.approx(
        res.initiatives.retained_accounts[0].mean()
    )
    assert out.to_dict()["note"] == NO_VALUE_NOTE


# --------------------------------------------------------------------------- all at once


def test_prioritise_projects_the_chosen_set_jointly_and_serialises():
    scen = scenario(
        [
            initiative("a", target="a1", lift={"low": 0.02, "high": 0.1}, effort=3),
            initiative("b", target="b", lift={"low": 0.02, "high": 0.1}, effort=3, requires=["a"]),
            initiative("c", target="a", lift={"low": 0.0, "high": 0.2}, effort=4, excludes=["b"]),
            initiative("d", target="nsm", lift=0.03, confidence=0.7, effort=2),
        ],
        capacity=8,
    )
    res = simulate(scen, random_posterior(), small_population(), simulations=300, seed=5)
    out = prioritise(res, objective="value")
    port = out.portfolio
    assert port.effort <= 8
    assert not ({"b", "c"} <= set(port.selected))
    assert "b" not in port.selected or "a" in port.selected
    joint = res.simulate_set(port.selected)
    assert port.joint["mean"] == pytest.approx(joint.value.mean())
    assert np.array_equal(port.joint_outcomes.value, joint.value)
    assert port.interaction == pytest.approx(joint.value.mean() - port.expected_value)
    payload = json.loads(json.dumps(out.to_dict()))
    assert {"name", "expected_value", "value_per_effort", "p_top3"} <= set(payload["ranking"][0])
    assert {"selected", "effort", "expected_value"} <= set(payload["portfolio"])
    assert {"name", "evpi"} <= set(payload["evpi"][0])
    # risk aversion 1 maximises the tail mean (all 300 simulations are within risk_simulations)
    risky = prioritise(res, risk_aversion=1.0, alpha=0.2)
    chosen = np.isin(res.names, port.selected)
    assert risky.portfolio.tail_mean >= tail_mean(res.initiatives.value[chosen].sum(0), 0.2) - 1e-9


def test_compare_on_common_random_numbers():
    post, pop = random_posterior(), small_population()
    small = scenario([initiative("x", target="a", lift=0.05, confidence=0.8)], name="A")
    large = scenario([initiative("x", target="a", lift=0.10, confidence=0.8)], name="B")
    a = simulate(small, post, pop, simulations=200, seed=9)
    b = simulate(large, post, pop, simulations=200, seed=9)
    table = compare(b, a).table.set_index("quantity")
    works = a.portfolio.value > 0
    # the same initiative (same outcomes) with a larger lift wins on every draw where it works
    assert table.loc["value", "p_a_beats_b"] == pytest.approx(works.mean())
    assert table.loc["value", "p_tie"] == pytest.approx(1 - works.mean())
    assert table.loc["value", "diff_mean"] > 0
    same = compare(a, a).table
    assert (same.p_a_beats_b == 0).all() and (same.p_tie == 1).all()
    assert compare(a, b).to_dict()["a"] == "A"
    with pytest.raises(ValueError, match="common random numbers"):
        compare(a, simulate(large, post, pop, simulations=200, seed=10))
    with pytest.raises(ValueError, match="common random numbers"):
        compare(a, simulate(large, random_posterior(seed=1), pop, simulations=200, seed=9))


def test_compare_funded_portfolios_under_each_capacity():
    post, pop = random_posterior(), small_population()
    inis = [
        initiative("big", target="a", lift=0.10, effort=6),
        initiative("small", target="a", lift=0.04, effort=3),
        initiative("tiny", target="a", lift=0.01, effort=3),
    ]
    tight = simulate(scenario(inis, capacity=6, name="A"), post, pop, simulations=200, seed=4)
    roomy = simulate(scenario(inis, capacity=12, name="B"), post, pop, simulations=200, seed=4)
    funded = compare(tight, roomy, funded=True)
    # capacity 6 funds the big lift alone; capacity 12 funds everything
    assert funded.selected == (("big",), ("big", "small", "tiny"))
    by_q = funded.table.set_index("quantity")
    alone = tight.simulate_set(["big"]).value
    assert by_q.loc["value", "a_mean"] == pytest.approx(alone.mean())
    assert by_q.loc["value", "b_mean"] == pytest.approx(roomy.portfolio.value.mean())
    assert by_q.loc["value", "p_a_beats_b"] == 0.0  # more of the same lifts never loses
    # comparing every initiative, the two scenarios are the same set
    everything = compare(tight, roomy).table
    assert (everything.p_tie == 1).all()
    payload = funded.to_dict()
    assert payload["funded"] and payload["selected"] == {
        "a": ["big"],
        "b": ["big", "small", "tiny"],
    }
    # each side's effort against its own capacity: funded within it, proposed beyond it
    assert payload["effort"] == {"a": 6.0, "b": 12.0}
    assert payload["capacity"] == {"a": 6.0, "b": 12.0}
    assert compare(tight, roomy).effort == (12.0, 12.0)
    con = Console(file=io.StringIO(), width=100, color_system=None)
    render_comparison(con, compare(tight, roomy))
    text = con.file.getvalue()
    assert "A proposes effort 12 of capacity 6  (over capacity): big, small, tiny" in text
    assert "B proposes effort 12 of capacity 12: big" in text
