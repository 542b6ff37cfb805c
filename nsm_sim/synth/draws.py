"""The synthetic world's random numbers, drawn once in a fixed order (:func:`setup`).

An intervention (:mod:`nsm_sim.synth.counterfactual`) reuses them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from nsm_sim.numeric import name_key, stream
from nsm_sim.spec import MetricTree
from nsm_sim.synth.parameters import (
    AR_PHI,
    AR_SD,
    CHURN_DEFINITIONS,
    INITIAL_COHORT,
    LEAVES,
    LOGINS_SD,
    PARENT_SIGMA,
    REVENUE_SD,
    SEGMENT_SHARES,
    SEGMENTS,
    SHOCK_SD,
    SIZE_OFFSET,
    SIZE_SD,
    STATIC_TRAIT,
    Options,
    demo_tree,
)


@dataclass(frozen=True)
class Draws:
    """Every random number of a world, drawn once (an intervention reuses them all)."""

    seg: np.ndarray
    u: np.ndarray
    join: np.ndarray
    shocks: np.ndarray
    leaf_dev: dict[str, np.ndarray]
    parent_noise: dict[str, np.ndarray]
    logins_noise: np.ndarray
    revenue_noise: np.ndarray
    churn_uniform: np.ndarray
    activity_uniform: np.ndarray | None
    trait_noise: np.ndarray | None


def draw(tree: MetricTree, A: int, T: int, seed: int, opt: Options) -> Draws:
    """Draw every random number of a world.

    The default world's draws come in their historical order, then each option's from a
    stream of its own, so an option never moves the default draws.
    """
    rng = np.random.default_rng(seed)
    seg = rng.choice(len(SEGMENTS), size=A, p=SEGMENT_SHARES)
    u = np.asarray(SIZE_OFFSET)[seg] + rng.normal(0.0, SIZE_SD, A)
    initial = rng.random(A) < INITIAL_COHORT
    later = rng.integers(1, T, A) if T > 1 else np.zeros(A, dtype=np.int64)
    shocks = np.cumsum(rng.normal(0.0, SHOCK_SD, T))
    shocks -= shocks[0]
    leaf_dev = {}
    innovation_sd = AR_SD * np.sqrt(1.0 - AR_PHI**2)
    for leaf in LEAVES:
        eps = rng.normal(0.0, innovation_sd, (A, T))
        eps[:, 0] *= AR_SD / innovation_sd  # start from the stationary distribution
        leaf_dev[leaf] = lfilter([1.0], [1.0, -AR_PHI], eps, axis=1)
    parent_noise = {}
    rho = opt.residual_rho
    for parent in reversed(tree.children):
        e = rng.normal(0.0, PARENT_SIGMA[parent], (A, T))
        if rho != 0.0:  # AR(1) within account with the same marginal sd
            scale = np.sqrt(1.0 - rho**2)
            e[:, 1:] *= scale
            e = lfilter([1.0], [1.0, -rho], e, axis=1)
        parent_noise[parent] = e
    logins_noise = rng.normal(0, LOGINS_SD, (A, T))
    revenue_noise = rng.normal(0.0, REVENUE_SD, (A, T))
    churn_uniform = rng.random((A, T))
    activity = None
    if opt.churn == "inactivity":
        activity = stream(seed, name_key("activity")).random((A, T))
    trait = stream(seed, name_key(STATIC_TRAIT)).normal(0.0, 1.0, A) if opt.static_trait else None
    return Draws(
        seg=seg,
        u=u,
        join=np.where(initial, 0, later),
        shocks=shocks,
        leaf_dev=leaf_dev,
        parent_noise=parent_noise,
        logins_noise=logins_noise,
        revenue_noise=revenue_noise,
        churn_uniform=churn_uniform,
        activity_uniform=activity,
        trait_noise=trait,
    )


def setup(
    accounts: int,
    periods: int,
    seed: int,
    *,
    churn_slope: float = -0.5,
    hinge_jump: float = -0.7,
    hinge_tau: float = 7.5,
    revenue_lag: int = 3,
    residual_rho: float = 0.0,
    churn: str = "hazard",
    inactive_periods: int = 4,
    static_trait: bool = False,
    binary_north_star: bool = False,
) -> tuple[MetricTree, Options, Draws]:
    """Check a world's options and draw its random numbers (see :func:`generate_world`).

    Returns
    -------
    tree : MetricTree
    options : Options
    draws : Draws
    """
    if accounts < 1 or periods < 1:
        raise ValueError("accounts and periods must be at least 1")
    opt = Options(
        churn_slope=float(churn_slope),
        hinge_jump=0.0 if binary_north_star else float(hinge_jump),
        hinge_tau=float(hinge_tau),
        revenue_lag=int(revenue_lag),
        residual_rho=float(residual_rho),
        churn=churn,
        inactive_periods=int(inactive_periods),
        static_trait=bool(static_trait),
        binary_north_star=bool(binary_north_star),
    )
    if opt.revenue_lag < 0:
        raise ValueError("revenue_lag must be >= 0")
    if opt.hinge_tau <= 0:
        raise ValueError("hinge_tau must be > 0")
    if not -1.0 < opt.residual_rho < 1.0:
        raise ValueError("residual_rho must be in (-1, 1)")
    if opt.churn not in CHURN_DEFINITIONS:
        raise ValueError(f"churn must be one of {CHURN_DEFINITIONS}, got {opt.churn!r}")
    if opt.inactive_periods < 1:
        raise ValueError("inactive_periods must be >= 1")
    tree = demo_tree()
    if opt.static_trait:
        tree = tree.model_copy(update={"candidates": [*tree.candidates, STATIC_TRAIT]})
    return tree, opt, draw(tree, int(accounts), int(periods), seed, opt)
