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
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from nsm_sim.models.retention import HINGE_WIDTH, churn_logit
from nsm_sim.simulate.plan import Plan

#: Share of a chunk's simulations affected by a set above which all are projected (no gather).
DENSE_SHARE = 0.8

#: Working-memory budget of one chunk of simulations, in bytes.
CHUNK_BYTES = 64 * 2**20


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function, with numpy's vectorised ``exp`` (faster than ``expit``)."""
    out = np.negative(z)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def _hinge_step(x: np.ndarray, ltw: np.ndarray, hj: np.ndarray) -> np.ndarray:
    """``hj * sigmoid((x - log1p(tau)) / HINGE_WIDTH)`` with ``ltw = log1p(tau) / HINGE_WIDTH``."""
    z = np.subtract(ltw, x * (1.0 / HINGE_WIDTH))
    np.exp(z, out=z)
    z += 1.0
    return np.divide(hj, z, out=z)


def _ramp_share(start: int, ramp: int, t: np.ndarray) -> np.ndarray:
    return np.clip((t - start + 1) / (ramp + 1), 0.0, 1.0)


def _log_multiplier(g: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``log(1 + rho (exp(g) - 1))``, exactly ``g`` where ``rho == 1``; ``rho`` on the last axis."""
    if np.all(rho == 1.0):
        return g
    partial = np.log1p(rho * np.expm1(g))
    return np.where(rho == 1.0, g, partial)


def _combine(parts: list[np.ndarray], overlap: float) -> np.ndarray:
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    if overlap == 0.0 or len(parts) == 1:
        return total
    stack = np.stack(parts)
    pos, neg = np.maximum(stack, 0.0), np.minimum(stack, 0.0)
    big_pos, big_neg = pos.max(axis=0), neg.min(axis=0)
    keep = 1.0 - overlap
    return (
        big_pos + keep * (pos.sum(axis=0) - big_pos) + big_neg + keep * (neg.sum(axis=0) - big_neg)
    )


class _Chunk:
    """The baseline of one chunk of simulations, and the projection of a set on top of it.

    Arrays are laid out period first, ``(T, n, C)``, so that each period's slice is one
    contiguous block; reductions over cells use ``einsum`` (no BLAS), whose per-simulation order
    of summation does not depend on how many simulations share the chunk.
    """

    def __init__(self, plan: Plan, ids: np.ndarray):
        self.plan, self.ids = plan, ids
        cells, post = plan.cells, plan.posterior
        t_count, seg, n = plan.horizon, cells.seg, ids.size
        pidx = plan.post_idx[ids]
        self.pidx = pidx
        self.b = post.churn_slope[pidx][:, seg]  # (n, C)
        self.x0 = np.log1p(cells.north_star)  # (C,)
        self.ns = cells.north_star
        if post.hinge_jump is not None:
            self.hj = post.hinge_jump[pidx][:, None]  # (n, 1)
            self.ltw = np.log1p(post.hinge_tau[pidx])[:, None] / HINGE_WIDTH
            self.base_step = _hinge_step(self.x0, self.ltw, self.hj)  # (n, C)
        else:
            self.hj = None
        # The baseline depends on the posterior draw only: project each distinct one once.
        uniq, inv = np.unique(pidx, return_inverse=True)
        hinge = post.hinge_jump is not None
        log_tenure = np.log1p(cells.tenure[None, :] + 1.0 + np.arange(t_count)[:, None])
        # the churn logit without the tenure term (U, C), then with it (T, U, C)
        static = churn_logit(
            self.x0,
            0.0,
            post.churn_intercept[uniq][:, seg],
            post.churn_slope[uniq][:, seg],
            0.0,
            post.hinge_jump[uniq][:, None] if hinge else 0.0,
            post.hinge_tau[uniq][:, None] if hinge else None,
            sigmoid=_sigmoid,
        )
        logit0 = churn_logit(
            0.0, log_tenure[:, None, :], static, 0.0, post.tenure_slope[uniq][:, None]
        )
        # odds of churn per period: q = 1 / (1 + odds * k), k = exp(logit - logit0)
        odds = np.exp(logit0, out=logit0)  # (T, U, C)
        alive = np.empty((t_count + 1, uniq.size, seg.size))  # (T+1, U, C)
        alive[0] = 1.0
        tmp = np.empty((uniq.size, seg.size))
        for t in range(t_count):
            np.add(odds[t], 1.0, out=tmp)
            np.divide(alive[t], tmp, out=alive[t + 1])
        self._odds_u, self._alive_u = odds, alive
        self._inv = None if uniq.size == n else inv
        self._odds: np.ndarray | None = odds if self._inv is None else None
        self.w_value = cells.accounts * cells.value
        self.w_nsm = cells.accounts * cells.north_star
        self.nsm_path = self._expand(np.einsum("tuc,c->tu", alive[:t_count], self.w_nsm))
        self._sums: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        whole = self.sums(0, seg.size)
        self.value_tail, self.retained = whole["value_tail"], whole["retained"]

    @property
    def odds(self) -> np.ndarray:
        """Baseline odds of churn per simulation, (T, n, C), expanded on first use."""
        if self._odds is None:
            self._odds = self._odds_u.take(self._inv, axis=1)
        return self._odds

    def _source(self, rows: np.ndarray) -> np.ndarray:
        """Return the indices into the per-posterior-draw arrays of simulations of the chunk."""
        return rows if self._inv is None else self._inv[rows]

    def _expand(self, per_unique: np.ndarray) -> np.ndarray:
        """Per-simulation values from per-posterior-draw ones (last axis)."""
        return per_unique if self._inv is None else per_unique[..., self._inv]

    def _hazard_factor(self, rows: Any, span: slice, mult: np.ndarray) -> np.ndarray:
        """``k = exp(logit - logit0)`` for multipliers ``mult`` (..., r, C) of the cells in span."""
        x = np.multiply(self.ns[span], mult)
        np.log1p(x, out=x)
        delta = np.subtract(x, self.x0[span])
        delta *= self.b[rows, span]
        if self.hj is not None:
            step = _hinge_step(x, self.ltw[rows], self.hj[rows])
            step -= self.base_step[rows, span]
            delta += step
        return np.exp(delta, out=delta)

    def sums(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Baseline totals over cells ``lo:hi``, reduced as :meth:`run` reduces its own.

        ``value_tail[t]`` (T+1, n) is the value of periods ``t .. T-1``, summed from the last
        period back; ``north_star`` (n,) the North Star of the last period; ``retained`` (n,).
        The same order of summation makes a change exactly zero when nothing changed.
        """
        key = (lo, hi)
        if key not in self._sums:
            t_count, span, alive = self.plan.horizon, slice(lo, hi), self._alive_u
            value_t = np.einsum("tuc,c->tu", alive[:t_count, :, span], self.w_value[span])
            value_tail = np.zeros((t_count + 1, value_t.shape[1]))
            value_tail[:t_count] = np.cumsum(value_t[::-1], axis=0)[::-1]
            north_star = np.einsum("uc,c->u", alive[t_count - 1][:, span], self.w_nsm[span])
            retained = np.einsum("uc,c->u", alive[t_count][:, span], self.plan.cells.accounts[span])
            self._sums[key] = {
                "value_tail": self._expand(value_tail),
                "north_star": self._expand(north_star),
                "retained": self._expand(retained),
            }
        return self._sums[key]

    def run(self, members: np.ndarray, keep_path: bool) -> dict[str, Any]:
        """Project a set of initiatives; return its changes in the simulations it affects."""
        plan = self.plan
        t_count = plan.horizon
        n = self.ids.size
        g = {}
        affected = np.zeros(n, dtype=bool)
        reached = np.zeros(len(plan.posterior.segments), dtype=bool)
        for i in members:
            if plan.start[i] >= t_count:
                continue
            gi = plan.loglift[i, self.ids, None] * plan.path[i][self.pidx]  # (n, S)
            hit = ((gi != 0.0) & (plan.rho[i] > 0.0)).any(axis=1)
            if hit.any():
                g[i] = gi
                affected |= hit
                reached |= plan.rho[i] > 0.0
        rows = np.flatnonzero(affected)
        if rows.size == 0:
            return {"rows": rows}
        # Project the affected simulations only, unless they are most of the chunk: then all of
        # them (no gather per period); the others are discarded at the end.
        every = rows.size >= DENSE_SHARE * n
        sel = slice(None) if every else rows
        r = n if every else rows.size
        # Cells are sorted by segment: project the span of the segments reached only.
        in_reach = np.flatnonzero(reached[plan.cells.seg])
        lo, hi = int(in_reach[0]), int(in_reach[-1]) + 1
        span = slice(lo, hi)
        whole = lo == 0 and hi == plan.cells.seg.size
        seg = plan.cells.seg[span]
        n_cells = hi - lo
        active = list(g)
        t0 = int(min(plan.start[i] for i in active))
        t1 = int(min(t_count, max(plan.start[i] + plan.ramp[i] for i in active)))
        # steady state: every ramp complete
        steady = _combine([_log_multiplier(g[i][sel], plan.rho[i]) for i in active], plan.overlap)
        mult_steady = np.exp(steady)[:, seg]  # (r, C)
        k_steady = self._hazard_factor(sel, span, mult_steady)
        n_ramp = t1 - t0
        if n_ramp > 0:
            t = np.arange(t0, t1)
            parts = [
                _log_multiplier(
                    _ramp_share(plan.start[i], plan.ramp[i], t)[:, None, None] * g[i][sel],
                    plan.rho[i],
                )
                for i in active
            ]
            mult_ramp = np.exp(_combine(parts, plan.overlap))[..., seg]  # (Tr, r, C)
            k_ramp = self._hazard_factor(sel, span, mult_ramp)
        m = t_count - t0
        # alive in period t0 + j, per account of the cell at the start, for j = 0 .. m - 1
        alive_t0 = self._alive_u[t0][self._source(np.arange(n) if every else rows), span]
        # odds: all simulations at once, or gathered per period from the distinct posterior draws
        odds_all, src = (self.odds, None) if every else (self._odds_u, self._source(rows))
        path_alive = np.empty((m, r, n_cells)) if keep_path else None
        w_value = self.w_value[span]
        value_t = np.empty((m - 1, r))  # value of periods t0 + 1 .. T - 1
        buffers = (np.empty((r, n_cells)), np.empty((r, n_cells)))
        tmp = np.empty((r, n_cells))
        prev = alive_last = alive_t0
        for j in range(m):
            odds = odds_all[t0 + j][:, span]
            k = k_ramp[j] if j < n_ramp else k_steady
            if every:
                np.multiply(odds, k, out=tmp)
            else:
                np.take(odds, src, axis=0, out=tmp)
                tmp *= k
            tmp += 1.0
            cur = np.divide(prev, tmp, out=buffers[j % 2])  # alive in period t0 + j + 1
            if keep_path:
                path_alive[j] = prev
            if j < m - 1:
                np.einsum("rc,c->r", cur, w_value, out=value_t[j])
            if j == m - 2:
                alive_last = cur.copy()
            prev = cur
        mult_last = mult_steady if t_count - 1 >= t1 else mult_ramp[t_count - 1 - t0]
        # summed from the last period back, as the baseline's value_tail
        value = np.cumsum(value_t[::-1], axis=0)[-1] if m > 1 else np.zeros(r)
        retained = np.einsum("rc,c->r", prev, plan.cells.accounts[span])
        nsm = np.einsum("rc,c->r", alive_last * mult_last, self.w_nsm[span])
        if every:
            value, retained, nsm = value[rows], retained[rows], nsm[rows]
        base = self.sums(lo, hi)
        base_nsm = base["north_star"][rows]
        base_retained = base["retained"][rows]
        base_value = base["value_tail"][t0 + 1, rows]
        out = {
            "rows": rows,
            "north_star": nsm - base_nsm,
            "retained": retained - base_retained,
            "value": value - base_value,
        }
        if keep_path:
            if n_ramp > 0:
                path_alive[:n_ramp] *= mult_ramp
            path_alive[n_ramp:] *= mult_steady
            new = np.einsum("jrc,c->jr", path_alive, self.w_nsm[span])
            if not whole:  # cells outside the span keep their baseline
                rest = self._alive_u[t0:t_count][:, self._source(np.arange(n) if every else rows)]
                new += np.einsum("jrc,c->jr", rest, self.w_nsm * ~reached[plan.cells.seg])
            path = self.nsm_path.copy() if every else self.nsm_path[:, rows]  # (T, r)
            path[t0:] = new
            out["path"] = path[:, rows] if every else path
        return out


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
        out["base_value"][ids] = chunk.value_tail[0]
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
