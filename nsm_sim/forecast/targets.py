"""Targets: P(reaching it), the gap, what it would take, and the portfolio that best reaches it.

All on the forecast's simulations (common random numbers), so the answers are sharp against
each other:

- :func:`needed_arrivals`: the extra new accounts per period (spread over the segments as the
  arrivals are) at which P(target) reaches a probability; the aggregate is monotone in them,
  so a bisection on the forecast's own pieces finds it (no new simulation).
- :func:`needed_lift`: the relative lift on a named node of the tree, from the first projected
  period, at full effect, on every account, that brings P(target) to a probability: the
  simulator projects a grid of lifts as sets of one made-up initiative each (one call, the
  same simulations), then a finer grid inside the bracket, and the lift is interpolated
  between the two neighbouring grid points. P(target) is a share of simulations, a step
  function of the lift: the root is as precise as ``1 / simulations`` allows.
- :func:`best_target_portfolio`: the portfolio that maximises P(target) under the capacity,
  with requires and excludes. For the ``sum`` aggregate a set's path is the baseline times the
  product of its initiatives' ratios (:mod:`nsm_sim.forecast.projection`), exact but for the
  interactions the simulator adds when initiatives meet on the same node; every feasible set
  is scored on that product (up to :data:`MAX_ENUMERATED` initiatives; beyond, greedily by
  gain in P per effort), and the best few are then projected jointly and the best of those
  returned.
- :func:`target_report`: all of it in one JSON-ready block.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsm_sim.forecast.projection import BASELINE, PORTFOLIO
from nsm_sim.forecast.result import Forecast, share_at_least
from nsm_sim.simulate import simulate_sets
from nsm_sim.spec import Initiative, Scenario

#: Probabilities of reaching the target that "what it would take" answers for.
NEEDED_PROBABILITIES = (0.5, 0.8)

#: The coarse grid of relative lifts searched by :func:`needed_lift`.
LIFT_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

#: Lifts tried between the two coarse grid points that bracket the answer.
FINE_POINTS = 8

#: Most initiatives whose every subset is scored by :func:`best_target_portfolio`.
MAX_ENUMERATED = 16

#: Candidate portfolios projected jointly at the end of :func:`best_target_portfolio`.
JOINT_CHECKS = 5


def _value(fc: Forecast, value: float | None) -> float:
    if value is not None:
        return float(value)
    if fc.target is None or fc.target_index is None:
        raise ValueError("the forecast has no target; pass value=")
    return float(fc.target.value)


def _members(fc: Forecast, series: str) -> list[str]:
    if series == BASELINE:
        return []
    if series == PORTFOLIO:
        return list(fc.portfolio)
    raise ValueError(f"series: expected {BASELINE!r} or {PORTFOLIO!r}, got {series!r}")


def needed_arrivals(
    fc: Forecast, probability: float, *, series: str = BASELINE, value: float | None = None
) -> float | None:
    """Find the extra new accounts per period at which P(target) reaches ``probability``.

    Parameters
    ----------
    fc : Forecast
        With a target (or pass ``value``).
    probability : float
        In (0, 1).
    series : {"baseline", "portfolio"}
        On top of which.
    value : float, optional
        Another target value (the target's date).

    Returns
    -------
    float or None
        0 when P(target) is there already; ``None`` when a thousand times today's arrivals
        would not do.
    """
    target = _value(fc, value)
    k = fc.target_index
    proj = fc.projection
    existing = proj.existing[series]

    def p(extra: float) -> float:
        return share_at_least(proj.assemble(existing, extra)[:, k], target)

    if p(0.0) >= probability:
        return 0.0
    scale = max(float(proj.arrivals.sum(axis=1).mean()), 1.0)
    hi = scale
    while p(hi) < probability:
        hi *= 2.0
        if hi > 1000.0 * scale:
            return None
    lo = 0.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if p(mid) < probability else (lo, mid)
        if hi - lo < 1e-3 * scale:
            break
    return hi


def _lift_probabilities(
    fc: Forecast, node: str, lifts: Sequence[float], series: str, target: float
) -> np.ndarray:
    base = _members(fc, series)
    needs = [
        Initiative(
            name=f"(needed) {node} {k}",
            target=node,
            lift=float(lift),
            allow_large_lift=True,
        )
        for k, lift in enumerate(lifts)
    ]
    scenario = fc.scenario.model_copy(update={"initiatives": [*fc.scenario.initiatives, *needs]})
    sets = {need.name: [*base, need.name] for need in needs}
    at_target = _sets_at_target(fc, scenario, sets)
    return np.array([share_at_least(at_target[n.name], target) for n in needs])


def _sets_at_target(
    fc: Forecast, scenario: Scenario, sets: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """Return each set's aggregate in the target's period, per simulation of the forecast."""
    out = simulate_sets(
        scenario,
        fc.posterior,
        fc.population,
        sets,
        simulations=fc.simulations,
        seed=fc.seed,
        keep_paths=True,
    )
    k = fc.target_index
    return {label: fc.projection.assemble(out[label].north_star_path)[:, k] for label in sets}


def needed_lift(
    fc: Forecast,
    node: str,
    probability: float,
    *,
    series: str = BASELINE,
    value: float | None = None,
) -> float | None:
    """Find the relative lift on ``node`` at which P(target) reaches ``probability``.

    Parameters
    ----------
    fc : Forecast
    node : str
        A node of the tree (an input, or the North Star itself).
    probability : float
        In (0, 1).
    series : {"baseline", "portfolio"}
        On top of which (the portfolio's initiatives keep their own outcomes).
    value : float, optional
        Another target value (the target's date).

    Returns
    -------
    float or None
        The lift (``0.08`` = +8 %), from the first projected period on every account; 0 when
        the target is reached with that probability already; ``None`` beyond +300 %.
    """
    return _needed_lifts(fc, node, [probability], series, _value(fc, value))[0]


def _needed_lifts(
    fc: Forecast, node: str, probabilities: Sequence[float], series: str, target: float
) -> list[float | None]:
    """:func:`needed_lift` for several probabilities, on one coarse grid."""
    now = fc.p_target(series, target)
    if all(now >= prob for prob in probabilities):
        return [0.0 for _ in probabilities]
    coarse = np.array(LIFT_GRID)
    p_coarse = _lift_probabilities(fc, node, coarse[1:], series, target)
    p_coarse = np.concatenate([[now], p_coarse])
    out: list[float | None] = []
    for prob in probabilities:
        if now >= prob:
            out.append(0.0)
            continue
        above = np.flatnonzero(p_coarse >= prob)
        if above.size == 0:
            out.append(None)
            continue
        j = int(above[0])
        fine = np.linspace(coarse[j - 1], coarse[j], FINE_POINTS + 2)[1:-1]
        grid = np.concatenate([[coarse[j - 1]], fine, [coarse[j]]])
        p = np.concatenate(
            [[p_coarse[j - 1]], _lift_probabilities(fc, node, fine, series, target), [p_coarse[j]]]
        )
        p = np.maximum.accumulate(p)  # a share of simulations: monotone up to its noise
        i = int(np.flatnonzero(p >= prob)[0])
        if p[i] == p[i - 1]:
            out.append(float(grid[i]))
            continue
        w = (prob - p[i - 1]) / (p[i] - p[i - 1])
        out.append(float(grid[i - 1] + w * (grid[i] - grid[i - 1])))
    return out


def _feasible(scenario: Any, chosen: np.ndarray) -> np.ndarray:
    """Which rows of a 0/1 matrix of sets meet capacity, requires and excludes."""
    from nsm_sim.prioritise.portfolio import initiative_links

    effort = np.array([i.effort for i in scenario.initiatives])
    ok = chosen @ effort <= scenario.capacity + 1e-9
    requires, excludes = initiative_links(scenario)
    for i, j in requires:
        ok &= ~((chosen[:, i] == 1) & (chosen[:, j] == 0))
    for i, j in excludes:
        ok &= ~((chosen[:, i] == 1) & (chosen[:, j] == 1))
    return ok


def best_target_portfolio(fc: Forecast) -> dict[str, Any]:
    """Choose the portfolio under capacity that maximises P(target) (see the module).

    Parameters
    ----------
    fc : Forecast
        With each initiative alone (``each=True``) and a target.

    Returns
    -------
    dict
        ``selected`` (names, scenario order), ``effort``, ``capacity``, ``p_target`` (the
        chosen set projected jointly), ``p_baseline``, ``gap`` (:meth:`Forecast.expected_gap`
        of the joint projection) and ``screened`` (feasible sets scored).
    """
    target = _value(fc, None)
    scenario = fc.scenario
    names = [i.name for i in scenario.initiatives]
    base = fc.at_target(BASELINE)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.array(
            [np.log(np.maximum(fc.at_target(n), 1e-300) / np.maximum(base, 1e-300)) for n in names]
        )  # (I, N)
    log_gap = np.log(max(target, 1e-300)) - np.log(np.maximum(base, 1e-300))
    finite = np.isfinite(log_gap) & np.all(np.isfinite(log_r), axis=0)
    log_r, log_gap = log_r[:, finite], log_gap[finite]
    n_i = len(names)
    if n_i <= MAX_ENUMERATED:
        chosen = np.array(list(itertools.product((0, 1), repeat=n_i)), dtype=float)
        chosen = chosen[_feasible(scenario, chosen)]
    else:  # greedy by gain in P(target) per effort
        effort = np.array([i.effort for i in scenario.initiatives])
        x = np.zeros(n_i)
        rows = [x.copy()]
        while True:
            trial = np.repeat(x[None], n_i, axis=0)
            trial[np.arange(n_i), np.arange(n_i)] = 1.0
            ok = _feasible(scenario, trial) & (x == 0)
            if not ok.any():
                break
            p_now = np.mean(x @ log_r >= log_gap)
            gain = np.array([np.mean(t @ log_r >= log_gap) for t in trial]) - p_now
            score = np.where(ok, gain / effort, -np.inf)
            x = trial[int(np.argmax(score))]
            rows.append(x.copy())
        chosen = np.array(rows)
    scores = ((chosen @ log_r) >= log_gap[None, :]).mean(axis=1)
    effort = chosen @ np.array([i.effort for i in scenario.initiatives])
    order = np.lexsort((effort, -scores))[:JOINT_CHECKS]
    sets = {f"{k}": [names[i] for i in np.flatnonzero(chosen[row])] for k, row in enumerate(order)}
    at_target = _sets_at_target(fc, scenario, sets)
    best, best_p, best_x = None, -1.0, None
    for label, members in sets.items():
        x = at_target[label]
        p = share_at_least(x, target)
        if p > best_p + 1e-12:
            best, best_p, best_x = members, p, x
    return {
        "selected": best,
        "effort": float(sum(i.effort for i in scenario.initiatives if i.name in best)),
        "capacity": float(scenario.capacity),
        "p_target": best_p,
        "p_baseline": fc.p_target(BASELINE),
        "gap": {
            "mean": float(target - np.nanmean(best_x)),
            "shortfall": float(np.nanmean(np.maximum(target - best_x, 0.0))),
        },
        "screened": int(chosen.shape[0]),
    }


def target_report(
    fc: Forecast,
    nodes: Sequence[str] | None = None,
    probabilities: Sequence[float] = NEEDED_PROBABILITIES,
    *,
    series: str = BASELINE,
) -> dict[str, Any] | None:
    """P(target) without and with each initiative and the portfolio, the gap, what it takes.

    Parameters
    ----------
    fc : Forecast
    nodes : sequence of str, optional
        The nodes whose needed lift is reported; default the North Star's direct inputs.
    probabilities : sequence of float, default (0.5, 0.8)
    series : {"baseline", "portfolio"}, default "baseline"
        What the needed lifts and new accounts come on top of.

    Returns
    -------
    dict or None
        ``None`` without a target; else :meth:`Forecast.to_dict`'s ``target`` block plus
        ``needed``: ``[{"lever", "kind" ("lift" or "new_accounts_per_period"), "probability",
        "value" (None when out of reach), "beyond" (series)}]``.
    """
    block = fc.to_dict()["target"]
    if block is None:
        return None
    tree = fc.scenario.tree
    if nodes is None:
        nodes = tree.children.get(tree.north_star, ())
    target = float(fc.target.value)
    needed = [
        {
            "lever": "new accounts",
            "kind": "new_accounts_per_period",
            "probability": float(prob),
            "value": needed_arrivals(fc, prob, series=series),
            "beyond": series,
        }
        for prob in probabilities
    ]
    for node in nodes:
        lifts = _needed_lifts(fc, node, probabilities, series, target)
        needed += [
            {
                "lever": node,
                "kind": "lift",
                "probability": float(prob),
                "value": lift,
                "beyond": series,
            }
            for prob, lift in zip(probabilities, lifts, strict=True)
        ]
    block["needed"] = needed
    return block
