"""Out-of-time churn scores: the validation's retention model against a per-row logit.

For each world, the North Star's retention model and the segment + tenure baseline are fit
before the cutoff (70 % of the periods) by :func:`nsm_sim.leading.predictive_power` and
scored on the later rows; statsmodels' ``Logit`` is fit on the same training rows, one row
at a time, with the same covariates (segment indicators, ``log1p`` of the North Star,
``log1p`` of tenure held at the largest trained tenure) and scored on the same rows. Prints
one Markdown table row per world.

    python benchmarks/bench_churn_oot.py --world demo --world inactivity:6 --world inactivity:13
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def per_row_logit(panel, metric: str | None, train: np.ndarray) -> float:
    """Out-of-time log-loss of statsmodels' Logit with the validation's covariates."""
    import statsmodels.api as sm

    from nsm_sim.leading.predictive import log_loss

    f = panel.frame
    codes = pd.Categorical(f["segment"].astype(str), categories=list(panel.segments)).codes
    tenure = np.minimum(f["tenure"].to_numpy(float), f["tenure"].to_numpy()[train].max())
    columns = [np.eye(len(panel.segments))[codes]]
    if metric:
        columns.append(np.log1p(f[metric].to_numpy(float))[:, None])
    X = np.column_stack([*columns, np.log1p(tenure)])
    y = f["churned"].to_numpy(float)
    result = sm.Logit(y[train], X[train]).fit(disp=0, maxiter=200)
    return log_loss(y[~train], result.predict(X[~train]))


def world_panel(spec: str, accounts: int, periods: int, seed: int):
    from nsm_sim.data import check_frame
    from nsm_sim.synth import generate_world

    if spec == "demo":
        world = generate_world(accounts=accounts, periods=periods, seed=seed)
    else:
        _, n = spec.split(":")
        world = generate_world(
            accounts=accounts,
            periods=periods,
            seed=seed,
            churn="inactivity",
            inactive_periods=int(n),
        )
    return check_frame(world.panel, world.tree, source=spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", action="append", default=[], help="demo or inactivity:N")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--periods", type=int, default=52)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from nsm_sim.leading.predictive import cutoff_rows, predictive_power

    print(
        "| world | rows | scored beyond trained tenure | log-loss | statsmodels Logit | ratio "
        "| baseline | statsmodels baseline | ratio | skill | seconds |"
    )
    print("| --- " * 11 + "|")
    for spec in args.world or ["demo"]:
        panel = world_panel(spec, args.accounts, args.periods, args.seed)
        ns = panel.tree.north_star
        _, train = cutoff_rows(panel, 0.7)
        start = time.perf_counter()
        row = predictive_power(panel, [ns], seed=args.seed, in_sample=False).scores.iloc[0]
        seconds = time.perf_counter() - start
        ours, base = float(row["log_loss"]), float(row["baseline_log_loss"])
        ref, ref_base = per_row_logit(panel, ns, train), per_row_logit(panel, None, train)
        print(
            f"| {spec} | {len(panel.frame):,} | {100 * row['beyond_trained_tenure']:.1f} % "
            f"| {ours:.5f} | {ref:.5f} | {ours / ref:.4f} | {base:.5f} | {ref_base:.5f} "
            f"| {base / ref_base:.4f} | {100 * row['skill']:+.2f} % | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
