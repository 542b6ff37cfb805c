"""Events to sufficient statistics in the query engine at 10M, 100M and 1B events, and the fit.

Run: ``python benchmarks/bench_reduce.py`` (10M and 100M events on DuckDB);
``--sizes 1e9`` for a billion; ``--engine spark --sizes 1e7`` for Spark in local mode;
``--fit 1e9`` to fit the reduction of that size's events and, for comparison, the demo's
panel in memory.

The event logs are the demo world (5,000 accounts x 52 weeks, seed 0) with each metric's
value per account and week split into many events
(:func:`nsm_sim.events.synthetic.write_scaled_events`), written file by file (20M events
each) under ``/tmp/nsm-sim-bench/world_<events>/`` and kept for the next run: the panel they
build is the demo's exactly, whatever their number, so the fit on them must recover the
demo's truth. Each reduction runs in a fresh process: the whole build with every check of
the source, then the reduction, both in the engine (``nsm_sim.events.reduce_events``).
Reported: wall and CPU time, the process's peak resident memory (Spark: the driver's and
the JVM's), the bytes of every query result that came back to Python, and the pickled
reduction.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("/tmp/nsm-sim-bench")
ACCOUNTS, WEEKS, SEED = 5000, 52, 0


def folder(events: int) -> Path:
    return ROOT / f"world_{events}"


def generate(events: int) -> tuple[float | None, int]:
    """Write the log once (kept); return the seconds it took (None when kept) and its events."""
    from nsm_sim.events.synthetic import write_scaled_events

    out = folder(events)
    marker = out / "written.json"
    if marker.exists():
        return None, json.loads(marker.read_text())["events"]
    started = time.perf_counter()
    paths = write_scaled_events(out, events, accounts=ACCOUNTS, periods=WEEKS, seed=SEED)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"events": paths["written"], "seconds": seconds}))
    return seconds, paths["written"]


def _count_bytes(counter: dict) -> None:
    """Count the pickled bytes of every result a session returns to Python, and time each
    statement it runs (``counter["slowest"]``: seconds and the statement's first words)."""
    from nsm_sim.events import engine, spark

    for cls in (engine.Session, spark.SparkSession):
        for name in ("rows", "frame"):
            original = getattr(cls, name)

            def counted(self, statement, _original=original):
                result = _original(self, statement)
                counter["bytes"] += len(pickle.dumps(result))
                counter["queries"] += 1
                return result

            setattr(cls, name, counted)
        original_run = cls.run

        def timed(self, statement, _original=original_run):
            started = time.perf_counter()
            result = _original(self, statement)
            seconds = time.perf_counter() - started
            text = " ".join(statement.sql().split())[:90]
            counter["slowest"] = sorted([*counter["slowest"], (seconds, text)])[-4:]
            return result

        cls.run = timed


def _jvm_peak_mb() -> float:
    """Peak resident memory of this process's Java children (Spark's JVM), in MB."""
    peak = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Name", "").strip() == "java" and int(fields["PPid"]) == os.getpid():
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def measure(engine: str, events: int) -> dict:
    """Reduce one log in this process."""
    from nsm_sim.events.reduction import reduce_events

    counter = {"bytes": 0, "queries": 0, "slowest": []}
    _count_bytes(counter)
    started = time.perf_counter()
    reduction = reduce_events(folder(events) / "tree.yaml", engine=engine)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(ROOT / f"reduction_{engine}_{events}.pickle", "wb") as f:
        pickle.dump(reduction, f)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "jvm_peak_mb": _jvm_peak_mb(),
        "returned": counter["bytes"],
        "queries": counter["queries"],
        "reduction_bytes": len(pickle.dumps(reduction)),
        "rows": reduction.summary["rows"],
        "fingerprint": reduction.fingerprint,
        "slowest": counter["slowest"][::-1],
    }


