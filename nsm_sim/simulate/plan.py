"""From a scenario, a posterior and a population to the kernel's plan.

The inputs are checked (the scenario's tree against the fit, the population's columns and
segments, each initiative's target and segments), the population becomes cells sorted by
segment, and every random number of a run is drawn here, up front: the posterior draw behind
each simulation (:func:`posterior_choice`), each initiative's outcomes
(:func:`initiative_outcomes`) and, for a partial reach, which share of each cell's accounts
it hits (:func:`reach_noise`), from streams derived from the seed with
:func:`nsm_sim.numeric.stream`. The kernel itself draws nothing, so the numbers do not depend
on how it splits the simulations into chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.errors import BundleError, DataError, SpecError
from nsm_sim.numeric import name_key, stream
from nsm_sim.simulate.levels import NORTH_STAR_MAX, NORTH_STAR_MIN, SHARE_PREFIX
from nsm_sim.simulate.lifts import sample_lift
from nsm_sim.simulate.posterior import PosteriorDraws
from nsm_sim.spec import Initiative, Scenario, edge_label

#: Stream keys under the seed: the choice of posterior draws, one stream per initiative for
#: its outcomes, and one per initiative for which of a cell's accounts a partial reach hits.
POSTERIOR_STREAM, INITIATIVE_STREAM, REACH_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Cells:
    """The population's cells with accounts, sorted by segment (a segment's cells are contiguous).

    Attributes
    ----------
    seg : ndarray of int, shape (C,)
        Index of each cell's segment in the posterior's segments.
    accounts, north_star, tenure, value : ndarray, shape (C,)
        The population's columns.
    north_star_min, north_star_max : ndarray, shape (C,)
        The range of the North Star in each cell (both the mean without the columns).
    shares : dict of str to ndarray, shape (C,)
        Each node's share ``x / (1 + x)`` per cell, for the nodes the population gives (see
        :mod:`nsm_sim.simulate.levels`).
    """

    seg: np.ndarray
    accounts: np.ndarray
    north_star: np.ndarray
    tenure: np.ndarray
    value: np.ndarray
    north_star_min: np.ndarray
    north_star_max: np.ndarray
    shares: dict[str, np.ndarray]

    def share(self, node: str, north_star: str) -> np.ndarray:
        """Return a node's share per cell: exact for the North Star, 1 when not given.

        Parameters
        ----------
        node : str
        north_star : str
            The North Star's name.

        Returns
        -------
        ndarray, shape (C,)
        """
        if node == north_star:
            return self.north_star / (1.0 + self.north_star)
        return self.shares.get(node, np.ones_like(self.north_star))


@dataclass(frozen=True)
class Plan:
    """Everything the kernel needs for all simulations (no array grows with the horizon).

    Attributes
    ----------
    cells : Cells
    posterior : PosteriorDraws
    post_idx : ndarray of int, shape (N,)
        The posterior draw of each simulation.
    loglift : ndarray, shape (I, N)
        ``works * log1p(lift)`` of each initiative in each simulation.
    path : ndarray, shape (I, D, S)
        Product of the elasticities from each initiative's target to the North Star.
    share : ndarray, shape (I, C)
        The share ``x / (1 + x)`` of each initiative's target in each cell.
    rho : ndarray, shape (I, S)
        Share of each segment each initiative reaches.
    reach_noise : dict of int to ndarray of float16, shape (N, C)
        For each initiative with a partial reach (``0 < rho < 1`` in a segment), the standard
        normal draw of the share of each cell's accounts it reaches in each simulation
        (:meth:`reached`), kept to half precision (3 significant digits are plenty for a
        noise; it halves what grows with the simulations).
    start, ramp : ndarray of int, shape (I,)
    horizon : int
    overlap : float
    sets : list of ndarray of int
        The initiatives of each set to project.
    paths_for : frozenset of int
        The sets whose North Star total per period is kept.
    """

    cells: Cells
    posterior: PosteriorDraws
    post_idx: np.ndarray
    loglift: np.ndarray
    path: np.ndarray
    share: np.ndarray
    rho: np.ndarray
    reach_noise: dict[int, np.ndarray]
    start: np.ndarray
    ramp: np.ndarray
    horizon: int
    overlap: float
    sets: list[np.ndarray]
    paths_for: frozenset[int]

    @property
    def simulations(self) -> int:
        """Number of simulations ``N``."""
        return int(self.post_idx.size)

    def reached(self, i: int, ids: np.ndarray, span: slice) -> np.ndarray:
        """Return the share of each cell's accounts initiative ``i`` reaches.

        A reach ``rho`` hits each account of a segment with probability ``rho``, so the
        share of a cell of ``n`` accounts it hits is ``Binomial(n, rho) / n``: drawn from the
        normal with the binomial's mean ``rho`` and variance ``rho (1 - rho) / n``, clipped
        to ``[0, 1]`` (a binomial per cell and simulation costs ten times as much to draw).
        The clip moves a cell's mean by less than 1 % of ``rho`` for cells of 10 accounts or
        more (2 % at 5 accounts, ``rho`` up to 0.95). A reach of 0 or 1 has no spread.

        Parameters
        ----------
        i : int
            The initiative.
        ids : ndarray of int, shape (r,)
            The simulations.
        span : slice
            The cells.

        Returns
        -------
        ndarray
            ``(r, C)`` for a partial reach, else ``(C,)``.
        """
        rho = self.rho[i][self.cells.seg[span]]
        noise = self.reach_noise.get(i)
        if noise is None:
            return rho
        sd = np.sqrt(rho * (1.0 - rho) / self.cells.accounts[span])
        share = noise[ids, span] * sd
        share += rho
        return np.clip(share, 0.0, 1.0, out=share)


def population_cells(population: Population, posterior: PosteriorDraws) -> Cells:
    """Check the population against the fit and return its cells with accounts.

    Parameters
    ----------
    population : Population
    posterior : PosteriorDraws

    Returns
    -------
    Cells

    Raises
    ------
    DataError
        A column is missing, a value is not a finite number >= 0, or a segment is unknown to
        the fit.
    """
    optional = [NORTH_STAR_MIN, NORTH_STAR_MAX] + [
        c for c in population.frame.columns if str(c).startswith(SHARE_PREFIX)
    ]
    frame = population.frame
    need = ["segment", "accounts", "north_star", "tenure", "value"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError("population", [f"column {c!r} is missing" for c in missing])
    problems = []
    for col in ["accounts", "north_star", "tenure", "value", *(c for c in optional if c in frame)]:
        vals = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(vals) | (vals < 0))
        if bad.size:
            rows = ", ".join(str(r) for r in bad[:5])
            problems.append(f"{col}: {bad.size} value(s) not finite numbers >= 0 (rows {rows})")
    labels = frame["segment"].astype(str).to_numpy()
    unknown = sorted(set(labels) - set(posterior.segments))
    if unknown:
        problems.append(
            f"segment: {unknown[:5]} not among the fit's segments {list(posterior.segments)}"
        )
    if problems:
        raise DataError("population", problems)
    index = {s: k for k, s in enumerate(posterior.segments)}
    seg = np.array([index[s] for s in labels], dtype=np.intp)
    keep = np.flatnonzero(frame["accounts"].to_numpy(dtype=float) > 0)
    keep = keep[np.argsort(seg[keep], kind="stable")]

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=float)[keep]

    north_star = col("north_star")
    has_range = NORTH_STAR_MIN in frame and NORTH_STAR_MAX in frame
    return Cells(
        seg=seg[keep],
        accounts=col("accounts"),
        north_star=north_star,
        tenure=col("tenure"),
        value=col("value"),
        north_star_min=col(NORTH_STAR_MIN) if has_range else north_star,
        north_star_max=col(NORTH_STAR_MAX) if has_range else north_star,
        shares={
            str(c)[len(SHARE_PREFIX) :]: np.clip(col(c), 0.0, 1.0)
            for c in optional
            if c in frame and str(c).startswith(SHARE_PREFIX)
        },
    )


def _reach(ini: Initiative, k: int, segments: tuple[str, ...], source: str) -> np.ndarray:
    if ini.segments is not None:
        unknown = [s for s in ini.segments if s not in segments]
        if unknown:
            raise SpecError(
                source,
                [
                    f"initiatives[{k}].segments: {unknown} not among the data's segments "
                    f"{list(segments)}"
                ],
            )
        return np.array([1.0 if s in ini.segments else 0.0 for s in segments])
    return np.full(len(segments), 1.0 if ini.reach is None else float(ini.reach))


def _labels(edges: Iterable[tuple[str, str]]) -> list[str]:
    return [edge_label(parent, child) for parent, child in edges]


def _check_tree(scenario: Scenario, posterior: PosteriorDraws) -> None:
    source = f"scenario {scenario.name!r}"
    if scenario.tree is not None and tuple(scenario.tree.edges) != tuple(posterior.edges):
        raise BundleError(
            "fit",
            [
                f"edges {_labels(posterior.edges)} do not match the scenario's tree "
                f"{scenario.tree.name!r} ({_labels(scenario.tree.edges)})"
            ],
        )
    nodes = {posterior.north_star, *(c for _, c in posterior.edges)}
    bad = [
        f"initiatives[{k}].target: {ini.target!r} is not a node of the fitted tree"
        for k, ini in enumerate(scenario.initiatives)
        if ini.target not in nodes
    ]
    if bad:
        raise SpecError(source, bad)


def posterior_choice(n_posterior: int, simulations: int, seed: int) -> np.ndarray:
    """Choose the posterior draw of each simulation.

    Without replacement when ``simulations <= n_posterior``, with replacement otherwise; from
    the seed's own stream, so two scenarios simulated with the same seed and posterior use the
    same posterior draws.

    Parameters
    ----------
    n_posterior : int
        Posterior draws available.
    simulations : int
        Number of simulations.
    seed : int

    Returns
    -------
    ndarray of int, shape (simulations,)
    """
    rng = stream(seed, POSTERIOR_STREAM)
    return rng.choice(n_posterior, size=simulations, replace=simulations > n_posterior)


def initiative_outcomes(
    ini: Initiative, simulations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw whether an initiative works and its lift, in every simulation.

    The stream is keyed by the seed and the initiative's name, so the outcomes do not depend
    on the other initiatives of the scenario.

    Parameters
    ----------
    ini : Initiative
    simulations : int
    seed : int

    Returns
    -------
    works : ndarray of bool, shape (simulations,)
    lift : ndarray, shape (simulations,)
        The lift if it works (drawn in every simulation).
    """
    rng = stream(seed, INITIATIVE_STREAM, name_key(ini.name))
    works = rng.random(simulations) < ini.confidence
    lift = sample_lift(ini.lift, simulations, rng)
    return works, lift


