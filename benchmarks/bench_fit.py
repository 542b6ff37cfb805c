"""Fit time (drivers + retention) against panel size: 10k, 100k and 1M account-periods.

    python benchmarks/bench_fit.py [--repeats 3] [--draws 500]

Each size is a synthetic world (52 weekly periods, accounts chosen for the row count); each
fit is timed in the same process after one warm-up fit, so the compiled model is cached and
the times compare data reduction and sampling, not compilation. Reports medians of the
repeats, split into data reduction (checking is excluded: it happens before the fit) and
compile + sample, and the ratio of the largest to the smallest size (budget: at most 2).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from nsm_sim.data import check_frame
from nsm_sim.models import inference
from nsm_sim.synth import generate_world

#: accounts for about 10k, 100k and 1M account-periods over 52 weeks
SIZES = {"10k": 290, "100k": 3_300, "1M": 34_500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    panels = {}
    for label, accounts in SIZES.items():
        world = generate_world(accounts=accounts, periods=52, seed=7)
        panels[label] = check_frame(world.panel, world.tree, source=label)
    warm = panels["10k"]
    inference.fit(warm, draws=100, tune=100, chains=2, seed=0)  # fills the compile cache
    rows = []
    for label, panel in panels.items():
        wall, reduce, sample = [], [], []
        for r in range(args.repeats):
            t = time.perf_counter()
            f = inference.fit(panel, draws=args.draws, tune=args.draws, seed=r)
            wall.append(time.perf_counter() - t)
            reduce.append(f.card["seconds"]["data_reduction"])
            sample.append(f.card["seconds"]["compile_and_sample"])
        rows.append(
            (
                label,
                len(panel.frame),
                statistics.median(wall),
                statistics.median(reduce),
                statistics.median(sample),
                f.card["diagnostics"]["status"],
            )
        )
    print(
        "| size | account-periods | fit median (s) | data reduction (s) | compile + sample (s) "
        "| diagnostics |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for label, n, w, rd, s, status in rows:
        print(f"| {label} | {n:,} | {w:.1f} | {rd:.2f} | {s:.1f} | {status} |")
    ratio = rows[-1][2] / rows[0][2]
    print(f"\nratio 1M / 10k: {ratio:.2f} (budget <= 2: {'ok' if ratio <= 2 else 'MISSED'})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
