"""Trees, populations, posteriors, initiatives and scenarios, small and of the demo's size.

See :mod:`nsm_sim.testing` for the two families.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.numeric import name_key, stream
from nsm_sim.simulate import PosteriorDraws
from nsm_sim.simulate.levels import NORTH_STAR_MAX, NORTH_STAR_MIN, share_column
from nsm_sim.spec import Initiative, MetricTree, Scenario
from nsm_sim.synth import demo_tree

#: Segments of the small inputs.
SEGMENTS = ("free", "team")
#: Segments of the demo tree's inputs.
DEMO_SEGMENTS = ("enterprise", "free", "team")


# --------------------------------------------------------------------------- trees


def small_tree() -> MetricTree:
    """Return the tree ``nsm <- a <- (a1, a2); nsm <- b``: two levels, four edges.

    Returns
    -------
    MetricTree
    """
    return MetricTree(name="t", north_star="nsm", inputs={"a": ["a1", "a2"], "b": []})


def flat_tree() -> MetricTree:
    """Return the tree ``nsm <- a``: one edge.

    Returns
    -------
    MetricTree
    """
    return MetricTree(name="flat", north_star="nsm", inputs={"a": []})


# --------------------------------------------------------------------------- populations


def _population(segments: Sequence[str], rows: list[dict[str, Any]]) -> Population:
    return Population(tuple(segments), pd.DataFrame(rows))


def small_population(segments: Sequence[str] = SEGMENTS, *, value: bool = True) -> Population:
    """Return three cells per segment: low, middle and high North Star.

    Segment ``k`` has ``k + 1`` times the accounts, a North Star ``1 + 0.3 k`` times as high
    and a value of ``10 + 5 k`` per account per period.

    Parameters
    ----------
    segments : sequence of str, default :data:`SEGMENTS`
    value : bool, default True
        False: every cell's value is 0 (a population without a value column).

    Returns
    -------
    Population
    """
    levels = [(0.5, 40.0, 2.0), (4.0, 120.0, 10.0), (20, 60, 30)]
    rows = [
        {
            "segment": seg,
            "segment_idx": k,
            "accounts": accounts * (k + 1),
            "north_star": north_star * (1 + 0.3 * k),
            "tenure": tenure + level,
            "value": (10.0 + 5 * k) if value else 0.0,
        }
        for k, seg in enumerate(segments)
        for level, (north_star, accounts, tenure) in enumerate(levels)
    ]
    return _population(segments, rows)


def demo_population(levels: int = 20, seed: int = 2, *, within: bool = False) -> Population:
    """Return :data:`DEMO_SEGMENTS` x ``levels`` cells (60 by default), North Star 0.5 x 1.25^level.

    Parameters
    ----------
    levels : int, default 20
        North Star levels per segment.
    seed : int, default 2
        Draws the accounts (20-199 per cell) and tenures (5-40).
    within : bool, default False
        Also give the levels within each cell (:mod:`nsm_sim.simulate.levels`): the North
        Star's range (a factor 1.25 wide around the cell's level) and each input's share,
        uniform on [0.3, 0.95] (from a stream of its own: the other columns do not change).

    Returns
    -------
    Population
    """
    rng = np.random.default_rng(seed)
    rows = [
        {
            "segment": seg,
            "segment_idx": k,
            "accounts": float(rng.integers(20, 200)),
            "north_star": 0.5 * 1.25**level,
            "tenure": float(rng.uniform(5, 40)),
            "value": 10.0 * (k + 1),
        }
        for k, seg in enumerate(DEMO_SEGMENTS)
        for level in range(levels)
    ]
    population = _population(DEMO_SEGMENTS, rows)
    if within:
        frame = population.frame
        frame[NORTH_STAR_MIN] = frame["north_star"] / np.sqrt(1.25)
        frame[NORTH_STAR_MAX] = frame["north_star"] * np.sqrt(1.25)
        shares = stream(seed, name_key("shares"))
        tree = demo_tree()
        for node in tree.nodes[1:]:
            frame[share_column(node)] = shares.uniform(0.3, 0.95, len(frame))
    return population


# --------------------------------------------------------------------------- posteriors


def random_posterior(
    tree: MetricTree | None = None,
    segments: Sequence[str] = SEGMENTS,
    n_draws: int = 50,
    seed: int = 0,
    *,
    hinge: bool = True,
) -> PosteriorDraws:
    """Return a widely spread random posterior, for checks that must hold on any draw.

    Elasticities uniform on [0.2, 0.9]; churn intercepts about -2.5, slopes about -0.5,
    tenure slopes about -0.2; hinge jumps about -0.6 at thresholds uniform on [2, 6].

    Parameters
    ----------
    tree : MetricTree, optional
        Gives the edges; :func:`small_tree` by default.
    segments : sequence of str, default :data:`SEGMENTS`
    n_draws : int, default 50
        Posterior draws.
    seed : int, default 0
    hinge : bool, default True
        Whether the retention model has the threshold term.

    Returns
    -------
    PosteriorDraws
    """
    tree = small_tree() if tree is None else tree
    rng = np.random.default_rng(seed)
    n_e, n_s = len(tree.edges), len(segments)
    return PosteriorDraws(
        segments=tuple(segments),
        edges=tuple(tree.edges),
        elasticity=rng.uniform(0.2, 0.9, (n_draws, n_e, n_s)),
        churn_intercept=rng.normal(-2.5, 0.2, (n_draws, n_s)),
        churn_slope=rng.normal(-0.5, 0.1, (n_draws, n_s)),
        tenure_slope=rng.normal(-0.2, 0.05, n_draws),
        hinge_jump=rng.normal(-0.6, 0.1, n_draws) if hinge else None,
        hinge_tau=rng.uniform(2.0, 6.0, n_draws) if hinge else None,
    )


def demo_posterior(n_draws: int = 1000, seed: int = 1, *, hinge: bool = True) -> PosteriorDraws:
    """Return a random posterior of the demo tree's size (5 edges, 3 segments), like a fit's.

    Elasticities about 0.5, churn intercepts about -2.5, slopes about -0.4, tenure slopes
    about -0.2, hinge jumps about -0.5 at thresholds about 3; all normal and concentrated.

    Parameters
    ----------
    n_draws : int, default 1000
        Posterior draws.
    seed : int, default 1
    hinge : bool, default True
        Whether the retention model has the threshold term.

    Returns
    -------
    PosteriorDraws
    """
    rng = np.random.default_rng(seed)
    tree = demo_tree()
    n_e, n_s = len(tree.edges), len(DEMO_SEGMENTS)
    return PosteriorDraws(
        segments=DEMO_SEGMENTS,
        edges=tuple(tree.edges),
        elasticity=rng.normal(0.5, 0.1, (n_draws, n_e, n_s)),
        churn_intercept=rng.normal(-2.5, 0.1, (n_draws, n_s)),
        churn_slope=rng.normal(-0.4, 0.05, (n_draws, n_s)),
        tenure_slope=rng.normal(-0.2, 0.05, n_draws),
        hinge_jump=rng.normal(-0.5, 0.1, n_draws) if hinge else None,
        hinge_tau=rng.normal(3.0, 0.3, n_draws) if hinge else None,
    )


# --------------------------------------------------------------------------- scenarios


def initiative(name: str = "x", target: str = "a", lift: Any = 0.1, **fields: Any) -> Initiative:
    """Return an initiative: ``+10 %`` on ``a`` unless told otherwise.

    Parameters
    ----------
    name, target : str
    lift : float, dict or lift model
        As in a scenario file.
    **fields
        Any other field of :class:`~nsm_sim.spec.Initiative` (``confidence``, ``effort``,
        ``start``, ``ramp``, ``reach``, ``segments``, ``requires``, ``excludes``).

    Returns
    -------
    Initiative
    """
    return Initiative(name=name, target=target, lift=lift, **fields)


def scenario(
    initiatives: Sequence[Initiative],
    *,
    tree: MetricTree | None = None,
    horizon: int = 12,
    capacity: float = 10.0,
    overlap: float = 0.0,
    name: str = "test",
) -> Scenario:
    """Return a scenario of these initiatives on a tree.

    Parameters
    ----------
    initiatives : sequence of Initiative
    tree : MetricTree, optional
        :func:`small_tree` by default.
    horizon : int, default 12
    capacity : float, default 10
    overlap : float, default 0
    name : str, default "test"

    Returns
    -------
    Scenario
    """
    tree = small_tree() if tree is None else tree
    return Scenario(
        name=name,
        model=f"{tree.name}.yaml",
        horizon=horizon,
        capacity=capacity,
        overlap=overlap,
        initiatives=list(initiatives),
        tree=tree,
    )


#: The lift models the demo scenario cycles through.
_DEMO_LIFTS = (
    {"low": 0.02, "high": 0.10},
    {"distribution": "pert", "low": 0.0, "mode": 0.05, "high": 0.15},
    {"distribution": "normal", "mean": 0.03, "sd": 0.02},
    {"distribution": "uniform", "low": -0.02, "high": 0.08},
    {
        "experiment": {
            "control": {"n": 5000, "conversions": 400},
            "treatment": {"n": 5000, "conversions": 452},
        }
    },
)


def demo_scenario(n: int = 20, horizon: int = 52, seed: int = 3, overlap: float = 0.0) -> Scenario:
    """Return ``n`` initiatives on the demo tree: every node, lift model and kind of reach.

    Initiative ``i`` targets node ``i mod 6`` with the ``i mod 5``-th lift model (interval,
    PERT, normal, uniform, experiment); it reaches every segment fully, 80 % of each, or the
    first one or two segments, in turn. Confidence 0.5-0.9, start 0-8, ramp 0-4 and effort
    1-12 are drawn from ``seed``; the capacity is 30 % of the total effort.

    Parameters
    ----------
    n : int, default 20
    horizon : int, default 52
    seed : int, default 3
    overlap : float, default 0

    Returns
    -------
    Scenario
    """
    rng = np.random.default_rng(seed)
    tree = demo_tree()
    nodes = list(tree.nodes)
    inis = []
    for i in range(n):
        reach: dict[str, Any] = {}
        if i % 3 == 1:
            reach["reach"] = 0.8
        elif i % 3 == 2:
            reach["segments"] = list(DEMO_SEGMENTS[: 1 + i % 2])
        inis.append(
            initiative(
                f"initiative {i:02d}",
                target=nodes[i % len(nodes)],
                lift=_DEMO_LIFTS[i % len(_DEMO_LIFTS)],
                confidence=float(rng.choice([0.5, 0.6, 0.7, 0.8, 0.9])),
                start=int(rng.integers(0, 9)),
                ramp=int(rng.integers(0, 5)),
                effort=float(rng.integers(1, 13)),
                **reach,
            )
        )
    capacity = 0.3 * sum(ini.effort for ini in inis)
    return scenario(
        inis, tree=tree, horizon=horizon, capacity=capacity, overlap=overlap, name="demo"
    )
