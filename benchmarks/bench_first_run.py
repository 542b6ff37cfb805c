"""A newcomer's first ten minutes: install into a fresh venv, then the demo twice.

What the README promises, measured as a newcomer meets it: a new virtual environment, ``pip
install .`` of this checkout, an empty PyTensor compile directory (``PYTENSOR_FLAGS=
base_compiledir=...``), then ``nsm-sim demo`` (the first run compiles every model) and
``nsm-sim demo`` again (a second process that finds the compiled models). Prints the install
time, the wall time of each demo, each demo's stage lines, and whether anything that looks like a
stray warning reached the terminal.

Run::

    python benchmarks/bench_first_run.py            # about 5-8 minutes on 2 cores
    python benchmarks/bench_first_run.py --keep /tmp/first-run   # keep the venv and outputs

Budgets (issue "the first ten minutes"): first demo under 2 minutes, second under 45 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STRAY = re.compile(r"(Warning|warnings\.warn|site-packages|Traceback)")


def run(cmd, env, cwd):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="nsm-first-run-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    venv, compiledir, cwd = work / "venv", work / "pytensor", work / "run"
    compiledir.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTENSOR", "VIRTUAL_ENV"))}
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    env["MPLBACKEND"] = "Agg"
    env["COLUMNS"] = "80"

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    t_install, proc = run([*pip, "--disable-pip-version-check", str(REPO)], env, cwd)
    if proc.returncode:
        sys.exit(f"pip install failed:\n{proc.stderr[-3000:]}")
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 2**20
    print(f"pip install .: {t_install:.0f} s, venv {size:,.0f} MB")

    nsm = str(venv / "bin" / "nsm-sim")
    for label in ("first demo (empty compile directory)", "second demo (a new process)"):
        out = cwd / "nsm-demo"
        seconds, proc = run([nsm, "demo", "--out", str(out)], env, cwd)
        if proc.returncode:
            sys.exit(f"{label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        stages = [line for line in proc.stderr.splitlines() if re.search(r"\(\d+ s\)$", line)]
        stray = [line for line in (proc.stderr + proc.stdout).splitlines() if STRAY.search(line)]
        print(f"{label}: {seconds:.0f} s")
        for line in stages:
            print(f"    {line.strip()}")
        compiling = "compiling the models once" in proc.stderr
        print(f"    says it compiles: {compiling}; stray warning lines: {len(stray)}")
        for line in stray[:5]:
            print(f"      {line}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
