"""The churn cells' cost: ``nsm-sim fit`` and the validation's churn fits, checkouts interleaved.

    python benchmarks/bench_churn_cells.py --world DIR --code NAME=DIR [NAME=DIR ...]
        [--repeats 3]

For each checkout of nsm_sim (``PYTHONPATH=DIR``, e.g. a ``git worktree`` of an earlier
commit), each in a new process, in turn and repeated (``--repeats``), so that a load that
comes and goes on a shared machine falls on all of them alike:

- ``fit``: ``nsm-sim fit TREE --data PANEL --out TMP --json`` (4 chains x 500 draws);
- ``validate``: :func:`nsm_sim.leading.predictive_power` on the North Star and the
  candidates (training and in-sample fits, PSIS-LOO), then
  :func:`nsm_sim.leading.hinge.threshold_fit`, as ``nsm-sim validate`` runs them.

The world's files must be readable by every checkout: write them with the oldest
(``PYTHONPATH=OLDEST nsm-sim generate``; later trees only add optional keys). Reported per
checkout: the medians of the wall time and of the CPU time (the process and
its children: on a shared machine the CPU time is the steadier), the churn cells of the fit
and of the threshold fit, and a few answers (the churn slope, the out-of-time log-loss, the
threshold) so that faster is not bought with different answers. The first repeat of each
checkout compiles its models (the compile caches are the default ones).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIT = "from nsm_sim.cli import app; app()"

VALIDATE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from nsm_sim.data import churn_cells, load_panel
try:
    from nsm_sim.leading.hinge import THRESHOLD_BINS, threshold_fit
except ImportError:  # before the module's rename
    from nsm_sim.leading.threshold import THRESHOLD_BINS, threshold_fit
from nsm_sim.leading.posterior import RetentionSampler
from nsm_sim.leading.predictive import predictive_power
from nsm_sim.spec import load_tree
tree = load_tree(sys.argv[1])
panel = load_panel(sys.argv[2], tree)
sampling = RetentionSampler()
t0 = time.perf_counter()
power = predictive_power(panel, seed=0, sampling=sampling)
t1 = time.perf_counter()
thr, _ = threshold_fit(panel, seed=0, sampling=sampling)
t2 = time.perf_counter()
scores = power.scores.set_index("metric")
print(json.dumps({
    "predictive": t1 - t0,
    "threshold": t2 - t1,
    "cells": len(churn_cells(panel).frame),
    "threshold_cells": len(churn_cells(panel, bins=THRESHOLD_BINS).frame),
    "log_loss": {m: round(float(v), 5) for m, v in scores["log_loss"].items()},
    "skill": {m: round(float(v), 4) for m, v in scores["skill"].items()},
    "tau": thr.get("tau"),
    "threshold_rhat": thr.get("rhat_max"),
}))
"""


def run(args: list[str], code: str, cwd: str) -> tuple[float, float, str]:
    """Run python with ``args`` in a new process; return its wall and CPU time and stdout."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=code)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{args[:3]} failed with {code}:\n{done.stderr[-3000:]}")
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="panel.csv and tree.yaml")
    parser.add_argument("--code", nargs="+", required=True, help="NAME=DIR of a checkout")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    tree, panel = str(options.world / "tree.yaml"), str(options.world / "panel.csv")
    codes = dict(item.split("=", 1) for item in options.code)
    found: dict[str, dict[str, list]] = {name: {} for name in codes}
    with tempfile.TemporaryDirectory() as cwd:
        for repeat in range(options.repeats):
            for name, code in codes.items():
                out = str(Path(cwd) / f"fit-{name}-{repeat}")
                wall, cpu, stdout = run(
                    ["-c", FIT, "fit", tree, "--data", panel, "--out", out, "--json"], code, cwd
                )
                fit = json.loads(stdout)
                slope = [
                    r for r in fit["retention"] if r["segment"] is None and r["term"] == fit_ns(fit)
                ]
                record(found[name], "fit_wall", wall)
                record(found[name], "fit_cpu", cpu)
                record(found[name], "churn_slope", slope[0]["mean"] if slope else None)
                wall, cpu, stdout = run(["-c", VALIDATE, tree, panel], code, cwd)
                answer = json.loads(stdout)
                record(found[name], "validate_wall", wall)
                record(found[name], "validate_cpu", cpu)
                for key, value in answer.items():
                    record(found[name], key, value)
                print(
                    name, repeat, json.dumps({k: v[-1] for k, v in found[name].items()}), flush=True
                )
    print()
    print(
        "| code | cells (fit / threshold) | fit wall / CPU s | validate wall / CPU s "
        "| predictive s | threshold s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, got in found.items():
        med = {k: statistics.median(v) for k, v in got.items() if isinstance(v[0], float | int)}
        print(
            f"| {name} | {got['cells'][0]:,} / {got['threshold_cells'][0]:,} "
            f"| {med['fit_wall']:.1f} / {med['fit_cpu']:.1f} "
            f"| {med['validate_wall']:.1f} / {med['validate_cpu']:.1f} "
            f"| {med['predictive']:.1f} | {med['threshold']:.1f} |"
        )


def fit_ns(fit: dict) -> str:
    """The North Star's slope term of a fit's JSON: the first term after the intercepts."""
    return next(r["term"] for r in fit["retention"] if r["term"] != "intercept")


def record(into: dict, key: str, value) -> None:
    into.setdefault(key, []).append(value)


if __name__ == "__main__":
    main()
