"""Simulator throughput and memory: 20 initiatives x 10,000 draws x 52 periods, ~60 cells.

Run: ``python benchmarks/bench_simulate.py`` (``--quick`` for a smoke run). Prints a markdown
table: median wall and CPU time over repeats with one and two worker threads, draws per
second, and the peak memory traced at 10,000 and 100,000 draws (each in a fresh process),
split into the per-draw results (which grow with the draws) and the working memory of the
chunks (which does not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.simulate import PosteriorDraws, simulate
from nsm_sim.spec import Initiative, Scenario, load_tree

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS = ("enterprise", "free", "team")


def tree():
    return load_tree(ROOT / "models" / "demo.yaml")


def posterior(n_draws: int = 1000, seed: int = 1, hinge: bool = True) -> PosteriorDraws:
    """A random posterior of the demo tree's size (5 edges, 3 segments, with a hinge)."""
    rng = np.random.default_rng(seed)
    t = tree()
    n_e, n_s = len(t.edges), len(SEGMENTS)
    return PosteriorDraws(
        segments=SEGMENTS,
        edges=tuple(t.edges),
        elasticity=rng.normal(0.5, 0.1, (n_draws, n_e, n_s)),
        churn_intercept=rng.normal(-2.5, 0.1, (n_draws, n_s)),
        churn_slope=rng.normal(-0.4, 0.05, (n_draws, n_s)),
        tenure_slope=rng.normal(-0.2, 0.05, n_draws),
        hinge_jump=rng.normal(-0.5, 0.1, n_draws) if hinge else None,
        hinge_tau=rng.normal(3.0, 0.3, n_draws) if hinge else None,
    )


def population(levels: int = 20, seed: int = 2) -> Population:
    """3 segments x ``levels`` North Star levels (60 cells by default)."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "segment": seg,
            "segment_idx": k,
            "accounts": float(rng.integers(20, 200)),
            "north_star": 0.5 * 1.25**level,
            "tenure": float(rng.uniform(5, 40)),
            "value": 10.0 * (k + 1),
        }
        for k, seg in enumerate(SEGMENTS)
        for level in range(levels)
    ]
    return Population(SEGMENTS, pd.DataFrame(rows))


def scenario(n: int = 20, horizon: int = 52, seed: int = 3, overlap: float = 0.0) -> Scenario:
    """``n`` initiatives on every node, every lift model, starts 0-8, ramps 0-4, mixed reach."""
    rng = np.random.default_rng(seed)
    t = tree()
    nodes = list(t.nodes)
    lifts = [
        {"low": 0.02, "high": 0.10},
        {"distribution": "pert", "low": 0.0, "mode": 0.05, "high": 0.15},
        {"distribution": "normal", "mean": 0.03, "sd": 0.02},
        {"distribution": "uniform", "low": -0.02, "high": 0.08},
        {
            "experiment": {
                "control": {"n": 5000, "conversions": 400},
                "treatment": {"n": 5000, "conversions": 452},
            }
        },
    ]
    inis = []
    for i in range(n):
        reach = {}
        if i % 3 == 1:
            reach["reach"] = 0.8
        elif i % 3 == 2:
            reach["segments"] = list(SEGMENTS[: 1 + i % 2])
        inis.append(
            Initiative(
                name=f"initiative {i:02d}",
                target=nodes[i % len(nodes)],
                lift=lifts[i % len(lifts)],
                confidence=float(rng.choice([0.5, 0.6, 0.7, 0.8, 0.9])),
                start=int(rng.integers(0, 9)),
                ramp=int(rng.integers(0, 5)),
                effort=float(rng.integers(1, 13)),
                **reach,
            )
        )
    return Scenario(
        name="bench",
        model="demo.yaml",
        horizon=horizon,
        capacity=0.3 * sum(i.effort for i in inis),
        overlap=overlap,
        initiatives=inis,
        tree=t,
    )


def memory(draws: int) -> dict:
    """Peak traced memory of one simulation (run in a fresh process)."""
    post, pop, scen = posterior(), population(), scenario()
    tracemalloc.start()
    res = simulate(scen, post, pop, draws=draws, seed=0, n_jobs=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outputs = sum(
        a.nbytes
        for a in (
            *(res.initiatives.get(q) for q in ("north_star_change", "north_star_change_pct")),
            res.initiatives.retained_accounts,
            res.initiatives.value,
            *(res.portfolio.get(q) for q in ("north_star_change", "retained_accounts", "value")),
            res.portfolio.north_star_change_pct,
            *res.baseline.values(),
            res.baseline_path,
            res.portfolio_path,
        )
    )
    return {"draws": draws, "peak": peak, "outputs": outputs, "chunk_size": res.chunk_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 draws, 2 repeats, no memory")
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(memory(args.memory)))
        return
    draws, repeats = (1_000, 2) if args.quick else (args.draws, args.repeats)
    post, pop, scen = posterior(), population(), scenario()
    cells = len(pop.frame)
    print(
        f"{len(scen.initiatives)} initiatives x {draws:,} draws x {scen.horizon} periods, "
        f"{cells} cells; load average before: {os.getloadavg()[0]:.2f}\n"
    )
    print("| threads | wall median (s) | wall min (s) | CPU median (s) | draws/s | budget |")
    print("| --- | --- | --- | --- | --- | --- |")
    simulate(scen, post, pop, draws=200, seed=0)  # warm up
    for n_jobs in (1, 2):
        walls, cpus = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            simulate(scen, post, pop, draws=draws, seed=0, n_jobs=n_jobs)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        wall = float(np.median(walls))
        ok = "ok" if wall < 2.0 else "OVER"
        print(
            f"| {n_jobs} | {wall:.2f} | {min(walls):.2f} | {np.median(cpus):.2f} | "
            f"{draws / wall:,.0f} | < 2 s: {ok} |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.quick:
        return
    print("\n| draws | peak traced (MB) | per-draw results (MB) | working memory (MB) | chunk |")
    print("| --- | --- | --- | --- | --- |")
    for n in (10_000, 100_000):
        out = subprocess.run(
            [sys.executable, __file__, "--memory", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        m = json.loads(out.stdout)
        mb = 2.0**20
        print(
            f"| {n:,} | {m['peak'] / mb:.0f} | {m['outputs'] / mb:.0f} | "
            f"{(m['peak'] - m['outputs']) / mb:.0f} | {m['chunk_size']} |"
        )


if __name__ == "__main__":
    main()
