"""Quantiles as numpy computes them, from a few order statistics a query engine returns.

``numpy.quantile`` (the default, linear method) reads two neighbouring order statistics of
the sorted values per quantile and interpolates between them. A query engine can return just
those order statistics (see :func:`nsm_sim.events.reduce_sql.order_statistics`), so the
quantiles, and the level bins built on them (:func:`nsm_sim.data.level_bins`), come out
identical to numpy's on the rows without the rows leaving the engine.
"""

from __future__ import annotations

import numpy as np


def positions(count: int, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the order statistics numpy's linear quantile reads, and the weight between them.

    Parameters
    ----------
    count : int
        Number of values (at least 1).
    quantiles : ndarray of float
        In [0, 1].

    Returns
    -------
    tuple of ndarray
        ``below`` and ``above`` (0-based positions in the sorted values) and ``gamma``, the
        weight of ``above``.
    """
    q = np.asarray(quantiles, dtype=float)
    virtual = (count - 1) * q
    below = np.floor(virtual)
    gamma = virtual - below
    above = below + 1
    at_end = virtual >= count - 1
    below[at_end] = above[at_end] = count - 1
    below[virtual < 0] = above[virtual < 0] = 0
    return below.astype(np.int64), above.astype(np.int64), gamma


def interpolate(low: np.ndarray, high: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Interpolate between two order statistics exactly as numpy's linear quantile does.

    Parameters
    ----------
    low, high : ndarray
        The values at ``below`` and ``above`` of :func:`positions`.
    gamma : ndarray
        The weight of ``high``.

    Returns
    -------
    ndarray
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    diff = high - low
    out = low + diff * gamma
    near_high = gamma >= 0.5
    out[near_high] = (high - diff * (1 - gamma))[near_high]
    return out


def quantiles_from(count: int, quantiles: np.ndarray, value_at: dict[int, float]) -> np.ndarray:
    """Return ``numpy.quantile(values, quantiles)`` from the order statistics it needs.

    Parameters
    ----------
    count : int
        Number of values.
    quantiles : ndarray of float
    value_at : dict
        Sorted position to value, for every position :func:`positions` names.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    >>> q = np.array([0.1, 0.5, 0.9])
    >>> below, above, _ = positions(len(values), q)
    >>> ordered = np.sort(values)
    >>> found = quantiles_from(len(values), q, {int(i): ordered[i] for i in (*below, *above)})
    >>> bool((found == np.quantile(values, q)).all())
    True
    """
    below, above, gamma = positions(count, quantiles)
    low = np.array([value_at[int(i)] for i in below], dtype=float)
    high = np.array([value_at[int(i)] for i in above], dtype=float)
    return interpolate(low, high, gamma)


def median_from(count: int, value_at: dict[int, float]) -> float:
    """Return ``numpy.median`` from its middle order statistic(s) (positions :func:`middle`).

    Parameters
    ----------
    count : int
    value_at : dict
        Sorted position to value.

    Returns
    -------
    float
    """
    half = count // 2
    if count % 2:
        return float(value_at[half])
    return float(np.mean(np.array([value_at[half - 1], value_at[half]])))


def middle(count: int) -> tuple[int, ...]:
    """Return the sorted positions :func:`median_from` reads."""
    half = count // 2
    return (half,) if count % 2 else (half - 1, half)