def reach_noise(ini: Initiative, cells: int, simulations: int, seed: int) -> np.ndarray:
    """Draw the standard normals behind an initiative's reached share of each cell.

    From a stream keyed by the seed and the initiative's name (as :func:`initiative_outcomes`),
    so they do not depend on the other initiatives or on the kernel's chunks.

    Parameters
    ----------
    ini : Initiative
    cells, simulations, seed : int

    Returns
    -------
    ndarray of float16, shape (simulations, cells)
    """
    rng = stream(seed, REACH_STREAM, name_key(ini.name))
    return rng.standard_normal((simulations, cells), dtype=np.float32).astype(np.float16)


def make_plan(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    sets: Mapping[str, Sequence[str]],
    simulations: int,
    seed: int,
    paths_for: Iterable[int] = (),
) -> Plan:
    """Check the inputs, draw every random number, and return the kernel's plan.

    Parameters
    ----------
    scenario : Scenario
    posterior : PosteriorDraws
    population : Population
    sets : mapping of str to sequence of str
        A label for each set and the names of its initiatives.
    simulations : int
        At least 1.
    seed : int
    paths_for : iterable of int, optional
        Positions in ``sets`` of the sets whose North Star total per period is kept.

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        ``simulations`` is below 1.
    SpecError, BundleError, DataError
        As :func:`nsm_sim.simulate.simulate`.
    """
    if simulations < 1:
        raise ValueError(f"simulations must be at least 1, got {simulations}")
    _check_tree(scenario, posterior)
    cells = population_cells(population, posterior)
    source = f"scenario {scenario.name!r}"
    names = [ini.name for ini in scenario.initiatives]
    n_i, n_s = len(names), len(posterior.segments)
    loglift = np.empty((n_i, simulations))
    path = np.empty((n_i, posterior.n_draws, n_s))
    share = np.empty((n_i, cells.seg.size))
    rho = np.empty((n_i, n_s))
    noise = {}
    for k, ini in enumerate(scenario.initiatives):
        works, lift = initiative_outcomes(ini, simulations, seed)
        loglift[k] = np.where(works, np.log1p(lift), 0.0)
        path[k] = posterior.path_elasticity(ini.target)
        share[k] = cells.share(ini.target, posterior.north_star)
        rho[k] = _reach(ini, k, posterior.segments, source)
        partial = (rho[k] > 0.0) & (rho[k] < 1.0)
        if partial[cells.seg].any():
            noise[k] = reach_noise(ini, cells.seg.size, simulations, seed)
    index = {n: k for k, n in enumerate(names)}
    set_index = []
    for label, members in sets.items():
        unknown = [m for m in members if m not in index]
        if unknown:
            raise SpecError(source, [f"set {label!r}: no initiative named {unknown}"])
        set_index.append(np.array(sorted(index[m] for m in members), dtype=np.intp))
    return Plan(
        cells=cells,
        posterior=posterior,
        post_idx=posterior_choice(posterior.n_draws, simulations, seed),
        loglift=loglift,
        path=path,
        share=share,
        rho=rho,
        reach_noise=noise,
        start=np.array([ini.start for ini in scenario.initiatives]),
        ramp=np.array([ini.ramp for ini in scenario.initiatives]),
        horizon=scenario.horizon,
        overlap=float(scenario.overlap),
        sets=set_index,
        paths_for=frozenset(paths_for),
    )
