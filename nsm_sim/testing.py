"""Builders of small simulator inputs for tests and benchmarks.

Trees, populations, posteriors, initiatives and scenarios, each built the same way wherever it
is used, from constants or from a seed (so the same call gives the same inputs). Two families:

- **small**: the tree ``nsm <- a <- (a1, a2); nsm <- b`` (:func:`small_tree`) or
  ``nsm <- a`` (:func:`flat_tree`), two segments (:data:`SEGMENTS`) and a few cells, for
  exact checks against direct computation;
- **demo**: the packaged demo tree (:func:`nsm_sim.synth.demo_tree`), its three segments
  (:data:`DEMO_SEGMENTS`), 60 cells and 20 initiatives over 52 periods, the size the
  benchmarks measure.

Examples
--------
>>> from nsm_sim.simulate import simulate
>>> scen = scenario([initiative("x", target="a1", lift=0.1)])
>>> result = simulate(scen, random_posterior(), small_population(), simulations=20)
>>> result.initiatives.value.shape
(1, 20)
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


# --------------------------------------------------------------------------- portfolio problems


def portfolio_instance(
    n: int = 50, simulations: int = 10_000, seed: int = 0, *, links: bool = True
) -> tuple[Scenario, np.ndarray]:
    """Return a portfolio problem of ``n`` initiatives with regular links and heavy tails.

    Efforts are integers 1-12 and the capacity a third of the total effort (rounded down).
    With ``links``, initiative ``k`` requires ``k - 1`` when ``k mod 10 = 3`` and excludes
    ``k - 2`` when ``k mod 10 = 7``. Each initiative's value in a simulation is its mean
    (normal, 3 +- 3) plus a Student-t(4) deviation scaled by 1-6.

    Parameters
    ----------
    n : int, default 50
    simulations : int, default 10000
    seed : int, default 0
    links : bool, default True

    Returns
    -------
    scenario : Scenario
    values : ndarray, shape (n, simulations)
    """
    rng = np.random.default_rng(seed)
    names = [f"i{k:02d}" for k in range(n)]
    inis = []
    for k, name in enumerate(names):
        requires = [names[k - 1]] if links and k % 10 == 3 else []
        excludes = [names[k - 2]] if links and k % 10 == 7 else []
        effort = float(rng.integers(1, 13))
        inis.append(initiative(name, effort=effort, requires=requires, excludes=excludes))
    capacity = float(sum(ini.effort for ini in inis) // 3)
    scen = scenario(inis, tree=flat_tree(), horizon=4, capacity=capacity, name="milp")
    mean = rng.normal(3.0, 3.0, n)
    values = mean[:, None] + rng.standard_t(4, (n, simulations)) * rng.uniform(1, 6, n)[:, None]
    return scen, values


def random_portfolio_instance(
    rng: np.random.Generator, n: int, simulations: int = 60
) -> tuple[Scenario, np.ndarray]:
    """Return a small portfolio problem with random links, for checks by enumeration.

    Each initiative requires each other one with probability 0.12 and excludes each other one
    it does not require with probability 0.12; efforts are integers 1-7 and the capacity 20-70 %
    of the total effort. Values are normal, with means about 1 and standard deviations 0.5-4.

    Parameters
    ----------
    rng : numpy.random.Generator
        Consumed: successive calls give different problems.
    n : int
    simulations : int, default 60

    Returns
    -------
    scenario : Scenario
    values : ndarray, shape (n, simulations)
    """
    names = [f"i{k}" for k in range(n)]
    inis = []
    for name in names:
        others = [o for o in names if o != name]
        requires = [o for o in others if rng.random() < 0.12]
        excludes = [o for o in others if o not in requires and rng.random() < 0.12]
        effort = float(rng.integers(1, 8))
        inis.append(initiative(name, effort=effort, requires=requires, excludes=excludes))
    capacity = float(rng.uniform(0.2, 0.7) * sum(ini.effort for ini in inis))
    means = rng.normal(1.0, 1.5, n)[:, None]
    spreads = rng.uniform(0.5, 4.0, n)[:, None]
    return scenario(inis, capacity=capacity), rng.normal(means, spreads, (n, simulations))


__all__ = [
    "DEMO_SEGMENTS",
    "SEGMENTS",
    "demo_population",
    "demo_posterior",
    "demo_scenario",
    "demo_tree",
    "flat_tree",
    "initiative",
    "portfolio_instance",
    "random_portfolio_instance",
    "random_posterior",
    "scenario",
    "small_population",
    "small_tree",
]


# --------------------------------------------------------------------------- counterfactual truth

#: Ten initiatives on the synthetic world's nodes: ``(target, lift, reach, ramp)``, at levels
#: from about 1 (integrations) to the North Star, full and partial reach, with and without ramp.
COUNTERFACTUAL_INITIATIVES = (
    ("active_seats", 0.20, 1.0, 0),
    ("seats_activated", 0.20, 1.0, 0),
    ("boards_shared", 0.20, 1.0, 0),
    ("integrations_connected", 0.20, 1.0, 0),
    ("projects_completed", 0.10, 1.0, 0),
    ("invites_sent", 0.30, 0.8, 2),
    ("integrations_connected", 0.50, 0.7, 3),
    ("boards_shared", 0.10, 0.9, 1),
    ("seats_activated", 0.40, 0.6, 0),
    ("active_seats", 0.05, 1.0, 4),
)


def counterfactual_comparison(
    world: dict[str, int],
    start: int,
    posterior: PosteriorDraws,
    population: Population,
    *,
    simulations: int = 1000,
    seed: int = 0,
    simulator: Any = None,
) -> pd.DataFrame:
    """Simulate :data:`COUNTERFACTUAL_INITIATIVES` and set them against the world's truth.

    Each initiative starts in the first period after the panel the posterior was fitted on
    (``start`` of the world) and is compared, on the North Star total of the world's last
    period, with :func:`nsm_sim.synth.counterfactual` of the same world.

    Parameters
    ----------
    world : dict
        ``accounts``, ``periods`` and ``seed`` of :func:`nsm_sim.synth.generate_world`.
    start : int
        Periods of the world the posterior was fitted on.
    posterior : PosteriorDraws
    population : Population
        The fitted panel's starting population (with its levels, for exact propagation).
    simulations, seed : int
        Of the simulator.
    simulator : callable, optional
        ``simulator(scenario, posterior, population, simulations=, seed=)`` returning the
        per-simulation North Star change in per cent of each initiative, (I, N); by default
        :func:`nsm_sim.simulate.simulate`'s.

    Returns
    -------
    pandas.DataFrame
        One row per initiative: ``name``, ``target``, ``lift``, ``reach``, ``ramp``,
        ``share`` (the target's mean share ``x / (1 + x)`` over the population's accounts;
        NaN when the population does not give it),
        ``truth`` (per cent), ``mean``, ``q05``, ``q95``, ``q005``, ``q995`` and ``error``
        (``mean / truth - 1``).
    """
    from nsm_sim.simulate import simulate
    from nsm_sim.synth import Intervention, counterfactual

    horizon = world["periods"] - start
    inis = [
        initiative(f"{k:02d} {target}", target=target, lift=lift, reach=reach, ramp=ramp)
        for k, (target, lift, reach, ramp) in enumerate(COUNTERFACTUAL_INITIATIVES)
    ]
    scen = scenario(inis, tree=demo_tree(), horizon=horizon)
    if simulator is None:
        pct = simulate(
            scen, posterior, population, simulations=simulations, seed=seed
        ).initiatives.north_star_change_pct
    else:
        pct = simulator(scen, posterior, population, simulations=simulations, seed=seed)
    rows = []
    for k, ini in enumerate(inis):
        target, lift, reach, ramp = COUNTERFACTUAL_INITIATIVES[k]
        iv = Intervention(target, lift, start=start, reach=reach, ramp=ramp, name=ini.name)
        truth = counterfactual(iv, **world)["north_star_change_pct"].iloc[-1]
        q = np.quantile(pct[k], [0.05, 0.95, 0.005, 0.995])
        column = share_column(target)
        frame = population.frame
        if column in frame:
            share = float(np.average(frame[column], weights=frame["accounts"]))
        else:
            share = float("nan")
        rows.append(
            {
                "name": ini.name,
                "target": target,
                "lift": lift,
                "reach": reach,
                "ramp": ramp,
                "share": share,
                "truth": float(truth),
                "mean": float(pct[k].mean()),
                "q05": q[0],
                "q95": q[1],
                "q005": q[2],
                "q995": q[3],
                "error": float(pct[k].mean() / truth - 1.0),
            }
        )
    return pd.DataFrame(rows)
