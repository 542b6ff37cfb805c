"""Simulator throughput and memory: 20 initiatives x 10,000 simulations x 52 periods, 60 cells.

Run: ``python benchmarks/bench_simulate.py`` (``--quick`` for a smoke run). Prints a markdown
table: median wall and CPU time over repeats with one and two worker threads, simulations
per second, and the peak memory traced at 10,000 and 100,000 simulations (each in a fresh
process), split into the per-simulation draws and results (which grow with the simulations)
and the working memory of the chunks (which does not). The inputs are the demo builders of
:mod:`nsm_sim.testing`, the population with the levels within each cell (the shares of the
inputs and the North Star's range, as every fit bundle carries them); ``--no-levels`` without
them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from nsm_sim.simulate import QUANTITIES, simulate
from nsm_sim.simulate.plan import make_plan
from nsm_sim.testing import demo_population, demo_posterior, demo_scenario


def memory(simulations: int, levels: bool) -> dict:
    """Peak traced memory of one simulation (run in a fresh process)."""
    post, pop, scen = demo_posterior(), demo_population(within=levels), demo_scenario()
    names = [ini.name for ini in scen.initiatives]
    plan = make_plan(scen, post, pop, {n: [n] for n in names}, simulations, 0)
    # what the plan draws per simulation: posterior draw, lifts, and a partial reach's shares
    inputs = plan.post_idx.nbytes + plan.loglift.nbytes
    inputs += sum(a.nbytes for a in plan.reach_noise.values())
    del plan
    tracemalloc.start()
    res = simulate(scen, post, pop, simulations=simulations, seed=0, n_jobs=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outputs = sum(
        a.nbytes
        for a in (
            *(res.initiatives.get(q) for q in QUANTITIES),
            *(res.portfolio.get(q) for q in QUANTITIES),
            *res.baseline.values(),
            res.baseline_path,
            res.portfolio_path,
        )
    )
    return {
        "simulations": simulations,
        "peak": peak,
        "outputs": outputs + inputs,
        "chunk_size": res.chunk_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="1,000 simulations, 2 repeats, no memory"
    )
    parser.add_argument(
        "--no-levels", action="store_true", help="a population without the levels within cells"
    )
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = not args.no_levels
    if args.memory:
        print(json.dumps(memory(args.memory, levels)))
        return
    simulations, repeats = (1_000, 2) if args.quick else (args.simulations, args.repeats)
    post, pop, scen = demo_posterior(), demo_population(within=levels), demo_scenario()
    cells = len(pop.frame)
    print(
        f"{len(scen.initiatives)} initiatives x {simulations:,} simulations x "
        f"{scen.horizon} periods, {cells} cells (levels within cells: {levels}); "
        f"load average before: {os.getloadavg()[0]:.2f}\n"
    )
    print("| threads | wall median (s) | wall min (s) | CPU median (s) | simulations/s | budget |")
    print("| --- | --- | --- | --- | --- | --- |")
    simulate(scen, post, pop, simulations=200, seed=0)  # warm up
    for n_jobs in (1, 2):
        walls, cpus = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            simulate(scen, post, pop, simulations=simulations, seed=0, n_jobs=n_jobs)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        wall = float(np.median(walls))
        ok = "ok" if wall < 2.0 else "OVER"
        print(
            f"| {n_jobs} | {wall:.2f} | {min(walls):.2f} | {np.median(cpus):.2f} | "
            f"{simulations / wall:,.0f} | < 2 s: {ok} |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.quick:
        return
    print(
        "\n| simulations | peak traced (MB) | per-simulation draws and results (MB) "
        "| working memory (MB) | chunk |"
    )
    print("| --- | --- | --- | --- | --- |")
    for n in (10_000, 100_000):
        out = subprocess.run(
            [sys.executable, __file__, "--memory", str(n), *(["--no-levels"] * args.no_levels)],
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
