"""``nsm-sim validate`` on the demo world, cold and warm, each run a new process.

    python benchmarks/bench_validate.py [--repeats 3] [--cold-repeats 1] [--world DIR]
        [--code DIR [DIR ...]]

The demo world (``nsm-sim generate``: 5,000 accounts x 52 weeks, seed 0) is validated by
``nsm-sim validate TREE --data PANEL --json`` (the North Star and two candidates: 8 fits of
the churn model, 2 chains x 300 draws after 300 tuning steps each). *Cold*: the compile
caches are new and empty (``PYTENSOR_FLAGS=base_compiledir=<new temp dir>`` and
``NUMBA_CACHE_DIR=<the same>``), as on a fresh machine. *Warm*: the default caches, filled by
an untimed run first, as for every later validation. Reported: the medians of the process's
wall time and of the validation's own stages (``timings`` of the JSON output, where a version
prints them), and the verdicts.

``--code DIR ...`` runs other checkouts of nsm_sim (``PYTHONPATH=DIR``, e.g. a ``git
worktree`` of an earlier commit; ``installed`` for the installed one) on the same world, their
warm runs interleaved, so that a load that comes and goes on a shared machine falls on all of
them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "from nsm_sim.cli import app; app()"


def run_cli(args: list[str], *, code: str | None, cache: str | None, cwd: str) -> tuple[float, str]:
    """Run the CLI in a new process; return its wall time and stdout."""
    env = dict(os.environ, MPLBACKEND="Agg")
    if code:
        env["PYTHONPATH"] = code
    if cache:
        env["PYTENSOR_FLAGS"] = f"base_compiledir={cache}"
        env["NUMBA_CACHE_DIR"] = cache
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"nsm-sim {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def measure(world: Path, *, code: str | None, cold: bool, cwd: str) -> dict:
    """One validation run; cold runs get compile caches of their own."""
    args = ["validate", str(world / "tree.yaml"), "--data", str(world / "panel.csv"), "--json"]
    with tempfile.TemporaryDirectory(prefix="nsm-bench-cache-") as cache:
        seconds, out = run_cli(args, code=code, cache=cache if cold else None, cwd=cwd)
    result = json.loads(out)
    verdicts = {m["metric"]: m["verdict"] for m in result["metrics"]}
    stages = result.get("timings") or {}  # not in the JSON of every version
    return {"process": seconds, **stages, "verdicts": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs")
    parser.add_argument("--cold-repeats", type=int, default=1, help="cold runs")
    parser.add_argument("--world", type=Path, help="folder with panel.csv and tree.yaml")
    parser.add_argument(
        "--code", nargs="+", default=["installed"], help="checkouts of nsm_sim to run"
    )
    args = parser.parse_args()
    codes = {label: None if label == "installed" else label for label in args.code}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs = {(label, cache): [] for label in codes for cache in ("cold", "warm")}
    with tempfile.TemporaryDirectory(prefix="nsm-bench-") as tmp:
        world = args.world
        if world is None:
            world = Path(tmp) / "world"
            run_cli(["generate", "--out", str(world)], code=None, cache=None, cwd=tmp)
        for label, code in codes.items():
            for _ in range(args.cold_repeats):
                runs[(label, "cold")].append(measure(world, code=code, cold=True, cwd=tmp))
            measure(world, code=code, cold=False, cwd=tmp)  # fills the default caches
        for _ in range(args.repeats):
            for label, code in codes.items():
                runs[(label, "warm")].append(measure(world, code=code, cold=False, cwd=tmp))
    stages = ("predictive", "threshold", "total")
    print(
        "\n| code | cache | runs | process median (s) | predictive (s) | threshold (s) | "
        "stages total (s) | process times (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (label, cache), rs in runs.items():
        if not rs:
            continue
        med = {
            k: f"{statistics.median(r[k] for r in rs):.1f}" if all(k in r for r in rs) else "n/a"
            for k in ("process", *stages)
        }
        each = ", ".join(f"{r['process']:.1f}" for r in rs)
        print(
            f"| {label} | {cache} | {len(rs)} | {med['process']} | {med['predictive']} "
            f"| {med['threshold']} | {med['total']} | {each} |"
        )
    for label in codes:
        verdicts = {
            json.dumps(r["verdicts"], sort_keys=True)
            for (lab, _), rs in runs.items()
            if lab == label
            for r in rs
        }
        print(f"\nverdicts ({label}): {', '.join(sorted(verdicts))}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
