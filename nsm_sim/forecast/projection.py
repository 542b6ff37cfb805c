"""The per-simulation pieces a forecast's aggregate is assembled from (:class:`Projection`).

The model of one simulation, period ``t = 0 .. H - 1`` after the last observed one:

- **Accounts there now**: the simulator's North Star total of the population
  (``E[t]``: the accounts alive at the end of the data, their churn from the retention
  posterior, their North Star as it was in the last period), without or with the
  initiatives;
- **the common shock**: ``G[t] = exp(g_0 + ... + g_t)``, the growth ``g`` drawn from the
  shock model (:class:`~nsm_sim.forecast.model.ForecastModel`), multiplies the North Star of
  every account in period ``t`` (the last observed period is the shock's reference);
- **new accounts**: ``a[s, j]`` arrive in period ``j`` (drawn from the arrival model); in
  period ``t`` those still there have tenure ``k = t - j``, survive to it with probability
  ``S_s(k)`` (the retention posterior at their ramp's spread of ``log1p`` North Star, by
  Gauss-Hermite quadrature) and have a North Star of ``m_s(k)`` per account (the ramp, at the
  last period's shock level; its standard error drawn once per simulation and segment);
- **initiatives on new accounts**: a set of initiatives changes the accounts there now by
  ``r[t] = E_set[t] / E_baseline[t]`` in each period and simulation; the new accounts' North
  Star is multiplied by the same ``r[t]`` (the initiatives reach them as they reach the
  others: the same relative lift on the same nodes, in the same periods). This carries the
  initiatives' retention effect to new accounts at the rate of the accounts there now, a
  slight overstatement for accounts that arrived after the initiatives began;
- **the aggregate** as the tree defines it: ``sum``: ``G E + G r N_new``; ``mean``: that
  over the accounts active (the accounts there now by the retention posterior at each
  cell's level, plus the new ones; the initiatives' effect on the number of accounts is
  left out of the denominator); ``{at_least: L}``: the accounts whose North Star, times
  ``G r``, is at or above ``L`` -- each cell of the population spread uniformly on the
  ``log1p`` scale over its range, each cohort of new accounts normal on that scale.

What the band leaves out: the accounts' own churn noise (binomial, small against the shock
for thousands of accounts) and the spread of the new accounts' sizes around their mean (the
mean of hundreds of new accounts). The backtests (``benchmarks/bench_forecast.py``) measure
the coverage that results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, ndtr

from nsm_sim.data import Population
from nsm_sim.forecast.model import ForecastModel
from nsm_sim.models.retention import churn_logit
from nsm_sim.numeric import stream
from nsm_sim.simulate import PosteriorDraws, posterior_choice
from nsm_sim.simulate.plan import population_cells
from nsm_sim.spec import AtLeast
from nsm_sim.spec.forecast import Aggregate

#: Stream key of the forecast's own draws under the seed (the simulator uses 0 and 1).
FORECAST_STREAM = 2
#: Sub-streams: arrivals, common shock, the ramp's level.
ARRIVALS, SHOCK, RAMP = 0, 1, 2

#: Gauss-Hermite nodes over the spread of a new cohort's ``log1p`` North Star.
QUADRATURE = 7

#: Label of the set of every initiative, or of the portfolio chosen.
PORTFOLIO = "portfolio"
BASELINE = "baseline"


@dataclass(frozen=True)
class Projection:
    """The per-simulation pieces a forecast's aggregate is assembled from (see the module).

    :meth:`assemble` turns the simulator's North Star total of the accounts there now, for
    any set of initiatives projected on the same simulations, into the aggregate, optionally
    with extra new accounts per period: what :mod:`nsm_sim.forecast.targets` searches over.

    Attributes
    ----------
    aggregate : "sum", "mean" or AtLeast
    shock : ndarray, shape (N, H)
        ``G``, the common shock's factor on every account's North Star.
    existing : dict of str to ndarray, shape (N, H)
        The simulator's North Star totals of the accounts there now, per set label.
    arrivals : ndarray, shape (N, S, H)
    survival, level : ndarray, shape (N, S, H)
        A new account's survival to each tenure and its North Star there.
    log_mean, log_sd : ndarray, shape (S, H)
        Mean and spread of a new account's ``log1p`` North Star by tenure.
    arrival_share : ndarray, shape (S,)
        The segments' expected shares of the arrivals (for extra arrivals).
    cells : Cells
        The population's cells.
    alive : ndarray, shape (U, H, C)
        Share of each cell's accounts active, per distinct posterior draw (count aggregates).
    draw_of : ndarray of int, shape (N,)
        Each simulation's row of ``alive``.
    """

    aggregate: Aggregate
    shock: np.ndarray  # (N, H) G
    existing: dict[str, np.ndarray]  # label -> (N, H) E without shock
    arrivals: np.ndarray  # (N, S, H)
    survival: np.ndarray  # (N, S, H) by tenure
    level: np.ndarray  # (N, S, H) North Star per new account by tenure
    log_mean: np.ndarray  # (S, H) at the last period's level
    log_sd: np.ndarray  # (S, H)
    arrival_share: np.ndarray  # (S,) expected share of arrivals by segment
    cells: Any
    alive: np.ndarray  # (U, H, C) accounts there now, share alive, per distinct draw
    draw_of: np.ndarray  # (N,) index into alive's first axis

    def _convolve(self, weight: np.ndarray, extra: float) -> np.ndarray:
        """Return ``sum_s sum_j (a[s, j] + extra share_s) w[s, t - j]`` per simulation (N, H)."""
        a = self.arrivals + extra * self.arrival_share[None, :, None]
        n, _, h = a.shape
        out = np.empty((n, h))
        for t in range(h):
            out[:, t] = np.einsum("nsj,nsj->n", a[:, :, : t + 1], weight[:, :, t::-1])
        return out

    def _at_least(self, ratio: np.ndarray, extra: float) -> np.ndarray:
        level = self.aggregate.at_least
        cells = self.cells
        lo, hi = np.log1p(cells.north_star_min), np.log1p(cells.north_star_max)
        width = hi - lo
        n, h = ratio.shape
        out = np.empty((n, h))
        a = self.arrivals + extra * self.arrival_share[None, :, None]
        for t in range(h):
            bar = np.log1p(level / np.maximum(self.shock[:, t] * ratio[:, t], 1e-12))  # (N,)
            share = np.where(
                width[None, :] > 1e-9,
                np.clip((hi[None, :] - bar[:, None]) / np.where(width > 1e-9, width, 1.0), 0, 1),
                (np.log1p(cells.north_star)[None, :] >= bar[:, None] - 1e-12).astype(float),
            )  # (N, C)
            alive = self.alive[self.draw_of, t, :] * cells.accounts[None, :]
            out[:, t] = np.einsum("nc,nc->n", alive, share)
            # new cohorts of tenure k = t - j: normal on the log1p scale
            k = np.arange(t, -1, -1)
            z = (bar[:, None, None] - self.log_mean[None, :, k]) / np.maximum(
                self.log_sd[None, :, k], 1e-9
            )
            above = 1.0 - ndtr(z)  # (N, S, t + 1)
            out[:, t] += np.einsum(
                "nsj,nsj,nsj->n", a[:, :, : t + 1], self.survival[:, :, t::-1], above
            )
        return out

    def existing_count(self) -> np.ndarray:
        """Return the accounts there now still active, per simulation and period (N, H)."""
        return np.einsum("nhc,c->nh", self.alive[self.draw_of], self.cells.accounts)

    def assemble(self, existing: np.ndarray, extra: float = 0.0) -> np.ndarray:
        """Return the aggregate per simulation and period for an existing-accounts path ``E_set``.

        Parameters
        ----------
        existing : ndarray, shape (N, H)
            The simulator's North Star total of the accounts there now, for the set.
        extra : float, default 0
            Extra new accounts per period (spread over segments as the arrivals are).

        Returns
        -------
        ndarray, shape (N, H)
        """
        base = self.existing[BASELINE]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(base > 0, existing / np.where(base > 0, base, 1.0), 1.0)
        if isinstance(self.aggregate, AtLeast):
            return self._at_least(ratio, extra)
        new_sum = self._convolve(self.survival * self.level, extra)
        total = self.shock * (existing + ratio * new_sum)
        if self.aggregate == "sum":
            return total
        count = self.existing_count() + self._convolve(self.survival, extra)
        return total / np.maximum(count, 1e-12)


def _new_account_survival(
    posterior: PosteriorDraws, uniq: np.ndarray, log_mean: np.ndarray, log_sd: np.ndarray
) -> np.ndarray:
    """Survival to each tenure of a new account, per distinct draw and segment (U, S, H)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE)
    weights = weights / weights.sum()
    n_s, h = log_mean.shape
    x = log_mean[None, :, :, None] + log_sd[None, :, :, None] * nodes  # (1, S, H, Q)
    x = np.maximum(x, 0.0)
    log_tenure = np.log1p(np.arange(h))[None, None, :, None]
    hinge = posterior.hinge_jump is not None
    logit = churn_logit(
        x,
        log_tenure,
        posterior.churn_intercept[uniq][:, :, None, None],
        posterior.churn_slope[uniq][:, :, None, None],
        posterior.tenure_slope[uniq][:, None, None, None],
        posterior.hinge_jump[uniq][:, None, None, None] if hinge else 0.0,
        posterior.hinge_tau[uniq][:, None, None, None] if hinge else None,
    )
    hazard = expit(logit) @ weights  # (U, S, H)
    survival = np.ones_like(hazard)
    survival[:, :, 1:] = np.cumprod(1.0 - hazard[:, :, :-1], axis=2)
    return survival


