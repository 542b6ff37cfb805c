"""Coverage of the fit's 90% intervals over synthetic worlds with a known truth.

    python benchmarks/recovery.py [--worlds 10] [--first-seed 0] [--accounts 5000]
        [--draws 500] [--rho 0.6] [--drivers-only | --closed-form] [--independent]

Fits the demo model (``inference.fit``: drivers + retention with the hinge) on worlds made
with seeds ``first_seed``, ``first_seed + 1``, ... and counts, for every parameter of
``truth.json`` the model estimates (the five population elasticities, the North Star's churn
slope, the tenure slope, the hinge jump and the threshold), how many of the worlds' 90%
intervals contain the truth. With calibrated intervals each count is Binomial(worlds, 0.9):
with 10 worlds, 7 or fewer happens with probability 7%, 6 or fewer 1.3%. A single world's
miss is therefore not evidence of bias; a low count is.

``--rho`` gives the parents' residuals AR(1) correlation within account
(``generate_world(residual_rho=...)``). ``--drivers-only`` fits the driver model alone
(faster); ``--closed-form`` samples nothing and takes the likelihood's own intervals
(estimate +- 1.645 standard errors, segments independent): the calibration itself, over many
worlds in little time. ``--independent`` (with either) takes account-periods as independent
instead of calibrating the likelihood to the cluster-robust covariance, for comparison. The
elasticities are also pooled over edges: the population rows (``elasticity_population``, 5
per world), the segments' (15 per world; the truth is the same in every segment) and the
hyper-mean ``elasticity_mu``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binom

from nsm_sim.data import check_frame, driver_stats
from nsm_sim.models import inference
from nsm_sim.models.drivers import build_driver_model, draw_elasticities, reduce_stats
from nsm_sim.numeric import Z_90, child_seed, stream
from nsm_sim.synth import generate_world

#: The elasticities' posterior variables, pooled over edges (and segments).
ELASTICITIES = ("elasticity_population", "elasticity", "elasticity_mu")


def truths(truth: dict, drivers_only: bool) -> dict[str, tuple[str, dict, float]]:
    """Posterior variable, selection and true value of every recoverable parameter."""
    out = {
        f"elasticity {edge}": ("elasticity_population", {"edge": edge}, value)
        for edge, value in truth["elasticities"].items()
    }
    if drivers_only:
        return out
    churn = truth["churn"]
    out["churn slope"] = ("churn_slope_mu", {}, churn["slope"])
    out["tenure slope"] = ("tenure_slope", {}, churn["tenure_slope"])
    out["hinge jump"] = ("hinge_jump", {}, churn["hinge_jump"])
    out["hinge tau"] = ("hinge_tau", {}, churn["hinge_tau"])
    return out


def fit_drivers(panel, draws: int, seed: int, cluster_robust: bool):
    """The driver model alone: posterior with the drawn elasticities."""
    tree = panel.tree
    stats = {p: driver_stats(panel, p) for p in tree.children}
    model = build_driver_model(stats, tree, cluster_robust=cluster_robust)
    idata = inference.sample(model, draws=draws, tune=draws, seed=child_seed(seed, 0))
    drawn = draw_elasticities(
        stats, tree, idata.posterior, seed=stream(seed, 1), cluster_robust=cluster_robust
    )
    return idata.posterior.assign(drawn)


def closed_form_coverage(panel, truth: dict, cluster_robust: bool) -> dict[str, list]:
    """The likelihood's own 90% intervals: per segment, and the rows' average of segments."""
    out: dict[str, list] = {"elasticity_population": [], "elasticity": []}
    for parent, children in panel.tree.children.items():
        stats = driver_stats(panel, parent)
        r = reduce_stats(stats, cluster_robust=cluster_robust)
        variance = np.diagonal(r["sxx_inv"], axis1=1, axis2=2) * (r["ssr_min"] / r["df"])[:, None]
        weights = stats.n / stats.n.sum()
        value = np.array([truth["elasticities"][f"{parent}<-{c}"] for c in children])
        for name, estimate, sd in (
            ("elasticity", r["bhat"], np.sqrt(variance)),
            ("elasticity_population", weights @ r["bhat"], np.sqrt(weights**2 @ variance)),
        ):
            inside = np.abs(estimate - value) <= Z_90 * sd
            out[name] += list(zip(np.ravel(inside), np.ravel(2 * Z_90 * sd), strict=True))
    return out


def covered(values: np.ndarray, truth: float) -> tuple[bool, float]:
    """Whether the 90% interval of ``values`` contains ``truth``, and its width."""
    low, high = np.quantile(values, [0.05, 0.95])
    return bool(low <= truth <= high), float(high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worlds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--rho", type=float, default=0.0)
    parser.add_argument("--drivers-only", action="store_true")
    parser.add_argument("--closed-form", action="store_true")
    parser.add_argument("--independent", action="store_true")
    args = parser.parse_args()
    if args.independent and not (args.drivers_only or args.closed_form):
        parser.error("--independent needs --drivers-only or --closed-form")
    hits: dict[str, list[bool]] = {}
    pooled: dict[str, list[tuple[bool, float]]] = {name: [] for name in ELASTICITIES}
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.worlds):
        world = generate_world(accounts=args.accounts, periods=52, seed=seed, residual_rho=args.rho)
        panel = check_frame(world.panel, world.tree, source=f"seed {seed}")
        start = time.perf_counter()
        if args.closed_form:
            found = closed_form_coverage(panel, world.truth, not args.independent)
            for name, results in found.items():
                pooled[name] += results
            continue
        if args.drivers_only:
            post = fit_drivers(panel, args.draws, seed, cluster_robust=not args.independent)
        else:
            post = inference.fit(
                panel, draws=args.draws, tune=args.draws, seed=seed
            ).idata.posterior
        seconds = time.perf_counter() - start
        for name, (var, sel, value) in truths(world.truth, args.drivers_only).items():
            draws = post[var].sel(sel).values.ravel()
            low, high = np.quantile(draws, [0.05, 0.95])
            hits.setdefault(name, []).append(bool(low <= value <= high))
            if name == "hinge tau":
                rows.append((seed, low, high, value, seconds))
        for edge, value in world.truth["elasticities"].items():
            for name in ELASTICITIES:
                values = post[name].sel(edge=edge)
                groups = values.transpose("segment", ...) if "segment" in values.dims else [values]
                pooled[name] += [covered(g.values.ravel(), value) for g in groups]
        print(f"seed {seed}: {seconds:.1f} s", flush=True)
    n = args.worlds
    likelihood = "independent account-periods" if args.independent else "cluster-robust"
    model = "driver model" if args.drivers_only else "inference.fit"
    model = "closed form, no sampler" if args.closed_form else model
    seeds = f"seeds {args.first_seed}-{args.first_seed + n - 1}"
    print(f"\n{n} worlds ({seeds}) of {args.accounts:,} accounts x 52 weeks, rho {args.rho}")
    print(f"{model}, {likelihood} likelihood\n")
    print("| parameter | intervals containing the truth | P(this few or fewer \\| calibrated) |")
    print("| --- | --- | --- |")
    for name, h in hits.items():
        k = sum(h)
        print(f"| {name} | {k} / {n} | {binom.cdf(k, n, 0.9):.2f} |")
    print("\n| elasticities, pooled | intervals containing the truth | coverage | mean width |")
    print("| --- | --- | --- | --- |")
    for name, results in pooled.items():
        if not results:
            continue
        k, m = sum(h for h, _ in results), len(results)
        width = np.mean([w for _, w in results])
        print(f"| {name} | {k} / {m} | {k / m:.0%} | {width:.4f} |")
    if rows:
        print("\n| seed | hinge tau 5% | hinge tau 95% | truth | fit (s) |")
        print("| --- | --- | --- | --- | --- |")
        for seed, low, high, value, seconds in rows:
            print(f"| {seed} | {low:.2f} | {high:.2f} | {value} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
