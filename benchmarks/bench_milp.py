"""The portfolio integer program at 50 initiatives (budget: under 1 s).

Run: ``python benchmarks/bench_milp.py``. Random initiatives with integer efforts 1-12, a
capacity of a third of the total effort, some ``requires`` and ``excludes`` links and each
initiative's value in 10,000 simulations (:func:`nsm_sim.testing.portfolio_instance`). Times
(median of repeats): the expected-value program, the risk-adjusted program (CVaR over 500
simulations), and the portfolio EVPI of all 50 initiatives.
The expected-value optimum without links is checked against a dynamic-programming knapsack.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nsm_sim.prioritise import best_portfolio, evpi
from nsm_sim.testing import portfolio_instance


def knapsack(values: np.ndarray, efforts: np.ndarray, capacity: int) -> float:
    best = np.zeros(capacity + 1)
    for v, w in zip(values, efforts.astype(int), strict=True):
        if v > 0:
            best[w:] = np.maximum(best[w:], best[:-w] + v if w else best + v)
    return float(best[-1])


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    scen, values = portfolio_instance(args.n)
    t_exp, port = timed(lambda: best_portfolio(scen, values), args.repeats)
    t_risk, risky = timed(
        lambda: best_portfolio(scen, values, risk_aversion=0.5, alpha=0.1), args.repeats
    )
    t_evpi, info = timed(lambda: evpi(values, scen), max(1, args.repeats // 2))
    print(f"{args.n} initiatives, capacity {scen.capacity:g}, {values.shape[1]:,} simulations\n")
    print("| program | median time (s) | selected | effort | objective | budget |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, t, p in (
        ("expected value", t_exp, port),
        ("risk-adjusted (lambda 0.5, CVaR 10 %, 500 simulations)", t_risk, risky),
    ):
        ok = "ok" if t < 1.0 else "OVER"
        print(
            f"| {label} | {t:.3f} | {len(p.selected)} | {p.effort:g} | "
            f"{p.objective_value:.2f} | < 1 s: {ok} |"
        )
    print(
        f"| EVPI of all {args.n} (portfolio decision) | {t_evpi:.3f} | | | max {info.max():.3f} | |"
    )
    free, values_free = portfolio_instance(args.n, links=False)
    efforts = np.array([i.effort for i in free.initiatives])
    dp = knapsack(values_free.mean(axis=1), efforts, int(free.capacity))
    milp_free = best_portfolio(free, values_free).objective_value
    print(
        f"\nwithout links: integer program {milp_free:.6f}, dynamic programming {dp:.6f}, "
        f"equal: {abs(milp_free - dp) < 1e-6 * max(1.0, abs(dp))}"
    )


if __name__ == "__main__":
    main()
