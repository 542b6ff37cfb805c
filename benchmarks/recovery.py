"""Coverage of the fit's 90% intervals over synthetic worlds with a known truth.

    python benchmarks/recovery.py [--worlds 10] [--accounts 5000] [--draws 500]

Fits the demo model (``inference.fit``: drivers + retention with the hinge) on worlds made
with seeds 0, 1, ... and counts, for every parameter of ``truth.json`` the model estimates
(the five population elasticities, the North Star's churn slope, the tenure slope, the hinge
jump and the threshold), how many of the worlds' 90% intervals contain the truth. With
calibrated intervals each count is Binomial(worlds, 0.9): with 10 worlds, 7 or fewer happens
with probability 7%, 6 or fewer 1.3%. A single world's miss is therefore not evidence of
bias; a low count is.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binom

from nsm_sim.data import check_frame
from nsm_sim.models import inference
from nsm_sim.synth import generate_world


def truths(truth: dict) -> dict[str, tuple[str, dict, float]]:
    """Posterior variable, selection and true value of every recoverable parameter."""
    out = {
        f"elasticity {edge}": ("elasticity_mu", {"edge": edge}, value)
        for edge, value in truth["elasticities"].items()
    }
    churn = truth["churn"]
    out["churn slope"] = ("churn_slope_mu", {}, churn["slope"])
    out["tenure slope"] = ("tenure_slope", {}, churn["tenure_slope"])
    out["hinge jump"] = ("hinge_jump", {}, churn["hinge_jump"])
    out["hinge tau"] = ("hinge_tau", {}, churn["hinge_tau"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worlds", type=int, default=10)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    hits: dict[str, list[bool]] = {}
    rows = []
    for seed in range(args.worlds):
        world = generate_world(accounts=args.accounts, periods=52, seed=seed)
        panel = check_frame(world.panel, world.tree, source=f"seed {seed}")
        start = time.perf_counter()
        fit = inference.fit(panel, draws=args.draws, tune=args.draws, seed=seed)
        seconds = time.perf_counter() - start
        post = fit.idata.posterior
        for name, (var, sel, value) in truths(world.truth).items():
            draws = post[var].sel(sel).values.ravel()
            low, high = np.quantile(draws, [0.05, 0.95])
            hits.setdefault(name, []).append(bool(low <= value <= high))
            if name == "hinge tau":
                rows.append((seed, low, high, value, seconds))
        print(f"seed {seed}: {seconds:.1f} s", flush=True)
    n = args.worlds
    print(f"\n{n} worlds of {args.accounts:,} accounts x 52 weeks\n")
    print("| parameter | intervals containing the truth | P(this few or fewer \\| calibrated) |")
    print("| --- | --- | --- |")
    for name, h in hits.items():
        k = sum(h)
        print(f"| {name} | {k} / {n} | {binom.cdf(k, n, 0.9):.2f} |")
    print("\n| seed | hinge tau 5% | hinge tau 95% | truth | fit (s) |")
    print("| --- | --- | --- | --- | --- |")
    for seed, low, high, value, seconds in rows:
        print(f"| {seed} | {low:.2f} | {high:.2f} | {value} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
