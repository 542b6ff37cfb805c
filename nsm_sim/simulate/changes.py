"""Elementwise pieces of the kernel: ramps, joint changes and the threshold over a cell's spread.

- :func:`ramp_share`, :func:`log_multiplier` and :class:`Joint`: how initiatives' changes of
  ``log1p(North Star)`` ramp in and combine.
- :func:`sigmoid`, :func:`jump_bump` and :func:`spread_odds`: the mean of the threshold
  term's ``exp(jump * step)`` over accounts spread uniformly across a range.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function, with numpy's vectorised ``exp`` (faster than ``expit``)."""
    out = np.negative(z)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def jump_bump(hj: np.ndarray) -> np.ndarray:
    """``G(j) = int (exp(j s) - 1 - (exp(j) - 1) s) du`` with ``s = sigmoid(u)``.

    How much ``exp(jump * sigmoid(u))`` differs, summed over ``u``, from the straight line in
    ``sigmoid(u)`` between its ends: ``-sum_{k >= 2} j**k / k! * H_{k-1}`` (``H`` the
    harmonic numbers).
    """
    total = np.zeros_like(hj)
    term, harmonic = np.ones_like(hj), 0.0
    for k in range(1, 30):
        term = term * hj / k
        if k >= 2:
            total -= term * harmonic
        harmonic += 1.0 / k
    return total


#: Largest exponent of the threshold's terms: beyond it they are constant to double precision
#: (a cell would have to span more than about 650 step widths for it to matter).
EXP_MAX = 700.0


def odds_bounds(jump: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(min(1, exp(jump)), max(1, exp(jump)))``, the range of ``exp(jump * s)``.

    Examples
    --------
    >>> [b.item() for b in odds_bounds(np.array(-np.log(2.0)))]
    [0.5, 1.0]
    """
    odds = np.exp(jump)
    return np.minimum(odds, 1.0), np.maximum(odds, 1.0)


def spread_odds(
    e_hi: np.ndarray,
    low: np.ndarray,
    spread: np.ndarray,
    gap: np.ndarray,
    bump: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Mean of ``exp(jump * sigmoid(z))`` for ``z`` uniform on ``[z_hi - 1 / spread, z_hi]``.

    With ``F(z) = gap * softplus(z) + bump * sigmoid(z)``, the integral of
    ``exp(jump * sigmoid(u)) - 1`` up to ``z`` to second order in its bump (``gap = exp(jump)
    - 1``, ``bump`` from :func:`jump_bump`), the mean is ``1 + spread * (F(z_hi) - F(z_lo))``.
    Both ends come from one exponential: with ``E = exp(z_hi)`` and ``c = exp(-1 / spread)``,
    ``softplus(z_hi) - softplus(z_lo) = log1p(q)`` and ``sigmoid(z_hi) - sigmoid(z_lo) = q /
    (1 + E)``, where ``q = (1 - c) E / (1 + c E)``.

    Parameters
    ----------
    e_hi : ndarray
        ``exp(min(z_hi, EXP_MAX))``; overwritten.
    low : ndarray
        ``exp(-1 / spread)`` per cell.
    spread, gap, bump : ndarray
        Broadcasting against ``e_hi`` (``spread`` may be 1 with ``gap`` and ``bump`` already
        multiplied by it).
    bounds : tuple of ndarray, optional
        ``(min(1, exp(jump)), max(1, exp(jump)))``: a mean of ``exp(jump * sigmoid(z))`` lies
        between them whatever ``z``. The second-order expansion leaves them for large jumps
        (a step of 3 or more on a threshold below 1 can make it negative); the mean is then
        held at the bound it crossed.

    Returns
    -------
    ndarray
    """
    q = np.multiply(e_hi, low)
    q += 1.0  # 1 + c E
    np.divide(e_hi, q, out=q)
    q *= 1.0 - low  # q = (1 - c) E / (1 + c E)
    e_hi += 1.0
    step = np.divide(q, e_hi, out=e_hi)
    step *= bump
    mean = np.log1p(q, out=q)
    mean *= gap
    mean += step
    if not (np.isscalar(spread) and spread == 1.0):
        mean *= spread
    mean += 1.0
    if bounds is not None:
        np.clip(mean, bounds[0], bounds[1], out=mean)
    return mean


def ramp_share(start: int, ramp: int, t: np.ndarray) -> np.ndarray:
    """Return the share of an initiative's full effect in periods ``t``: a linear ramp."""
    return np.clip((t - start + 1) / (ramp + 1), 0.0, 1.0)


def log_multiplier(g: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``log(1 + rho (exp(g) - 1))``, exactly ``g`` where ``rho == 1``; ``rho`` on the last axis."""
    if np.all(rho == 1.0):
        return g
    if np.all((rho == 0.0) | (rho == 1.0)):
        return g * rho
    partial = np.log1p(rho * np.expm1(g))
    return np.where(rho == 1.0, g, partial)


class Joint:
    """The joint change of several initiatives, added one part at a time.

    Parts add on the ``log1p`` scale; with ``overlap = w > 0``, of the positive parts the
    largest counts in full and the rest by ``1 - w``, and likewise the negative ones (a single
    part is never shrunk). Only running sums and extremes are kept, not the parts.
    """

    def __init__(self, shape: tuple[int, ...], overlap: float):
        self.overlap = overlap
        self.total = np.zeros(shape)
        if overlap:
            self.positive = np.zeros(shape)
            self.largest = np.zeros(shape)
            self.smallest = np.zeros(shape)

    def add(self, part: np.ndarray, at: slice) -> None:
        """Add a part to the periods ``at`` (the first axis; all of it for a steady state)."""
        self.total[at] += part
        if self.overlap:
            self.positive[at] += np.maximum(part, 0.0)
            np.maximum(self.largest[at], part, out=self.largest[at])
            np.minimum(self.smallest[at], part, out=self.smallest[at])

    def result(self) -> np.ndarray:
        """Return the joint change."""
        if not self.overlap:
            return self.total
        keep = 1.0 - self.overlap
        negative = self.total - self.positive
        return (
            self.largest
            + keep * (self.positive - self.largest)
            + self.smallest
            + keep * (negative - self.smallest)
        )
