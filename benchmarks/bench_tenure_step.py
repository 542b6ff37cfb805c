"""Merged tenures against exact ones: the churn cells' error by ``tenure_step``.

    python benchmarks/bench_tenure_step.py --world demo --world inactivity:6 --world inactivity:13
        [--accounts 5000] [--seed 0]

For each world (as in ``bench_churn_oot.py``) and each step, the cells of
:func:`nsm_sim.data.churn_cells` with ``tenure_step=step`` (0: one tenure per cell, exact)
are fit by maximum likelihood (:func:`nsm_sim.numeric.logistic_map`: segment intercepts,
``log1p`` of the North Star, ``log1p`` of tenure) on all rows and, for the out-of-time
log-loss, on the rows before the cutoff (70 % of the periods), scored row by row after it
with tenure held at the longest trained tenure; the baseline is the same without the metric.
Prints the cells, the slopes and the log-losses, each with its change against the exact
cells. No sampling: seconds per world.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from bench_churn_oot import world_panel
from scipy.special import expit

STEPS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def design(cells: pd.DataFrame, segments: int, metric: bool = True) -> np.ndarray:
    """Segment indicators, ``x`` (with the metric) and ``log_tenure`` per cell."""
    columns = [np.eye(segments)[cells["segment_idx"].to_numpy()]]
    if metric:
        columns.append(cells["x"].to_numpy()[:, None])
    return np.column_stack([*columns, cells["log_tenure"].to_numpy()[:, None]])


def main() -> None:
    from nsm_sim.data import churn_cells
    from nsm_sim.data.cells import tenure_cells
    from nsm_sim.leading.predictive import cutoff_rows, log_loss
    from nsm_sim.numeric import logistic_map

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", action="append", required=True)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--periods", type=int, default=52)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    print(
        "| world | step | cells | slope (change) | tenure slope (change, se) "
        "| log-loss (change) | baseline (change) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for spec in options.world:
        panel = world_panel(spec, options.accounts, options.periods, options.seed)
        f, segments, ns = panel.frame, len(panel.segments), panel.tree.north_star
        _, train = cutoff_rows(panel, 0.7)
        y = f["churned"].to_numpy(float)
        held = np.minimum(f["tenure"].to_numpy(float), f["tenure"].to_numpy()[train].max())
        codes = pd.Categorical(f["segment"].astype(str), categories=list(panel.segments)).codes
        lt, x = np.log1p(held), np.log1p(f[ns].to_numpy(float))
        found = {}
        for step in STEPS:
            c = churn_cells(panel, tenure_step=step).frame
            beta, cov, _ = logistic_map(design(c, segments), c["churned"], c["at_risk"])
            t = churn_cells(panel, rows=train, tenure_step=step).frame
            bt, _, _ = logistic_map(design(t, segments), t["churned"], t["at_risk"])
            eta = bt[:segments][codes] + bt[segments] * x + bt[segments + 1] * lt
            b = tenure_cells(panel, rows=train, tenure_step=step).frame
            bb, _, _ = logistic_map(design(b, segments, False), b["churned"], b["at_risk"])
            base = bb[:segments][codes] + bb[segments] * lt
            found[step] = (
                len(c),
                beta[segments],
                beta[segments + 1],
                float(np.sqrt(cov[segments + 1, segments + 1])),
                log_loss(y[~train], expit(eta[~train])),
                log_loss(y[~train], expit(base[~train])),
            )
        e = found[0.0]
        for step, r in found.items():
            print(
                f"| {spec} | {step:g} | {r[0]:,} | {r[1]:+.4f} ({r[1] - e[1]:+.4f}) "
                f"| {r[2]:+.4f} ({r[2] - e[2]:+.4f}, {r[3]:.3f}) "
                f"| {r[4]:.5f} ({r[4] / e[4] - 1:+.2%}) | {r[5]:.5f} ({r[5] / e[5] - 1:+.2%}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
