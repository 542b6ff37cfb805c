"""One initiative's Monte Carlo in squigglepy and in nsm_sim, at equal simulations.

Run: ``python benchmarks/bench_squigglepy.py`` (needs ``pip install squigglepy``).

The initiative: +2 % to +10 % (90 % interval, log-normal in both tools) on ``boards_shared``,
confidence 0.7, full effect from period 0, on the demo tree's 60-cell population over 52
weekly periods, with fixed parameters (elasticity 0.5, churn logit -2.5 - 0.4 log1p(NSM)
- 0.2 log1p(tenure)). Two comparisons:

A. No churn feedback (slope 0): the North Star change at the horizon has a closed form,
   ``K * works * ((1 + lift) ** 0.5 - 1)``, which squigglepy samples with vectorised
   distribution arithmetic; nsm_sim runs its full projection.
B. With churn feedback: squigglepy samples a Python function that projects the cells period
   by period in each simulation (squigglepy's way to express a model without a closed form).

Each reports the medians of a few repeats, the time ratio and the agreement of the means
(difference in Monte Carlo standard errors; both against the exact mean in A).
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import integrate, stats
from scipy.special import expit

from nsm_sim.models.retention import churn_logit
from nsm_sim.simulate import fixed_posterior, simulate
from nsm_sim.testing import DEMO_SEGMENTS, demo_population, demo_tree, initiative, scenario

try:
    import squigglepy as sq
except ImportError:  # the benchmark reports it instead of failing
    sq = None

LOW, HIGH, CONFIDENCE, ELASTICITY, HORIZON = 0.02, 0.10, 0.7, 0.5, 52


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def setup(slope):
    tree = demo_tree()
    post = fixed_posterior(
        tree,
        DEMO_SEGMENTS,
        elasticity=ELASTICITY,
        churn_intercept=-2.5,
        churn_slope=slope,
        tenure_slope=-0.2,
    )
    board_templates = initiative(
        "Board templates",
        target="boards_shared",
        lift={"low": LOW, "high": HIGH},
        confidence=CONFIDENCE,
    )
    scen = scenario([board_templates], tree=tree, horizon=HORIZON, name="one")
    return post, scen


def project(frame, mult, slope):
    """North Star total in the last period, cells as numpy arrays, one simulation."""
    ns, acc, ten = (frame[c].to_numpy() for c in ("north_star", "accounts", "tenure"))
    x = np.log1p(ns * mult)
    alive = acc.copy()
    for t in range(HORIZON - 1):
        h = expit(churn_logit(x, np.log1p(ten + 1 + t), -2.5, slope, -0.2))
        alive = alive * (1 - h)
    return float(np.sum(alive * ns * mult))


def row(label, simulations, t_nsm, t_sq, x_nsm, x_sq, exact=None):
    n = math.sqrt(simulations)
    se_nsm, se_sq = x_nsm.std() / n, x_sq.std() / n
    agree = abs(x_nsm.mean() - x_sq.mean()) / math.hypot(se_nsm, se_sq)
    vs_exact = (
        ""
        if exact is None
        else f"{exact:.2f} (nsm_sim {abs(x_nsm.mean() - exact) / se_nsm:.1f} SE, "
        f"squigglepy {abs(x_sq.mean() - exact) / se_sq:.1f} SE)"
    )
    print(
        f"| {label} | {simulations:,} | {t_nsm * 1e3:.1f} | {t_sq * 1e3:.1f} | "
        f"{t_nsm / t_sq:.3g} | {x_nsm.mean():.2f} | {x_sq.mean():.2f} | {agree:.2f} | {vs_exact} |"
    )


def main() -> None:
    if sq is None:
        print("squigglepy is not installed (pip install squigglepy): comparison skipped")
        return
    pop = demo_population()
    frame = pop.frame
    print(f"squigglepy {sq.__version__}; 60 cells, {HORIZON} periods\n")
    print(
        "| model | simulations | nsm_sim (ms) | squigglepy (ms) | time nsm_sim / squigglepy | "
        "mean nsm_sim | mean squigglepy | difference (SE) | exact mean |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    # A: closed form without churn feedback
    post, scen = setup(slope=0.0)
    simulations = 10_000
    base = project(frame, 1.0, 0.0)
    mu, sigma = (math.log(LOW) + math.log(HIGH)) / 2, (math.log(HIGH) - math.log(LOW)) / 3.2897
    dist = stats.lognorm(s=sigma, scale=math.exp(mu))
    exact = (
        CONFIDENCE
        * base
        * integrate.quad(lambda v: ((1 + v) ** ELASTICITY - 1) * dist.pdf(v), 0, 5)[0]
    )
    t_nsm, res = timed(
        lambda: simulate(scen, post, pop, simulations=simulations, seed=1, n_jobs=1), 5
    )
    sq.set_seed(1)
    model = sq.bernoulli(CONFIDENCE) * base * ((1 + sq.to(LOW, HIGH)) ** ELASTICITY - 1)
    t_sq, x_sq = timed(lambda: sq.sample(model, n=simulations), 5)
    x_nsm = res.portfolio.north_star_change
    row("A: closed form, no churn feedback", simulations, t_nsm, t_sq, x_nsm, x_sq, exact)

    # B: with churn feedback, a Python projection per simulation in squigglepy
    post, scen = setup(slope=-0.4)
    simulations = 2_000
    base = project(frame, 1.0, -0.4)
    lift = sq.to(LOW, HIGH)
    works = sq.bernoulli(CONFIDENCE)

    def one_simulation():
        if not sq.sample(works):
            return 0.0
        mult = (1 + sq.sample(lift)) ** ELASTICITY
        return project(frame, mult, -0.4) - base

    t_nsm, res = timed(
        lambda: simulate(scen, post, pop, simulations=simulations, seed=1, n_jobs=1), 3
    )
    sq.set_seed(1)
    t_sq, x_sq = timed(lambda: np.asarray(sq.sample(one_simulation, n=simulations)), 1)
    x_nsm = res.portfolio.north_star_change
    row("B: projection with churn feedback", simulations, t_nsm, t_sq, x_nsm, x_sq)


if __name__ == "__main__":
    main()
