"""Latency of an edit on the planning page: request to results, over HTTP, on a fit bundle.

Starts the page's server in this process on a free port (the bundle read once, as
``nsm-sim serve`` does), then sends the same kind of edit the page sends (an initiative's
upper lift, alternating between two values so that every request simulates again) and
times each request from send to the last byte of the JSON results. Reports the median and
the 90th percentile of the wall time, and the median CPU time of the process per edit (the
machine's other load shows in the wall time, not in the CPU time), for each number of
simulations per edit; and, for scale, the round trip of a static file (the server's own
overhead).

    python benchmarks/bench_serve.py --fit nsm-demo/fit [--scenario scenarios/demo.yaml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from nsm_sim.serve import Planner, make_server

ROOT = Path(__file__).resolve().parents[1]


def _post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def measure(scenario: Path, fit: Path, simulations: int, repeats: int) -> dict:
    started = time.perf_counter()
    planner = Planner.open([scenario], fit, simulations=simulations)
    planner.state(0)  # what the page asks for first: charts built, results simulated once
    startup = time.perf_counter() - started
    server = make_server(planner, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = "http://{}:{}".format(*server.server_address[:2])
    name = planner.documents[0].scenario.initiatives[0].name
    wall, cpu = [], []
    try:
        for k in range(repeats):
            body = {
                "scenario": 0,
                "initiative": name,
                "field": "lift_high",
                "value": ["12%", "14%"][k % 2],
            }
            t0, c0 = time.perf_counter(), time.process_time()
            payload = json.loads(_post(f"{base}/api/edit", body))
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert payload["results"]["ranking"], "no ranking in the results"
        static = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _get(f"{base}/static/page.css")
            static.append(time.perf_counter() - t0)
    finally:
        server.shutdown()
        server.server_close()
    wall.sort()
    return {
        "simulations": simulations,
        "startup_s": startup,
        "edit_median_ms": 1000 * statistics.median(wall),
        "edit_p90_ms": 1000 * wall[int(0.9 * (len(wall) - 1))],
        "edit_cpu_median_ms": 1000 * statistics.median(cpu),
        "static_median_ms": 1000 * statistics.median(static),
        "forecast": payload["results"]["forecast"] is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", type=Path, required=True)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "demo.yaml")
    parser.add_argument("--simulations", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    print("simulations  startup_s  edit_median_ms  edit_p90_ms  edit_cpu_median_ms  static_ms")
    for n in args.simulations:
        r = measure(args.scenario, args.fit, n, args.repeats)
        print(
            f"{r['simulations']:>11}  {r['startup_s']:>9.1f}  {r['edit_median_ms']:>14.0f}  "
            f"{r['edit_p90_ms']:>11.0f}  {r['edit_cpu_median_ms']:>18.0f}  "
            f"{r['static_median_ms']:>9.1f}"
            + ("" if r["forecast"] else "  (no forecast: the bundle has no history)")
        )


if __name__ == "__main__":
    main()
