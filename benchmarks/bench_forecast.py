"""Backtest of the forecast: rolling origin on synthetic worlds, coverage and calibration.

Run: ``python benchmarks/bench_forecast.py`` (defaults below; ``--quick`` for one world and one
cutoff). Each world is generated over ``--periods`` weeks; for each cutoff the models are
fitted on the weeks before it only (:func:`nsm_sim.models.inference.fit`, the forecast's
history with it), the forecast is made for the ``--horizon`` weeks after it, and each
projected week is scored against what the world realised in it (the later weeks of the same
world: accounts there at the cutoff and accounts that joined after, with their churn and the
period shocks). For the three aggregates (``sum``, ``mean``, ``{at_least: 7.5}``):

- **coverage** of the 90 % band (share of cutoffs x horizons whose realised value lies within
  p5..p95; budget 80-95 %), and the mean absolute percentage error of the mean forecast;
- **calibration of P(target)**: for each cutoff and horizon, targets at 0.9, 1.0 and 1.1 times
  the last observed value; the forecast's P(reaching it) against whether the world reached it
  (Brier score, and the mean P against the share reached in bins of P).

Prints markdown tables; ``--json PATH`` also writes every scored point.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from nsm_sim.data import check_frame
from nsm_sim.forecast import fit_forecast_model, forecast, panel_history
from nsm_sim.models import inference
from nsm_sim.simulate import posterior_draws
from nsm_sim.spec import AtLeast, Initiative, Scenario
from nsm_sim.synth import generate_world

AGGREGATES = {"sum": "sum", "mean": "mean", "at_least_7.5": AtLeast(at_least=7.5)}
WORLDS = {
    "default seed 5": {"seed": 5},
    "default seed 6": {"seed": 6},
    "residual_rho 0.6, seed 7": {"seed": 7, "residual_rho": 0.6},
    "churn by inactivity, seed 8": {"seed": 8, "churn": "inactivity"},
}
TARGET_FACTORS = (0.9, 1.0, 1.1)


def realised(panel: pd.DataFrame, ns: str) -> pd.DataFrame:
    """The aggregates per period of a world's panel."""
    g = panel.groupby("period", sort=True)[ns]
    return pd.DataFrame(
        {
            "sum": g.sum(),
            "mean": g.mean(),
            "at_least_7.5": g.apply(lambda x: float((x >= 7.5).sum())),
        }
    )


def backtest_world(
    label: str,
    options: dict,
    accounts: int,
    periods: int,
    cutoffs: list[int],
    horizon: int,
    simulations: int,
    draws: int,
) -> list[dict]:
    """Score the forecast at every cutoff of one world."""
    world = generate_world(accounts=accounts, periods=periods, **options)
    truth = realised(world.panel, world.tree.north_star)
    dates = truth.index
    points = []
    for cutoff in cutoffs:
        started = time.perf_counter()
        cut = world.panel[world.panel["period"] < dates[cutoff]]
        panel = check_frame(cut, world.tree, source=f"{label} to week {cutoff}")
        fit = inference.fit(panel, draws=draws, tune=draws, chains=2, seed=cutoff)
        history = panel_history(panel)
        posterior = posterior_draws(fit.idata, world.tree)
        model = fit_forecast_model(history, posterior.segments)
        fit_seconds = time.perf_counter() - started
        for name, aggregate in AGGREGATES.items():
            tree = world.tree.model_copy(update={"north_star_aggregate": aggregate})
            scenario = Scenario(
                name="backtest",
                model="tree.yaml",
                horizon=horizon,
                capacity=1.0,
                tree=tree,
                initiatives=[Initiative(name="none", target=tree.north_star, lift=0.0)],
            )
            fc = forecast(
                scenario,
                posterior,
                fit.population,
                model,
                history.frame,
                each=False,
                simulations=simulations,
                seed=cutoff,
            )
            path = fc.paths["baseline"]
            last = float(fc.observed.iloc[-1]) if name != "at_least_7.5" else None
            last_true = float(truth[name].iloc[cutoff - 1])
            for h in range(horizon):
                actual = float(truth[name].iloc[cutoff + h])
                x = path[:, h]
                x = x[np.isfinite(x)]  # as the forecast's summaries do (Forecast.warnings)
                p5, p95 = np.quantile(x, [0.05, 0.95])
                point = {
                    "world": label,
                    "cutoff": cutoff,
                    "aggregate": name,
                    "h": h + 1,
                    "actual": actual,
                    "mean": float(x.mean()),
                    "p5": float(p5),
                    "p95": float(p95),
                    "covered": bool(p5 <= actual <= p95),
                    "dropped": int(path.shape[0] - x.size),
                    "last_observed": last if last is not None else last_true,
                    "targets": [
                        {
                            "target": f * last_true,
                            "p": float(np.mean(x >= f * last_true)),
                            "reached": bool(actual >= f * last_true),
                        }
                        for f in TARGET_FACTORS
                    ],
                }
                points.append(point)
        print(
            f"  {label}, cutoff {cutoff}: fit and forecast model {fit_seconds:.0f} s",
            flush=True,
        )
    return points


