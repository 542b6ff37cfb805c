"""Sampler back-ends on the demo fit (5,000 accounts x 52 weeks), cold and warm.

    python benchmarks/bench_samplers.py [--repeats 3] [--other-repeats 1]
        [--samplers nutpie pymc nutpie-numba]

Every run is a new Python process that loads the demo panel and calls ``inference.fit``
(drivers + retention, 4 chains x 500 draws after 500 tuning steps). *Cold*: PyTensor's
compile directory is new and empty (``PYTENSOR_FLAGS=base_compiledir=<new temp dir>``), as on
a fresh machine. *Warm*: the compile directory was filled by an earlier, untimed run, as for
a second fit. Reported: medians of the repeats of the fit's wall time and of the effective
samples per second (smallest bulk ESS over every posterior variable / fit seconds).

Samplers: ``nutpie`` (the default: nutpie's NUTS on a PyTensor C-backend log density, see
``nsm_sim.models.inference``), ``pymc`` (PyMC's NUTS, 2 processes) and ``nutpie-numba``
(nutpie's own PyMC path, ``nutpie.compile_pymc_model(backend="numba")``, for the record: it
compiles a numba callback in every process), and ``numpyro`` when jax and numpyro are
installed (they are not dependencies of nsm_sim; ``pip install numpyro`` in the benchmark's
environment):
``pm.sample(nuts_sampler="numpyro")``, 4 chains in parallel on 4 XLA host devices, with the
drivers' integrated likelihood (a Python operation in nsm_sim) written in ``jax.numpy`` below.
The numpyro and nutpie-numba rows time the model's sampling only, not the whole
``inference.fit`` (no elasticity or threshold draws, no predictive checks).
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


def register_jax_marginal() -> None:
    """Give the drivers' integrated likelihood a JAX implementation (for numpyro)."""
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    from nsm_sim.models.elasticities import MarginalBhatLogp

    @jax_funcify.register(MarginalBhatLogp)
    def _marginal(op, **kwargs):
        sizes = jnp.asarray(op.sizes, dtype=float)

        def marginal(bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var):
            J, S, K = bhat.shape
            eye = jnp.eye(K)
            bhat = bhat - mu_mean[:, None, :]
            W = sigma2[..., None, None] * sxx_inv + tau2[:, None, :, None] * eye
            _, logdet_w = jnp.linalg.slogdet(W)
            w_inv = jnp.linalg.inv(W)
            P = w_inv.sum(axis=1) + eye / mu_var[:, :, None]
            _, logdet_p = jnp.linalg.slogdet(P)
            p_inv = jnp.linalg.inv(P)
            r_s = (w_inv @ bhat[..., None])[..., 0]
            r = r_s.sum(axis=1)
            quad = (bhat * r_s).sum(axis=(1, 2)) - (r * (p_inv @ r[..., None])[..., 0]).sum(1)
            logdet_c = (
                logdet_w.sum(axis=1)
                + logdet_p
                - (K - sizes) * jnp.log(S + 1.0)
                + jnp.log(mu_var).sum(axis=1)
            )
            logp = -0.5 * quad - 0.5 * logdet_c - 0.5 * S * sizes * jnp.log(2.0 * jnp.pi)
            # the gradient outputs are not needed: JAX differentiates the log density itself
            return logp, jnp.zeros((J, S)), jnp.zeros((J, K))

        return marginal


def child(sampler: str, world_dir: str) -> None:
    t0 = time.perf_counter()
    if sampler == "numpyro":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import arviz as az
    import numpy as np

    from nsm_sim import data
    from nsm_sim.models import inference
    from nsm_sim.spec import load_tree

    tree = load_tree(Path(world_dir) / "tree.yaml")
    panel = data.load_panel(Path(world_dir) / "panel.csv", tree)
    t_loaded = time.perf_counter()
    if sampler == "nutpie-numba":
        import nutpie

        stats = {p: data.driver_stats(panel, p) for p in tree.children}
        cells = data.churn_cells(panel)
        model = inference.build_fit_model(stats, cells, tree)
        t = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        idata = nutpie.sample(compiled, draws=500, tune=500, chains=4, seed=0, progress_bar=False)
        fit_seconds = time.perf_counter() - t
        post = idata.posterior[[v for v in idata.posterior.data_vars if not v.endswith("__")]]
        divergences = int(idata.sample_stats["diverging"].sum())
        status = "n/a"
    elif sampler == "numpyro":
        import pymc as pm

        register_jax_marginal()
        stats = {p: data.driver_stats(panel, p) for p in tree.children}
        cells = data.churn_cells(panel)
        model = inference.build_fit_model(stats, cells, tree)
        t = time.perf_counter()
        with model:
            idata = pm.sample(
                draws=500,
                tune=500,
                chains=4,
                random_seed=0,
                nuts_sampler="numpyro",
                progressbar=False,
                nuts_sampler_kwargs={"chain_method": "parallel"},
            )
        fit_seconds = time.perf_counter() - t
        post = idata.posterior
        divergences = int(idata.sample_stats["diverging"].sum())
        status = "n/a"
    else:
        t = time.perf_counter()
        fit = inference.fit(panel, sampler=sampler, seed=0)
        fit_seconds = time.perf_counter() - t
        post = fit.idata.posterior
        divergences = fit.card["diagnostics"]["divergences"]
        status = fit.card["diagnostics"]["status"]
    ess = az.ess(post, method="bulk")
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    print(
        json.dumps(
            {
                "fit_seconds": fit_seconds,
                "process_seconds": time.perf_counter() - t0,
                "load_seconds": t_loaded - t0,
                "min_ess_bulk": min_ess,
                "ess_per_second": min_ess / fit_seconds,
                "divergences": divergences,
                "status": status,
            }
        )
    )


def run(sampler: str, world_dir: str, compiledir: str) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}")
    out = subprocess.run(
        [sys.executable, __file__, "--child", sampler, "--world", world_dir],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--other-repeats", type=int, default=None, help="repeats of the non-default samplers"
    )
    parser.add_argument("--samplers", nargs="+", default=["nutpie", "pymc", "nutpie-numba"])
    parser.add_argument("--child")
    parser.add_argument("--world")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.world)
        return
    from nsm_sim.synth import generate_world, write_world

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        world_dir = str(Path(tmp) / "world")
        write_world(generate_world(accounts=5000, periods=52, seed=0), world_dir)
        warm_dir = str(Path(tmp) / "warm")
        results = []
        for sampler in args.samplers:
            run(sampler, world_dir, warm_dir)  # untimed: fills the warm compile directory
            for kind in ("cold", "warm"):
                runs = []
                n = args.repeats if sampler == "nutpie" else (args.other_repeats or args.repeats)
                for r in range(n):
                    cdir = str(Path(tmp) / f"cold-{sampler}-{r}") if kind == "cold" else warm_dir
                    runs.append(run(sampler, world_dir, cdir))
                results.append((sampler, kind, runs))
                print(sampler, kind, json.dumps(runs), flush=True)
    print()
    print(
        "| sampler | cache | fit median (s) | process median (s) | min bulk ESS | ESS/s median "
        "| divergences | diagnostics |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for sampler, kind, runs in results:
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "status"}
        status = "/".join(sorted({str(r["status"]) for r in runs}))
        print(
            f"| {sampler} | {kind} | {med['fit_seconds']:.1f} | {med['process_seconds']:.1f} "
            f"| {med['min_ess_bulk']:.0f} | {med['ess_per_second']:.1f} "
            f"| {med['divergences']:.0f} | {status} |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
