"""Fuzz the command line: thousands of hostile runs, none may end in a traceback.

``python benchmarks/fuzz_cli.py --examples 2000`` draws runs of ``nsm-sim`` from the
strategies of ``tests/hostile_inputs.py`` (mutated tree, scenario and panel files, hostile
flags and output paths, damaged fit bundles), invokes each in-process and checks the
exit-code contract: 0 or 2, never a traceback. It prints how many runs each command had,
their exit codes, the time taken, and every run that broke the contract (with its
arguments). Commands that would sample a model are drawn only with an argument that is
refused up front.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile_inputs import cli_run, contract_broken, make_inputs, run  # noqa: E402


def main() -> int:
    """Run the fuzzing and print its results (exit status 1 if any run broke the contract)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="Runs to draw.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the draws.")
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nsm-fuzz-"))
    inputs = make_inputs(root / "inputs")
    counts: Counter = Counter()
    broken: list[tuple[list[str], str]] = []
    started = time.perf_counter()
    number = iter(range(10**9))

    @seed(options.seed)
    @settings(
        max_examples=options.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = root / f"case{next(number)}"
        args = data.draw(cli_run(inputs, case))
        result = run(args)
        counts[args[0], result.exit_code] += 1
        problem = contract_broken(result)
        if problem is not None:
            broken.append((args, problem))

    fuzz()
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    print(f"runs: {total:,} in {seconds:,.0f} s ({seconds / max(total, 1) * 1000:,.0f} ms each)")
    commands = sorted({command for command, _ in counts})
    exits = sorted({code for _, code in counts})
    print("| command | runs | " + " | ".join(f"exit {code}" for code in exits) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in exits) + " |")
    for command in commands:
        row = [counts[command, code] for code in exits]
        print(f"| {command} | {sum(row)} | " + " | ".join(str(n) for n in row) + " |")
    row = [sum(counts[c, code] for c in commands) for code in exits]
    print(f"| all | {sum(row)} | " + " | ".join(str(n) for n in row) + " |")
    print(f"runs that broke the contract (traceback, or exit code not 0 or 2): {len(broken)}")
    for args, problem in broken[:50]:
        print(f"  nsm-sim {' '.join(args)}\n    {problem}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
