"""The vectorised Monte Carlo kernel: the baseline and each set of initiatives, chunk by chunk.

Vectorised over simulations x cells x periods; the Python loops are over chunks of
simulations, over the sets of initiatives and over periods within a set (each step works on a
whole ``simulations x cells`` block). Memory is bounded by the chunk size, not by the number
of simulations (only the per-simulation results grow with it).

- The baseline depends on the posterior draw only: simulations are processed sorted by
  posterior draw, and each distinct posterior draw in a chunk is projected once.
- Before a set's first ``start`` nothing changes: its projection starts from the baseline's
  state in that period. After all its ramps are complete the change ``k = exp(logit -
  logit0)`` of each cell's hazard logit is constant, so each later period's survival factor
  is ``1 / (1 + odds0_t * k)`` from the baseline's stored odds, with no new transcendental
  function.
- Only the simulations in which the set has an effect are projected (the others' change is
  exactly zero), and only the cells of the segments it reaches (cells are sorted by segment).
- Totals over cells and periods are reduced in the same order for the baseline and for a
  set, so a change is exactly zero when nothing changed (even when a lift underflows).

This module splits the simulations into chunks, runs them (on worker threads) and gathers the
results; one chunk's baseline and projections are :mod:`nsm_sim.simulate.chunk`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from nsm_sim.simulate.chunk import _Chunk
from nsm_sim.simulate.plan import Plan

#: Working-memory budget of one chunk of simulations, in bytes.
CHUNK_BYTES = 64 * 2**20


def _default_chunk(cells: int, horizon: int, n_jobs: int) -> int:
    # the baseline keeps odds and alive (n, T, C) and a set's projection two more such arrays
    per_simulation = 4 * 8 * max(cells, 1) * (horizon + 1)
    return int(max(16, min(4096, CHUNK_BYTES // (per_simulation * n_jobs))))


def execute(
    plan: Plan,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], int]:
    """Project the baseline and every set of a plan, chunk by chunk.

    Parameters
    ----------
    plan : Plan
    chunk_size : int, optional
        Simulations projected at once; by default about 64 MB of working arrays per worker.
    n_jobs : int, optional
        Worker threads over chunks; default ``min(2, cpus)``.
    progress : callable, optional
        Called as ``progress(done, total)`` (simulations) after each chunk.

    Returns
    -------
    results : dict
        Per set and simulation (sets, N): ``north_star``, ``retained`` and ``value``
        changes; per simulation: ``base_north_star``, ``base_retained``, ``base_value`` and
        ``base_path`` (N, T); ``paths``: the kept sets' North Star totals per period (N, T).
    chunk_size : int
        The chunk size used.
    """
    simulations = plan.simulations
    t_count = plan.horizon
    n_sets = len(plan.sets)
    n_jobs = max(1, min(2, os.cpu_count() or 1) if n_jobs is None else int(n_jobs))
    if chunk_size is None:
        chunk_size = _default_chunk(plan.cells.seg.size, t_count, n_jobs)
    chunk_size = int(max(1, chunk_size))
    out = {
        "north_star": np.zeros((n_sets, simulations)),
        "retained": np.zeros((n_sets, simulations)),
        "value": np.zeros((n_sets, simulations)),
        "base_north_star": np.empty(simulations),
        "base_retained": np.empty(simulations),
        "base_value": np.empty(simulations),
        "base_path": np.empty((simulations, t_count)),
        "paths": {k: np.empty((simulations, t_count)) for k in plan.paths_for},
    }

    # Chunks follow the simulations sorted by posterior draw, so that simulations sharing one
    # share its baseline; each simulation's numbers are the same whatever chunk it falls in.
    order = np.argsort(plan.post_idx, kind="stable")

    def work(j0: int) -> int:
        ids = order[j0 : j0 + chunk_size]
        if plan.cells.seg.size == 0:
            for key in ("base_north_star", "base_retained", "base_value"):
                out[key][ids] = 0.0
            out["base_path"][ids] = 0.0
            for k in plan.paths_for:
                out["paths"][k][ids] = 0.0
            return ids.size
        chunk = _Chunk(plan, ids)
        out["base_north_star"][ids] = chunk.nsm_path[-1]
        out["base_retained"][ids] = chunk.retained
        out["base_value"][ids] = chunk.value
        out["base_path"][ids] = chunk.nsm_path.T
        for k, members in enumerate(plan.sets):
            keep = k in plan.paths_for
            res = chunk.run(members, keep)
            rows = ids[res["rows"]]
            if keep:
                out["paths"][k][ids] = chunk.nsm_path.T
            if rows.size:
                for key in ("north_star", "retained", "value"):
                    out[key][k, rows] = res[key]
                if keep:
                    out["paths"][k][rows] = res["path"].T
        return ids.size

    starts = range(0, simulations, chunk_size)
    done = 0
    if n_jobs == 1 or len(starts) == 1:
        for j0 in starts:
            done += work(j0)
            if progress is not None:
                progress(done, simulations)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for size in pool.map(work, starts):
                done += size
                if progress is not None:
                    progress(done, simulations)
    return out, chunk_size
