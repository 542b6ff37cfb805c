"""The forecast's model of the history: arrivals, the new accounts' ramp, the common shock.

:func:`fit_forecast_model` reads a :class:`~nsm_sim.forecast.history.History` into a
:class:`ForecastModel`, whose parts are each a small, fast model:

- **arrivals** (:mod:`nsm_sim.forecast.acquisition`): new accounts per period and segment,
  log-linear trend, seasonality with two years of history, negative-binomial noise, Laplace
  uncertainty of the coefficients;
- **the ramp**: the North Star of a segment's accounts at tenure ``k`` (``k = 0`` their first
  period), in the history's rows at that tenure, with each period's common shock taken out
  (``N exp(-p_t)``, ``p`` the shock index) so that the ramp is at the level of the first
  period; its mean and standard error per segment and tenure, and the mean and spread of
  ``log1p`` of it (for the churn hazard over the accounts' spread, and for an ``at_least``
  aggregate). Tenures with fewer than :data:`MIN_ROWS` rows take the last tenure that has
  them. The rows at a tenure are the accounts that survived to it, so the ramp is the North
  Star of the survivors, which is what an aggregate over active accounts sums;
- **the common shock**: the same-store log growth of the North Star from each period to the
  next, as a local-level model of the level: a random walk with drift (the common shocks --
  the synthetic world's are one -- and a drift that holds the existing accounts' ramp as the
  history shows it) plus white noise of the level (the accounts' own noise, which does not
  accumulate), ``g_t = mu + eta_t + eps_t - eps_{t-1}``. The noise variance is read from the
  growths' lag-1 autocovariance (``-gamma_1``, clipped to at most 45 % of their variance),
  the walk's from the rest; their scale carries the posterior uncertainty of a variance
  (``(n - 1) / chi2(n - 1)``) and the drift ``mu ~ Normal(g_bar, sigma_eta^2 / n)``. Its draws
  carry the common shocks into the band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nsm_sim.errors import DataError
from nsm_sim.forecast.acquisition import AcquisitionModel, fit_acquisition
from nsm_sim.forecast.history import History

#: Rows a (segment, tenure) needs for its own ramp point.
MIN_ROWS = 20

#: Growths the shock model needs.
MIN_GROWTHS = 3


@dataclass(frozen=True)
class ForecastModel:
    """What the forecast projects new accounts and shocks with (see the module).

    Attributes
    ----------
    segments : tuple of str
    period : {"week", "month"}
    last_period : pandas.Timestamp
        Start of the last observed period.
    acquisition : AcquisitionModel
    ramp_mean, ramp_se : ndarray, shape (S, K)
        The North Star per account by tenure ``0 .. K - 1``, at the first period's shock
        level, and its standard error.
    log_mean, log_sd : ndarray, shape (S, K)
        Mean and standard deviation of ``log1p`` of it (same level).
    shock_level : float
        The shock index of the last observed period (``log`` scale).
    growth : ndarray
        The history's same-store log growths (the shock model's data).
    """

    segments: tuple[str, ...]
    period: str
    last_period: object
    acquisition: AcquisitionModel
    ramp_mean: np.ndarray
    ramp_se: np.ndarray
    log_mean: np.ndarray
    log_sd: np.ndarray
    shock_level: float
    growth: np.ndarray

    def ramp_at(self, tenure: int) -> tuple[np.ndarray, ...]:
        """Ramp columns for tenures ``0 .. tenure - 1`` (the last one carried beyond the data)."""
        k = np.minimum(np.arange(tenure), self.ramp_mean.shape[1] - 1)
        return (
            self.ramp_mean[:, k],
            self.ramp_se[:, k],
            self.log_mean[:, k],
            self.log_sd[:, k],
        )

    def draw_growth(self, horizon: int, simulations: int, rng: np.random.Generator) -> np.ndarray:
        """Draw the common shock's log growth of each projected period.

        Parameters
        ----------
        horizon, simulations : int
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, shape (simulations, horizon)
            Posterior predictive draws (see the module); zeros when the history has too few.
        """
        g = self.growth[np.isfinite(self.growth)]
        n = g.size
        if n < MIN_GROWTHS:
            return np.zeros((simulations, horizon))
        var = float(np.var(g, ddof=1))
        d = g - g.mean()
        gamma1 = float(np.sum(d[1:] * d[:-1]) / (n - 1))
        noise = min(max(-gamma1, 0.0), 0.45 * var)
        walk = var - 2.0 * noise
        scale = (n - 1) / rng.chisquare(n - 1, simulations)
        mu = g.mean() + np.sqrt(scale * walk / n) * rng.standard_normal(simulations)
        eta = np.sqrt(scale * walk)[:, None] * rng.standard_normal((simulations, horizon))
        eps = np.sqrt(scale * noise)[:, None] * rng.standard_normal((simulations, horizon + 1))
        return mu[:, None] + eta + np.diff(eps, axis=1)


def fit_forecast_model(history: History, segments: tuple[str, ...] | None = None) -> ForecastModel:
    """Fit the forecast's arrivals, ramp and shock models from a history (see the module).

    Parameters
    ----------
    history : History
    segments : tuple of str, optional
        The order of the segments (a fit's); by default the history's, sorted.

    Returns
    -------
    ForecastModel

    Raises
    ------
    DataError
        A segment is not in the history, or the history is too short for the arrivals.
    """
    segments = tuple(segments) if segments is not None else history.segments
    unknown = sorted(set(segments) - set(history.segments))
    if unknown:
        raise DataError("forecast history", [f"segment: {unknown} have no rows in the history"])
    counts = history.arrivals().reindex(columns=list(segments), fill_value=0)
    acquisition = fit_acquisition(counts, history.period)

    f = history.frame
    periods = history.periods
    index = history.shock_index()
    p = index[periods.get_indexer(f["period"])]
    n = f["accounts"].to_numpy(dtype=float)
    scale = np.exp(-p)
    work = f[["segment", "tenure"]].copy()
    work["n"] = n
    work["s1"] = f["north_star_sum"].to_numpy(dtype=float) * scale
    work["s2"] = f["north_star_sumsq"].to_numpy(dtype=float) * scale**2
    work["l1"] = f["log_sum"].to_numpy(dtype=float) - n * p
    ls = f["log_sum"].to_numpy(dtype=float)
    work["l2"] = f["log_sumsq"].to_numpy(dtype=float) - 2 * p * ls + n * p**2
    g = work.groupby(["segment", "tenure"], sort=True).sum()
    k_max = int(f["tenure"].max()) + 1
    shape = (len(segments), k_max)
    out = {key: np.full(shape, np.nan) for key in ("mean", "se", "lmean", "lsd")}
    for s, seg in enumerate(segments):
        rows = g.loc[seg] if seg in g.index.get_level_values(0) else None
        last = None
        for k in range(k_max):
            if rows is not None and k in rows.index and rows.loc[k, "n"] >= MIN_ROWS:
                r = rows.loc[k]
                m = r["s1"] / r["n"]
                var = max(r["s2"] / r["n"] - m * m, 0.0)
                lm = r["l1"] / r["n"]
                lvar = max(r["l2"] / r["n"] - lm * lm, 0.0)
                last = (m, np.sqrt(var / r["n"]), lm, np.sqrt(lvar))
            if last is not None:
                out["mean"][s, k], out["se"][s, k], out["lmean"][s, k], out["lsd"][s, k] = last
        if last is None:  # a segment too small for any tenure: its rows pooled
            sel = work[work["segment"] == seg].sum(numeric_only=True)
            m = sel["s1"] / max(sel["n"], 1.0)
            lm = sel["l1"] / max(sel["n"], 1.0)
            var = max(sel["s2"] / max(sel["n"], 1.0) - m * m, 0.0)
            lvar = max(sel["l2"] / max(sel["n"], 1.0) - lm * lm, 0.0)
            out["mean"][s], out["se"][s] = m, np.sqrt(var / max(sel["n"], 1.0))
            out["lmean"][s], out["lsd"][s] = lm, np.sqrt(lvar)
        else:  # tenures before the first with enough rows take it
            first = np.flatnonzero(np.isfinite(out["mean"][s]))[0]
            for key in out:
                out[key][s, :first] = out[key][s, first]
    return ForecastModel(
        segments=segments,
        period=history.period,
        last_period=periods[-1],
        acquisition=acquisition,
        ramp_mean=out["mean"],
        ramp_se=out["se"],
        log_mean=out["lmean"],
        log_sd=out["lsd"],
        shock_level=float(index[-1]),
        growth=history.growth(),
    )
