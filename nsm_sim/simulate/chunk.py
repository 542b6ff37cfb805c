"""One chunk of simulations in the Monte Carlo kernel: its baseline and a set's projection.

:class:`_Chunk` projects the baseline of a chunk of simulations once per distinct posterior
draw, then, for each set of initiatives, the change of each cell's North Star (ramped in,
carried up the tree), its churn hazard (the slope and the threshold over the cell's spread)
and the accounts alive, North Star and value that follow, reduced in the same order as the
baseline so that a change is exactly zero when nothing changed.
:func:`nsm_sim.simulate.kernel.execute` runs the chunks and gathers their results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nsm_sim.models.retention import HINGE_WIDTH, churn_logit
from nsm_sim.simulate.changes import (
    EXP_MAX,
    Joint,
    jump_bump,
    log_multiplier,
    odds_bounds,
    ramp_share,
    sigmoid,
    spread_odds,
)
from nsm_sim.simulate.plan import Plan

#: Share of a chunk's simulations affected by a set above which all are projected (no gather).
DENSE_SHARE = 0.8


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
        # the range of the North Star in each cell, on the log1p scale
        self.hi = np.log1p(cells.north_star_max)
        width = self.hi - np.log1p(cells.north_star_min)
        self.point = width < 1e-9
        self.spread = HINGE_WIDTH / np.where(self.point, 1.0, width)  # (C,)
        self.low = np.exp(-1.0 / self.spread)  # exp(z_lo - z_hi) per cell
        if post.hinge_jump is not None:
            self.hj = post.hinge_jump[pidx][:, None]  # (n, 1)
            self.ltw = np.log1p(post.hinge_tau[pidx])[:, None] / HINGE_WIDTH
            # the top of each cell's range against the threshold, in step widths (n, C)
            self.z0 = self.hi * (1.0 / HINGE_WIDTH) - self.ltw
            self.gap, self.bump = np.expm1(self.hj), jump_bump(self.hj)
            self.odds_bounds = odds_bounds(self.hj)
            # the spread's width folded into the threshold's terms, per simulation and cell
            self.gap_spread, self.bump_spread = self.gap * self.spread, self.bump * self.spread
            base = self._step_odds(slice(None), slice(None), 0.0)  # (n, C)
            self.base_inverse = 1.0 / base
            # the step at a cell's one level, computed as the projection computes it
            self.base_step = sigmoid(self.z0) * self.hj
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
            sigmoid=sigmoid,
        )
        if hinge and not self.point.all():
            # a cell spread across the threshold: its accounts' mean odds, not its mean's
            hj_u = post.hinge_jump[uniq][:, None]
            ltw_u = np.log1p(post.hinge_tau[uniq])[:, None] / HINGE_WIDTH
            e_hi = np.exp(np.minimum(self.hi * (1.0 / HINGE_WIDTH) - ltw_u, EXP_MAX))
            spread = spread_odds(
                e_hi, self.low, self.spread, np.expm1(hj_u), jump_bump(hj_u), odds_bounds(hj_u)
            )
            at_mean = hj_u * sigmoid(self.x0 * (1.0 / HINGE_WIDTH) - ltw_u)
            static += np.where(self.point, 0.0, np.log(spread) - at_mean)
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
        self.has_value = bool(np.any(self.w_value))  # else every value and its change is 0
        self.w_nsm = cells.accounts * cells.north_star
        self.nsm_path = self._expand(np.einsum("tuc,c->tu", alive[:t_count], self.w_nsm))
        self._tails: dict[tuple[int, int, int], np.ndarray] = {}
        self.value, self.retained = self._baseline_totals()

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

    def _z(self, rows: Any, span: slice, d: Any) -> np.ndarray:
        """Return the top of each cell's range after a change ``d``, in steps from the threshold."""
        z0 = self.z0[rows, span]
        z = np.multiply(d, 1.0 / HINGE_WIDTH)
        if z.shape == np.broadcast_shapes(z.shape, z0.shape):
            return np.add(z, z0, out=z)
        return z + z0

    def _step_odds(self, rows: Any, span: slice, d: Any) -> np.ndarray:
        """Return the cell's mean of ``exp(jump * step)`` after a change ``d`` of ``log1p(N)``.

        A cell of one level has the model's smooth step at its level. A cell whose North Star
        spreads over a range (uniform on the ``log1p`` scale, from the population's
        ``north_star_min`` to ``north_star_max``) has the mean over its accounts
        (:func:`spread_odds`, one exponential per cell).
        """
        hj = self.hj[rows]
        z = self._z(rows, span, d)
        np.minimum(z, EXP_MAX, out=z)
        e_hi = np.exp(z, out=z)
        point = self.point[span]
        if point.any():
            at_point = e_hi / (1.0 + e_hi)  # the step, sigmoid(z)
            at_point *= hj
            np.exp(at_point, out=at_point)
            if point.all():
                return at_point
        lo, hi = self.odds_bounds
        mean = spread_odds(
            e_hi,
            self.low[span],
            1.0,
            self.gap_spread[rows, span],
            self.bump_spread[rows, span],
            (lo[rows], hi[rows]),
        )
        return np.where(point, at_point, mean) if point.any() else mean

    def _hazard_factor(self, rows: Any, span: slice, d: np.ndarray) -> np.ndarray:
        """``k``, the factor on a cell's odds of churn for a change ``d`` of ``log1p(N)``.

        ``d`` (..., r, C) is the change of ``log1p(North Star)`` of the cells in ``span``. The
        slope term gives ``exp(b d)``; the threshold term the ratio of the cell's mean
        ``exp(jump * step)`` after and before (:meth:`_step_odds`), so that the accounts of a
        cell spread across the threshold cross it as many at a time as the spread says, with
        no jump at the cell's mean level.
        """
        delta = np.multiply(d, self.b[rows, span])
        if self.hj is None:
            return np.exp(delta, out=delta)
        if self.point[span].all():  # the model's step at each cell's level, in the exponent
            step = sigmoid(self._z(rows, span, d))
            step *= self.hj[rows]
            step -= self.base_step[rows, span]
            delta += step
            return np.exp(delta, out=delta)
        k = np.exp(delta, out=delta)
        k *= self._step_odds(rows, span, d)
        k *= self.base_inverse[rows, span]
        return k

    def _baseline_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the baseline's value over the horizon and accounts retained after it (n,)."""
        t_count, alive = self.plan.horizon, self._alive_u
        value_t = np.einsum("tuc,c->tu", alive[:t_count], self.w_value)
        value = np.cumsum(value_t[::-1], axis=0)[-1]  # summed from the last period back
        retained = np.einsum("uc,c->u", alive[t_count], self.plan.cells.accounts)
        return self._expand(value), self._expand(retained)

    def _set_change(
        self, active: list[int], lifts: dict[int, np.ndarray], sel: Any, span: slice, t0: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Change of ``log1p(North Star)`` per cell: steady (r, C), and in the ramp (Tr, r, C).

        A lift ``exp(g) - 1`` (ramped: ``exp(share * g) - 1``) on a target whose share in the
        cell is ``s`` changes the target's ``log1p`` by ``log1p(s (exp(g) - 1))``, and the
        North Star's by that times the elasticities on the path. Alone, an initiative is
        projected on the accounts it reaches (the caller weights the cells by the share
        reached); several combine their changes (:class:`Joint`), each at its mean over the
        share of the cell it reaches in the simulation, ``log1p(rho (exp(d) - 1))``
        (:meth:`Plan.reached`). Each initiative's ramp is evaluated in its own
        ramp periods only: nothing before its start, its steady change after its ramp.
        """
        plan = self.plan
        seg = plan.cells.seg[span]
        pidx = self.pidx[sel]
        alone = len(active) == 1
        t1 = int(min(plan.horizon, max(plan.start[i] + plan.ramp[i] for i in active)))
        n_ramp = max(t1 - t0, 0)
        r = lifts[active[0]][sel].size
        steady = Joint((r, seg.size), 0.0 if alone else plan.overlap)
        ramp = Joint((n_ramp, r, seg.size), 0.0 if alone else plan.overlap)
        for i in active:
            if not plan.rho[i][seg].any():
                continue
            rho = None if alone else plan.reached(i, self.ids[sel], span)
            path = plan.path[i][pidx][:, seg]
            share, g = plan.share[i, span], lifts[i][sel]

            def change(ramp_share: Any, path=path, share=share, g=g, rho=rho) -> np.ndarray:
                u = np.expm1(np.multiply.outer(ramp_share, g))[..., None]  # (..., r, 1)
                d = np.multiply(share, u)
                np.log1p(d, out=d)
                d *= path
                return d if alone else log_multiplier(d, rho)

            full = change(1.0)
            start, end = int(plan.start[i]), int(plan.start[i] + plan.ramp[i])
            lo, mid = min(max(start - t0, 0), n_ramp), min(max(end - t0, 0), n_ramp)
            shares = ramp_share(start, int(plan.ramp[i]), np.arange(t0 + lo, t0 + mid))
            if alone:  # its own change, no sum to keep
                d_ramp = np.empty((n_ramp, r, seg.size))
                d_ramp[:lo] = 0.0
                if mid > lo:
                    d_ramp[lo:mid] = change(shares)
                d_ramp[mid:] = full
                return full, d_ramp
            steady.add(full, slice(None))
            if mid > lo:
                ramp.add(change(shares), slice(lo, mid))
            if n_ramp > mid:
                ramp.add(full, slice(mid, n_ramp))
        return steady.result(), ramp.result()

    def _tail_sum(self, t0: int, span: slice) -> np.ndarray:
        """Baseline accounts alive summed over periods ``t0 + 1 .. T - 1``, per posterior draw.

        Summed period by period in the order :meth:`run` sums a set's, so that a change is
        exactly zero when nothing changed.
        """
        key = (t0, span.start, span.stop)
        if key not in self._tails:
            alive = self._alive_u
            total = np.zeros(alive.shape[1:])[:, span]
            for t in range(t0 + 1, self.plan.horizon):
                total += alive[t][:, span]
            self._tails[key] = total
        return self._tails[key]

    def run(self, members: np.ndarray, keep_path: bool) -> dict[str, Any]:
        """Project a set of initiatives; return its changes in the simulations it affects."""
        plan = self.plan
        t_count = plan.horizon
        n = self.ids.size
        lifts = {}
        affected = np.zeros(n, dtype=bool)
        reached = np.zeros(len(plan.posterior.segments), dtype=bool)
        for i in members:
            if plan.start[i] >= t_count:
                continue
            gi = plan.loglift[i, self.ids]  # (n,)
            moves = (plan.path[i][self.pidx] != 0.0) & (plan.rho[i] > 0.0)  # (n, S)
            hit = (gi != 0.0) & moves.any(axis=1)
            if hit.any():
                lifts[i] = gi
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
        if in_reach.size == 0:  # the segments reached have no accounts
            return {"rows": in_reach}
        lo, hi = int(in_reach[0]), int(in_reach[-1]) + 1
        span = slice(lo, hi)
        whole = lo == 0 and hi == plan.cells.seg.size
        n_cells = hi - lo
        active = list(lifts)
        # One initiative is projected on the accounts it reaches: its cells weighted by the
        # share reached, (n_cells,) or per simulation (r, n_cells) for a partial reach.
        if len(active) == 1:
            weight = plan.reached(active[0], self.ids[sel], span)
        else:
            weight = np.ones(n_cells)
        weighted = not np.all(weight == 1.0)
        cells_sub = "rc" if weight.ndim == 2 else "c"

        def total(x: np.ndarray, w: np.ndarray) -> np.ndarray:
            return np.einsum(f"rc,{cells_sub}->r", x, w)

        t0 = int(min(plan.start[i] for i in active))
        # the steady state (every ramp complete) and the periods t0 .. t1 - 1 of the ramps
        d_steady, d_ramp = self._set_change(active, lifts, sel, span, t0)
        k_steady = self._hazard_factor(sel, span, d_steady)
        n_ramp = d_ramp.shape[0]
        t1 = t0 + n_ramp
        if n_ramp > 0:
            k_ramp = self._hazard_factor(sel, span, d_ramp)
        m = t_count - t0
        # alive in period t0 + j, per account of the cell at the start, for j = 0 .. m - 1
        source = self._source(np.arange(n) if every else rows)
        alive_t0 = self._alive_u[t0][source, span]
        # odds: all simulations at once, or gathered per period from the distinct posterior draws
        odds_all, src = (self.odds, None) if every else (self._odds_u, source)
        # the North Star's level moves from N to (1 + N) exp(d) - 1
        lift_n = 1.0 + plan.cells.north_star[span]
        accounts = plan.cells.accounts[span] * weight
        w_value, w_nsm = self.w_value[span] * weight, self.w_nsm[span] * weight
        if keep_path:
            # the North Star total of period t0 + j: alive times (1 + N) exp(d_j) - 1, per account
            new = np.empty((m, r))
            level_steady = np.expm1(d_steady)
            level_steady *= lift_n * accounts
            level_steady += w_nsm
            level_ramp = np.expm1(d_ramp)
            level_ramp *= lift_n * accounts
            level_ramp += w_nsm
        alive_sum = np.zeros((r, n_cells))  # alive summed over periods t0 + 1 .. T - 1
        buffers = (np.empty((r, n_cells)), np.empty((r, n_cells)), np.empty((r, n_cells)))
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
            cur = np.divide(prev, tmp, out=buffers[j % 3])  # alive in period t0 + j + 1
            if keep_path:
                level = level_ramp[j] if j < n_ramp else level_steady
                np.einsum("rc,rc->r", prev, level, out=new[j])
            if j < m - 1:
                if self.has_value:
                    alive_sum += cur
                alive_last = cur  # alive in period T - 1 once the loop ends
            prev = cur
        d_last = d_steady if t_count - 1 >= t1 else d_ramp[t_count - 1 - t0]
        value = total(alive_sum, w_value)
        retained = total(prev, accounts)
        nsm = total(alive_last, w_nsm)
        nsm += total(alive_last * np.expm1(d_last), lift_n * accounts)
        # the baseline of the same simulations and cells, reduced in the same order
        if self.has_value:
            base_value = total(self._tail_sum(t0, span)[source], w_value)
        else:
            base_value = value
        base_retained = total(self._alive_u[t_count][source, span], accounts)
        base_nsm = total(self._alive_u[t_count - 1][source, span], w_nsm)
        keep = slice(None) if not every else rows
        out = {
            "rows": rows,
            "north_star": (nsm - base_nsm)[keep],
            "retained": (retained - base_retained)[keep],
            "value": (value - base_value)[keep],
        }
        if keep_path:
            sub = f"jrc,{cells_sub}->jr"
            if weighted:  # the accounts of the span not reached keep their baseline
                unreached = self.w_nsm[span] * (1.0 - weight)
                base_alive = self._alive_u[t0:t_count, :, span][:, source]
                new += np.einsum(sub, base_alive, unreached)
            if not whole:  # cells outside the span keep their baseline
                outside = self.w_nsm.copy()
                outside[span] = 0.0
                new += np.einsum("juc,c->ju", self._alive_u[t0:t_count], outside)[:, source]
            path = self.nsm_path.copy() if every else self.nsm_path[:, rows]  # (T, r)
            path[t0:] = new
            out["path"] = path[:, rows] if every else path
        return out
