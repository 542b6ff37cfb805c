"""Sufficient statistics and cells against the naive per-row likelihood, side by side.

    python benchmarks/bench_per_row.py [--accounts 3450] [--draws 300]

The same model twice on a synthetic panel of about 100,000 account-periods (52 weeks), both
sampled by the same sampler (nutpie on a PyTensor C-backend log density, 4 chains):

* ours: ``inference.fit`` (drivers from sufficient statistics, churn from Binomial cells);
* naive: ``pm.Normal`` on every (residualised) row of every parent and ``pm.Bernoulli`` on
  every account-period, with the same priors (elasticities centred; churn intercepts centred
  at each segment's mean, as in ours).

The hinge is left out of both (``hinge=False``): with a per-row likelihood its threshold
cannot be integrated out cheaply, and the comparison is about the cost of the likelihood.
The naive time counts sampling only (its data preparation is not charged to it). Reported:
wall times, the ratio (budget: ours at least 20x faster) and the estimates side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from nsm_sim.data import check_frame, demean_two_way
from nsm_sim.models import inference
from nsm_sim.models.drivers import PRIORS as DRIVER_PRIORS
from nsm_sim.models.drivers import edge_label
from nsm_sim.models.retention import PRIORS as CHURN_PRIORS
from nsm_sim.models.retention import churn_logit
from nsm_sim.synth import generate_world


def naive_model(panel):
    tree = panel.tree
    f = panel.frame
    seg = pd.Categorical(f["segment"], categories=list(panel.segments)).codes
    coords = {
        "edge": [edge_label(p, c) for p, c in tree.edges],
        "parent": list(tree.children),
        "segment": list(panel.segments),
    }
    with pm.Model(coords=coords) as model:
        mu = pm.Normal("elasticity_mu", 0.0, DRIVER_PRIORS["elasticity_mu"][2], dims="edge")
        tau = pm.HalfNormal("elasticity_tau", DRIVER_PRIORS["elasticity_tau"][1], dims="edge")
        # centred: every (edge, segment) elasticity is pinned down by thousands of rows
        b = pm.Normal("elasticity", mu[:, None], tau[:, None], dims=("edge", "segment"))
        sigma = pm.HalfNormal(
            "driver_sigma", DRIVER_PRIORS["driver_sigma"][1], dims=("parent", "segment")
        )
        start = 0
        for j, parent in enumerate(tree.children):
            kids = list(tree.children[parent])
            Z = np.column_stack(
                [np.log1p(f[parent].to_numpy(float)), np.log1p(f[kids].to_numpy(float))]
            )
            y = np.empty(len(f))
            X = np.empty((len(f), len(kids)))
            for s in range(len(panel.segments)):
                rows = seg == s
                a = f["account_id"].to_numpy()[rows]
                t = f["t"].to_numpy()[rows]
                R = demean_two_way(Z[rows], pd.factorize(a)[0], pd.factorize(t)[0])
                y[rows], X[rows] = R[:, 0], R[:, 1:]
            bk = b[start : start + len(kids)]  # (K, S)
            start += len(kids)
            mean = pt.sum(X * bk[:, seg].T, axis=1)
            pm.Normal(f"rows_{parent}", mean, sigma[j, seg], observed=y)
        # the intercepts centred at each segment's mean x and log tenure, as in ours
        x = np.log1p(f[tree.north_star].to_numpy(float))
        log_tenure = np.log1p(f["tenure"].to_numpy(float))
        x_ref = np.bincount(seg, x) / np.bincount(seg)
        lt_ref = np.bincount(seg, log_tenure) / np.bincount(seg)
        intercept_c = pm.Normal(
            "churn_intercept_c",
            CHURN_PRIORS["churn_intercept_c"][1],
            CHURN_PRIORS["churn_intercept_c"][2],
            dims="segment",
        )
        slope_mu = pm.Normal("churn_slope_mu", 0.0, 1.0)
        slope_sigma = pm.HalfNormal("churn_slope_sigma", CHURN_PRIORS["churn_slope_sigma"][1])
        slope_z = pm.ZeroSumNormal("churn_slope_z", sigma=1.0, dims="segment")
        slope = pm.Deterministic("churn_slope", slope_mu + slope_sigma * slope_z, dims="segment")
        tenure = pm.Normal("tenure_slope", 0.0, 1.0)
        intercept = intercept_c - slope * x_ref - tenure * lt_ref
        logit = churn_logit(
            x,
            log_tenure,
            intercept[seg],
            slope[seg],
            tenure,
            sigmoid=pt.sigmoid,
        )
        pm.Bernoulli("rows_churn", logit_p=logit, observed=f["churned"].to_numpy())
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=3450)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of ours (naive: once)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    world = generate_world(accounts=args.accounts, periods=52, seed=5)
    panel = check_frame(world.panel, world.tree, source="bench")
    print(f"account-periods: {len(panel.frame):,}")
    inference.fit(panel, hinge=False, draws=50, tune=50, chains=2)  # compile cache warm
    ours_times = []
    for r in range(args.repeats):
        t = time.perf_counter()
        ours = inference.fit(panel, hinge=False, draws=args.draws, tune=args.draws, seed=r)
        ours_times.append(time.perf_counter() - t)
    ours_time = float(np.median(ours_times))
    print(f"ours: {', '.join(f'{t:.1f}' for t in ours_times)} s", flush=True)
    model = naive_model(panel)
    t = time.perf_counter()
    naive = inference.sample(model, draws=args.draws, tune=args.draws, seed=0)
    naive_time = time.perf_counter() - t
    print(
        f"\nours (median of {args.repeats}): {ours_time:.1f} s; naive per-row: {naive_time:.1f} s;"
        f" ratio {naive_time / ours_time:.0f}x (budget >= 20x)"
    )
    print("\n| quantity | ours mean | naive mean | difference | truth |")
    print("| --- | --- | --- | --- | --- |")
    po, pn = ours.idata.posterior, naive.posterior
    for e in po["edge"].values:
        a, b = (
            float(po["elasticity_mu"].sel(edge=e).mean()),
            float(pn["elasticity_mu"].sel(edge=e).mean()),
        )
        truth = world.truth["elasticities"][str(e)]
        print(f"| elasticity {e} | {a:.3f} | {b:.3f} | {a - b:+.3f} | {truth} |")
    for name, truth in (
        ("churn_slope_mu", world.truth["churn"]["slope"]),
        ("tenure_slope", world.truth["churn"]["tenure_slope"]),
    ):
        a, b = float(po[name].mean()), float(pn[name].mean())
        print(f"| {name} | {a:.3f} | {b:.3f} | {a - b:+.3f} | {truth} (the truth has the hinge) |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
