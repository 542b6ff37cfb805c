"""Numeric kernels shared by every stage: numpy and scipy only, no PyMC.

One place for each algorithm that more than one stage needs: the two-way (account and
period) within transform, the logistic regression solved by Newton's method (maximum
likelihood or MAP, with its Laplace covariance), weighted quantiles, posterior interval
summaries and their z-values, and the random streams derived from one seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from scipy.special import expit, log_expit

#: Probability of the intervals shown in every table.
INTERVAL_PROB = 0.9
#: Two-sided standard-normal quantiles: 90 % and 99 % intervals.
Z_90 = 1.6448536269514722
Z_99 = 2.5758293035489004


# --------------------------------------------------------------------------- fixed effects


def two_way_effects(
    Z: np.ndarray,
    accounts: np.ndarray,
    periods: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the columns of ``Z`` into account effects, period effects and residuals.

    Least squares of ``Z = a[account] + g[period] + r`` by alternating projections
    (backfitting) until no effect moves by more than ``tol``: exact for unbalanced panels.
    The period effects have mean 0 over rows. Without ``periods`` only account means are
    removed (one pass, exact).

    Parameters
    ----------
    Z : ndarray, shape (n,) or (n, K)
        Values.
    accounts : ndarray of int, shape (n,)
        Codes ``0..A-1`` of each row's account.
    periods : ndarray of int, shape (n,), optional
        Codes ``0..P-1`` of each row's period.
    tol : float, default 1e-10
        Largest change of an effect in the last sweep when it stops.
    max_iter : int, default 100000
        Sweeps before giving up.

    Returns
    -------
    tuple of ndarray
        ``a[accounts]``, ``g[periods]`` and ``r``, each the shape of ``Z``; ``Z = a + g + r``.

    Raises
    ------
    RuntimeError
        When the sweeps do not converge.

    Examples
    --------
    >>> a, g, r = two_way_effects(
    ...     np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    >>> a.round(6) + 0.0, g.round(6) + 0.0, r.round(6) + 0.0
    (array([1.5, 1.5, 3.5, 3.5]), array([-0.5,  0.5, -0.5,  0.5]), array([0., 0., 0., 0.]))
    """
    Z = np.asarray(Z, dtype=float)
    V = Z.reshape(len(Z), -1)
    accounts = np.asarray(accounts, dtype=np.int64)
    n_a = int(accounts.max()) + 1 if len(accounts) else 0
    count_a = np.maximum(np.bincount(accounts, minlength=n_a), 1)
    A = np.zeros_like(V)
    G = np.zeros_like(V)
    if periods is None:
        for j in range(V.shape[1]):
            A[:, j] = (np.bincount(accounts, V[:, j], n_a) / count_a)[accounts]
        return A.reshape(Z.shape), G.reshape(Z.shape), (V - A).reshape(Z.shape)
    periods = np.asarray(periods, dtype=np.int64)
    n_p = int(periods.max()) + 1 if len(periods) else 0
    count_p = np.maximum(np.bincount(periods, minlength=n_p), 1)
    for j in range(V.shape[1]):
        z = V[:, j]
        a, g = np.zeros(n_a), np.zeros(n_p)
        for _ in range(max_iter):
            a_new = np.bincount(accounts, z - g[periods], n_a) / count_a
            g_new = np.bincount(periods, z - a_new[accounts], n_p) / count_p
            step = max(np.abs(a_new - a).max(initial=0.0), np.abs(g_new - g).max(initial=0.0))
            a, g = a_new, g_new
            if step < tol:
                break
        else:
            raise RuntimeError(f"two-way demeaning did not converge in {max_iter} sweeps")
        shift = g[periods].mean() if len(periods) else 0.0
        A[:, j] = a[accounts] + shift
        G[:, j] = g[periods] - shift
    return A.reshape(Z.shape), G.reshape(Z.shape), (V - A - G).reshape(Z.shape)


def demean_two_way(
    Z: np.ndarray, accounts: np.ndarray, periods: np.ndarray | None = None, **kwargs
) -> np.ndarray:
    """Remove account (and period) effects from the columns of ``Z``: the within transform.

    The residual of :func:`two_way_effects`, i.e. of a regression on account and period
    dummies; exact for unbalanced panels.

    Parameters
    ----------
    Z : ndarray, shape (n,) or (n, K)
        Values to transform.
    accounts : ndarray of int, shape (n,)
        Account codes.
    periods : ndarray of int, shape (n,), optional
        Period codes; without them only account means are removed.
    **kwargs
        ``tol`` and ``max_iter`` of :func:`two_way_effects`.

    Returns
    -------
    ndarray
        The residuals, the shape of ``Z``.

    Examples
    --------
    >>> Z = np.array([1.0, 2.0, 3.0, 5.0])
    >>> demean_two_way(Z, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])).round(12) + 0.0
    array([ 0.25, -0.25, -0.25,  0.25])
    """
    return two_way_effects(Z, accounts, periods, **kwargs)[2]


# --------------------------------------------------------------------------- logistic regression


