"""Lift models: relative lifts drawn from each distribution a scenario can give.

One sampler per lift model of :mod:`nsm_sim.spec` (interval, normal, log-normal, beta,
uniform, PERT, an A/B experiment's posterior, fixed), behind :func:`sample_lift`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from nsm_sim.numeric import Z_90
from nsm_sim.spec import (
    BetaLift,
    ExperimentLift,
    FixedLift,
    IntervalLift,
    LogNormalLift,
    NormalLift,
    PertLift,
    UniformLift,
)

#: Lifts below this are clipped (a metric cannot fall by 100 % or more).
MIN_LIFT = -0.99


def _interval(lift: IntervalLift, size: int, rng: np.random.Generator) -> np.ndarray:
    if lift.low == lift.high:
        return np.full(size, float(lift.low))
    z = rng.standard_normal(size)
    if lift.low > 0:
        lo, hi = math.log(lift.low), math.log(lift.high)
        return np.exp((lo + hi) / 2 + (hi - lo) / (2 * Z_90) * z)
    return (lift.low + lift.high) / 2 + (lift.high - lift.low) / (2 * Z_90) * z


def _normal(lift: NormalLift, size: int, rng: np.random.Generator) -> np.ndarray:
    return lift.mean + lift.sd * rng.standard_normal(size)


def _lognormal(lift: LogNormalLift, size: int, rng: np.random.Generator) -> np.ndarray:
    return lift.median * np.exp(lift.sigma * rng.standard_normal(size))


def _beta(lift: BetaLift, size: int, rng: np.random.Generator) -> np.ndarray:
    return lift.scale * rng.beta(lift.alpha, lift.beta, size)


def _uniform(lift: UniformLift, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(lift.low, lift.high, size)


def pert_parameters(low: float, mode: float, high: float) -> tuple[float, float]:
    """Return the Beta shape parameters of a PERT distribution (``lambda = 4``).

    Parameters
    ----------
    low, mode, high : float
        Minimum, most likely value and maximum, ``low <= mode <= high``, ``low < high``.

    Returns
    -------
    tuple of float
        ``(alpha, beta)``: the PERT variable is ``low + (high - low) * Beta(alpha, beta)``.

    Examples
    --------
    >>> pert_parameters(0.0, 0.5, 1.0)
    (3.0, 3.0)
    """
    span = high - low
    return 1 + 4 * (mode - low) / span, 1 + 4 * (high - mode) / span


def _pert(lift: PertLift, size: int, rng: np.random.Generator) -> np.ndarray:
    a, b = pert_parameters(lift.low, lift.mode, lift.high)
    return lift.low + (lift.high - lift.low) * rng.beta(a, b, size)


def experiment_parameters(lift: ExperimentLift) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return the Beta posteriors of the control and treatment conversion rates.

    Parameters
    ----------
    lift : ExperimentLift
        The A/B result.

    Returns
    -------
    tuple
        ``((a_control, b_control), (a_treatment, b_treatment))`` under Beta(1, 1) priors:
        ``a = 1 + conversions``, ``b = 1 + n - conversions``.
    """
    c, t = lift.experiment.control, lift.experiment.treatment
    return (1.0 + c.conversions, 1.0 + c.n - c.conversions), (
        1.0 + t.conversions,
        1.0 + t.n - t.conversions,
    )


def _experiment(lift: ExperimentLift, size: int, rng: np.random.Generator) -> np.ndarray:
    (ac, bc), (at, bt) = experiment_parameters(lift)
    p_control = rng.beta(ac, bc, size)
    p_treatment = rng.beta(at, bt, size)
    return p_treatment / p_control - 1.0


def _fixed(lift: FixedLift, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.full(size, float(lift.value))


_SAMPLERS: Mapping[type, Callable[[Any, int, np.random.Generator], np.ndarray]] = MappingProxyType(
    {
        IntervalLift: _interval,
        NormalLift: _normal,
        LogNormalLift: _lognormal,
        BetaLift: _beta,
        UniformLift: _uniform,
        PertLift: _pert,
        ExperimentLift: _experiment,
        FixedLift: _fixed,
    }
)


def sample_lift(lift: Any, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw relative lifts (``0.05`` = +5 %) from a lift model of a scenario.

    - ``IntervalLift`` ``{low, high}``, a 90 % interval: when ``low > 0`` the lift is
      log-normal with 5 % and 95 % quantiles ``low`` and ``high`` (median
      ``sqrt(low * high)``); otherwise normal with those quantiles; ``low == high`` is a
      fixed lift.
    - ``NormalLift`` (mean, sd), ``LogNormalLift`` (``median * exp(sigma * Z)``),
      ``BetaLift`` (``scale * Beta(alpha, beta)``), ``UniformLift`` (low, high),
      ``PertLift`` (``low + (high - low) * Beta`` with ``lambda = 4``, see
      :func:`pert_parameters`), ``FixedLift`` (the value).
    - ``ExperimentLift``: the posterior of ``p_treatment / p_control - 1`` with Beta(1, 1)
      priors on both conversion rates (both Betas are sampled).

    Lifts below -99 % (possible in the tails of a normal) are clipped to ``MIN_LIFT = -0.99``:
    a metric cannot fall by 100 % or more.

    Parameters
    ----------
    lift : lift model
        One of the lift models of :mod:`nsm_sim.spec`.
    size : int
        Number of lifts.
    rng : numpy.random.Generator
        The random stream.

    Returns
    -------
    ndarray, shape (size,)

    Examples
    --------
    >>> from nsm_sim.spec import FixedLift
    >>> sample_lift(FixedLift(value=0.1), 3, np.random.default_rng(0)).tolist()
    [0.1, 0.1, 0.1]
    """
    try:
        sampler = _SAMPLERS[type(lift)]
    except KeyError:
        raise TypeError(f"no sampler for lift model {type(lift).__name__}") from None
    return np.maximum(sampler(lift, size, rng), MIN_LIFT)