def _existing_alive(posterior: PosteriorDraws, uniq: np.ndarray, cells: Any, h: int) -> np.ndarray:
    """Share of each cell's accounts active in each period, per distinct draw (U, H, C)."""
    seg = cells.seg
    hinge = posterior.hinge_jump is not None
    log_tenure = np.log1p(cells.tenure[None, :] + 1.0 + np.arange(h)[:, None])  # (H, C)
    logit = churn_logit(
        np.log1p(cells.north_star)[None, None, :],
        log_tenure[None],
        posterior.churn_intercept[uniq][:, seg][:, None, :],
        posterior.churn_slope[uniq][:, seg][:, None, :],
        posterior.tenure_slope[uniq][:, None, None],
        posterior.hinge_jump[uniq][:, None, None] if hinge else 0.0,
        posterior.hinge_tau[uniq][:, None, None] if hinge else None,
    )  # (U, H, C)
    alive = np.ones_like(logit)
    alive[:, 1:] = np.cumprod(1.0 - expit(logit[:, :-1]), axis=1)
    return alive


def build_projection(
    aggregate: Aggregate,
    model: ForecastModel,
    posterior: PosteriorDraws,
    population: Population,
    existing: Mapping[str, np.ndarray],
    simulations: int,
    seed: int,
) -> Projection:
    """Draw a forecast's own parts and assemble its :class:`Projection` (see the module).

    Parameters
    ----------
    aggregate : "sum", "mean" or AtLeast
    model : ForecastModel
    posterior : PosteriorDraws
    population : Population
    existing : mapping of str to ndarray, shape (N, H)
        The simulator's North Star totals of the accounts there now, per set label
        (``"baseline"`` among them).
    simulations, seed : int
        As the simulator's: the same posterior draw per simulation.

    Returns
    -------
    Projection
    """
    horizon = existing[BASELINE].shape[1]
    order = [model.segments.index(s) for s in posterior.segments]
    # arrivals, per the posterior's segment order
    arrivals = model.acquisition.draw(horizon, simulations, stream(seed, FORECAST_STREAM, ARRIVALS))
    arrivals = arrivals[:, order]
    expected = model.acquisition.expected(model.acquisition.n_history + np.arange(horizon))[order]
    share = expected.sum(1) / max(expected.sum(), 1e-12)
    growth = model.draw_growth(horizon, simulations, stream(seed, FORECAST_STREAM, SHOCK))
    shock = np.exp(np.cumsum(growth, axis=1))
    mean, se, log_mean, log_sd = (a[order] for a in model.ramp_at(horizon))
    z = stream(seed, FORECAST_STREAM, RAMP).standard_normal((simulations, len(order), 1))
    level = np.maximum(mean[None] + se[None] * z, 0.0) * np.exp(model.shock_level)
    log_mean = log_mean + model.shock_level
    post_idx = posterior_choice(posterior.n_draws, simulations, seed)
    uniq, draw_of = np.unique(post_idx, return_inverse=True)
    survival = _new_account_survival(posterior, uniq, log_mean, log_sd)[draw_of]
    cells = population_cells(population, posterior)
    needs_alive = aggregate != "sum"
    alive = (
        _existing_alive(posterior, uniq, cells, horizon)
        if needs_alive
        else np.ones((1, horizon, 0))
    )
    return Projection(
        aggregate=aggregate,
        shock=shock,
        existing=dict(existing),
        arrivals=arrivals,
        survival=survival,
        level=level,
        log_mean=log_mean,
        log_sd=log_sd,
        arrival_share=share,
        cells=cells,
        alive=alive,
        draw_of=draw_of if needs_alive else np.zeros(simulations, dtype=np.intp),
    )