def report(points: list[dict]) -> None:
    """Print the coverage and calibration tables."""
    frame = pd.DataFrame(points)
    frame["ape"] = (frame["mean"] - frame["actual"]).abs() / frame["actual"].abs()
    print("\n| aggregate | world | points | 90 % band coverage | MAPE of the mean |")
    print("| --- | --- | --- | --- | --- |")
    for (agg, world), g in frame.groupby(["aggregate", "world"], sort=False):
        print(f"| {agg} | {world} | {len(g)} | {g['covered'].mean():.0%} | {g['ape'].mean():.1%} |")
    for agg, g in frame.groupby("aggregate", sort=False):
        print(f"| {agg} | all | {len(g)} | {g['covered'].mean():.0%} | {g['ape'].mean():.1%} |")
    print("\nCoverage by horizon (all worlds, sum):")
    g = frame[frame["aggregate"] == "sum"]
    by_h = g.groupby("h")["covered"].mean()
    print("| h | " + " | ".join(str(h) for h in by_h.index) + " |")
    print("| --- " * (len(by_h) + 1) + "|")
    print("| coverage | " + " | ".join(f"{v:.0%}" for v in by_h) + " |")
    targets = [{"aggregate": p["aggregate"], **t} for p in points for t in p["targets"]]
    t = pd.DataFrame(targets)
    print("\n| aggregate | targets | Brier | Brier of 0.5 | mean P | share reached |")
    print("| --- | --- | --- | --- | --- | --- |")
    for agg, g in t.groupby("aggregate", sort=False):
        brier = float(np.mean((g["p"] - g["reached"]) ** 2))
        print(
            f"| {agg} | {len(g)} | {brier:.3f} | 0.250 | {g['p'].mean():.2f} | "
            f"{g['reached'].mean():.2f} |"
        )
    bins = pd.cut(t["p"], [-0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    print("\n| P(target) bin | targets | mean P | share reached |")
    print("| --- | --- | --- | --- |")
    for b, g in t.groupby(bins, observed=True):
        print(f"| {b} | {len(g)} | {g['p'].mean():.2f} | {g['reached'].mean():.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--periods", type=int, default=66)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[39, 46, 53])
    parser.add_argument("--horizon", type=int, default=13)
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    worlds = dict(list(WORLDS.items())[:1]) if args.quick else WORLDS
    cutoffs = args.cutoffs[:1] if args.quick else args.cutoffs
    points = []
    started = time.perf_counter()
    for label, options in worlds.items():
        points += backtest_world(
            label,
            options,
            args.accounts,
            args.periods,
            cutoffs,
            args.horizon,
            args.simulations,
            args.draws,
        )
    print(f"\n{len(points)} points in {time.perf_counter() - started:.0f} s")
    report(points)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(points, handle, indent=1)


if __name__ == "__main__":
    main()