def logistic_map(
    X: np.ndarray,
    k: np.ndarray,
    n: np.ndarray | None = None,
    *,
    prior_sd: float | np.ndarray | None = None,
    tol: float = 1e-9,
    max_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit a logistic regression by Newton's method: the MAP, its Laplace covariance, the fit.

    ``k ~ Binomial(n, expit(X @ beta))`` (Bernoulli when ``n`` is omitted), with independent
    ``Normal(0, prior_sd)`` priors on the coefficients, or maximum likelihood when
    ``prior_sd`` is None (a ridge of 1e-8 keeps the Newton steps defined).

    Parameters
    ----------
    X : ndarray, shape (m, p)
        Design matrix.
    k : ndarray, shape (m,)
        Events (0/1 per row, or counts per cell).
    n : ndarray, shape (m,), optional
        Trials per cell; 1 per row by default.
    prior_sd : float or ndarray, optional
        Prior standard deviation of each coefficient; None for maximum likelihood.
    tol : float, default 1e-9
        Largest Newton step at convergence.
    max_iter : int, default 50
        Newton steps at most.

    Returns
    -------
    tuple
        ``beta`` (p,), its covariance (the inverse of the negative Hessian of the log
        posterior at the mode) (p, p), and the Binomial log-likelihood at ``beta`` (without
        the binomial coefficients).

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> beta, cov, ll = logistic_map(X, np.array([1, 3, 5, 8]), np.array([10, 10, 10, 10]))
    >>> bool(beta[1] > 0 and np.all(np.diag(cov) > 0))
    True
    """
    X = np.asarray(X, dtype=float)
    k = np.asarray(k, dtype=float)
    n = np.ones_like(k) if n is None else np.asarray(n, dtype=float)
    p = X.shape[1]
    if prior_sd is None:
        P, ridge = np.zeros((p, p)), 1e-8 * np.eye(p)
    else:
        P = np.diag(1.0 / np.broadcast_to(np.asarray(prior_sd, dtype=float), (p,)) ** 2)
        ridge = np.zeros((p, p))
    beta = np.zeros(p)
    for _ in range(max_iter):
        q = expit(X @ beta)
        grad = X.T @ (k - n * q) - P @ beta
        H = (X * (n * q * (1.0 - q))[:, None]).T @ X + P + ridge
        step = np.linalg.solve(H, grad)
        beta = beta + step
        if np.abs(step).max() < tol:
            break
    eta = X @ beta
    q = expit(eta)
    H = (X * (n * q * (1.0 - q))[:, None]).T @ X + P + ridge
    loglik = float(np.sum(k * log_expit(eta) + (n - k) * log_expit(-eta)))
    return beta, np.linalg.inv(H), loglik


# --------------------------------------------------------------------------- summaries


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    """Quantiles of weighted values (each value's weight centred on it, linear between).

    Parameters
    ----------
    values, weights : ndarray, shape (n,)
        Values and their non-negative weights (at least one positive).
    q : float or array_like
        Probabilities in [0, 1].

    Returns
    -------
    ndarray or float
        The quantiles, the shape of ``q``.

    Examples
    --------
    >>> float(weighted_quantile(np.array([1.0, 2.0, 3.0]), np.array([1, 1, 1]), 0.5))
    2.0
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cum, v)


def interval(values: np.ndarray, prob: float = INTERVAL_PROB) -> dict[str, float]:
    """Mean and equal-tailed interval of draws.

    Parameters
    ----------
    values : array_like
        Draws (flattened).
    prob : float, default 0.9
        Probability of the interval.

    Returns
    -------
    dict
        ``mean``, ``low`` and ``high``.

    Examples
    --------
    >>> interval(np.arange(101.0))
    {'mean': 50.0, 'low': 5.0, 'high': 95.0}
    """
    v = np.asarray(values, dtype=float).ravel()
    tail = round((1.0 - prob) / 2.0, 12)  # 0.05 exactly for a 90 % interval, not 0.0499...
    lo, hi = np.quantile(v, [tail, 1.0 - tail])
    return {"mean": float(v.mean()), "low": float(lo), "high": float(hi)}


# --------------------------------------------------------------------------- randomness

#: The first key of each stage's streams. One ``--seed`` reaches every stage; each stage draws
#: only from its own children of it (``stream(seed, STAGE_FIT, k)``), so no two purposes ever
#: share a stream, and a stage's numbers do not depend on which other stages ran.
STAGE_FIT = 1
STAGE_VALIDATE = 2
STAGE_SIMULATE = 3


def stream(seed: int, *key: int) -> np.random.Generator:
    """Return the random stream of one consumer: a child of ``SeedSequence(seed)`` by its key.

    ``stream(seed, i)`` is the generator of ``SeedSequence(seed).spawn(i + 1)[i]``: streams
    with different keys are independent, and each consumer's numbers do not depend on how
    many others there are or in which order they draw.

    Parameters
    ----------
    seed : int
        The user's seed (non-negative).
    *key : int
        The consumer's key (e.g. a stage number, then an index within the stage).

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> a = stream(7, 1).random()
    >>> b = np.random.default_rng(np.random.SeedSequence(7).spawn(2)[1]).random()
    >>> a == b
    True
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


def child_seed(seed: int, *key: int) -> int:
    """Return an integer seed for a library that takes one, derived like :func:`stream`.

    Parameters
    ----------
    seed : int
        The user's seed.
    *key : int
        The consumer's key.

    Returns
    -------
    int
        A seed in ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence(seed, spawn_key=tuple(key)).generate_state(1)[0])


def name_key(name: str) -> int:
    """Return a stable key for a name (the CRC-32 of its UTF-8 bytes), for :func:`stream`.

    Parameters
    ----------
    name : str

    Returns
    -------
    int

    Examples
    --------
    >>> name_key("a") == name_key("a") != name_key("b")
    True
    """
    return zlib.crc32(name.encode("utf-8"))


__all__: Sequence[str] = [
    "INTERVAL_PROB",
    "STAGE_FIT",
    "STAGE_SIMULATE",
    "STAGE_VALIDATE",
    "Z_90",
    "Z_99",
    "child_seed",
    "demean_two_way",
    "interval",
    "logistic_map",
    "name_key",
    "stream",
    "two_way_effects",
    "weighted_quantile",
]
