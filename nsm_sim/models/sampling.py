"""Sampling: NUTS on a PyMC model, through one compiled path.

Samplers
--------
``sample(model, sampler="nutpie")`` runs nutpie's NUTS (Rust) on a log density and gradient
compiled by PyTensor's C backend; ``sampler="pymc"`` runs PyMC's own NUTS. nutpie is the
default: on the demo fit it gives several times more effective samples per second, cold and
warm (``benchmarks/bench_samplers.py``, ``benchmarks/RESULTS.md``).

Compiled models are cached across processes
-------------------------------------------
nutpie's own PyMC path (``nutpie.compile_pymc_model``, numba backend) compiles a numba C
callback around the model's log density in every new process (about 25 s for these models on
the development machine; numba cannot cache that callback because it closes over dynamic
globals), so a second fit is as slow as the first. Here the log density and its gradient are
compiled with PyTensor's C backend instead, whose compiled modules persist in PyTensor's
compile directory (``pytensor.config.compiledir``, by default under ``~/.pytensor``), and are
handed to nutpie as Python callables (``nutpie.compiled_pyfunc.from_pyfunc``). All data enter
the models as ``pm.Data``, so the compiled code does not depend on the data and a fit of new
data of the same tree finds every module in the cache. A second fit in a new process compiles
in about 2 s. Chains share one compiled function behind a lock: the model is so cheap (its
likelihood is from sufficient statistics) that Python call overhead, not arithmetic, bounds
the speed, and threads would not run it in parallel anyway: one worker thread running the
chains in turn is faster than two contending for the GIL (11.7 s against 17.8 s on the demo
fit).

Compiled once, sampled again
----------------------------
A :class:`Sampler` keeps the models it compiled: sampled again with other data (set into the
model's ``pm.Data`` containers), a model reuses its compiled log density, whose functions
read the data containers at every call, and its initial-point function, which reads them too
(starting values given as data containers follow the data). So a run that fits one model
structure to many data sets (the validation: every metric, before and after its cutoff)
compiles each structure once. The sampler lives as long as the run that made it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd

#: Samplers, the default first.
SAMPLERS = ("nutpie", "pymc")
DEFAULT_SAMPLER = SAMPLERS[0]


# --------------------------------------------------------------------------- compile + sample


def compile_nutpie(model):
    """Compile a PyMC model for nutpie with PyTensor's C backend (cached across processes).

    Parameters
    ----------
    model : pymc.Model
        The model. Free variables given an explicit ``initval`` start there in every chain
        (a data container as ``initval`` is read when the chains start); all others get
        nutpie's usual uniform(-1, 1) jitter on the unconstrained scale.

    Returns
    -------
    nutpie.compiled_pyfunc.PyFuncModel
        A model ``nutpie.sample`` accepts.
    """
    import nutpie.compiled_pyfunc
    import pytensor
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_fn
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.compile.mode import Mode

    explicit = {rv.name for rv, v in model.rvs_to_initial_values.items() if v is not None}
    ip_fn = make_initial_point_fn(
        model=model,
        return_transformed=True,
        jitter_rvs={v for v in model.free_RVs if v.name not in explicit},
    )
    point = ip_fn(0)
    value_vars = [model.rvs_to_values[v] for v in model.free_RVs]
    names = [v.name for v in value_vars]
    shapes = [tuple(np.shape(point[n])) for n in names]
    sizes = [int(np.prod(s, dtype=int)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    ndim = int(offsets[-1])
    lock = threading.Lock()

    # the rewrites PyMC and nutpie apply before differentiating (stable logsumexp, softplus)
    logp = pytensor.graph.rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])
    grad = pt.concatenate([g.ravel() for g in pytensor.grad(logp, value_vars)])
    x = pt.dvector("unconstrained_point")
    replace = {
        vv: x[offsets[i] : offsets[i + 1]].reshape(shapes[i]) for i, vv in enumerate(value_vars)
    }
    logp_x, grad_x = pytensor.clone_replace([logp, grad], replace)
    out_vars = list(model.unobserved_value_vars)
    out_names = [v.name for v in out_vars]
    with model:
        # FAST_RUN's rewrites and C code; its buffers kept between calls (no garbage collection)
        logp_fn = compile_pymc(
            [x], [logp_x, grad_x], mode=Mode(linker="cvm_nogc", optimizer="fast_run")
        )
        expand_fn = compile_pymc(
            [x],
            [*out_vars, *[o.shape for o in out_vars]],
            givens=list(replace.items()),
            mode="FAST_RUN",
            on_unused_input="ignore",
        )
    logp_fn.trust_input = True
    expand_fn.trust_input = True
    x0 = np.concatenate([np.ravel(point[n]) for n in names]).astype(float)
    out_shapes = [tuple(int(d) for d in s) for s in expand_fn(x0)[len(out_vars) :]]
    n_out = len(out_vars)

    def make_logp():
        def logp_and_grad(_x):
            with lock:
                value, g = logp_fn(_x)
            return float(value), np.array(g, dtype=float)

        return logp_and_grad

    def make_expand(seed1, seed2, chain):
        def expand(_x):
            with lock:
                values = expand_fn(_x)[:n_out]
            return {
                n: np.array(v, dtype=float).reshape(s)
                for n, v, s in zip(out_names, values, out_shapes, strict=True)
            }

        return expand

    def initial_point(seed):
        p = ip_fn(seed)
        return np.concatenate([np.ravel(p[n]) for n in names]).astype(float)

    coords = {k: pd.Index(v) for k, v in model.coords.items() if v is not None}
    dims = {k: tuple(v) for k, v in model.named_vars_to_dims.items() if k in out_names}
    return nutpie.compiled_pyfunc.from_pyfunc(
        ndim,
        make_logp,
        make_expand,
        [np.dtype("float64")] * n_out,
        out_shapes,
        out_names,
        coords=coords,
        dims=dims,
        make_initial_point_fn=initial_point,
    )


class Sampler:
    """NUTS with fixed settings that compiles each model once and samples it on any data.

    Parameters
    ----------
    sampler : {"nutpie", "pymc"}, default "nutpie"
        nutpie's NUTS on a PyTensor-compiled log density (:func:`compile_nutpie`) or PyMC's
        NUTS.
    draws, tune : int, default 500
        Posterior draws and tuning steps per chain.
    chains : int, default 4
        Chains.
    progress : bool, default False
        Show the sampler's progress bar.
    low_rank : bool, default False
        With nutpie, adapt a diagonal mass matrix plus a low-rank correction from the draws'
        gradients (nutpie's ``low_rank_modified_mass_matrix``): parameters that move together,
        as the churn slope and the threshold's jump do, then take fewer leapfrog steps. PyMC's
        NUTS ignores it.
    """

    def __init__(
        self,
        sampler: str = DEFAULT_SAMPLER,
        *,
        draws: int = 500,
        tune: int = 500,
        chains: int = 4,
        progress: bool = False,
        low_rank: bool = False,
    ):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.sampler = sampler
        self.draws, self.tune, self.chains = int(draws), int(tune), int(chains)
        self.progress = bool(progress)
        self.low_rank = bool(low_rank)
        self._compiled: dict[int, tuple[object, object]] = {}

    def settings(self) -> dict:
        """Return ``{"sampler", "draws", "tune", "chains"}`` (``"low_rank"`` with nutpie's)."""
        settings = {
            "sampler": self.sampler,
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
        }
        # PyMC's NUTS has no low-rank adaptation: the flag is nutpie's only
        low_rank = self.low_rank and self.sampler == "nutpie"
        return {**settings, "low_rank": True} if low_rank else settings

    def _nutpie_model(self, model):
        key = id(model)
        if key not in self._compiled:  # the model is kept with it, so its id stays unique
            self._compiled[key] = (model, compile_nutpie(model))
        return self._compiled[key][1]

    def sample(
        self, model, *, seed: int = 0, data: Mapping[str, np.ndarray] | None = None
    ) -> az.InferenceData:
        """Sample a PyMC model's posterior, after putting ``data`` into its data containers.

        Parameters
        ----------
        model : pymc.Model
            The model; with nutpie it is compiled on its first sampling only.
        seed : int, default 0
            Seed; the same seed and data give the same draws.
        data : mapping of str to ndarray, optional
            New values of the model's ``pm.Data`` containers (any length).

        Returns
        -------
        arviz.InferenceData
            ``posterior`` and ``sample_stats`` (with ``diverging`` and a tree-depth saturation
            flag: nutpie's ``maxdepth_reached`` or PyMC's ``reached_max_treedepth``).
        """
        import pymc as pm

        if data:
            pm.set_data(dict(data), model=model)
        if self.sampler == "nutpie":
            import nutpie

            idata = nutpie.sample(
                self._nutpie_model(model),
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                cores=1,
                seed=seed,
                progress_bar=self.progress,
                save_warmup=False,
                low_rank_modified_mass_matrix=self.low_rank,
            )
            keep = [v for v in idata.posterior.data_vars if not v.endswith("__")]
            idata.posterior = idata.posterior[keep]
            return idata
        with model:
            return pm.sample(
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                cores=min(self.chains, 2),
                random_seed=seed,
                progressbar=self.progress,
                compute_convergence_checks=False,
                init="adapt_diag",
            )


def sample(
    model,
    *,
    sampler: str = DEFAULT_SAMPLER,
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    seed: int = 0,
    progress: bool = False,
    low_rank: bool = False,
) -> az.InferenceData:
    """Sample a PyMC model's posterior with NUTS, once (see :class:`Sampler`).

    Parameters
    ----------
    model : pymc.Model
        The model.
    sampler : {"nutpie", "pymc"}, default "nutpie"
        nutpie's NUTS on a PyTensor-compiled log density (:func:`compile_nutpie`) or PyMC's
        NUTS.
    draws, tune : int, default 500
        Posterior draws and tuning steps per chain.
    chains : int, default 4
        Chains.
    seed : int, default 0
        Seed; the same seed gives the same draws.
    progress : bool, default False
        Show the sampler's progress bar.
    low_rank : bool, default False
        nutpie's low-rank mass matrix adaptation (see :class:`Sampler`).

    Returns
    -------
    arviz.InferenceData
        As :meth:`Sampler.sample`.
    """
    runner = Sampler(
        sampler, draws=draws, tune=tune, chains=chains, progress=progress, low_rank=low_rank
    )
    return runner.sample(model, seed=seed)
