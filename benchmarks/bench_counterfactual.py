"""Simulated initiatives against the counterfactual truth of the synthetic world, before and after.

Run: ``python benchmarks/bench_counterfactual.py`` (``--seeds 31 47 59`` by default; ``--before
<commit>`` names the code to compare with: 1ce69fd by default, the simulator whose intervals
carried the posterior only, before a partial reach was drawn per simulation; 41146ea is the
old propagation, a lift applied as a change of ``log``). For each world (3,000
accounts x 36 weeks) the models are fitted on the first 30 weeks, the ten initiatives of
:data:`nsm_sim.testing.COUNTERFACTUAL_INITIATIVES` are simulated from week 30 on, and the
North Star total of the last week is compared with the truth: the same world rerun with the
same seed and the lift applied (:func:`nsm_sim.synth.counterfactual`). The same posterior and
population go through the current simulator and through the simulator of the ``--before``
commit (its files extracted with ``git archive`` into a temporary folder and run in a
subprocess). Prints a markdown table per world and a summary: mean absolute error of the mean,
coverage of the 90 % interval, Spearman correlation of the ranking.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nsm_sim.data import check_frame, starting_population
from nsm_sim.models import inference
from nsm_sim.simulate import PosteriorDraws, posterior_draws
from nsm_sim.synth import generate_world
from nsm_sim.testing import counterfactual_comparison

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS, PERIODS, START = 3000, 36, 30

OLD_RUNNER = """
import json, sys
import numpy as np, pandas as pd
from nsm_sim.data import Population
from nsm_sim.simulate import PosteriorDraws, simulate
from nsm_sim.spec import Scenario
import nsm_sim
assert nsm_sim.__file__.startswith(sys.argv[2]), nsm_sim.__file__
folder = sys.argv[1]
arrays = dict(np.load(folder + "/posterior.npz"))
meta = json.load(open(folder + "/meta.json"))
post = PosteriorDraws(segments=tuple(meta["segments"]),
                      edges=tuple(tuple(e) for e in meta["edges"]), **arrays)
frame = pd.read_csv(folder + "/population.csv")
frame["segment"] = frame["segment"].astype(str)
pop = Population(tuple(meta["segments"]), frame)
scen = Scenario.model_validate(meta["scenario"])
res = simulate(scen, post, pop, simulations=meta["simulations"], seed=meta["seed"])
np.save(folder + "/pct.npy", res.initiatives.north_star_change_pct)
"""


def old_simulator(code: Path):
    """The simulator of the old commit, run in a subprocess on the same inputs."""

    def run(scen, post: PosteriorDraws, pop, *, simulations: int, seed: int) -> np.ndarray:
        with tempfile.TemporaryDirectory() as folder:
            arrays = {
                k: getattr(post, k)
                for k in (
                    "elasticity",
                    "churn_intercept",
                    "churn_slope",
                    "tenure_slope",
                    "hinge_jump",
                    "hinge_tau",
                )
            }
            np.savez(Path(folder) / "posterior.npz", **arrays)
            pop.frame.to_csv(Path(folder) / "population.csv", index=False)
            meta = {
                "segments": list(post.segments),
                "edges": [list(e) for e in post.edges],
                "scenario": scen.model_dump(mode="json"),
                "simulations": simulations,
                "seed": seed,
            }
            (Path(folder) / "meta.json").write_text(json.dumps(meta))
            env = {**os.environ, "PYTHONPATH": str(code)}
            subprocess.run(
                [sys.executable, "-c", OLD_RUNNER, folder, str(code)], check=True, env=env, cwd=code
            )
            return np.load(Path(folder) / "pct.npy")

    return run


def summary(table: pd.DataFrame, prefix: str) -> dict:
    mean, lo, hi = table[f"{prefix}mean"], table[f"{prefix}q05"], table[f"{prefix}q95"]
    covered = (lo <= table["truth"]) & (table["truth"] <= hi)
    rho = stats.spearmanr(mean, table["truth"]).statistic
    return {
        "mean_abs_error_pct": float(100 * (mean / table["truth"] - 1).abs().mean()),
        "max_abs_error_pct": float(100 * (mean / table["truth"] - 1).abs().max()),
        "coverage_90": float(covered.mean()),
        "spearman": float(rho),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[31, 47, 59])
    parser.add_argument("--before", default="1ce69fd", help="commit of the code to compare with")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--simulations", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as old_code:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "nsm_sim"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", old_code], input=archive, check=True)
        before = old_simulator(Path(old_code))
        tables = []
        for seed in args.seeds:
            world = {"accounts": ACCOUNTS, "periods": PERIODS, "seed": seed}
            w = generate_world(**world)
            cut = w.panel[w.panel["period"] < np.sort(w.panel["period"].unique())[START]]
            panel = check_frame(cut, w.tree)
            t = time.perf_counter()
            fit = inference.fit(panel, draws=args.draws, tune=args.draws, chains=2, seed=1)
            fit_s = time.perf_counter() - t
            post = posterior_draws(fit.idata, w.tree)
            pop = starting_population(panel)
            common = {"simulations": args.simulations, "seed": 0}
            after = counterfactual_comparison(world, START, post, pop, **common)
            old = counterfactual_comparison(world, START, post, pop, simulator=before, **common)
            table = after.rename(columns={c: f"after_{c}" for c in after.columns[7:]})
            for c in ("mean", "q05", "q95", "error"):
                table[f"before_{c}"] = old[c]
            table.insert(0, "world", seed)
            tables.append(table)
            status = fit.diagnostics["status"].eq("PASS").all()
            print(f"\n### World seed {seed} (fit {fit_s:.0f} s, trust gates pass: {status})\n")
            print(
                "| initiative | share | lift | reach | ramp | truth % "
                "| before % [90 %] | after % [90 %] |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for r in table.itertuples():
                print(
                    f"| {r.target} | {r.share:.2f} | {r.lift:.0%} | {r.reach:.0%} | {r.ramp} "
                    f"| {r.truth:.2f} | {r.before_mean:.2f} [{r.before_q05:.2f}, "
                    f"{r.before_q95:.2f}] | {r.after_mean:.2f} [{r.after_q05:.2f}, "
                    f"{r.after_q95:.2f}] |"
                )
        everything = pd.concat(tables, ignore_index=True)
        print("\n| simulator | mean abs. error | max abs. error | 90 % coverage | Spearman (min) |")
        print("| --- | --- | --- | --- | --- |")
        for label, prefix in (("before", "before_"), ("after", "after_")):
            whole = summary(everything, prefix)
            worst = min(summary(t, prefix)["spearman"] for t in tables)
            print(
                f"| {label} | {whole['mean_abs_error_pct']:.1f} % | "
                f"{whole['max_abs_error_pct']:.1f} % | {whole['coverage_90']:.0%} | {worst:.3f} |"
            )


if __name__ == "__main__":
    main()
