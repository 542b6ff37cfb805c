"""Monte Carlo projection of initiatives through the metric tree to the North Star and churn.

A numpy-only kernel: it needs no PyMC. Each Monte Carlo draw takes one posterior draw of the
fitted models (elasticities and the churn hazard) and one outcome of every initiative (whether
it works, and its lift), then projects the population of the last observed period forward
``horizon`` periods, once without any initiative (the baseline), once with each initiative
alone and once with the whole portfolio. All of them use the same draws (common random
numbers), so their differences are sharp; every result is a change against the baseline.

The model of one draw
---------------------
- **Lift.** Initiative ``i`` works with probability ``confidence``; its relative lift ``l`` on
  its target node follows its lift model (:func:`sample_lift`). The log-change of the target
  in period ``t`` is ``works * log(1 + l) * r(t)`` with the ramp
  ``r(t) = clip((t - start + 1) / (ramp + 1), 0, 1)``: nothing before ``start``, a linear
  ramp from the ship period, full effect from period ``start + ramp`` on.
- **Tree.** The drivers model is linear on the ``log1p`` scale, so a log-change of a child
  moves its parent by ``elasticity[edge, segment]`` times as much; a lift on a sub-input
  reaches the North Star scaled by the product of the elasticities on its path. (For metrics
  well above 1, ``log1p`` and ``log`` changes agree; the relative lift is applied on the log
  scale.) The North Star multiplier of initiative ``i`` is ``m_i = exp(dlog NSM)``.
- **Reach.** Initiative ``i`` reaches a share ``rho[i, s]`` of segment ``s`` (``reach``; or 1
  for the listed ``segments`` and 0 for the others; 1 by default). A cell's expected
  multiplier is ``1 + rho * (m - 1)``. The cell is then projected at that expected multiplier
  (the hazard is evaluated at the cell's mean North Star, as the population is projected by
  cells, not by accounts).
- **Several initiatives** combine on the log scale: their log-multipliers ``L_i = log(1 +
  rho_i (m_i - 1))`` add (lifts multiply, on the same node or on different ones). With
  ``scenario.overlap = w > 0`` the joint lift shrinks because the initiatives reach the same
  users: of the positive ``L_i`` the largest counts in full and the rest by ``1 - w``; the
  negative ones likewise (so ``w = 1`` keeps only the largest gain and the largest loss, and a
  single initiative is never shrunk).
- **Churn.** Period ``t = 0, ..., horizon - 1`` is the ``t``-th period after the last observed
  one. Each cell's accounts are the customers of period 0; in period ``t`` an account has
  tenure ``tenure + 1 + t`` and churns after the period with hazard
  ``logistic(churn_logit(x, log1p(tenure + 1 + t), ...))`` from
  :func:`nsm_sim.models.retention.churn_logit`, ``x = log1p(north_star * multiplier)``. The accounts
  active in period ``t`` are ``accounts * prod_{u < t} (1 - h_u)``.
- **Outputs per draw** (each a change against the baseline on the same draw): the North Star
  total in the last period (``sum active * north_star * multiplier``, absolute and in per cent
  of the baseline), the accounts retained after the last period, and the value over the
  horizon (``sum over periods of active * value``, the value column per account per period).

The kernel
----------
Vectorised over draws x cells x periods; the Python loops are over chunks of draws, over the
initiative sets (baseline, each initiative, the portfolio) and over periods within a set (each
step works on a whole ``draws x cells`` block). Memory is bounded by the chunk size, not by
the number of draws (only the per-draw results grow with it).

- The baseline depends on the posterior draw only: draws are processed sorted by posterior
  draw, and each distinct posterior draw in a chunk is projected once.
- Before a set's first ``start`` nothing changes: its projection starts from the baseline's
  state in that period. After all its ramps are complete the change ``k = exp(logit -
  logit0)`` of each cell's hazard logit is constant, so each later period's survival factor
  is ``1 / (1 + odds0_t * k)`` from the baseline's stored odds, with no new transcendental
  function.
- Only the draws on which the set has an effect are projected (the others' change is exactly
  zero), and only the cells of the segments it reaches (cells are sorted by segment).
- Totals over cells and periods are reduced in the same order for the baseline and for a
  set, so a change is exactly zero when nothing changed (even when a lift underflows).

Reproducibility: every random number is drawn up front from generators derived from ``seed``
with :class:`numpy.random.SeedSequence` (one stream for the choice of posterior draws, one
stream per initiative keyed by its name), never from the chunks, so the same seed gives the
same numbers bitwise whatever ``chunk_size`` or ``n_jobs``; an initiative keeps its outcomes
when other initiatives are added to or removed from the scenario, which makes two scenarios
that share initiatives comparable draw by draw.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from nsm_sim.data import Population
from nsm_sim.errors import BundleError, DataError, SpecError
from nsm_sim.models.retention import HINGE_WIDTH, churn_logit
from nsm_sim.spec import (
    BetaLift,
    ExperimentLift,
    FixedLift,
    Initiative,
    IntervalLift,
    LogNormalLift,
    MetricTree,
    NormalLift,
    PertLift,
    Scenario,
    UniformLift,
)

#: Lifts below this are clipped (a metric cannot fall by 100 % or more).
MIN_LIFT = -0.99

#: The quantities reported for each initiative and for the portfolio.
QUANTITIES = ("north_star_change", "north_star_change_pct", "retained_accounts", "value")

#: Standard normal quantile of 0.95: a 90 % interval spans ``+- Z90`` standard deviations.
Z90 = float(ndtri(0.95))

#: Share of a chunk's draws affected by a set above which all draws are projected (no gather).
DENSE_SHARE = 0.8

#: Working-memory budget of one chunk of draws, in bytes.
CHUNK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- posterior


@dataclass(frozen=True)
class PosteriorDraws:
    """Posterior draws of the fitted models, as plain arrays (the simulator's only input).

    Attributes
    ----------
    segments : tuple of str
        Segment labels, the last axis of the per-segment arrays.
    edges : tuple of tuple of str
        ``(parent, child)`` edges of the metric tree, in ``tree.edges`` order.
    elasticity : ndarray, shape (D, E, S)
        Elasticity of each edge (child to parent, on the ``log1p`` scale) per segment.
    churn_intercept, churn_slope : ndarray, shape (D, S)
        Churn hazard logit intercept and slope on ``log1p(north star)``.
    tenure_slope : ndarray, shape (D,)
        Slope of the logit on ``log1p(tenure)``.
    hinge_jump, hinge_tau : ndarray, shape (D,), or None
        The threshold term (``hinge_tau`` on the North Star's own scale); both ``None`` when
        the retention model has no hinge.
    """

    segments: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    elasticity: np.ndarray
    churn_intercept: np.ndarray
    churn_slope: np.ndarray
    tenure_slope: np.ndarray
    hinge_jump: np.ndarray | None = None
    hinge_tau: np.ndarray | None = None

    def __post_init__(self) -> None:
        d, e, s = np.shape(self.elasticity)
        problems = []
        if e != len(self.edges):
            problems.append(f"elasticity: {e} edges, expected {len(self.edges)}")
        if s != len(self.segments):
            problems.append(f"elasticity: {s} segments, expected {len(self.segments)}")
        for name, shape in [
            ("churn_intercept", (d, s)),
            ("churn_slope", (d, s)),
            ("tenure_slope", (d,)),
        ]:
            if np.shape(getattr(self, name)) != shape:
                problems.append(f"{name}: shape {np.shape(getattr(self, name))}, expected {shape}")
        if (self.hinge_jump is None) != (self.hinge_tau is None):
            problems.append("hinge_jump and hinge_tau: give both or neither")
        elif self.hinge_jump is not None:
            for name in ("hinge_jump", "hinge_tau"):
                if np.shape(getattr(self, name)) != (d,):
                    problems.append(
                        f"{name}: shape {np.shape(getattr(self, name))}, expected {(d,)}"
                    )
        if problems:
            raise BundleError("posterior draws", problems)

    @property
    def n_draws(self) -> int:
        """Number of posterior draws ``D``."""
        return int(np.shape(self.elasticity)[0])

    @property
    def north_star(self) -> str:
        """The root of the tree the edges describe."""
        children = {c for _, c in self.edges}
        return next(p for p, _ in self.edges if p not in children)

    def path_elasticity(self, node: str) -> np.ndarray:
        """Product of the elasticities on the path from ``node`` up to the North Star.

        Parameters
        ----------
        node : str
            A node of the tree (the North Star gives ones).

        Returns
        -------
        ndarray, shape (D, S)
            How much a log-change of ``node`` moves the North Star's log, per draw and segment.
        """
        parent = {c: p for p, c in self.edges}
        index = {edge: k for k, edge in enumerate(self.edges)}
        if node != self.north_star and node not in parent:
            raise KeyError(node)
        out = np.ones((self.n_draws, len(self.segments)))
        while node in parent:
            out = out * self.elasticity[:, index[(parent[node], node)], :]
            node = parent[node]
        return out


def _edge_labels(edges: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{p}<-{c}" for p, c in edges]


def posterior_draws(idata: Any, tree: MetricTree) -> PosteriorDraws:
    """Read the simulator's parameters from a fit's InferenceData.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with the drivers and retention variables in its ``posterior`` group:
        ``elasticity`` ("edge", "segment"), ``churn_intercept`` ("segment",),
        ``churn_slope`` ("segment",), ``tenure_slope`` (scalar) and, with a hinge,
        ``hinge_jump`` and ``hinge_tau`` (scalars). Chains and draws are stacked.
    tree : MetricTree
        The tree the fit belongs to; its edges must be the fit's ``edge`` coordinates
        (``"parent<-child"``).

    Returns
    -------
    PosteriorDraws

    Raises
    ------
    BundleError
        When a variable is missing or the edges do not match the tree.
    """
    post = idata.posterior
    need = ["elasticity", "churn_intercept", "churn_slope", "tenure_slope"]
    missing = [v for v in need if v not in post]
    if missing:
        raise BundleError("fit", [f"posterior: variable {v!r} is missing" for v in missing])

    def stacked(name: str) -> Any:
        da = post[name].stack(sample=("chain", "draw"))
        return da.transpose("sample", ...)

    expected = _edge_labels(tree.edges)
    elast = stacked("elasticity")
    edges_have = [str(e) for e in elast.coords["edge"].values] if "edge" in elast.coords else None
    if edges_have is not None:
        if sorted(edges_have) != sorted(expected):
            raise BundleError(
                "fit",
                [
                    f"elasticity: edges {edges_have} do not match the tree "
                    f"{tree.name!r} (expected {expected})"
                ],
            )
        elast = elast.sel(edge=expected)
    segments = tuple(str(s) for s in elast.coords["segment"].values)
    intercept = stacked("churn_intercept")
    if "segment" in intercept.coords:
        churn_segments = tuple(str(s) for s in intercept.coords["segment"].values)
        if sorted(churn_segments) != sorted(segments):
            raise BundleError(
                "fit",
                [f"churn_intercept: segments {churn_segments} differ from elasticity's {segments}"],
            )
    order = list(segments)

    def per_segment(name: str) -> np.ndarray:
        da = stacked(name)
        if "segment" in da.coords:
            da = da.sel(segment=order)
        return np.asarray(da.values, dtype=float)

    hinge = "hinge_jump" in post and "hinge_tau" in post
    return PosteriorDraws(
        segments=segments,
        edges=tuple(tree.edges),
        elasticity=np.asarray(elast.transpose("sample", "edge", "segment").values, dtype=float),
        churn_intercept=per_segment("churn_intercept"),
        churn_slope=per_segment("churn_slope"),
        tenure_slope=np.asarray(stacked("tenure_slope").values, dtype=float).reshape(-1),
        hinge_jump=np.asarray(stacked("hinge_jump").values, float).reshape(-1) if hinge else None,
        hinge_tau=np.asarray(stacked("hinge_tau").values, float).reshape(-1) if hinge else None,
    )


def fixed_posterior(
    tree: MetricTree,
    segments: Sequence[str],
    *,
    elasticity: float | Mapping[Any, float] | np.ndarray = 0.5,
    churn_intercept: float | Sequence[float] = -3.0,
    churn_slope: float | Sequence[float] = -0.3,
    tenure_slope: float = 0.0,
    hinge_jump: float | None = None,
    hinge_tau: float | None = None,
) -> PosteriorDraws:
    """Build a one-draw posterior from constants (for tests, analytic checks, what-ifs).

    Parameters
    ----------
    tree : MetricTree
        Gives the edges.
    segments : sequence of str
        Segment labels.
    elasticity : float, mapping or ndarray
        One value for every edge and segment; a mapping from ``(parent, child)`` or
        ``"parent<-child"`` to a value (edges not named get 0.5); or an array of shape
        ``(E,)`` or ``(E, S)``.
    churn_intercept, churn_slope : float or sequence of float
        Per segment, or one value for all.
    tenure_slope : float
    hinge_jump, hinge_tau : float or None
        The threshold term; give both or neither.

    Returns
    -------
    PosteriorDraws
        With ``D = 1``.

    Examples
    --------
    >>> from nsm_sim.spec import MetricTree
    >>> tree = MetricTree(name="t", north_star="nsm", inputs={"a": [], "b": []})
    >>> post = fixed_posterior(tree, ["all"], elasticity={("nsm", "a"): 0.8})
    >>> post.elasticity[0, :, 0].tolist()
    [0.8, 0.5]
    """
    edges = tuple(tree.edges)
    n_e, n_s = len(edges), len(segments)
    if isinstance(elasticity, Mapping):
        el = np.full((n_e, n_s), 0.5)
        labels = _edge_labels(edges)
        for key, val in elasticity.items():
            k = edges.index(tuple(key)) if not isinstance(key, str) else labels.index(key)
            el[k, :] = val
    else:
        el = np.broadcast_to(
            np.asarray(elasticity, dtype=float).reshape(-1, 1)
            if np.ndim(elasticity) == 1
            else np.asarray(elasticity, float),
            (n_e, n_s),
        ).copy()
    hinge = hinge_jump is not None
    return PosteriorDraws(
        segments=tuple(segments),
        edges=edges,
        elasticity=el[None],
        churn_intercept=np.broadcast_to(np.asarray(churn_intercept, float), (n_s,))[None].copy(),
        churn_slope=np.broadcast_to(np.asarray(churn_slope, float), (n_s,))[None].copy(),
        tenure_slope=np.array([float(tenure_slope)]),
        hinge_jump=np.array([float(hinge_jump)]) if hinge else None,
        hinge_tau=np.array([float(hinge_tau)]) if hinge_tau is not None else None,
    )


# --------------------------------------------------------------------------- lifts


def _interval(lift: IntervalLift, size: int, rng: np.random.Generator) -> np.ndarray:
    if lift.low == lift.high:
        return np.full(size, float(lift.low))
    z = rng.standard_normal(size)
    if lift.low > 0:
        lo, hi = math.log(lift.low), math.log(lift.high)
        return np.exp((lo + hi) / 2 + (hi - lo) / (2 * Z90) * z)
    return (lift.low + lift.high) / 2 + (lift.high - lift.low) / (2 * Z90) * z


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


#: One sampler per lift model of :mod:`nsm_sim.spec`.
LIFT_SAMPLERS: dict[type, Callable[[Any, int, np.random.Generator], np.ndarray]] = {
    IntervalLift: _interval,
    NormalLift: _normal,
    LogNormalLift: _lognormal,
    BetaLift: _beta,
    UniformLift: _uniform,
    PertLift: _pert,
    ExperimentLift: _experiment,
    FixedLift: _fixed,
}


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
        Number of draws.
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
        sampler = LIFT_SAMPLERS[type(lift)]
    except KeyError:
        raise TypeError(f"no sampler for lift model {type(lift).__name__}") from None
    return np.maximum(sampler(lift, size, rng), MIN_LIFT)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Outcomes:
    """Per-draw changes against the baseline; each array's last axis is the draw.

    Attributes
    ----------
    north_star_change : ndarray
        Change of the North Star total in the last period of the horizon.
    north_star_change_pct : ndarray
        The same in per cent of the baseline's North Star total (``2.5`` = +2.5 %).
    retained_accounts : ndarray
        Change of the accounts still customers after the last period.
    value : ndarray
        Change of the value over the horizon (value per account per period, summed over the
        active accounts and the periods); zero when the population has no value.
    north_star_path : ndarray or None
        Shape (draws, horizon): the North Star total per period with the initiatives (a
        level, not a change); ``None`` unless asked for.
    """

    north_star_change: np.ndarray
    north_star_change_pct: np.ndarray
    retained_accounts: np.ndarray
    value: np.ndarray
    north_star_path: np.ndarray | None = None

    def get(self, quantity: str) -> np.ndarray:
        """Return the array of one of :data:`QUANTITIES`."""
        if quantity not in QUANTITIES:
            raise KeyError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
        return getattr(self, quantity)


def describe(x: np.ndarray) -> dict[str, float]:
    """Summarise draws: mean, median, 5 % and 95 % quantiles and P(> 0).

    Parameters
    ----------
    x : ndarray, shape (draws,)

    Returns
    -------
    dict
        ``{"mean", "median", "p5", "p95", "p_positive"}``.

    Examples
    --------
    >>> describe(np.array([-1.0, 1.0, 2.0, 2.0]))["p_positive"]
    0.75
    """
    x = np.asarray(x, dtype=float)
    p5, median, p95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {
        "mean": float(x.mean()),
        "median": float(median),
        "p5": float(p5),
        "p95": float(p95),
        "p_positive": float(np.mean(x > 0)),
    }


@dataclass(frozen=True)
class SimulationResult:
    """The outcome of :func:`simulate`: per-draw changes for each initiative and the portfolio.

    Attributes
    ----------
    scenario : Scenario
        The scenario simulated.
    names : tuple of str
        Initiative names, the first axis of ``initiatives``.
    effort : ndarray, shape (n_initiatives,)
    initiatives : Outcomes
        Arrays of shape ``(n_initiatives, draws)``: each initiative alone.
    portfolio : Outcomes
        Arrays of shape ``(draws,)``: every initiative of the scenario together.
    baseline : dict of ndarray
        The baseline's levels per draw: ``north_star`` (total in the last period),
        ``retained_accounts`` and ``value`` (over the horizon).
    baseline_path, portfolio_path : ndarray, shape (draws, horizon)
        North Star total per period, without and with the portfolio (see :meth:`trajectory`).
    has_value : bool
        Whether the population has a value per account (else ``value`` is all zero).
    draws, seed : int
        As passed to :func:`simulate`.
    posterior_index : ndarray, shape (draws,)
        The posterior draw used by each Monte Carlo draw.
    posterior : PosteriorDraws
    population : Population
        The inputs, kept so that other sets of initiatives can be projected on the same draws
        (:meth:`simulate_set`).
    chunk_size : int
        Draws per chunk used.
    """

    scenario: Scenario
    names: tuple[str, ...]
    effort: np.ndarray
    initiatives: Outcomes
    portfolio: Outcomes
    baseline: dict[str, np.ndarray]
    baseline_path: np.ndarray
    portfolio_path: np.ndarray
    has_value: bool
    draws: int
    seed: int
    posterior_index: np.ndarray
    posterior: PosteriorDraws = field(repr=False)
    population: Population = field(repr=False)
    chunk_size: int = 0

    def summary(self) -> pd.DataFrame:
        """Summarise each initiative and the portfolio.

        Returns
        -------
        pandas.DataFrame
            One row per initiative then a ``"portfolio"`` row; columns ``name``, ``effort``
            and, for each quantity ``q`` of :data:`QUANTITIES`, ``q_mean``, ``q_median``,
            ``q_p5``, ``q_p95``, ``q_p_positive`` and ``q_per_effort`` (mean per unit of
            effort).
        """
        rows = []
        for k, name in enumerate((*self.names, "portfolio")):
            is_p = k == len(self.names)
            effort = float(self.effort.sum() if is_p else self.effort[k])
            row: dict[str, Any] = {"name": name, "effort": effort}
            for q in QUANTITIES:
                x = self.portfolio.get(q) if is_p else self.initiatives.get(q)[k]
                d = describe(x)
                row.update({f"{q}_{key}": val for key, val in d.items()})
                row[f"{q}_per_effort"] = d["mean"] / effort
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data.

        Returns
        -------
        dict
            ``{"scenario", "draws", "seed", "horizon", "has_value", "initiatives": [{"name",
            "effort", "north_star_change": {"mean", "median", "p5", "p95", "p_positive"},
            "north_star_change_pct": {...}, "retained_accounts": {...}, "value": {...}}, ...],
            "portfolio": {...}, "baseline": {"north_star", "retained_accounts", "value"}}``
            (baseline levels as means over draws).
        """

        def block(name: str, effort: float, get: Callable[[str], np.ndarray]) -> dict[str, Any]:
            return {"name": name, "effort": effort, **{q: describe(get(q)) for q in QUANTITIES}}

        items = [
            block(n, float(self.effort[k]), lambda q, k=k: self.initiatives.get(q)[k])
            for k, n in enumerate(self.names)
        ]
        return {
            "scenario": self.scenario.name,
            "draws": self.draws,
            "seed": self.seed,
            "horizon": self.scenario.horizon,
            "has_value": self.has_value,
            "initiatives": items,
            "portfolio": block("portfolio", float(self.effort.sum()), self.portfolio.get),
            "baseline": {k: float(np.mean(v)) for k, v in self.baseline.items()},
        }

    def trajectory(
        self,
        quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """North Star total per period, baseline and portfolio, as quantiles over draws.

        Parameters
        ----------
        quantiles : sequence of float
            Quantiles to report (for a fan chart).
        extra : mapping of str to ndarray, optional
            More series, each of shape ``(draws, horizon)``, e.g. the
            :attr:`Outcomes.north_star_path` of a set from :meth:`simulate_set`.

        Returns
        -------
        pandas.DataFrame
            Long format: ``period`` (0 = first projected period), ``series`` (``"baseline"``,
            ``"portfolio"``, then the keys of ``extra``), ``mean`` and one column per quantile
            named ``q05``, ``q50``...
        """
        frames = []
        series_paths = {"baseline": self.baseline_path, "portfolio": self.portfolio_path}
        series_paths.update(extra or {})
        for series, path in series_paths.items():
            qs = np.quantile(path, quantiles, axis=0)
            frame = pd.DataFrame({"period": np.arange(path.shape[1]), "series": series})
            frame["mean"] = path.mean(axis=0)
            for q, vals in zip(quantiles, qs, strict=True):
                frame[f"q{round(q * 100):02d}"] = vals
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def simulate_set(self, names: Sequence[str], keep_path: bool = False) -> Outcomes:
        """Project a set of this scenario's initiatives together, on the same draws.

        Parameters
        ----------
        names : sequence of str
            Initiatives of the scenario.
        keep_path : bool, default False
            Also keep the North Star total per period (``north_star_path``).

        Returns
        -------
        Outcomes
            Arrays of shape ``(draws,)``, changes against the same baseline; the joint effect
            of the set, interactions included.
        """
        out = simulate_sets(
            self.scenario,
            self.posterior,
            self.population,
            {"set": list(names)},
            draws=self.draws,
            seed=self.seed,
            chunk_size=self.chunk_size,
            keep_paths=keep_path,
        )
        return out["set"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Cells:
    seg: np.ndarray  # (C,) index into posterior segments
    accounts: np.ndarray
    north_star: np.ndarray
    tenure: np.ndarray
    value: np.ndarray


def _cells(population: Population, posterior: PosteriorDraws) -> _Cells:
    frame = population.frame
    need = ["segment", "accounts", "north_star", "tenure", "value"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError("population", [f"column {c!r} is missing" for c in missing])
    problems = []
    for col in ("accounts", "north_star", "tenure", "value"):
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
    # cells with accounts, sorted by segment (so that a segment's cells are contiguous)
    keep = np.flatnonzero(frame["accounts"].to_numpy(dtype=float) > 0)
    keep = keep[np.argsort(seg[keep], kind="stable")]

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=float)[keep]

    return _Cells(
        seg=seg[keep],
        accounts=col("accounts"),
        north_star=col("north_star"),
        tenure=col("tenure"),
        value=col("value"),
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


def _check_tree(scenario: Scenario, posterior: PosteriorDraws) -> None:
    source = f"scenario {scenario.name!r}"
    if scenario.tree is not None and tuple(scenario.tree.edges) != tuple(posterior.edges):
        raise BundleError(
            "fit",
            [
                f"edges {_edge_labels(posterior.edges)} do not match the scenario's tree "
                f"{scenario.tree.name!r} ({_edge_labels(scenario.tree.edges)})"
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


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def posterior_choice(n_posterior: int, draws: int, seed: int) -> np.ndarray:
    """Choose the posterior draw of each Monte Carlo draw.

    Without replacement when ``draws <= n_posterior``, with replacement otherwise; from the
    seed's own stream, so two scenarios simulated with the same seed and posterior use the
    same posterior draws.

    Parameters
    ----------
    n_posterior : int
        Posterior draws available.
    draws : int
        Monte Carlo draws.
    seed : int

    Returns
    -------
    ndarray of int, shape (draws,)
    """
    rng = _stream(seed, 0)
    return rng.choice(n_posterior, size=draws, replace=draws > n_posterior)


def initiative_outcomes(ini: Initiative, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw whether an initiative works and its lift, for every Monte Carlo draw.

    The stream is keyed by the seed and the initiative's name, so the outcomes do not depend
    on the other initiatives of the scenario.

    Parameters
    ----------
    ini : Initiative
    draws : int
    seed : int

    Returns
    -------
    works : ndarray of bool, shape (draws,)
    lift : ndarray, shape (draws,)
        The lift if it works (drawn on every draw).
    """
    rng = _stream(seed, 1, zlib.crc32(ini.name.encode()))
    works = rng.random(draws) < ini.confidence
    lift = sample_lift(ini.lift, draws, rng)
    return works, lift


# --------------------------------------------------------------------------- kernel


@dataclass
class _Plan:
    """Everything the kernel needs, for all draws (small arrays only)."""

    cells: _Cells
    posterior: PosteriorDraws
    post_idx: np.ndarray  # (N,)
    loglift: np.ndarray  # (I, N): works * log1p(lift)
    path: np.ndarray  # (I, D, S)
    rho: np.ndarray  # (I, S)
    start: np.ndarray  # (I,)
    ramp: np.ndarray  # (I,)
    horizon: int
    overlap: float
    sets: list[np.ndarray]
    paths_for: set[int]  # set indices whose North Star path per period is kept


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function, with numpy's vectorised ``exp`` (faster than ``expit``)."""
    out = np.negative(z)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def _hinge_step(x: np.ndarray, ltw: np.ndarray, hj: np.ndarray) -> np.ndarray:
    """``hj * sigmoid((x - log1p(tau)) / HINGE_WIDTH)`` with ``ltw = log1p(tau) / HINGE_WIDTH``."""
    z = np.subtract(ltw, x * (1.0 / HINGE_WIDTH))
    np.exp(z, out=z)
    z += 1.0
    return np.divide(hj, z, out=z)


def _ramp_share(start: int, ramp: int, t: np.ndarray) -> np.ndarray:
    return np.clip((t - start + 1) / (ramp + 1), 0.0, 1.0)


def _log_multiplier(g: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``log(1 + rho (exp(g) - 1))``, exactly ``g`` where ``rho == 1``; ``rho`` on the last axis."""
    if np.all(rho == 1.0):
        return g
    partial = np.log1p(rho * np.expm1(g))
    return np.where(rho == 1.0, g, partial)


def _combine(parts: list[np.ndarray], overlap: float) -> np.ndarray:
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    if overlap == 0.0 or len(parts) == 1:
        return total
    stack = np.stack(parts)
    pos, neg = np.maximum(stack, 0.0), np.minimum(stack, 0.0)
    big_pos, big_neg = pos.max(axis=0), neg.min(axis=0)
    keep = 1.0 - overlap
    return (
        big_pos + keep * (pos.sum(axis=0) - big_pos) + big_neg + keep * (neg.sum(axis=0) - big_neg)
    )


class _Chunk:
    """The baseline of one chunk of draws, and the projection of a set on top of it.

    Arrays are laid out period first, ``(T, n, C)``, so that each period's slice is one
    contiguous block; reductions over cells use ``einsum`` (no BLAS), whose per-draw order of
    summation does not depend on how many draws share the chunk.
    """

    def __init__(self, plan: _Plan, ids: np.ndarray):
        self.plan, self.ids = plan, ids
        cells, post = plan.cells, plan.posterior
        t_count, seg, n = plan.horizon, cells.seg, ids.size
        pidx = plan.post_idx[ids]
        self.pidx = pidx
        self.b = post.churn_slope[pidx][:, seg]  # (n, C)
        self.x0 = np.log1p(cells.north_star)  # (C,)
        self.ns = cells.north_star
        if post.hinge_jump is not None:
            self.hj = post.hinge_jump[pidx][:, None]  # (n, 1)
            self.ltw = np.log1p(post.hinge_tau[pidx])[:, None] / HINGE_WIDTH
            self.base_step = _hinge_step(self.x0, self.ltw, self.hj)  # (n, C)
        else:
            self.hj = None
        # The baseline depends on the posterior draw only: project each distinct one once.
        uniq, inv = np.unique(pidx, return_inverse=True)
        hinge = post.hinge_jump is not None
        log_tenure = np.log1p(cells.tenure[None, :] + 1.0 + np.arange(t_count)[:, None])
        # the churn logit without the tenure term (U, C), then with it (T, U, C)
        static = churn_logit(
            self.x0,
            0.0,
            post.churn_intercept[uniq][:, seg],
            post.churn_slope[uniq][:, seg],
            0.0,
            post.hinge_jump[uniq][:, None] if hinge else 0.0,
            post.hinge_tau[uniq][:, None] if hinge else None,
            sigmoid=_sigmoid,
        )
        logit0 = churn_logit(
            0.0, log_tenure[:, None, :], static, 0.0, post.tenure_slope[uniq][:, None]
        )
        # odds of churn per period: q = 1 / (1 + odds * k), k = exp(logit - logit0)
        odds = np.exp(logit0, out=logit0)  # (T, U, C)
        alive = np.empty((t_count + 1, uniq.size, seg.size))  # (T+1, U, C)
        alive[0] = 1.0
        tmp = np.empty((uniq.size, seg.size))
        for t in range(t_count):
            np.add(odds[t], 1.0, out=tmp)
            np.divide(alive[t], tmp, out=alive[t + 1])
        self._odds_u, self._alive_u = odds, alive
        self._inv = None if uniq.size == n else inv
        self._odds: np.ndarray | None = odds if self._inv is None else None
        self.w_value = cells.accounts * cells.value
        self.w_nsm = cells.accounts * cells.north_star
        self.nsm_path = self._expand(np.einsum("tuc,c->tu", alive[:t_count], self.w_nsm))
        self._sums: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        whole = self.sums(0, seg.size)
        self.value_tail, self.retained = whole["value_tail"], whole["retained"]

    @property
    def odds(self) -> np.ndarray:
        """Baseline odds of churn per draw, (T, n, C), expanded on first use."""
        if self._odds is None:
            self._odds = self._odds_u.take(self._inv, axis=1)
        return self._odds

    def _source(self, rows: np.ndarray) -> np.ndarray:
        """Return the indices into the per-posterior-draw arrays of draws of the chunk."""
        return rows if self._inv is None else self._inv[rows]

    def _expand(self, per_unique: np.ndarray) -> np.ndarray:
        """Per-draw values from per-posterior-draw ones (last axis)."""
        return per_unique if self._inv is None else per_unique[..., self._inv]

    def _hazard_factor(self, rows: Any, span: slice, mult: np.ndarray) -> np.ndarray:
        """``k = exp(logit - logit0)`` for multipliers ``mult`` (..., r, C) of the cells in span."""
        x = np.multiply(self.ns[span], mult)
        np.log1p(x, out=x)
        delta = np.subtract(x, self.x0[span])
        delta *= self.b[rows, span]
        if self.hj is not None:
            step = _hinge_step(x, self.ltw[rows], self.hj[rows])
            step -= self.base_step[rows, span]
            delta += step
        return np.exp(delta, out=delta)

    def sums(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Baseline totals over cells ``lo:hi``, reduced as :meth:`run` reduces its own.

        ``value_tail[t]`` (T+1, n) is the value of periods ``t .. T-1``, summed from the last
        period back; ``north_star`` (n,) the North Star of the last period; ``retained`` (n,).
        The same order of summation makes a change exactly zero when nothing changed.
        """
        key = (lo, hi)
        if key not in self._sums:
            t_count, span, alive = self.plan.horizon, slice(lo, hi), self._alive_u
            value_t = np.einsum("tuc,c->tu", alive[:t_count, :, span], self.w_value[span])
            value_tail = np.zeros((t_count + 1, value_t.shape[1]))
            value_tail[:t_count] = np.cumsum(value_t[::-1], axis=0)[::-1]
            north_star = np.einsum("uc,c->u", alive[t_count - 1][:, span], self.w_nsm[span])
            retained = np.einsum("uc,c->u", alive[t_count][:, span], self.plan.cells.accounts[span])
            self._sums[key] = {
                "value_tail": self._expand(value_tail),
                "north_star": self._expand(north_star),
                "retained": self._expand(retained),
            }
        return self._sums[key]

    def run(self, members: np.ndarray, keep_path: bool) -> dict[str, Any]:
        """Project a set of initiatives; return its changes on the draws it affects."""
        plan = self.plan
        t_count = plan.horizon
        n = self.ids.size
        g = {}
        affected = np.zeros(n, dtype=bool)
        reached = np.zeros(len(plan.posterior.segments), dtype=bool)
        for i in members:
            if plan.start[i] >= t_count:
                continue
            gi = plan.loglift[i, self.ids, None] * plan.path[i][self.pidx]  # (n, S)
            hit = ((gi != 0.0) & (plan.rho[i] > 0.0)).any(axis=1)
            if hit.any():
                g[i] = gi
                affected |= hit
                reached |= plan.rho[i] > 0.0
        rows = np.flatnonzero(affected)
        if rows.size == 0:
            return {"rows": rows}
        # Project the affected draws only, unless they are most of the chunk: then all of
        # them (no gather per period); the others are discarded at the end.
        every = rows.size >= DENSE_SHARE * n
        sel = slice(None) if every else rows
        r = n if every else rows.size
        # Cells are sorted by segment: project the span of the segments reached only.
        in_reach = np.flatnonzero(reached[plan.cells.seg])
        lo, hi = int(in_reach[0]), int(in_reach[-1]) + 1
        span = slice(lo, hi)
        whole = lo == 0 and hi == plan.cells.seg.size
        seg = plan.cells.seg[span]
        n_cells = hi - lo
        active = list(g)
        t0 = int(min(plan.start[i] for i in active))
        t1 = int(min(t_count, max(plan.start[i] + plan.ramp[i] for i in active)))
        # steady state: every ramp complete
        steady = _combine([_log_multiplier(g[i][sel], plan.rho[i]) for i in active], plan.overlap)
        mult_steady = np.exp(steady)[:, seg]  # (r, C)
        k_steady = self._hazard_factor(sel, span, mult_steady)
        n_ramp = t1 - t0
        if n_ramp > 0:
            t = np.arange(t0, t1)
            parts = [
                _log_multiplier(
                    _ramp_share(plan.start[i], plan.ramp[i], t)[:, None, None] * g[i][sel],
                    plan.rho[i],
                )
                for i in active
            ]
            mult_ramp = np.exp(_combine(parts, plan.overlap))[..., seg]  # (Tr, r, C)
            k_ramp = self._hazard_factor(sel, span, mult_ramp)
        m = t_count - t0
        # alive in period t0 + j, per account of the cell at the start, for j = 0 .. m - 1
        alive_t0 = self._alive_u[t0][self._source(np.arange(n) if every else rows), span]
        # odds: all draws at once, or gathered per period from the distinct posterior draws
        odds_all, src = (self.odds, None) if every else (self._odds_u, self._source(rows))
        path_alive = np.empty((m, r, n_cells)) if keep_path else None
        w_value = self.w_value[span]
        value_t = np.empty((m - 1, r))  # value of periods t0 + 1 .. T - 1
        buffers = (np.empty((r, n_cells)), np.empty((r, n_cells)))
        tmp = np.empty((r, n_cells))
        prev = alive_last = alive_t0
        for j in range(m):
            odds = odds_all[t0 + j][:, span]
            k = k_ramp[j] if j < n_ramp else k_steady
            if every:
                np.multiply(odds, k, out=tmp)
            else:
                np.take(odds, src, axis=0, out=tmp)
                tmp *= k
            tmp += 1.0
            cur = np.divide(prev, tmp, out=buffers[j % 2])  # alive in period t0 + j + 1
            if keep_path:
                path_alive[j] = prev
            if j < m - 1:
                np.einsum("rc,c->r", cur, w_value, out=value_t[j])
            if j == m - 2:
                alive_last = cur.copy()
            prev = cur
        mult_last = mult_steady if t_count - 1 >= t1 else mult_ramp[t_count - 1 - t0]
        # summed from the last period back, as the baseline's value_tail
        value = np.cumsum(value_t[::-1], axis=0)[-1] if m > 1 else np.zeros(r)
        retained = np.einsum("rc,c->r", prev, plan.cells.accounts[span])
        nsm = np.einsum("rc,c->r", alive_last * mult_last, self.w_nsm[span])
        if every:
            value, retained, nsm = value[rows], retained[rows], nsm[rows]
        base = self.sums(lo, hi)
        base_nsm = base["north_star"][rows]
        base_retained = base["retained"][rows]
        base_value = base["value_tail"][t0 + 1, rows]
        out = {
            "rows": rows,
            "north_star": nsm - base_nsm,
            "retained": retained - base_retained,
            "value": value - base_value,
        }
        if keep_path:
            if n_ramp > 0:
                path_alive[:n_ramp] *= mult_ramp
            path_alive[n_ramp:] *= mult_steady
            new = np.einsum("jrc,c->jr", path_alive, self.w_nsm[span])
            if not whole:  # cells outside the span keep their baseline
                rest = self._alive_u[t0:t_count][:, self._source(np.arange(n) if every else rows)]
                new += np.einsum("jrc,c->jr", rest, self.w_nsm * ~reached[plan.cells.seg])
            path = self.nsm_path.copy() if every else self.nsm_path[:, rows]  # (T, r)
            path[t0:] = new
            out["path"] = path[:, rows] if every else path
        return out


def _default_chunk(cells: int, horizon: int, n_jobs: int) -> int:
    # the baseline keeps odds and alive (n, T, C) and a set's projection two more such arrays
    per_draw = 4 * 8 * max(cells, 1) * (horizon + 1)
    return int(max(16, min(4096, CHUNK_BYTES // (per_draw * n_jobs))))


def _plan(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    sets: Mapping[str, Sequence[str]],
    draws: int,
    seed: int,
) -> tuple[_Plan, _Cells]:
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    _check_tree(scenario, posterior)
    cells = _cells(population, posterior)
    source = f"scenario {scenario.name!r}"
    names = [ini.name for ini in scenario.initiatives]
    n_i, n_s = len(names), len(posterior.segments)
    loglift = np.empty((n_i, draws))
    path = np.empty((n_i, posterior.n_draws, n_s))
    rho = np.empty((n_i, n_s))
    for k, ini in enumerate(scenario.initiatives):
        works, lift = initiative_outcomes(ini, draws, seed)
        loglift[k] = np.where(works, np.log1p(lift), 0.0)
        path[k] = posterior.path_elasticity(ini.target)
        rho[k] = _reach(ini, k, posterior.segments, source)
    index = {n: k for k, n in enumerate(names)}
    set_index = []
    for label, members in sets.items():
        unknown = [m for m in members if m not in index]
        if unknown:
            raise SpecError(source, [f"set {label!r}: no initiative named {unknown}"])
        set_index.append(np.array(sorted(index[m] for m in members), dtype=np.intp))
    plan = _Plan(
        cells=cells,
        posterior=posterior,
        post_idx=posterior_choice(posterior.n_draws, draws, seed),
        loglift=loglift,
        path=path,
        rho=rho,
        start=np.array([ini.start for ini in scenario.initiatives]),
        ramp=np.array([ini.ramp for ini in scenario.initiatives]),
        horizon=scenario.horizon,
        overlap=float(scenario.overlap),
        sets=set_index,
        paths_for=set(),
    )
    return plan, cells


def _execute(
    plan: _Plan,
    draws: int,
    chunk_size: int | None,
    n_jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[str, np.ndarray], int]:
    t_count = plan.horizon
    n_sets = len(plan.sets)
    n_jobs = max(1, min(2, os.cpu_count() or 1) if n_jobs is None else int(n_jobs))
    if chunk_size is None:
        chunk_size = _default_chunk(plan.cells.seg.size, t_count, n_jobs)
    chunk_size = int(max(1, chunk_size))
    out = {
        "north_star": np.zeros((n_sets, draws)),
        "retained": np.zeros((n_sets, draws)),
        "value": np.zeros((n_sets, draws)),
        "base_north_star": np.empty(draws),
        "base_retained": np.empty(draws),
        "base_value": np.empty(draws),
        "base_path": np.empty((draws, t_count)),
        "paths": {k: np.empty((draws, t_count)) for k in plan.paths_for},
    }

    # Chunks follow the draws sorted by posterior draw, so that draws sharing one share its
    # baseline; every draw's numbers are the same whatever chunk it falls in.
    order = np.argsort(plan.post_idx, kind="stable")

    def work(j0: int) -> int:
        ids = order[j0 : j0 + chunk_size]
        if plan.cells.seg.size == 0:
            for key in ("base_north_star", "base_retained", "base_value"):
                out[key][ids] = 0.0
            out["base_path"][ids] = 0.0
            for k in plan.paths_for:
                out["paths"][k][ids] = 0.0
            return ids.size
        chunk = _Chunk(plan, ids)
        out["base_north_star"][ids] = chunk.nsm_path[-1]
        out["base_retained"][ids] = chunk.retained
        out["base_value"][ids] = chunk.value_tail[0]
        out["base_path"][ids] = chunk.nsm_path.T
        for k, members in enumerate(plan.sets):
            keep = k in plan.paths_for
            res = chunk.run(members, keep)
            rows = ids[res["rows"]]
            if keep:
                out["paths"][k][ids] = chunk.nsm_path.T
            if rows.size:
                for key in ("north_star", "retained", "value"):
                    out[key][k, rows] = res[key]
                if keep:
                    out["paths"][k][rows] = res["path"].T
        return ids.size

    starts = range(0, draws, chunk_size)
    done = 0
    if n_jobs == 1 or len(starts) == 1:
        for j0 in starts:
            done += work(j0)
            if progress is not None:
                progress(done, draws)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for size in pool.map(work, starts):
                done += size
                if progress is not None:
                    progress(done, draws)
    return out, chunk_size


def _outcomes(out: dict[str, Any], sel: Any) -> Outcomes:
    path = out["paths"].get(sel) if isinstance(sel, int) else None
    nsm = out["north_star"][sel]
    base = out["base_north_star"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(base > 0, 100.0 * nsm / np.where(base > 0, base, 1.0), 0.0)
    return Outcomes(
        north_star_change=nsm,
        north_star_change_pct=pct,
        retained_accounts=out["retained"][sel],
        value=out["value"][sel],
        north_star_path=path,
    )


def simulate_sets(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    sets: Mapping[str, Sequence[str]],
    *,
    draws: int = 4000,
    seed: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_paths: bool = False,
) -> dict[str, Outcomes]:
    """Project any sets of a scenario's initiatives on common random numbers.

    The draws (posterior draw, whether each initiative works, its lift) depend only on
    ``seed``, ``draws``, the posterior's size and each initiative's name, so results of
    different calls with the same seed are comparable draw by draw.

    Parameters
    ----------
    scenario : Scenario
    posterior : PosteriorDraws
    population : Population
    sets : mapping of str to sequence of str
        A label for each set and the names of its initiatives.
    draws, seed, chunk_size, n_jobs, progress
        As in :func:`simulate`.
    keep_paths : bool, default False
        Also keep each set's North Star total per period (``Outcomes.north_star_path``).

    Returns
    -------
    dict of str to Outcomes
        Per set, arrays of shape ``(draws,)``.
    """
    plan, _ = _plan(scenario, posterior, population, sets, draws, seed)
    if keep_paths:
        plan.paths_for = set(range(len(sets)))
    out, _ = _execute(plan, draws, chunk_size, n_jobs, progress)
    return {label: _outcomes(out, k) for k, label in enumerate(sets)}


def simulate(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    *,
    draws: int = 4000,
    seed: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Project each initiative alone and the whole portfolio, on common random numbers.

    Parameters
    ----------
    scenario : Scenario
        The initiatives and the horizon; ``scenario.tree``, when set, must have the
        posterior's edges.
    posterior : PosteriorDraws
        From :func:`posterior_draws` (a fit) or :func:`fixed_posterior` (constants).
    population : Population
        Cells of the last observed period (``segment``, ``accounts``, ``north_star``,
        ``tenure``, ``value``).
    draws : int, default 4000
        Monte Carlo draws; each uses one posterior draw (chosen without replacement when
        ``draws`` does not exceed the posterior's draws, with replacement otherwise).
    seed : int, default 0
        The same seed gives the same numbers bitwise, whatever ``chunk_size`` and ``n_jobs``.
    chunk_size : int, optional
        Draws projected at once; by default chosen to keep the working arrays of each
        worker within about 64 MB.
    n_jobs : int, optional
        Worker threads over chunks (numpy releases the GIL); default ``min(2, cpus)``.
    progress : callable, optional
        Called as ``progress(done, total)`` (draws) after each chunk.

    Returns
    -------
    SimulationResult

    Raises
    ------
    SpecError
        An initiative's target or segments are not in the fitted tree or the data.
    BundleError
        The posterior's edges do not match the scenario's tree.
    DataError
        The population misses a column, has negative values, or a segment unknown to the fit.

    Examples
    --------
    >>> from nsm_sim.data import Population
    >>> from nsm_sim.spec import Initiative, MetricTree, Scenario
    >>> tree = MetricTree(name="t", north_star="nsm", inputs={"a": []})
    >>> scen = Scenario(name="s", model="t.yaml", horizon=4, capacity=1, tree=tree,
    ...                 initiatives=[Initiative(name="x", target="a", lift=0.1)])
    >>> pop = Population(("all",), pd.DataFrame({"segment": ["all"], "segment_idx": [0],
    ...     "accounts": [100.0], "north_star": [5.0], "tenure": [3.0], "value": [0.0]}))
    >>> res = simulate(scen, fixed_posterior(tree, ["all"], elasticity=1.0,
    ...                churn_slope=0.0), pop, draws=10)
    >>> round(float(res.portfolio.north_star_change_pct[0]), 6)
    10.0
    """
    names = tuple(ini.name for ini in scenario.initiatives)
    sets = {n: [n] for n in names}
    sets["\x00portfolio"] = list(names)
    plan, cells = _plan(scenario, posterior, population, sets, draws, seed)
    plan.paths_for = {len(names)}
    out, used_chunk = _execute(plan, draws, chunk_size, n_jobs, progress)
    return SimulationResult(
        scenario=scenario,
        names=names,
        effort=np.array([ini.effort for ini in scenario.initiatives], dtype=float),
        initiatives=_outcomes(out, slice(0, len(names))),
        portfolio=_outcomes(out, len(names)),
        baseline={
            "north_star": out["base_north_star"],
            "retained_accounts": out["base_retained"],
            "value": out["base_value"],
        },
        baseline_path=out["base_path"],
        portfolio_path=out["paths"][len(names)],
        has_value=bool(np.any(cells.value > 0)),
        draws=draws,
        seed=seed,
        posterior_index=plan.post_idx,
        posterior=posterior,
        population=population,
        chunk_size=used_chunk,
    )
