"""Same seed, same numbers: on a cold compile cache and a warm one, in new processes."""

import json
import os
import subprocess
import sys

import pytest

NSM_SIM = [sys.executable, "-c", "from nsm_sim.cli import app; app()"]


@pytest.mark.slow
def test_validate_gives_the_same_bytes_on_a_cold_compile_cache_and_a_warm_one(tmp_path):
    world = tmp_path / "world"
    subprocess.run(
        [*NSM_SIM, "generate", "--out", str(world), "--accounts", "300", "--periods", "20"],
        check=True,
        capture_output=True,
    )
    cache = tmp_path / "compiled"
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={cache}", "MPLBACKEND": "Agg"}
    command = [
        *NSM_SIM,
        "validate",
        str(world / "tree.yaml"),
        "--data",
        str(world / "panel.csv"),
        "--seed",
        "7",
        "--json",
    ]
    runs = []
    for _ in ("cold", "warm"):
        done = subprocess.run(command, env=env, capture_output=True, timeout=900)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        runs.append(done.stdout)
    assert any(cache.rglob("*.so")), "the first run compiled into the empty cache"
    assert runs[0] == runs[1]
    payload = json.loads(runs[0])
    assert payload["north_star"] == "projects_completed"
    assert len(payload["metrics"]) >= 3
