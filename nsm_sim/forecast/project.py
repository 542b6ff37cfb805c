"""The forecast: the North Star's aggregate per calendar period, with and without initiatives.

One simulation of the forecast is one simulation of :func:`nsm_sim.simulate.simulate_sets`
(the same posterior draw, chosen by :func:`nsm_sim.simulate.posterior_choice` from the same
seed, and the same outcomes of the initiatives) plus the draws of the forecast's own parts,
each from a stream of its own under the seed (:data:`FORECAST_STREAM`): arrivals, the common
shock and the ramp's level. So the baseline, each initiative and the portfolio are one
computation per simulation, and P(target) is the share of simulations at or above the target.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from nsm_sim.data import Population
from nsm_sim.errors import SpecError
from nsm_sim.forecast.model import ForecastModel
from nsm_sim.models.retention import churn_logit
from nsm_sim.numeric import stream
from nsm_sim.simulate import PosteriorDraws, posterior_choice, simulate_sets
from nsm_sim.simulate.plan import population_cells
from nsm_sim.spec import AtLeast, Scenario, Target
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


def share_at_least(x: np.ndarray, value: float) -> float:
    """Share of the finite simulations at or above ``value`` (P(target) of one series).

    A simulation whose projection is not finite (the simulator can fail on extreme posterior
    draws) is left out of every summary rather than counted as a miss; :attr:`Forecast.warnings`
    says how many.

    Examples
    --------
    >>> share_at_least(np.array([1.0, 2.0, np.nan, 4.0]), 2.0)
    0.6666666666666666
    """
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x)
    return float(np.mean(x[finite] >= value)) if finite.any() else float("nan")


def period_dates(last: Any, period: str, horizon: int) -> pd.DatetimeIndex:
    """Start dates of the ``horizon`` periods after the period starting on ``last``.

    Parameters
    ----------
    last : date-like
        Start of the last observed period.
    period : {"week", "month"}
    horizon : int

    Returns
    -------
    pandas.DatetimeIndex

    Examples
    --------
    >>> [f"{d:%Y-%m-%d}" for d in period_dates("2025-12-29", "week", 2)]
    ['2026-01-05', '2026-01-12']
    >>> [f"{d:%Y-%m-%d}" for d in period_dates("2025-11-01", "month", 2)]
    ['2025-12-01', '2026-01-01']
    """
    last = pd.Timestamp(last)
    if period == "week":
        return pd.DatetimeIndex([last + pd.Timedelta(days=7 * (h + 1)) for h in range(horizon)])
    return pd.DatetimeIndex([last + pd.DateOffset(months=h + 1) for h in range(horizon)])


def target_period(target: Target, dates: pd.DatetimeIndex, last: Any, source: str) -> int:
    """Return the projected period a target is judged in: the last starting by its date.

    Parameters
    ----------
    target : Target
    dates : pandas.DatetimeIndex
        The projected periods' start dates (long enough to reach the target).
    last : date-like
        Start of the last observed period.
    source : str
        Named in the error (the scenario or tree file).

    Returns
    -------
    int

    Raises
    ------
    SpecError
        The date is before the first projected period.
    """
    by = pd.Timestamp(target.by)
    k = int(np.searchsorted(dates.values, by.to_datetime64(), side="right")) - 1
    if k < 0:
        raise SpecError(
            source,
            [
                f"target.by: {by:%Y-%m-%d} is before the first projected period "
                f"({dates[0]:%Y-%m-%d}; the data end with the period of "
                f"{pd.Timestamp(last):%Y-%m-%d}); expected a later date"
            ],
        )
    if k >= len(dates):
        raise SpecError(source, [f"target.by: {by:%Y-%m-%d} is beyond the projected periods"])
    return k


def periods_to(target: Target, last: Any, period: str) -> int:
    """Projected periods needed to reach a target's date (0 when it is before the first)."""
    by = pd.Timestamp(target.by)
    last = pd.Timestamp(last)
    if period == "week":
        return max(int((by - last).days // 7), 0)
    months = (by.year - last.year) * 12 + (by.month - last.month)
    return max(months - (1 if by.day < last.day else 0), 0)


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


@dataclass(frozen=True)
class Forecast:
    """The North Star's aggregate per projected period, per simulation (see the module).

    Attributes
    ----------
    dates : pandas.DatetimeIndex
        Start dates of the projected periods (the first is the period after the data).
    aggregate : "sum", "mean" or AtLeast
        As the tree defines the North Star's aggregate.
    paths : dict of str to ndarray, shape (simulations, horizon)
        ``"baseline"`` (no initiative) and ``"portfolio"`` (the portfolio's initiatives).
    initiatives : dict of str to ndarray, shape (simulations, horizon)
        Each initiative alone (empty when not asked for).
    portfolio : tuple of str
        The initiatives of the ``"portfolio"`` path.
    observed : pandas.Series
        The observed aggregate per observed period (the ``at_least`` count is approximated
        from each period's mean and spread of ``log1p`` North Star by segment and tenure).
    target : Target or None
        The target in force (the scenario's, else the tree's).
    target_index : int or None
        The projected period the target is judged in.
    simulations, seed : int
    scenario : Scenario
        The scenario projected, its horizon extended to the target's date.
    posterior : PosteriorDraws
    population : Population
        The inputs, kept so that other sets of initiatives can be projected on the same
        simulations (:mod:`nsm_sim.forecast.targets` does).
    projection : Projection
        The pieces the aggregate is assembled from.
    """

    dates: pd.DatetimeIndex
    aggregate: Aggregate
    paths: dict[str, np.ndarray]
    initiatives: dict[str, np.ndarray]
    portfolio: tuple[str, ...]
    observed: pd.Series
    target: Target | None
    target_index: int | None
    simulations: int
    seed: int
    scenario: Scenario = field(repr=False)
    posterior: PosteriorDraws = field(repr=False)
    population: Population = field(repr=False)
    projection: Projection = field(repr=False)

    def summary(self, quantiles: Sequence[float] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
        """Summarise the forecast per period and series: mean and quantiles over simulations.

        Parameters
        ----------
        quantiles : sequence of float
            Named ``p5``, ``p50``, ``p95``... in the columns.

        Returns
        -------
        pandas.DataFrame
            Long format: ``period`` (start date), ``series`` (``baseline``, ``portfolio``),
            ``mean`` and one column per quantile.
        """
        frames = []
        for series, path in self.paths.items():
            mean = np.nanmean(path, axis=0)
            frame = pd.DataFrame({"period": self.dates, "series": series, "mean": mean})
            for q, vals in zip(quantiles, np.nanquantile(path, quantiles, axis=0), strict=True):
                frame[f"p{q * 100:g}"] = vals
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @property
    def warnings(self) -> list[str]:
        """What the forecast's users must be told: simulations left out as not finite."""
        bad = np.zeros(self.simulations, dtype=bool)
        for path in (*self.paths.values(), *self.initiatives.values()):
            bad |= ~np.all(np.isfinite(path), axis=1)
        if not bad.any():
            return []
        return [
            f"the forecast left out {int(bad.sum())} of {self.simulations:,} simulations whose "
            "projection of the accounts there now is not finite (extreme posterior draws of "
            "the churn threshold)"
        ]

    def at_target(self, series: str = BASELINE) -> np.ndarray:
        """Return the aggregate in the target's period per simulation (series or initiative)."""
        if self.target_index is None:
            raise ValueError("the forecast has no target")
        path = self.paths.get(series)
        if path is None:
            path = self.initiatives[series]
        return path[:, self.target_index]

    def p_target(self, series: str = BASELINE, value: float | None = None) -> float:
        """P(reaching the target): the share of simulations at or above it by its date.

        Parameters
        ----------
        series : str, default "baseline"
            ``"baseline"``, ``"portfolio"`` or an initiative's name.
        value : float, optional
            Another value than the target's (same date).

        Returns
        -------
        float
        """
        x = self.at_target(series)
        return share_at_least(x, self.target.value if value is None else value)

    def expected_gap(self, series: str = BASELINE) -> dict[str, float]:
        """How far the series is from the target by its date.

        Returns
        -------
        dict
            ``mean`` (target minus the mean forecast; negative when the forecast is above)
            and ``shortfall`` (the mean of ``max(target - forecast, 0)`` over simulations).
        """
        x = self.at_target(series)
        x = x[np.isfinite(x)]
        return {
            "mean": float(self.target.value - x.mean()),
            "shortfall": float(np.mean(np.maximum(self.target.value - x, 0.0))),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready forecast: ``{"aggregate", "forecast": [...], "target": {...} or None}``.

        Returns
        -------
        dict
            ``forecast``: one row per projected period, ``{"period": "YYYY-MM-DD",
            "north_star": {"baseline": {"mean", "p5", "p95"}, "portfolio": {...}}}``;
            ``target`` (when one is set): ``{"value", "by", "period", "p_baseline",
            "p_portfolio", "gap_baseline", "gap_portfolio", "initiatives": [{"name",
            "p"}]}`` (``needed`` is added by :func:`nsm_sim.forecast.target_report`).
        """
        rows = []
        for t, date in enumerate(self.dates):
            block = {}
            for series, path in self.paths.items():
                x = path[:, t]
                x = x[np.isfinite(x)]
                p5, p95 = np.quantile(x, [0.05, 0.95])
                block[series] = {"mean": float(x.mean()), "p5": float(p5), "p95": float(p95)}
            rows.append({"period": f"{date:%Y-%m-%d}", "north_star": block})
        aggregate = self.aggregate
        out: dict[str, Any] = {
            "aggregate": aggregate.model_dump() if isinstance(aggregate, AtLeast) else aggregate,
            "forecast": rows,
            "target": None,
        }
        if self.target is not None and self.target_index is not None:
            out["target"] = {
                "value": self.target.value,
                "by": f"{self.target.by:%Y-%m-%d}",
                "period": f"{self.dates[self.target_index]:%Y-%m-%d}",
                "p_baseline": self.p_target(BASELINE),
                "p_portfolio": self.p_target(PORTFOLIO),
                "gap_baseline": self.expected_gap(BASELINE),
                "gap_portfolio": self.expected_gap(PORTFOLIO),
                "initiatives": [
                    {"name": name, "p": self.p_target(name)} for name in self.initiatives
                ],
            }
        return out


def _observed(model: ForecastModel, history_frame: pd.DataFrame, aggregate: Aggregate) -> pd.Series:
    f = history_frame
    by = f.groupby("period", sort=True)
    if aggregate == "sum":
        return by["north_star_sum"].sum()
    if aggregate == "mean":
        return by["north_star_sum"].sum() / by["accounts"].sum()
    n = f["accounts"].to_numpy(dtype=float)
    m = f["log_sum"].to_numpy(dtype=float) / n
    sd = np.sqrt(np.maximum(f["log_sumsq"].to_numpy(dtype=float) / n - m * m, 1e-12))
    above = n * (1.0 - ndtr((np.log1p(aggregate.at_least) - m) / sd))
    return pd.Series(above, index=f["period"]).groupby(level=0).sum()


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


def forecast(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    model: ForecastModel,
    history: pd.DataFrame | None = None,
    *,
    portfolio: Sequence[str] | None = None,
    each: bool = True,
    simulations: int = 4000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Forecast:
    """Forecast the North Star's aggregate with new accounts, without and with initiatives.

    Parameters
    ----------
    scenario : Scenario
        Its tree (``scenario.tree``) gives the aggregate and the calendar; its target (or the
        tree's) is judged. The horizon is the scenario's, extended to the target's date.
    posterior : PosteriorDraws
    population : Population
        The accounts there now (a fit's).
    model : ForecastModel
        From :func:`nsm_sim.forecast.fit_forecast_model`.
    history : pandas.DataFrame, optional
        The history table (:attr:`nsm_sim.forecast.History.frame`), for the observed
        aggregate; without it ``observed`` is empty.
    portfolio : sequence of str, optional
        The initiatives of the ``"portfolio"`` path; default every initiative.
    each : bool, default True
        Also forecast each initiative alone (for P(target) per initiative).
    simulations : int, default 4000
    seed : int, default 0
        The simulator's seed: the same posterior draws and initiative outcomes as
        :func:`nsm_sim.simulate.simulate` with this seed.
    progress : callable, optional
        ``progress(done, total)`` from the simulator.

    Returns
    -------
    Forecast

    Raises
    ------
    SpecError
        The target's date is before the first projected period, or more than ten years on.
    """
    tree = scenario.tree
    if tree is None:
        raise SpecError(f"scenario {scenario.name!r}", ["model: the scenario has no tree"])
    source = f"scenario {scenario.name!r}"
    goal = scenario.goal
    horizon = scenario.horizon
    if goal is not None:
        horizon = max(horizon, periods_to(goal, model.last_period, model.period))
        if horizon > 10 * (52 if model.period == "week" else 12):
            raise SpecError(source, [f"target.by: {goal.by} is more than ten years ahead"])
    dates = period_dates(model.last_period, model.period, horizon)
    target_index = None
    if goal is not None:
        target_index = target_period(goal, dates, model.last_period, source)
    run = scenario.model_copy(update={"horizon": horizon})
    names = [i.name for i in scenario.initiatives]
    chosen = tuple(names if portfolio is None else portfolio)
    sets: dict[str, list[str]] = {BASELINE: [], PORTFOLIO: list(chosen)}
    if each:
        sets.update({f"\x00{n}": [n] for n in names})
    out = simulate_sets(
        run,
        posterior,
        population,
        sets,
        simulations=simulations,
        seed=seed,
        progress=progress,
        keep_paths=True,
    )
    existing = {label: o.north_star_path for label, o in out.items()}
    projection = _project(
        tree.north_star_aggregate, model, posterior, population, existing, simulations, seed
    )
    paths = {
        BASELINE: projection.assemble(existing[BASELINE]),
        PORTFOLIO: projection.assemble(existing[PORTFOLIO]),
    }
    alone = {n: projection.assemble(existing[f"\x00{n}"]) for n in names} if each else {}
    observed = (
        _observed(model, history, tree.north_star_aggregate)
        if history is not None
        else pd.Series(dtype=float)
    )
    return Forecast(
        dates=dates,
        aggregate=tree.north_star_aggregate,
        paths=paths,
        initiatives=alone,
        portfolio=chosen,
        observed=observed,
        target=goal,
        target_index=target_index,
        simulations=simulations,
        seed=seed,
        scenario=run,
        posterior=posterior,
        population=population,
        projection=projection,
    )


def _project(
    aggregate: Aggregate,
    model: ForecastModel,
    posterior: PosteriorDraws,
    population: Population,
    existing: Mapping[str, np.ndarray],
    simulations: int,
    seed: int,
) -> Projection:
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