def fit_both(events: int) -> dict:
    """Fit the reduction of a log and the demo's panel in memory; compare with the truth."""
    import numpy as np

    from nsm_sim.data import check_frame
    from nsm_sim.models import inference
    from nsm_sim.synth import generate_world

    with open(ROOT / f"reduction_duckdb_{events}.pickle", "rb") as f:
        reduction = pickle.load(f)
    world = generate_world(accounts=ACCOUNTS, periods=WEEKS, seed=SEED)
    out = {}
    started = time.perf_counter()
    fits = {"events": inference.fit_reduction(reduction, seed=SEED)}
    out["events_fit_s"] = time.perf_counter() - started
    started = time.perf_counter()
    fits["demo"] = inference.fit(check_frame(world.panel, world.tree), seed=SEED)
    out["demo_fit_s"] = time.perf_counter() - started
    truth = world.truth
    wanted = {
        **{
            f"elasticity {e}": ("elasticity_mu", {"edge": e}, v)
            for e, v in truth["elasticities"].items()
        },
        "churn slope": ("churn_slope_mu", {}, truth["churn"]["slope"]),
        "tenure slope": ("tenure_slope", {}, truth["churn"]["tenure_slope"]),
        "hinge jump": ("hinge_jump", {}, truth["churn"]["hinge_jump"]),
        "hinge tau": ("hinge_tau", {}, truth["churn"]["hinge_tau"]),
    }
    rows = []
    for name, (var, sel, value) in wanted.items():
        row = [name, value]
        for kind in ("events", "demo"):
            draws = fits[kind].idata.posterior[var].sel(sel).values.ravel()
            low, high = np.quantile(draws, [0.05, 0.95])
            row += [float(draws.mean()), float(low), float(high)]
        rows.append(row)
    out["rows"] = rows
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e7, 1e8])
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--fit", type=float, help="fit the reduction of this size's events")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--fit-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    if args.fit_one:
        print(json.dumps(fit_both(args.fit_one)))
        return
    import duckdb

    print(
        f"duckdb {duckdb.__version__}; the demo world ({ACCOUNTS:,} accounts x {WEEKS} weeks) as "
        f"events; engine {args.engine}; load average before: {os.getloadavg()[0]:.2f}\n"
    )
    if args.fit:
        events = int(args.fit)
        result = _child("--fit-one", str(events))
        print(
            f"fit of the reduction of {events:,} events: {result['events_fit_s']:.1f} s; of the "
            f"demo panel in memory: {result['demo_fit_s']:.1f} s; "
            f"peak {result['peak_mb']:,.0f} MB\n"
        )
        print("| parameter | truth | events: mean | 5% | 95% | demo: mean | 5% | 95% |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, truth, *numbers in result["rows"]:
            cells = " | ".join(f"{v:.3f}" for v in numbers)
            print(f"| {name} | {truth:g} | {cells} |")
        return
    print(
        "| events | Parquet (GB) | generated (s) | account-periods | reduce (s) | s per 100M "
        "| CPU (s) | peak (MB) | returned (KB) | queries | reduction (KB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        made, events = generate(int(size))
        gb = sum(p.stat().st_size for p in (folder(int(size)) / "events").iterdir()) / 2**30
        result = _child("--one", args.engine, str(int(size)))
        peak = f"{result['peak_mb']:,.0f}"
        if args.engine == "spark":
            peak += f" + JVM {result['jvm_peak_mb']:,.0f}"
        print(
            f"| {events:,} | {gb:.2f} | {'kept' if made is None else f'{made:.0f}'} | "
            f"{result['rows']:,} | {result['wall']:.1f} | {result['wall'] / events * 1e8:.1f} | "
            f"{result['cpu']:.1f} | {peak} | {result['returned'] / 1024:,.0f} | "
            f"{result['queries']} | {result['reduction_bytes'] / 1024:,.0f} |",
            flush=True,
        )
        slowest = "; ".join(f"{sec:.1f} s {text}" for sec, text in result["slowest"])
        print(f"<!-- slowest statements: {slowest} -->", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
