"""The fast test tier's wall and CPU time, each run a new process.

    python benchmarks/bench_tests.py [--repeats 3] [--workers 0 2] [--code DIR [DIR ...]]
        [--marker "not slow"]

Runs ``python -m pytest -m "not slow" -q -p no:cacheprovider -n N`` from a checkout's folder,
once per worker count (``0``: one process; ``2``: two pytest-xdist workers), the variants
interleaved so that a load that comes and goes on a shared machine falls on all of them alike.
Reported per variant: the median wall time, the median CPU time of pytest and everything it
waited for (``user + sys`` of the children), the number of tests passed, and the load average
before and after. Each run also says how long the host held this machine's cores for others
(*stolen*, from ``/proc/stat``, summed over the cores; Linux guests only): on a shared machine it
tells a slow run from a slow suite.

``--code DIR ...`` runs the suites of other checkouts (e.g. ``git worktree add /tmp/before
<commit>``), each from its own folder with ``PYTHONPATH=DIR``, so that an earlier commit's
tests and code are timed against today's.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def children_cpu() -> float:
    """CPU seconds (user + sys) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stolen() -> float:
    """Seconds of the cores' time the host gave to others so far (0 where not reported)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def run_tier(code: Path, workers: int, marker: str) -> dict:
    """One run of the tier; its wall time, CPU time, time stolen and the tests passed."""
    command = [sys.executable, "-m", "pytest", "-m", marker, "-q", "-p", "no:cacheprovider"]
    command += ["-n", str(workers)]  # 0 too: the checkouts' addopts may start workers
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(code))
    cpu, steal, start = children_cpu(), stolen(), time.perf_counter()
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    wall, cpu, steal = time.perf_counter() - start, children_cpu() - cpu, stolen() - steal
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    if done.returncode != 0:
        raise RuntimeError(f"the tier failed in {code} with -n {workers}:\n{tail}")
    passed = re.search(r"(\d+) passed", tail)
    passed = int(passed.group(1)) if passed else 0
    return {"wall": wall, "cpu": cpu, "stolen": steal, "passed": passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="xdist workers (0: one process)"
    )
    parser.add_argument("--code", type=Path, nargs="+", default=[HERE], help="checkouts to run")
    parser.add_argument("--marker", default="not slow", help="the tier's -m expression")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    variants = [(code.resolve(), n) for code in args.code for n in args.workers]
    runs: dict[tuple[Path, int], list[dict]] = {v: [] for v in variants}
    for repeat in range(args.repeats):
        for code, workers in variants:
            result = run_tier(code, workers, args.marker)
            runs[(code, workers)].append(result)
            print(
                f"  run {repeat + 1}: {code} -n {workers}: {result['wall']:.1f} s wall, "
                f"{result['cpu']:.1f} s CPU, {result['stolen']:.1f} s stolen, "
                f"{result['passed']} passed, "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'checkout':<40} {'-n':>3} {'wall (median)':>14} {'CPU (median)':>13} {'passed':>7}")
    for (code, workers), results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        print(
            f"{str(code):<40} {workers:>3} {wall:>12.1f} s {cpu:>11.1f} s {results[0]['passed']:>7}"
        )


if __name__ == "__main__":
    main()
