"""New accounts per period: a log-linear count model with trend and, where it can, seasonality.

For each segment ``s`` the arrivals of period ``t`` (the history's periods after the first)
are

    n[s, t] ~ NegativeBinomial(mean mu[s, t], variance phi[s] * mu[s, t])
    log mu[s, t] = X[t] @ beta[s],  X[t] = [1, (t - t_mid) / T, Fourier terms]

with Fourier terms of the year (``sin, cos`` of ``2 pi k t / P``, ``k = 1, 2``, ``P`` = 52
weeks or 12 months) only when the history holds at least two whole years: one year cannot
tell a season from a trend. ``beta`` is the Poisson maximum-likelihood estimate (Newton's
method) and its uncertainty the Laplace approximation ``Normal(beta_hat, phi (X' W X)^-1)``,
with ``phi`` the Pearson dispersion (quasi-Poisson, at least 1): a negative binomial's mean
and variance without a second optimisation, and the same inflation of the parameters'
covariance. Forecast arrivals are drawn from the parameters' approximate posterior and then
from the count noise (gamma-Poisson with the fitted dispersion), so their band holds both. A
segment with no arrival in the history gets none; a drawn rate is capped at :data:`RATE_CAP`
times the segment's busiest period (a wide trend on few counts must not explode).
Why not NUTS: a handful of parameters per segment with a near-Gaussian likelihood; the
Laplace approximation is exact to the precision that matters and takes milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.errors import DataError

#: Periods in a year, per calendar.
PERIODS_PER_YEAR = {"week": 52, "month": 12}

#: Fourier harmonics of the year, when the history holds two years.
HARMONICS = 2

#: A drawn arrival rate stays below this many times a segment's busiest observed period.
RATE_CAP = 10.0

#: Newton iterations (the Poisson log-likelihood is concave: a dozen are plenty).
NEWTON_STEPS = 50


@dataclass(frozen=True)
class AcquisitionModel:
    """The fitted arrival model of each segment (see the module).

    Attributes
    ----------
    segments : tuple of str
    period : {"week", "month"}
    n_history : int
        Periods the model was fitted on (the history's periods after the first).
    seasonal : bool
        Whether the design holds the Fourier terms of the year.
    beta : ndarray, shape (S, K)
        Coefficients per segment: intercept, trend, then Fourier terms.
    cov : ndarray, shape (S, K, K)
        Their covariance (Laplace, inflated by the dispersion).
    dispersion : ndarray, shape (S,)
        ``phi``, variance over mean of the counts (at least 1).
    counts : pandas.DataFrame
        The arrivals it was fitted on (periods x segments).
    """

    segments: tuple[str, ...]
    period: str
    n_history: int
    seasonal: bool
    beta: np.ndarray
    cov: np.ndarray
    dispersion: np.ndarray
    counts: pd.DataFrame

    def design(self, steps: np.ndarray) -> np.ndarray:
        """Return the design rows of periods ``steps`` (0 = the first period fitted).

        Parameters
        ----------
        steps : ndarray of int
            Periods counted from the first fitted one; the forecast's are ``n_history + h``.

        Returns
        -------
        ndarray, shape (len(steps), K)
        """
        return _design(np.asarray(steps, dtype=float), self.n_history, self.period, self.seasonal)

    def expected(self, steps: np.ndarray) -> np.ndarray:
        """Return the expected arrivals per segment at the fitted coefficients, (S, steps)."""
        return np.exp(self.beta @ self.design(steps).T)

    def draw(self, horizon: int, simulations: int, rng: np.random.Generator) -> np.ndarray:
        """Draw the arrivals of the ``horizon`` periods after the history.

        Parameters
        ----------
        horizon : int
        simulations : int
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, shape (simulations, S, horizon)
            Counts (floats holding integers): parameter uncertainty, then count noise.
        """
        x = self.design(self.n_history + np.arange(horizon))  # (H, K)
        n_s, k = self.beta.shape
        z = rng.standard_normal((simulations, n_s, k))
        chol = np.linalg.cholesky(self.cov + 1e-12 * np.eye(k))  # (S, K, K)
        beta = self.beta[None] + np.einsum("sij,nsj->nsi", chol, z)
        # a draw of the trend may not take a segment beyond RATE_CAP times its busiest period
        cap = np.log(RATE_CAP * (self.counts.to_numpy(dtype=float).max(axis=0) + 1.0))
        mu = np.exp(np.minimum(np.einsum("nsk,hk->nsh", beta, x), cap[None, :, None]))
        phi = self.dispersion[None, :, None]
        # gamma-Poisson: variance phi * mu, i.e. shape mu / (phi - 1)
        over = phi > 1.0 + 1e-9
        shape = np.where(over, mu / np.maximum(phi - 1.0, 1e-9), 1.0)
        rate = np.where(over, rng.gamma(shape, 1.0) / shape, 1.0)
        return rng.poisson(mu * rate).astype(float)


def _design(steps: np.ndarray, n_history: int, period: str, seasonal: bool) -> np.ndarray:
    mid = (n_history - 1) / 2.0
    cols = [np.ones_like(steps), (steps - mid) / max(n_history, 1)]
    if seasonal:
        year = PERIODS_PER_YEAR[period]
        for k in range(1, HARMONICS + 1):
            angle = 2.0 * np.pi * k * steps / year
            cols += [np.sin(angle), np.cos(angle)]
    return np.column_stack(cols)


def _poisson_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Poisson MLE by Newton's method; its inverse information and the Pearson dispersion."""
    k = x.shape[1]
    beta = np.zeros(k)
    beta[0] = np.log(max(y.mean(), 0.5))
    ridge = 1e-6 * np.eye(k)  # keeps a segment with no arrival finite (its rate then ~0)
    for _ in range(NEWTON_STEPS):
        mu = np.exp(np.clip(x @ beta, -30.0, 30.0))
        info = x.T @ (x * mu[:, None]) + ridge
        step = np.linalg.solve(info, x.T @ (y - mu) - ridge @ beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = np.exp(np.clip(x @ beta, -30.0, 30.0))
    info = x.T @ (x * mu[:, None]) + ridge
    dof = max(len(y) - k, 1)
    pearson = float(np.sum((y - mu) ** 2 / np.maximum(mu, 1e-9)) / dof)
    return beta, np.linalg.inv(info), max(pearson, 1.0)


def fit_acquisition(counts: pd.DataFrame, period: str) -> AcquisitionModel:
    """Fit the arrival model of each segment (see the module).

    Parameters
    ----------
    counts : pandas.DataFrame
        Arrivals per period (rows, in order, regular) and segment (columns), e.g.
        :meth:`nsm_sim.forecast.History.arrivals`.
    period : {"week", "month"}

    Returns
    -------
    AcquisitionModel

    Raises
    ------
    DataError
        Fewer than 3 periods of arrivals, or counts that are negative or not finite.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> counts = pd.DataFrame({"all": rng.poisson(40.0, 60)})
    >>> model = fit_acquisition(counts, "week")
    >>> bool(abs(model.expected([30])[0, 0] - 40.0) < 5.0)
    True
    """
    values = counts.to_numpy(dtype=float)
    if values.shape[0] < 3:
        raise DataError(
            "forecast history",
            [f"arrivals: {values.shape[0]} period(s) after the first; expected at least 3"],
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise DataError("forecast history", ["arrivals: expected finite counts >= 0"])
    n = values.shape[0]
    seasonal = n >= 2 * PERIODS_PER_YEAR[period]
    x = _design(np.arange(n, dtype=float), n, period, seasonal)
    betas, covs, phis = [], [], []
    for s in range(values.shape[1]):
        if not values[:, s].any():  # no arrival in the history: none forecast
            k = x.shape[1]
            betas.append(np.r_[-60.0, np.zeros(k - 1)])
            covs.append(np.zeros((k, k)))
            phis.append(1.0)
            continue
        beta, inv_info, phi = _poisson_fit(x, values[:, s])
        betas.append(beta)
        covs.append(phi * inv_info)
        phis.append(phi)
    return AcquisitionModel(
        segments=tuple(str(c) for c in counts.columns),
        period=period,
        n_history=n,
        seasonal=seasonal,
        beta=np.array(betas),
        cov=np.array(covs),
        dispersion=np.array(phis),
        counts=counts,
    )
